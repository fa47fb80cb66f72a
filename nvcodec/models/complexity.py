"""Decoder complexity: multiply-accumulates per output pixel, for any registered model.

The count is taken from the model itself: one frame's forward pass on the ``meta`` device (so
nothing is allocated or computed) under PyTorch's FLOP counter, which keeps it in step with the
architecture the way :func:`~nvcodec.models.budget.count_parameters` does. It counts every
convolution (``output elements × in_channels/groups × kernel volume``) and matrix product
(linear layers, and parameter-free products such as DS-NeRV's channel attention
``softmax(QKᵀ)V``: 0.5 % of its MACs at 0.1M on 160×80). Bias additions, activations, softmax,
pixel shuffles and interpolation are not counted.

Divided by ``height × width`` of the (cropped) frame, so work on a padded grid counts against the
pixels actually delivered.
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from nvcodec.models.config import ModelConfig
from nvcodec.models.registry import build_model

__all__ = ["macs_per_pixel", "total_macs"]


def total_macs(config: ModelConfig) -> int:
    """MACs to decode one frame of ``config``'s model: every matrix product and convolution.

    Counted by PyTorch's own FLOP counter on the ``meta`` device (one FLOP pair per MAC), so
    parameter-free products such as DS-NeRV's channel attention count too."""
    model = build_model(config, device="meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, device="meta"))
    return counter.get_total_flops() // 2


def macs_per_pixel(config: ModelConfig) -> float:
    """Decoder MACs per output pixel (one frame's MACs / (height · width))."""
    return total_macs(config) / (config.height * config.width)
