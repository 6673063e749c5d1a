"""Screenshots of every page, for the README tour and for looking at the app as a user would.

    python -m tests.tour [--out screenshots] [--checkpoints checkpoints]
"""

import argparse
from pathlib import Path

from tests.browser import PAGES, browser_page, exceptions, screenshot, settle, streamlit_server


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="screenshots")
    p.add_argument("--checkpoints", default="checkpoints")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with streamlit_server(Path(args.checkpoints).resolve()) as url, browser_page() as page:
        for name in PAGES:
            page.goto(f"{url}/{name}")
            settle(page)
            path = out / f"{name or 'map'}.png"
            screenshot(page, str(path))
            print(path, "exceptions:", exceptions(page) or "none")


if __name__ == "__main__":
    main()
