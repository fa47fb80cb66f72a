"""Entropy models and the ANS coder (constriction): integers ⇄ bytes, never files.

Each tensor gets whichever model gives the fewest bytes *including its own parameters*:

* ``CONSTANT`` — every symbol equal (all-zero tensors, pruned-away layers): zero payload bytes.
* ``HISTOGRAM`` — the empirical distribution, sent as counts over ``[lo, hi]``; best for large
  tensors where the table is cheap relative to the payload. The counts may be the exact
  occurrence counts or those counts scaled down by ``2^shift`` (every occurring symbol keeps a
  count ≥ 1): a coarser table costs fewer bytes and a little payload; the encoder tries several
  shifts and keeps the smallest total. The format is the same either way (the reader only uses
  the counts as relative frequencies), so files with scaled counts decode with any reader.
* ``LAPLACE`` — a quantised Laplace with fitted location and scale (two float32); best for small
  tensors where a histogram would cost more than it saves.
* ``GAUSSIAN`` — a quantised Gaussian with fitted mean and standard deviation (two float32); the
  better parametric choice for tensors with light tails (e.g. latent codes). Kind 3, added in
  nvcodec 0.2; files that use it need a reader that knows it (older readers refuse the unknown
  kind with a clear error instead of mis-decoding).

The encoder really encodes with each candidate and keeps the smallest, so the choice is exact.
Decoding validates every parameter it reads (ranges, finiteness, sizes) before using it.
"""

from __future__ import annotations

import math
import struct
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

import constriction
import numpy as np

from bitstream.binary import ByteReader, ByteWriter
from bitstream.errors import MalformedFileError

__all__ = [
    "ConstantModel",
    "EntropyModel",
    "GaussianModel",
    "HistogramModel",
    "LaplaceModel",
    "choose_and_encode",
    "read_model",
]

MAX_ALPHABET = 1 << 17  # bits ≤ 16 → symbols in [-(2^15 - 1), 2^15 - 1]
MAX_SYMBOL = 1 << 16


def _to_bytes(words: np.ndarray) -> bytes:
    return np.asarray(words, dtype="<u4").tobytes()


def _to_words(payload: bytes, what: str) -> np.ndarray:
    if len(payload) % 4:
        raise MalformedFileError(
            f"{what}: coded payload of {len(payload)} bytes is not whole words"
        )
    return np.frombuffer(payload, dtype="<u4").astype(np.uint32)


class EntropyModel(ABC):
    """A probability model over int32 symbols that can code them and describe itself in bytes."""

    KIND: ClassVar[int]
    SINCE: ClassVar[tuple[int, int]] = (1, 0)
    """The ``.nvc`` format version that introduced this kind: a file using it must declare at
    least this minimum reader version, so older readers say "upgrade" instead of failing."""

    @abstractmethod
    def write_params(self, w: ByteWriter) -> None: ...

    @abstractmethod
    def encode(self, symbols: np.ndarray) -> bytes: ...

    @abstractmethod
    def decode(self, payload: bytes, count: int, what: str) -> np.ndarray: ...

    @abstractmethod
    def ideal_bits(self, symbols: np.ndarray) -> float:
        """Shannon code length of ``symbols`` under this model (for ``nvc info``)."""

    def param_bytes(self) -> int:
        w = ByteWriter()
        self.write_params(w)
        return len(w.getvalue())


class ConstantModel(EntropyModel):
    KIND = 0

    def __init__(self, value: int) -> None:
        self.value = value

    @classmethod
    def fit(cls, symbols: np.ndarray) -> ConstantModel | None:
        if symbols.size == 0:
            return cls(0)
        first = int(symbols.flat[0])
        return cls(first) if np.all(symbols == first) else None

    def write_params(self, w: ByteWriter) -> None:
        w.svarint(self.value)

    @classmethod
    def read_params(cls, r: ByteReader) -> ConstantModel:
        value = r.svarint()
        if abs(value) > MAX_SYMBOL:
            raise MalformedFileError(f"{r.what}: constant symbol {value} out of range")
        return cls(value)

    def encode(self, symbols: np.ndarray) -> bytes:
        return b""

    def decode(self, payload: bytes, count: int, what: str) -> np.ndarray:
        if payload:
            raise MalformedFileError(f"{what}: a constant tensor has no payload")
        return np.full(count, self.value, dtype=np.int32)

    def ideal_bits(self, symbols: np.ndarray) -> float:
        return 0.0


class HistogramModel(EntropyModel):
    KIND = 1

    def __init__(self, lo: int, counts: np.ndarray) -> None:
        self.lo = lo
        self.counts = counts.astype(np.int64)
        probs = self.counts.astype(np.float64) / float(self.counts.sum())
        self._model = constriction.stream.model.Categorical(probs, perfect=False)

    @classmethod
    def fit(cls, symbols: np.ndarray, shift: int = 0) -> HistogramModel:
        """Counts over ``[min, max]``, divided by ``2^shift`` (rounded, occurring symbols ≥ 1)."""
        lo, hi = int(symbols.min()), int(symbols.max())
        counts = np.bincount((symbols - lo).ravel(), minlength=hi - lo + 1).astype(np.int64)
        if shift:
            scaled = (counts + (1 << (shift - 1))) >> shift
            counts = np.where(counts > 0, np.maximum(scaled, 1), 0)
        return cls(lo, counts)

    def write_params(self, w: ByteWriter) -> None:
        w.svarint(self.lo)
        w.varint(len(self.counts))
        for c in self.counts:
            w.varint(int(c))

    @classmethod
    def read_params(cls, r: ByteReader, count: int) -> HistogramModel:
        lo, size = r.svarint(), r.varint()
        if not 2 <= size <= MAX_ALPHABET or abs(lo) > MAX_SYMBOL or abs(lo + size) > MAX_SYMBOL + 1:
            raise MalformedFileError(f"{r.what}: histogram over [{lo}, +{size}) out of range")
        counts = np.array([r.varint() for _ in range(size)], dtype=np.uint64)
        if counts.max() > count or counts.sum() == 0:
            raise MalformedFileError(
                f"{r.what}: histogram counts inconsistent with {count} symbols"
            )
        return cls(lo, counts.astype(np.int64))

    def encode(self, symbols: np.ndarray) -> bytes:
        coder = constriction.stream.stack.AnsCoder()
        coder.encode_reverse((symbols.ravel() - self.lo).astype(np.int32), self._model)
        return _to_bytes(coder.get_compressed())

    def decode(self, payload: bytes, count: int, what: str) -> np.ndarray:
        coder = constriction.stream.stack.AnsCoder(_to_words(payload, what))
        return coder.decode(self._model, count).astype(np.int32) + self.lo

    def ideal_bits(self, symbols: np.ndarray) -> float:
        occurrences = np.bincount(
            (symbols.ravel() - self.lo).astype(np.int64), minlength=len(self.counts)
        )[: len(self.counts)]
        used = occurrences > 0
        p = self.counts[used] / self.counts.sum()
        return float(-(occurrences[used] * np.log2(p)).sum())


_erfc = np.vectorize(math.erfc, otypes=[np.float64])


class _ParametricModel(EntropyModel):
    """A continuous distribution with a location and a scale, quantised to integer bins on
    ``[lo, hi]`` (the end bins take the tails). Parameters: ``lo`` svarint, ``hi - lo`` varint,
    location and scale as two little-endian binary32, validated on the way in."""

    NAME: ClassVar[str]

    def __init__(self, lo: int, hi: int, loc: float, scale: float) -> None:
        self.lo, self.hi = lo, hi
        # Round-trip through float32 so the encoder uses exactly what the decoder will read.
        self.loc = float(np.float32(loc))
        self.scale = float(np.float32(scale))
        self._model = self._constriction_model()

    @abstractmethod
    def _constriction_model(self) -> object: ...

    @abstractmethod
    def cdf(self, v: np.ndarray) -> np.ndarray:
        """The continuous distribution's CDF (for the ideal code length)."""

    def write_params(self, w: ByteWriter) -> None:
        w.svarint(self.lo)
        w.varint(self.hi - self.lo)
        w.raw(struct.pack("<ff", self.loc, self.scale))

    @classmethod
    def read_params(cls, r: ByteReader) -> _ParametricModel:
        lo, span = r.svarint(), r.varint()
        loc, scale = struct.unpack("<ff", r.raw(8))
        ok = (
            abs(lo) <= MAX_SYMBOL
            and 1 <= span <= MAX_ALPHABET
            and math.isfinite(loc)
            and abs(loc) <= MAX_SYMBOL
            and math.isfinite(scale)
            and 1e-3 <= scale <= MAX_SYMBOL
        )
        if not ok:
            raise MalformedFileError(f"{r.what}: {cls.NAME} model parameters out of range")
        return cls(lo, lo + span, loc, scale)

    def encode(self, symbols: np.ndarray) -> bytes:
        coder = constriction.stream.stack.AnsCoder()
        coder.encode_reverse(symbols.ravel().astype(np.int32), self._model)
        return _to_bytes(coder.get_compressed())

    def decode(self, payload: bytes, count: int, what: str) -> np.ndarray:
        coder = constriction.stream.stack.AnsCoder(_to_words(payload, what))
        return coder.decode(self._model, count).astype(np.int32)

    def ideal_bits(self, symbols: np.ndarray) -> float:
        values, counts = np.unique(symbols.ravel().astype(np.float64), return_counts=True)
        lower = np.where(values == self.lo, 0.0, self.cdf(values - 0.5))
        upper = np.where(values == self.hi, 1.0, self.cdf(values + 0.5))
        return float(-(counts * np.log2(np.maximum(upper - lower, 1e-300))).sum())


class LaplaceModel(_ParametricModel):
    KIND = 2
    NAME = "Laplace"

    def _constriction_model(self) -> object:
        return constriction.stream.model.QuantizedLaplace(self.lo, self.hi, self.loc, self.scale)

    @classmethod
    def fit(cls, symbols: np.ndarray) -> LaplaceModel:
        x = symbols.ravel().astype(np.float64)
        loc = float(np.median(x))
        scale = max(float(np.mean(np.abs(x - loc))), 0.05)  # maximum-likelihood estimates
        return cls(int(x.min()), int(x.max()), loc, scale)

    def cdf(self, v: np.ndarray) -> np.ndarray:
        z = (v - self.loc) / self.scale
        return np.where(z < 0, 0.5 * np.exp(np.minimum(z, 0)), 1 - 0.5 * np.exp(-np.maximum(z, 0)))


class GaussianModel(_ParametricModel):
    KIND = 3
    SINCE = (1, 1)
    NAME = "Gaussian"

    def _constriction_model(self) -> object:
        return constriction.stream.model.QuantizedGaussian(self.lo, self.hi, self.loc, self.scale)

    @property
    def mean(self) -> float:
        return self.loc

    @property
    def std(self) -> float:
        return self.scale

    @classmethod
    def fit(cls, symbols: np.ndarray) -> GaussianModel:
        x = symbols.ravel().astype(np.float64)
        return cls(int(x.min()), int(x.max()), float(x.mean()), max(float(x.std()), 0.05))

    def cdf(self, v: np.ndarray) -> np.ndarray:
        z = -(np.asarray(v, dtype=np.float64) - self.loc) / (math.sqrt(2.0) * self.scale)
        return 0.5 * _erfc(z)


_KINDS: dict[int, str] = {0: "constant", 1: "histogram", 2: "laplace", 3: "gaussian"}

MAX_HISTOGRAM_SHIFT = 12  # candidate count scalings 2^0 … 2^12


def kind_name(kind: int) -> str:
    return _KINDS.get(kind, f"kind-{kind}")


def choose_and_encode(
    symbols: np.ndarray, extra: Sequence[EntropyModel] = ()
) -> tuple[EntropyModel, bytes]:
    """Encode with every applicable model (the standard candidates plus ``extra``, e.g. a
    learned one); keep the smallest (parameters + payload)."""
    symbols = np.ascontiguousarray(symbols.ravel(), dtype=np.int32)
    constant = ConstantModel.fit(symbols)
    if constant is not None:
        return constant, b""
    best: tuple[int, EntropyModel, bytes] | None = None
    for model in [*candidate_models(symbols), *extra]:
        payload = model.encode(symbols)
        total = model.param_bytes() + len(payload)
        if best is None or total < best[0]:
            best = (total, model, payload)
    assert best is not None
    return best[1], best[2]


def candidate_models(symbols: np.ndarray) -> list[EntropyModel]:
    """Every non-constant model the encoder tries for ``symbols`` (not all equal)."""
    models: list[EntropyModel] = [HistogramModel.fit(symbols)]
    peak = int(models[0].counts.max())
    for shift in range(1, MAX_HISTOGRAM_SHIFT + 1):
        if peak >> shift < 2:
            break
        models.append(HistogramModel.fit(symbols, shift))
    models += [LaplaceModel.fit(symbols), GaussianModel.fit(symbols)]
    return models


def write_model(w: ByteWriter, model: EntropyModel) -> None:
    w.u8(model.KIND)
    model.write_params(w)


def read_model(r: ByteReader, count: int) -> EntropyModel:
    kind = r.u8()
    if kind == ConstantModel.KIND:
        return ConstantModel.read_params(r)
    if kind == HistogramModel.KIND:
        return HistogramModel.read_params(r, count)
    if kind == LaplaceModel.KIND:
        return LaplaceModel.read_params(r)
    if kind == GaussianModel.KIND:
        return GaussianModel.read_params(r)
    raise MalformedFileError(f"{r.what}: unknown entropy model kind {kind}")
