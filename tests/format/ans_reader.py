"""Tensor payload decoding in plain Python + numpy, written from FORMAT.md's entropy-coding section.

No constriction, no nvcodec, no bitstream: this module re-derives, bit for bit, what the writer's
coder (constriction 0.4/0.5 `AnsCoder` with `Categorical(perfect=False)`, `QuantizedLaplace`,
`QuantizedGaussian`) does, so that a reader in any language can follow the same recipe:

* `histogram_table`, `laplace_table`, `gaussian_table` (`model_table` by kind) build a model's
  integer cumulative table `cdf[0..n]` (`cdf[0] = 0`, `cdf[n] = 2^24`; symbol `i` owns the
  quantiles `[cdf[i], cdf[i+1])`, so its frequency is `cdf[i+1] - cdf[i] >= 1`);
* `ans_decode` pops symbols from a payload of little-endian u32 words with such a table.

The Laplace and Gaussian CDFs need `exp` and `erf` exactly as the writer computed them: Rust's
`libm` crate (a port of FreeBSD/musl msun `e_exp.c` and `s_erf.c`), ported here operation by
operation in binary64. numpy's elementwise `+ - * /` are correctly rounded binary64 operations
without fused multiply-add, as are Rust's, so the port is exact. (Python's `math.exp`/`math.erf`
call the C library, whose results differ in the last bit for some arguments.)
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable

import numpy as np

PRECISION = 24  # bits of the fixed-point probabilities; the quantile is state mod 2^24
TOTAL = 1 << PRECISION
WORD_BITS = 32  # compressed words are u32
STATE_BITS = 64  # the coder state is a u64
REFILL_BELOW = 1 << (STATE_BITS - WORD_BITS)  # state < 2^32 pulls in the next word

# --------------------------------------------------------------------------- libm exp / erf

_LN2HI = 6.93147180369123816490e-01
_LN2LO = 1.90821492927058770002e-10
_INVLN2 = 1.44269504088896338700e00
_EXP_P = (
    1.66666666666666019037e-01,
    -2.77777777770155933842e-03,
    6.61375632143793436117e-05,
    -1.65339022054652515390e-06,
    4.13813679705723846039e-08,
)


def _high_word(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`(|x|'s upper 32 bits, sign bit)` of binary64 values, as int64 arrays."""
    bits = x.view(np.uint64)
    return ((bits >> np.uint64(32)) & np.uint64(0x7FFFFFFF)).astype(np.int64), (
        bits >> np.uint64(63)
    ).astype(np.int64)


def libm_exp(x: np.ndarray) -> np.ndarray:
    """`exp` of finite binary64 values, bit-identical to msun `e_exp.c` (Rust `libm::exp`)."""
    x = np.asarray(x, dtype=np.float64)
    hx, sign = _high_word(x)
    big = hx >= 0x3FF0A2B2  # |x| >= 1.5 ln2: k = trunc(x / ln2 ± 0.5)
    reduce = hx > 0x3FD62E42  # |x| > 0.5 ln2: x = k ln2 + r, else k = 0 and r = x
    with np.errstate(all="ignore"):  # every branch is evaluated everywhere, then selected
        guess = np.trunc(np.clip(_INVLN2 * x + np.where(sign == 1, -0.5, 0.5), -2000, 2000))
        k = np.where(big, guess.astype(np.int64), np.where(reduce, 1 - 2 * sign, 0))
        kf = k.astype(np.float64)
        hi = np.where(reduce, x - kf * _LN2HI, x)
        lo = np.where(reduce, kf * _LN2LO, 0.0)
        r = np.where(reduce, hi - lo, x)
        rr = r * r
        p1, p2, p3, p4, p5 = _EXP_P
        c = r - rr * (p1 + rr * (p2 + rr * (p3 + rr * (p4 + rr * p5))))
        y = 1.0 + (r * c / (2.0 - c) - lo + hi)
        y = np.ldexp(y, k.astype(np.int32))  # scalbn: exact for normal results
        y = np.where(hx <= 0x3E300000, 1.0 + x, y)  # |x| <= 2^-28
        y = np.where(x > 709.782712893383973096, np.inf, y)
    return np.where(x < -745.13321910194110842, 0.0, y)


_ERX = 8.45062911510467529297e-01
_EFX8 = 1.02703333676410069053e00
# msun s_erf.c coefficient tables, lowest order first (Q* and S* have an implicit leading 1)
# fmt: off
_PP = (1.28379167095512558561e-01, -3.25042107247001499370e-01, -2.84817495755985104766e-02,
       -5.77027029648944159157e-03, -2.37630166566501626084e-05)
_QQ = (3.97917223959155352819e-01, 6.50222499887672944485e-02, 5.08130628187576562776e-03,
       1.32494738004321644526e-04, -3.96022827877536812320e-06)
_PA = (-2.36211856075265944077e-03, 4.14856118683748331666e-01, -3.72207876035701323847e-01,
       3.18346619901161753674e-01, -1.10894694282396677476e-01, 3.54783043256182359371e-02,
       -2.16637559486879084300e-03)
_QA = (1.06420880400844228286e-01, 5.40397917702171048937e-01, 7.18286544141962662868e-02,
       1.26171219808761642112e-01, 1.36370839120290507362e-02, 1.19844998467991074170e-02)
_RA = (-9.86494403484714822705e-03, -6.93858572707181764372e-01, -1.05586262253232909814e01,
       -6.23753324503260060396e01, -1.62396669462573470355e02, -1.84605092906711035994e02,
       -8.12874355063065934246e01, -9.81432934416914548592e00)
_SA = (1.96512716674392571292e01, 1.37657754143519042600e02, 4.34565877475229228821e02,
       6.45387271733267880336e02, 4.29008140027567833386e02, 1.08635005541779435134e02,
       6.57024977031928170135e00, -6.04244152148580987438e-02)
_RB = (-9.86494292470009928597e-03, -7.99283237680523006574e-01, -1.77579549177547519889e01,
       -1.60636384855821916062e02, -6.37566443368389627722e02, -1.02509513161107724954e03,
       -4.83519191608651397019e02)
_SB = (3.03380607434824582924e01, 3.25792512996573918826e02, 1.53672958608443695994e03,
       3.19985821950859553908e03, 2.55305040643316442583e03, 4.74528541206955367215e02,
       -2.24409524465858183362e01)
# fmt: on


def _horner(coeffs: tuple[float, ...], z: np.ndarray, one: bool) -> np.ndarray:
    """`c0 + z*(c1 + z*(...))`, or `1 + z*(c0 + z*(...))` when `one`, in msun's order."""
    acc = np.full_like(z, coeffs[-1])
    for c in reversed(coeffs[:-1]):
        acc = c + z * acc
    return 1.0 + z * acc if one else acc


def _erf_tail(x: np.ndarray, hx: np.ndarray) -> np.ndarray:
    """`erfc(|x|)` for 0.84375 <= |x| < 6 (msun `erfc2`)."""
    ax = np.abs(x)
    s1 = ax - 1.0
    near = 1.0 - _ERX - _horner(_PA, s1, False) / _horner(_QA, s1, True)  # |x| < 1.25
    s = 1.0 / (ax * ax)
    mid = hx < 0x4006DB6D  # |x| < 1/0.35
    r = np.where(mid, _horner(_RA, s, False), _horner(_RB, s, False))
    big_s = np.where(mid, _horner(_SA, s, True), _horner(_SB, s, True))
    z = (ax.view(np.uint64) & np.uint64(0xFFFFFFFF00000000)).view(np.float64)
    far = libm_exp(-z * z - 0.5625) * libm_exp((z - ax) * (z + ax) + r / big_s) / ax
    return np.where(hx < 0x3FF40000, near, far)


def libm_erf(x: np.ndarray) -> np.ndarray:
    """`erf` of finite binary64 values, bit-identical to msun `s_erf.c` (Rust `libm::erf`)."""
    x = np.asarray(x, dtype=np.float64)
    hx, sign = _high_word(x)
    with np.errstate(all="ignore"):  # every branch is evaluated everywhere, then selected
        zz = x * x
        small = x + x * (_horner(_PP, zz, False) / _horner(_QQ, zz, True))  # |x| < 0.84375
        tiny = 0.125 * (8.0 * x + _EFX8 * x)  # |x| < 2^-28
        tail = 1.0 - _erf_tail(x, hx)  # 0.84375 <= |x| < 6
    tail = np.where(hx < 0x40180000, tail, 1.0)  # |x| >= 6: 1 - 2^-1022 rounds to 1
    tail = np.where(sign == 1, -tail, tail)
    return np.where(hx < 0x3E300000, tiny, np.where(hx < 0x3FEB0000, small, tail))


# --------------------------------------------------------------------------- integer models


def histogram_table(counts: list[int] | np.ndarray) -> np.ndarray:
    """Kind 1: constriction's `Categorical(p, perfect=False)` with `p_i = count_i / Σ count`.

    `p` in binary64; `F_i` = the left-to-right binary64 sum `p_0 + ... + p_(i-1)` (`F_0 = 0`),
    `F_n` the normalisation; `cdf[i] = trunc(F_i * ((2^24 - n) / F_n)) + i`, `cdf[n] = 2^24`."""
    counts = np.asarray(counts, dtype=np.int64)
    n = len(counts)
    probs = counts.astype(np.float64) / float(counts.sum())
    partial = np.concatenate(([0.0], np.cumsum(probs)))  # np.cumsum adds left to right
    scale = float(TOTAL - n) / partial[-1]
    cdf = np.trunc(partial * scale).astype(np.int64) + np.arange(n + 1)
    cdf[n] = TOTAL
    return cdf


def laplace_cdf_at(x: np.ndarray, loc: float, scale: float) -> np.ndarray:
    """`0.5 * exp((x - loc) / scale)` where `x <= loc`, else `1 - 0.5 * exp(-(x - loc) / scale)`."""
    d = np.asarray(x, dtype=np.float64) - loc
    upper = d > 0
    e = libm_exp(np.where(upper, -d, d) / scale)
    return np.where(upper, 1.0 - 0.5 * e, 0.5 * e)


def gaussian_cdf_at(x: np.ndarray, mean: float, std: float) -> np.ndarray:
    """`(1 + erf((x - mean) / (std * sqrt(2)))) / 2`, with `sqrt(2)` the binary64 constant."""
    z = (np.asarray(x, dtype=np.float64) - mean) / (std * math.sqrt(2.0))
    return (1.0 + libm_erf(z)) / 2.0


def leaky_table(lo: int, hi: int, cdf_at: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """constriction's leaky quantiser over `[lo, hi]` (`n = hi - lo + 1` bins of width 1).

    `cdf[0] = 0`, `cdf[n] = 2^24`, and `cdf[i] = trunc((2^24 - n) * C(lo + i - 0.5)) + i` for
    `0 < i < n`: the tails below `lo - 0.5` and above `hi + 0.5` go to the end bins, and the `+ i`
    gives every bin at least one count."""
    n = hi - lo + 1
    edges = np.arange(lo, hi + 2, dtype=np.float64) - 0.5  # lo - 0.5 .. hi + 0.5
    cdf = np.trunc(float(TOTAL - n) * cdf_at(edges)).astype(np.int64) + np.arange(n + 1)
    cdf[0], cdf[n] = 0, TOTAL
    return cdf


def laplace_table(lo: int, hi: int, loc: float, scale: float) -> np.ndarray:
    """Kind 2: constriction's `QuantizedLaplace(lo, hi, loc, scale)`."""
    return leaky_table(lo, hi, lambda x: laplace_cdf_at(x, loc, scale))


def gaussian_table(lo: int, hi: int, mean: float, std: float) -> np.ndarray:
    """Kind 3: constriction's `QuantizedGaussian(lo, hi, mean, std)`."""
    return leaky_table(lo, hi, lambda x: gaussian_cdf_at(x, mean, std))


def model_table(kind: int, params: tuple) -> tuple[int, np.ndarray]:
    """`(lo, cdf)` of a TENSOR_TABLE model: kind 1 `(lo, counts)`, 2 or 3 `(lo, hi, a, b)`.

    Symbol `lo + i` owns the quantiles `[cdf[i], cdf[i + 1])`."""
    if kind == 1:
        return params[0], histogram_table(params[1])
    lo, hi, loc, scale = params
    return lo, (laplace_table if kind == 2 else gaussian_table)(lo, hi, loc, scale)


# --------------------------------------------------------------------------- the ANS decoder


class AnsPayloadError(ValueError):
    """A payload the writer's coder cannot have produced (its last word is zero)."""


def ans_decode(words: np.ndarray, cdf: np.ndarray, count: int) -> np.ndarray:
    """Pop `count` symbol indices from a stack ANS payload (u32 words, first word first).

    Seeding: no words gives state 0; otherwise the last word (which must be non-zero) is the
    state, and while state < 2^32 and words remain, `state = state << 32 | next word from the
    end`. Each pop: `q = state mod 2^24`, symbol `i` with `cdf[i] <= q < cdf[i+1]`,
    `state = (cdf[i+1] - cdf[i]) * (state >> 24) + q - cdf[i]`, then one refill if the state
    dropped below 2^32 and words remain. Words left over at the end are ignored."""
    stack = [int(w) for w in np.asarray(words, dtype=np.uint32)]
    table = [int(c) for c in cdf]
    state = 0
    if stack:
        state = stack.pop()
        if state == 0:
            raise AnsPayloadError("ANS payload ends in a zero word")
        while state < REFILL_BELOW and stack:
            state = (state << WORD_BITS) | stack.pop()
    out, mask, search = [], TOTAL - 1, bisect.bisect_right
    for _ in range(count):
        q = state & mask
        i = search(table, q) - 1
        left = table[i]
        state = (table[i + 1] - left) * (state >> PRECISION) + q - left
        if state < REFILL_BELOW and stack:
            state = (state << WORD_BITS) | stack.pop()
        out.append(i)
    return np.array(out, dtype=np.int64)


def decode_payload(kind: int, params: tuple, payload: bytes, count: int) -> np.ndarray:
    """The `count` integer symbols of one kind 1-3 tensor payload (little-endian u32 words)."""
    if len(payload) % 4:
        raise AnsPayloadError("payload is not whole 32-bit words")
    lo, cdf = model_table(kind, params)
    words = np.frombuffer(payload, dtype="<u4")
    return ans_decode(words, cdf, count) + lo
