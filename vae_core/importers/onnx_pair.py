"""A VAE from any framework, as an ONNX pair: a folder with `encoder.onnx` (x → μ, log σ²), `decoder.onnx`
(z → logits, or probabilities) and `manifest.json`, which says what the graphs cannot:

    {"image_shape": [1, 28, 28],            # C, H, W of the images the encoder takes
     "value_range": [0, 1],                 # the pixels' range it was trained on: [0, 1], [0, 255], [-1, 1]
     "encoder_outputs": ["mu", "logvar"],   # the encoder's output names: which is μ, which is log σ²
     "decoder_output": "logits",            # or "probabilities" (the graph then ends in a Sigmoid)
     "likelihood": "bernoulli"}             # or "gaussian", with "sigma": σ (fixed)

(the value range is the encoder's input's; the decoder's outputs are logits or probabilities in [0, 1]).

ONNX holds operators and numbers, never code: nothing of the author runs. The graphs are read as data
(`onnx.load`, initializers as arrays) and recognised when they are a multilayer perceptron, which this
library's MLP kind then holds exactly: Flatten/Reshape, then Gemm (or MatMul + Add) layers with ReLU
between them; the encoder ends in two heads (two Gemms, or one split or sliced in halves, μ first as
declared), the decoder in a Gemm, optionally a Sigmoid (declared "probabilities": its input is the
logits) and a Reshape. Pixels on another range are folded into the first layer (x' = a·x + b makes
W·x' + c = (a·W)·x + (c + b·W·1)), so the model takes [0, 1] images as every page holds them.

Convolutional and other graphs are refused with the operator that does not fit: running arbitrary
ONNX graphs in the engine (onnx2torch, or onnxruntime in the server) is the next step.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from vae_core.errors import VAEError
from vae_core.importers.mlp import mlp_state

DESCRIPTION = "an ONNX pair: a folder with encoder.onnx, decoder.onnx and manifest.json (an MLP VAE, any framework)"
SOURCE = "ONNX encoder/decoder pair"
FILES = ("encoder.onnx", "decoder.onnx")
MAX_GRAPH_BYTES = 256 * 2**20
RANGES = {(0.0, 1.0): (1.0, 0.0), (0.0, 255.0): (255.0, 0.0), (-1.0, 1.0): (2.0, -1.0)}  # range -> x' = a·x + b
SKIPPED = {"Flatten", "Reshape", "Identity", "Dropout"}  # shape-only (or inference no-op) steps


def claims(source) -> bool:
    """Whether `source` is an ONNX pair's folder (then only this importer's reasons matter)."""
    return source.folder is not None and (source.folder / "manifest.json").is_file()


class _Graph:
    """One ONNX graph as data: its nodes by the names they consume, its constants as arrays."""

    def __init__(self, path: Path):
        import onnx
        from onnx import numpy_helper

        if path.stat().st_size > MAX_GRAPH_BYTES:
            raise VAEError(f"{path.name} is over {MAX_GRAPH_BYTES // 2**20} MB")
        try:
            model = onnx.load(str(path), load_external_data=False)
        except Exception as e:  # noqa: BLE001 - a damaged file: protobuf's errors vary
            why = str(e).splitlines()[0][:100] if str(e) else type(e).__name__
            raise VAEError(f"{path.name} is not an ONNX file ({why})") from None
        graph = model.graph
        if any(t.data_location == onnx.TensorProto.EXTERNAL for t in graph.initializer):
            raise VAEError(f"{path.name} keeps its weights in external files; save it with its weights inside")
        self.name = path.name
        self.consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        for node in graph.node:  # Constant nodes (the exporter's slice bounds, shapes) are constants too
            if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
                self.consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
        self.nodes = [n for n in graph.node if n.op_type != "Constant"]
        names = {i.name for i in graph.input} - set(self.consts)
        if len(names) != 1:
            raise VAEError(f"{self.name} takes {len(names)} inputs; one (images or z) is expected")
        self.input = names.pop()
        self.outputs = [o.name for o in graph.output]

    def consumers(self, name: str) -> list:
        """The nodes that take `name`'s values (a Shape reads only its shape: an exporter's arithmetic)."""
        return [n for n in self.nodes if name in n.input and n.op_type != "Shape"]

    def attr(self, node, key: str, default):
        from onnx import helper

        for a in node.attribute:
            if a.name == key:
                return helper.get_attribute_value(a)
        return default

    def linear(self, node, current: str) -> tuple[np.ndarray, np.ndarray, str]:
        """(W (out, in), b (out,), the output's name) of a Gemm, or of a MatMul and the Add after it."""
        if node.op_type == "Gemm":
            if self.attr(node, "transA", 0) or (self.attr(node, "alpha", 1.0), self.attr(node, "beta", 1.0)) != (1, 1):
                raise VAEError(f"{self.name}: a Gemm with transA, alpha or beta is not read")
            w = self._const(node.input[1])
            w = w if self.attr(node, "transB", 0) else w.T
            has_bias = len(node.input) > 2 and node.input[2]
            b = self._const(node.input[2]) if has_bias else np.zeros(w.shape[0], np.float32)
            return w, np.broadcast_to(b, (w.shape[0],)).copy(), node.output[0]
        other = node.input[1] if node.input[0] == current else node.input[0]
        w = self._const(other).T  # MatMul(x, W) with W (in, out)
        after = self.consumers(node.output[0])
        if len(after) == 1 and after[0].op_type == "Add":
            add = after[0]
            b = self._const(add.input[1] if add.input[0] == node.output[0] else add.input[0])
            return w, np.broadcast_to(b, (w.shape[0],)).copy(), add.output[0]
        return w, np.zeros(w.shape[0], np.float32), node.output[0]

    def _const(self, name: str) -> np.ndarray:
        if name not in self.consts:
            raise VAEError(f"{self.name}: a layer's weights are computed, not stored; only stored weights are read")
        return np.asarray(self.consts[name], dtype=np.float32)


def _chain(g: _Graph) -> tuple[list[tuple[np.ndarray, np.ndarray]], str, list]:
    """Follow the graph from its input through linear layers and ReLUs until it branches or ends: the
    layers (each followed by a ReLU but the last), the last name reached, and the nodes that take it."""
    layers, current, activated = [], g.input, True
    while True:
        after = g.consumers(current)
        if len(after) != 1:
            return layers, current, after
        node = after[0]
        if node.op_type in SKIPPED:
            current = node.output[0]
        elif node.op_type in ("Gemm", "MatMul"):
            if not activated:
                raise VAEError(f"{g.name}: two linear layers without a ReLU between them")
            w, b, current = g.linear(node, current)
            layers.append((w, b))
            activated = False
        elif node.op_type == "Relu" and not activated:
            current, activated = node.output[0], True
        else:
            return layers, current, after


def _encoder(g: _Graph, outputs: list[str]) -> tuple[list, np.ndarray, np.ndarray]:
    """The encoder's hidden layers and its head (μ rows, then log σ² rows) as this MLP kind holds it."""
    layers, current, after = _chain(g)
    if len(after) == 2 and all(n.op_type in ("Gemm", "MatMul") for n in after):  # two heads (fc21, fc22)
        heads = {}
        for node in after:
            w, b, out = g.linear(node, current)
            heads[_named(g, out)] = (w, b)
        if set(heads) != set(outputs):
            raise VAEError(f"{g.name}'s heads give {sorted(heads)}; the manifest names {outputs}")
        (wm, bm), (wl, bl) = heads[outputs[0]], heads[outputs[1]]
        return layers, np.concatenate([wm, wl]), np.concatenate([bm, bl])
    if not layers:
        raise VAEError(f"{g.name} is not an MLP encoder (it starts with {after[0].op_type if after else 'nothing'})")
    *hidden, (w, b) = layers  # one head, split in halves: μ first (the manifest's first name)
    halves = [n for n in after if n.op_type in ("Split", "Slice")]
    if not halves or len(halves) != len(after):
        raise VAEError(f"{g.name}: after its last layer comes {after[0].op_type if after else 'nothing'}, not two "
                       "heads or a split into μ and log σ² (a convolutional encoder is not read yet)")
    d = w.shape[0] // 2
    firsts = {}
    for node in halves:
        if node.op_type == "Split":
            for i, out in enumerate(node.output):
                firsts[_named(g, out)] = i * d
        else:  # a start computed from the shape (torch's chunk) is the second half's when the other starts at 0
            start = g.consts.get(node.input[1])
            firsts[_named(g, node.output[0])] = d if start is None else int(np.asarray(start).ravel()[0])
    if len(firsts) != 2 or firsts.get(outputs[0]) != 0 or firsts.get(outputs[1]) != d:
        raise VAEError(f"{g.name}: its head's halves are not {outputs[0]} then {outputs[1]}")
    return hidden, w, b


def _named(g: _Graph, name: str) -> str:
    """The graph output `name` reaches (through shape-only steps)."""
    while name not in g.outputs:
        after = g.consumers(name)
        if len(after) != 1 or after[0].op_type not in SKIPPED:
            return name
        name = after[0].output[0]
    return name


def _decoder(g: _Graph, declared: str) -> list:
    layers, current, after = _chain(g)
    ends_in_sigmoid = len(after) == 1 and after[0].op_type == "Sigmoid"
    if after and not ends_in_sigmoid:
        raise VAEError(f"{g.name}: a {after[0].op_type} is not read (an MLP decoder of Gemm/MatMul and ReLU is; "
                       "a convolutional one is not yet)")
    if ends_in_sigmoid and declared != "probabilities":
        raise VAEError(f"{g.name} ends in a Sigmoid, so it gives probabilities; the manifest declares logits "
                       "(declare \"decoder_output\": \"probabilities\")")
    if declared == "probabilities" and not ends_in_sigmoid:
        raise VAEError(f"{g.name} is declared to give probabilities but does not end in a Sigmoid, so its logits "
                       "cannot be read exactly; export it without the sigmoid and declare logits")
    return layers


def _manifest(meta: dict) -> dict:
    shape = meta.get("image_shape")
    if not (isinstance(shape, list) and len(shape) == 3 and all(isinstance(s, int) and 0 < s <= 4096 for s in shape)):
        raise VAEError("manifest.json: image_shape must be [C, H, W]")
    outputs = meta.get("encoder_outputs", ["mu", "logvar"])
    if not (isinstance(outputs, list) and len(outputs) == 2 and all(isinstance(o, str) for o in outputs)):
        raise VAEError("manifest.json: encoder_outputs must name two outputs, μ's then log σ²'s")
    value_range = tuple(float(v) for v in meta.get("value_range", [0, 1])) if isinstance(
        meta.get("value_range", [0, 1]), list) else None
    if value_range not in RANGES:
        raise VAEError("manifest.json: value_range must be [0, 1], [0, 255] or [-1, 1]")
    declared = meta.get("decoder_output", "logits")
    likelihood = meta.get("likelihood", "bernoulli")
    if declared not in ("logits", "probabilities") or likelihood not in ("bernoulli", "gaussian"):
        raise VAEError('manifest.json: decoder_output is "logits" or "probabilities"; likelihood is "bernoulli" '
                       'or "gaussian"')
    sigma = meta.get("sigma", 1.0)
    if likelihood == "gaussian" and not (isinstance(sigma, (int, float)) and 0 < sigma < 1e3):
        raise VAEError("manifest.json: a Gaussian likelihood needs its fixed sigma (> 0)")
    return {"shape": tuple(shape), "outputs": outputs, "range": value_range, "declared": declared,
            "likelihood": likelihood, "sigma": float(sigma)}


def _read(source) -> tuple[dict, list, tuple, list]:
    m = _manifest(source.meta)
    encoder = _Graph(source.folder / "encoder.onnx")
    if not set(m["outputs"]) <= set(encoder.outputs):
        raise VAEError(f"encoder.onnx's outputs are {encoder.outputs}; the manifest names {m['outputs']}")
    hidden, head_w, head_b = _encoder(encoder, m["outputs"])
    decoder = _decoder(_Graph(source.folder / "decoder.onnx"), m["declared"])
    return m, hidden, (head_w, head_b), decoder


def recognise(source) -> str | None:
    if not claims(source):
        return "a folder with encoder.onnx, decoder.onnx and manifest.json"
    missing = [name for name in FILES if not (source.folder / name).is_file()]
    if missing:
        return f"the folder has manifest.json but not {' and '.join(missing)}"
    try:
        m, hidden, (head_w, _), decoder = _read(source)
    except VAEError as e:
        return str(e)
    widths = [w.shape[0] for w, _ in hidden]
    pixels = math.prod(m["shape"])
    if (hidden[0][0].shape[1] if hidden else head_w.shape[1]) != pixels:
        return f"the encoder takes {hidden[0][0].shape[1] if hidden else head_w.shape[1]} inputs, not {pixels} pixels"
    d = head_w.shape[0] // 2
    expected = [(h, i) for h, i in zip([*reversed(widths), pixels], [d, *reversed(widths)], strict=True)]
    got = [tuple(w.shape) for w, _ in decoder]
    if got != expected:
        return (f"the decoder's layers {got} do not mirror the encoder's (this MLP kind has the encoder's hidden "
                f"widths {widths} reversed)")
    return None


def build(source, image_shape: tuple[int, int, int]) -> tuple[dict, dict]:
    m, hidden, (head_w, head_b), decoder = _read(source)
    if m["shape"] != tuple(image_shape):
        raise VAEError(f"the ONNX pair reads images of {'×'.join(map(str, m['shape']))}; this dataset's are "
                       f"{'×'.join(map(str, image_shape))}")
    a, b = RANGES[m["range"]]
    layers = [*hidden, (head_w, head_b)]
    w0, c0 = layers[0]
    layers[0] = (a * w0, c0 + b * w0.sum(1))  # the pixels' range folded into the first layer
    t = lambda arr: torch.from_numpy(np.array(arr, dtype=np.float32))  # noqa: E731 - a writable copy
    *hidden, (head_w, head_b) = [(t(w), t(c)) for w, c in layers]
    d = head_w.shape[0] // 2
    ours = mlp_state(hidden, (head_w[:d], head_b[:d]), (head_w[d:], head_b[d:]), [(t(w), t(c)) for w, c in decoder])
    config = {"model": "mlp", "latent_dim": int(d), "hidden_sizes": tuple(int(w.shape[0]) for w, _ in hidden),
              "likelihood": m["likelihood"], "binarize": False, "beta": 1.0}
    if m["likelihood"] == "gaussian":
        config |= {"sigma_mode": "fixed", "sigma": m["sigma"]}
    return config, ours
