"""The README is the front door (issue 34, point 7): at most ~250 lines, the rest in docs/; every link in
README.md and docs/*.md reaches a file (and, with a #fragment, a heading of it) that exists, and every
command they quote names a module, a script, a subcommand or a file that exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vae_core.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
CODE = re.compile(r"```[^\n]*\n(.*?)```|`([^`\n]+)`", re.S)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # a '#' in a code block is no heading
    return {slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", text, flags=re.M)}


def links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return [m.group(1) for m in LINK.finditer(text)]


def test_the_readme_is_a_front_door_of_at_most_250_lines():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines"
    text = "\n".join(lines)
    assert "## Where to make a change" in text and "pip install -r requirements-dev.txt && python -m pytest" in text


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_link_reaches_a_file_and_its_heading(page):
    broken = []
    for target in links(page):
        if re.match(r"^[a-z]+:", target):  # https:, mailto: (not reachable offline: not checked)
            continue
        path, _, fragment = target.partition("#")
        where = (page.parent / path).resolve() if path else page
        if not where.exists():
            broken.append(f"{target}: no such file")
        elif fragment and where.suffix == ".md" and fragment not in anchors(where):
            broken.append(f"{target}: no heading #{fragment} in {where.name}")
    assert not broken, broken


def commands(page: Path) -> list[str]:
    """The command lines quoted in a page's code blocks and code spans (a line per command)."""
    out = []
    for block, span in CODE.findall(page.read_text()):
        for line in (block or span).splitlines():
            parts = (part.strip() for part in re.split(r"&&|;|\|", line))
            out += [part for part in parts if part.startswith(("python", "streamlit", "bash", "torchrun"))]
    return out


SUBCOMMANDS = set(next(a for a in build_parser()._actions if a.dest == "command").choices)


def _module_exists(name: str) -> bool:
    base = ROOT / name.replace(".", "/")
    return base.with_suffix(".py").exists() or (base / "__main__.py").exists() or name in ("pip", "venv", "pytest")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_quoted_command_names_what_exists(page):
    missing = []
    for command in commands(page):
        words = command.split()
        if "-m" in words[:3]:
            module = words[words.index("-m") + 1]
            if not _module_exists(module):
                missing.append(f"{command}: no module {module}")
            elif module == "vae_core":
                rest = [w for w in words[words.index("-m") + 2:] if not w.startswith("-")]
                if rest and rest[0] not in SUBCOMMANDS and rest[0].upper() != rest[0]:
                    missing.append(f"{command}: no subcommand {rest[0]}")
            continue
        scripts = [w for w in words[1:] if w.endswith((".py", ".sh")) or w.startswith(".ci/")]
        missing += [f"{command}: no file {s}" for s in scripts if not (ROOT / s).exists()]
    assert not missing, missing


def test_the_checks_catch_a_broken_link_and_a_missing_command(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[gone](nowhere.md) [here](#title) [nowhere](#no-such)\n\n"
                    "`python -m vae_core nosuchcommand CKPT` `python -m vae_core train --epochs 1`\n")
    assert links(page) == ["nowhere.md", "#title", "#no-such"] and anchors(page) == {"title"}
    assert "python -m vae_core nosuchcommand CKPT" in commands(page)
    assert "nosuchcommand" not in SUBCOMMANDS and "train" in SUBCOMMANDS
    with pytest.raises(AssertionError, match="nowhere.md: no such file"):
        test_every_link_reaches_a_file_and_its_heading(page)
    with pytest.raises(AssertionError, match="no subcommand nosuchcommand"):
        test_every_quoted_command_names_what_exists(page)
