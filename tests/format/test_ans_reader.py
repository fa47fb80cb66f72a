"""`ans_reader.py` (plain Python + numpy) reproduces constriction bit for bit.

constriction is imported here only as the *writer*: to encode streams and to read back the integer
cumulative it assigns to a symbol (pushing one symbol on an empty coder leaves exactly its left
cumulative as the state, and `get_compressed()` returns that as one word, or nothing for 0).
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import constriction
import numpy as np
import pytest

HERE = Path(__file__).parent


def _load(name: str, filename: str):
    """Import a sibling module by path (works under `--import-mode=importlib`)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, HERE / filename)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


ar = _load("nvc_ans_reader", "ans_reader.py")
MODEL = constriction.stream.model
AnsCoder = constriction.stream.stack.AnsCoder


def _f32(value: float) -> float:
    """Model parameters are stored as binary32 in the file."""
    return float(np.float32(value))


def _writer_model(kind: int, params: tuple):
    """The constriction model nvcodec's writer builds for a TENSOR_TABLE model."""
    if kind == 1:
        counts = np.asarray(params[1], dtype=np.int64)
        return MODEL.Categorical(counts.astype(np.float64) / float(counts.sum()), perfect=False)
    lo, hi, loc, scale = params
    return (MODEL.QuantizedLaplace if kind == 2 else MODEL.QuantizedGaussian)(lo, hi, loc, scale)


def _left_cumulative(model, symbol: int) -> int:
    """The left cumulative constriction assigns to `symbol` (see the module docstring)."""
    coder = AnsCoder()
    coder.encode_reverse(np.array([symbol], dtype=np.int32), model)
    words = coder.get_compressed()
    return int(words[0]) if len(words) else 0


def _writer_table(kind: int, params: tuple) -> np.ndarray:
    """constriction's whole cumulative table, symbol by symbol."""
    lo, n = (0, len(params[1])) if kind == 1 else (params[0], params[1] - params[0] + 1)
    model = _writer_model(kind, params)
    cdf = [_left_cumulative(model, lo + i) for i in range(n)]
    return np.array([*cdf, ar.TOTAL], dtype=np.int64)


def _random_params(kind: int, rng: np.random.Generator, n: int) -> tuple:
    """A valid TENSOR_TABLE model of `kind` over `n` symbols, with the format's ranges."""
    lo = int(rng.integers(-65536, 65538 - n))
    if kind == 1:
        counts = rng.integers(0, rng.choice([2, 30, 10**6]), n) * (rng.random(n) < rng.random())
        counts[rng.integers(n)] += int(rng.integers(1, 1000))
        return (lo, counts.tolist())
    if rng.random() < 0.5:  # near the bins, as fitted models are
        loc = _f32(rng.uniform(lo - 5, lo + n + 5))
        scale = _f32(math.exp(rng.uniform(math.log(0.001), math.log(2 * n))))
    else:  # anywhere in the format's ranges
        loc = _f32(rng.uniform(-65536, 65536))
        scale = _f32(math.exp(rng.uniform(math.log(0.001), math.log(65536))))
    return (lo, lo + n - 1, loc, scale)


def _encode(kind: int, params: tuple, symbols: np.ndarray) -> bytes:
    """A tensor payload exactly as nvcodec writes it."""
    coder = AnsCoder()
    shift = params[0] if kind == 1 else 0
    coder.encode_reverse((symbols - shift).astype(np.int32), _writer_model(kind, params))
    return np.asarray(coder.get_compressed(), dtype="<u4").tobytes()


def _draw(cdf: np.ndarray, lo: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """Symbols drawn from the model's own distribution, plus both end bins and uniform ones."""
    n = len(cdf) - 1
    typical = np.searchsorted(cdf, rng.integers(0, ar.TOTAL, count), side="right") - 1
    uniform = rng.integers(0, n, count)
    symbols = np.where(rng.random(count) < 0.1, uniform, typical)
    if count >= 2:
        symbols[rng.choice(count, 2, replace=False)] = [0, n - 1]
    return symbols + lo


# --------------------------------------------------------------------------- libm exp / erf

# (x, exp(x)) and (x, erf(x)) from the Rust `libm` crate source (msun e_exp.c / s_erf.c) compiled
# with rustc; each x is one where glibc's exp/erf (Python's math.exp/math.erf) gives another value.
LIBM_EXP = [
    ("-0x1.08734500a2f16p-30", "0x1.fffffff7bc65dp-1"),
    ("-0x1.22dc7d43e4081p-3", "0x1.bc3656b56cb12p-1"),
    ("-0x1.fd56a9603e570p-1", "0x1.7aabfe8284fbap-2"),
    ("-0x1.6fc4a59deae78p+3", "0x1.566196de10910p-17"),
    ("-0x1.63e152165e3edp+8", "0x1.7cf3540a72db6p-514"),
    ("-0x1.62d78b93c4953p+9", "0x0.46a4c9740a3cep-1022"),
    ("0x1.31af0ba8be2e2p-2", "0x1.590d748f79c88p+0"),
    ("0x1.dd88bd38b27f0p+4", "0x1.0a986e04794b2p+43"),
]
LIBM_ERF = [
    ("-0x1.9470de25484ebp-1", "-0x1.78dc7fb8f089fp-1"),
    ("0x1.2c03a8a8d4672p-1", "0x1.2f784aae12455p-1"),
    ("0x1.381c3fe1c9196p+0", "0x1.d4a57d07641ecp-1"),
    ("-0x1.f9d995ce85db0p-1", "-0x1.ace10b9bed0dap-1"),
    ("0x1.7672dfd91fc47p+0", "0x1.ec3e3aed1fcdcp-1"),
    ("-0x1.4e3145e089329p+0", "-0x1.dec9af2975765p-1"),
    ("0x1.34ab3c691ba91p+2", "0x1.ffffffffec133p-1"),
    ("-0x1.5114f43f3b075p+2", "-0x1.ffffffffffcaep-1"),
]


@pytest.mark.parametrize(("fn", "table"), [("exp", LIBM_EXP), ("erf", LIBM_ERF)])
def test_libm_ports_match_rust_libm(fn: str, table: list[tuple[str, str]]) -> None:
    x = np.array([float.fromhex(a) for a, _ in table])
    expected = np.array([float.fromhex(b) for _, b in table])
    ours = ar.libm_exp(x) if fn == "exp" else ar.libm_erf(x)
    assert ours.tobytes() == expected.tobytes()
    glibc = np.array([getattr(math, fn)(v) for v in x])
    assert np.count_nonzero(glibc != expected) >= 6  # why math.exp / math.erf are not enough


def test_libm_special_values() -> None:
    assert ar.libm_exp(np.array([0.0, -800.0, 800.0])).tolist() == [1.0, 0.0, math.inf]
    assert ar.libm_erf(np.array([0.0, -0.0, 6.0, -30.0])).tolist() == [0.0, -0.0, 1.0, -1.0]


# --------------------------------------------------------------------------- integer tables


@pytest.mark.parametrize("kind", [1, 2, 3])
def test_tables_match_constriction(kind: int) -> None:
    rng = np.random.default_rng(100 + kind)
    for _ in range(40):
        params = _random_params(kind, rng, int(rng.integers(2, 160)))
        assert np.array_equal(ar.model_table(kind, params)[1], _writer_table(kind, params)), params


# Inputs where the binary64 CDF value sits so close to a multiple of 1/(2^24 - n) that one ulp
# more (direction "up") or less ("down") would change the integer: only an implementation that
# computes every rounding exactly as the writer did gets these right. (Found by search; `n` is far
# beyond the format's limit, which the quantiser itself does not need.)
# (kind, lo, hi, loc or mean, scale or std, symbol, constriction's left cumulative of symbol)
KNIFE_EDGE = [
    (2, 104, 5832842, 10.699470520019531, 53.14381408691406, 105, 10007732),  # up
    (2, -50, 5514442, -49.46925354003906, 0.1510743498802185, -49, 4594375),  # down
    (2, 37, 6457049, 37.25959014892578, 0.593360185623169, 38, 6879110),  # down
    (2, 38, 317569, 41.2588996887207, 5.129110813140869, 39, 4806054),  # up
    (2, 8, 5666783, 9.261189460754395, 1.903990626335144, 9, 3724572),  # down
    (3, -86, 4965193, -87.62691497802734, 1.598556399345398, -85, 10729099),  # up
    (3, -10, 7209203, -9.948479652404785, 0.317040354013443, -9, 8816001),  # down
    (3, 14, 20520, 7.543749809265137, 5.7446160316467285, 15, 14863809),  # up
]


@pytest.mark.parametrize("case", KNIFE_EDGE, ids=lambda c: f"kind{c[0]}-{c[1]}")
def test_knife_edge_cdf_values(case: tuple) -> None:
    kind, lo, hi, loc, scale, symbol, expected = case
    cdf_at = ar.laplace_cdf_at if kind == 2 else ar.gaussian_cdf_at
    c = cdf_at(np.array([symbol - 0.5]), loc, scale)
    n = hi - lo + 1
    ours = int(np.trunc(float(ar.TOTAL - n) * c)[0]) + symbol - lo
    assert ours == expected
    assert _left_cumulative(_writer_model(kind, (lo, hi, loc, scale)), symbol) == expected


@pytest.mark.parametrize(
    "counts",
    [  # the normalisation must be the left-to-right sum (numpy's pairwise np.sum differs here)
        [1, 0, 1, 2, 1, 0, 1, 0],
        [0, 2, 0, 1, 0, 2, 2, 0],
        [915, 803, 963, 118, 201, 735, 383, 0],
    ],
)
def test_histogram_rounding_cases(counts: list[int]) -> None:
    assert np.array_equal(ar.histogram_table(counts), _writer_table(1, (0, counts)))


# --------------------------------------------------------------------------- the coder


@pytest.mark.parametrize("kind", [1, 2, 3])
def test_random_streams_round_trip(kind: int) -> None:
    rng = np.random.default_rng(200 + kind)
    for trial in range(60):
        n = (131072 if kind == 1 else 131073) if trial < 2 else int(rng.integers(2, 2000))
        params = _random_params(kind, rng, n)
        lo, cdf = ar.model_table(kind, params)
        symbols = _draw(cdf, lo, int(rng.integers(0, 1500)), rng)
        payload = _encode(kind, params, symbols)
        decoded = ar.decode_payload(kind, params, payload, len(symbols))
        assert np.array_equal(decoded, symbols), (trial, params)
        # fewer pops than pushes: leftover words are simply not read
        head = len(symbols) // 3
        assert np.array_equal(ar.decode_payload(kind, params, payload, head), symbols[:head])


def test_any_words_decode_like_constriction() -> None:
    """Words no encoder wrote (and pops past the end) still follow the same deterministic rule."""
    rng = np.random.default_rng(7)
    params = (-20, 20, 0.5, 3.25)
    cdf = ar.laplace_table(*params)
    model = _writer_model(2, params)
    for length in [0, 1, 1, 2, 3, 8]:
        for _ in range(5):
            words = rng.integers(0, 2**32, length, dtype=np.uint64).astype(np.uint32)
            if length and words[-1] == 0:
                words[-1] = 1
            words[: length // 2] = rng.choice([0, 1, 2**32 - 1], length // 2)
            expected = AnsCoder(words).decode(model, 50)
            assert np.array_equal(ar.ans_decode(words, cdf, 50) + params[0], expected)


def test_payload_ending_in_a_zero_word_is_refused() -> None:
    words = np.array([5, 0], dtype=np.uint32)
    with pytest.raises(ValueError, match="zero word"):
        AnsCoder(words)
    with pytest.raises(ar.AnsPayloadError):
        ar.ans_decode(words, ar.laplace_table(-3, 3, 0.0, 1.0), 4)


def test_empty_payload_decodes_the_first_symbol() -> None:
    """State 0 stays 0, and quantile 0 is the first bin: all-`lo` tensors code to zero words."""
    params = (-3, 3, 0.0, 1.0)
    assert _encode(2, params, np.full(9, -3)) == b""
    assert ar.decode_payload(2, params, b"", 4).tolist() == [-3] * 4
