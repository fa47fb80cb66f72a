"""Where to cut a long video into segments: fixed lengths, or at scene changes.

A segment is one network; a scene cut inside it spends capacity on two unrelated shots, so the
automatic mode cuts where the picture changes abruptly. The detector is a measured frame-
difference rule (the idea of FFmpeg's ``scdet``): the mean absolute difference of consecutive
frames' luma, block-averaged to 16×16 cells so that noise and small motion average out, is a cut
when it is both large in absolute terms and several times the local median (so a fast pan, whose
every difference is large, does not cut at every frame). On the shared clips put back to back
(``benchmarks/long_clip.py``) the four true cuts score 46–75 and the largest other difference 4.5.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
from dataclasses import dataclass

import numpy as np

from nvcodec.errors import ConfigError
from nvcodec.io import VideoInfo
from nvcodec.io.video import scan_video
from nvcodec.ranges import FrameRange

__all__ = [
    "CUT_MIN_DIFFERENCE",
    "SegmentRule",
    "detect_cuts",
    "frame_differences",
    "plan_segments",
    "scan",
]

CELLS = 16  # luma averaged over a CELLS × CELLS grid of blocks
CUT_MIN_DIFFERENCE = 12.0  # mean |Δ| of the cell means, in 8-bit levels
CUT_MEDIAN_RATIO = 4.0  # … and this many times the median difference around it
CUT_WINDOW = 8  # frames either side for that median
MAX_AUTO_SEGMENT = 300  # auto mode: longer scenes are split evenly into segments of at most this
MIN_AUTO_SEGMENT = 8  # auto mode: shorter scenes join a neighbour (a network per 3 frames wastes)


@dataclass(frozen=True)
class SegmentRule:
    """``--segment N`` (``length=N``) or ``--segment auto`` (``length=None``)."""

    length: int | None = None
    min_length: int = MIN_AUTO_SEGMENT
    max_length: int = MAX_AUTO_SEGMENT

    @property
    def auto(self) -> bool:
        return self.length is None

    def validate(self) -> None:
        if self.length is not None and not 1 <= self.length <= 1_000_000:
            raise ConfigError(f"segment length must be in [1, 1000000] frames, got {self.length}")
        if not 1 <= self.min_length <= self.max_length:
            raise ConfigError("automatic segments need 1 <= min length <= max length")


def parse_segment(text: str) -> SegmentRule:
    """``auto`` or a frame count."""
    if text.strip().lower() == "auto":
        return SegmentRule()
    try:
        rule = SegmentRule(length=int(text))
    except ValueError:
        raise ConfigError(f"--segment {text!r}: expected a number of frames or 'auto'") from None
    rule.validate()
    return rule


def _cells(planes: tuple[np.ndarray, ...]) -> np.ndarray:
    y = planes[0].astype(np.float32)
    h, w = y.shape
    bh, bw = max(1, h // CELLS), max(1, w // CELLS)
    y = y[: h // bh * bh, : w // bw * bw]
    return y.reshape(h // bh, bh, w // bw, bw).mean(axis=(1, 3))


def _features(planes: tuple[np.ndarray, ...]) -> tuple[np.ndarray, bytes]:
    """A frame's cell means (for cuts) and a digest of all its samples (for ``--resume``)."""
    digest = hashlib.blake2b(digest_size=16)
    for plane in planes:
        digest.update(np.ascontiguousarray(plane).tobytes())
    return _cells(planes), digest.digest()


def scan(
    path: str | os.PathLike[str], frames: FrameRange | None
) -> tuple[np.ndarray, VideoInfo, list[bytes]]:
    """One pass over the input (one frame in memory at a time): the frame differences, what
    the clip is, and a 16-byte digest of each frame's Y, U and V samples."""
    features, info = scan_video(path, frames, _features)
    cells = np.stack([c for c, _ in features])
    return frame_differences(cells), info, [d for _, d in features]


def frame_differences(cells: np.ndarray) -> np.ndarray:
    """``d[i]``: mean absolute difference between frames ``i`` and ``i+1`` (length T−1)."""
    if len(cells) < 2:
        return np.zeros(0, dtype=np.float32)
    return np.abs(np.diff(cells, axis=0)).mean(axis=(1, 2))


def detect_cuts(differences: np.ndarray) -> list[int]:
    """First frames of new shots (each in 1..T−1), by the rule in the module docstring."""
    cuts = []
    for i, d in enumerate(differences):
        lo, hi = max(0, i - CUT_WINDOW), min(len(differences), i + CUT_WINDOW + 1)
        around = np.concatenate([differences[lo:i], differences[i + 1 : hi]])
        local = float(np.median(around)) if len(around) else 0.0
        if d >= CUT_MIN_DIFFERENCE and d >= CUT_MEDIAN_RATIO * max(local, 1.0):
            cuts.append(i + 1)
    return cuts


def plan_segments(count: int, rule: SegmentRule, cuts: list[int]) -> list[tuple[int, int]]:
    """Half-open frame spans covering ``[0, count)``: every ``rule.length`` frames, or at
    ``cuts`` with scenes kept within ``[min_length, max_length]`` (short scenes join the
    previous one, long ones split into equal parts)."""
    if rule.length is not None:
        return [(a, min(a + rule.length, count)) for a in range(0, count, rule.length)]
    bounds = [0]
    for cut in sorted(set(cuts)):
        if 0 < cut < count and cut - bounds[-1] >= rule.min_length:
            bounds.append(cut)
    if count - bounds[-1] < rule.min_length and len(bounds) > 1:
        bounds.pop()  # a short last scene joins the one before
    bounds.append(count)
    spans = []
    for a, b in itertools.pairwise(bounds):
        parts = math.ceil((b - a) / rule.max_length)
        edges = [a + (b - a) * k // parts for k in range(parts + 1)]
        spans.extend(itertools.pairwise(edges))
    return spans
