"""The house rules that keep the layout honest: the engine never loads Streamlit and has no import
circle, the UI never imports the CLI, and each engine rule (checkpoint naming, scoring input, projection file names)
lives once."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import torch

import vae_core
from vae_core import VAEConfig
from vae_core.evaluate import as_scored, binarize_fixed
from vae_core.library import checkpoint_dir, default_out_path, free_path, list_checkpoints, run_stem
from vae_core.projection import methods_on_disk, project

ROOT = Path(__file__).resolve().parents[1]


def test_importing_every_engine_module_loads_no_streamlit():
    modules = sorted(m.name for m in pkgutil.iter_modules(vae_core.__path__, "vae_core.") if not m.name.endswith("__"))
    assert "vae_core.cli" in modules and "vae_core.library" in modules
    script = (f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\n"
              "print('streamlit' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300,
                         check=True)
    assert out.stdout.strip() == "False"


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_the_ui_never_imports_the_cli_and_pages_import_no_page_module():
    files = [ROOT / "app.py", *(ROOT / "ui").glob("*.py"), *(ROOT / "pages").glob("*.py")]
    assert len(files) > 10
    for f in files:
        imported = _imports(f)
        assert "vae_core.cli" not in imported, f
        assert not any(m == "pages" or m.startswith("pages.") for m in imported), f  # pages/ holds only page scripts


def test_checkpoint_names_have_one_collision_scheme(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_CHECKPOINT_DIR", str(tmp_path))
    assert checkpoint_dir() == tmp_path
    cfg = VAEConfig(dataset="folder:/data/My Faces/", model="conv", latent_dim=8, beta=4.0, beta_schedule="warmup")
    assert run_stem(cfg) == "folder-My-Faces-conv-z8-beta4-warmup"
    first = default_out_path(cfg)
    assert first == tmp_path / "folder-My-Faces-conv-z8-beta4-warmup.pt"
    first.write_bytes(b"")
    claimed = tmp_path / "folder-My-Faces-conv-z8-beta4-warmup-2.pt"
    assert default_out_path(cfg) == claimed
    assert default_out_path(cfg, taken={claimed}) == tmp_path / "folder-My-Faces-conv-z8-beta4-warmup-3.pt"
    assert free_path(tmp_path / "sub", "x") == tmp_path / "sub" / "x.pt"
    (tmp_path / ".hidden.pt").write_bytes(b"")
    assert list_checkpoints() == [first]


def test_scored_images_follow_the_binarization_rule():
    images = torch.rand(5, 1, 4, 4)
    assert as_scored(VAEConfig(), images) is images
    assert torch.equal(as_scored(VAEConfig(binarize=True), images), binarize_fixed(images))


def test_projection_methods_on_disk_are_read_from_the_names_project_writes(tmp_path):
    codes = torch.randn(40, 3).numpy()
    project(codes, "pca", cache_dir=tmp_path, cache_key="abc123")
    assert methods_on_disk(tmp_path, "abc123") == {"pca"}
    assert methods_on_disk(tmp_path, "other") == set()


def test_a_schedule_is_one_entry_and_an_unknown_name_is_refused_by_name():
    import pytest

    from vae_core import VAEError
    from vae_core.config import BETA_SCHEDULES, LR_SCHEDULES
    from vae_core.schedules import BETA_SCHEDULE_FUNCTIONS, LR_SCHEDULE_FUNCTIONS, kl_weight, learning_rate

    assert BETA_SCHEDULES == tuple(BETA_SCHEDULE_FUNCTIONS) and LR_SCHEDULES == tuple(LR_SCHEDULE_FUNCTIONS)
    config = VAEConfig(beta_schedule="warmup")
    object.__setattr__(config, "beta_schedule", "sigmoid")  # a name with no entry: never trained as another
    with pytest.raises(VAEError, match="unknown beta_schedule 'sigmoid'; choose one of: constant, warmup"):
        kl_weight(config, 0, 10)
    object.__setattr__(config, "lr_schedule", "step")
    with pytest.raises(VAEError, match="unknown lr_schedule 'step'"):
        learning_rate(config, 0, 10)


def _engine_imports(path: Path, modules: set[str]) -> dict[str, int]:
    """The `vae_core` modules a module's import statements name, at any depth (a function's lazy import
    runs too, and can meet a module half imported), with the line of the first: an import under
    `if TYPE_CHECKING:` never runs and is left out. Modules are named below vae_core with dots
    ("projection.maps"; a subpackage's `__init__` is the package's name), and an import names the
    longest of them it reaches. `vae_core/__init__` is no node: Python runs it before any of its
    submodules."""
    found: dict[str, int] = {}

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", "")) == "TYPE_CHECKING":
            for child in node.orelse:
                visit(child)
            return
        named = []
        if isinstance(node, ast.Import):
            named = [a.name.split(".") for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            parts = ["vae_core", *(node.module or "").split(".")] if node.level == 1 else (node.module or "").split(".")
            named = [[*parts, a.name] for a in node.names]  # `from vae_core.pkg import module` names the module
        for parts in named:
            if parts[0] != "vae_core":
                continue
            reached = (".".join(parts[1:k]) for k in range(len(parts), 1, -1))
            if (module := next((m for m in reached if m in modules), None)) is not None:
                found.setdefault(module, node.lineno)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return found


def _a_cycle(graph: dict[str, dict[str, int]]) -> list[str]:
    """One import circle of `graph` as the modules along it, the first repeated at the end; [] when none."""
    done, path = set(), []

    def walk(module: str) -> list[str]:
        if module in path:
            return [*path[path.index(module):], module]
        if module in done:
            return []
        path.append(module)
        for target in sorted(graph[module]):
            if cycle := walk(target):
                return cycle
        path.pop()
        done.add(module)
        return []

    for module in sorted(graph):
        if cycle := walk(module):
            return cycle
    return []


def test_the_engine_has_no_import_circle():
    # a circle works or breaks by which module a process happens to import first, and makes no module
    # of it testable or readable alone: each engine module imports only modules below it
    engine = ROOT / "vae_core"
    files = {".".join(p.relative_to(engine).with_suffix("").parts).removesuffix(".__init__"): p
             for p in engine.rglob("*.py") if p != engine / "__init__.py"}
    graph = {m: _engine_imports(p, set(files) - {m}) for m, p in files.items()}
    assert "checkpoint" in graph["projection.maps"]  # a function's import counts (precompute's)
    assert "projection.maps" in graph["projection.jobs"] and "projection.cache" in graph["projection"]
    assert "config" not in graph["models"]  # an import under TYPE_CHECKING does not
    cycle = _a_cycle(graph)
    steps = [f"{a} -> {b} ({a}.py:{graph[a][b]})" for a, b in zip(cycle, cycle[1:], strict=False)]
    assert not cycle, "import circle: " + ", ".join(steps)
