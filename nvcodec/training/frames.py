"""What training accepts as its targets, without tying the training layer to video I/O.

Why a protocol: the encoder hands training a :class:`nvcodec.io.ClipFrames` (uint8 yuv420 made
RGB batch by batch) so that a long clip is never held as float32 RGB; tests and benchmarks hand it
a plain tensor. Training only indexes frames, so it names the operations it uses and imports
nothing from ``nvcodec.io`` (DESIGN.md's layering, checked by tests/test_layers.py).
"""

from __future__ import annotations

from typing import Protocol

import torch

__all__ = ["FrameSource", "Frames"]


class FrameSource(Protocol):
    """T frames as T×3×H×W float32 RGB in [0, 1], made when indexed."""

    @property
    def shape(self) -> torch.Size: ...

    @property
    def device(self) -> torch.device: ...

    def __len__(self) -> int: ...

    def __getitem__(self, index: int | slice | torch.Tensor) -> torch.Tensor: ...


Frames = torch.Tensor | FrameSource
"""A T×3×H×W tensor, or a clip converted on demand."""
