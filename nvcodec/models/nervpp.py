"""NeRV++ (Ghorbel et al., arXiv 2402.18305): NeRV with SCRB-sandwiched upsampling blocks.

::

    t ─► PE(t/(T-1)) ─► GatedMLP ─► reshape C₀×h₀×w₀
      ─► NeRV++ block(s₁, C₁) ─► … ─► NeRV++ block(sₙ, Cₙ) ─► 1×1 head ─► crop to H×W

    NeRV++ block (input x, C_in channels, h×w):
        p    = Conv1×1(x)                       C_in → C_out      (the 1×1 projection)
        main = SCRB_post(UB(SCRB_pre(p)))        C_out, (s·h)×(s·w)
        out  = main + bilinear_up_s(p)           (the bilinear skip)

Built as the reference implementation (ahmedgh970/NeRV-, ``model_best``) builds it; facts, not
code, were taken from it.

**Shared parts.** The positional encoding, the UB (:class:`~nvcodec.models.blocks.NeRVBlock`:
conv3×3 → PixelShuffle(s) → SiLU, the reference's ``--act swish``), the head
(:class:`~nvcodec.models.blocks.OutputHead` with a 1×1 kernel: conv to RGB, ``(tanh+1)/2``),
the gated-MLP stem (:class:`~nvcodec.models.blocks.GatedMLP`: 512 hidden units at the
reference sizes, no trailing activation), :func:`~nvcodec.models.blocks.plan_grid` (any frame
size; output cropped to H×W) and :func:`~nvcodec.models.blocks.xavier_init_` live in
:mod:`nvcodec.models.blocks`.

**Skip.** The skip is the 1×1 projection's output, upsampled ×s (bilinear, corners not
aligned), as in the reference: the projection already maps ``C_in → C_out``, so the skip costs
no parameters and channel changes happen at the low resolution.

**Pre-UB block** (``pre_block = "gated-cnn"``, the reference's): a pointwise conv ``C → 2h``
with ``h = ⌊8C/3⌋`` whose output splits into a gate ``g`` (h channels), an identity part ``i``
(h − C) and a conv part ``c`` (C) that passes a depthwise 5×5 conv; the block returns
``x + PW_out(GELU(g) ⊙ [i, DW(c)])`` (a gated CNN block without norm). Files written before it
(``pre_block = "scrb"``) used depthwise-first ``x + PW_out(act(a) ⊙ b)`` with ``[a, b] =
PW_in(DW(x))`` and hidden ``expansion·C``; they still decode.

**Post-UB block:** ``y + PW₂(GELU(PW₁(DW₃(y))))`` with hidden width ``expansion·C`` — 1 in the
reference (``C → C``).

**Initialisation.** Xavier-uniform conv weights, zero biases; the pointwise convs of the gated
CNN block are the reference's linear layers and start, like them and the stem, from a normal
distribution of std 0.02 truncated at ±2σ.

**Sizes.** :func:`~nvcodec.models.nerv.index_layout` with the reference's fine width 80: the
fine stages stay wide and equal, the first-stage width is the knob at the reference sizes (M:
channels 58, 80, 80, 80, 80 at 720p; L: 112, …), and smaller budgets shrink the M shape as a whole
(the XS shape, 8 of 80, left one channel in the first stage at 50k and trained 1.9 dB lower).

**Recipe.** The reference trains with Adam lr 5e-4, β (0.5, 0.999), cosine decay without
warm-up, and a 0.7·L1 + 0.3·(1 − SSIM) loss. nvcodec trains every model on MSE because PSNR is
what its rate-distortion numbers measure; the optimiser settings are measured in
``TRAINING_DEFAULTS``.
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
from nvcodec.models.config import ModelConfig, added_later, bounds
from nvcodec.models.nerv import index_layout
from nvcodec.models.registry import register_model

__all__ = ["SCRB", "GatedCNNBlock", "NeRVPP", "NeRVPPBlock", "NeRVPPConfig", "nervpp_sizing"]

FINE_WIDTH = 80
"""The reference's ``--lower-width``: the width of every stage after the first."""
GATED_KERNEL = 5
"""Depthwise kernel of the reference's pre-UB gated CNN block."""
PRE_BLOCKS = ("scrb", "gated-cnn")


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
    pre_block: str = dataclasses.field(
        default="scrb", metadata=added_later(choices=PRE_BLOCKS)
    )  # "scrb": files written before the reference's gated CNN block

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
                2 * self.pre_hidden(out_ch) * low,  # pre-UB block: gated pointwise conv output
                out_ch * s * s * low,  # UB conv output before the shuffle
                hidden * high,  # post-UB SCRB hidden pointwise output
                out_ch * high,  # post-UB depthwise output, bilinear skip, block output
            )
            h, w = h * s, w * s
        # the head runs on the padded grid before the crop
        return max(largest, 3 * h * w, super().activation_elements())

    @property
    def inner_activation(self) -> str:
        """The stem's and post-UB block's activation: GELU in the reference, whose ``--act``
        (here ``activation``) only sets the UB's; files before it used ``activation`` for all."""
        return "gelu" if self.pre_block == "gated-cnn" else self.activation

    def pre_hidden(self, channels: int) -> int:
        """Hidden width of the pre-UB block: ``⌊8C/3⌋`` (gated CNN), ``expansion·C`` (SCRB)."""
        if self.pre_block == "gated-cnn":
            return 8 * channels // 3
        return self.expansion * channels


def nervpp_sizing(height: int, width: int, frame_count: int, knob: int) -> NeRVPPConfig:
    """NeRV++ in the reference's shape and blocks (:func:`~nvcodec.models.nerv.index_layout`
    with fine width 80; gated CNN pre-block, post-block hidden ``C``, SiLU after the shuffle)."""
    layout = index_layout(height, width, frame_count, knob, fine_width=FINE_WIDTH)
    return NeRVPPConfig(**layout, expansion=1, activation="silu", pre_block="gated-cnn")


class GatedCNNBlock(nn.Module):
    """``x + PW_out(GELU(g) ⊙ [i, DW(c)])`` with ``[g, i, c] = PW_in(x)`` (NeRV++'s pre-UB block).

    ``PW_in`` maps ``C → 2h``; ``g`` takes h channels, ``i`` h − C and ``c`` the last C, which a
    depthwise conv mixes spatially, so only C of the 2h channels pay for a spatial kernel.
    """

    def __init__(self, channels: int, hidden: int, kernel: int) -> None:
        super().__init__()
        if hidden < channels:
            raise ConfigError(f"gated CNN block: hidden width {hidden} is below {channels}")
        self.split = (hidden, hidden - channels, channels)
        self.pw_in = nn.Conv2d(channels, 2 * hidden, 1)
        self.dw = nn.Conv2d(channels, channels, kernel, padding=kernel // 2, groups=channels)
        self.act = nn.GELU()
        self.pw_out = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, identity, conv = self.pw_in(x).split(self.split, dim=1)
        mixed = torch.cat([identity, self.dw(conv)], dim=1)
        return x + self.pw_out(self.act(gate) * mixed)


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
        config: NeRVPPConfig,
    ) -> None:
        super().__init__()
        c = config
        self.stride = stride
        hidden = c.expansion * out_ch
        self.proj = nn.Conv2d(in_ch, out_ch, 1)
        self.pre: nn.Module
        if c.pre_block == "gated-cnn":
            self.pre = GatedCNNBlock(out_ch, c.pre_hidden(out_ch), GATED_KERNEL)
        else:
            self.pre = SCRB(out_ch, hidden, c.dw_kernel, c.activation, gated=True)
        self.ub = NeRVBlock(out_ch, out_ch, stride, c.kernel, c.activation)
        self.post = SCRB(out_ch, hidden, c.dw_kernel, c.inner_activation, gated=False)

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

    INTERPOLATES: ClassVar[bool] = True
    """Continuous in time: frames between stored ones can be rendered (``--fps``)."""

    TRAINING_DEFAULTS: ClassVar[Mapping[str, Any]] = MappingProxyType(
        {
            "optimizer": "adam",
            "lr": 1e-3,
            "betas": (0.9, 0.999),
            "weight_decay": 0.0,
            "warmup": 0.2,
            "cpu_bf16": False,
        }
    )
    """NeRV's recipe (Adam, cosine decay, 20% warm-up): the summary names no other optimiser.
    fp32 on CPUs even with AMX: its depthwise, gated and bilinear paths gain nothing from bf16
    (training steps 0.79–0.91× fp32's from 160×80 to 640×320, ``benchmarks/results/precision``)."""

    def __init__(self, config: NeRVPPConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.encoding = PositionalEncoding(c.pe_levels, c.pe_base)
        self.stem = GatedMLP(
            self.encoding.out_dim,
            c.stem_hidden,
            c.stem_dim * c.base_h * c.base_w,
            c.inner_activation,
        )
        blocks = []
        in_ch = c.stem_dim
        for out_ch, stride in zip(c.channels, c.strides, strict=True):
            blocks.append(NeRVPPBlock(in_ch, out_ch, stride, c))
            in_ch = out_ch
        self.blocks = nn.Sequential(*blocks)
        self.head = OutputHead(in_ch, kernel=1)
        xavier_init_(self)
        if c.pre_block == "gated-cnn":  # the reference's linear layers: truncated normal
            linears = [m for m in self.modules() if isinstance(m, nn.Linear)]
            for block in self.blocks:
                linears += [block.pre.pw_in, block.pre.pw_out]
            for m in linears:
                nn.init.trunc_normal_(m.weight, std=0.02, a=-0.04, b=0.04)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """``t``: (N,) frame positions in frame units (may be fractional) → (N, 3, H, W)."""
        cfg = self.config
        x = self.encoding(t / max(cfg.frame_count - 1, 1))
        x = self.stem(x).view(-1, cfg.stem_dim, cfg.base_h, cfg.base_w)
        x = self.head(self.blocks(x))
        return x[:, :, : cfg.height, : cfg.width]
