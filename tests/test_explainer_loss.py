"""One loss, also in the browser (issue 34, point 4): How it works computes the loss in the browser
(`ui/explainer.js`: reconMap, klPerDim), beside the engine's `elbo_terms`. Run in Chromium on a model's
real outputs for fixed inputs, the script's reconstruction, KL per dimension and total equal the
engine's to 1e-4 nats, for each likelihood (the engine in float64, as the browser computes). (A model
trained on binarized data is scored by the engine on one fixed random binarization, which a drawing in
the browser cannot share: there the page binarizes at 0.5 and its loss line says so.)"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from tests.browser import browser_page
from tests.conftest import tiny_config
from tests.test_browser import MISSING, pytestmark  # noqa: F401 - the same skip rule
from ui.explainer import likelihood
from vae_core import load_checkpoint
from vae_core.losses import LIKELIHOOD_SPECS, elbo_terms
from vae_core.train import Trainer

SCRIPT = (Path(__file__).resolve().parents[1] / "ui" / "explainer.js").read_text()
LIKELIHOODS = {  # each likelihood the engine has, as a tiny digits model trains it
    "bernoulli": {},
    "gaussian": {"likelihood": "gaussian"},
    "gaussian-learned-sigma": {"likelihood": "gaussian", "sigma_mode": "global"},
    "gaussian-sigma-per-pixel": {"likelihood": "gaussian", "sigma_mode": "pixel"},
}


@pytest.fixture(scope="module")
def page():
    if MISSING:
        pytest.fail(f"browser test cannot run in CI: {MISSING}")
    with browser_page() as page:
        page.set_content("<!doctype html><title>loss</title>")
        page.add_script_tag(content=SCRIPT)  # top level: constants and functions only
        yield page


def test_every_engine_likelihood_is_checked_here():
    kinds = {tiny_config(**changes).likelihood for changes in LIKELIHOODS.values()}
    assert kinds == set(LIKELIHOOD_SPECS), "a likelihood the browser's loss is not held to"


@pytest.mark.parametrize("name", LIKELIHOODS)
def test_the_browsers_loss_equals_the_engines(page, name, digits, tmp_path):
    config = tiny_config(**LIKELIHOODS[name], epochs=1)
    Trainer(config, bundle=digits, out_path=tmp_path / "m.pt").fit()
    ckpt = load_checkpoint(tmp_path / "m.pt")
    model = ckpt.model.double().eval()
    x = digits.split("test").images[:3].double()
    eps = torch.randn(3, config.latent_dim, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        posterior = model.encode(x)
        z = posterior.mu + torch.exp(0.5 * posterior.logvar) * eps
        logits = model.decode(z)
        terms = elbo_terms(model, x, (logits, posterior, z))
    lik = json.loads(json.dumps(likelihood(ckpt)))  # what the page sends its script
    for i in range(len(x)):
        got = page.evaluate(
            """([x, p, mu, logvar, lik]) => {
                 const per = reconMap(Float64Array.from(x), p, lik), kl = klPerDim(mu, logvar);
                 return {recon: per.reduce((a, b) => a + b, 0), kl};
               }""",
            [x[i].reshape(-1).tolist(), torch.sigmoid(logits[i]).reshape(-1).tolist(),
             posterior.mu[i].tolist(), posterior.logvar[i].tolist(), lik])
        recon, kl = float(terms.recon[i]), terms.kl[i].tolist()
        assert got["recon"] == pytest.approx(recon, abs=1e-4), (name, i)
        assert got["kl"] == pytest.approx(kl, abs=1e-4), (name, i)
        for beta in (0.0, 1.0, 4.0):  # the total the page prints: recon + β · KL
            assert got["recon"] + beta * math.fsum(got["kl"]) == pytest.approx(recon + beta * sum(kl), abs=1e-4)
