"""Decoder complexity: multiply-accumulates per output pixel, for any registered model.

The count is taken from the model itself (forward hooks on every ``Conv*d`` and ``Linear`` during
one frame's forward pass on the ``meta`` device, so nothing is allocated or computed), which keeps
it in step with the architecture the way :func:`~nvcodec.models.budget.count_parameters` does.

* conv: ``output elements × (in_channels / groups) × kernel volume``
* linear: ``output elements × in_features``

Divided by ``height × width`` of the (cropped) frame, so work on a padded grid counts against the
pixels actually delivered. Bias additions, activations, pixel shuffles, interpolation and
parameter-free matrix products (e.g. DS-NeRV's channel attention ``softmax(QKᵀ)V``) are not
counted: only the layers that hold weights.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from nvcodec.models.config import ModelConfig
from nvcodec.models.registry import build_model

__all__ = ["layer_macs", "macs_per_pixel", "total_macs"]

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def layer_macs(module: nn.Module, output: torch.Tensor, batch: int) -> int:
    """MACs of one call of a conv or linear ``module`` that produced ``output``, per sample."""
    per_sample = output.numel() // batch
    if isinstance(module, _CONVS):
        return per_sample * (module.in_channels // module.groups) * math.prod(module.kernel_size)
    if isinstance(module, nn.Linear):
        return per_sample * module.in_features
    return 0


def total_macs(config: ModelConfig) -> int:
    """Conv + linear MACs to decode one frame of ``config``'s model."""
    model = build_model(config, device="meta")
    total = 0

    def hook(module: nn.Module, _inputs: tuple[object, ...], output: torch.Tensor) -> None:
        nonlocal total
        total += layer_macs(module, output, batch=1)

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, (*_CONVS, nn.Linear))
    ]
    try:
        with torch.no_grad():
            model(torch.zeros(1, device="meta"))
    finally:
        for h in handles:
            h.remove()
    return total


def macs_per_pixel(config: ModelConfig) -> float:
    """Decoder MACs per output pixel (one frame's conv + linear MACs / (height · width))."""
    return total_macs(config) / (config.height * config.width)
