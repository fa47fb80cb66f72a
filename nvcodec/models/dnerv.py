"""DNeRV (Zhao et al., CVPR 2023): HNeRV's content stream plus a frame-difference stream.

::

    encoding only:  x_t                         ─► ConvNeXt (all strides)      ─► content emb.
                    [x_t − x_{t−1}, x_{t+1} − x_t] ─► ConvNeXt (strides s_k..sₙ) ─► diff emb.

    stored:  embeddings[t] (C × h × w) ─► lift ─► NeRVBlock(s₁) … NeRVBlock(s_k)
                                                      │ (grid h·s₁…s_k × w·s₁…s_k)
             diff_embeddings[t] (2 × h_d × w_d) ─► CCU ◄┘
                                                      ─► NeRVBlock(s_{k+1}) … ─► head ─► crop

**Content stream.** Exactly HNeRV's (:mod:`nvcodec.models.hnerv`): same plan, kernels 1,3,5,5,5,
channel reduction 1.2, 16-channel embedding; this class subclasses :class:`~nvcodec.models.hnerv.
HNeRV` and only adds the second stream.

**Difference stream.** A second ConvNeXt encoder reads the stacked differences to the previous and
next frame (6 channels; at the clip's ends the missing neighbour is the frame itself, so that
difference is zero) and downsamples by the strides *after* the fusion stage, so its 2-channel
embedding lands exactly on the content stream's grid at the fusion point. Both tables
(``embeddings``, ``diff_embeddings``) are stored and counted in ``--size``.

**Fusion point.** The paper fuses 16×2×4 content and 2×40×80 difference embeddings at 960×1920,
i.e. after the ×5 and ×4 stages, with ×24 of upsampling left. :func:`fusion_stage_for` keeps that:
it fuses before stage ``k ∈ [1, n−1]`` whose remaining upsampling ``s_{k+1}…sₙ`` is closest to 24
in log scale (ties: the coarser grid), or at the embedding grid (``k = 0``) for one-stage plans.
960×1920 → 40×80 (÷24), 640×1280 → 40×80 (÷16), Bunny 80×160 → 10×20 (÷8), Chaplin 72×96 → 9×12.

**CCU (collaborative content unit).** At the fusion point, with content features ``c`` (C
channels) and the difference embedding ``d`` (2 channels) on the same grid::

    p = tanh(Conv_p(c) + Conv_pd(d)),   s = σ(Conv_s(c) + Conv_sd(d)),   out = s·p + (1 − s)·c

all ``ccu_kernel × ccu_kernel`` (3×3). The ``d`` convolutions are the projection from the 2
difference channels to the content width, so no separate upsampling or projection layer exists:
the grid already matches by construction. The gate starts near ½ (PyTorch's default init).

**Known issue.** The reference notes that DNeRV training can collapse (the loss stalls at a
constant frame early on); if a run's PSNR stays flat, encode again with another ``--seed``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import torch
from torch import nn

from nvcodec.errors import ConfigError
from nvcodec.models.config import bounds
from nvcodec.models.convnext import ConvNeXtEncoder
from nvcodec.models.hnerv import HNeRV, HNeRVConfig, hybrid_fields, pad_to_grid
from nvcodec.models.registry import register_model

__all__ = [
    "CollaborativeContentUnit",
    "DNeRV",
    "DNeRVConfig",
    "dnerv_sizing",
    "frame_differences",
    "fusion_stage_for",
]

DIFF_REMAINING_SCALE = 24
"""Upsampling left after the fusion point in the paper's 960×1920 setting (40×80 → 960×1920)."""


@dataclasses.dataclass(frozen=True)
class DNeRVConfig(HNeRVConfig):
    MODEL_ID: ClassVar[str] = "dnerv"

    diff_dim: int = dataclasses.field(default=2, metadata=bounds(1, 64))
    fusion_stage: int = dataclasses.field(default=0, metadata=bounds(0, 7))
    ccu_kernel: int = dataclasses.field(default=3, metadata=bounds(1, 7))

    def validate(self) -> None:
        super().validate()
        if self.fusion_stage >= len(self.strides):
            raise ConfigError("dnerv config: fusion_stage must name one of the decoder stages")
        if self.ccu_kernel % 2 == 0:
            raise ConfigError("dnerv config: ccu_kernel must be odd")

    @property
    def diff_scale(self) -> int:
        """Downsampling of the difference encoder: the strides from the fusion stage on."""
        return math.prod(self.strides[self.fusion_stage :])

    @property
    def fusion_shape(self) -> tuple[int, int, int]:
        """``(content channels, h_d, w_d)`` at the fusion point (= the diff embedding's grid)."""
        return self.stage_inputs()[self.fusion_stage]

    def activation_elements(self) -> int:
        ch, h, w = self.fusion_shape
        # the diff embedding, and the CCU's conv outputs / candidate / gate (C × h_d × w_d each)
        return max(super().activation_elements(), self.diff_dim * h * w, ch * h * w)


def fusion_stage_for(strides: tuple[int, ...]) -> int:
    """The stage before which the CCU fuses (see the module docstring)."""
    if len(strides) < 2:
        return 0

    def distance(k: int) -> tuple[float, int]:
        remaining = math.prod(strides[k:])
        return abs(math.log(remaining / DIFF_REMAINING_SCALE)), -remaining

    return min(range(1, len(strides)), key=distance)


def dnerv_sizing(height: int, width: int, frame_count: int, knob: int) -> DNeRVConfig:
    """DNeRV with lift width ``knob``: HNeRV's decoder plus 2-channel difference embeddings."""
    fields = hybrid_fields(height, width, knob)
    return DNeRVConfig(
        height=height,
        width=width,
        frame_count=frame_count,
        fusion_stage=fusion_stage_for(fields["strides"]),
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

    def __init__(self, channels: int, diff_dim: int, kernel: int) -> None:
        super().__init__()
        pad = kernel // 2
        self.candidate_c = nn.Conv2d(channels, channels, kernel, padding=pad)
        self.candidate_d = nn.Conv2d(diff_dim, channels, kernel, padding=pad)
        self.gate_c = nn.Conv2d(channels, channels, kernel, padding=pad)
        self.gate_d = nn.Conv2d(diff_dim, channels, kernel, padding=pad)

    def candidate(self, content: torch.Tensor, diff: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.candidate_c(content) + self.candidate_d(diff))

    def gate(self, content: torch.Tensor, diff: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.gate_c(content) + self.gate_d(diff))

    def forward(self, content: torch.Tensor, diff: torch.Tensor) -> torch.Tensor:
        s = self.gate(content, diff)
        return s * self.candidate(content, diff) + (1.0 - s) * content


@register_model(
    "dnerv",
    DNeRVConfig,
    dnerv_sizing,
    "DNeRV: HNeRV content embeddings + frame-difference embeddings, gated CCU fusion",
)
class DNeRV(HNeRV):
    """HNeRV with a second stored table, ``diff_embeddings``, fused by a CCU."""

    config: DNeRVConfig

    def __init__(self, config: DNeRVConfig) -> None:
        super().__init__(config)
        c = config
        ch, h, w = c.fusion_shape
        self.diff_embeddings = nn.Parameter(torch.zeros(c.frame_count, c.diff_dim, h, w))
        self.ccu = CollaborativeContentUnit(ch, c.diff_dim, c.ccu_kernel)

    def embedding_tables(self) -> list[nn.Parameter]:
        return [self.embeddings, self.diff_embeddings]

    def fuse(self, x: torch.Tensor, stage: int, *streams: torch.Tensor) -> torch.Tensor:
        if stage != self.config.fusion_stage:
            return x
        (diff,) = streams
        return self.ccu(x, diff)

    def make_training_encoder(self) -> nn.Module:
        """Content encoder (HNeRV's) and difference encoder; training only, never stored."""
        c = self.config
        diff = ConvNeXtEncoder(6, c.encoder_dim, c.diff_dim, c.strides[c.fusion_stage :])
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
