"""Every extension point is one table, reachable from both front ends: each `VAEConfig` field has a
`train` flag and a Train page widget built from its metadata, every registry name (datasets, model
kinds, likelihoods, schedules, ...) is a choice in both, and an unknown name is refused with the valid
ones listed. Every projection method fits and is offered by the Map page, and a method added to the
table (a test registers Isomap) is there with its slider, disk cache and inverse, nothing else changed."""

from __future__ import annotations

import argparse
import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import vae_core.hosting
from vae_core import VAEConfig, VAEError
from vae_core.cli import CONFIG_ARGS, build_parser
from vae_core.config import (
    BETA_SCHEDULES,
    DEVICES,
    LIKELIHOODS,
    LR_SCHEDULES,
    MODELS,
    OBJECTIVES,
    SIGMA_MODES,
    config_fields,
)
from vae_core.data import DATASETS, dataset_info
from vae_core.losses import LIKELIHOOD_SPECS
from vae_core.models import MODEL_SPECS
from vae_core.objectives import OBJECTIVE_SPECS
from vae_core.projection import (
    PROJECTION_METHODS,
    Parameter,
    ProjectionMethod,
    _pca,
    method_spec,
    offered_methods,
    project,
)
from vae_core.schedules import BETA_SCHEDULE_FUNCTIONS, LR_SCHEDULE_FUNCTIONS

ROOT = Path(__file__).resolve().parents[1]
FIELDS = {f.name: f for f in config_fields()}
REGISTRIES = {"model": MODEL_SPECS, "likelihood": LIKELIHOOD_SPECS, "objective": OBJECTIVE_SPECS,
              "beta_schedule": BETA_SCHEDULE_FUNCTIONS, "lr_schedule": LR_SCHEDULE_FUNCTIONS}

# a valid value other than the default for every field, as the CLI and the page take it
CHANGED = dict(dataset="digits", data_root="some/root", image_size=16, channels=3, background="black", model="conv",
               latent_dim=3, hidden_sizes=(32, 16), conv_channels=(8, 16), residual_blocks=1, dropout=0.25,
               likelihood="gaussian", binarize=True, sigma_mode="global", sigma=0.2, objective="beta-tcvae",
               beta=2.0, beta_schedule="cyclical", warmup_epochs=3.0, cycles=2, cycle_ramp=0.25,
               capacity_max=10.0, capacity_epochs=4.0, gamma=50.0, epochs=3, batch_size=16, lr=0.01,
               lr_schedule="cosine", shift_pixels=2, val_fraction=0.1, seed=7, device="cpu", cuda_graphs=False,
               amp=True, film_frames=12)


def test_every_config_field_but_the_notes_carries_its_metadata():
    names = [f.name for f in dataclasses.fields(VAEConfig)]
    assert list(FIELDS) == [n for n in names if n != "extra"]
    assert set(CHANGED) == set(FIELDS)
    for f in FIELDS.values():
        assert f.option.label and f.option.help, f.name
        assert f.default != CHANGED[f.name], f.name
    assert FIELDS["model"].option.choices == MODELS == tuple(MODEL_SPECS)
    assert FIELDS["likelihood"].option.choices == LIKELIHOODS == tuple(LIKELIHOOD_SPECS)
    assert FIELDS["beta_schedule"].option.choices == BETA_SCHEDULES
    assert FIELDS["objective"].option.choices == OBJECTIVES == tuple(OBJECTIVE_SPECS)
    assert FIELDS["lr_schedule"].option.choices == LR_SCHEDULES
    assert FIELDS["dataset"].option.choices == tuple(DATASETS)


# --- the CLI


def _train_parser() -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["train"]


def _argv(name: str, value) -> list[str]:
    flag = FIELDS[name].flag
    if value is True:
        return [flag]
    if value is False:  # a flag that is on by default: --no-NAME
        return ["--no-" + flag[2:]]
    return [flag, ",".join(map(str, value)) if isinstance(value, tuple) else str(value)]


def test_every_config_field_is_a_train_flag_that_sets_it():
    assert CONFIG_ARGS == tuple(FIELDS)
    flags = {a.dest: a for a in _train_parser()._actions}
    for name, value in CHANGED.items():
        assert flags[name].default is None, name  # None: not given, so a preset or a resumed run keeps its own
        args = build_parser().parse_args(["train", *_argv(name, value)])
        given = {k: getattr(args, k) for k in CONFIG_ARGS if getattr(args, k) is not None}
        assert given == {name: value}
        assert getattr(VAEConfig(**given), name) == value


def test_every_registry_name_is_a_train_choice():
    flags = {a.dest: a for a in _train_parser()._actions}
    for name, table in REGISTRIES.items():
        offered = tuple(c for c in flags[name].choices if c not in FIELDS[name].option.legacy)  # old names too
        assert offered == tuple(table), name
        for entry in table:
            assert getattr(build_parser().parse_args(["train", FIELDS[name].flag, entry]), name) == entry
    for name, valid in (("objective", OBJECTIVES), ("sigma_mode", SIGMA_MODES), ("device", DEVICES)):
        assert tuple(flags[name].choices) == valid
    for dataset in DATASETS:  # free-form (folder:PATH), so listed in the help and checked when loaded
        assert dataset in flags["dataset"].help
    with pytest.raises(VAEError, match="invalid choice: 'rnn'"):
        build_parser().parse_args(["train", "--model", "rnn"])


def test_an_unknown_name_is_refused_with_the_valid_ones():
    with pytest.raises(VAEError, match="unknown dataset 'imagenet'; valid: mnist5k, digits, .*folder:PATH"):
        dataset_info("imagenet")
    assert dataset_info("folder:/any/where") is DATASETS["folder:PATH"]
    assert all(callable(d.load) for d in DATASETS.values())
    with pytest.raises(VAEError, match="model must be one of mlp, conv"):
        VAEConfig(model="rnn")
    with pytest.raises(VAEError, match="likelihood must be one of bernoulli, gaussian"):
        VAEConfig(likelihood="poisson")
    with pytest.raises(VAEError, match=r"projection method must be one of pca, umap, tsne \(or latent for a 2-D "):
        method_spec("isomap")


# --- the Train page


def _train_page(monkeypatch, checkpoint_dir) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90).run()
    at.switch_page("pages/train.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _widgets(at: AppTest) -> dict:
    return {w.key: w for kind in ("selectbox", "number_input", "text_input", "checkbox") for w in at.get(kind)
            if w.key and w.key.startswith("cfg_")}


def _shown(value) -> object:
    return ",".join(map(str, value)) if isinstance(value, tuple) else value


def _submit(at: AppTest, monkeypatch, values: dict) -> VAEConfig:
    """Set the widgets, press Start, and return the config the page would have started."""
    started = []

    def record(config, out, resume=None, **kwargs):
        started.append(config)
        raise VAEError("recorded and not started")

    monkeypatch.setattr(vae_core.hosting, "start_run", record)
    widgets = _widgets(at)
    for name, value in values.items():
        widgets[f"cfg_{name}"].set_value(_shown(value))
    next(b for b in at.button if b.label == "Start training").click().run()
    assert not at.exception and [e.value for e in at.error] == ["recorded and not started"]
    return started[0]


def test_every_config_field_is_a_train_page_widget_that_sets_it(monkeypatch, checkpoint_dir, default_limits):
    at = _train_page(monkeypatch, checkpoint_dir)
    widgets = _widgets(at)
    assert set(widgets) == {f"cfg_{name}" for name in FIELDS}
    for name, table in REGISTRIES.items():
        assert widgets[f"cfg_{name}"].options == list(table), name
    for name, valid in (("objective", OBJECTIVES), ("sigma_mode", SIGMA_MODES), ("device", DEVICES)):
        assert widgets[f"cfg_{name}"].options == list(valid)
    assert widgets["cfg_dataset"].options == [n for n in DATASETS if n != "folder:PATH"] + ["folder"]

    first = {**CHANGED, "binarize": False}  # binarize takes the bernoulli likelihood: set apart below
    config = _submit(at, monkeypatch, first)
    assert {name: getattr(config, name) for name in FIELDS} == first
    config = _submit(at, monkeypatch, {"likelihood": "bernoulli", "binarize": True})
    assert config.likelihood == "bernoulli" and config.binarize


def test_the_public_demo_caps_the_form_and_shows_no_server_paths(monkeypatch, checkpoint_dir, default_limits):
    monkeypatch.setenv("VAE_EXPLORER_PUBLIC", "1")
    widgets = _widgets(_train_page(monkeypatch, checkpoint_dir))
    assert "cfg_data_root" not in widgets
    assert widgets["cfg_epochs"].max == 20 and widgets["cfg_batch_size"].max == 512
    assert widgets["cfg_image_size"].max == 64
    assert "folder" not in widgets["cfg_dataset"].options and "sprites-full" not in widgets["cfg_dataset"].options


# --- projection methods: one table (vae_core/projection/methods.py), and the Map page builds its controls from it


def _fits_fast(spec: ProjectionMethod) -> ProjectionMethod:
    """`spec` with PCA's fit in place of its own (which test_projection runs): the page's wiring alone."""
    if spec.fit is None:
        return spec
    return dataclasses.replace(spec, fit=lambda codes, *, seed, progress=None, **params: _pca(codes, seed=seed),
                               warm_up=None)


def _map_page(checkpoint_dir: Path, model: Path) -> AppTest:
    shutil.copyfile(model, checkpoint_dir / model.name)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.mark.parametrize("name", list(PROJECTION_METHODS))
def test_every_projection_method_fits_a_small_set_of_codes(name):
    spec = PROJECTION_METHODS[name]
    assert spec.name == name and spec.label and spec.help
    codes = np.random.default_rng(0).standard_normal((60, spec.latent_dim or 5)).astype(np.float32)
    proj = project(codes, name)
    assert proj.coords.shape == (60, 2) and proj.coords.dtype == np.float32 and np.isfinite(proj.coords).all()
    assert proj.params == {**spec.defaults, **({"seed": 0} if spec.fit else {}), "cached": False}
    assert proj.inverse(proj.coords[:3]).shape == (3, codes.shape[1])
    assert proj.transform(codes[:3]).shape == (3, 2)
    assert (proj.linear_inverse() is not None) == spec.linear
    assert proj.inverse_in_words()
    for p in spec.parameters:  # each one a slider on the page, its default inside the slider's range
        low, high, _ = p.slider
        assert p.help and low <= p.default <= high
        assert p.checked(low, 10**6) == low and p.checked(high, 10**6) == high


def test_every_projection_method_is_offered_by_the_map_page(checkpoint_dir, models, monkeypatch):
    for name, spec in PROJECTION_METHODS.items():
        monkeypatch.setitem(PROJECTION_METHODS, name, _fits_fast(spec))
    at = _map_page(checkpoint_dir, models["z2"])  # a 2-D model: every method, the latent plane too
    picker = at.selectbox(key="map_method")
    assert picker.options == [s.label for s in PROJECTION_METHODS.values()]
    for name, spec in PROJECTION_METHODS.items():
        at.selectbox(key="map_method").set_value(name).run()
        assert not at.exception and not at.error, name
        sliders = {s.key: s.value for s in at.slider if s.key and s.key.startswith(f"map_{name}_")}
        assert sliders == {f"map_{name}_{p.name}": p.default for p in spec.parameters}, name
        assert ("Decode under the pointer" in at.radio(key="map_mode").options) == spec.linear, name
        assert at.caption[0].value.startswith(spec.label), name


def test_a_method_registered_in_the_table_is_on_the_map_page(checkpoint_dir, models, monkeypatch):
    def isomap(codes, *, n_neighbors, seed, progress=None):
        from sklearn.manifold import Isomap

        fitted = Isomap(n_neighbors=n_neighbors, n_components=2)
        return fitted.fit_transform(codes), fitted

    monkeypatch.setitem(PROJECTION_METHODS, "isomap", ProjectionMethod(
        "isomap", "Isomap", "geodesic distances along a neighbour graph", isomap,
        (Parameter("n_neighbors", "neighbours in the graph", 10, (2, 50, None), low=2, high=200, below_n=True),),
        transform=True))
    assert offered_methods(4)[-1] == "isomap"
    at = _map_page(checkpoint_dir, models["z4"])
    assert at.selectbox(key="map_method").options == ["PCA", "UMAP", "t-SNE", "Isomap"]
    at.selectbox(key="map_method").set_value("isomap").run()
    assert not at.exception and not at.error
    assert at.slider(key="map_isomap_n_neighbors").value == 10
    assert at.caption[0].value.startswith("Isomap of the 1,000 test codes")
    assert len(list((checkpoint_dir / "projections").glob("*-isomap-*.npy"))) == 1  # the disk cache
    at.radio(key="map_mode").set_value("Decoded grid").run()
    assert not at.exception and len(at.main.image) == at.slider(key="map_cells").value ** 2
    assert "through nearest encoded neighbours (Isomap has no inverse)" in at.caption[0].value
