"""Per-image anomaly scores from a trained VAE, and how well they separate normal from anomalous.

Every score is a negative log-likelihood-like quantity in nats per image: higher = more anomalous.

- "nelbo": the negative ELBO, one posterior sample per image (Kingma & Welling 2014), KL analytic.
- "recon": −log p(x | z = μ), the reconstruction at the posterior mean (no sampling).
- "iw":    the importance-weighted estimate of −log p(x) with k samples (Burda et al. 2016), an
           upper bound on −log p(x) that tightens as k grows; k = 1 is a single-sample nELBO.

Scores use the model's own likelihood (`model.config.likelihood_name`), prior and KL: each is computed
from `vae_core.losses.elbo_terms`, the terms training and evaluation use. Models trained on binarized
data are scored on the images exactly as given: pass binarized images (for example
`vae_core.evaluate.binarize_fixed(images)`), as those are what the likelihood describes.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from vae_core.errors import VAEError
from vae_core.latent import model_device
from vae_core.losses import elbo_terms

SCORES = ("nelbo", "recon", "iw")
IW_DECODES_PER_PASS = 6400  # images decoded at once by iw_nll: 64 images x 100 samples


def _check_images(model, images: torch.Tensor) -> torch.Tensor:
    """Images (N, C, H, W) of the model's shape: a tensor, or streamed (`LazyImages`, scored batch by
    batch as it is decoded)."""
    from vae_core.streaming import LazyImages

    shape = tuple(model.image_shape)
    known = isinstance(images, (torch.Tensor, LazyImages))
    if not known or len(images.shape) != 4 or tuple(images.shape[1:]) != shape:
        got = tuple(images.shape) if known else type(images).__name__
        raise VAEError(f"images must be (N, {', '.join(map(str, shape))}) for this model (got {got})")
    if len(images) == 0:
        raise VAEError("no images to score")
    return images


def _check_positive(name: str, value: int) -> None:
    if value < 1:
        raise VAEError(f"{name} must be >= 1 (got {value})")


@torch.no_grad()
def iw_nll(model, images: torch.Tensor, k: int = 1000, *, batch_size: int = 64,
           seed: int = 0) -> torch.Tensor:
    """Importance-weighted estimate of −log p(x) per image (N,), float64 on the CPU, in nats:

        −log (1/k) Σ_i p(x|z_i) p(z_i) / q(z_i|x),   z_i ~ q(z|x)   (Burda et al. 2016, eq. 8)

    Its expectation is ≥ −log p(x) and never above the negative ELBO; k = 1 is a one-sample nELBO.
    Images go through in batches of `batch_size` and their k samples in chunks, so at most
    `IW_DECODES_PER_PASS` images are decoded at once. Noise comes from a generator seeded with
    `seed` on the model's device: same inputs and batch size, same numbers. Binarized-data models
    expect already-binarized `images`.
    """
    _check_positive("k (importance samples)", k)
    _check_positive("batch_size", batch_size)
    images = _check_images(model, images)
    dev = model_device(model)
    g = torch.Generator(device=dev).manual_seed(seed)
    per_pass = max(1, min(k, IW_DECODES_PER_PASS // batch_size))
    out = []
    for chunk in images.split(batch_size):
        x = chunk.to(dev)
        posterior = model.encode(x).float()  # over (B, D)
        log_w = []
        for start in range(0, k, per_pass):
            s = min(per_pass, k - start)
            z = posterior.rsample(g, (s,))  # (s, B, D)
            logits = model.decode(z.flatten(0, 1)).unflatten(0, (s, -1))  # (s, B, C, H, W)
            log_w.append(elbo_terms(model, x, (logits, posterior, z), importance=True).log_weight)  # (s, B)
        log_w = torch.cat(log_w).double()  # (k, B)
        out.append((math.log(k) - torch.logsumexp(log_w, dim=0)).cpu())
    return torch.cat(out)


@torch.no_grad()
def _nelbo(model, images: torch.Tensor, batch_size: int, seed: int) -> torch.Tensor:
    """One-sample negative ELBO per image (N,): the per-image form of `evaluate`'s nelbo."""
    dev = model_device(model)
    g = torch.Generator(device=dev).manual_seed(seed)
    out = []
    for chunk in images.split(batch_size):
        x = chunk.to(dev)
        out.append(elbo_terms(model, x, model(x, g)).nelbo.double().cpu())
    return torch.cat(out)


@torch.no_grad()
def _recon_at_mean(model, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    """−log p(x | z = μ) per image (N,)."""
    dev = model_device(model)
    out = []
    for chunk in images.split(batch_size):
        x = chunk.to(dev)
        posterior = model.encode(x)
        z = posterior.mean
        out.append(elbo_terms(model, x, (model.decode(z), posterior, z)).recon.double().cpu())
    return torch.cat(out)


def anomaly_scores(model, images: torch.Tensor, score: str = "nelbo", *, k: int = 64,
                   batch_size: int = 256, seed: int = 0) -> np.ndarray:
    """One anomaly score per image (N,) float64, in nats; higher = more anomalous.

    `score` is one of SCORES (see the module docstring); `k` is the number of importance samples
    for "iw" (ignored otherwise). Sampling scores use a generator seeded with `seed`, so the same
    images score the same every time.
    """
    if score not in SCORES:
        raise VAEError(f"unknown anomaly score {score!r}; choose one of: {', '.join(SCORES)}")
    _check_positive("k (importance samples)", k)
    _check_positive("batch_size", batch_size)
    images = _check_images(model, images)
    if score == "nelbo":
        values = _nelbo(model, images, batch_size, seed)
    elif score == "recon":
        values = _recon_at_mean(model, images, batch_size)
    else:
        values = iw_nll(model, images, k, batch_size=batch_size, seed=seed)
    return values.numpy().astype(np.float64)


def _labelled(scores_normal, scores_anomalous) -> tuple[np.ndarray, np.ndarray]:
    normal = np.asarray(scores_normal, dtype=np.float64).ravel()
    anomalous = np.asarray(scores_anomalous, dtype=np.float64).ravel()
    if normal.size == 0 or anomalous.size == 0:
        raise VAEError("a ROC curve needs at least one normal and one anomalous score")
    scores = np.concatenate([normal, anomalous])
    if not np.isfinite(scores).all():
        raise VAEError("scores contain NaN or infinite values")
    labels = np.concatenate([np.zeros(normal.size), np.ones(anomalous.size)])  # anomalous = positive
    return labels, scores


def auroc(scores_normal, scores_anomalous) -> float:
    """Area under the ROC curve, anomalous as the positive class: 1.0 when every anomalous image
    scores above every normal one, 0.5 for chance, 0.0 when the order is exactly reversed."""
    from sklearn.metrics import roc_auc_score  # scikit-learn takes a second to import: only when used

    return float(roc_auc_score(*_labelled(scores_normal, scores_anomalous)))


def class_aurocs(scores, labels) -> dict[int, float]:
    """For each class c with images on both sides: the AUROC of "not c" against c alone as normal.

    On a model trained on every class these say what its score tracks, not how well it detects: a
    class far above 0.5 costs the model little to reconstruct (e.g. thin 1s under a Bernoulli), one
    below 0.5 costs it more than the rest (round, inky 0s), so there it sits below chance."""
    scores, labels = np.asarray(scores, dtype=np.float64).ravel(), np.asarray(labels).ravel()
    if len(scores) != len(labels):
        raise VAEError(f"{len(scores)} scores but {len(labels)} labels")
    out = {}
    for c in np.unique(labels).tolist():
        normal = labels == c
        if normal.any() and not normal.all():
            out[int(c)] = auroc(scores[normal], scores[~normal])
    return out


def roc_curve_points(scores_normal, scores_anomalous) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates (fpr, tpr) along the ROC curve, from (0, 0) to (1, 1)."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(*_labelled(scores_normal, scores_anomalous))
    return fpr, tpr


def percentile_of(score: float, reference: np.ndarray) -> float:
    """Share of `reference` scores ≤ `score`, in percent [0, 100]: where one image ranks among
    normal ones (99 = more anomalous than 99% of them)."""
    reference = np.asarray(reference, dtype=np.float64).ravel()
    if reference.size == 0:
        raise VAEError("no reference scores to rank against")
    if math.isnan(score):
        raise VAEError("score is NaN")
    return float(100.0 * np.mean(reference <= score))


def top_k(scores, k: int) -> np.ndarray:
    """Indices of the k highest scores, most anomalous first (ties keep their original order);
    all indices when k exceeds the number of scores."""
    _check_positive("k", k)
    scores = np.asarray(scores, dtype=np.float64).ravel()
    return np.argsort(-scores, kind="stable")[:k]


def checkpoint_scores(ckpt, images: torch.Tensor, score: str = "nelbo", **options) -> np.ndarray:
    """`anomaly_scores` for a checkpoint's model on images as its likelihood sees them: a model
    trained on dynamically binarized data is scored on the fixed binarization, as `evaluate` does."""
    from vae_core.evaluate import as_scored

    return anomaly_scores(ckpt.model, as_scored(ckpt.config, images), score, **options)


@torch.no_grad()
def pixel_cost_maps(model, images: torch.Tensor, *, batch_size: int = 256, seed: int = 0) -> torch.Tensor:
    """Where each image is expensive: −log p(x|z) per pixel (N, C, H, W) float32 on the CPU, in nats, at
    one draw of z ~ q(z|x) (a generator seeded with `seed`): `elbo_terms(..., recon_map=True)`'s map,
    the terms the scores and training use (each image's map sums to its reconstruction term)."""
    _check_positive("batch_size", batch_size)
    images = _check_images(model, images)
    dev = model_device(model)
    g = torch.Generator(device=dev).manual_seed(seed)
    out = []
    for chunk in images.split(batch_size):
        x = chunk.to(dev)
        out.append(elbo_terms(model, x, model(x, g), recon_map=True).recon_map.float().cpu())
    return torch.cat(out)


def checkpoint_pixel_maps(ckpt, images: torch.Tensor, **options) -> torch.Tensor:
    """`pixel_cost_maps` for a checkpoint's model on images as its likelihood sees them (the fixed
    binarization for a model trained on binarized data, as `checkpoint_scores`)."""
    from vae_core.evaluate import as_scored

    return pixel_cost_maps(ckpt.model, as_scored(ckpt.config, images), **options)


CSV_COLUMNS = ("path", "index", "score", "percentile", "label")


def flagged_csv(indices, scores, *, paths=(), labels=None, class_names=(), reference=None) -> str:
    """The flagged images as CSV text, one row per index in `indices` (most anomalous first, as given):
    path (the image's file, for a folder dataset; empty otherwise), index (its position in the split),
    score (nats), percentile (its rank among `reference` scores, default all `scores`: 99 = above 99% of
    them) and label (its class name, or number; empty when unlabelled)."""
    import csv
    import io

    scores = np.asarray(scores, dtype=np.float64).ravel()
    reference = scores if reference is None else np.asarray(reference, dtype=np.float64).ravel()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for i in np.asarray(indices, dtype=np.int64).ravel():
        if not 0 <= i < len(scores):
            raise VAEError(f"index {i} is outside the {len(scores)} scored images")
        label = ""
        if labels is not None:
            c = int(labels[i])
            label = class_names[c] if c < len(class_names) else str(c)
        writer.writerow([paths[i] if len(paths) else "", int(i), f"{scores[i]:.4f}",
                         f"{percentile_of(float(scores[i]), reference):.2f}", label])
    return buffer.getvalue()


def score_folder(ckpt, folder, score: str = "nelbo", *, roots=None, **options):
    """Every image of a folder (subfolders as labels, as the folder dataset reads it), as the checkpoint's
    model sees images (its size, channels and background for transparent pixels), scored by
    `checkpoint_scores`: (the folder's DataBundle, whose `paths` name each image's file and whose
    `spec["warnings"]` say what was skipped or looks blank, and its scores (N,) in nats). The caller
    confines the folder to the allowed roots (`vae_core.hosting.confine_path`) and passes them as `roots`,
    which its files must lie in too (a link out of them is skipped)."""
    from vae_core.data import load_dataset

    channels, size, _ = ckpt.image_shape
    bundle = load_dataset(f"folder:{folder}", image_size=size, channels=channels, download=False,
                          background=ckpt.config.background, roots=roots)
    return bundle, checkpoint_scores(ckpt, bundle.images, score, **options)  # a streamed folder, batch by batch
