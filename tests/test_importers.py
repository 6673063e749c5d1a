"""Issue 35, first slice: a VAE trained elsewhere becomes a checkpoint of this library. The pytorch/examples
VAE's state_dict (the tutorial's own class, benchmarks/reference_vae.py) is recognised by its layers,
read without running code, and the imported model computes exactly what the tutorial's does; bad files
are one line each."""

import json

import pytest
import torch

from benchmarks.reference_vae import VAE as TutorialVAE
from vae_core import VAEError, load_checkpoint
from vae_core.cli import main
from vae_core.importers import import_model, read_weights, recognised


@pytest.fixture(scope="module")
def tutorial_weights(tmp_path_factory):
    torch.manual_seed(3)
    model = TutorialVAE()
    with torch.no_grad():  # a model that has learned something: the biases and weights off their init
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    path = tmp_path_factory.mktemp("tutorial") / "vae.pth"
    torch.save(model.state_dict(), path)
    return model.eval(), path


def test_the_tutorials_state_dict_imports_and_computes_what_the_tutorial_does(tutorial_weights, tmp_path, mnist5k):
    tutorial, path = tutorial_weights
    done = import_model(path, "mnist5k", tmp_path / "imported.pt", download=False)
    assert done["importer"] == "pytorch-examples" and done["config"]["latent_dim"] == 20
    ckpt = load_checkpoint(tmp_path / "imported.pt")
    assert ckpt.config.hidden_sizes == (400,) and ckpt.config.likelihood == "bernoulli"
    assert ckpt.config.extra["imported_from"] == "pytorch/examples VAE state_dict"
    x = mnist5k.split("test").images[:16]
    with torch.no_grad():
        mu, logvar = tutorial.encode(x.view(-1, 784))
        posterior = ckpt.model.encode(x)
        assert torch.allclose(posterior.mean, mu, atol=1e-5)
        assert torch.allclose(ckpt.model.decode(mu).sigmoid().view(16, -1), tutorial.decode(mu), atol=1e-5)
        # the tutorial's loss (BCE summed over pixels + the analytic KL) at z = μ is ours, per example
        bce = torch.nn.functional.binary_cross_entropy(tutorial.decode(mu), x.view(-1, 784), reduction="sum") / 16
        ours = torch.nn.functional.binary_cross_entropy_with_logits(ckpt.model.decode(mu), x, reduction="sum") / 16
    assert float(ours) == pytest.approx(float(bce), rel=1e-4)
    assert done["likelihood"].startswith("Bernoulli") and done["test_nelbo"] == pytest.approx(
        ckpt.metrics["test_nelbo"]) and done["test_nelbo"] > 0


def test_the_command_line_writes_it_into_the_library_and_says_the_nelbo(tutorial_weights, checkpoint_dir, capsys):
    _, path = tutorial_weights
    assert main(["import", str(path), "--dataset", "mnist5k", "--name", "tutorial-vae", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["importer"] == "pytorch-examples" and out["latent_dim"] == 20 and out["test_nelbo"] > 0
    assert (checkpoint_dir / "tutorial-vae.pt").exists()
    assert main(["import", str(path), "--dataset", "mnist5k", "--name", "tutorial-vae"]) == 2  # never overwrites
    assert "exists already" in capsys.readouterr().err


class Whole(torch.nn.Module):  # a model pickled whole: its class is code, which weights_only never runs
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(784, 4)


@pytest.mark.parametrize("make, words", [
    (lambda p: torch.save(Whole(), p), "without running its code"),
    (lambda p: p.write_bytes(b"not a torch file"), "without running its code"),
    (lambda p: torch.save({"fc1.weight": torch.zeros(400, 784)}, p), "not a model this can import"),
    (lambda p: torch.save([torch.zeros(3)], p), "does not hold a state_dict"),
    (lambda p: torch.save({k: v for k, v in TutorialVAE().state_dict().items()} | {"fc4.bias": torch.zeros(10)}, p),
     "shapes do not chain"),
])
def test_a_file_that_is_not_the_tutorials_weights_is_one_line(tmp_path, make, words):
    path = tmp_path / "model.pth"
    make(path)
    with pytest.raises(VAEError, match=words) as e:
        recognised(read_weights(path))
    assert "\n" not in str(e.value)


def test_a_dataset_of_other_images_a_missing_file_and_a_long_name_are_one_line(tutorial_weights, tmp_path, capsys):
    _, path = tutorial_weights
    with pytest.raises(VAEError, match="reads 28 × 28 grey images"):
        import_model(path, "sprites", tmp_path / "x.pt", download=False)
    assert main(["import", str(tmp_path / "missing.pth"), "--dataset", "mnist5k", "--out", str(tmp_path / "y.pt")]) == 2
    assert "cannot read missing.pth" in capsys.readouterr().err
    assert main(["import", str(path), "--dataset", "mnist5k", "--name", "n" * 5000]) == 2
    assert "--name takes" in capsys.readouterr().err and not (tmp_path / "y.pt").exists()


def test_an_imported_model_opens_on_every_page(tutorial_weights, checkpoint_dir):
    """Issue 35 point 2's start: every page opens on it (no training history, no film: said, never a
    traceback); the pages' browser parts are the browser tests' (AppTest runs no component)."""
    from .test_app import HEADERS, open_app

    _, path = tutorial_weights
    import_model(path, "mnist5k", checkpoint_dir / "tutorial-vae.pt", download=False)
    at = open_app(checkpoint_dir)
    for page in HEADERS:
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, (page, [e.value for e in at.exception])
        assert at.header[0].value == HEADERS[page] and not at.error, (page, [e.value for e in at.error])


# --- pythae's saved folder (issue 35, point 1's second source; point 4's honest figures)

def _pythae_trained(folder, reconstruction_loss: str, images: torch.Tensor, *, beta: float | None = None):
    """A small pythae VAE (its own classes, its default networks) trained a few epochs by its own loss on
    `images`, saved by its own `save`: the folder a practitioner has."""
    from pythae.models import VAE, BetaVAE, BetaVAEConfig, VAEConfig

    torch.manual_seed(0)
    if beta is None:
        model = VAE(VAEConfig(input_dim=(1, 28, 28), latent_dim=6, reconstruction_loss=reconstruction_loss))
    else:
        model = BetaVAE(BetaVAEConfig(input_dim=(1, 28, 28), latent_dim=6, reconstruction_loss=reconstruction_loss,
                                      beta=beta))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(3):
        for batch in images[torch.randperm(len(images))].split(100):
            loss = model({"data": batch}).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.save(str(folder))
    return model.eval()


def _losses_at_the_mean(pythae_model, ours, x: torch.Tensor) -> tuple[float, float]:
    """(pythae's own loss_function, this library's elbo_terms) per example on `x`, both at z = μ."""
    from vae_core.losses import elbo_terms

    with torch.no_grad():
        encoded = pythae_model.encoder(x)
        mu, log_var = encoded.embedding, encoded.log_covariance
        theirs, _, _ = pythae_model.loss_function(pythae_model.decoder(mu)["reconstruction"], x, mu, log_var, mu)
        posterior = ours.encode(x)
        terms = elbo_terms(ours, x, (ours.decode(posterior.mean), posterior, posterior.mean))
    return float(theirs), float((terms.recon + terms.kl.sum(-1)).mean())


@pytest.mark.parametrize("reconstruction_loss", ["bce", "mse"])
def test_a_pythae_folder_imports_and_its_loss_equals_pythaes_own(tmp_path, mnist5k, reconstruction_loss):
    from vae_core.importers.pythae_folder import mse_constant

    train, test = mnist5k.split("train").images[:2000], mnist5k.split("test").images
    source = _pythae_trained(tmp_path / "my-vae", reconstruction_loss, train)
    done = import_model(tmp_path / "my-vae", "mnist5k", tmp_path / "imported.pt", download=False)
    assert done["importer"] == "pythae" and done["config"]["latent_dim"] == 6
    ckpt = load_checkpoint(tmp_path / "imported.pt")
    assert ckpt.config.hidden_sizes == (512,)
    assert ckpt.config.likelihood == {"bce": "bernoulli", "mse": "gaussian"}[reconstruction_loss]
    theirs, ours = _losses_at_the_mean(source, ckpt.model.eval(), test)
    constant = mse_constant(784) if reconstruction_loss == "mse" else 0.0  # pythae's mse drops it
    assert ours == pytest.approx(theirs + constant, abs=0.05), (ours, theirs, constant)
    assert 0 < done["test_nelbo"] and abs(done["test_nelbo"] - ours) < 0.2 * abs(ours)  # one draw, not the mean


def test_a_pythae_beta_vae_keeps_its_beta_and_custom_networks_are_refused(tmp_path, mnist5k):
    _pythae_trained(tmp_path / "beta", "bce", mnist5k.split("train").images[:200], beta=4.0)
    done = import_model(tmp_path / "beta", "mnist5k", tmp_path / "b.pt", download=False)
    assert done["config"]["beta"] == 4.0 and done["importer"] == "pythae"
    (tmp_path / "beta" / "encoder.pkl").write_bytes(b"\x80\x04 pickled code")  # as pythae saves a custom network
    with pytest.raises(VAEError, match="encoder.pkl: custom networks saved as pickled code") as e:
        import_model(tmp_path / "beta", "mnist5k", tmp_path / "c.pt", download=False)
    assert "\n" not in str(e.value) and not (tmp_path / "c.pt").exists()


@pytest.mark.parametrize("config, words", [
    ({"name": "VQVAEConfig", "input_dim": [1, 28, 28], "latent_dim": 6}, "family 'VQVAEConfig' is not one"),
    ({"name": "VAEConfig", "input_dim": [1, 28, 28], "latent_dim": 7}, "shapes do not match its config"),
    ({"name": "VAEConfig", "input_dim": "big", "latent_dim": 6}, "no usable input_dim"),
    ("[1, 2]", "not a JSON object"),
    ("{", "cannot read beta/model_config.json"),
])
def test_a_pythae_folder_that_does_not_fit_is_one_line(tmp_path, mnist5k, config, words):
    _pythae_trained(tmp_path / "beta", "bce", mnist5k.split("train").images[:100])
    text = config if isinstance(config, str) else json.dumps(config)
    (tmp_path / "beta" / "model_config.json").write_text(text)
    with pytest.raises(VAEError, match=words) as e:
        import_model(tmp_path / "beta", "mnist5k", tmp_path / "x.pt", download=False)
    assert "\n" not in str(e.value)
