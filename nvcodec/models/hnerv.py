"""HNeRV (Chen et al., CVPR 2023): a hybrid NeRV whose input is a tiny per-frame embedding.

::

    encoding only:  frame ─► pad to the grid ─► ConvNeXt encoder (Πs downsampling) ─┐
                                                                                    ▼
    stored:   embeddings[t] (T × C × h × w) ─► Conv 1×1 lift ─► NeRVBlock(s₁, k₁) ─► …
              ─► NeRVBlock(sₙ, kₙ) ─► OutputHead (3×3) ─► crop to H×W

**What is stored.** The module holds the decoder and an ``embeddings`` ``nn.Parameter`` table with
one ``C × h × w`` embedding per source frame, so ``named_parameters()`` is exactly what the file
stores and ``--size`` budgets decoder + embeddings (as HNeRV's ``--modelsize``). The ConvNeXt
encoder (:mod:`nvcodec.models.convnext`) exists only during training: :meth:`HNeRV.
make_training_encoder` builds it outside the module, :meth:`HNeRV.training_forward` decodes
encoder outputs so encoder and decoder train end to end, and :meth:`HNeRV.finalize_training`
writes the encoder's output for every frame into ``embeddings`` (see
:mod:`nvcodec.training.loop`). Until then the table is zeros.

**Positions.** :meth:`HNeRV.forward` looks embeddings up at integer frame positions; a fractional
or out-of-clip position raises :class:`~nvcodec.errors.ConfigError`, because a hybrid model has no
embedding for a frame it never saw (``INTERPOLATES = False``: no ``--fps`` interpolation).

**Sizes.** :func:`plan_hybrid` picks non-increasing strides from {5, 4, 3, 2} (at most five
stages) so that the embedding grid keeps at least 2 cells on its short side and pads the frame by
at most 5 %, taking the smallest grid (smallest embedding), then the least padding, then the most
stages. 640×1280
gives 2×4 with strides 5,4,4,2,2 (the paper's), 960×1920 gives 2×4 with 5,4,4,3,2, Bunny 80×160
gives 2×4 with 5,2,2,2, Chaplin 72×96 gives 3×4 with 3,2,2,2. The encoder pads the frame
(replicate) to ``h·Πs × w·Πs``; the decoder output is cropped back to H×W.

**Kernels and channels.** HNeRV's five stages use kernels 1, 3, 5, 5, 5. A plan with ``n``
stages uses the first ``n`` of them (stage ``i ≥ 5`` keeps 5): the cheap 1×1 stays on the
largest-stride stage next to the embedding, the 5×5 kernels near the output. The sizing knob is
the lift width ``C₀``; stage ``i`` outputs ``max(4, round(C₀ / 1.2^(i+1)))`` channels (reduction
1.2 per stage, so more parameters sit near the output). Embedding channels: 16 (``embed_dim``).

Training recipe (paper): Adam lr 1e-3, cosine decay with 10 % warm-up, L2 loss, no weight decay.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from nvcodec.errors import ConfigError
from nvcodec.models.blocks import ACTIVATIONS, GridPlan, NeRVBlock, OutputHead
from nvcodec.models.config import ModelConfig, bounds
from nvcodec.models.convnext import ConvNeXtEncoder
from nvcodec.models.registry import register_model

__all__ = [
    "HNERV_KERNELS",
    "HNeRV",
    "HNeRVConfig",
    "frame_indices",
    "hnerv_sizing",
    "pad_to_grid",
    "plan_hybrid",
    "stage_kernels",
]

HNERV_KERNELS = (1, 3, 5, 5, 5)
"""HNeRV's decoder kernel per stage (stage 0 next to the embedding)."""
CHANNEL_REDUCTION = 1.2
"""Each stage outputs 1/1.2 of its input channels (HNeRV's ``--reduce``)."""


@dataclasses.dataclass(frozen=True)
class HNeRVConfig(ModelConfig):
    MODEL_ID: ClassVar[str] = "hnerv"

    embed_h: int = dataclasses.field(default=1, metadata=bounds(1, 1024))
    embed_w: int = dataclasses.field(default=1, metadata=bounds(1, 1024))
    embed_dim: int = dataclasses.field(default=16, metadata=bounds(1, 256))
    strides: tuple[int, ...] = dataclasses.field(default=(1,), metadata=bounds(1, 8, max_len=8))
    kernels: tuple[int, ...] = dataclasses.field(default=(1,), metadata=bounds(1, 7, max_len=8))
    lift_dim: int = dataclasses.field(default=16, metadata=bounds(1, 4096))
    channels: tuple[int, ...] = dataclasses.field(
        default=(16,), metadata=bounds(1, 4096, max_len=8)
    )
    head_kernel: int = dataclasses.field(default=3, metadata=bounds(1, 7))
    # training only (the encoder is never stored); kept here so an encode is reproducible
    encoder_dim: int = dataclasses.field(default=64, metadata=bounds(1, 1024))
    activation: str = dataclasses.field(default="gelu", metadata={"choices": ACTIVATIONS})

    def validate(self) -> None:
        super().validate()
        name = self.MODEL_ID
        if not len(self.channels) == len(self.kernels) == len(self.strides):
            raise ConfigError(f"{name} config: one channel count and kernel per stride required")
        if any(k % 2 == 0 for k in (*self.kernels, self.head_kernel)):
            raise ConfigError(f"{name} config: kernel sizes must be odd")
        self.check_output_grid(*self.grid_size)

    @property
    def scale(self) -> int:
        return math.prod(self.strides)

    @property
    def grid_size(self) -> tuple[int, int]:
        """The padded frame ``h·Πs × w·Πs`` the encoder reads and the decoder writes."""
        return self.embed_h * self.scale, self.embed_w * self.scale

    def stage_inputs(self) -> list[tuple[int, int, int]]:
        """``(channels, h, w)`` entering each decoder stage, then the head's input."""
        shapes = [(self.lift_dim, self.embed_h, self.embed_w)]
        for out_ch, s in zip(self.channels, self.strides, strict=True):
            _, h, w = shapes[-1]
            shapes.append((out_ch, h * s, w * s))
        return shapes

    def activation_elements(self) -> int:
        shapes = self.stage_inputs()
        largest = max(self.embed_dim, self.lift_dim) * self.embed_h * self.embed_w
        for (_, h, w), out_ch, s in zip(shapes, self.channels, self.strides, strict=False):
            largest = max(largest, out_ch * s * s * h * w)  # conv output before the shuffle
        _, h, w = shapes[-1]
        return max(largest, 3 * h * w, super().activation_elements())


def stage_kernels(stages: int) -> tuple[int, ...]:
    """HNeRV's kernels 1, 3, 5, 5, 5 for a plan of ``stages`` stages (stage ≥ 5 keeps 5)."""
    return tuple(HNERV_KERNELS[min(i, len(HNERV_KERNELS) - 1)] for i in range(stages))


def plan_hybrid(
    height: int, width: int, *, min_cells: int = 2, max_pad: float = 0.05, max_stages: int = 5
) -> GridPlan:
    """Embedding grid and non-increasing strides from {5, 4, 3, 2} for any frame size.

    Among plans whose grid keeps ``min_cells`` cells on its short side (fewer for smaller frames)
    and pads at most ``max_pad``: the fewest grid cells (smallest embedding), then the least
    padding, then the most stages (smaller strides cost fewer parameters), then the larger leading
    strides. If none pads little enough: the least padding, then the largest stride.
    """
    floor = min(min_cells, height, width)
    candidates = []
    for stages in range(1, max_stages + 1):
        for strides in itertools.combinations_with_replacement((5, 4, 3, 2), stages):
            scale = math.prod(strides)
            plan = GridPlan(-(-height // scale), -(-width // scale), strides)
            if min(plan.base_h, plan.base_w) >= floor:
                candidates.append(plan)
    if not candidates:
        return GridPlan(height, width, (1,))
    good = [p for p in candidates if p.padding_ratio(height, width) <= max_pad]
    if good:
        return min(
            good,
            key=lambda p: (
                p.base_h * p.base_w,
                p.padding_ratio(height, width),
                -len(p.strides),
                tuple(-s for s in p.strides),
            ),
        )
    return min(candidates, key=lambda p: (p.padding_ratio(height, width), -p.scale))


def hybrid_fields(height: int, width: int, knob: int) -> dict[str, Any]:
    """The decoder fields of an HNeRV-style config with lift width ``knob`` (shared by DNeRV)."""
    plan = plan_hybrid(height, width)
    stages = len(plan.strides)
    channels = tuple(max(4, round(knob / CHANNEL_REDUCTION ** (i + 1))) for i in range(stages))
    return {
        "embed_h": plan.base_h,
        "embed_w": plan.base_w,
        "strides": plan.strides,
        "kernels": stage_kernels(stages),
        "lift_dim": knob,
        "channels": channels,
    }


def hnerv_sizing(height: int, width: int, frame_count: int, knob: int) -> HNeRVConfig:
    """HNeRV with lift width ``knob``; 16-channel embeddings (counted in the budget)."""
    return HNeRVConfig(
        height=height, width=width, frame_count=frame_count, **hybrid_fields(height, width, knob)
    )


def frame_indices(t: torch.Tensor, frame_count: int, model_id: str) -> torch.Tensor:
    """Integer frame positions ``t`` (N,) as indices; anything else is a :class:`ConfigError`.

    Hybrid models store one embedding per source frame, so they cannot render a frame between
    two source frames or outside the clip. On the ``meta`` device (shape-only passes such as
    complexity counting) there are no values to check.
    """
    if t.is_meta:
        return t.detach().round().long()
    tt = t.detach().to(torch.float64)
    index = tt.round()
    bad = (index != tt) | (index < 0) | (index > frame_count - 1)
    if bool(bad.any()):
        position = float(tt[bad][0])
        raise ConfigError(
            f"{model_id} cannot render frame position {position:g}: it stores one embedding per "
            f"source frame, so only integer positions 0..{frame_count - 1} decode "
            f"(no frame interpolation or frame-rate change)"
        )
    return index.long()


def pad_to_grid(frames: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Replicate-pad ``N × C × H × W`` on the bottom/right to ``grid`` (the encoder's input)."""
    pad_h, pad_w = grid[0] - frames.shape[-2], grid[1] - frames.shape[-1]
    if pad_h == 0 and pad_w == 0:
        return frames
    return F.pad(frames, (0, pad_w, 0, pad_h), mode="replicate")


@register_model(
    "hnerv",
    HNeRVConfig,
    hnerv_sizing,
    "HNeRV: ConvNeXt-encoded frame embeddings → NeRV blocks (kernels 1,3,5,5,5)",
)
class HNeRV(nn.Module):
    """Integer frame position in, frame out; the video lives in the embeddings and the decoder.

    Subclasses with more embedding streams (DNeRV) extend :meth:`embedding_tables`,
    :meth:`encode_batch`, :meth:`make_training_encoder` and :meth:`fuse`.
    """

    INTERPOLATES: ClassVar[bool] = False
    """Only integer source-frame positions decode (see :func:`frame_indices`)."""

    TRAINING_DEFAULTS: ClassVar[Mapping[str, Any]] = MappingProxyType(
        {"optimizer": "adam", "lr": 1e-3, "betas": (0.9, 0.999), "weight_decay": 0.0, "warmup": 0.1}
    )
    """HNeRV's recipe: Adam lr 1e-3, cosine decay with 10 % warm-up."""

    FINALIZE_BATCH: ClassVar[int] = 8
    """Frames per encoder call when :meth:`finalize_training` fills the embeddings."""

    config: HNeRVConfig

    def __init__(self, config: HNeRVConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        # Zeros until finalize_training writes the encoder's outputs (or the decoder loads them).
        self.embeddings = nn.Parameter(
            torch.zeros(c.frame_count, c.embed_dim, c.embed_h, c.embed_w)
        )
        self.lift = nn.Conv2d(c.embed_dim, c.lift_dim, 1)
        blocks = []
        in_ch = c.lift_dim
        for out_ch, stride, kernel in zip(c.channels, c.strides, c.kernels, strict=True):
            blocks.append(NeRVBlock(in_ch, out_ch, stride, kernel, c.activation))
            in_ch = out_ch
        self.blocks = nn.ModuleList(blocks)
        self.head = OutputHead(in_ch, kernel=c.head_kernel)

    # --- stored path ------------------------------------------------------------------------------

    def embedding_tables(self) -> list[nn.Parameter]:
        """The stored per-frame tables, in the order :meth:`synthesize` takes them."""
        return [self.embeddings]

    def fuse(self, x: torch.Tensor, stage: int, *streams: torch.Tensor) -> torch.Tensor:
        """Combine extra embedding streams into the features entering ``stage`` (HNeRV: none)."""
        return x

    def synthesize(self, content: torch.Tensor, *streams: torch.Tensor) -> torch.Tensor:
        """Embeddings (N × C × h × w, plus any extra streams) → frames (N × 3 × H × W)."""
        x = self.lift(content)
        for stage, block in enumerate(self.blocks):
            x = block(self.fuse(x, stage, *streams))
        x = self.head(x)
        return x[:, :, : self.config.height, : self.config.width]

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """``t``: (N,) integer frame positions → (N, 3, H, W); fractional ``t`` is refused."""
        index = frame_indices(t, self.config.frame_count, self.config.MODEL_ID)
        index = index.to(self.embeddings.device)
        return self.synthesize(*(table[index] for table in self.embedding_tables()))

    # --- training hooks (see nvcodec.training.loop) -----------------------------------------------

    def make_training_encoder(self) -> nn.Module:
        """The ConvNeXt frame encoder; used while training only, never stored."""
        c = self.config
        return ConvNeXtEncoder(3, c.encoder_dim, c.embed_dim, c.strides)

    def encode_batch(
        self,
        encoder: nn.Module,
        index: torch.Tensor,
        frames: torch.Tensor,
        all_frames: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        """Encoder outputs for frames ``all_frames[index]`` (= ``frames``), one per table."""
        return (encoder(pad_to_grid(frames, self.config.grid_size)),)

    def training_forward(
        self,
        encoder: nn.Module,
        positions: torch.Tensor,
        frames: torch.Tensor,
        all_frames: torch.Tensor,
    ) -> torch.Tensor:
        """Decode the encoder's embeddings of ``frames`` (the clip's frames at ``positions``).

        No host sync: ``positions`` become indices on the device without any check.
        """
        index = positions.round().long()
        return self.synthesize(*self.encode_batch(encoder, index, frames, all_frames))

    @torch.no_grad()
    def finalize_training(self, encoder: nn.Module, all_frames: torch.Tensor) -> None:
        """Write the encoder's output for every frame of ``all_frames`` into the stored tables."""
        count = all_frames.shape[0]
        if count != self.config.frame_count:
            raise ConfigError(
                f"{self.config.MODEL_ID}: trained on {count} frames, config says "
                f"{self.config.frame_count}"
            )
        tables = self.embedding_tables()
        for start in range(0, count, self.FINALIZE_BATCH):
            index = torch.arange(start, min(start + self.FINALIZE_BATCH, count))
            index = index.to(all_frames.device)
            outputs = self.encode_batch(encoder, index, all_frames[index], all_frames)
            for table, value in zip(tables, outputs, strict=True):
                table[index.to(table.device)] = value.to(table.dtype)
