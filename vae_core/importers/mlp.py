"""This library's MLP kind as a state_dict, from another source's layers: what every importer that maps an
MLP VAE writes (vae_core.models: MLPEncoder's body of Linear + ReLU and its head of μ then log σ² rows;
MLPDecoder's body of Linear + ReLU, its last Linear giving the logits)."""

from __future__ import annotations

import torch

Layer = tuple[torch.Tensor, torch.Tensor]  # (weight (out, in), bias (out,))


def mlp_state(hidden: list[Layer], mu: Layer, logvar: Layer, decoder: list[Layer]) -> dict[str, torch.Tensor]:
    """The MLP kind's state_dict: the encoder's `hidden` layers, its μ and log σ² heads stacked (μ first),
    and the `decoder`'s layers, the last giving the logits."""
    f = lambda t: torch.as_tensor(t).detach().float().clone()  # noqa: E731
    ours = {}
    for i, (w, b) in enumerate(hidden):
        ours[f"encoder.body.{1 + 2 * i}.weight"], ours[f"encoder.body.{1 + 2 * i}.bias"] = f(w), f(b)
    ours["encoder.head.weight"] = torch.cat([f(mu[0]), f(logvar[0])])
    ours["encoder.head.bias"] = torch.cat([f(mu[1]), f(logvar[1])])
    for i, (w, b) in enumerate(decoder):
        ours[f"decoder.body.{2 * i}.weight"], ours[f"decoder.body.{2 * i}.bias"] = f(w), f(b)
    return ours
