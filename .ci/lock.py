"""Refresh the pinned requirements from pyproject.toml: `python .ci/lock.py` (about a minute; installs nothing).

pyproject.toml holds what the project needs, as lower bounds (`[project] dependencies`, and the `dev`
extra for the tests). requirements.txt and requirements-dev.txt hold the exact versions a newcomer
installs and CI tests: this script resolves the lower bounds to the newest releases the package
registry offers today (`pip install --dry-run --report`, which downloads metadata only) and writes
every package of the result with `==`. Run it, then the whole test suite in a fresh virtual
environment (`bash .ci/run` does exactly that), and commit the two files together.

Packages that only a platform marker brings in (torch's CUDA libraries, reached through
`platform_system == "Linux"`) keep that marker, so the files install on macOS and Windows too; packages
that this platform does not need are left for pip to resolve there.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import tomllib
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
HEADER = "# Exact versions, written by `python .ci/lock.py` from pyproject.toml's lower bounds ({what}). Do not edit.\n"
PLATFORM_VARIABLES = ("platform_system", "sys_platform", "platform_machine", "os_name")


def resolve(requirements: list[str], constraints: Path | None = None) -> list[dict]:
    """What pip would install for `requirements` in an empty environment: the report's `install` items."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
               "--disable-pip-version-check", "--report", str(report), *requirements]
        if constraints is not None:
            cmd += ["-c", str(constraints)]
        subprocess.run(cmd, check=True)
        return json.loads(report.read_text())["install"]


def pins(items: list[dict], roots: list[str]) -> dict[str, str]:
    """name -> 'name==version' or 'name==version ; marker' for each resolved package: the marker of the
    platform-conditional requirement that brought it in, when every way to it passes through one."""
    meta = {canonicalize_name(i["metadata"]["name"]): i["metadata"] for i in items}
    plain: set[str] = set()  # reached without a platform marker
    guarded: dict[str, str] = {}  # reached only under a platform marker: the first such marker
    queue = [(Requirement(r), None) for r in roots]
    seen: set[tuple[str, frozenset, str | None]] = set()
    while queue:
        req, guard = queue.pop()
        name = canonicalize_name(req.name)
        state = (name, frozenset(req.extras), guard)
        if name not in meta or state in seen:
            continue
        seen.add(state)
        if guard is None:
            plain.add(name)
        else:
            guarded.setdefault(name, guard)
        for text in meta[name].get("requires_dist", []):
            child = Requirement(text)
            if child.marker is not None and not _applies(child.marker, req.extras):
                continue
            marker = _platform_part(child.marker)
            queue.append((child, guard if guard is not None else marker))
    out = {}
    for name, m in meta.items():
        line = f"{m['name']}=={m['version']}"
        if name not in plain:
            line += f" ; {guarded[name]}"
        out[name] = line
    return out


def _applies(marker: Marker, extras: set[str]) -> bool:
    return any(marker.evaluate({"extra": e}) for e in (extras or {""}))


def _platform_part(marker: Marker | None) -> str | None:
    """The marker when it tests the platform (torch's `platform_system == "Linux"`), else None."""
    if marker is None or not any(v in str(marker) for v in PLATFORM_VARIABLES):
        return None
    return str(marker).split(" and extra ==")[0]


def write(path: Path, what: str, lines: list[str], prefix: str = "") -> None:
    lines = sorted(lines, key=lambda line: canonicalize_name(line.split("==")[0]))
    path.write_text(HEADER.format(what=what) + prefix + "".join(f"{line}\n" for line in lines))


def main() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime, dev = project["dependencies"], project["optional-dependencies"]["dev"]
    app = pins(resolve(runtime), runtime)
    write(ROOT / "requirements.txt", "the app and the engine", list(app.values()))
    with tempfile.TemporaryDirectory() as tmp:
        constraints = Path(tmp) / "app.txt"
        constraints.write_text("".join(f"{line.split(' ;')[0]}\n" for line in app.values()))
        everything = pins(resolve(runtime + dev, constraints), runtime + dev)
    extra = [line for name, line in everything.items() if name not in app]
    write(ROOT / "requirements-dev.txt", "the tests, on top of the app's", extra, prefix="-r requirements.txt\n")
    print(f"requirements.txt: {len(app)} packages; requirements-dev.txt: {len(extra)} more")


if __name__ == "__main__":
    main()
