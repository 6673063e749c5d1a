"""Evaluation protocols with published counterparts: the one-class anomaly protocol, and MIG reports.

One-class protocol (Ruff et al. 2018, "Deep One-Class Classification", and the VAE baselines there):
for each class d, train a fresh model on the training images of d only, score every test image, and
measure the AUROC of "not d" (anomalous, the positive class) against "d" (normal). The mean over the
classes is the headline number; on full MNIST Deep SVDD reports a mean AUROC of about 0.95.

Scores are those of `vae_core.anomaly` (nats per image under the model's likelihood; higher = more
anomalous). Every class is trained with the same config and seed, so a run is reproducible.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from vae_core.anomaly import SCORES, anomaly_scores, auroc
from vae_core.config import CONV_SIZES, VAEConfig
from vae_core.errors import VAEError
from vae_core.evaluate import as_scored

if TYPE_CHECKING:
    from vae_core.data import DataBundle

# Defaults of `anomaly-benchmark` (see `one_class_config`), chosen by measurement on mnist5k (~400
# training images a class): a conv VAE per class, about half a minute each on two CPU cores.
# The likelihood is a Gaussian with fixed sigma = 0.1, not the Bernoulli of the other commands: a
# Bernoulli on grey levels scores images mostly by how much ink they have, so a thin "1" looks more
# normal than the normal class itself (AUROC of 1s against a model of 2s about 0.2); the Gaussian's
# squared error is less tied to ink, which raised the mean AUROC from about 0.91 to 0.95.
ONE_CLASS_DEFAULTS = dict(model="conv", latent_dim=16, hidden_sizes=(256,), likelihood="gaussian",
                          sigma_mode="fixed", sigma=0.1, epochs=60, batch_size=32, lr=1e-3, seed=0)
MLP_HIDDEN = (512, 256)


def _labels_or_error(bundle: DataBundle) -> torch.Tensor:
    if bundle.labels is None:
        raise VAEError(f"the one-class benchmark needs class labels ({bundle.name} has none)")
    return bundle.labels


def one_class_bundle(bundle: DataBundle, d: int) -> DataBundle:
    """The same images and test split, with the train split cut down to the images of class `d`."""
    labels = _labels_or_error(bundle)
    train_idx = bundle.train_idx[labels[bundle.train_idx] == int(d)]
    if len(train_idx) == 0:
        present = sorted({int(v) for v in labels[bundle.train_idx].tolist()})
        raise VAEError(f"class {d} has no training images in {bundle.name} (classes: "
                       f"{', '.join(map(str, present))})")
    return dataclasses.replace(bundle, train_idx=train_idx, test_idx=bundle.test_idx,
                               spec={**bundle.spec, "one_class": int(d)})


def one_class_config(bundle: DataBundle, **changes) -> VAEConfig:
    """`ONE_CLASS_DEFAULTS` for `bundle`, with `changes` (None values ignored) on top.

    The conv model takes 28/32/64-pixel square images; for other sizes the default model is the MLP.
    `hidden_sizes` follows the model unless given: (256,) for conv, (512, 256) for the MLP.
    Asking for binarized data (`binarize=True`) without a likelihood means the Bernoulli.
    """
    changes = {k: v for k, v in changes.items() if v is not None}
    _, h, w = bundle.image_shape
    base = dict(ONE_CLASS_DEFAULTS, dataset=bundle.spec.get("dataset", bundle.name))
    if "model" not in changes and not (h == w and h in CONV_SIZES):
        base["model"] = "mlp"
    if changes.get("model", base["model"]) == "mlp":
        base["hidden_sizes"] = MLP_HIDDEN
    if changes.get("binarize") and "likelihood" not in changes:
        base["likelihood"] = "bernoulli"
    return VAEConfig(**{**base, **changes})


def one_class_auroc(bundle: DataBundle, config: VAEConfig, *, classes: Sequence[int] | None = None,
                    score: str = "nelbo", iw_samples: int = 64,
                    progress: Callable[[int, int, dict], None] | None = None) -> dict:
    """The one-class protocol on `bundle` (see the module docstring) with models made by `config`.

    classes: the normal classes to run (default: every class of the train split).
    score: one of `vae_core.anomaly.SCORES`; `iw_samples` importance samples for "iw".
    progress: called after each class as progress(done, total, record), record being that class's
        entry of "per_class".

    Returns {"per_class_auroc": {"d": AUROC}, "mean_auroc", "score", "likelihood", "config",
    "seconds", "per_class": {"d": {"auroc", "n_train", "n_test_normal", "n_test_anomalous",
    "normal_test_nelbo", "seconds"}}, "dataset", "n_test", "units"}.
    """
    from vae_core.train import Trainer

    if score not in SCORES:
        raise VAEError(f"unknown anomaly score {score!r}; choose one of: {', '.join(SCORES)}")
    if isinstance(iw_samples, bool) or not isinstance(iw_samples, int) or iw_samples < 1:
        raise VAEError(f"iw_samples must be an integer >= 1 (got {iw_samples!r})")
    labels = _labels_or_error(bundle)
    present = sorted({int(v) for v in labels[bundle.train_idx].tolist()})
    if classes is None:
        classes = present
    classes = list(dict.fromkeys(int(c) for c in classes))
    if not classes:
        raise VAEError("no classes to run: give at least one")
    missing = [c for c in classes if c not in present]
    if missing:
        raise VAEError(f"class {missing[0]} has no training images in {bundle.name} "
                       f"(classes: {', '.join(map(str, present))})")
    test = bundle.split("test")
    test_labels = test.labels.numpy()
    test_images = as_scored(config, test.images)

    started = time.perf_counter()
    per_class: dict[str, dict] = {}
    for i, d in enumerate(classes):
        t0 = time.perf_counter()
        sub = one_class_bundle(bundle, d)
        normal = test_labels == d
        if normal.all() or not normal.any():
            raise VAEError(f"class {d}: the test split needs images of class {d} and of other classes")
        # the trainer's per-epoch test metrics watch the held-out normal images only (10x cheaper
        # than the whole test split, and the number that says how well class d was learned)
        watch = dataclasses.replace(sub, test_idx=sub.test_idx[torch.from_numpy(normal)])
        trainer = Trainer(config, bundle=watch)
        trainer.fit()
        model = trainer.model.eval()
        scores = anomaly_scores(model, test_images, score, k=iw_samples, seed=config.seed)
        record = {"auroc": auroc(scores[normal], scores[~normal]), "n_train": len(sub.train_idx),
                  "n_test_normal": int(normal.sum()), "n_test_anomalous": int((~normal).sum()),
                  "normal_test_nelbo": float(trainer.metrics["test_nelbo"]),
                  "seconds": time.perf_counter() - t0}
        per_class[str(d)] = record
        if progress is not None:
            progress(i + 1, len(classes), {"class": str(d), **record})
        del trainer, model

    aurocs = {d: r["auroc"] for d, r in per_class.items()}
    out = {
        "per_class_auroc": aurocs,
        "mean_auroc": float(np.mean(list(aurocs.values()))),
        "score": score,
        "likelihood": config.likelihood_name,
        "config": config.to_dict(),
        "seconds": time.perf_counter() - started,
        "per_class": per_class,
        "dataset": bundle.name,
        "n_test": len(test_labels),
        "units": "scores in nats per image; AUROC with the other classes as the positive class",
    }
    if score == "iw":
        out["iw_samples"] = iw_samples
    if bundle.class_names and len(bundle.class_names) > max(classes):
        out["class_names"] = {str(c): bundle.class_names[c] for c in classes}
    return out


def disentanglement_report(model, bundle: DataBundle, *, max_points: int = 10000, seed: int = 0) -> dict:
    """MIG of a model on the test split of a bundle with factors (`vae_core.metrics.checkpoint_mig`),
    with the per-factor gaps by name (None for a factor constant on the test split) and the number
    of active units (test KL per dimension above the threshold of `vae_core.latent.active_units`).
    """
    from vae_core.evaluate import evaluate
    from vae_core.metrics import checkpoint_mig

    m = checkpoint_mig(model, bundle, max_points=max_points, seed=seed)
    names = list(m["factor_names"])
    per_factor = {n: (None if np.isnan(v) else float(v)) for n, v in zip(names, m["per_factor"], strict=True)}
    test = evaluate(model, bundle.split("test").images)
    return {"mig": m["mig"], "per_factor": per_factor, "factor_names": names,
            "active_units": test["active_units"], "latent_dim": int(model.latent_dim),
            "kl_per_dim": test["kl_per_dim"], "n_points": m["n_points"], "n_bins": m["n_bins"],
            "estimator": "MIG, histogram-discretised codes (disentanglement_lib), posterior means, nats"}
