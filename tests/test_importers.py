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


# --- an ONNX pair (issue 35, point 1's safest format): any framework's MLP VAE, read as data

def _onnx(module, example, path, inputs, outputs):
    torch.onnx.export(module, (example,), str(path), input_names=inputs, output_names=outputs, opset_version=17,
                      dynamic_axes={n: {0: "n"} for n in inputs + outputs}, dynamo=False)


class _TutorialEncoder(torch.nn.Module):  # x (N, 1, 28, 28) -> mu, logvar: the tutorial's two heads
    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, x):
        return self.vae.encode(x.reshape(-1, 784))


def _pair(folder, tutorial, manifest: dict, *, decoder=None):
    folder.mkdir()
    _onnx(_TutorialEncoder(tutorial), torch.zeros(1, 1, 28, 28), folder / "encoder.onnx", ["x"], ["mu", "logvar"])
    _onnx(decoder or _Decoder(tutorial), torch.zeros(1, 20), folder / "decoder.onnx", ["z"], ["image"])
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


class _Decoder(torch.nn.Module):  # z -> sigmoid(fc4(relu(fc3(z)))): the tutorial's probabilities
    def __init__(self, vae, logits: bool = False):
        super().__init__()
        self.vae, self.logits = vae, logits

    def forward(self, z):
        h = torch.relu(self.vae.fc3(z))
        return self.vae.fc4(h) if self.logits else torch.sigmoid(self.vae.fc4(h))


MANIFEST = {"image_shape": [1, 28, 28], "value_range": [0, 1], "encoder_outputs": ["mu", "logvar"],
            "decoder_output": "probabilities", "likelihood": "bernoulli"}


def test_an_onnx_pair_imports_and_computes_what_onnxruntime_does(tutorial_weights, tmp_path, mnist5k):
    import onnxruntime

    tutorial, _ = tutorial_weights
    folder = _pair(tmp_path / "pair", tutorial, MANIFEST)
    done = import_model(folder, "mnist5k", tmp_path / "onnx.pt", download=False)
    assert done["importer"] == "onnx" and done["config"]["hidden_sizes"] == [400]
    ckpt = load_checkpoint(tmp_path / "onnx.pt")
    x = mnist5k.split("test").images[:32]
    encoder = onnxruntime.InferenceSession(str(folder / "encoder.onnx"))
    decoder = onnxruntime.InferenceSession(str(folder / "decoder.onnx"))
    mu, logvar = encoder.run(["mu", "logvar"], {"x": x.numpy()})
    probabilities = decoder.run(["image"], {"z": mu})[0]
    with torch.no_grad():
        posterior = ckpt.model.encode(x)
        ours = ckpt.model.decode(posterior.mean).sigmoid()
    assert torch.allclose(posterior.mean, torch.from_numpy(mu), atol=1e-5)
    assert torch.allclose(posterior.logvar, torch.from_numpy(logvar), atol=1e-5)
    assert torch.allclose(ours.reshape(32, -1), torch.from_numpy(probabilities).reshape(32, -1), atol=1e-5)
    # the same model as the tutorial's state_dict import: the same test nELBO (the seeded draw alike)
    _, pth = tutorial_weights
    assert import_model(pth, "mnist5k", tmp_path / "pth.pt", download=False)["test_nelbo"] == pytest.approx(
        done["test_nelbo"], abs=1e-3)


def test_an_onnx_pair_of_this_librarys_own_export_reads_its_split_head(tmp_path, models, mnist5k):
    """vae_core.export writes one head sliced into μ and log σ², and a decoder ending in a sigmoid."""
    from vae_core.export import export

    source = load_checkpoint(models["z4"])
    folder = tmp_path / "own"
    folder.mkdir()
    export(source, folder / "encoder.onnx", part="encoder")
    export(source, folder / "decoder.onnx", part="decoder")
    (folder / "manifest.json").write_text(json.dumps(MANIFEST))
    import_model(folder, "mnist5k", tmp_path / "again.pt", download=False)
    again = load_checkpoint(tmp_path / "again.pt")
    assert again.config.hidden_sizes == source.config.hidden_sizes
    for name, value in source.model.state_dict().items():
        assert torch.allclose(again.model.state_dict()[name], value, atol=1e-6), name


def test_a_declared_value_range_is_folded_into_the_first_layer(tutorial_weights, tmp_path, mnist5k):
    tutorial, pth = tutorial_weights
    trained_on_255 = TutorialVAE()
    trained_on_255.load_state_dict(tutorial.state_dict())
    with torch.no_grad():
        trained_on_255.fc1.weight /= 255  # the same model, for pixels 0 to 255
    folder = _pair(tmp_path / "p255", trained_on_255.eval(), MANIFEST | {"value_range": [0, 255]})
    done = import_model(folder, "mnist5k", tmp_path / "255.pt", download=False)
    assert done["test_nelbo"] == pytest.approx(import_model(pth, "mnist5k", tmp_path / "1.pt",
                                                            download=False)["test_nelbo"], abs=1e-2)


class _Conv(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 2, 3)

    def forward(self, x):
        h = self.conv(x).flatten(1)
        return h[:, :20], h[:, 20:40]


@pytest.mark.parametrize("change, words", [
    ({"decoder_output": "logits"}, "ends in a Sigmoid, so it gives probabilities"),
    ({"value_range": [0, 7]}, "value_range must be"),
    ({"encoder_outputs": ["mean", "logvar"]}, "the manifest names"),
    ({"image_shape": "28x28"}, "image_shape must be"),
])
def test_an_onnx_pair_that_does_not_fit_is_one_line(tutorial_weights, tmp_path, change, words):
    tutorial, _ = tutorial_weights
    folder = _pair(tmp_path / "bad", tutorial, MANIFEST | change)
    with pytest.raises(VAEError, match=words) as e:
        import_model(folder, "mnist5k", tmp_path / "x.pt", download=False)
    assert "\n" not in str(e.value) and not (tmp_path / "x.pt").exists()


def test_a_convolutional_or_incomplete_onnx_pair_is_refused_with_the_reason(tutorial_weights, tmp_path):
    tutorial, _ = tutorial_weights
    folder = _pair(tmp_path / "conv", tutorial, MANIFEST)
    _onnx(_Conv(), torch.zeros(1, 1, 28, 28), folder / "encoder.onnx", ["x"], ["mu", "logvar"])
    with pytest.raises(VAEError, match="Conv") as e:
        import_model(folder, "mnist5k", tmp_path / "x.pt", download=False)
    assert "pythae" not in str(e.value)  # only the ONNX importer's reason: the folder is an ONNX pair
    (folder / "decoder.onnx").unlink()
    with pytest.raises(VAEError, match="not decoder.onnx"):
        import_model(folder, "mnist5k", tmp_path / "x.pt", download=False)
    (folder / "encoder.onnx").write_bytes(b"not onnx")
    (folder / "decoder.onnx").write_bytes(b"")
    with pytest.raises(VAEError, match="not an ONNX file"):
        import_model(folder, "mnist5k", tmp_path / "x.pt", download=False)


def test_uploaded_files_are_staged_as_their_source_and_a_public_demo_takes_onnx_only(tmp_path, tutorial_weights):
    from vae_core.importers import stage

    _, pth = tutorial_weights
    weights = pth.read_bytes()
    path = stage({"x" * 5000 + ".pth": weights}, tmp_path / "a")  # any name: stored under a plain one
    assert path.name == "weights.pth" and import_model(path, "mnist5k", tmp_path / "a.pt", download=False)
    assert stage({"model.pt": b"1", "model_config.json": b"{}"}, tmp_path / "b").is_dir()
    pair = {"encoder.onnx": b"", "decoder.onnx": b"", "manifest.json": b"{}"}
    assert sorted(p.name for p in stage(pair, tmp_path / "c", public=True).iterdir()) == sorted(pair)
    with pytest.raises(VAEError, match="this public demo imports ONNX only") as e:
        stage({"vae.pth": weights}, tmp_path / "d", public=True)
    assert "\n" not in str(e.value) and not (tmp_path / "d").exists()
    with pytest.raises(VAEError, match="upload encoder.onnx"):
        stage({"encoder.onnx": b"", "notes.txt": b""}, tmp_path / "e")
