"""Yuv420Frames: shape validation, slicing, concatenation."""

from __future__ import annotations

import numpy as np
import pytest

from nvcodec.io import Yuv420Frames


def _frames(t: int, h: int, w: int, fill: int = 0) -> Yuv420Frames:
    c = (t, (h + 1) // 2, (w + 1) // 2)
    return Yuv420Frames(
        np.full((t, h, w), fill, np.uint8), np.full(c, 128, np.uint8), np.full(c, 128, np.uint8)
    )


def test_properties_and_odd_sizes() -> None:
    f = _frames(4, 17, 33)
    assert (f.count, f.height, f.width) == (4, 17, 33)
    assert f.u.shape == (4, 9, 17)


def test_validation() -> None:
    good = _frames(2, 4, 6)
    with pytest.raises(ValueError, match="u and v"):
        Yuv420Frames(good.y, good.u[:, :1], good.v)
    with pytest.raises(ValueError, match="uint8"):
        Yuv420Frames(good.y.astype(np.uint16), good.u, good.v)
    with pytest.raises(ValueError, match="u and v"):
        Yuv420Frames(good.y, good.u[:1], good.v[:1])


def test_slice_and_concatenate() -> None:
    parts = [_frames(2, 4, 6, fill=i) for i in range(3)]
    whole = Yuv420Frames.concatenate(parts)
    assert whole.count == 6
    mid = whole[2:4]
    assert mid.count == 2
    assert (mid.y == 1).all()
    with pytest.raises(ValueError, match="different sizes"):
        Yuv420Frames.concatenate([_frames(1, 4, 6), _frames(1, 4, 8)])
    with pytest.raises(ValueError, match="at least one"):
        Yuv420Frames.concatenate([])
