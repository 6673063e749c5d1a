"""Issue 35, point 3: the check-up finds the tutorial mistakes from outside, each with its evidence, and
finds none in a healthy model. The healthy model is the pytorch/examples VAE (its own class and loss,
benchmarks/reference_vae.py) trained a few epochs on the shipped MNIST split and imported; the broken
ones are the same tutorial trained with a mean over pixels instead of a sum, and the healthy import with
one thing changed as the mistake would change it (a sigmoid after the decoder, an encoder that expects
0-255 pixels, a head that gives log σ where log σ² is declared)."""

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from benchmarks.reference_vae import VAE as TutorialVAE
from vae_core import load_checkpoint
from vae_core.checkup import CHECKS, checkup
from vae_core.cli import main
from vae_core.importers import import_model

SHIPPED = Path(__file__).resolve().parents[1] / "checkpoints" / "mnist5k-conv-z16.pt"


def _tutorial(images: torch.Tensor, *, mean_over_pixels: bool = False, epochs: int = 4) -> TutorialVAE:
    """The tutorial's training loop; `mean_over_pixels`: its reconstruction term averaged, the mistake."""
    torch.manual_seed(0)
    model = TutorialVAE()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(epochs):
        for x in images[torch.randperm(len(images))].split(100):
            recon, mu, logvar = model(x)
            bce = F.binary_cross_entropy(recon, x.view(-1, 784), reduction="mean" if mean_over_pixels else "sum")
            kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
            optimizer.zero_grad()
            (bce + kld).backward()
            optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def imported(tmp_path_factory, mnist5k):
    """{"healthy": path, "mean": path}: the tutorial trained both ways, imported as checkpoints."""
    folder = tmp_path_factory.mktemp("checkup")
    train = mnist5k.split("train").images
    paths = {}
    for name, mean in (("healthy", False), ("mean", True)):
        torch.save(_tutorial(train, mean_over_pixels=mean).state_dict(), folder / f"{name}.pth")
        paths[name] = folder / f"{name}.pt"
        import_model(folder / f"{name}.pth", "mnist5k", paths[name], download=False)
    return paths


def _found(model, bundle) -> list[str]:
    return checkup(model, bundle)["findings"]


def test_a_healthy_model_has_no_findings_and_its_figures(imported, mnist5k):
    report = checkup(load_checkpoint(imported["healthy"]).model, mnist5k)
    assert report["findings"] == [], {k: c["evidence"] for k, c in report["checks"].items()}
    assert set(report["checks"]) == set(CHECKS) and all(c["evidence"] for c in report["checks"].values())
    assert report["likelihood"].startswith("Bernoulli") and report["n_test"] == 1000
    assert report["test"]["nelbo"] == pytest.approx(report["test"]["recon"] + report["test"]["kl"])
    assert report["test"]["recon"] < 0.8 * report["mean_image_recon"] and report["active_units"] >= 3
    assert len(report["aggregate_posterior"]["variance"]) == 20
    assert 0 <= report["aggregate_posterior"]["hole_fraction"] <= 1


def test_a_mean_over_pixels_is_found_with_its_evidence_and_advice(imported, mnist5k):
    report = checkup(load_checkpoint(imported["mean"]).model, mnist5k)
    assert "mean-not-sum" in report["findings"]
    check = report["checks"]["mean-not-sum"]
    assert "KL" in check["evidence"] and "mean image" in check["evidence"] and "reduction='sum'" in check["advice"]


def test_probabilities_as_logits_are_found(imported, mnist5k):
    model = load_checkpoint(imported["healthy"]).model
    model.decoder = torch.nn.Sequential(model.decoder, torch.nn.Sigmoid())  # the decoder ends in a sigmoid
    assert "probabilities-as-logits" in _found(model, mnist5k)


def test_inputs_on_another_scale_are_found(imported, mnist5k):
    model = load_checkpoint(imported["healthy"]).model

    class Expects255(torch.nn.Module):  # the encoder of a model trained on 0-255 pixels
        def __init__(self, encoder):
            super().__init__()
            self.encoder = encoder

        def forward(self, x):
            return self.encoder(x / 255.0)

    model.encoder = Expects255(model.encoder)
    report = checkup(model, mnist5k)
    assert report["findings"] == ["input-scale"] and "× 255" in report["checks"]["input-scale"]["evidence"]
    assert report["checks"]["mean-not-sum"]["evidence"].startswith("not judged")


def test_a_log_sigma_declared_as_a_log_variance_is_found(mnist5k):
    """On the shipped conv model (well trained: its posteriors are narrow, where the mistake shows most;
    a few tutorial epochs leave σ near 1, where reading it either way costs under a nat)."""
    model = load_checkpoint(SHIPPED).model
    assert "variance-as-sigma" not in _found(model, mnist5k)
    d = model.latent_dim
    with torch.no_grad():  # the head's log σ² rows give log σ: what the model computes, read as declared
        model.encoder.head.weight[d:] /= 2
        model.encoder.head.bias[d:] /= 2
    report = checkup(model, mnist5k)
    assert report["findings"] == ["variance-as-sigma"], report["findings"]
    assert "exp(0.5 · logvar)" in report["checks"]["variance-as-sigma"]["advice"]


def test_the_command_line_prints_the_check_up_as_json(imported, capsys):
    assert main(["checkup", str(imported["mean"]), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["findings"] == ["mean-not-sum"] and out["units"] == "nats per example"
    assert out["checks"]["mean-not-sum"]["advice"]
    assert main(["checkup", str(imported["healthy"])]) == 0
    text = capsys.readouterr().out
    assert "FOUND" not in text and "test nELBO" in text and "holes" in text
