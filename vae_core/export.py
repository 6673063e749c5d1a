"""Export a checkpoint's decoder as an ONNX graph a browser (onnxruntime-web) or any ONNX runtime
can run: z (N, D) float32 → display-ready pixels sigmoid(decoder(z)) (N, C, H, W) in [0, 1].

The graph carries the metadata a front end needs as ONNX metadata properties (strings; the lists
are JSON): `latent_dim`, `image_shape` ([C, H, W]), `likelihood`, `kl_order` (dimensions from most
to least KL on the test split, when the checkpoint holds it) and `source`.
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
OPSET = 17


class DisplayDecoder(nn.Module):
    """The decoder with its output squashed to the image mean: what a screen shows."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.decoder = model.decoder

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(z))  # (N, C, H, W) in [0, 1]


def kl_order(ckpt) -> list[int]:
    """Latent dimensions from most to least KL, from the test metrics stored in the checkpoint;
    the natural order when it holds none."""
    from vae_core.latent import stored_kl_ranking

    ranking = stored_kl_ranking(ckpt)
    return list(range(ckpt.config.latent_dim)) if ranking is None else [int(d) for d in ranking[1]]


def decoder_metadata(ckpt) -> dict:
    return {
        "latent_dim": ckpt.config.latent_dim,
        "image_shape": list(ckpt.image_shape),
        "likelihood": ckpt.config.likelihood_name,
        "kl_order": kl_order(ckpt),
        "source": ckpt.path.name,
    }


def export_decoder(ckpt, out: str | Path | None = None) -> bytes:
    """The decoder of `ckpt` (a loaded `Checkpoint`) as ONNX bytes, also written to `out` if given.
    A decoder the ONNX exporter cannot express is a one-line `VAEError`."""
    import onnx  # the exporter's own dependency; imported here so the CLI starts without it

    model = DisplayDecoder(ckpt.model).cpu().eval()
    example = torch.zeros(1, ckpt.config.latent_dim)
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer chatter; failures raise below
            torch.onnx.export(
                model, (example,), buffer, input_names=[INPUT], output_names=[OUTPUT],
                dynamic_axes={INPUT: {0: "n"}, OUTPUT: {0: "n"}}, opset_version=OPSET, dynamo=False,
            )
    except Exception as e:  # noqa: BLE001 - the exporter fails in many ways; the user needs one line
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise VAEError(f"the decoder of {ckpt.path.name} cannot be exported to ONNX ({reason})") from None
    graph = onnx.load_from_string(buffer.getvalue())
    for key, value in decoder_metadata(ckpt).items():
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, value if isinstance(value, str) else json.dumps(value)
    data = graph.SerializeToString()
    if out is not None:
        out = Path(out)
        if out.is_dir():
            raise VAEError(f"{out} is a folder; give a file name such as {out / 'decoder.onnx'}")
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_bytes(data)
        tmp.replace(out)
    return data


def read_metadata(onnx_bytes: bytes) -> dict:
    """The metadata properties of an exported decoder, JSON values decoded."""
    import onnx

    out = {}
    for entry in onnx.load_from_string(onnx_bytes).metadata_props:
        try:
            out[entry.key] = json.loads(entry.value)
        except ValueError:
            out[entry.key] = entry.value
    return out
