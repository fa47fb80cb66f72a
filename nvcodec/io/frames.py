"""A clip as 8-bit yuv420 planes: the protocol's reference representation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Yuv420Frames"]


@dataclass(frozen=True)
class Yuv420Frames:
    """T frames of 8-bit yuv420: ``y`` (T,H,W), ``u`` and ``v`` (T,(H+1)//2,(W+1)//2).

    Odd sizes are allowed; the last chroma row/column then covers a single luma row/column.
    """

    y: np.ndarray
    u: np.ndarray
    v: np.ndarray

    def __post_init__(self) -> None:
        for name in ("y", "u", "v"):
            plane = getattr(self, name)
            if not isinstance(plane, np.ndarray) or plane.dtype != np.uint8 or plane.ndim != 3:
                raise ValueError(f"{name} must be a 3-d uint8 array")
        t, h, w = self.y.shape
        want = (t, (h + 1) // 2, (w + 1) // 2)
        if self.u.shape != want or self.v.shape != want:
            raise ValueError(
                f"u and v must have shape {want} for y {self.y.shape}, "
                f"got {self.u.shape} and {self.v.shape}"
            )

    @property
    def count(self) -> int:
        """Number of frames."""
        return int(self.y.shape[0])

    @property
    def height(self) -> int:
        """Luma height in pixels."""
        return int(self.y.shape[1])

    @property
    def width(self) -> int:
        """Luma width in pixels."""
        return int(self.y.shape[2])

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, s: slice) -> Yuv420Frames:
        """A range of frames (views, not copies)."""
        if not isinstance(s, slice):
            raise TypeError("Yuv420Frames can only be indexed with a slice")
        return Yuv420Frames(self.y[s], self.u[s], self.v[s])

    @staticmethod
    def concatenate(parts: Sequence[Yuv420Frames]) -> Yuv420Frames:
        """Join clips of the same size along time."""
        if not parts:
            raise ValueError("concatenate needs at least one part")
        sizes = {(p.width, p.height) for p in parts}
        if len(sizes) != 1:
            raise ValueError(f"cannot concatenate frames of different sizes: {sorted(sizes)}")
        return Yuv420Frames(
            np.concatenate([p.y for p in parts]),
            np.concatenate([p.u for p in parts]),
            np.concatenate([p.v for p in parts]),
        )
