"""A model's parameters ⇄ the TENSOR_TABLE and TENSOR_DATA sections.

The table holds side information only (bit depth, scales, entropy model per tensor); the data
section is the concatenation of the coded payloads, in the same order. Tensor names and shapes
are *not* stored: the decoder rebuilds the model from the stored config and takes them from it,
then checks every element count against the table, so a mismatch is an error, not a guess.

TENSOR_TABLE layout (see bitstream/FORMAT.md for the encodings)::

    varint  tensor_count
    per tensor, in the model's ``named_parameters()`` order:
        varint  numel            must equal the rebuilt model's tensor
        u8      bits             2..16
        u8      layout           0 = one scale, 1 = one scale per output channel (dim 0)
        f16[n]  scales           n = 1 or shape[0], little-endian IEEE half
        u8      entropy model    0 constant, 1 histogram, 2 laplace, 3 gaussian; then parameters
        varint  payload_bytes    the payloads tile TENSOR_DATA exactly
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from bitstream.binary import ByteReader, ByteWriter
from bitstream.errors import MalformedFileError
from nvcodec.compression.entropy import (
    EntropyModel,
    choose_and_encode,
    kind_name,
    read_model,
    write_model,
)
from nvcodec.compression.quantize import MAX_BITS, MIN_BITS, QuantizedTensor, dequantize, quantize

__all__ = [
    "EncodedTensors",
    "TensorCost",
    "TensorStat",
    "decode_tensors",
    "encode_quantized",
    "encode_tensors",
    "read_table",
    "tensor_costs",
]

BitsSpec = int | Callable[[str], int]
"""One bit depth for every tensor, or a function of the tensor's name (e.g. codes vs weights)."""


@dataclass(frozen=True)
class TensorStat:
    """What one tensor costs in the file (for ``nvc info`` and the encoder's report)."""

    name: str
    numel: int
    bits: int
    entropy_model: str
    side_bytes: int  # scales + entropy-model parameters + table framing
    payload_bytes: int
    ideal_payload_bits: float

    @property
    def bits_per_param(self) -> float:
        return 8 * (self.side_bytes + self.payload_bytes) / max(self.numel, 1)


@dataclass(frozen=True)
class EncodedTensors:
    table: bytes
    data: bytes
    stats: tuple[TensorStat, ...]
    reader_version: tuple[int, int] = (1, 0)  # the newest format feature the table uses


@dataclass(frozen=True)
class _Entry:
    numel: int
    bits: int
    per_channel: bool
    scales: np.ndarray
    model: EntropyModel
    payload_bytes: int
    side_bytes: int


def encode_tensors(
    named: Sequence[tuple[str, torch.Tensor]], bits: BitsSpec = 8
) -> tuple[EncodedTensors, list[torch.Tensor]]:
    """Quantise and entropy-code ``named`` tensors; also return what the decoder will rebuild.

    ``bits`` is one depth for all tensors or ``name -> depth`` (stored per tensor in the table).
    """
    quantized = []
    for name, tensor in named:
        depth = bits if isinstance(bits, int) else int(bits(name))
        quantized.append((name, quantize(tensor, depth, per_channel=tensor.ndim >= 2), ()))
    return encode_quantized(quantized)


def encode_quantized(
    named: Sequence[tuple[str, QuantizedTensor, Sequence[EntropyModel]]],
) -> tuple[EncodedTensors, list[torch.Tensor]]:
    """Entropy-code already quantised tensors (e.g. RD training's learned steps and integers).

    Each tensor may bring extra candidate entropy models (RD training's learned Laplace); the
    smallest of those and the standard candidates, parameters included, is stored.
    """
    w = ByteWriter()
    w.varint(len(named))
    payloads, stats, rebuilt = [], [], []
    needs: tuple[int, int] = (1, 0)
    for name, qt, extra in named:
        start = len(w)
        model, payload = choose_and_encode(qt.q, extra)
        w.varint(qt.q.size)
        w.u8(qt.bits)
        w.u8(1 if qt.per_channel else 0)
        w.raw(qt.scales.astype("<f2").tobytes())
        write_model(w, model)
        needs = max(needs, model.SINCE)
        w.varint(len(payload))
        payloads.append(payload)
        stats.append(
            TensorStat(
                name=name,
                numel=qt.q.size,
                bits=qt.bits,
                entropy_model=kind_name(model.KIND),
                side_bytes=len(w) - start,
                payload_bytes=len(payload),
                ideal_payload_bits=model.ideal_bits(qt.q),
            )
        )
        rebuilt.append(dequantize(qt))
    encoded = EncodedTensors(
        table=w.getvalue(), data=b"".join(payloads), stats=tuple(stats), reader_version=needs
    )
    return encoded, rebuilt


def _read_entries(table: bytes, shapes: Sequence[tuple[int, ...]]) -> list[_Entry]:
    r = ByteReader(table, what="tensor table")
    count = r.varint()
    if count != len(shapes):
        raise MalformedFileError(
            f"tensor table: {count} tensors stored, the model described by the metadata has "
            f"{len(shapes)}"
        )
    entries = []
    for i, shape in enumerate(shapes):
        start = r.pos
        numel = r.varint()
        expected = int(np.prod(shape, dtype=np.int64))
        if numel != expected:
            raise MalformedFileError(
                f"tensor table: tensor {i} has {numel} values, the model expects {expected}"
            )
        bits, layout = r.u8(), r.u8()
        if not MIN_BITS <= bits <= MAX_BITS or layout not in (0, 1) or (layout and len(shape) < 2):
            raise MalformedFileError(f"tensor table: tensor {i} has bits={bits} layout={layout}")
        n_scales = shape[0] if layout else 1
        scales = np.frombuffer(r.raw(2 * n_scales), dtype="<f2").astype(np.float16)
        if not np.all(np.isfinite(scales)) or np.any(scales < 0):
            raise MalformedFileError(f"tensor table: tensor {i} has invalid scales")
        model = read_model(r, numel)
        payload_bytes = r.varint()
        entries.append(
            _Entry(numel, bits, bool(layout), scales, model, payload_bytes, r.pos - start)
        )
    r.expect_end()
    return entries


def read_table(table: bytes, shapes: Sequence[tuple[int, ...]]) -> list[tuple[int, str, int, int]]:
    """Per tensor: (bits, entropy model name, side bytes, payload bytes) — for ``nvc info``."""
    return [
        (e.bits, kind_name(e.model.KIND), e.side_bytes, e.payload_bytes)
        for e in _read_entries(table, shapes)
    ]


@dataclass(frozen=True)
class TensorCost:
    """One stored tensor's cost, recomputed from the file (for ``nvc info``)."""

    bits: int
    entropy_model: str
    side_bytes: int
    payload_bytes: int
    ideal_payload_bits: float  # Shannon length of the decoded symbols under the stored model
    zeros: int  # symbols equal to 0 (pruned or quantised to zero)
    steps: tuple[float, float] = (0.0, 0.0)  # smallest and largest quantisation step (fp16)


def tensor_costs(table: bytes, data: bytes, shapes: Sequence[tuple[int, ...]]) -> list[TensorCost]:
    """Entropy-decode every payload and measure it against its model's ideal code length."""
    entries = _read_entries(table, shapes)
    symbols = _decode_symbols(entries, data)
    return [
        TensorCost(
            e.bits,
            kind_name(e.model.KIND),
            e.side_bytes,
            e.payload_bytes,
            e.model.ideal_bits(s) if s.size else 0.0,
            int(np.count_nonzero(s == 0)),
            _step_range(e.scales),
        )
        for e, s in zip(entries, symbols, strict=True)
    ]


def _step_range(scales: np.ndarray) -> tuple[float, float]:
    steps = scales.astype(np.float64)
    return (float(steps.min()), float(steps.max())) if steps.size else (0.0, 0.0)


def _decode_symbols(entries: Sequence[_Entry], data: bytes) -> list[np.ndarray]:
    lengths = [e.payload_bytes for e in entries]
    if sum(lengths) != len(data):
        raise MalformedFileError(
            f"tensor data: payloads declare {sum(lengths)} bytes, the section holds {len(data)}"
        )
    out, offset = [], 0
    for i, (entry, n) in enumerate(zip(entries, lengths, strict=True)):
        payload = data[offset : offset + n]
        offset += n
        what = f"tensor data: tensor {i}"
        try:
            symbols = entry.model.decode(payload, entry.numel, what)
        except MalformedFileError:
            raise
        except Exception as exc:  # constriction rejects undecodable streams with various types
            raise MalformedFileError(f"{what}: undecodable payload ({exc})") from None
        qmax = 2 ** (entry.bits - 1) - 1
        if symbols.size and int(np.abs(symbols).max()) > qmax:
            raise MalformedFileError(f"{what}: symbol out of the {entry.bits}-bit range")
        out.append(symbols)
    return out


def decode_tensors(
    table: bytes, data: bytes, shapes: Sequence[tuple[int, ...]]
) -> list[torch.Tensor]:
    """Inverse of :func:`encode_tensors`, for a model whose parameter shapes are ``shapes``."""
    entries = _read_entries(table, shapes)
    out = []
    for entry, shape, symbols in zip(entries, shapes, _decode_symbols(entries, data), strict=True):
        qt = QuantizedTensor(symbols.reshape(shape), entry.scales, entry.bits, entry.per_channel)
        out.append(dequantize(qt))
    return out
