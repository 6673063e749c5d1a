"""Screenshots of every page, for the README tour and for looking at the app as a user would.

    python -m tests.tour [--out docs/tour] [--checkpoints checkpoints]

The server runs on a copy of the checkpoint folder, so the training run started for the Train
page's picture leaves nothing behind.
"""

import argparse
import shutil
import tempfile
from pathlib import Path

from tests.browser import PAGES, browser_page, exceptions, screenshot, settle, streamlit_server

TRAIN_SECONDS = 25  # how long the Train page's run goes before its picture


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="docs/tour")
    p.add_argument("--checkpoints", default="checkpoints")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "checkpoints"
        shutil.copytree(args.checkpoints, folder)
        with streamlit_server(folder) as url, browser_page() as page:
            for name in PAGES:
                page.goto(f"{url}/{name}")
                settle(page)
                if name == "train":
                    page.get_by_role("button", name="Start training").click()
                    page.wait_for_timeout(TRAIN_SECONDS * 1000)
                path = out / f"{name or 'map'}.png"
                screenshot(page, str(path))
                print(path, "exceptions:", exceptions(page) or "none")


if __name__ == "__main__":
    main()
