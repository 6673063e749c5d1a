"""A model of pythae (github.com/clementchadebec/benchmark_VAE), the main VAE library, as `model.save(DIR)`
writes it: `DIR/model.pt` ({"model_state_dict": ...}) and `DIR/model_config.json` (the family's config:
"name", "input_dim", "latent_dim", "reconstruction_loss", "beta", ...). Read for its families whose
networks are pythae's defaults (`uses_default_encoder` / `uses_default_decoder`), which are

    encoder.layers.0.0 (512, P), ReLU → encoder.embedding, encoder.log_var (D, 512) = μ, log σ²
    decoder.layers.0.0 (512, D), ReLU → decoder.layers.1.0 (P, 512), sigmoid

for P pixels of `input_dim`. That is this library's MLP kind with one hidden layer of 512, exactly: the
encoder's head is embedding and log_var stacked (μ first); the decoder's last layer gives the logits the
sigmoid is taken of. pythae's reconstruction losses map onto the likelihoods here:

- "bce": binary cross-entropy summed over pixels = Bernoulli, the same number;
- "mse": 0.5·‖x − sigmoid(logits)‖² summed over pixels = Gaussian with σ = 1 *without* its constant
  P/2·log 2π (720.4 nats for 784 pixels). The nELBO here is the whole negative log-likelihood, so it
  is pythae's loss plus that constant.

Custom networks are saved by pythae as pickled code (`encoder.pkl`, `decoder.pkl`) and refused before
this module sees the folder (vae_core.importers.read_source)."""

from __future__ import annotations

import math

from vae_core.importers.mlp import mlp_state

DESCRIPTION = "pythae's saved folder (model.pt + model_config.json) of a VAE or β-VAE with its default networks"
SOURCE = "pythae model folder"
HIDDEN = 512  # pythae's default MLP width
FAMILIES = {"VAEConfig": "VAE", "BetaVAEConfig": "β-VAE"}  # the config's "name" -> the family read here
LIKELIHOODS = {"bce": "bernoulli", "mse": "gaussian"}  # pythae's reconstruction_loss -> the likelihood here
LAYERS = {"encoder.layers.0.0": ("hidden", "pixels"), "encoder.embedding": ("latent", "hidden"),
          "encoder.log_var": ("latent", "hidden"), "decoder.layers.0.0": ("hidden", "latent"),
          "decoder.layers.1.0": ("pixels", "hidden")}


def mse_constant(pixels: int) -> float:
    """What pythae's "mse" loss leaves out of the Gaussian (σ = 1) negative log-likelihood, in nats."""
    return 0.5 * pixels * math.log(2 * math.pi)


def _shape(meta: dict) -> tuple[int, ...] | None:
    dims = meta.get("input_dim")
    if not isinstance(dims, list) or not dims or not all(isinstance(d, int) and 0 < d <= 4096 for d in dims):
        return None
    return tuple(dims) if len(dims) == 3 else (1, *dims) if len(dims) == 2 else None


def claims(source) -> bool:
    """Whether `source` is a pythae folder (then only this importer's reasons matter)."""
    return source.meta is not None and "name" in source.meta and (source.folder is None or not
                                                                  (source.folder / "manifest.json").is_file())


def recognise(source) -> str | None:
    """None when `source` (an importers.Source) is a pythae folder this reads, else what does not fit."""
    meta = source.meta
    if meta is None:
        return "a folder with model.pt and model_config.json, not a single file"
    family = meta.get("name")
    if family not in FAMILIES:
        return (f"the family {str(family)[:40]!r} is not one this reads "
                f"({', '.join(FAMILIES)} with default networks)")
    if meta.get("uses_default_encoder") is False or meta.get("uses_default_decoder") is False:
        return "its networks are custom ones, not pythae's defaults"
    if meta.get("reconstruction_loss", "mse") not in LIKELIHOODS:
        return f"its reconstruction_loss {str(meta.get('reconstruction_loss'))[:20]!r} is not bce or mse"
    shape, latent = _shape(meta), meta.get("latent_dim")
    if shape is None or not isinstance(latent, int) or latent < 1:
        return "its model_config.json has no usable input_dim and latent_dim"
    sizes = {"hidden": HIDDEN, "pixels": math.prod(shape), "latent": latent}
    expected = {f"{layer}.{part}" for layer in LAYERS for part in ("weight", "bias")}
    if set(source.state) != expected:
        return "model.pt does not hold the weights of pythae's default MLP encoder and decoder"
    wrong = [layer for layer, (out, inp) in LAYERS.items()
             if tuple(source.state[f"{layer}.weight"].shape) != (sizes[out], sizes[inp])
             or tuple(source.state[f"{layer}.bias"].shape) != (sizes[out],)]
    if wrong:
        return f"the layers' shapes do not match its config ({', '.join(wrong)})"
    return None


def build(source, image_shape: tuple[int, int, int]) -> tuple[dict, dict]:
    """(the VAEConfig fields of the matching MLP, its state_dict) for images of `image_shape`."""
    from vae_core.errors import VAEError

    meta, f = source.meta, {k: v.detach().float() for k, v in source.state.items()}
    shape = _shape(meta)
    if shape != tuple(image_shape):
        raise VAEError(f"the pythae model reads images of {'×'.join(map(str, shape))}; this dataset's are "
                       f"{'×'.join(map(str, image_shape))}")
    beta = meta.get("beta", 1.0) if meta["name"] == "BetaVAEConfig" else 1.0
    if not isinstance(beta, (int, float)) or not 0 <= beta < 1e6:
        raise VAEError("its model_config.json's beta is not a number of 0 or more")
    layer = lambda name: (f[f"{name}.weight"], f[f"{name}.bias"])  # noqa: E731
    ours = mlp_state([layer("encoder.layers.0.0")], layer("encoder.embedding"), layer("encoder.log_var"),
                     [layer("decoder.layers.0.0"), layer("decoder.layers.1.0")])
    likelihood = LIKELIHOODS[meta.get("reconstruction_loss", "mse")]
    config = {"model": "mlp", "latent_dim": int(meta["latent_dim"]), "hidden_sizes": (HIDDEN,),
              "likelihood": likelihood, "binarize": False, "beta": float(beta)}
    if likelihood == "gaussian":
        config |= {"sigma_mode": "fixed", "sigma": 1.0}
    return config, ours
