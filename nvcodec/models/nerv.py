"""NeRV (Chen et al., NeurIPS 2021): the index-based baseline.

::

    t ─► PE(t/(T-1)) ─► Linear ─► act ─► Linear ─► act ─► reshape C₀×h₀×w₀
      ─► NeRVBlock(s₁) ─► … ─► NeRVBlock(sₙ) ─► OutputHead ─► crop to H×W

Channels: the first block keeps the stem width, later ones halve it down to a fixed fine width
(as in the reference code, see :func:`index_layout`); the stride plan comes from
:func:`~nvcodec.models.blocks.plan_grid` so any frame size works.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

import torch
from torch import nn

from nvcodec.models.blocks import (
    ACTIVATIONS,
    NeRVBlock,
    OutputHead,
    PositionalEncoding,
    make_activation,
    plan_grid,
)
from nvcodec.models.config import ModelConfig, added_later, bounds
from nvcodec.models.registry import register_model

__all__ = ["NeRV", "NeRVConfig", "index_layout", "nerv_sizing"]

STEM_HIDDEN = 512
"""The MLP stem's hidden width in the NeRV and NeRV++ references (``--stem_dim_num 512_1``)."""
FIRST_RATIO = 0.725
"""First-stage width over the fine width: the reference's M shape (58 of 80). Measured on Marathon
160×80×16 at 50k parameters, 100 epochs, float PSNR-RGB, NeRV++ / NeRV by ratio: 0.1 (XS)
19.21 / 20.07 dB, 0.325 (S) 20.63 / 22.10, 0.725 (M) 21.11 / 22.12, 1.0 21.15 / 21.81, 1.4 (L)
21.00 / 21.37: the XS shape starves the first stage at small budgets (1 channel for NeRV++)."""
NERV_FINE_WIDTH = 96
"""NeRV's ``--lower-width`` (its README's 720p commands)."""


@dataclasses.dataclass(frozen=True)
class NeRVConfig(ModelConfig):
    MODEL_ID: ClassVar[str] = "nerv"

    base_h: int = dataclasses.field(default=1, metadata=bounds(1, 1024))
    base_w: int = dataclasses.field(default=1, metadata=bounds(1, 1024))
    strides: tuple[int, ...] = dataclasses.field(default=(1,), metadata=bounds(1, 8, max_len=8))
    stem_dim: int = dataclasses.field(default=8, metadata=bounds(1, 4096))
    stem_hidden: int = dataclasses.field(default=64, metadata=bounds(1, 8192))
    channels: tuple[int, ...] = dataclasses.field(default=(8,), metadata=bounds(1, 4096, max_len=8))
    kernel: int = dataclasses.field(default=3, metadata=bounds(1, 7))
    pe_levels: int = dataclasses.field(default=40, metadata=bounds(1, 128))
    pe_base: float = dataclasses.field(default=1.25, metadata=bounds(1.0, 4.0))
    activation: str = dataclasses.field(default="gelu", metadata={"choices": ACTIVATIONS})
    head_kernel: int = dataclasses.field(default=3, metadata=added_later(lo=1, hi=7))
    """The output conv's kernel: 3 (nvcodec's default, and what files without the field mean) or
    1 as in the NeRV reference (measured: no gain at 0.1M, so not the default)."""

    def validate(self) -> None:
        super().validate()
        from nvcodec.errors import ConfigError

        if len(self.channels) != len(self.strides):
            raise ConfigError("nerv config: one channel count per stride is required")
        if self.head_kernel % 2 == 0:
            raise ConfigError(f"nerv config: head kernel must be odd, got {self.head_kernel}")
        scale = math.prod(self.strides)
        self.check_output_grid(self.base_h * scale, self.base_w * scale)

    def activation_elements(self) -> int:
        h, w = self.base_h, self.base_w
        largest = max(self.stem_dim * h * w, self.stem_hidden, 2 * self.pe_levels)
        for out_ch, s in zip(self.channels, self.strides, strict=True):
            largest = max(largest, out_ch * s * s * h * w)  # conv output before the shuffle
            h, w = h * s, w * s
        return max(largest, 3 * h * w)  # the head runs on the padded grid before the crop


def index_layout(
    height: int, width: int, frame_count: int, knob: int, *, fine_width: int
) -> dict[str, Any]:
    """The reference shape NeRV and NeRV++ share, at any budget.

    Both references keep the fine stages at a fixed width (``--lower-width``: 96 for NeRV, 80
    for NeRV++) and size a model by its first-stage width ``fc_dim`` alone (NeRV++ XS/S/M/L:
    8/26/58/112 at 720p, channels ``8, 80, 80, 80, 80`` for XS); stage ``i ≥ 1`` has
    ``max(C_{i−1} // 2, lower width)`` channels and the gated/plain MLP stem 512 hidden units.
    Halving every stage down to a floor instead (this package's first rule) left 4 channels
    exactly where NeRV++'s blocks live.

    Below the reference sizes the shape shrinks as a whole: for ``knob ≤ fine_width`` the knob is
    the fine width, the first stage gets :data:`FIRST_RATIO` of it (the M shape, 58 of 80: the
    best of the reference shapes at small budgets, measured) and the stem ``512·knob/fine_width``
    hidden units (at least 64). Above, the fine width stays at ``fine_width`` and the first stage
    widens by one channel per knob step: NeRV++ M at ``knob = 80``, L at 134. Every count grows
    with the knob.
    """
    plan = plan_grid(height, width)
    fine = min(knob, fine_width)
    first = max(1, round(fine * FIRST_RATIO)) + max(0, knob - fine_width)
    channels = [first]
    for _ in plan.strides[1:]:
        channels.append(max(channels[-1] // 2, fine))
    return {
        "height": height,
        "width": width,
        "frame_count": frame_count,
        "base_h": plan.base_h,
        "base_w": plan.base_w,
        "strides": plan.strides,
        "stem_dim": first,
        "stem_hidden": max(64, round(STEM_HIDDEN * fine / fine_width)),
        "channels": tuple(channels),
    }


def nerv_sizing(height: int, width: int, frame_count: int, knob: int) -> NeRVConfig:
    """NeRV in the reference's shape (:func:`index_layout`, fine width 96)."""
    # head_kernel stays 3: the reference's 1x1 gained 0.65 dB at 50k/100 epochs but nothing at
    # 0.1M/150 epochs on Marathon (24.79 vs 24.78 dB RGB, 9 % more bytes); see models150/README
    return NeRVConfig(**index_layout(height, width, frame_count, knob, fine_width=NERV_FINE_WIDTH))


@register_model("nerv", NeRVConfig, nerv_sizing, "NeRV: positional encoding → MLP → NeRV blocks")
class NeRV(nn.Module):
    """Frame index in, frame out; the whole video lives in the weights."""

    INTERPOLATES: ClassVar[bool] = True
    """Continuous in time: frames between stored ones can be rendered (``--fps``)."""

    TRAINING_DEFAULTS: ClassVar[Mapping[str, Any]] = MappingProxyType(
        {"optimizer": "adam", "lr": 1e-3, "betas": (0.9, 0.999), "weight_decay": 0.0, "warmup": 0.2}
    )
    """Adam with cosine decay and 20% warm-up as in the NeRV/HNeRV reference training."""

    def __init__(self, config: NeRVConfig) -> None:
        super().__init__()
        self.config = config
        self.encoding = PositionalEncoding(config.pe_levels, config.pe_base)
        cells = config.base_h * config.base_w
        self.stem = nn.Sequential(
            nn.Linear(self.encoding.out_dim, config.stem_hidden),
            make_activation(config.activation),
            nn.Linear(config.stem_hidden, config.stem_dim * cells),
            make_activation(config.activation),
        )
        blocks = []
        in_ch = config.stem_dim
        for out_ch, stride in zip(config.channels, config.strides, strict=True):
            blocks.append(NeRVBlock(in_ch, out_ch, stride, config.kernel, config.activation))
            in_ch = out_ch
        self.blocks = nn.Sequential(*blocks)
        self.head = OutputHead(in_ch, config.head_kernel)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """``t``: (N,) frame positions in frame units (may be fractional) → (N, 3, H, W)."""
        cfg = self.config
        x = self.encoding(t / max(cfg.frame_count - 1, 1))
        x = self.stem(x).view(-1, cfg.stem_dim, cfg.base_h, cfg.base_w)
        x = self.head(self.blocks(x))
        return x[:, :, : cfg.height, : cfg.width]
