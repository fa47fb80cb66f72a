"""Bounded little-endian readers and writers for the binary sections of an ``.nvc`` file.

The serialisation layer builds its sections (tensor table, tensor data) with :class:`ByteWriter`
and parses them with :class:`ByteReader`. The reader is the only place that touches those
untrusted bytes, so it checks every read against what is left *before* slicing and turns every
shortfall into a :class:`~bitstream.errors.MalformedFileError` whose message names the section
and the byte offset. Counts read from the file should go through :meth:`ByteReader.count` so that
they are bounded before anything is allocated from them.

Encodings (normative, see FORMAT.md): fixed-width integers and ``f64`` are little-endian;
``varint`` is unsigned LEB128 (7 bits per byte, low group first, high bit = "more follows"), at
most 10 bytes, value < 2**64, minimal length; ``svarint`` is a zigzag-mapped signed integer
(0, -1, 1, -2, ... -> 0, 1, 2, 3, ...) stored as a varint.
"""

from __future__ import annotations

import struct
from typing import Final

from .errors import MalformedFileError

__all__ = ["ByteReader", "ByteWriter"]

_U8: Final = struct.Struct("<B")
_U16: Final = struct.Struct("<H")
_U32: Final = struct.Struct("<I")
_U64: Final = struct.Struct("<Q")
_I32: Final = struct.Struct("<i")
_I64: Final = struct.Struct("<q")
_F64: Final = struct.Struct("<d")

_VARINT_MAX_BYTES: Final = 10
_U64_LIMIT: Final = 1 << 64
_I64_MIN: Final = -(1 << 63)
_I64_MAX: Final = (1 << 63) - 1


def _check_int(value: int, lo: int, hi: int, kind: str) -> None:
    """Refuse values that would silently wrap or fail deep inside ``struct``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{kind} value must be an int, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise ValueError(f"{kind} value {value} is out of range [{lo}, {hi}]")


class ByteWriter:
    """Append-only builder of a binary section; range-checks every value it is given."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._size = 0

    def _put(self, b: bytes) -> None:
        self._parts.append(b)
        self._size += len(b)

    def __len__(self) -> int:
        """Bytes written so far (lets callers record offsets while building)."""
        return self._size

    def u8(self, v: int) -> None:
        """Write an unsigned 8-bit integer."""
        _check_int(v, 0, 0xFF, "u8")
        self._put(_U8.pack(v))

    def u16(self, v: int) -> None:
        """Write an unsigned 16-bit little-endian integer."""
        _check_int(v, 0, 0xFFFF, "u16")
        self._put(_U16.pack(v))

    def u32(self, v: int) -> None:
        """Write an unsigned 32-bit little-endian integer."""
        _check_int(v, 0, 0xFFFF_FFFF, "u32")
        self._put(_U32.pack(v))

    def u64(self, v: int) -> None:
        """Write an unsigned 64-bit little-endian integer."""
        _check_int(v, 0, _U64_LIMIT - 1, "u64")
        self._put(_U64.pack(v))

    def i32(self, v: int) -> None:
        """Write a signed (two's complement) 32-bit little-endian integer."""
        _check_int(v, -(1 << 31), (1 << 31) - 1, "i32")
        self._put(_I32.pack(v))

    def i64(self, v: int) -> None:
        """Write a signed (two's complement) 64-bit little-endian integer."""
        _check_int(v, _I64_MIN, _I64_MAX, "i64")
        self._put(_I64.pack(v))

    def f64(self, v: float) -> None:
        """Write an IEEE-754 binary64 little-endian float."""
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise TypeError(f"f64 value must be a float, got {type(v).__name__}")
        self._put(_F64.pack(float(v)))

    def varint(self, v: int) -> None:
        """Write an unsigned LEB128 integer (minimal length, 0 <= v < 2**64)."""
        _check_int(v, 0, _U64_LIMIT - 1, "varint")
        out = bytearray()
        while True:
            low = v & 0x7F
            v >>= 7
            if v:
                out.append(low | 0x80)
            else:
                out.append(low)
                break
        self._put(bytes(out))

    def svarint(self, v: int) -> None:
        """Write a signed integer (-2**63 <= v < 2**63) as a zigzag-mapped varint."""
        _check_int(v, _I64_MIN, _I64_MAX, "svarint")
        self.varint(v * 2 if v >= 0 else -v * 2 - 1)

    def raw(self, b: bytes) -> None:
        """Append bytes verbatim (the caller records their length separately)."""
        if not isinstance(b, bytes | bytearray | memoryview):
            raise TypeError(f"raw value must be bytes, got {type(b).__name__}")
        self._put(bytes(b))

    def getvalue(self) -> bytes:
        """Everything written so far, as one ``bytes`` object."""
        return b"".join(self._parts)


class ByteReader:
    """Sequential reader over one section's bytes that never reads past the end.

    ``what`` names the section ("tensor table") and starts every error message, so a corrupt
    file is reported as e.g. ``tensor table: truncated at byte 37 (wanted 4 bytes, 2 left)``.
    """

    def __init__(self, data: bytes | bytearray | memoryview, *, what: str) -> None:
        self._data: bytes | memoryview = (
            data if isinstance(data, bytes) else memoryview(data).cast("B")
        )
        self._pos = 0
        self.what = what

    @property
    def pos(self) -> int:
        """Offset of the next byte to be read."""
        return self._pos

    @property
    def remaining(self) -> int:
        """Bytes left after the current position."""
        return len(self._data) - self._pos

    def _error(self, message: str) -> MalformedFileError:
        return MalformedFileError(f"{self.what}: {message}")

    def _take(self, n: int) -> bytes:
        left = self.remaining
        if n > left:
            raise self._error(f"truncated at byte {self._pos} (wanted {n} bytes, {left} left)")
        start = self._pos
        self._pos = start + n
        return bytes(self._data[start : start + n])

    def u8(self) -> int:
        """Read an unsigned 8-bit integer."""
        return int(_U8.unpack(self._take(1))[0])

    def u16(self) -> int:
        """Read an unsigned 16-bit little-endian integer."""
        return int(_U16.unpack(self._take(2))[0])

    def u32(self) -> int:
        """Read an unsigned 32-bit little-endian integer."""
        return int(_U32.unpack(self._take(4))[0])

    def u64(self) -> int:
        """Read an unsigned 64-bit little-endian integer."""
        return int(_U64.unpack(self._take(8))[0])

    def i32(self) -> int:
        """Read a signed 32-bit little-endian integer."""
        return int(_I32.unpack(self._take(4))[0])

    def i64(self) -> int:
        """Read a signed 64-bit little-endian integer."""
        return int(_I64.unpack(self._take(8))[0])

    def f64(self) -> float:
        """Read an IEEE-754 binary64 little-endian float (NaN/inf are returned as stored)."""
        return float(_F64.unpack(self._take(8))[0])

    def varint(self) -> int:
        """Read an unsigned LEB128 integer: at most 10 bytes, < 2**64, minimal encoding.

        Refusing non-minimal encodings means each value has exactly one byte form, so a
        corrupted continuation bit cannot be mistaken for a valid alternative spelling.
        """
        start = self._pos
        value = 0
        for i in range(_VARINT_MAX_BYTES):
            if self.remaining < 1:
                raise self._error(
                    f"truncated at byte {self._pos} (varint starting at byte {start} "
                    f"has no final byte, 0 left)"
                )
            byte = self._data[self._pos]
            self._pos += 1
            value |= (byte & 0x7F) << (7 * i)
            if not byte & 0x80:
                if byte == 0 and i > 0:
                    raise self._error(f"varint at byte {start} is not minimally encoded")
                if value >= _U64_LIMIT:
                    raise self._error(f"varint at byte {start} is >= 2**64")
                return value
        raise self._error(f"varint at byte {start} is longer than {_VARINT_MAX_BYTES} bytes")

    def svarint(self) -> int:
        """Read a zigzag-mapped signed varint."""
        z = self.varint()
        return z >> 1 if not z & 1 else -(z >> 1) - 1

    def count(self, limit: int, what: str) -> int:
        """Read a varint count/length and refuse it if above ``limit``, before any allocation."""
        start = self._pos
        n = self.varint()
        if n > limit:
            raise self._error(f"{what} at byte {start} is {n}, more than the limit {limit}")
        return n

    def raw(self, n: int) -> bytes:
        """Read ``n`` bytes; ``n`` is checked against what is left before anything is copied."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"raw length must be a non-negative int, got {n!r}")
        return self._take(n)

    def expect_end(self) -> None:
        """Refuse trailing bytes: a section must be consumed exactly."""
        if self.remaining:
            raise self._error(
                f"{self.remaining} unexpected trailing bytes at byte {self._pos} "
                f"(section is {len(self._data)} bytes)"
            )
