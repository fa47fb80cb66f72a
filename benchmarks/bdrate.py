"""Bjøntegaard delta rate and delta PSNR with piecewise-cubic Hermite (PCHIP) interpolation.

::

    rates, PSNRs of two curves ─► sort by rate, check both rise together
      ─► PCHIP of ln(rate) as a function of PSNR (BD-rate) or of PSNR over ln(rate) (BD-PSNR)
      ─► exact integral over the overlapping interval ─► mean difference ─► % (or dB)

This is the method of the JCT-VC/JVET common-test-condition spreadsheets (JCTVC-L1100, JVET-T2010):
the cubic fit of VCEG-M33 (G. Bjøntegaard, "Calculation of average PSNR differences between
RD-curves", 2001) replaced by Fritsch–Carlson/Butland monotone piecewise-cubic interpolation, the
same interpolant as MATLAB's and SciPy's ``pchip``. It is written here with numpy only and
integrated in closed form, so no SciPy is needed at run time.

Negative BD-rate = the test codec needs fewer bits for the same quality.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "BdResult",
    "NonMonotonicCurveError",
    "Pchip",
    "bd_psnr",
    "bd_rate",
    "sorted_curve",
]


class NonMonotonicCurveError(ValueError):
    """A rate-distortion curve whose quality does not rise strictly with its rate."""


@dataclass(frozen=True)
class BdResult:
    """A BD value, or ``value=None`` with the reason (e.g. the curves do not overlap).

    ``low``/``high`` is the interval integrated over: PSNR in dB for BD-rate, ln(rate) for BD-PSNR.
    """

    value: float | None
    low: float
    high: float
    reason: str | None = None


class Pchip:
    """Monotone piecewise-cubic Hermite interpolant through ``(x[i], y[i])``, ``x`` increasing.

    Derivatives follow Fritsch & Carlson (1980) with Fritsch & Butland's weighted harmonic mean at
    interior points and the shape-preserving three-point formula at the ends (Moler, "Numerical
    Computing with MATLAB", ch. 3) — the same as ``scipy.interpolate.PchipInterpolator``. Two
    points give the straight line through them.
    """

    def __init__(self, x: Sequence[float], y: Sequence[float]) -> None:
        xs = np.asarray(x, dtype=np.float64)
        ys = np.asarray(y, dtype=np.float64)
        if xs.ndim != 1 or xs.shape != ys.shape or xs.size < 2:
            raise ValueError("PCHIP needs two 1-d arrays of the same length >= 2")
        if not (np.all(np.isfinite(xs)) and np.all(np.isfinite(ys))):
            raise ValueError("PCHIP needs finite values")
        if np.any(np.diff(xs) <= 0):
            raise ValueError("PCHIP needs strictly increasing x")
        self.x, self.y = xs, ys
        self.d = self._derivatives(xs, ys)

    @staticmethod
    def _derivatives(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        h = np.diff(x)
        delta = np.diff(y) / h
        n = x.size
        d = np.zeros(n)
        if n == 2:
            d[:] = delta[0]
            return d
        for k in range(1, n - 1):
            if delta[k - 1] * delta[k] > 0:
                w1 = 2.0 * h[k] + h[k - 1]
                w2 = h[k] + 2.0 * h[k - 1]
                d[k] = (w1 + w2) / (w1 / delta[k - 1] + w2 / delta[k])
        d[0] = Pchip._end(h[0], h[1], delta[0], delta[1])
        d[-1] = Pchip._end(h[-1], h[-2], delta[-1], delta[-2])
        return d

    @staticmethod
    def _end(h0: float, h1: float, m0: float, m1: float) -> float:
        """One-sided three-point derivative, clipped so the end segment stays shape-preserving."""
        d = ((2.0 * h0 + h1) * m0 - h0 * m1) / (h0 + h1)
        if np.sign(d) != np.sign(m0):
            return 0.0
        if np.sign(m0) != np.sign(m1) and abs(d) > abs(3.0 * m0):
            return 3.0 * m0
        return float(d)

    def _coefficients(self, k: int) -> tuple[float, float, float, float]:
        """Power-basis coefficients of segment ``k`` in ``t = x - x[k]``."""
        h = self.x[k + 1] - self.x[k]
        delta = (self.y[k + 1] - self.y[k]) / h
        d0, d1 = self.d[k], self.d[k + 1]
        return (
            float(self.y[k]),
            float(d0),
            float((3.0 * delta - 2.0 * d0 - d1) / h),
            float((d0 + d1 - 2.0 * delta) / (h * h)),
        )

    def _segment(self, value: float) -> int:
        k = int(np.searchsorted(self.x, value, side="right")) - 1
        return min(max(k, 0), self.x.size - 2)

    def __call__(self, value: float) -> float:
        """The interpolant at ``value`` (extrapolates the end cubics outside ``x``)."""
        k = self._segment(value)
        c0, c1, c2, c3 = self._coefficients(k)
        t = value - self.x[k]
        return c0 + t * (c1 + t * (c2 + t * c3))

    def integral(self, a: float, b: float) -> float:
        """Exact integral over ``[a, b]`` (``a <= b``, both inside ``[x[0], x[-1]]``)."""
        if not self.x[0] <= a <= b <= self.x[-1]:
            raise ValueError(f"integral bounds [{a}, {b}] outside [{self.x[0]}, {self.x[-1]}]")
        total = 0.0
        for k in range(self.x.size - 1):
            lo, hi = max(a, self.x[k]), min(b, self.x[k + 1])
            if hi <= lo:
                continue
            c0, c1, c2, c3 = self._coefficients(k)

            def antiderivative(t: float, c0=c0, c1=c1, c2=c2, c3=c3) -> float:
                return t * (c0 + t * (c1 / 2.0 + t * (c2 / 3.0 + t * c3 / 4.0)))

            total += antiderivative(hi - self.x[k]) - antiderivative(lo - self.x[k])
        return total


def sorted_curve(
    rates: Sequence[float], psnrs: Sequence[float], name: str = "curve"
) -> tuple[np.ndarray, np.ndarray]:
    """The curve sorted by rate; :class:`NonMonotonicCurveError` unless PSNR rises strictly too.

    Rates must be positive and every value finite; at least two points are needed.
    """
    r = np.asarray(rates, dtype=np.float64)
    p = np.asarray(psnrs, dtype=np.float64)
    if r.ndim != 1 or r.shape != p.shape:
        raise ValueError(f"{name}: rates and PSNRs must be 1-d and of the same length")
    if r.size < 2:
        raise ValueError(f"{name}: needs at least 2 points, got {r.size}")
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(p))):
        raise ValueError(f"{name}: rates and PSNRs must be finite")
    if np.any(r <= 0):
        raise ValueError(f"{name}: rates must be > 0")
    order = np.argsort(r, kind="stable")
    r, p = r[order], p[order]
    if np.any(np.diff(r) <= 0):
        raise NonMonotonicCurveError(f"{name}: two points have the same rate")
    if np.any(np.diff(p) <= 0):
        pairs = ", ".join(f"{a:.4g}→{b:.2f}" for a, b in zip(r, p, strict=True))
        raise NonMonotonicCurveError(
            f"{name}: PSNR does not increase with rate (rate→PSNR: {pairs})"
        )
    return r, p


def bd_rate(
    anchor_rates: Sequence[float],
    anchor_psnrs: Sequence[float],
    test_rates: Sequence[float],
    test_psnrs: Sequence[float],
) -> BdResult:
    """Average rate difference of the test curve vs the anchor at equal PSNR, in percent.

    ``value`` is None (with ``reason``) when the PSNR ranges do not overlap. Raises
    :class:`NonMonotonicCurveError` for curves whose PSNR does not rise with rate.
    """
    ra, pa = sorted_curve(anchor_rates, anchor_psnrs, "anchor")
    rt, pt = sorted_curve(test_rates, test_psnrs, "test")
    low, high = float(max(pa[0], pt[0])), float(min(pa[-1], pt[-1]))
    if not high > low:
        return BdResult(
            None,
            low,
            high,
            f"no PSNR overlap: anchor {pa[0]:.2f}–{pa[-1]:.2f} dB, "
            f"test {pt[0]:.2f}–{pt[-1]:.2f} dB",
        )
    ia = Pchip(pa, np.log(ra)).integral(low, high)
    it = Pchip(pt, np.log(rt)).integral(low, high)
    return BdResult(math.expm1((it - ia) / (high - low)) * 100.0, low, high)


def bd_psnr(
    anchor_rates: Sequence[float],
    anchor_psnrs: Sequence[float],
    test_rates: Sequence[float],
    test_psnrs: Sequence[float],
) -> BdResult:
    """Average PSNR difference (dB) of the test curve vs the anchor at equal rate.

    ``low``/``high`` are ln(rate) bounds; ``value`` is None when the rate ranges do not overlap.
    """
    ra, pa = sorted_curve(anchor_rates, anchor_psnrs, "anchor")
    rt, pt = sorted_curve(test_rates, test_psnrs, "test")
    la, lt = np.log(ra), np.log(rt)
    low, high = float(max(la[0], lt[0])), float(min(la[-1], lt[-1]))
    if not high > low:
        return BdResult(
            None,
            low,
            high,
            f"no rate overlap: anchor {ra[0]:.4g}–{ra[-1]:.4g}, test {rt[0]:.4g}–{rt[-1]:.4g}",
        )
    ia = Pchip(la, pa).integral(low, high)
    it = Pchip(lt, pt).integral(low, high)
    return BdResult((it - ia) / (high - low), low, high)
