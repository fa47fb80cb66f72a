"""Compression: quantiser bounds, entropy models and their choice, tensor table/data sections."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
import torch

from bitstream.binary import ByteReader, ByteWriter
from bitstream.errors import MalformedFileError
from nvcodec.compression import (
    decode_tensors,
    dequantize,
    encode_tensors,
    quantize,
    read_table,
)
from nvcodec.compression.entropy import (
    ConstantModel,
    EntropyModel,
    HistogramModel,
    LaplaceModel,
    candidate_models,
    choose_and_encode,
    read_model,
    write_model,
)
from nvcodec.models import build_model
from nvcodec.models.nerv import nerv_sizing

# --------------------------------------------------------------------------- quantiser

SHAPES = [(7,), (1,), (4, 5), (16, 1), (3, 2, 3, 3), (2, 8, 1, 1)]


def _per_element_scale(qt, shape: tuple[int, ...]) -> np.ndarray:
    s = qt.scales.astype(np.float64)
    if qt.per_channel:
        return np.broadcast_to(s.reshape((-1,) + (1,) * (len(shape) - 1)), shape)
    return np.full(shape, s[0])


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("magnitude", [1e-6, 1.0, 300.0])
def test_quantize_error_bound_all_bit_depths(shape: tuple[int, ...], magnitude: float) -> None:
    gen = torch.Generator().manual_seed(sum(shape) * 7 + int(magnitude * 1e6) % 1000)
    # Different magnitudes per output channel exercise the per-channel scales.
    rows = torch.logspace(-2, 0, shape[0]).reshape((-1,) + (1,) * (len(shape) - 1))
    tensor = torch.randn(shape, generator=gen) * rows * magnitude
    w = tensor.double().numpy()
    for bits in range(2, 17):
        qt = quantize(tensor, bits, per_channel=True)
        qmax = 2 ** (bits - 1) - 1
        assert qt.bits == bits
        assert qt.q.dtype == np.int32
        assert qt.q.shape == shape
        assert qt.scales.dtype == np.float16
        assert int(np.abs(qt.q).max()) <= qmax
        if len(shape) >= 2:
            assert qt.per_channel
            assert qt.scales.shape == (shape[0],)
            peak = np.abs(w.reshape(shape[0], -1)).max(axis=1)
        else:
            assert not qt.per_channel
            assert qt.scales.shape == (1,)
            peak = np.array([np.abs(w).max()])
        scales = qt.scales.astype(np.float64)
        # Scales are rounded *up*: never below the exact peak/qmax, and the previous fp16
        # value would be below it (the smallest fp16 that works).
        assert np.all(scales >= peak / qmax)
        below = np.nextafter(qt.scales, np.float16(-np.inf)).astype(np.float64)
        assert np.all(below < peak / qmax)
        deq = dequantize(qt)
        assert deq.dtype == torch.float32
        assert tuple(deq.shape) == shape
        err = np.abs(w - deq.double().numpy())
        s = _per_element_scale(qt, shape)
        bound = s / 2 + 1e-7 * np.maximum(1.0, np.abs(w))
        assert np.all(err <= bound), (bits, float((err - bound).max()))


def test_quantize_single_scale_when_not_per_channel() -> None:
    tensor = torch.randn(4, 6, generator=torch.Generator().manual_seed(3))
    qt = quantize(tensor, 8, per_channel=False)
    assert not qt.per_channel
    assert qt.scales.shape == (1,)
    assert float(qt.scales[0]) >= float(tensor.abs().max()) / 127


def test_quantize_zero_channel() -> None:
    tensor = torch.randn(3, 4, generator=torch.Generator().manual_seed(1))
    tensor[1] = 0.0
    qt = quantize(tensor, 8, per_channel=True)
    assert qt.scales[1] == 0
    assert np.all(qt.q[1] == 0)
    assert np.all(qt.scales[[0, 2]] > 0)
    deq = dequantize(qt)
    assert torch.equal(deq[1], torch.zeros(4))


def test_quantize_all_zero_1d() -> None:
    qt = quantize(torch.zeros(5), 4, per_channel=True)
    assert qt.scales.tolist() == [0.0]
    assert torch.equal(dequantize(qt), torch.zeros(5))


def test_quantize_extremes_hit_qmax() -> None:
    tensor = torch.tensor([[-2.0, 1.0, 0.5], [0.25, 0.0, 0.125]])
    qt = quantize(tensor, 8, per_channel=True)
    # max|w| / s is at most qmax and within fp16 rounding of it.
    assert abs(int(qt.q[0, 0])) <= 127
    assert abs(int(qt.q[0, 0])) >= 126
    assert int(qt.q[0, 0]) < 0


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_quantize_refuses_non_finite(bad: float) -> None:
    tensor = torch.ones(2, 3)
    tensor[1, 2] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        quantize(tensor, 8, per_channel=True)


@pytest.mark.parametrize("bits", [0, 1, 17, 32])
def test_quantize_refuses_bits_out_of_range(bits: int) -> None:
    with pytest.raises(ValueError, match="bits"):
        quantize(torch.ones(3), bits, per_channel=False)


def test_quantize_refuses_values_too_large_for_fp16_scales() -> None:
    with pytest.raises(ValueError, match="fp16"):
        quantize(torch.tensor([1e9, -1.0]), 2, per_channel=False)


# --------------------------------------------------------------------------- entropy models


def _via_params(model: EntropyModel, count: int) -> EntropyModel:
    w = ByteWriter()
    write_model(w, model)
    r = ByteReader(w.getvalue(), what="test params")
    back = read_model(r, count)
    r.expect_end()
    assert type(back) is type(model)
    assert back.param_bytes() == model.param_bytes()
    return back


def _round_trip(symbols: np.ndarray) -> tuple[EntropyModel, bytes]:
    model, payload = choose_and_encode(symbols)
    flat = symbols.ravel().astype(np.int32)
    decoded = model.decode(payload, flat.size, "test")
    assert decoded.dtype == np.int32
    np.testing.assert_array_equal(decoded, flat)
    back = _via_params(model, flat.size)
    np.testing.assert_array_equal(back.decode(payload, flat.size, "test"), flat)
    return model, payload


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


ROUND_TRIP_CASES = {
    "laplace-like": np.rint(_rng(0).laplace(0, 3, 5000)).astype(np.int32),
    "laplace-like 2d": np.rint(_rng(1).laplace(2, 1, (40, 30))).astype(np.int32),
    "uniform": _rng(2).integers(-100, 101, 4000).astype(np.int32),
    "two symbols": _rng(3).integers(0, 2, 1000).astype(np.int32),
    "two distant symbols": np.array([-32767, 32767] * 10 + [32767], dtype=np.int32),
    "extremes 16 bit": _rng(4).integers(-32767, 32768, 3000).astype(np.int32),
    "all zero": np.zeros(1000, dtype=np.int32),
    "single value": np.full((3, 7), -5, dtype=np.int32),
    "single element": np.array([42], dtype=np.int32),
    "empty": np.zeros(0, dtype=np.int32),
    "negative offset": np.rint(_rng(5).normal(-300, 5, 2000)).astype(np.int32),
}


@pytest.mark.parametrize("symbols", list(ROUND_TRIP_CASES.values()), ids=list(ROUND_TRIP_CASES))
def test_choose_and_encode_round_trip(symbols: np.ndarray) -> None:
    model, payload = _round_trip(symbols)
    if symbols.size == 0 or np.all(symbols == symbols.flat[0]):
        assert isinstance(model, ConstantModel)
        assert payload == b""
    else:
        assert not isinstance(model, ConstantModel)
        assert len(payload) % 4 == 0


@pytest.mark.parametrize("symbols", list(ROUND_TRIP_CASES.values()), ids=list(ROUND_TRIP_CASES))
def test_every_applicable_model_round_trips(symbols: np.ndarray) -> None:
    flat = symbols.ravel()
    if flat.size == 0 or np.all(flat == flat[0]):
        return
    for cls in (HistogramModel, LaplaceModel):
        model = cls.fit(flat)
        payload = model.encode(flat)
        back = _via_params(model, flat.size)
        np.testing.assert_array_equal(back.decode(payload, flat.size, "t"), flat)


def test_constant_model_decode_refuses_payload() -> None:
    with pytest.raises(MalformedFileError):
        ConstantModel(3).decode(b"\0\0\0\0", 4, "t")


def test_odd_payload_length_is_malformed() -> None:
    symbols = ROUND_TRIP_CASES["uniform"]
    model = HistogramModel.fit(symbols)
    payload = model.encode(symbols)
    with pytest.raises(MalformedFileError, match="whole words"):
        model.decode(payload[:-1], symbols.size, "t")


def _totals(symbols: np.ndarray) -> dict[str, int]:
    totals = {}
    for i, model in enumerate(candidate_models(symbols)):
        totals[f"{type(model).__name__}-{i}"] = model.param_bytes() + len(model.encode(symbols))
    return totals


def test_large_peaked_tensor_picks_histogram() -> None:
    rng = _rng(10)
    symbols = np.rint(rng.normal(0, 2, 100_000)).astype(np.int32)
    symbols[rng.random(100_000) < 0.5] = 0  # a spike at zero: not Laplace-shaped
    model, payload = _round_trip(symbols)
    assert isinstance(model, HistogramModel)
    chosen = model.param_bytes() + len(payload)
    assert chosen == min(_totals(symbols).values())
    # ANS is near-optimal: within 1% + 8 bytes of the Shannon length.
    ideal = model.ideal_bits(symbols) / 8
    assert len(payload) <= ideal * 1.01 + 8
    assert len(payload) >= ideal * 0.99 - 8


def test_tiny_tensor_picks_laplace() -> None:
    symbols = _rng(11).integers(-50, 51, 20).astype(np.int32)
    model, _ = _round_trip(symbols)
    assert isinstance(model, LaplaceModel)


@pytest.mark.parametrize("symbols", list(ROUND_TRIP_CASES.values()), ids=list(ROUND_TRIP_CASES))
def test_choice_is_minimal_total(symbols: np.ndarray) -> None:
    flat = symbols.ravel()
    model, payload = choose_and_encode(flat)
    if isinstance(model, ConstantModel):
        return
    assert model.param_bytes() + len(payload) <= min(_totals(flat).values())


def test_ideal_bits_laplace_close_to_payload() -> None:
    symbols = np.rint(_rng(12).laplace(0, 3, 50_000)).astype(np.int32)
    model = LaplaceModel.fit(symbols)
    payload = model.encode(symbols)
    ideal = model.ideal_bits(symbols) / 8
    assert abs(len(payload) - ideal) <= 0.01 * ideal + 8


# --------------------------------------------------------------------------- corrupted params


def _params(*ops: tuple[str, object]) -> bytes:
    w = ByteWriter()
    for op, value in ops:
        getattr(w, op)(value)
    return w.getvalue()


BAD_PARAMS = {
    "empty": b"",
    "unknown kind": _params(("u8", 7)),
    "constant out of range": _params(("u8", 0), ("svarint", 1 << 20)),
    "constant truncated": _params(("u8", 0)),
    "histogram size 0": _params(("u8", 1), ("svarint", 0), ("varint", 0)),
    "histogram size 1": _params(("u8", 1), ("svarint", 0), ("varint", 1), ("varint", 5)),
    "histogram huge": _params(("u8", 1), ("svarint", 0), ("varint", 1 << 40)),
    "histogram lo out of range": _params(("u8", 1), ("svarint", -(1 << 20)), ("varint", 2)),
    "histogram range past max": _params(("u8", 1), ("svarint", 60_000), ("varint", 10_000)),
    "histogram truncated counts": _params(
        ("u8", 1), ("svarint", 0), ("varint", 5), ("varint", 1), ("varint", 1)
    ),
    "histogram all-zero counts": _params(
        ("u8", 1), ("svarint", 0), ("varint", 2), ("varint", 0), ("varint", 0)
    ),
    "histogram count above total": _params(
        ("u8", 1), ("svarint", 0), ("varint", 2), ("varint", 11), ("varint", 0)
    ),
    "laplace NaN scale": _params(
        ("u8", 2), ("svarint", 0), ("varint", 4), ("raw", struct.pack("<ff", 0.0, math.nan))
    ),
    "laplace negative scale": _params(
        ("u8", 2), ("svarint", 0), ("varint", 4), ("raw", struct.pack("<ff", 0.0, -1.0))
    ),
    "laplace zero scale": _params(
        ("u8", 2), ("svarint", 0), ("varint", 4), ("raw", struct.pack("<ff", 0.0, 0.0))
    ),
    "laplace inf loc": _params(
        ("u8", 2), ("svarint", 0), ("varint", 4), ("raw", struct.pack("<ff", math.inf, 1.0))
    ),
    "laplace span 0": _params(
        ("u8", 2), ("svarint", 0), ("varint", 0), ("raw", struct.pack("<ff", 0.0, 1.0))
    ),
    "laplace truncated floats": _params(("u8", 2), ("svarint", 0), ("varint", 4), ("raw", b"\0")),
}


@pytest.mark.parametrize("data", list(BAD_PARAMS.values()), ids=list(BAD_PARAMS))
def test_read_model_refuses_garbage(data: bytes) -> None:
    with pytest.raises(MalformedFileError):
        read_model(ByteReader(data, what="tensor table"), 10)


def test_read_model_random_bytes_never_crash() -> None:
    rng = _rng(99)
    for _ in range(300):
        data = rng.integers(0, 256, int(rng.integers(0, 24))).astype(np.uint8).tobytes()
        data = bytes([int(rng.integers(0, 3))]) + data  # mostly valid kinds
        try:
            model = read_model(ByteReader(data, what="fuzz"), 1000)
        except MalformedFileError:
            continue
        assert isinstance(model, EntropyModel)


# --------------------------------------------------------------------------- tensor sections


@pytest.fixture(scope="module")
def small_params() -> list[tuple[str, torch.Tensor]]:
    torch.manual_seed(0)
    model = build_model(nerv_sizing(17, 33, 4, 4))
    return [(n, p.detach().clone()) for n, p in model.named_parameters()]


def _shapes(named: list[tuple[str, torch.Tensor]]) -> list[tuple[int, ...]]:
    return [tuple(t.shape) for _, t in named]


@pytest.mark.parametrize("bits", [4, 8, 12])
def test_encode_decode_tensors_matches_rebuilt(
    small_params: list[tuple[str, torch.Tensor]], bits: int
) -> None:
    encoded, rebuilt = encode_tensors(small_params, bits=bits)
    decoded = decode_tensors(encoded.table, encoded.data, _shapes(small_params))
    assert len(decoded) == len(rebuilt) == len(small_params)
    for (name, original), dec, reb in zip(small_params, decoded, rebuilt, strict=True):
        assert dec.shape == original.shape, name
        assert dec.dtype == torch.float32
        assert torch.equal(dec, reb), name
        # And the rebuilt tensor is a faithful quantisation of the original.
        peak = float(original.abs().max())
        assert float((dec - original).abs().max()) <= peak / (2 ** (bits - 1) - 1) + 1e-6
    assert len(encoded.stats) == len(small_params)
    assert [s.name for s in encoded.stats] == [n for n, _ in small_params]
    assert sum(s.payload_bytes for s in encoded.stats) == len(encoded.data)


def test_zero_tensor_costs_no_payload() -> None:
    named = [("w", torch.zeros(4, 3)), ("b", torch.randn(4))]
    encoded, rebuilt = encode_tensors(named, bits=8)
    assert encoded.stats[0].entropy_model == "constant"
    assert encoded.stats[0].payload_bytes == 0
    decoded = decode_tensors(encoded.table, encoded.data, [(4, 3), (4,)])
    assert torch.equal(decoded[0], torch.zeros(4, 3))
    assert torch.equal(decoded[1], rebuilt[1])


def test_read_table_matches_stats(small_params: list[tuple[str, torch.Tensor]]) -> None:
    encoded, _ = encode_tensors(small_params, bits=8)
    rows = read_table(encoded.table, _shapes(small_params))
    assert len(rows) == len(encoded.stats)
    for (bits, model_name, side, payload), stat in zip(rows, encoded.stats, strict=True):
        assert bits == stat.bits == 8
        assert model_name == stat.entropy_model
        assert model_name in ("constant", "histogram", "laplace", "gaussian")
        assert side == stat.side_bytes
        assert payload == stat.payload_bytes
    assert sum(r[2] for r in rows) == len(encoded.table) - 1  # + the leading count varint


def test_decode_tensors_refuses_wrong_count(small_params: list[tuple[str, torch.Tensor]]) -> None:
    encoded, _ = encode_tensors(small_params, bits=8)
    shapes = _shapes(small_params)
    with pytest.raises(MalformedFileError, match="tensors stored"):
        decode_tensors(encoded.table, encoded.data, shapes[:-1])
    with pytest.raises(MalformedFileError, match="tensors stored"):
        decode_tensors(encoded.table, encoded.data, [*shapes, (3,)])


def test_decode_tensors_refuses_wrong_numel(small_params: list[tuple[str, torch.Tensor]]) -> None:
    encoded, _ = encode_tensors(small_params, bits=8)
    shapes = _shapes(small_params)
    shapes[2] = (shapes[2][0] + 1, *shapes[2][1:])
    with pytest.raises(MalformedFileError, match="values"):
        decode_tensors(encoded.table, encoded.data, shapes)


def test_decode_tensors_refuses_per_channel_layout_for_1d_shape(
    small_params: list[tuple[str, torch.Tensor]],
) -> None:
    encoded, _ = encode_tensors(small_params, bits=8)
    shapes = _shapes(small_params)
    index = next(i for i, s in enumerate(shapes) if len(s) >= 2)
    shapes[index] = (math.prod(shapes[index]),)  # same numel, but 1-D
    with pytest.raises(MalformedFileError, match="layout"):
        decode_tensors(encoded.table, encoded.data, shapes)


def test_decode_tensors_refuses_extra_or_missing_data(
    small_params: list[tuple[str, torch.Tensor]],
) -> None:
    encoded, _ = encode_tensors(small_params, bits=8)
    shapes = _shapes(small_params)
    with pytest.raises(MalformedFileError, match="section holds"):
        decode_tensors(encoded.table, encoded.data + b"\0", shapes)
    with pytest.raises(MalformedFileError, match="section holds"):
        decode_tensors(encoded.table, encoded.data[:-4], shapes)


def test_decode_tensors_refuses_truncated_or_padded_table(
    small_params: list[tuple[str, torch.Tensor]],
) -> None:
    encoded, _ = encode_tensors(small_params, bits=8)
    shapes = _shapes(small_params)
    for cut in (0, 1, len(encoded.table) // 2, len(encoded.table) - 1):
        with pytest.raises(MalformedFileError):
            decode_tensors(encoded.table[:cut], encoded.data, shapes)
        with pytest.raises(MalformedFileError):
            read_table(encoded.table[:cut], shapes)
    with pytest.raises(MalformedFileError):
        decode_tensors(encoded.table + b"\0", encoded.data, shapes)


def test_decode_tensors_byte_flips_are_malformed_or_decode() -> None:
    gen = torch.Generator().manual_seed(5)
    named = [
        ("w", torch.randn(6, 5, generator=gen)),
        ("b", torch.randn(6, generator=gen)),
        ("big", torch.randn(40, 30, generator=gen)),
    ]
    encoded, _ = encode_tensors(named, bits=6)
    shapes = _shapes(named)
    rng = _rng(17)
    for _ in range(150):
        table, data = bytearray(encoded.table), bytearray(encoded.data)
        target = table if rng.random() < 0.6 else data
        pos = int(rng.integers(0, len(target)))
        target[pos] ^= int(rng.integers(1, 256))
        try:
            out = decode_tensors(bytes(table), bytes(data), shapes)
        except MalformedFileError:
            continue
        assert [tuple(t.shape) for t in out] == shapes
        assert all(torch.isfinite(t).all() for t in out)
