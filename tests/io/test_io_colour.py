"""The fixed YUV <-> RGB conversion: known values, round trip, validation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from nvcodec.errors import ConfigError
from nvcodec.io import ColourSpec, rgb_to_yuv420, yuv420_to_rgb

SPECS = [ColourSpec(m, r) for m in ("bt709", "bt601") for r in ("limited", "full")]


def _const(t: int, h: int, w: int, y: int, u: int, v: int) -> tuple[np.ndarray, ...]:
    hc, wc = (h + 1) // 2, (w + 1) // 2
    return (
        np.full((t, h, w), y, np.uint8),
        np.full((t, hc, wc), u, np.uint8),
        np.full((t, hc, wc), v, np.uint8),
    )


@pytest.mark.parametrize("matrix", ["bt709", "bt601"])
@pytest.mark.parametrize(("range_", "black", "white"), [("limited", 16, 235), ("full", 0, 255)])
def test_black_and_white(matrix: str, range_: str, black: int, white: int) -> None:
    spec = ColourSpec(matrix, range_)
    rgb = yuv420_to_rgb(*_const(1, 3, 5, black, 128, 128), spec)
    assert rgb.dtype == np.float32
    assert rgb.shape == (1, 3, 5, 3)
    np.testing.assert_array_equal(rgb, 0.0)
    np.testing.assert_allclose(yuv420_to_rgb(*_const(1, 3, 5, white, 128, 128), spec), 1.0)


def test_known_bt709_red() -> None:
    # Pure red in BT.709 limited range is Y=63, Cb=102, Cr=240.
    y, u, v = rgb_to_yuv420(np.array([[[[1.0, 0.0, 0.0]]]]), ColourSpec())
    assert (int(y[0, 0, 0]), int(u[0, 0, 0]), int(v[0, 0, 0])) == (63, 102, 240)


def test_output_is_clipped() -> None:
    rgb = yuv420_to_rgb(*_const(1, 2, 2, 235, 16, 240), ColourSpec())
    assert rgb.min() >= 0.0
    assert rgb.max() <= 1.0


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.matrix}-{s.range}")
@pytest.mark.parametrize(("h", "w"), [(8, 10), (17, 33), (1, 1)])
def test_round_trip_exact_without_clipping(spec: ColourSpec, h: int, w: int) -> None:
    rng = np.random.default_rng(1)
    t = 3
    y = rng.integers(60, 190, (t, h, w), dtype=np.uint8)
    u = rng.integers(118, 139, (t, (h + 1) // 2, (w + 1) // 2), dtype=np.uint8)
    v = rng.integers(118, 139, (t, (h + 1) // 2, (w + 1) // 2), dtype=np.uint8)
    rgb = yuv420_to_rgb(y, u, v, spec)
    assert rgb.min() > 0.0  # no clipping happened
    assert rgb.max() < 1.0
    y2, u2, v2 = rgb_to_yuv420(rgb, spec)
    np.testing.assert_array_equal(y2, y)
    np.testing.assert_array_equal(u2, u)
    np.testing.assert_array_equal(v2, v)


def test_chroma_is_block_mean_with_edge_replication() -> None:
    spec = ColourSpec(range="full")
    rgb = np.full((1, 3, 3, 3), 0.5)
    rgb[0, :, 2, 2] = 1.0  # last column bluer; it is replicated into the padding column
    _, u, _ = rgb_to_yuv420(rgb, spec)
    assert u.shape == (1, 2, 2)
    assert u[0, 0, 0] == 128
    assert u[0, 0, 1] > u[0, 0, 0]
    assert u[0, 0, 1] == u[0, 1, 1]


def test_rgb_input_is_clipped() -> None:
    a = rgb_to_yuv420(np.full((1, 2, 2, 3), 2.0), ColourSpec())
    b = rgb_to_yuv420(np.ones((1, 2, 2, 3)), ColourSpec())
    for p, q in zip(a, b, strict=True):
        np.testing.assert_array_equal(p, q)


def test_bad_shapes() -> None:
    y, u, v = _const(1, 4, 4, 16, 128, 128)
    with pytest.raises(ValueError, match="u and v"):
        yuv420_to_rgb(y, u[:, :1], v, ColourSpec())
    with pytest.raises(ValueError, match="rgb"):
        rgb_to_yuv420(np.zeros((4, 4, 3)), ColourSpec())


def test_spec_dict_round_trip_and_validation() -> None:
    for spec in SPECS:
        assert ColourSpec.from_dict(spec.to_dict()) == spec
    assert ColourSpec.from_dict({}) == ColourSpec()
    with pytest.raises(ConfigError, match="matrix"):
        ColourSpec.from_dict({"matrix": "ycgco", "range": "full"})
    with pytest.raises(ConfigError, match="range"):
        ColourSpec.from_dict({"matrix": "bt709", "range": "tv"})
    with pytest.raises(ConfigError, match="keys"):
        ColourSpec.from_dict({"matrix": "bt709", "gamma": 2.2})
    with pytest.raises(ConfigError):
        ColourSpec(matrix="xyz")  # type: ignore[arg-type]


@pytest.mark.parametrize("shape", [(7, 9, 11, 3), (5, 8, 6, 3), (3, 1, 1, 3)])
def test_rgb_to_yuv420_in_chunks_equals_one_block(monkeypatch, shape) -> None:
    """Converting a few frames at a time (cache-sized chunks) gives exactly the planes of one
    whole-clip conversion, whatever the chunk boundary, for every matrix and range."""
    from nvcodec.io import colour

    rng = np.random.default_rng(1)
    rgb = (rng.random(shape, dtype=np.float32) * 1.2 - 0.1).astype(np.float32)
    specs = (ColourSpec(), ColourSpec(matrix="bt601", range="full"))
    for spec, dtype in itertools.product(specs, (np.float64, np.float32)):
        whole = colour._rgb_to_yuv420(rgb, spec, dtype)
        for pixels in (1, 2 * shape[1] * shape[2], 10**9):
            monkeypatch.setattr(colour, "CHUNK_PIXELS", pixels)
            chunked = colour.rgb_to_yuv420(rgb, spec, dtype)
            for a, b in zip(chunked, whole, strict=True):
                assert a.dtype == np.uint8
                assert np.array_equal(a, b)


def test_float32_conversion_is_within_one_code_of_float64() -> None:
    """The channels-last decode layout converts in float32: rarely a different rounding, never
    more than one code, and the same clipping."""
    rng = np.random.default_rng(3)
    rgb = rng.random((4, 33, 47, 3), dtype=np.float32) * 1.2 - 0.1  # some values to clip
    for spec in (ColourSpec(), ColourSpec(matrix="bt601", range="full")):
        wide = rgb_to_yuv420(rgb, spec)
        narrow = rgb_to_yuv420(rgb, spec, np.float32)
        for p, q in zip(wide, narrow, strict=True):
            assert p.dtype == q.dtype == np.uint8
            assert np.abs(p.astype(int) - q.astype(int)).max() <= 1
            assert (p != q).mean() < 1e-3
