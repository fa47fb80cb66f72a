"""Scene cuts and segment spans: cuts found where the picture changes, not during motion;
spans that cover the clip within the length rules."""

from __future__ import annotations

import numpy as np
import pytest

from nvcodec.errors import ConfigError
from nvcodec.scenes import (
    SegmentRule,
    _cells,
    detect_cuts,
    frame_differences,
    parse_segment,
    plan_segments,
)


def _shot(level: int, frames: int, rng: np.random.Generator, pan: int = 0) -> list[np.ndarray]:
    base = rng.integers(0, 255, size=(80, 400)).astype(np.uint8) // 4 + level
    return [np.roll(base, pan * i, axis=1)[:, :160] for i in range(frames)]


def _cells_of(frames: list[np.ndarray]) -> np.ndarray:
    return np.stack([_cells((y,)) for y in frames])


def test_cuts_found_at_shot_changes_not_in_a_fast_pan() -> None:
    rng = np.random.default_rng(0)
    frames = _shot(20, 30, rng) + _shot(150, 25, rng, pan=7) + _shot(60, 20, rng)
    cuts = detect_cuts(frame_differences(_cells_of(frames)))
    assert cuts == [30, 55]


def test_no_cut_in_noise_or_fades() -> None:
    rng = np.random.default_rng(1)
    base = rng.integers(0, 200, size=(80, 160)).astype(np.float32)
    fade = [np.clip(base * (1 - i / 40) + rng.normal(0, 3, base.shape), 0, 255) for i in range(40)]
    assert detect_cuts(frame_differences(_cells_of([f.astype(np.uint8) for f in fade]))) == []


@pytest.mark.parametrize(
    ("count", "rule", "cuts", "spans"),
    [
        (16, SegmentRule(length=6), [], [(0, 6), (6, 12), (12, 16)]),
        (5, SegmentRule(length=8), [], [(0, 5)]),
        (100, SegmentRule(), [30, 55], [(0, 30), (30, 55), (55, 100)]),
        (100, SegmentRule(), [3, 50, 96], [(0, 50), (50, 100)]),  # short scenes join
        (700, SegmentRule(), [], [(0, 233), (233, 466), (466, 700)]),  # long ones split evenly
        (1, SegmentRule(), [], [(0, 1)]),
    ],
)
def test_spans(count: int, rule: SegmentRule, cuts: list[int], spans: list) -> None:  # type: ignore[type-arg]
    assert plan_segments(count, rule, cuts) == spans


@pytest.mark.parametrize("count", [1, 7, 8, 9, 301, 1000])
@pytest.mark.parametrize("cuts", [[], [1, 2, 3], [5, 300, 301, 640]])
def test_auto_spans_cover_the_clip_within_bounds(count: int, cuts: list[int]) -> None:
    rule = SegmentRule()
    spans = plan_segments(count, rule, cuts)
    assert spans[0][0] == 0
    assert spans[-1][1] == count
    assert all(a < b for a, b in spans)
    assert all(spans[i][1] == spans[i + 1][0] for i in range(len(spans) - 1))
    assert all(b - a <= rule.max_length for a, b in spans)
    if count >= rule.min_length:
        assert all(b - a >= rule.min_length for a, b in spans)


def test_parse_segment() -> None:
    assert parse_segment("auto").auto
    assert parse_segment("48").length == 48
    for bad in ("0", "-3", "ten", "2.5"):
        with pytest.raises(ConfigError):
            parse_segment(bad)
