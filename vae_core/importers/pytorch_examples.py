"""The VAE of pytorch/examples (`vae/main.py`), the most copied tutorial: its `state_dict`, saved with
`torch.save(model.state_dict(), PATH)`. Recognised by its five layers' names and shapes:

    fc1 (H, 784) → fc21, fc22 (D, H) = μ, log σ²;  fc3 (H, D) → fc4 (784, H), sigmoid → Bernoulli means

(784-400-20 in the tutorial; other widths are read the same way). It maps exactly onto this library's
MLP kind with one hidden layer of H: the encoder's head is fc21 and fc22 stacked (μ first), and fc4's
outputs are the Bernoulli logits the tutorial passes through a sigmoid before its binary cross-entropy
(summed over pixels, as here)."""

from __future__ import annotations

from vae_core.importers.mlp import mlp_state

DESCRIPTION = "pytorch/examples' VAE (vae/main.py): a state_dict with fc1, fc21, fc22, fc3, fc4"
SOURCE = "pytorch/examples VAE state_dict"
LAYERS = ("fc1", "fc21", "fc22", "fc3", "fc4")
PIXELS = 784  # 28 × 28 grey images, as the tutorial's x.view(-1, 784)


def claims(source) -> bool:
    """Whether `source` is a file of weights (then only the file importers' reasons matter)."""
    return source.meta is None


def recognise(source) -> str | None:
    """None when `source` (an importers.Source) is this tutorial's state_dict, else what does not fit."""
    state = source.state
    if source.meta is not None:
        return "a file of weights, not a folder"
    expected = {f"{layer}.{part}" for layer in LAYERS for part in ("weight", "bias")}
    if set(state) != expected:
        return "expected exactly the weights and biases of fc1, fc21, fc22, fc3 and fc4"
    h, x = state["fc1.weight"].shape
    d = state["fc21.weight"].shape[0]
    shapes = {"fc1.weight": (h, x), "fc21.weight": (d, h), "fc22.weight": (d, h), "fc3.weight": (h, d),
              "fc4.weight": (x, h), "fc1.bias": (h,), "fc21.bias": (d,), "fc22.bias": (d,), "fc3.bias": (h,),
              "fc4.bias": (x,)}
    wrong = [name for name, shape in shapes.items() if tuple(state[name].shape) != shape]
    if wrong:
        return f"the layers' shapes do not chain (fc1 {h}×{x}; {', '.join(wrong)} differ)"
    if x != PIXELS:
        return f"fc1 takes {x} inputs, not 784 (28 × 28 grey images)"
    return None


def build(source, image_shape: tuple[int, int, int]) -> tuple[dict, dict]:
    """(the VAEConfig fields of the matching MLP, its state_dict) for images of `image_shape`."""
    from vae_core.errors import VAEError

    state = source.state
    if tuple(image_shape) != (1, 28, 28):
        raise VAEError(f"the pytorch/examples VAE reads 28 × 28 grey images; this dataset's are "
                       f"{'×'.join(map(str, image_shape))} (use mnist, mnist5k or fashion-mnist)")
    h, d = state["fc1.weight"].shape[0], state["fc21.weight"].shape[0]
    layer = lambda name: (state[f"{name}.weight"], state[f"{name}.bias"])  # noqa: E731
    ours = mlp_state([layer("fc1")], layer("fc21"), layer("fc22"), [layer("fc3"), layer("fc4")])
    config = {"model": "mlp", "latent_dim": int(d), "hidden_sizes": (int(h),), "likelihood": "bernoulli",
              "binarize": False, "beta": 1.0}
    return config, ours
