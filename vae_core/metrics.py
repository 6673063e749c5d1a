"""How good is a latent code? Disentanglement (MIG) and label efficiency (linear probes).

- `mig` / `checkpoint_mig`: the Mutual Information Gap (Chen et al. 2018, "Isolating Sources of
  Disentanglement in Variational Autoencoders"), with the discretised estimator of
  disentanglement_lib (Locatello et al. 2019): each code dimension is binned into equal-width
  histogram bins and mutual information is computed between discrete variables, in nats.
- `probe`: the semi-supervised use of a VAE (Kingma et al. 2014, "M1"): fit a linear classifier on
  the posterior means of a few labelled images and compare it with the same classifier on raw pixels
  and on PCA features of the same dimension.

Both are deterministic: MIG uses no randomness at all; probes and subsampling draw from numpy
Generators seeded with `seed`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from vae_core.errors import VAEError
from vae_core.latent import encode
from vae_core.streaming import as_tensor, streamed

PROBE_BATCH = 1024  # test and train images read at a time for the probe's pixel features

# --- Mutual Information Gap

def _check_mig_inputs(codes, factors, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    codes = np.asarray(codes, dtype=np.float64)
    factors = np.asarray(factors)
    if codes.ndim != 2:
        raise VAEError(f"codes must be a 2-D array (N, D) (got shape {codes.shape})")
    if factors.ndim != 2:
        raise VAEError(f"factors must be a 2-D array (N, K) of integer indices (got shape {factors.shape})")
    if factors.dtype.kind not in "iub":
        raise VAEError(f"factors must be integer indices (got dtype {factors.dtype})")
    if codes.shape[0] != factors.shape[0]:
        raise VAEError(f"codes and factors must have the same number of rows (got {codes.shape[0]} "
                       f"and {factors.shape[0]})")
    if codes.shape[0] < 2:
        raise VAEError(f"MIG needs at least 2 points (got {codes.shape[0]})")
    if codes.shape[1] < 2:
        raise VAEError(f"MIG needs a code with at least 2 dimensions (got {codes.shape[1]})")
    if factors.shape[1] < 1:
        raise VAEError("MIG needs at least one factor (factors has 0 columns)")
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 2:
        raise VAEError(f"n_bins must be an integer >= 2 (got {n_bins!r})")
    if not np.isfinite(codes).all():
        raise VAEError("codes contain NaN or infinite values")
    return codes, factors.astype(np.int64)


def histogram_discretize(codes: np.ndarray, n_bins: int = 20) -> np.ndarray:
    """Each column of `codes` (N, D) binned into `n_bins` equal-width bins spanning its own range:
    (N, D) int64 bin indices 1..n_bins, as disentanglement_lib's `_histogram_discretize`."""
    out = np.empty(codes.shape, dtype=np.int64)
    for j in range(codes.shape[1]):
        edges = np.histogram_bin_edges(codes[:, j], bins=n_bins)
        out[:, j] = np.digitize(codes[:, j], edges[:-1])  # the maximum lands in the last bin
    return out


def mig(codes: np.ndarray, factors: np.ndarray, *, n_bins: int = 20) -> dict:
    """Mutual Information Gap of a code with respect to ground-truth factors.

    codes: (N, D) float, one row per image (usually posterior means μ).
    factors: (N, K) int, the index of each factor's value for each image.

    For each factor v_k: MI_k = (I(z_(1); v_k) − I(z_(2); v_k)) / H(v_k), where z_(1), z_(2) are the
    two code dimensions sharing most mutual information with v_k. MIG is the mean of MI_k over the
    factors; factors that are constant on these points (H(v_k) = 0) have no gap to measure: they are
    skipped in the mean and reported as NaN in `per_factor`. Informations are in nats (natural
    log), estimated on the discretised code, so they carry a small positive bias of roughly
    (n_bins − 1)(|v_k| − 1) / (2N) nats; a code independent of the factors scores near, not at, 0.

    Deterministic (no randomness), so the same inputs always give the same numbers.

    Returns {"mig": float in [0, 1], "per_factor": [K floats], "mutual_info": (D, K) nested list of
    I(z_j; v_k) in nats, "n_bins": n_bins}.
    """
    from sklearn.metrics import mutual_info_score

    codes, factors = _check_mig_inputs(codes, factors, n_bins)
    binned = histogram_discretize(codes, int(n_bins))
    d, k = codes.shape[1], factors.shape[1]
    mi = np.array([[mutual_info_score(factors[:, f], binned[:, j]) for f in range(k)] for j in range(d)])
    entropy = np.array([mutual_info_score(factors[:, f], factors[:, f]) for f in range(k)])  # (K,)
    top = np.sort(mi, axis=0)[::-1]  # (D, K), descending per factor
    varying = entropy > 0
    if not varying.any():
        raise VAEError("every factor is constant on these points: MIG has nothing to measure")
    per_factor = np.full(k, np.nan)
    per_factor[varying] = (top[0, varying] - top[1, varying]) / entropy[varying]
    return {"mig": float(per_factor[varying].mean()), "per_factor": [float(v) for v in per_factor],
            "mutual_info": mi.tolist(), "n_bins": int(n_bins)}


def checkpoint_mig(model, bundle, *, split: str = "test", max_points: int = 10000, seed: int = 0) -> dict:
    """MIG of a model's posterior means μ on one split of a bundle with ground-truth factors.

    At most `max_points` images are encoded: a larger split is subsampled without replacement by a
    numpy Generator seeded with `seed`. Returns `mig(...)` plus "factor_names" (K,) and "n_points".
    """
    if bundle.factors is None:
        raise VAEError(f"MIG needs ground-truth factors: use the sprites dataset ({bundle.name} has none)")
    if isinstance(max_points, bool) or not isinstance(max_points, (int, np.integer)) or max_points < 2:
        raise VAEError(f"max_points must be an integer >= 2 (got {max_points!r})")
    part = bundle.split(split)
    images, factors = part.images, part.factors.numpy()
    if len(images) > max_points:
        keep = np.sort(np.random.default_rng(seed).choice(len(images), size=max_points, replace=False))
        images, factors = images[torch.from_numpy(keep)], factors[keep]
    mu, _ = encode(model, images)
    result = mig(mu.numpy(), factors)
    names = list(bundle.factor_names) or [f"factor {i}" for i in range(factors.shape[1])]
    return {**result, "factor_names": names, "n_points": len(images)}


# --- linear probes

def balanced_order(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """All indices of `labels` (N,) in the order a class-balanced labelled draw takes them.

    The first n entries are the n labelled examples: one random example of each class (classes in
    random order), then a second of each, and so on; a class that runs out drops out of the rotation.
    So any prefix is as balanced as the class sizes allow, has every class once n reaches the number
    of classes, and smaller draws are nested in larger ones. Seeded by `seed`.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    classes, inverse = np.unique(labels, return_inverse=True)
    class_turn = rng.permutation(len(classes))[inverse]  # (N,) where each class sits in a round
    rank = np.empty(len(labels), dtype=np.int64)  # (N,) position of each example within its class
    for c in range(len(classes)):
        members = np.flatnonzero(inverse == c)
        rank[rng.permutation(members)] = np.arange(len(members))
    return np.lexsort((class_turn, rank))


def _check_probe_args(bundle, label_counts: Sequence[int], repeats: int) -> list[int]:
    if bundle.labels is None:
        raise VAEError(f"a linear probe needs class labels ({bundle.name} has none)")
    counts = list(dict.fromkeys(label_counts))  # unique, in the order given
    if not counts:
        raise VAEError("label_counts is empty: give at least one number of labelled examples")
    for n in counts:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
            raise VAEError(f"each label count must be an integer >= 2 (got {n!r})")
    if isinstance(repeats, bool) or not isinstance(repeats, (int, np.integer)) or repeats < 1:
        raise VAEError(f"repeats must be an integer >= 1 (got {repeats!r})")
    return [int(n) for n in counts]


def _classifier(train_x: np.ndarray, train_y: np.ndarray, standardize: bool = False):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    steps = [StandardScaler()] if standardize else []
    return make_pipeline(*steps, LogisticRegression(max_iter=2000)).fit(train_x, train_y)


def _pixel_batches(images, batch: int = PROBE_BATCH):
    """(n, C·H·W) float arrays of `images` (a tensor or streamed `LazyImages`), `batch` at a time."""
    for chunk in images.split(batch):
        yield chunk.flatten(1).numpy()


def _pixel_pca(images, n_components: int, seed: int):
    """PCA of the images' pixels: scikit-learn's `PCA` on images held in memory (exact), its
    `IncrementalPCA` fed batch by batch on streamed ones (memory: one batch)."""
    from sklearn.decomposition import PCA, IncrementalPCA

    if not streamed(images):  # held in memory (a tensor, or bytes): the exact PCA
        return PCA(n_components=n_components, random_state=seed).fit(as_tensor(images).flatten(1).numpy())
    pca = IncrementalPCA(n_components=n_components)
    carry = None  # IncrementalPCA needs n_components rows a batch: a short last batch joins the next
    for x in _pixel_batches(images, max(PROBE_BATCH, n_components)):
        carry = x if carry is None else np.concatenate([carry, x])
        if len(carry) >= n_components:
            pca.partial_fit(carry)
            carry = None
    return pca


def probe(model, bundle, *, label_counts: Sequence[int] = (10, 100, 1000), seed: int = 0,
          repeats: int = 1) -> dict:
    """Test accuracy of linear classifiers trained on a few labelled images, for each label count n.

    The n labelled images are a class-balanced draw from the train split (`balanced_order`; the
    whole split when n exceeds it, recorded as "n_train"). On them, LogisticRegression(max_iter=2000)
    is fitted to three representations and scored on the whole test split:
      - "latent_acc": posterior means μ (N, D), standardised on the labelled images;
      - "pixel_acc":  raw pixels, flattened (N, C·H·W), in [0, 1];
      - "pca_acc":    the top D principal components of the pixels, PCA fitted on all train images
                      without their labels (as the VAE was), left in pixel units like "pixel_acc".
    With `repeats` > 1 the draw is repeated with seeds seed, seed+1, … and accuracies averaged.
    The pixels are read in batches (PROBE_BATCH images): a streamed dataset is never held whole.

    Returns {"labels": {"n": {"latent_acc", "pixel_acc", "pca_acc", "n_train"}}, "n_test", "latent_dim"}.
    """
    counts = _check_probe_args(bundle, label_counts, repeats)
    train, test = bundle.split("train"), bundle.split("test")
    train_y, test_y = train.labels.numpy(), test.labels.numpy()
    if len(np.unique(train_y)) < 2:
        raise VAEError("a linear probe needs at least 2 classes in the train split")
    if len(test_y) == 0:
        raise VAEError("the test split is empty: nothing to score the probe on")
    test_mu = encode(model, test.images)[0].numpy()  # (N_test, D)
    d = test_mu.shape[1]
    pca = _pixel_pca(train.images, min(d, len(train_y), math.prod(train.images.shape[1:])), seed)
    n_max = min(max(counts), len(train_y))
    fitted = {}  # (n, repeat) → (latent, pixel, pca) classifiers; test accuracies below
    for r in range(repeats):
        order = balanced_order(train_y, seed + r)[:n_max]  # nested draws: each n is a prefix
        picked = as_tensor(train.images[torch.from_numpy(order)])
        mu = encode(model, picked)[0].numpy()  # (n_max, D)
        px = picked.flatten(1).numpy()
        pc = pca.transform(px)
        for n in counts:
            y = train_y[order[:n]]
            fitted[n, r] = (_classifier(mu[:n], y, standardize=True), _classifier(px[:n], y),
                            _classifier(pc[:n], y))
    correct = {key: np.zeros(3) for key in fitted}
    start = 0
    for px in _pixel_batches(test.images):
        y, pc, mu = test_y[start:start + len(px)], pca.transform(px), test_mu[start:start + len(px)]
        for key, (latent, pixel, comp) in fitted.items():
            correct[key] += [(latent.predict(mu) == y).sum(), (pixel.predict(px) == y).sum(),
                             (comp.predict(pc) == y).sum()]
        start += len(px)
    labels = {}
    for n in counts:
        latent, pixel, pca_acc = np.mean([correct[n, r] / len(test_y) for r in range(repeats)], axis=0)
        labels[str(n)] = {"latent_acc": float(latent), "pixel_acc": float(pixel), "pca_acc": float(pca_acc),
                          "n_train": min(n, len(train_y))}
    return {"labels": labels, "n_test": len(test_y), "latent_dim": d}
