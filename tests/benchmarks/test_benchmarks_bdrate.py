"""BD-rate / BD-PSNR with PCHIP: exact identities, a published test vector, PCHIP properties."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks.bdrate import NonMonotonicCurveError, Pchip, bd_psnr, bd_rate

RATES = [1358.24, 2486.44, 4593.60, 9487.76]
PSNRS = [34.851, 36.845, 38.615, 40.037]


def test_same_curve_is_zero() -> None:
    assert bd_rate(RATES, PSNRS, RATES, PSNRS).value == pytest.approx(0.0, abs=1e-12)
    assert bd_psnr(RATES, PSNRS, RATES, PSNRS).value == pytest.approx(0.0, abs=1e-12)


def test_halved_rates_are_minus_50_percent() -> None:
    result = bd_rate(RATES, PSNRS, [r / 2 for r in RATES], PSNRS)
    assert result.value == pytest.approx(-50.0, abs=1e-6)
    assert (result.low, result.high) == (min(PSNRS), max(PSNRS))


def test_doubled_rates_are_plus_100_percent() -> None:
    assert bd_rate(RATES, PSNRS, [2 * r for r in RATES], PSNRS).value == pytest.approx(
        100.0, abs=1e-6
    )


def test_psnr_shift_is_bd_psnr() -> None:
    assert bd_psnr(RATES, PSNRS, RATES, [p + 0.5 for p in PSNRS]).value == pytest.approx(
        0.5, abs=1e-9
    )


def test_order_of_points_does_not_matter() -> None:
    test_r, test_p = [9787.80, 4469.00, 2451.52, 1356.24], [40.121, 38.651, 36.970, 34.987]
    a = bd_rate(RATES, PSNRS, test_r, test_p).value
    b = bd_rate(RATES[::-1], PSNRS[::-1], test_r[::-1], test_p[::-1]).value
    assert a == pytest.approx(b, abs=1e-12)
    assert a is not None
    assert a < 0  # the test curve is better everywhere


def test_no_overlap_is_none_with_reason() -> None:
    result = bd_rate(RATES, PSNRS, RATES, [p + 20 for p in PSNRS])
    assert result.value is None
    assert result.reason is not None
    assert "overlap" in result.reason
    assert bd_psnr(RATES, PSNRS, [r * 100 for r in RATES], PSNRS).value is None


def test_non_monotonic_curve_raises() -> None:
    with pytest.raises(NonMonotonicCurveError, match="does not increase"):
        bd_rate(RATES, PSNRS, RATES, [34.0, 36.0, 35.0, 40.0])
    with pytest.raises(NonMonotonicCurveError, match="same rate"):
        bd_rate(RATES, PSNRS, [1.0, 1.0, 2.0, 3.0], PSNRS)


@pytest.mark.parametrize(
    ("rates", "psnrs"),
    [([1.0], [30.0]), ([1.0, -2.0], [30.0, 31.0]), ([1.0, float("nan")], [30.0, 31.0])],
)
def test_bad_curves_raise(rates: list[float], psnrs: list[float]) -> None:
    with pytest.raises(ValueError, match=r"curve|test|anchor"):
        bd_rate(RATES, PSNRS, rates, psnrs)


# JCTVC-E137 RD points as used in Netflix/vmaf python/test/bd_rate_calculator_test.py
# (BDrateCalculatorJCTVCTest), whose PCHIP BD-rates are -0.00465215420752807 and
# -0.018779823450567612 (fractions) — the JCT-VC spreadsheet method.
E137 = [
    (
        [(108048.8736, 43.6471), (61279.976, 40.3953), (33905.6656, 37.247), (18883.6928, 34.2911)],
        [
            (108061.2784, 43.6768),
            (61299.9936, 40.4232),
            (33928.7472, 37.2761),
            (18910.912, 34.3147),
        ],
        -0.465215420752807,
    ),
    (
        [(40433.8848, 37.5761), (7622.7456, 35.3756), (2394.488, 33.8977), (1017.6184, 32.0603)],
        [(40370.12, 37.5982), (7587.0024, 35.4025), (2390.0944, 33.9194), (1017.0984, 32.0822)],
        -1.8779823450567612,
    ),
]


@pytest.mark.parametrize(("anchor", "test", "expected"), E137)
def test_published_jctvc_e137_vectors(
    anchor: list[tuple[float, float]], test: list[tuple[float, float]], expected: float
) -> None:
    ra, pa = zip(*anchor, strict=True)
    rt, pt = zip(*test, strict=True)
    assert bd_rate(ra, pa, rt, pt).value == pytest.approx(expected, abs=1e-6)


def test_pchip_interpolates_the_points_exactly() -> None:
    x = [0.0, 1.0, 2.5, 3.0, 7.0]
    y = [1.0, -2.0, 0.5, 0.5, 4.0]
    p = Pchip(x, y)
    for xi, yi in zip(x, y, strict=True):
        assert p(xi) == pytest.approx(yi, abs=1e-12)


def test_pchip_is_monotone_between_monotone_points() -> None:
    x = np.array([0.0, 0.3, 1.0, 1.1, 4.0, 4.5])
    y = np.array([0.0, 0.1, 3.0, 3.0, 3.2, 9.0])  # increasing, one flat step
    p = Pchip(x, y)
    dense = np.linspace(x[0], x[-1], 2001)
    values = np.array([p(v) for v in dense])
    assert np.all(np.diff(values) >= -1e-12)
    flat = values[(dense >= 1.0) & (dense <= 1.1)]
    assert np.allclose(flat, 3.0)  # no overshoot on the flat step


def test_pchip_two_points_is_a_line_and_integral_is_exact() -> None:
    p = Pchip([1.0, 3.0], [2.0, 6.0])
    assert p(2.0) == pytest.approx(4.0)
    assert p.integral(1.0, 3.0) == pytest.approx(8.0)
    q = Pchip([0.0, 1.0, 2.0, 4.0], [0.0, 1.0, 4.0, 5.0])
    dense = np.linspace(0.5, 3.5, 30001)
    numeric = np.trapezoid([q(v) for v in dense], dense)
    assert q.integral(0.5, 3.5) == pytest.approx(numeric, abs=1e-6)


def test_pchip_matches_scipy() -> None:
    interpolate = pytest.importorskip("scipy.interpolate")
    rng = np.random.default_rng(1)
    for _ in range(20):
        x = np.cumsum(rng.uniform(0.1, 2.0, 6))
        y = rng.normal(size=6)
        ours, theirs = Pchip(x, y), interpolate.PchipInterpolator(x, y)
        dense = np.linspace(x[0], x[-1], 101)
        assert np.allclose([ours(v) for v in dense], theirs(dense), atol=1e-10)
        assert ours.integral(x[1], x[4]) == pytest.approx(theirs.integrate(x[1], x[4]), abs=1e-9)


def _curve(codec: str, rate_scale: float, offset_db: float) -> list[dict]:
    """Four points of a synthetic curve at 4 dB per doubling of rate, as report records."""
    rates = [0.1, 0.2, 0.4, 0.8]
    return [
        {"codec": codec, "bpp": rate_scale * r, "psnr_yuv": offset_db + 4 * math.log2(r / 0.1)}
        for r in rates
    ]


def test_rd_curves_are_also_measured_against_their_own_models_qat_pipeline() -> None:
    from benchmarks.report import bd_table

    records = _curve("x265-veryslow", 1.0, 30) + _curve("nvc-ds-nerv", 1.0, 29)
    records += _curve("nvc-ds-nerv-rd", 0.9, 29)
    entries = {(e.test, e.anchor): e for e in bd_table(records)}
    assert set(entries) == {
        ("nvc-ds-nerv", "x265-veryslow"),
        ("nvc-ds-nerv-rd", "x265-veryslow"),
        ("nvc-ds-nerv-rd", "nvc-ds-nerv"),
    }
    same_psnr_fewer_bits = entries[("nvc-ds-nerv-rd", "nvc-ds-nerv")].rate
    assert same_psnr_fewer_bits is not None
    assert same_psnr_fewer_bits.value == pytest.approx(-10.0, abs=0.5)


def test_other_models_are_measured_against_the_default_model_run_the_same_way() -> None:
    from benchmarks.report import bd_table

    records = _curve("x265-veryslow", 1.0, 30)
    for label, scale in [
        ("nvc-ds-nerv-rd", 1.0),
        ("nvc-hinerv-flat-rd", 0.8),
        ("nvc-hnerv", 1.3),
        ("nvc-hnerv-bf16-rd", 1.2),
        ("nvc-ds-nerv-bf16-rd", 1.0),
    ]:
        records += _curve(label, scale, 29)
    entries = {(e.test, e.anchor): e for e in bd_table(records)}
    default_pairs = {k for k in entries if k[1].startswith("nvc-")}
    # nvc-hnerv has no plain nvc-ds-nerv curve to meet; bf16 curves meet the bf16 default
    assert default_pairs == {
        ("nvc-hinerv-flat-rd", "nvc-ds-nerv-rd"),
        ("nvc-hnerv-bf16-rd", "nvc-ds-nerv-bf16-rd"),
    }
    fewer_bits = entries[("nvc-hinerv-flat-rd", "nvc-ds-nerv-rd")].rate
    assert fewer_bits is not None
    assert fewer_bits.value == pytest.approx(-20.0, abs=0.5)


def test_the_reports_default_model_is_the_encoders() -> None:
    import dataclasses

    from benchmarks.report import DEFAULT_MODEL
    from nvcodec.encoder import EncodeOptions

    default = {f.name: f.default for f in dataclasses.fields(EncodeOptions)}["model"]
    assert default == DEFAULT_MODEL
