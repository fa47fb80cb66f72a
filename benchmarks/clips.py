"""Preparing a benchmark source: a frame range of a clip, optionally downscaled, as exact Y4M.

CPU budgets cannot train on 640×320 clips in minutes, so benchmarks may work on a downscaled
copy (``--scale N``: an N×N mean of each yuv420p plane). Every codec then reads the *same*
lossless Y4M, which is the reference for all metrics, so the comparison stays fair.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from nvcodec.io import VideoInfo, Yuv420Frames, open_writer, read_video

__all__ = ["downscale", "prepare_clip"]


def downscale(plane: np.ndarray, factor: int) -> np.ndarray:
    """N×N mean of a (T, H, W) uint8 plane (cropping H, W to multiples of N), rounded."""
    t, h, w = plane.shape
    h2, w2 = h // factor, w // factor
    x = plane[:, : h2 * factor, : w2 * factor].astype(np.float64)
    return np.rint(x.reshape(t, h2, factor, w2, factor).mean(axis=(2, 4))).astype(np.uint8)


def prepare_clip(
    clip: Path, scale: int, frames: tuple[int, int | None] | None, out: Path
) -> tuple[Path, Yuv420Frames, VideoInfo]:
    """Write frames ``frames`` of ``clip``, downscaled ``scale``×, as a lossless Y4M at ``out``."""
    yuv, info = read_video(clip, frames)
    if scale > 1:
        y = downscale(yuv.y, scale)
        h, w = y.shape[1:]
        chroma = [downscale(p, scale)[:, : (h + 1) // 2, : (w + 1) // 2] for p in (yuv.u, yuv.v)]
        yuv = Yuv420Frames(y, *chroma)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open_writer(
        str(out),
        width=yuv.width,
        height=yuv.height,
        fps=Fraction(info.fps),
        colour=info.colour,
        overwrite=True,
    ) as writer:
        writer.write(yuv)
    reference, stored = read_video(out)
    if not np.array_equal(reference.y, yuv.y):  # pragma: no cover - the Y4M writer is exact
        raise RuntimeError(f"{out}: Y4M round trip is not exact")
    return out, reference, stored
