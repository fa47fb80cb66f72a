"""DNeRV (Zhao et al., CVPR 2023): HNeRV's content stream plus a frame-difference stream.

::

    encoding only:  x_t                         ─► ConvNeXt (all strides)      ─► content emb.
                    [x_t − x_{t−1}, x_{t+1} − x_t] ─► ConvNeXt (strides s_j..sₙ) ─► diff emb.

    stored:  embeddings[t] (C × h × w) ─► lift ─► NeRVBlock(s₁) … NeRVBlock(s_k) ─┐
             diff_embeddings[t] (2 × h_j × w_j) ─► lift ─► NeRVBlock(s_j) … (s_k) ─► CCU
                                                           ─► NeRVBlock(s_{k+1}) … ─► head ─► crop

Built as the reference implementation (QiZhao-NJU, ``model/D_NeRV.py``, ``cfgs/DNeRV.yaml``)
builds it; facts, not code, were taken from it.

**Content stream.** Exactly HNeRV's (:mod:`nvcodec.models.hnerv`): same plan, kernels 1,3,5,5,5,
channel reduction 1.2, 16-channel embedding; this class subclasses :class:`~nvcodec.models.hnerv.
HNeRV` and only adds the second stream. The reference's sigmoid output is the shared head's
``(tanh(x) + 1)/2 = σ(2x)``: the same family of outputs.

**Difference stream.** A second ConvNeXt encoder reads the stacked differences to the previous and
next frame (6 channels; at the clip's ends the missing neighbour is the frame itself, so that
difference is zero) down to a 2-channel embedding on the decoder grid entering stage ``j``
(``diff_from``). A 1×1 conv lifts it to that stage's width and NeRV blocks with the content
stages' strides and widths (kernel 3, or 1 where the content stage has 1) bring it to the fusion
grid. Both tables (``embeddings``, ``diff_embeddings``) are stored and counted in ``--size``.

**Where.** At 960×1920 the reference stores a 2×40×80 difference embedding (1/24 of the frame
side), decodes it with one ×4 block and fuses before the last two stages (×3, ×2).
:func:`difference_plan` keeps both: the CCU sits before the last two stages (before the last one
in two-stage plans), and the difference embedding on the earlier decoder grid closest to 1/24 of
the frame side (ties: the coarser grid), which reproduces the reference at 960×1920 and puts it at
40×80 for 640×1280 and 2×4 for Bunny at 160×80. Density matters: 2 values per 24×24 pixels;
this package's first DNeRV put the difference embedding on the fusion grid itself (1/8 of the
side at 160×80), where it took 54 % of a 0.1M budget.

**CCU (collaborative content unit).** At the fusion point, with content features ``c`` and the
decoded difference features ``d`` (both C channels)::

    p = tanh(Conv_p(c) + Conv_pd(d)),   s = σ(Conv_s(c) + Conv_sd(d)),   out = s·p + (1 − s)·c

four ``ccu_kernel × ccu_kernel`` (3×3) convs, C → C.

**Files written before the difference decoder** have no ``diff_from``: their difference
embedding sits on the fusion grid itself and the CCU's ``d`` convolutions read its 2 channels.
They still decode.

**Recipe.** The reference (``cfgs/DNeRV.yaml`` and its training loop) trains with Adam lr 5e-4,
β (0.5, 0.999), 20 % warm-up, cosine decay, L2 loss and the gradient norm clipped at 0.1 — its
guard against the known collapse (the loss stalls at a constant frame early on). Measured on
Marathon 160×80×16 at 50k parameters, 100 epochs (float PSNR-RGB): the reference's optimiser
22.20 dB with or without clipping, HNeRV's (Adam 1e-3, β (0.9, 0.999), 10 % warm-up) 23.54 dB
without and 23.53 dB with the clipping. The default is HNeRV's optimiser with the reference's
clipping. If a run's PSNR stays flat, encode again with another ``--seed``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

import torch
from torch import nn

from nvcodec.errors import ConfigError
from nvcodec.models.blocks import NeRVBlock
from nvcodec.models.config import added_later, bounds
from nvcodec.models.convnext import ConvNeXtEncoder
from nvcodec.models.hnerv import HNeRV, HNeRVConfig, hybrid_fields, pad_to_grid
from nvcodec.models.registry import register_model

__all__ = [
    "CollaborativeContentUnit",
    "DNeRV",
    "DNeRVConfig",
    "difference_plan",
    "dnerv_sizing",
    "frame_differences",
]

DIFF_KERNEL = 3
"""Kernel of the difference decoder's NeRV blocks (the reference's ``diff_dec_kernel``)."""
DIFF_SIDE_RATIO = 24
"""The reference's difference embedding: 40×80 at 960×1920, 1/24 of the frame side."""


@dataclasses.dataclass(frozen=True)
class DNeRVConfig(HNeRVConfig):
    MODEL_ID: ClassVar[str] = "dnerv"

    diff_dim: int = dataclasses.field(default=2, metadata=bounds(1, 64))
    fusion_stage: int = dataclasses.field(default=0, metadata=bounds(0, 7))
    ccu_kernel: int = dataclasses.field(default=3, metadata=bounds(1, 7))
    # the decoder grid the difference embedding sits on; -1: the fusion grid, no difference
    # decoder (files written before it)
    diff_from: int = dataclasses.field(default=-1, metadata=added_later(lo=-1, hi=7))

    def validate(self) -> None:
        super().validate()
        if self.fusion_stage >= len(self.strides):
            raise ConfigError("dnerv config: fusion_stage must name one of the decoder stages")
        if self.diff_from > self.fusion_stage:
            raise ConfigError("dnerv config: diff_from must not come after fusion_stage")
        if self.ccu_kernel % 2 == 0:
            raise ConfigError("dnerv config: ccu_kernel must be odd")

    @property
    def diff_stage(self) -> int:
        """The decoder stage whose input grid holds the difference embedding."""
        return self.fusion_stage if self.diff_from < 0 else self.diff_from

    @property
    def diff_decoded(self) -> bool:
        """Whether a lift and NeRV blocks bring the difference embedding to the fusion grid."""
        return self.diff_from >= 0

    @property
    def diff_scale(self) -> int:
        """Downsampling of the difference encoder: the strides from ``diff_stage`` on."""
        return math.prod(self.strides[self.diff_stage :])

    @property
    def fusion_shape(self) -> tuple[int, int, int]:
        """``(content channels, h, w)`` at the fusion point."""
        return self.stage_inputs()[self.fusion_stage]

    @property
    def diff_shape(self) -> tuple[int, int, int]:
        """``(diff_dim, h_j, w_j)``: one stored difference embedding."""
        _, h, w = self.stage_inputs()[self.diff_stage]
        return self.diff_dim, h, w

    def activation_elements(self) -> int:
        ch, h, w = self.fusion_shape
        # the CCU's conv outputs / candidate / gate (C × h × w each); the difference decoder's
        # blocks are the content decoder's stages, already bounded
        return max(super().activation_elements(), math.prod(self.diff_shape), ch * h * w)


def difference_plan(strides: tuple[int, ...]) -> tuple[int, int]:
    """``(fusion_stage, diff_from)`` for a plan (see the module docstring)."""
    n = len(strides)
    fusion = max(n - 2, 1) if n >= 2 else 0
    if fusion == 0:
        return 0, 0

    def distance(j: int) -> tuple[float, int]:
        ratio = math.prod(strides[j:])
        return abs(math.log(ratio / DIFF_SIDE_RATIO)), -ratio

    return fusion, min(range(fusion), key=distance)


def dnerv_sizing(height: int, width: int, frame_count: int, knob: int) -> DNeRVConfig:
    """DNeRV with lift width ``knob``: HNeRV's decoder plus the reference's difference stream."""
    fields = hybrid_fields(height, width, knob)
    fusion, diff_from = difference_plan(fields["strides"])
    return DNeRVConfig(
        height=height,
        width=width,
        frame_count=frame_count,
        fusion_stage=fusion,
        diff_from=diff_from,
        **fields,
    )


def frame_differences(index: torch.Tensor, all_frames: torch.Tensor) -> torch.Tensor:
    """``[x_t − x_{t−1}, x_{t+1} − x_t]`` (N × 6 × H × W) for frames ``index`` of the clip.

    Neighbours are clamped to the clip, so the first frame's backward and the last frame's forward
    difference are zero. Pure indexing: no host sync.
    """
    last = all_frames.shape[0] - 1
    current = all_frames[index]
    previous = all_frames[(index - 1).clamp(0, last)]
    following = all_frames[(index + 1).clamp(0, last)]
    return torch.cat([current - previous, following - current], dim=1)


class CollaborativeContentUnit(nn.Module):
    """Gated fusion: ``out = s·p + (1 − s)·c`` with ``p = tanh(Conv(c) + Conv(d))`` and
    ``s = σ(Conv'(c) + Conv'(d))`` (DNeRV's CCU, ConvGRU-like)."""

    def __init__(self, channels: int, diff_channels: int, kernel: int) -> None:
        super().__init__()
        pad = kernel // 2
        self.candidate_c = nn.Conv2d(channels, channels, kernel, padding=pad)
        self.candidate_d = nn.Conv2d(diff_channels, channels, kernel, padding=pad)
        self.gate_c = nn.Conv2d(channels, channels, kernel, padding=pad)
        self.gate_d = nn.Conv2d(diff_channels, channels, kernel, padding=pad)

    def candidate(self, content: torch.Tensor, diff: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.candidate_c(content) + self.candidate_d(diff))

    def gate(self, content: torch.Tensor, diff: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.gate_c(content) + self.gate_d(diff))

    def forward(self, content: torch.Tensor, diff: torch.Tensor) -> torch.Tensor:
        s = self.gate(content, diff)
        return s * self.candidate(content, diff) + (1.0 - s) * content


def difference_decoder(config: DNeRVConfig) -> nn.Module:
    """1×1 lift to the width entering stage ``diff_from``, then NeRV blocks with the content
    stages' strides and widths up to the fusion grid (kernel 3; 1 where the content has 1);
    the identity for files written before it."""
    c = config
    if not c.diff_decoded:
        return nn.Identity()
    shapes = c.stage_inputs()
    layers: list[nn.Module] = [nn.Conv2d(c.diff_dim, shapes[c.diff_from][0], 1)]
    for stage in range(c.diff_from, c.fusion_stage):
        in_ch, out_ch = shapes[stage][0], shapes[stage + 1][0]
        kernel = min(DIFF_KERNEL, c.kernels[stage])
        layers.append(NeRVBlock(in_ch, out_ch, c.strides[stage], kernel, c.activation))
    return nn.Sequential(*layers)


@register_model(
    "dnerv",
    DNeRVConfig,
    dnerv_sizing,
    "DNeRV: HNeRV content embeddings + frame-difference embeddings, gated CCU fusion",
)
class DNeRV(HNeRV):
    """HNeRV with a second stored table, ``diff_embeddings``, fused by a CCU."""

    TRAINING_DEFAULTS: ClassVar[Mapping[str, Any]] = MappingProxyType(
        {
            "optimizer": "adam",
            "lr": 1e-3,
            "betas": (0.9, 0.999),
            "weight_decay": 0.0,
            "warmup": 0.1,
            "clip": 0.1,
            "cpu_bf16": False,
        }
    )
    """HNeRV's optimiser with the reference's gradient clipping (measured: module docstring).
    fp32 on CPUs even with AMX: bf16 training steps ran at 0.86× fp32's at 160×80 and 1.08–1.15×
    from 320×160 to 640×320 (``benchmarks/results/precision``): bf16 only for models faster in it
    at every size measured."""

    config: DNeRVConfig

    def __init__(self, config: DNeRVConfig) -> None:
        super().__init__(config)
        c = config
        self.diff_embeddings = nn.Parameter(torch.zeros(c.frame_count, *c.diff_shape))
        self.diff_decoder = difference_decoder(c)
        ch = c.fusion_shape[0]
        self.ccu = CollaborativeContentUnit(ch, ch if c.diff_decoded else c.diff_dim, c.ccu_kernel)

    def embedding_tables(self) -> list[nn.Parameter]:
        return [self.embeddings, self.diff_embeddings]

    def fuse(self, x: torch.Tensor, stage: int, *streams: torch.Tensor) -> torch.Tensor:
        if stage != self.config.fusion_stage:
            return x
        (diff,) = streams
        return self.ccu(x, self.diff_decoder(diff))

    def make_training_encoder(self) -> nn.Module:
        """Content encoder (HNeRV's) and difference encoder; training only, never stored."""
        c = self.config
        diff = ConvNeXtEncoder(6, c.encoder_dim, c.diff_dim, c.strides[c.diff_stage :])
        return nn.ModuleDict({"content": super().make_training_encoder(), "diff": diff})

    def encode_batch(
        self,
        encoder: nn.Module,
        index: torch.Tensor,
        frames: torch.Tensor,
        all_frames: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        grid = self.config.grid_size
        content = encoder.get_submodule("content")(pad_to_grid(frames, grid))
        diff_frames = pad_to_grid(frame_differences(index, all_frames), grid)
        diff = encoder.get_submodule("diff")(diff_frames)
        return content, diff
