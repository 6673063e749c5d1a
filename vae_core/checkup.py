"""A model's check-up (issue 35, point 3): is this VAE healthy, and if not, which of the tutorial mistakes
shows from outside? For any model of this library, imported ones first (`python -m vae_core checkup
CKPT --json`, and the Check-up page).

What it measures, on the dataset's test split, in nats per example with the likelihood named:

- the test nELBO and its parts (`vae_core.evaluate`), the KL per dimension, the active units and
  whether the posterior has collapsed;
- the aggregate posterior q(z) = mean over images of q(z|x) against the prior N(0, I): its mean and
  variance per dimension (1 and 1 when the codes fill the prior), and its *holes*: the share of prior
  samples that lie farther from every test image's code than 95 % of codes lie from their nearest
  neighbour (about 5 % when the codes fill the prior; the more, the more prior samples decode to
  nothing the model learned);
- the reconstruction cost of the data's mean image, the bar a model that encodes nothing reaches.

Each check of `CHECKS` looks for one mistake from outside the author's code and says its evidence
whether or not it finds it; a finding also says what to change in that code:

- probabilities where logits are declared: every decoder output lies in [0, 1] (a sigmoid applied
  twice: every image a washed-out grey);
- inputs on another scale than training's: the model reconstructs markedly better when its encoder is
  fed x × 255, (x − 0.1307) / 0.3081 (MNIST's usual normalisation) or 2x − 1 than the [0, 1] images;
- a reconstruction term averaged over pixels instead of summed: an implicit β of one per pixel,
  seen as a collapsed posterior (almost no KL) whose reconstructions are no better than the mean image;
- σ² read as σ (or log σ read as log σ²): the ELBO is better when the encoder's second output is read
  as log σ than as the log σ² it is declared as.

The reverse of the first (logits where probabilities are declared) needs a declaration of
probabilities, which only an ONNX import's manifest can make; a model of this library always gives logits.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from vae_core.evaluate import EVAL_SEED, as_scored, evaluate
from vae_core.gaussian import DiagonalGaussian
from vae_core.latent import model_device
from vae_core.losses import LIKELIHOOD_SPECS

MAX_IMAGES = 1000  # test images the checks look at (the nELBO uses the whole test split)
HOLE_QUANTILE = 0.95  # a prior sample is in a hole when farther from every code than this share of codes from theirs
SCALES = {  # how else a model's author may have fed it its images -> the transform of [0, 1] images
    "x × 255 (pixels 0 to 255)": lambda x: x * 255.0,
    "(x − 0.1307) / 0.3081 (MNIST normalised)": lambda x: (x - 0.1307) / 0.3081,
    "2x − 1 (pixels −1 to 1)": lambda x: 2.0 * x - 1.0,
}


@dataclass(frozen=True)
class Check:
    title: str  # the mistake, as a finding names it
    run: Callable[..., tuple[bool, str]]  # (model, x, q(z|x), report) -> (found, the evidence in one sentence)
    advice: str  # what to change in the author's code when it is found


def _recon(model, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """−log p(x|z) per image (N,), under the model's own likelihood."""
    return LIKELIHOOD_SPECS[model.config.likelihood].recon(model, logits.float(), x).flatten(1).sum(1)


@torch.no_grad()
def _recon_at(model, x: torch.Tensor, mu: torch.Tensor) -> float:
    """Mean reconstruction cost of x decoded from the codes `mu`."""
    return float(_recon(model, model.decode(mu), x).mean())


def _probabilities_as_logits(model, x: torch.Tensor, posterior, report: dict) -> tuple[bool, str]:
    with torch.no_grad():
        logits = model.decode(posterior.mean).float()
    low, high = float(logits.min()), float(logits.max())
    inside = float(((logits >= 0) & (logits <= 1)).float().mean())
    found = inside > 0.999
    return found, (f"{100 * inside:.1f} % of the decoder's outputs lie in [0, 1] (they run from {low:.2f} to "
                   f"{high:.2f}); read as logits, the image means sigmoid(·) lie between "
                   f"{1 / (1 + math.exp(-max(low, -50))):.2f} and {1 / (1 + math.exp(-min(high, 50))):.2f}")


def _scale(model, x: torch.Tensor, posterior, report: dict) -> tuple[bool, str]:
    """Found when another scale reconstructs markedly better than [0, 1] and well in itself (better than the
    mean image by 10 %): a collapsed model fed a larger input can do a little better, and no more."""
    own, bar = _recon_at(model, x, posterior.mean), report["mean_image_recon"]
    with torch.no_grad():
        others = {name: _recon_at(model, x, model.encode(scale(x)).mean) for name, scale in SCALES.items()}
    best = min(others, key=others.get)
    found = others[best] < 0.9 * own and others[best] < 0.9 * bar and own - others[best] > 5.0
    return found, (f"reconstruction {own:.1f} nats from the [0, 1] images; fed as {best}, {others[best]:.1f} "
                   f"nats (the data's mean image: {bar:.1f})" + ("" if found else "; no scale does markedly better"))


def _mean_not_sum(model, x: torch.Tensor, posterior, report: dict) -> tuple[bool, str]:
    if report["checks"]["input-scale"]["found"]:  # fed on the wrong scale, any model looks collapsed
        return False, "not judged: the inputs' scale (above) explains a posterior that passes little"
    kl, recon, bar = report["test"]["kl"], report["test"]["recon"], report["mean_image_recon"]
    gained = 1.0 - recon / bar if bar > 0 else 0.0
    found = kl < 5.0 and gained < 0.2
    return found, (f"KL {kl:.2f} nats over {model.latent_dim} dimensions ({report['active_units']} active); "
                   f"reconstruction {recon:.1f} nats against {bar:.1f} for the data's mean image "
                   f"({100 * gained:.0f} % better)")


def _variance_as_sigma(model, x: torch.Tensor, posterior, report: dict, draws: int = 4) -> tuple[bool, str]:
    """The nELBO with the encoder's second output h read as declared (σ = exp(h/2)) and as log σ (σ = exp(h))."""
    g = torch.Generator(device=model_device(model)).manual_seed(EVAL_SEED)
    with torch.no_grad():
        posterior = posterior.float()
        nelbo = {}
        for reading, logvar in (("declared", posterior.logvar), ("log σ", 2 * posterior.logvar)):
            q = DiagonalGaussian(posterior.mu, logvar)
            z = q.rsample(g, (draws,))
            recon = _recon(model, model.decode(z.flatten(0, 1)), x.repeat(draws, 1, 1, 1)).mean()
            nelbo[reading] = float(recon + model.kl_per_dim(q).sum(-1).mean())
    better = nelbo["declared"] - nelbo["log σ"]
    found = better > max(1.0, 0.01 * abs(nelbo["declared"]))
    return found, (f"nELBO {nelbo['declared']:.1f} nats reading the encoder's second output as log σ² (as "
                   f"declared), {nelbo['log σ']:.1f} reading it as log σ")


CHECKS: dict[str, Check] = {  # in order: a check may read the findings of those before it
    "probabilities-as-logits": Check(
        "The decoder gives probabilities where logits are declared", _probabilities_as_logits,
        "Export (or import) the decoder's last layer before its sigmoid, so its outputs are logits; or declare "
        "its outputs as probabilities in the import's manifest."),
    "input-scale": Check(
        "Inputs on another scale than training's", _scale,
        "Feed the model its images as it was trained on them (or retrain it on [0, 1] images); in an import's "
        "manifest, declare the value range it expects."),
    "mean-not-sum": Check(
        "Reconstruction averaged over pixels instead of summed", _mean_not_sum,
        "Sum the reconstruction term over pixels (e.g. binary_cross_entropy(..., reduction='sum') / batch); a "
        "mean over pixels weights the KL as a β of one per pixel, which collapses the posterior. If the "
        "model's β is large on purpose, lower it."),
    "variance-as-sigma": Check(
        "σ² read as σ (the log-variance used as a log standard deviation)", _variance_as_sigma,
        "Sample z = μ + exp(0.5 · logvar) · ε, and use the same logvar in the KL: "
        "0.5 · Σ(μ² + exp(logvar) − 1 − logvar)."),
}


def _holes(mu: torch.Tensor, active: torch.Tensor, seed: int = 0) -> float:
    """The share of prior samples farther from every code than HOLE_QUANTILE of codes from their nearest
    neighbour, in the active dimensions (about 1 − HOLE_QUANTILE when the codes fill the prior)."""
    codes = mu[:, active]
    if codes.shape[1] == 0 or len(codes) < 3:
        return float("nan")
    between = torch.cdist(codes, codes)
    between.fill_diagonal_(float("inf"))
    reach = torch.quantile(between.min(1).values, HOLE_QUANTILE)
    prior = torch.randn(len(codes), codes.shape[1], generator=torch.Generator().manual_seed(seed))
    return float((torch.cdist(prior, codes).min(1).values > reach).float().mean())


@torch.no_grad()
def checkup(model, bundle, *, max_images: int = MAX_IMAGES) -> dict:
    """The check-up of `model` on `bundle`'s test split: figures, the aggregate posterior, and each
    check of CHECKS with its evidence ("found": whether the mistake shows). JSON-ready."""
    model.eval()
    test = as_scored(model.config, bundle.split("test").images)
    scored = evaluate(model, test)
    x = test[:max_images].to(model_device(model))
    posterior = model.encode(x)  # once: the checks below read it
    mu, logvar = posterior.mu.float().cpu(), posterior.logvar.float().cpu()
    kl_dims = torch.tensor(scored["kl_per_dim"])
    active = kl_dims > 0.01
    train_mean = as_scored(model.config, bundle.split("train").images).mean(0, keepdim=True).clamp(1e-4, 1 - 1e-4)
    mean_logits = torch.logit(train_mean).to(x.device).expand_as(x)
    report = {
        "dataset": model.config.dataset, "n_test": scored["n"], "likelihood": scored["likelihood"],
        "test": {"nelbo": scored["nelbo"], "recon": scored["recon"], "kl": scored["kl"]},
        "kl_per_dim": scored["kl_per_dim"], "active_units": scored["active_units"],
        "collapsed": scored["active_units"] == 0,
        "mean_image_recon": float(_recon(model, mean_logits, x).mean()),
        "aggregate_posterior": {
            "mean": [float(v) for v in mu.mean(0)],
            "variance": [float(v) for v in mu.var(0) + logvar.exp().mean(0)],
            "hole_fraction": _holes(mu, active), "hole_fraction_if_filled": round(1 - HOLE_QUANTILE, 3),
        },
    }
    report["checks"] = {}
    for name, check in CHECKS.items():
        found, evidence = check.run(model, x, posterior, report)
        report["checks"][name] = {"title": check.title, "found": bool(found), "evidence": evidence,
                                  **({"advice": check.advice} if found else {})}
    report["findings"] = [name for name, c in report["checks"].items() if c["found"]]
    return report
