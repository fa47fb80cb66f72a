"""An independent `.nvc` reader written from `bitstream/FORMAT.md` alone.

It deliberately imports nothing from `bitstream` or `nvcodec`: its only purpose is to show that the
normative document is enough to decode every file the project writes. It reads one-segment files
(`read_tensors`) down to dequantised float32 tensors, and splits segmented files (format 1.2)
into their segment images (`read_segments`). Errors mirror the document's error class names but
are local classes (all `ValueError`s).

Tensor payloads are decoded either with constriction (`decoder="constriction"`, the library the
writer used) or with the sibling module `ans_reader.py` (`decoder="numpy"`), which implements the
coder and the entropy models' integer tables from FORMAT.md in plain Python + numpy; constriction
is imported only on first use by the former.
"""

from __future__ import annotations

import importlib.util
import json
import math
import struct
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import zstandard

MAGIC = b"\x89NVC\r\n\x1a\n"
READER_VERSION = (1, 3)
MAX_SECTIONS = 64
MAX_SECTION_BYTES = 1 << 30
MAX_FILE_BYTES = 1 << 32
MAX_METADATA_BYTES = 1 << 20
MAX_METADATA_WINDOW = 8 << 20
MAX_METADATA_DEPTH = 32
MAX_SEGMENTS = 65_536
MAX_SEGMENT_FRAMES = 1 << 20
MAX_MODEL_SPAN = 131_072
MAX_MODEL_VALUE = 65_536

METADATA, TENSOR_TABLE, TENSOR_DATA, SEGMENT_INDEX, SEGMENT_DATA = 1, 2, 3, 4, 5
KNOWN_TYPES = {METADATA, TENSOR_TABLE, TENSOR_DATA, SEGMENT_INDEX, SEGMENT_DATA}
SECTION_NAMES = {
    METADATA: "METADATA",
    TENSOR_TABLE: "TENSOR_TABLE",
    TENSOR_DATA: "TENSOR_DATA",
    SEGMENT_INDEX: "SEGMENT_INDEX",
    SEGMENT_DATA: "SEGMENT_DATA",
}


class NvcFormatError(ValueError):
    """Base of every content error (the document says content errors inherit `ValueError`)."""


class NotAnNvcFileError(NvcFormatError):
    """The magic does not match."""


class TruncatedFileError(NvcFormatError):
    """The file ends before a structure it declares."""


class UnsupportedVersionError(NvcFormatError):
    """The file needs a newer reader."""


class MalformedFileError(NvcFormatError):
    """A field violates the format."""


class ChecksumError(NvcFormatError):
    """A CRC-32 does not match."""


class UnknownSectionError(NvcFormatError):
    """An unknown section is flagged critical."""


class MissingSectionError(NvcFormatError):
    """A section the codec needs is absent."""


# --------------------------------------------------------------------------- primitive encodings


class ByteCursor:
    """Bounds-checked reader of the primitive encodings ("Binary encodings for sections")."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.pos, self.what = data, 0, what

    def left(self) -> int:
        """Bytes not yet read."""
        return len(self.data) - self.pos

    def raw(self, n: int) -> bytes:
        """`n` bytes verbatim, refusing a short read before slicing."""
        if n > self.left():
            raise MalformedFileError(
                f"{self.what}: truncated at byte {self.pos} (wanted {n} bytes, {self.left()} left)"
            )
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def u8(self) -> int:
        return self.raw(1)[0]

    def u32(self) -> int:
        return struct.unpack("<I", self.raw(4))[0]

    def f32(self) -> float:
        return struct.unpack("<f", self.raw(4))[0]

    def varint(self) -> int:
        """Unsigned LEB128: at most 10 bytes, value < 2^64, minimal encoding."""
        value = 0
        for i in range(10):
            byte = self.u8()
            value |= (byte & 0x7F) << (7 * i)
            if not byte & 0x80:
                if byte == 0 and i > 0:
                    raise MalformedFileError(f"{self.what}: non-minimal varint")
                if value >= 1 << 64:
                    raise MalformedFileError(f"{self.what}: varint above 2^64 - 1")
                return value
        raise MalformedFileError(f"{self.what}: varint longer than 10 bytes")

    def svarint(self) -> int:
        """Zigzag-mapped signed varint."""
        z = self.varint()
        return (z >> 1) if z % 2 == 0 else -((z + 1) >> 1)

    def count(self, lo: int, hi: int, what: str) -> int:
        """A varint that must lie in `[lo, hi]`, checked before anything is allocated."""
        value = self.varint()
        if not lo <= value <= hi:
            raise MalformedFileError(f"{self.what}: {what} {value} not in [{lo}, {hi}]")
        return value

    def expect_end(self) -> None:
        """Refuse trailing bytes."""
        if self.left():
            raise MalformedFileError(f"{self.what}: {self.left()} trailing bytes")


# --------------------------------------------------------------------------- container


@dataclass(frozen=True)
class Container:
    """A parsed container: versions and the bytes of every known section, by type id."""

    writer: tuple[int, int]
    reader: tuple[int, int]
    sections: dict[int, bytes]

    def get(self, type_id: int, name: str) -> bytes:
        """A required section, or `MissingSectionError`."""
        if type_id not in self.sections:
            raise MissingSectionError(f"{name}: no {SECTION_NAMES[type_id]} section")
        return self.sections[type_id]


def _check_prefix(data: bytes, name: str) -> tuple[tuple[int, int], tuple[int, int], int]:
    """Checks 1-5: magic, size, reader version, section count, table size."""
    if data[:8] != MAGIC[: min(8, len(data))]:
        raise NotAnNvcFileError(f"{name}: not an .nvc file (bad magic)")
    if len(data) < 24:
        raise TruncatedFileError(f"{name}: truncated header ({len(data)} bytes)")
    if len(data) > MAX_FILE_BYTES:
        raise MalformedFileError(f"{name}: file larger than 4 GiB")
    w_major, w_minor, r_major, r_minor, n = struct.unpack_from("<HHHHI", data, 8)
    if (r_major, r_minor) > READER_VERSION:
        raise UnsupportedVersionError(
            f"{name} needs an nvc reader >= {r_major}.{r_minor}; this is "
            f"{READER_VERSION[0]}.{READER_VERSION[1]} (upgrade nvcodec)"
        )
    if not 1 <= n <= MAX_SECTIONS:
        raise MalformedFileError(f"{name}: section_count {n} not in [1, {MAX_SECTIONS}]")
    if len(data) < 28 + 32 * n:
        raise TruncatedFileError(f"{name}: truncated section table")
    return (w_major, w_minor), (r_major, r_minor), n


def _check_header(data: bytes, name: str, writer, reader, n: int) -> None:
    """Checks 6-7: header CRC, reserved word, version consistency."""
    (stored,) = struct.unpack_from("<I", data, 24 + 32 * n)
    if zlib.crc32(data[: 24 + 32 * n]) != stored:
        raise ChecksumError(f"{name}: header checksum mismatch")
    (reserved,) = struct.unpack_from("<I", data, 20)
    if reserved != 0 or reader < (1, 0) or writer < reader:
        raise MalformedFileError(f"{name}: bad header (reserved or versions)")


def _table_entries(data: bytes, name: str, n: int) -> list[tuple[int, int, int, int, int]]:
    """Check 8-9: every entry's flags, length and tiling; returns (type, flags, off, len, crc)."""
    entries, position, seen = [], 28 + 32 * n, set()
    for i in range(n):
        type_id, flags, offset, length, crc, reserved = struct.unpack_from(
            "<IIQQII", data, 24 + 32 * i
        )
        if flags & ~1 or reserved != 0:
            raise MalformedFileError(f"{name}: section {i}: reserved bits set")
        if length > MAX_SECTION_BYTES:
            raise MalformedFileError(f"{name}: section {i}: length above 1 GiB")
        if offset != position:
            raise MalformedFileError(f"{name}: section {i}: offset {offset} != {position}")
        if offset + length > len(data):
            raise TruncatedFileError(f"{name}: section {i} ends beyond the end of the file")
        if type_id in seen:
            raise MalformedFileError(f"{name}: section type {type_id} appears twice")
        seen.add(type_id)
        entries.append((type_id, flags, offset, length, crc))
        position = offset + length
    if position != len(data):
        raise MalformedFileError(f"{name}: {len(data) - position} bytes after the last section")
    return entries


def parse_container(data: bytes, name: str) -> Container:
    """Parse and verify a whole container image (every "Reader checks" step, in order)."""
    writer, reader, n = _check_prefix(data, name)
    _check_header(data, name, writer, reader, n)
    sections: dict[int, bytes] = {}
    for type_id, flags, offset, length, crc in _table_entries(data, name, n):
        body = data[offset : offset + length]
        if zlib.crc32(body) != crc:
            raise ChecksumError(f"{name}: section type {type_id} checksum mismatch")
        if type_id in KNOWN_TYPES:
            sections[type_id] = body
        elif flags & 1:
            raise UnknownSectionError(f"{name}: unknown critical section type {type_id}")
    return Container(writer, reader, sections)


# --------------------------------------------------------------------------- METADATA


def _refuse_constant(token: str) -> None:
    raise MalformedFileError(f"metadata: non-standard JSON constant {token}")


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise MalformedFileError("metadata: duplicate key in a JSON object")
    return dict(pairs)


def _depth(value: object) -> int:
    """Nesting depth of objects/arrays (a scalar is 0, `{}` is 1)."""
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _decompress_metadata(blob: bytes) -> bytes:
    """One complete zstd frame, nothing after it, bounded window and output."""
    try:
        params = zstandard.get_frame_parameters(blob)
        if params.window_size > MAX_METADATA_WINDOW:
            raise MalformedFileError("metadata: zstd window above 8 MiB")
        size = params.content_size
        if size != zstandard.CONTENTSIZE_UNKNOWN and size > MAX_METADATA_BYTES:
            raise MalformedFileError("metadata: declared content size above 1 MiB")
        dctx = zstandard.ZstdDecompressor(max_window_size=MAX_METADATA_WINDOW)
        raw = dctx.decompress(blob, max_output_size=MAX_METADATA_BYTES, allow_extra_data=False)
    except zstandard.ZstdError as err:
        raise MalformedFileError(f"metadata: bad zstd frame ({err})") from err
    if len(raw) > MAX_METADATA_BYTES:
        raise MalformedFileError("metadata: decompressed size above 1 MiB")
    return raw


def decode_metadata(blob: bytes) -> dict:
    """METADATA (1): zstd-compressed strict UTF-8 JSON object."""
    raw = _decompress_metadata(blob)
    try:
        value = json.loads(
            raw.decode("utf-8"),
            parse_constant=_refuse_constant,
            object_pairs_hook=_no_duplicates,
        )
        depth = _depth(value)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise MalformedFileError(f"metadata: not valid UTF-8 JSON ({err})") from err
    if not isinstance(value, dict):
        raise MalformedFileError("metadata: top-level value is not an object")
    if depth > MAX_METADATA_DEPTH:
        raise MalformedFileError(f"metadata: nesting deeper than {MAX_METADATA_DEPTH}")
    return value


# --------------------------------------------------------------------------- TENSOR_TABLE


@dataclass(frozen=True)
class TensorEntry:
    """One TENSOR_TABLE entry."""

    numel: int
    bits: int
    layout: int
    scales: np.ndarray  # float16, 1 or shape[0] values
    kind: int
    params: tuple  # kind 0: (value,); 1: (lo, counts); 2/3: (lo, hi, loc, scale)
    payload_bytes: int


def _read_float_param(cur: ByteCursor, what: str, lo: float, hi: float) -> float:
    """A little-endian binary32 that must be finite and lie in `[lo, hi]`."""
    value = cur.f32()
    if not math.isfinite(value) or not lo <= value <= hi:
        raise MalformedFileError(f"tensor table: {what} {value} out of range")
    return value


def _read_model(cur: ByteCursor, kind: int, numel: int) -> tuple:
    """The entropy model parameters of one tensor."""
    if kind == 0:
        value = cur.svarint()
        if abs(value) > MAX_MODEL_VALUE:
            raise MalformedFileError(f"tensor table: constant {value} out of range")
        return (value,)
    if kind == 1:
        lo = cur.svarint()
        size = cur.count(2, MAX_MODEL_SPAN, "histogram size")
        counts = [cur.count(0, numel, "histogram count") for _ in range(size)]
        if sum(counts) == 0:
            raise MalformedFileError("tensor table: histogram counts sum to 0")
        return (lo, counts)
    if kind in (2, 3):
        lo = cur.svarint()
        span = cur.count(1, MAX_MODEL_SPAN, "model span")
        loc = _read_float_param(cur, "loc/mean", -MAX_MODEL_VALUE, MAX_MODEL_VALUE)
        scale = _read_float_param(cur, "scale/std", 0.001, MAX_MODEL_VALUE)
        return (lo, lo + span, loc, scale)
    raise MalformedFileError(f"tensor table: unknown entropy model kind {kind}")


def _read_scales(cur: ByteCursor, layout: int, shape: tuple[int, ...] | None) -> np.ndarray:
    """Layout 0: one binary16 scale; layout 1: `shape[0]` of them (rank >= 2 only)."""
    if layout == 0:
        n = 1
    elif layout == 1:
        if shape is None:
            raise MalformedFileError("tensor table: layout 1 needs the tensor's shape")
        if len(shape) < 2:
            raise MalformedFileError("tensor table: layout 1 on a tensor of rank < 2")
        n = shape[0]
    else:
        raise MalformedFileError(f"tensor table: unknown scale layout {layout}")
    scales = np.frombuffer(cur.raw(2 * n), dtype="<f2")
    if not (np.all(np.isfinite(scales)) and np.all(scales >= 0)):
        raise MalformedFileError("tensor table: scale not finite and >= 0")
    return scales


def _read_entry(cur: ByteCursor, shape: tuple[int, ...] | None) -> TensorEntry:
    """One tensor's row of TENSOR_TABLE."""
    numel = cur.varint()
    if shape is not None and numel != math.prod(shape):
        raise MalformedFileError(f"tensor table: numel {numel} != shape {shape}")
    bits = cur.u8()
    if not 2 <= bits <= 16:
        raise MalformedFileError(f"tensor table: bits {bits} not in [2, 16]")
    layout = cur.u8()
    scales = _read_scales(cur, layout, shape)
    kind = cur.u8()
    params = _read_model(cur, kind, numel)
    payload_bytes = cur.varint()
    return TensorEntry(numel, bits, layout, scales, kind, params, payload_bytes)


def parse_tensor_table(
    blob: bytes, shapes: list[tuple[int, ...]] | None, data_length: int
) -> list[TensorEntry]:
    """TENSOR_TABLE (2): count, then one entry per tensor, then nothing."""
    cur = ByteCursor(blob, "tensor table")
    count = cur.count(0, cur.left(), "tensor_count")  # every entry takes >= 7 bytes
    if shapes is not None and count != len(shapes):
        raise MalformedFileError(f"tensor table: {count} tensors, model has {len(shapes)}")
    entries = [_read_entry(cur, None if shapes is None else shapes[i]) for i in range(count)]
    cur.expect_end()
    if sum(e.payload_bytes for e in entries) != data_length:
        raise MalformedFileError("tensor data: payload lengths do not add up to its length")
    return entries


# --------------------------------------------------------------------------- payloads


DECODERS = ("constriction", "numpy")


def _ans_reader() -> ModuleType:
    """The sibling `ans_reader.py`, imported by path (this file is itself imported by path)."""
    name = "nvc_ans_reader"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).with_name("ans_reader.py")
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _entropy_model(entry: TensorEntry):
    """The constriction model of kinds 1-3 (kind 0 needs no coder)."""
    import constriction

    stream_model = constriction.stream.model
    if entry.kind == 1:
        counts = np.asarray(entry.params[1], dtype=np.float64)
        return stream_model.Categorical(counts / counts.sum(), perfect=False)
    lo, hi, loc, scale = entry.params
    if entry.kind == 2:
        return stream_model.QuantizedLaplace(lo, hi, loc, scale)
    return stream_model.QuantizedGaussian(lo, hi, loc, scale)


def _decode_constriction(entry: TensorEntry, words: np.ndarray) -> np.ndarray:
    """Kinds 1-3 with constriction's `AnsCoder` (unsealed) and models."""
    import constriction

    try:
        coder = constriction.stream.stack.AnsCoder(words)
    except ValueError as err:  # the last word is zero
        raise MalformedFileError(f"tensor data: {err}") from err
    symbols = np.asarray(coder.decode(_entropy_model(entry), entry.numel), dtype=np.int64)
    return symbols + entry.params[0] if entry.kind == 1 else symbols


def _decode_numpy(entry: TensorEntry, words: np.ndarray) -> np.ndarray:
    """Kinds 1-3 with `ans_reader` (FORMAT.md's "Entropy coding in detail", no constriction)."""
    ans = _ans_reader()
    lo, cdf = ans.model_table(entry.kind, entry.params)
    try:
        return ans.ans_decode(words, cdf, entry.numel) + lo
    except ans.AnsPayloadError as err:
        raise MalformedFileError(f"tensor data: {err}") from err


def decode_symbols(entry: TensorEntry, payload: bytes, decoder: str = "constriction") -> np.ndarray:
    """The `numel` integer symbols of one tensor, as int64, decoded with `decoder`."""
    if decoder not in DECODERS:
        raise ValueError(f"decoder must be one of {DECODERS}, not {decoder!r}")
    if entry.kind == 0:
        if payload:
            raise MalformedFileError("tensor data: constant model with a non-empty payload")
        symbols = np.full(entry.numel, entry.params[0], dtype=np.int64)
    else:
        if len(payload) % 4:
            raise MalformedFileError("tensor data: payload is not whole 32-bit words")
        words = np.frombuffer(payload, dtype="<u4").astype(np.uint32)
        decode = _decode_numpy if decoder == "numpy" else _decode_constriction
        symbols = decode(entry, words)
    peak = 2 ** (entry.bits - 1) - 1
    if symbols.size and (symbols.min() < -peak or symbols.max() > peak):
        raise MalformedFileError(f"tensor data: symbol outside the {entry.bits}-bit range")
    return symbols


def dequantise(entry: TensorEntry, symbols: np.ndarray) -> np.ndarray:
    """`w = q * s` in binary64, rounded once to binary32; layout 1 scales by channel (dim 0)."""
    scales = entry.scales.astype(np.float64)
    if entry.layout == 1:
        scales = np.repeat(scales, entry.numel // len(scales))
    return (symbols.astype(np.float64) * scales).astype(np.float32)


# --------------------------------------------------------------------------- public API


def parse_symbols(
    data: bytes,
    shapes: list[tuple[int, ...]] | None = None,
    name: str = "<bytes>",
    decoder: str = "constriction",
) -> tuple[dict, list[TensorEntry], list[np.ndarray]]:
    """METADATA, the table entries and every tensor's int64 symbols of a one-segment file image."""
    container = parse_container(data, name)
    if SEGMENT_INDEX in container.sections or SEGMENT_DATA in container.sections:
        raise MalformedFileError(f"{name}: a segmented file, not a one-segment file")
    metadata = decode_metadata(container.get(METADATA, name))
    tensor_data = container.get(TENSOR_DATA, name)
    entries = parse_tensor_table(container.get(TENSOR_TABLE, name), shapes, len(tensor_data))
    symbols, offset = [], 0
    for entry in entries:
        payload = tensor_data[offset : offset + entry.payload_bytes]
        offset += entry.payload_bytes
        symbols.append(decode_symbols(entry, payload, decoder))
    return metadata, entries, symbols


def parse_tensors(
    data: bytes,
    shapes: list[tuple[int, ...]] | None = None,
    name: str = "<bytes>",
    decoder: str = "constriction",
) -> tuple[dict, list[np.ndarray]]:
    """METADATA and the dequantised flat float32 tensors of a one-segment file image."""
    metadata, entries, symbols = parse_symbols(data, shapes, name, decoder)
    return metadata, [dequantise(e, q) for e, q in zip(entries, symbols, strict=True)]


def _read_bytes(path: str | Path) -> bytes:
    """The file's bytes, refusing files above `MAX_FILE_BYTES` before reading."""
    path = Path(path)
    if path.stat().st_size > MAX_FILE_BYTES:
        raise MalformedFileError(f"{path.name}: file larger than 4 GiB")
    return path.read_bytes()


def read_tensors(
    path: str | Path, shapes: list[tuple[int, ...]] | None = None, decoder: str = "constriction"
) -> tuple[dict, list[np.ndarray]]:
    """METADATA and the dequantised tensors (flat float32, table order) of a one-segment file.

    `shapes` (the rebuilt model's parameter shapes) is needed only for per-channel scales."""
    return parse_tensors(_read_bytes(path), shapes, Path(path).name, decoder)


def parse_segment_index(blob: bytes) -> list[tuple[int, int, int]]:
    """SEGMENT_INDEX (4): `(frame_count, length, crc32)` of every segment."""
    cur = ByteCursor(blob, "segment index")
    count = cur.count(1, min(MAX_SEGMENTS, cur.left() // 6), "segment_count")
    rows = []
    for _ in range(count):
        frames = cur.count(1, MAX_SEGMENT_FRAMES, "frame_count")
        length = cur.count(1, MAX_SECTION_BYTES, "length")
        rows.append((frames, length, cur.u32()))
    cur.expect_end()
    return rows


def _check_segment(image: bytes, frames: int, video: dict, name: str) -> None:
    """A segment image is itself a valid one-segment file agreeing with the file's `video`."""
    container = parse_container(image, name)
    if SEGMENT_INDEX in container.sections:
        raise MalformedFileError(f"{name}: a segment contains SEGMENT_INDEX")
    own = decode_metadata(container.get(METADATA, name)).get("video", {})
    for key in ("width", "height", "fps", "colour"):
        if own.get(key) != video.get(key):
            raise MalformedFileError(f"{name}: video.{key} differs from the file's")
    if own.get("frames") != frames:
        raise MalformedFileError(f"{name}: video.frames != the index's {frames}")


def read_segments(path: str | Path) -> list[tuple[int, bytes]]:
    """Frame count and image bytes of every segment of a segmented (format 1.2) file."""
    name = Path(path).name
    container = parse_container(_read_bytes(path), name)
    present = {SEGMENT_INDEX, SEGMENT_DATA} & set(container.sections)
    if present != {SEGMENT_INDEX, SEGMENT_DATA} or TENSOR_TABLE in container.sections:
        raise MalformedFileError(f"{name}: not a well-formed segmented file")
    metadata = decode_metadata(container.get(METADATA, name))
    rows = parse_segment_index(container.sections[SEGMENT_INDEX])
    data = container.sections[SEGMENT_DATA]
    if sum(length for _, length, _ in rows) != len(data):
        raise MalformedFileError(f"{name}: segment lengths do not add up to SEGMENT_DATA")
    video = metadata.get("video", {})
    if metadata.get("segments", {}).get("count") != len(rows):
        raise MalformedFileError(f"{name}: segments.count differs from the index")
    if video.get("frames") != sum(frames for frames, _, _ in rows):
        raise MalformedFileError(f"{name}: video.frames != the sum of the segments' frames")
    segments, offset = [], 0
    for k, (frames, length, crc) in enumerate(rows):
        image = data[offset : offset + length]
        offset += length
        if zlib.crc32(image) != crc:
            raise ChecksumError(f"{name}: segment {k} checksum mismatch")
        _check_segment(image, frames, video, f"{name} (segment {k})")
        segments.append((frames, image))
    return segments
