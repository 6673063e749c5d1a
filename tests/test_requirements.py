"""The pinned requirements agree with pyproject.toml's lower bounds, and CI tests exactly the pinned set."""

from __future__ import annotations

import os
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11's tomllib")
ROOT = Path(__file__).resolve().parents[1]


def _pinned(name: str) -> dict[str, Requirement]:
    """The requirements of a requirements file (following `-r`), by canonical name."""
    out: dict[str, Requirement] = {}
    for line in (ROOT / name).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-r "):
            out |= _pinned(line[3:].strip())
            continue
        req = Requirement(line)
        assert len(req.specifier) == 1 and next(iter(req.specifier)).operator == "==", f"{name}: {line} is not pinned"
        assert canonicalize_name(req.name) not in out, f"{name}: {req.name} pinned twice"
        out[canonicalize_name(req.name)] = req
    return out


def _version(req: Requirement) -> str:
    return next(iter(req.specifier)).version


PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


@pytest.mark.parametrize("file, needs", [
    ("requirements.txt", PROJECT["dependencies"]),
    ("requirements-dev.txt", PROJECT["dependencies"] + PROJECT["optional-dependencies"]["dev"]),
])
def test_every_dependency_is_pinned_within_its_lower_bound(file, needs):
    pinned = _pinned(file)
    for text in needs:
        need = Requirement(text)
        pin = pinned.get(canonicalize_name(need.name))
        assert pin is not None, f"{file} does not pin {need.name} (run python .ci/lock.py)"
        assert need.specifier.contains(_version(pin), prereleases=True), f"{file}: {pin} is outside {need}"


def test_the_runtime_pins_are_the_dev_pins():
    # requirements-dev.txt adds the test tools to requirements.txt and changes none of its versions
    runtime, dev = _pinned("requirements.txt"), _pinned("requirements-dev.txt")
    assert runtime.items() <= dev.items()
    assert {"pytest", "playwright", "onnxruntime"} <= dev.keys() - runtime.keys()


@pytest.mark.skipif(not os.environ.get("CI"), reason="CI installs the pinned set into a fresh environment; a "
                    "developer's environment may hold other versions")
def test_ci_runs_on_exactly_the_pinned_versions():
    env = default_environment()
    wanted = {name: req for name, req in _pinned("requirements-dev.txt").items()
              if req.marker is None or req.marker.evaluate(env)}
    wrong = {}
    for name, req in wanted.items():
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            have = None
        if have != _version(req):
            wrong[name] = (have, _version(req))
    assert not wrong, f"installed vs pinned: {wrong}"
    assert sys.prefix != sys.base_prefix, "CI runs in a virtual environment of its own"
