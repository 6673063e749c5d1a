"""Export a checkpoint's decoder or encoder as an ONNX graph a browser (onnxruntime-web) or any ONNX
runtime can run. The decoder: z (N, D) float32 → display-ready pixels sigmoid(decoder(z)) (N, C, H, W)
in [0, 1]. The encoder: images x (N, C, H, W) float32 in [0, 1], as the app holds them → the posterior's
mu and logvar (N, D) each, what `VAE.encode` gives (it takes x in [0, 1] as it is).

The graph carries the metadata a front end needs as ONNX metadata properties (strings; the lists
are JSON): `latent_dim`, `image_shape` ([C, H, W]), `likelihood`, `kl_order` (dimensions from most
to least KL on the test split, when the checkpoint holds it) and `source`; an encoder's also has
`part` ("encoder"), so a file read alone says which half it is.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import torch
from torch import nn

from vae_core.errors import VAEError

INPUT, OUTPUT = "z", "image"
ENCODER_INPUT, ENCODER_OUTPUTS = "x", ("mu", "logvar")
PARTS = ("decoder", "encoder")
OPSET = 17


class DisplayDecoder(nn.Module):
    """The decoder with its output squashed to the image mean: what a screen shows."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.decoder = model.decoder

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(z))  # (N, C, H, W) in [0, 1]


class Encoder(nn.Module):
    """The model's own `encode` (whatever it does to x), so the graph gives what the server computes."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.encode(x)  # (N, D) each


def kl_order(ckpt) -> list[int]:
    """Latent dimensions from most to least KL, from the test metrics stored in the checkpoint;
    the natural order when it holds none."""
    from vae_core.latent import stored_kl_ranking

    ranking = stored_kl_ranking(ckpt)
    return list(range(ckpt.latent_dim)) if ranking is None else [int(d) for d in ranking[1]]


def decoder_metadata(ckpt) -> dict:
    return {
        "latent_dim": ckpt.latent_dim,
        "image_shape": list(ckpt.image_shape),
        "likelihood": ckpt.config.likelihood_name,
        "kl_order": kl_order(ckpt),
        "source": ckpt.path.name,
    }


def graph_metadata(ckpt, part: str = "decoder") -> dict:
    """What `export(ckpt, part=part)` writes into the graph: the decoder's metadata, plus `part` for the
    encoder (the decoder's is unchanged, so files exported before read the same)."""
    return decoder_metadata(ckpt) | ({} if part == "decoder" else {"part": part})


def export(ckpt, out: str | Path | None = None, *, part: str = "decoder") -> bytes:
    """The decoder or encoder (`part`) of `ckpt` (a loaded `Checkpoint`) as ONNX bytes, also written to
    `out` if given. One the ONNX exporter cannot express is a one-line `VAEError`.
    The batch axis is dynamic; the image shape is fixed (the model's). The model is not moved or
    switched out of its mode: the exporter traces it in eval mode and restores it."""
    import onnx  # the exporter's own dependency; imported here so the CLI starts without it

    if part not in PARTS:
        raise VAEError(f"part must be one of {', '.join(PARTS)} (got {part!r})")
    device = next(ckpt.model.parameters()).device
    if part == "decoder":
        module, example = DisplayDecoder(ckpt.model), torch.zeros(1, ckpt.latent_dim, device=device)
        inputs, outputs = [INPUT], [OUTPUT]
    else:
        module, example = Encoder(ckpt.model), torch.zeros(1, *ckpt.image_shape, device=device)
        inputs, outputs = [ENCODER_INPUT], list(ENCODER_OUTPUTS)
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer chatter; failures raise below
            torch.onnx.export(
                module, (example,), buffer, input_names=inputs, output_names=outputs,
                dynamic_axes={name: {0: "n"} for name in inputs + outputs}, opset_version=OPSET, dynamo=False,
                training=torch.onnx.TrainingMode.EVAL,
            )
    except Exception as e:  # noqa: BLE001 - the exporter fails in many ways; the user needs one line
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise VAEError(f"the {part} of {ckpt.path.name} cannot be exported to ONNX ({reason})") from None
    graph = onnx.load_from_string(buffer.getvalue())
    if part == "encoder":  # the tracer names the halves' width after its Slice; it is D
        for output in graph.graph.output:
            output.type.tensor_type.shape.dim[1].dim_value = ckpt.latent_dim
    for key, value in graph_metadata(ckpt, part).items():
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, value if isinstance(value, str) else json.dumps(value)
    data = graph.SerializeToString()
    if out is not None:
        out = Path(out)
        if out.is_dir():
            raise VAEError(f"{out} is a folder; give a file name such as {out / f'{part}.onnx'}")
        out.parent.mkdir(parents=True, exist_ok=True)
        from vae_core.checkpoint import temp_name  # two exports of one file never share a temp file

        tmp = temp_name(out)
        try:
            tmp.write_bytes(data)
            tmp.replace(out)
        finally:
            tmp.unlink(missing_ok=True)
    return data


def export_decoder(ckpt, out: str | Path | None = None) -> bytes:
    """The decoder of `ckpt` as ONNX bytes (z → pixels in [0, 1]), also written to `out` if given."""
    return export(ckpt, out, part="decoder")


def export_encoder(ckpt, out: str | Path | None = None) -> bytes:
    """The encoder of `ckpt` as ONNX bytes (x in [0, 1] → mu, logvar), also written to `out` if given."""
    return export(ckpt, out, part="encoder")


def read_metadata(onnx_bytes: bytes) -> dict:
    """The metadata properties of an exported graph (decoder or encoder), JSON values decoded."""
    import onnx

    out = {}
    for entry in onnx.load_from_string(onnx_bytes).metadata_props:
        try:
            out[entry.key] = json.loads(entry.value)
        except ValueError:
            out[entry.key] = entry.value
    return out
