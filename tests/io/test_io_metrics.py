"""Quality metrics: PSNR conventions, MS-SSIM availability, determinism, ffmpeg agreement."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from nvcodec.io import (
    ColourSpec,
    Yuv420Frames,
    compute_metrics,
    open_writer,
    psnr_from_mse,
    read_video,
)
from nvcodec.io.metrics import LOSSLESS_PSNR, ms_ssim_window

CHAPLIN = Path(__file__).resolve().parents[1] / "data" / "clips" / "chaplin_96x72_16f.mkv"


def _grey(t: int, h: int, w: int, y: int = 128) -> Yuv420Frames:
    c = (t, (h + 1) // 2, (w + 1) // 2)
    return Yuv420Frames(
        np.full((t, h, w), y, np.uint8), np.full(c, 128, np.uint8), np.full(c, 128, np.uint8)
    )


def test_psnr_from_mse() -> None:
    assert psnr_from_mse(0.0) == math.inf
    assert psnr_from_mse(1.0) == pytest.approx(48.1308, abs=1e-4)
    assert psnr_from_mse(255.0**2) == pytest.approx(0.0)
    assert psnr_from_mse(1.0, peak=1.0) == 0.0
    with pytest.raises(ValueError, match=">= 0"):
        psnr_from_mse(-1.0)


def test_identical_is_infinite() -> None:
    frames, _ = read_video(CHAPLIN, (0, 3))
    m = compute_metrics(frames, frames, ColourSpec())
    assert m.psnr_y == m.psnr_u == m.psnr_v == m.psnr_yuv == m.psnr_rgb == math.inf
    assert m.ms_ssim == pytest.approx(1.0)
    assert m.per_frame["psnr_y"] == [math.inf] * 3


def test_offset_of_one_on_luma() -> None:
    ref = _grey(2, 40, 30, 100)
    dec = _grey(2, 40, 30, 101)
    m = compute_metrics(ref, dec, ColourSpec())
    assert m.psnr_y == pytest.approx(48.1308, abs=1e-4)
    assert m.psnr_u == m.psnr_v == math.inf
    assert m.per_frame["psnr_y"] == pytest.approx([48.1308] * 2, abs=1e-4)
    # 6:1:1 of (48.13, inf, inf): identical planes count as LOSSLESS_PSNR, not as infinity,
    # else a clip with flat chroma (black-and-white video) would read as perfect at any PSNR-Y.
    assert m.psnr_yuv == pytest.approx((6 * 48.1308 + 2 * LOSSLESS_PSNR) / 8, abs=1e-4)
    assert m.per_frame["psnr_yuv"] == pytest.approx([m.psnr_yuv] * 2)


def test_black_and_white_clip_is_not_reported_perfect() -> None:
    """Chroma flat at 128 in both clips, luma far off: PSNR-YUV is finite and follows PSNR-Y,
    also when segments' metrics are merged."""
    from nvcodec.io.metrics import merge_metrics

    ref, dec = _grey(3, 16, 16, 200), _grey(3, 16, 16, 60)
    m = compute_metrics(ref, dec, ColourSpec())
    assert m.psnr_u == m.psnr_v == math.inf
    assert m.psnr_y < 10
    assert math.isfinite(m.psnr_yuv)
    assert m.psnr_yuv < 35
    worse = compute_metrics(ref, _grey(3, 16, 16, 30), ColourSpec())
    assert worse.psnr_yuv < m.psnr_yuv
    merged = merge_metrics([m, compute_metrics(ref[:1], dec[:1], ColourSpec())])
    assert merged.psnr_yuv == pytest.approx(m.psnr_yuv)


def test_mean_mse_not_mean_psnr() -> None:
    ref = _grey(2, 8, 8, 100)
    dec = Yuv420Frames.concatenate([_grey(1, 8, 8, 101), _grey(1, 8, 8, 110)])
    m = compute_metrics(ref, dec, ColourSpec(), chunk=1)
    expected = psnr_from_mse((1.0 + 100.0) / 2)
    mean_of_psnr = (psnr_from_mse(1.0) + psnr_from_mse(100.0)) / 2
    assert m.psnr_y == pytest.approx(expected)
    assert abs(m.psnr_y - mean_of_psnr) > 5
    assert m.per_frame["psnr_y"] == pytest.approx([psnr_from_mse(1.0), psnr_from_mse(100.0)])


def test_yuv_weighting_and_rgb() -> None:
    rng = np.random.default_rng(0)
    ref, _ = read_video(CHAPLIN, (0, 2))

    def noisy(p: np.ndarray) -> np.ndarray:
        return np.clip(p.astype(int) + rng.integers(-3, 4, p.shape), 0, 255).astype(np.uint8)

    dec = Yuv420Frames(noisy(ref.y), noisy(ref.u), noisy(ref.v))
    m = compute_metrics(ref, dec, ColourSpec())
    assert m.psnr_yuv == pytest.approx((6 * m.psnr_y + m.psnr_u + m.psnr_v) / 8)
    for i in range(2):
        pf = m.per_frame
        assert pf["psnr_yuv"][i] == pytest.approx(
            (6 * pf["psnr_y"][i] + pf["psnr_u"][i] + pf["psnr_v"][i]) / 8
        )
    assert 30 < m.psnr_rgb < 60
    assert set(m.to_dict()) == {
        "psnr_y", "psnr_u", "psnr_v", "psnr_yuv", "psnr_rgb", "ms_ssim", "per_frame"
    }  # fmt: skip


def test_ms_ssim_availability() -> None:
    assert ms_ssim_window(30, 40) is None
    assert ms_ssim_window(72, 96) == 5
    assert ms_ssim_window(1080, 1920) == 11
    small = compute_metrics(_grey(2, 30, 40), _grey(2, 30, 40, 120), ColourSpec())
    assert small.ms_ssim is None
    assert "ms_ssim" not in small.per_frame
    ref, _ = read_video(CHAPLIN, (0, 3))
    dec = Yuv420Frames(np.clip(ref.y.astype(int) + 4, 0, 255).astype(np.uint8), ref.u, ref.v)
    m = compute_metrics(ref, dec, ColourSpec())
    assert m.ms_ssim is not None
    assert 0 < m.ms_ssim <= 1
    assert len(m.per_frame["ms_ssim"]) == 3


def test_chunking_is_deterministic() -> None:
    ref, _ = read_video(CHAPLIN)
    dec = Yuv420Frames(ref.y[::-1].copy(), ref.u, ref.v)
    a = compute_metrics(ref, dec, ColourSpec(), chunk=16)
    b = compute_metrics(ref, dec, ColourSpec(), chunk=3)
    assert a.per_frame == b.per_frame
    assert a.psnr_y == b.psnr_y
    assert a.ms_ssim == pytest.approx(b.ms_ssim, abs=1e-12)


def test_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="different shapes"):
        compute_metrics(_grey(2, 8, 8), _grey(3, 8, 8), ColourSpec())


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="no ffmpeg binary on PATH")
def test_psnr_y_matches_ffmpeg(tmp_path: Path) -> None:
    ref, _ = read_video(CHAPLIN, (0, 4))
    rng = np.random.default_rng(5)
    dec = Yuv420Frames(
        np.clip(ref.y.astype(int) + rng.integers(-4, 5, ref.y.shape), 0, 255).astype(np.uint8),
        ref.u,
        ref.v,
    )
    paths = []
    for name, frames in (("ref", ref), ("dec", dec)):
        path = str(tmp_path / f"{name}.y4m")
        with open_writer(
            path, width=96, height=72, fps=Fraction(25), colour=ColourSpec()
        ) as writer:
            writer.write(frames)
        paths.append(path)
    result = subprocess.run(
        ["ffmpeg", "-nostdin", "-i", paths[1], "-i", paths[0], "-lavfi", "psnr", "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=True,
    )
    found = re.search(r"PSNR y:([\d.]+)", result.stderr)
    assert found is not None
    m = compute_metrics(ref, dec, ColourSpec())
    assert m.psnr_y == pytest.approx(float(found.group(1)), abs=0.01)
