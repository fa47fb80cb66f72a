"""HiNeRV (Kwan et al., NeurIPS 2023): feature grids, bilinear up-sampling, ConvNeXt blocks and
hierarchical encodings.

::

    t ─► base grids (levels, linear in t) ─► concat ─► Conv k×k stem ─►
      per stage i:  LayerNorm ─► bilinear ×sᵢ ─► + HierarchicalEncoding(t) ─► ConvNeXt ×dᵢ
      ─► Linear to RGB ─► sigmoid ─► crop to H×W

**Base encoding.** ``grid_levels`` learnable grids over (t, h, w) at the base resolution
``base_h × base_w = ⌈H/Πs⌉ × ⌈W/Πs⌉``; level ``i`` has ``max(1, Tg // 2^i)`` frames and
``grid_dim·2^i`` channels (coarser in time, wider in features). A frame's base map samples every
level linearly in time (:func:`~nvcodec.models.blocks.sample_time`, cell-centred) and
concatenates them; the grids are never interpolated in space (they are at the base resolution).
Grids start at U(±1e-3).

**Stages.** Each stage normalises (LayerNorm over channels, no affine), upsamples ×s bilinearly
(``align_corners=False``), adds its :class:`~nvcodec.models.blocks.HierarchicalEncoding` at the
incoming width, then runs ``depth`` ConvNeXt blocks (depthwise k×k → LayerNorm → ×e MLP → GELU,
no biases; the first block maps the incoming width to the stage's and has no residual). Widths:
stage 0 keeps the stem width ``C``, every later stage halves it (``C, C/2, C/4, C/8``). The
head is a linear layer to RGB and a sigmoid.

**Reference configuration** (hmkx/HiNeRV, Bunny 720p "XXS"): scales 5,2,2,2, depths 3,3,3,1,
expansions 4,4,4,1, kernels 3, stem 3×3, width 136, base grids 2 levels of 40/20 frames × 2/4
channels, local grids 3 levels with 4 channels at stage 0 (halved per stage). Its ≈0.77M
parameters split as: blocks and stem 81 %, base grids 12 %, local encodings 7 %.

**Sizing** (:func:`hinerv_sizing`): the knob is the width ``C``, as in the reference; the base
and local grid channels are then set so that the grids keep the reference's share of the budget
(base ≈ 0.148×, local ≈ 0.085× the decoder's parameters, at least 1 channel; the base grids'
channels at most half the width, since a few-cell base grid at small frames would otherwise buy
a stem wider than the grids), with
``Tg = 0.3·T`` base-grid frames (the reference's 40 of 132). :func:`plan_hinerv` picks 4 stages
``(s₁, s₂, 2, 2)`` whose base grid has about 18 cells on the short side (the reference's base at
720p and 1080p), or as close as 4 stages allow at small frames, padding at most 5 %.

**Patches** (:meth:`HiNeRV.forward_patch`): every operation is local — k×k convolutions,
bilinear up-sampling, per-pixel norms and MLPs, and position-indexed encodings — so a patch of
the output depends only on a window of base cells around it. The patch is rendered from that
window (a halo of :meth:`HiNeRVConfig.halo` cells, cut at the frame's edges, where padding is
then the same as for the whole frame), every stage's output cut to the context the later stages
still need (as the reference pads per stage), and cropped: equal to the whole-frame decode up to
float rounding, at a fraction of the memory. Training on patches (``--patch``) uses it.

**Differences from the reference, and why.** nvcodec trains every model on MSE (it reports
PSNR), not 0.7·L1 + 0.3·MS-SSIM; otherwise the reference's recipe is the default (Adam, 10 %
warm-up, cosine) at lr 1e-2 instead of 2e-3 (measured, see ``TRAINING_DEFAULTS``). Pruning and
quantisation are nvcodec's pipeline (RD training by default), not the reference's Quant-Noise.
No gradient-norm clipping by default (the reference clips at 1.0; ``clip`` 1.0 did not stop
hinerv-flat's divergence on Dashcam, 31.97 dB against 32.13 without); nvcodec's loop undoes a
diverged epoch instead (:mod:`nvcodec.training.rollback`). Grids are stored
``(T, C, h, w)`` (base) and ``(T, s, s, C)`` (local).

**Small frames.** The halving widths suit the reference's 720p+ frames, where stage 0 runs at
90×160; at 160×80 it runs at 10×20 and holds over half the budget while the full-resolution stage
has a handful of channels. Measured at an equal budget, flat widths train 1.2–3.0 dB higher
(``benchmarks/results/hinerv``); ``hinerv`` keeps the reference's rule and ``hinerv-flat`` (same
model, same file layout) sizes every stage at the knob's width.
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
    GridPlan,
    HierarchicalEncoding,
    encoding_width_for,
    sample_time,
)
from nvcodec.models.config import MAX_FRAMES, ModelConfig, bounds
from nvcodec.models.convnext import ConvNeXtBlock
from nvcodec.models.registry import register_model

__all__ = [
    "BASE_GRID_SHARE",
    "LOCAL_GRID_SHARE",
    "HiNeRV",
    "HiNeRVConfig",
    "hinerv_flat_sizing",
    "hinerv_sizing",
    "plan_hinerv",
    "sized_hinerv",
]

BASE_GRID_SHARE = 0.148
"""Base grids ÷ decoder parameters in the reference's Bunny XXS (92.2k / 621.5k)."""
LOCAL_GRID_SHARE = 0.085
"""Hierarchical encodings ÷ decoder parameters in the reference's Bunny XXS (52.7k / 621.5k)."""
GRID_FRAME_RATE = 0.3
"""Base-grid frames per video frame (the reference's 40 for Bunny's 132)."""


@dataclasses.dataclass(frozen=True)
class HiNeRVConfig(ModelConfig):
    MODEL_ID: ClassVar[str] = "hinerv"

    base_h: int = dataclasses.field(default=1, metadata=bounds(1, 1024))
    base_w: int = dataclasses.field(default=1, metadata=bounds(1, 1024))
    grid_frames: int = dataclasses.field(default=1, metadata=bounds(1, MAX_FRAMES))
    grid_levels: int = dataclasses.field(default=2, metadata=bounds(1, 4))
    grid_dim: int = dataclasses.field(default=2, metadata=bounds(1, 256))
    stem_kernel: int = dataclasses.field(default=3, metadata=bounds(1, 7))
    stem_dim: int = dataclasses.field(default=16, metadata=bounds(1, 4096))
    strides: tuple[int, ...] = dataclasses.field(default=(2,), metadata=bounds(1, 8, max_len=6))
    channels: tuple[int, ...] = dataclasses.field(
        default=(16,), metadata=bounds(1, 4096, max_len=6)
    )
    depths: tuple[int, ...] = dataclasses.field(default=(1,), metadata=bounds(1, 8, max_len=6))
    expansions: tuple[int, ...] = dataclasses.field(default=(4,), metadata=bounds(1, 8, max_len=6))
    kernels: tuple[int, ...] = dataclasses.field(default=(3,), metadata=bounds(1, 7, max_len=6))
    local_dim: int = dataclasses.field(default=1, metadata=bounds(1, 256))
    local_levels: int = dataclasses.field(default=3, metadata=bounds(1, 4))

    def validate(self) -> None:
        super().validate()
        stages = len(self.strides)
        if (
            not len(self.channels)
            == len(self.depths)
            == len(self.expansions)
            == len(self.kernels)
            == stages
        ):
            raise ConfigError("hinerv config: one width, depth, expansion and kernel per stride")
        if any(k % 2 == 0 for k in (*self.kernels, self.stem_kernel)):
            raise ConfigError("hinerv config: kernel sizes must be odd")
        if self.grid_frames > self.frame_count:
            raise ConfigError("hinerv config: more base-grid frames than video frames")
        self.check_output_grid(self.base_h * self.scale, self.base_w * self.scale)

    @property
    def scale(self) -> int:
        return math.prod(self.strides)

    @property
    def grid_shapes(self) -> list[tuple[int, int, int, int]]:
        """``(frames, channels, h, w)`` of each base-grid level."""
        return [
            (max(1, self.grid_frames // 2**i), self.grid_dim * 2**i, self.base_h, self.base_w)
            for i in range(self.grid_levels)
        ]

    def stage_widths(self) -> list[tuple[int, int]]:
        """(incoming width, stage width) per stage."""
        ins = (self.stem_dim, *self.channels[:-1])
        return list(zip(ins, self.channels, strict=True))

    def local_dims(self) -> list[int]:
        """Channels of the finest local-grid level at each stage (halved per stage, ≥ 1)."""
        return [max(1, self.local_dim >> i) for i in range(len(self.strides))]

    def reaches(self) -> list[int]:
        """Context (pixels at that resolution) that the rest of the network needs around a
        region, after the stem and after each stage: the stage's blocks reach ``depth·(k−1)/2``
        pixels at its resolution, its bilinear up-sampling one source pixel more."""
        reach, out = 0, [0]
        stages = zip(self.strides, self.depths, self.kernels, strict=True)
        for s, depth, k in reversed(list(stages)):
            reach = -(-(reach + depth * (k // 2)) // s) + 1
            out.append(reach)
        return out[::-1]

    def halo(self) -> int:
        """Base cells of context a patch needs on each side for its pixels to equal the whole
        frame's (the stem reaches ``(k−1)/2`` more base cells)."""
        return self.reaches()[0] + self.stem_kernel // 2

    def activation_elements(self) -> int:
        h, w = self.base_h, self.base_w
        largest = sum(c for _, c, _, _ in self.grid_shapes) * h * w
        largest = max(largest, self.stem_dim * h * w)
        for (c_in, c_out), s, e in zip(
            self.stage_widths(), self.strides, self.expansions, strict=True
        ):
            h, w = h * s, w * s
            largest = max(largest, max(c_in, c_out * e) * h * w)
        return max(largest, 3 * h * w, super().activation_elements())


def plan_hinerv(height: int, width: int, *, max_pad: float = 0.05) -> GridPlan:
    """Strides ``(s₁, s₂, 2, 2)``, ``s₁ ∈ {2..5}``, ``s₂ ∈ {2, 3, 4}``, for any frame size.

    The target is the reference's base grid: 18 cells on the short side (its 720p and 1080p
    configs, scales 5,2,2,2 and 5,3,2,2). Small frames get as close as four stages allow
    (Πs ≥ 16: 5 cells at 80 px). Among plans padding at most ``max_pad``: the base grid closest
    to the target (in ratio), then the least padding, then the larger ``s₁``. If none pads little
    enough: the least padding. Measured on Bunny 160×80×16 at 50k parameters, 80 epochs: the
    5×10 base (Πs = 16) trained 1.0 dB above the 2×4 base of the reference's own scales.
    """
    target = 18.0
    plans = []
    for s1 in (5, 4, 3, 2):
        for s2 in (2, 3, 4):
            strides = (s1, s2, 2, 2)
            scale = math.prod(strides)
            plans.append(GridPlan(-(-height // scale), -(-width // scale), strides))
    good = [p for p in plans if p.padding_ratio(height, width) <= max_pad]
    if not good:
        return min(plans, key=lambda p: (p.padding_ratio(height, width), -p.strides[0]))
    return min(
        good,
        key=lambda p: (
            round(abs(math.log(min(p.base_h, p.base_w) / target)), 6),
            p.padding_ratio(height, width),
            -p.strides[0],
        ),
    )


def _block_params(c_in: int, c_out: int, expansion: int, kernel: int) -> int:
    return kernel * kernel * c_in + c_in * expansion * c_out + expansion * c_out * c_out


def hinerv_sizing(height: int, width: int, frame_count: int, knob: int) -> HiNeRVConfig:
    """HiNeRV of width ``knob`` with the reference's stage layout and grid shares."""
    return sized_hinerv(height, width, frame_count, knob, reduction=2.0)


def hinerv_flat_sizing(height: int, width: int, frame_count: int, knob: int) -> HiNeRVConfig:
    """HiNeRV of width ``knob`` at every stage (``hinerv-flat``): for frames below the
    reference's 720p, where halving leaves the full-resolution stage a handful of channels."""
    return sized_hinerv(height, width, frame_count, knob, reduction=1.0)


def sized_hinerv(
    height: int, width: int, frame_count: int, knob: int, *, reduction: float
) -> HiNeRVConfig:
    """HiNeRV of width ``knob`` whose stage widths shrink by ``reduction`` per stage (the
    reference's 2.0), with the reference's stage layout and grid shares."""
    plan = plan_hinerv(height, width)
    stages = len(plan.strides)
    channels = tuple(max(1, int(knob / reduction**i)) for i in range(stages))
    depths, expansions, kernels = (3, 3, 3, 1), (4, 4, 4, 1), (3, 3, 3, 3)
    decoder = 3 * channels[-1] + 3
    for (c_in, c_out), d, e, k in zip(
        zip((knob, *channels[:-1]), channels, strict=False),
        depths,
        expansions,
        kernels,
        strict=True,
    ):
        decoder += _block_params(c_in, c_out, e, k) + (d - 1) * _block_params(c_out, c_out, e, k)
    grid_frames = max(1, min(frame_count, round(frame_count * GRID_FRAME_RATE)))
    levels = 2
    per_channel = sum(
        max(1, grid_frames // 2**i) * 2**i * plan.base_h * plan.base_w for i in range(levels)
    )
    # Small frames have few base cells, so the share alone would buy very wide grids and a stem
    # larger than the grids; the reference's base is far narrower than its width (6 of 136).
    grid_dim = max(1, min(round(BASE_GRID_SHARE * decoder / per_channel), knob // 6))
    local_levels = 3
    local_dim = encoding_width_for(
        LOCAL_GRID_SHARE * decoder, frame_count, plan.strides, (knob, *channels[:-1]), local_levels
    )
    return HiNeRVConfig(
        height=height,
        width=width,
        frame_count=frame_count,
        base_h=plan.base_h,
        base_w=plan.base_w,
        grid_frames=grid_frames,
        grid_levels=levels,
        grid_dim=min(256, grid_dim),
        stem_kernel=3,
        stem_dim=knob,
        strides=plan.strides,
        channels=channels,
        depths=depths[:stages],
        expansions=expansions[:stages],
        kernels=kernels[:stages],
        local_dim=local_dim,
        local_levels=local_levels,
    )


def _layer_norm(x: torch.Tensor) -> torch.Tensor:
    """LayerNorm over the channels of N×C×H×W, no affine (the up-sampler's norm)."""
    y = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), eps=1e-6)
    return y.permute(0, 3, 1, 2)


@register_model(
    "hinerv",
    HiNeRVConfig,
    hinerv_sizing,
    "HiNeRV: feature grids → bilinear up-sampling + ConvNeXt blocks + hierarchical encodings",
    # bf16 training steps on AMX ran at 0.72–0.76× fp32's from 160×80 to 640×320 (its narrow
    # late stages are norms and interpolation): fp32 on CPUs (benchmarks/results/precision)
    recipe={"cpu_bf16": False},
)
class HiNeRV(nn.Module):
    """Frame position in, frame out; the video lives in the grids and the decoder."""

    INTERPOLATES: ClassVar[bool] = True
    """Every grid is continuous in time, so frames between stored ones render (``--fps``)."""

    TRAINING_DEFAULTS: ClassVar[Mapping[str, Any]] = MappingProxyType(
        {
            "optimizer": "adam",
            "lr": 1e-2,
            "betas": (0.9, 0.999),
            "weight_decay": 0.0,
            "warmup": 0.1,
            "fine_tune": 0.2,
            "channels_last": False,
        }
    )
    """The reference's recipe (Adam, 30 of 300 epochs warm-up, cosine decay) at a higher lr: the
    reference's 2e-3 is for widths of 136 and up; at 50k parameters on Bunny 160×80×16, 80
    epochs, lr 2e-3 / 5e-3 / 1e-2 / 2e-2 trained to 25.80 / 26.40 / 26.89 / 27.41 dB.

    Fine-tunes at a fifth of the usual fractions of that lr (``fine_tune``: RD noise phase 1e-3
    instead of 5e-3, straight-through 4e-4 instead of 2e-3): at the usual ones the RD phase
    knocked hinerv-flat from 32.3 to 24.5 dB and re-trained it for most of its epochs.
    Measured on Marathon 160×80×48, 0.3M, 150 epochs, 175 kB target: the file decodes at 32.07
    dB instead of 31.27 at equal bytes (float model: 32.27 dB).

    NCHW training (``channels_last`` off): channels-last training steps ran at 0.96–0.99× NCHW's
    for both HiNeRVs at 160×80 and 640×320 in their own arithmetic
    (``benchmarks/results/throughput/training_layout/steps.md``)."""

    config: HiNeRVConfig

    def __init__(self, config: HiNeRVConfig) -> None:
        super().__init__()
        self.config = c = config
        for i, shape in enumerate(c.grid_shapes):
            grid = nn.init.uniform_(torch.empty(shape), -1e-3, 1e-3)
            self.register_parameter(f"grid{i}", nn.Parameter(grid))
        base_dim = sum(shape[1] for shape in c.grid_shapes)
        self.stem = nn.Conv2d(base_dim, c.stem_dim, c.stem_kernel, padding=c.stem_kernel // 2)
        nn.init.zeros_(self.stem.bias)
        self.encodings = nn.ModuleList(
            HierarchicalEncoding(c.frame_count, s, c_in, dim, c.local_levels)
            for s, (c_in, _), dim in zip(c.strides, c.stage_widths(), c.local_dims(), strict=True)
        )
        stages = []
        for (c_in, c_out), depth, e, k in zip(
            c.stage_widths(), c.depths, c.expansions, c.kernels, strict=True
        ):
            blocks = [ConvNeXtBlock(c_in, e, out_dim=c_out, kernel=k, bias=False, affine=False)]
            blocks += [
                ConvNeXtBlock(c_out, e, kernel=k, bias=False, affine=False)
                for _ in range(depth - 1)
            ]
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.head = nn.Linear(c.channels[-1], 3)

    def render(
        self,
        t: torch.Tensor,
        window: tuple[int, int, int, int] | None = None,
        keep: tuple[int, int, int, int] | None = None,
    ) -> torch.Tensor:
        """Frames ``t`` (N,) on the padded grid, or on the base-cell ``window`` (r0, r1, c0, c1)
        of it → (N, 3, rows·Πs, cols·Πs). With ``keep`` (base cells inside the window) each
        stage's output is cut to what the cells ``keep`` still need (:meth:`HiNeRVConfig.
        reaches`), so the fine stages compute little more than the patch itself; the output
        then covers ``keep`` plus the last stage's reach (none), clipped to the grid."""
        c = self.config
        r0, r1, c0, c1 = window or (0, c.base_h, 0, c.base_w)
        levels = [getattr(self, f"grid{i}")[:, :, r0:r1, c0:c1] for i in range(c.grid_levels)]
        x = self.stem(torch.cat([sample_time(g, t, c.frame_count) for g in levels], dim=1))
        origin, scale = (r0, c0), 1
        reaches = c.reaches()
        if keep is not None:
            x, origin = self._cut(x, origin, keep, scale, reaches[0])
        stages = zip(c.strides, self.encodings, self.stages, strict=True)
        for i, (s, encoding, blocks) in enumerate(stages):
            x = F.interpolate(_layer_norm(x), scale_factor=s, mode="bilinear", align_corners=False)
            origin, scale = (origin[0] * s, origin[1] * s), scale * s
            x = blocks(encoding(x, t, origin))
            if keep is not None:
                x, origin = self._cut(x, origin, keep, scale, reaches[i + 1])
        x = torch.sigmoid(self.head(x.permute(0, 2, 3, 1)))
        return x.permute(0, 3, 1, 2)

    def _cut(
        self,
        x: torch.Tensor,
        origin: tuple[int, int],
        keep: tuple[int, int, int, int],
        scale: int,
        reach: int,
    ) -> tuple[torch.Tensor, tuple[int, int]]:
        """``x`` (whose pixel (0, 0) is grid pixel ``origin`` at ``scale``) cut to the cells
        ``keep`` plus ``reach`` pixels, within the grid; returns it and its new origin."""
        c = self.config
        r0, r1, c0, c1 = keep
        top = max(origin[0], r0 * scale - reach)
        left = max(origin[1], c0 * scale - reach)
        bottom = min(origin[0] + x.shape[-2], r1 * scale + reach, c.base_h * scale)
        right = min(origin[1] + x.shape[-1], c1 * scale + reach, c.base_w * scale)
        x = x[:, :, top - origin[0] : bottom - origin[0], left - origin[1] : right - origin[1]]
        return x, (top, left)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """``t``: (N,) frame positions in frame units (may be fractional) → (N, 3, H, W)."""
        return self.render(t)[:, :, : self.config.height, : self.config.width]

    def patch_cells(self, pixels: int) -> list[tuple[int, int, int, int]]:
        """Tiles of about ``pixels`` × ``pixels`` (whole base cells, at least one) covering the
        frame, as (r0, r1, c0, c1) base-cell ranges; the last row/column of tiles may be smaller."""
        c = self.config
        side = max(1, -(-pixels // c.scale))
        return [
            (r, min(r + side, c.base_h), q, min(q + side, c.base_w))
            for r in range(0, c.base_h, side)
            for q in range(0, c.base_w, side)
            if r * c.scale < c.height and q * c.scale < c.width
        ]

    def patch_slices(self, cells: tuple[int, int, int, int]) -> tuple[slice, slice]:
        """The frame's pixel rows and columns of base cells ``cells`` (cropped to the frame)."""
        c = self.config
        r0, r1, c0, c1 = cells
        s = c.scale
        return slice(r0 * s, min(r1 * s, c.height)), slice(c0 * s, min(c1 * s, c.width))

    def forward_patch(self, t: torch.Tensor, cells: tuple[int, int, int, int]) -> torch.Tensor:
        """The pixels :meth:`patch_slices` of frames ``t``, equal to ``forward(t)`` there (see
        the module docstring): rendered from a window with a halo of context, each stage cut
        to the context the later stages still need, then cropped to the frame."""
        c = self.config
        r0, r1, c0, c1 = cells
        halo = c.halo()
        w0, w1 = max(0, r0 - halo), min(c.base_h, r1 + halo)
        v0, v1 = max(0, c0 - halo), min(c.base_w, c1 + halo)
        out = self.render(t, (w0, w1, v0, v1), keep=cells)
        rows, cols = self.patch_slices(cells)
        return out[:, :, : rows.stop - rows.start, : cols.stop - cols.start]


register_model(
    "hinerv-flat",
    HiNeRVConfig,
    hinerv_flat_sizing,
    "HiNeRV with one width at every stage (for small frames: the reference halves it per stage)",
)(HiNeRV)
