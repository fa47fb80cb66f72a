"""NeRV++ (Ghorbel et al., arXiv 2402.18305): NeRV with SCRB-sandwiched upsampling blocks.

::

    t ─► PE(t/(T-1)) ─► GatedMLP ─► reshape C₀×h₀×w₀
      ─► NeRV++ block(s₁, C₁) ─► … ─► NeRV++ block(sₙ, Cₙ) ─► 1×1 head ─► crop to H×W

    NeRV++ block (input x, C_in channels, h×w):
        p    = Conv1×1(x)                       C_in → C_out      (the 1×1 projection)
        main = SCRB_post(UB(SCRB_pre(p)))        C_out, (s·h)×(s·w)
        out  = main + bilinear_up_s(p)           (the bilinear skip)

**Shared parts.** The positional encoding, the UB (:class:`~nvcodec.models.blocks.NeRVBlock`:
conv3×3 → PixelShuffle(s) → activation), the head (:class:`~nvcodec.models.blocks.OutputHead`
with a 1×1 kernel: conv to RGB, ``(tanh+1)/2``), the gated-MLP stem
(:class:`~nvcodec.models.blocks.GatedMLP`), :func:`~nvcodec.models.blocks.plan_grid` (any frame
size; output cropped to H×W) and :func:`~nvcodec.models.blocks.xavier_init_` all live in
:mod:`nvcodec.models.blocks`.

**Skip channels.** The skip must have the block's output width. We take it from the 1×1
projection's output: the projection already maps ``C_in → C_out``, so the SCRB–UB–SCRB sandwich
runs at ``C_out`` throughout and the skip costs no parameters (a separate 1×1 channel map on the
skip would duplicate the projection). Channel reduction therefore happens in the cheap 1×1 conv
at the *low* resolution, and the UB is a square ``C_out → C_out·s²`` conv. The skip is
``F.interpolate(p, scale_factor=s, mode="bilinear", align_corners=False)``.

**SCRBs** (separable conv residual blocks, hidden width ``e·C`` with ``e = expansion``):

* pre-UB, gated: ``p + PW_out(act(a) ⊙ b)`` with ``[a, b] = PW_in(DW_k(p))`` — a depthwise
  ``k×k`` conv, a pointwise conv to ``2·e·C`` channels split into gate ``a`` and value ``b``
  (GLU-style gating), and a pointwise conv back to ``C``.
* post-UB: ``y + PW₂(GELU(PW₁(DW₃(y))))`` — depthwise 3×3 → 1×1 → activation → 1×1.

Both are exact identities when their last pointwise conv is zero. The paper summary gives no
expansion ratio; we use ``e = 2`` (NAFNet-like) in the sizing rule — SCRB parameters are small
next to the UB's ``9·s²·C²`` either way.

**Initialisation.** Xavier-uniform weights, zero biases on every conv and linear (the paper).

**Sizes.** The knob is the stem width ``C₀``; the first block keeps it, later blocks halve it
with a floor of ``max(4, C₀/4)`` (NeRV's rule), stem hidden ``min(512, max(64, 2·C₀))``.

**Recipe.** The summary we have states no optimiser; following NeRV (which NeRV++ builds on and
whose reference training it keeps) we use Adam, lr 1e-3, betas (0.9, 0.999), no weight decay,
cosine schedule with 20 % warm-up — the same as this package's NeRV.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from nvcodec.errors import ConfigError
from nvcodec.models.blocks import (
    ACTIVATIONS,
    GatedMLP,
    NeRVBlock,
    OutputHead,
    PositionalEncoding,
    make_activation,
    xavier_init_,
)
from nvcodec.models.config import ModelConfig, bounds
from nvcodec.models.nerv import index_layout
from nvcodec.models.registry import register_model

__all__ = ["SCRB", "NeRVPP", "NeRVPPBlock", "NeRVPPConfig", "nervpp_sizing"]


@dataclasses.dataclass(frozen=True)
class NeRVPPConfig(ModelConfig):
    MODEL_ID: ClassVar[str] = "nerv++"

    base_h: int = dataclasses.field(default=1, metadata=bounds(1, 1024))
    base_w: int = dataclasses.field(default=1, metadata=bounds(1, 1024))
    strides: tuple[int, ...] = dataclasses.field(default=(1,), metadata=bounds(1, 8, max_len=8))
    stem_dim: int = dataclasses.field(default=8, metadata=bounds(1, 4096))
    stem_hidden: int = dataclasses.field(default=64, metadata=bounds(1, 8192))
    channels: tuple[int, ...] = dataclasses.field(default=(8,), metadata=bounds(1, 4096, max_len=8))
    kernel: int = dataclasses.field(default=3, metadata=bounds(1, 7))  # UB conv
    dw_kernel: int = dataclasses.field(default=3, metadata=bounds(1, 7))  # SCRB depthwise convs
    expansion: int = dataclasses.field(default=2, metadata=bounds(1, 8))  # SCRB hidden = e·C
    pe_levels: int = dataclasses.field(default=40, metadata=bounds(1, 128))
    pe_base: float = dataclasses.field(default=1.25, metadata=bounds(1.0, 4.0))
    activation: str = dataclasses.field(default="gelu", metadata={"choices": ACTIVATIONS})

    def validate(self) -> None:
        super().validate()
        if len(self.channels) != len(self.strides):
            raise ConfigError("nerv++ config: one channel count per stride is required")
        for name in ("kernel", "dw_kernel"):
            if getattr(self, name) % 2 == 0:
                raise ConfigError(f"nerv++ config: {name} must be odd")
        scale = math.prod(self.strides)
        self.check_output_grid(self.base_h * scale, self.base_w * scale)

    def activation_elements(self) -> int:
        h, w = self.base_h, self.base_w
        largest = max(self.stem_dim * h * w, self.stem_hidden, 2 * self.pe_levels)
        for out_ch, s in zip(self.channels, self.strides, strict=True):
            hidden = self.expansion * out_ch
            low, high = h * w, h * s * w * s
            largest = max(
                largest,
                2 * hidden * low,  # pre-UB SCRB: gated pointwise conv output (gate + value)
                out_ch * s * s * low,  # UB conv output before the shuffle
                hidden * high,  # post-UB SCRB hidden pointwise output
                out_ch * high,  # post-UB depthwise output, bilinear skip, block output
            )
            h, w = h * s, w * s
        # the head runs on the padded grid before the crop
        return max(largest, 3 * h * w, super().activation_elements())


def nervpp_sizing(height: int, width: int, frame_count: int, knob: int) -> NeRVPPConfig:
    """NeRV++ with stem width ``knob``: the layout it shares with NeRV (``index_layout``)."""
    return NeRVPPConfig(**index_layout(height, width, frame_count, knob))


class SCRB(nn.Module):
    """Separable conv residual block: ``x + PW_out(mix(PW_in(DW(x))))``.

    ``gated=True`` (pre-UB): ``PW_in`` outputs ``2·hidden`` channels split into ``a, b`` and
    ``mix = act(a) ⊙ b``. ``gated=False`` (post-UB): ``PW_in`` outputs ``hidden`` channels and
    ``mix = act``. ``DW`` is a depthwise ``kernel×kernel`` conv; the block is the identity when
    ``pw_out`` is zero.
    """

    def __init__(self, channels: int, hidden: int, kernel: int, act: str, *, gated: bool) -> None:
        super().__init__()
        self.gated = gated
        self.dw = nn.Conv2d(channels, channels, kernel, padding=kernel // 2, groups=channels)
        self.pw_in = nn.Conv2d(channels, hidden * (2 if gated else 1), 1)
        self.act = make_activation(act)
        self.pw_out = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pw_in(self.dw(x))
        if self.gated:
            gate, value = y.chunk(2, dim=1)
            y = self.act(gate) * value
        else:
            y = self.act(y)
        return x + self.pw_out(y)


class NeRVPPBlock(nn.Module):
    """1×1 projection → pre-UB SCRB → UB (NeRVBlock) → post-UB SCRB, plus a bilinear skip.

    The skip is the projection's output upsampled ×``stride`` (bilinear), so it already has
    ``out_ch`` channels (see the module docstring).
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        stride: int,
        kernel: int,
        dw_kernel: int,
        expansion: int,
        act: str,
    ) -> None:
        super().__init__()
        self.stride = stride
        hidden = expansion * out_ch
        self.proj = nn.Conv2d(in_ch, out_ch, 1)
        self.pre = SCRB(out_ch, hidden, dw_kernel, act, gated=True)
        self.ub = NeRVBlock(out_ch, out_ch, stride, kernel, act)
        self.post = SCRB(out_ch, hidden, dw_kernel, act, gated=False)

    def skip(self, projected: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return projected
        return F.interpolate(
            projected, scale_factor=self.stride, mode="bilinear", align_corners=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.proj(x)
        return self.post(self.ub(self.pre(p))) + self.skip(p)


@register_model(
    "nerv++",
    NeRVPPConfig,
    nervpp_sizing,
    "NeRV++: positional encoding → gated MLP → SCRB-UB-SCRB blocks with bilinear skips",
)
class NeRVPP(nn.Module):
    """Frame index in, frame out; the whole video lives in the weights."""

    TRAINING_DEFAULTS: ClassVar[Mapping[str, Any]] = MappingProxyType(
        {"optimizer": "adam", "lr": 1e-3, "betas": (0.9, 0.999), "weight_decay": 0.0, "warmup": 0.2}
    )
    """NeRV's recipe (Adam, cosine decay, 20% warm-up): the summary names no other optimiser."""

    def __init__(self, config: NeRVPPConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.encoding = PositionalEncoding(c.pe_levels, c.pe_base)
        self.stem = GatedMLP(
            self.encoding.out_dim, c.stem_hidden, c.stem_dim * c.base_h * c.base_w, c.activation
        )
        blocks = []
        in_ch = c.stem_dim
        for out_ch, stride in zip(c.channels, c.strides, strict=True):
            blocks.append(
                NeRVPPBlock(in_ch, out_ch, stride, c.kernel, c.dw_kernel, c.expansion, c.activation)
            )
            in_ch = out_ch
        self.blocks = nn.Sequential(*blocks)
        self.head = OutputHead(in_ch, kernel=1)
        xavier_init_(self)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """``t``: (N,) frame positions in frame units (may be fractional) → (N, 3, H, W)."""
        cfg = self.config
        x = self.encoding(t / max(cfg.frame_count - 1, 1))
        x = self.stem(x).view(-1, cfg.stem_dim, cfg.base_h, cfg.base_w)
        x = self.head(self.blocks(x))
        return x[:, :, : cfg.height, : cfg.width]
