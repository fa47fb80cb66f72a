"""The ``.nvc`` v1 container: a checksummed header, a section table, and tiled section data.

This module only turns bytes into sections and back; it knows nothing about what the sections
mean (see :mod:`bitstream.metadata` for METADATA and the serialisation layer for the tensor
sections). FORMAT.md next to this file is the normative description of every byte; the checks in
:func:`unpack` run in the order listed there so that each kind of damage gets its own error.
"""

from __future__ import annotations

import enum
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from .errors import (
    ChecksumError,
    MalformedFileError,
    MissingSectionError,
    NotAnNvcFileError,
    TruncatedFileError,
    UnknownSectionError,
    UnsupportedVersionError,
)

__all__ = [
    "FORMAT_VERSION",
    "HEADER_FIXED_BYTES",
    "MAGIC",
    "MAX_FILE_BYTES",
    "MAX_HEADER_BYTES",
    "MAX_SECTIONS",
    "MAX_SECTION_BYTES",
    "SECTION_ENTRY_BYTES",
    "Container",
    "Header",
    "Section",
    "SectionEntry",
    "SectionType",
    "check_section",
    "pack",
    "parse_header",
    "unpack",
]

#: The format version this code writes, and the newest ``reader_version`` it can decode.
FORMAT_VERSION: Final[tuple[int, int]] = (1, 3)
#: PNG-style magic: a non-ASCII first byte and CR/LF/^Z catch text-mode and 7-bit transfers.
MAGIC: Final = b"\x89NVC\r\n\x1a\n"
MAX_SECTIONS: Final = 64
MAX_SECTION_BYTES: Final = 1 << 30
MAX_FILE_BYTES: Final = 4 << 30

_FIXED: Final = struct.Struct("<8sHHHHII")
_ENTRY: Final = struct.Struct("<IIQQII")
_CRC: Final = struct.Struct("<I")
HEADER_FIXED_BYTES: Final = _FIXED.size  # 24
SECTION_ENTRY_BYTES: Final = _ENTRY.size  # 32
_FLAG_CRITICAL: Final = 1
_U16_MAX: Final = 0xFFFF
_U32_MAX: Final = 0xFFFF_FFFF


class SectionType(enum.IntEnum):
    """Registered section type ids. These numbers are fixed forever; new types get new ids."""

    METADATA = 1
    TENSOR_TABLE = 2
    TENSOR_DATA = 3
    SEGMENT_INDEX = 4
    SEGMENT_DATA = 5


def _type_name(type_id: int) -> str:
    """``METADATA`` for a known id, ``type 77`` for an unknown one (used in messages)."""
    try:
        return SectionType(type_id).name
    except ValueError:
        return f"type {type_id}"


@dataclass(frozen=True)
class Section:
    """One section: a type id, its payload, and whether a reader that lacks it must refuse."""

    type: int
    data: bytes
    critical: bool = True


@dataclass(frozen=True)
class Container:
    """A parsed ``.nvc`` file: versions, the sections this reader understands, total size.

    Unknown optional sections are skipped while parsing and do not appear in ``sections``.
    ``name`` is the file name used in error messages raised by :meth:`get`.
    """

    writer_version: tuple[int, int]
    reader_version: tuple[int, int]
    sections: tuple[Section, ...]
    size: int
    name: str = "<bytes>"

    def find(self, type: int) -> Section | None:
        """The section of this type, or ``None`` when the file has none."""
        for section in self.sections:
            if section.type == type:
                return section
        return None

    def get(self, type: int) -> Section:
        """The section of this type; :class:`MissingSectionError` when absent.

        Required sections are enforced here, by the caller that needs them, rather than by the
        container, so the container stays agnostic of what a codec file must contain.
        """
        section = self.find(type)
        if section is None:
            raise MissingSectionError(f"{self.name}: no {_type_name(type)} section")
        return section


def _check_version_pair(version: tuple[int, int], what: str) -> None:
    if (
        len(version) != 2
        or any(isinstance(v, bool) or not isinstance(v, int) for v in version)
        or not all(0 <= v <= _U16_MAX for v in version)
    ):
        raise ValueError(f"{what} must be a pair of u16 integers, got {version!r}")


def pack(sections: Sequence[Section], *, reader_version: tuple[int, int] = (1, 0)) -> bytes:
    """Serialise sections into a complete ``.nvc`` file image.

    Validates what the reader would refuse (count, sizes, type ids, duplicates, versions) and
    raises ``ValueError``/``TypeError`` instead: a writer bug must never produce a file that this
    reader rejects.
    """
    _check_version_pair(reader_version, "reader_version")
    if not (1, 0) <= tuple(reader_version) <= FORMAT_VERSION:
        raise ValueError(
            f"reader_version {reader_version[0]}.{reader_version[1]} must be between 1.0 and "
            f"the written format version {FORMAT_VERSION[0]}.{FORMAT_VERSION[1]}"
        )
    if not 1 <= len(sections) <= MAX_SECTIONS:
        raise ValueError(f"a file needs 1..{MAX_SECTIONS} sections, got {len(sections)}")
    seen: set[int] = set()
    total = HEADER_FIXED_BYTES + SECTION_ENTRY_BYTES * len(sections) + _CRC.size
    for section in sections:
        if not isinstance(section, Section):
            raise TypeError(f"expected Section, got {type(section).__name__}")
        t = section.type
        if isinstance(t, bool) or not isinstance(t, int) or not 1 <= t <= _U32_MAX:
            raise ValueError(f"section type must be an int in 1..{_U32_MAX}, got {t!r}")
        if not isinstance(section.data, bytes):
            raise TypeError(f"{_type_name(t)} section data must be bytes")
        if t in seen:
            raise ValueError(f"duplicate {_type_name(t)} section")
        seen.add(t)
        if len(section.data) > MAX_SECTION_BYTES:
            raise ValueError(
                f"{_type_name(t)} section is {len(section.data)} bytes, "
                f"more than the limit {MAX_SECTION_BYTES}"
            )
        total += len(section.data)
    if total > MAX_FILE_BYTES:
        raise ValueError(f"file would be {total} bytes, more than the limit {MAX_FILE_BYTES}")

    n = len(sections)
    table_end = HEADER_FIXED_BYTES + SECTION_ENTRY_BYTES * n
    offset = table_end + _CRC.size
    header = bytearray(_FIXED.pack(MAGIC, *FORMAT_VERSION, *reader_version, n, 0))
    for section in sections:
        flags = _FLAG_CRITICAL if section.critical else 0
        crc = zlib.crc32(section.data)
        header += _ENTRY.pack(int(section.type), flags, offset, len(section.data), crc, 0)
        offset += len(section.data)
    header += _CRC.pack(zlib.crc32(header))
    return b"".join([bytes(header), *(s.data for s in sections)])


@dataclass(frozen=True)
class SectionEntry:
    """One row of the section table, as checked by :func:`parse_header` (data not yet read)."""

    type: int
    critical: bool
    offset: int
    length: int
    crc32: int


@dataclass(frozen=True)
class Header:
    """The fixed header and the section table of a file, checked against the file's size."""

    writer_version: tuple[int, int]
    reader_version: tuple[int, int]
    entries: tuple[SectionEntry, ...]
    size: int


#: Bytes a reader needs from the start of a file to parse any valid header (64 sections).
MAX_HEADER_BYTES: Final = HEADER_FIXED_BYTES + SECTION_ENTRY_BYTES * MAX_SECTIONS + _CRC.size


def parse_header(head: bytes | memoryview, size: int, *, name: str = "<bytes>") -> Header:
    """Checks 1–9 of FORMAT.md on the first bytes of a file (``head``: at least
    ``min(size, MAX_HEADER_BYTES)`` of them) and the file's total ``size``.

    A lazy reader calls this on the head alone and reads sections later, by offset; :func:`unpack`
    calls it on the whole image. No section data is touched here.
    """
    view = memoryview(head).cast("B") if not isinstance(head, bytes) else memoryview(head)
    if len(view) < min(size, MAX_HEADER_BYTES):
        raise ValueError("parse_header needs min(size, MAX_HEADER_BYTES) bytes of the file")

    # 1. magic (on whatever bytes exist), then the fixed header length
    head8 = bytes(view[: len(MAGIC)])
    if head8 != MAGIC[: len(head8)]:
        raise NotAnNvcFileError(f"{name}: not an .nvc file (magic bytes {head8[:8]!r} are wrong)")
    if size < HEADER_FIXED_BYTES:
        what = "empty" if size == 0 else f"only {size} bytes"
        raise TruncatedFileError(
            f"{name}: truncated: file is {what}, the header alone needs {HEADER_FIXED_BYTES}"
        )
    if size > MAX_FILE_BYTES:
        raise MalformedFileError(
            f"{name}: file is {size} bytes, more than the limit {MAX_FILE_BYTES}"
        )
    _magic, w_major, w_minor, r_major, r_minor, count, reserved = _FIXED.unpack_from(view, 0)

    # 2. version, before the checksum, so a future header layout still gets this message
    if (r_major, r_minor) > FORMAT_VERSION:
        raise UnsupportedVersionError(
            f"{name} needs an nvc reader >= {r_major}.{r_minor}; this is "
            f"{FORMAT_VERSION[0]}.{FORMAT_VERSION[1]} (upgrade nvcodec)"
        )

    # 3. section count, then the header length it implies
    if not 1 <= count <= MAX_SECTIONS:
        raise MalformedFileError(f"{name}: section count is {count}, expected 1..{MAX_SECTIONS}")
    table_end = HEADER_FIXED_BYTES + SECTION_ENTRY_BYTES * count
    data_start = table_end + _CRC.size
    if size < data_start:
        raise TruncatedFileError(
            f"{name}: truncated: header with {count} sections needs {data_start} bytes, "
            f"file has {size}"
        )

    # 4. header checksum
    (stored_crc,) = _CRC.unpack_from(view, table_end)
    actual_crc = zlib.crc32(view[:table_end])
    if stored_crc != actual_crc:
        raise ChecksumError(
            f"{name}: header checksum mismatch (stored {stored_crc:#010x}, "
            f"computed {actual_crc:#010x})"
        )

    # 5. header fields that the checksum vouches for but that must still make sense
    if reserved != 0:
        raise MalformedFileError(f"{name}: reserved header field is {reserved}, expected 0")
    if r_major < 1:
        raise MalformedFileError(f"{name}: reader version {r_major}.{r_minor} is below 1.0")
    if (w_major, w_minor) < (r_major, r_minor):
        raise MalformedFileError(
            f"{name}: writer version {w_major}.{w_minor} is older than the reader version "
            f"{r_major}.{r_minor} it demands"
        )
    entries = _parse_table(view, count, data_start, size, name)
    return Header((w_major, w_minor), (r_major, r_minor), entries, size)


def _parse_table(
    view: memoryview, count: int, data_start: int, size: int, name: str
) -> tuple[SectionEntry, ...]:
    """6. section table: flags, reserved, bounds, tiling, duplicates."""
    entries: list[SectionEntry] = []
    seen: set[int] = set()
    expected = data_start
    for i in range(count):
        t, flags, offset, length, crc, ent_reserved = _ENTRY.unpack_from(
            view, HEADER_FIXED_BYTES + SECTION_ENTRY_BYTES * i
        )
        label = f"section {i} ({_type_name(t)})"
        if flags & ~_FLAG_CRITICAL:
            raise MalformedFileError(
                f"{name}: {label} has unknown flag bits {flags & ~_FLAG_CRITICAL:#x}, expected 0"
            )
        if ent_reserved != 0:
            raise MalformedFileError(
                f"{name}: {label} reserved field is {ent_reserved}, expected 0"
            )
        if length > MAX_SECTION_BYTES:
            raise MalformedFileError(
                f"{name}: {label} length {length} exceeds the limit {MAX_SECTION_BYTES}"
            )
        if offset != expected:
            kind = "gap before" if offset > expected else "overlap at"
            raise MalformedFileError(
                f"{name}: {label} {kind} offset {offset} (expected {expected})"
            )
        expected = offset + length
        if expected > size:
            raise TruncatedFileError(
                f"{name}: truncated: {label} ends at byte {expected}, file has {size}"
            )
        if t in seen:
            raise MalformedFileError(f"{name}: duplicate {_type_name(t)} section")
        seen.add(t)
        entries.append(SectionEntry(t, bool(flags & _FLAG_CRITICAL), offset, length, crc))
    if expected != size:
        raise MalformedFileError(
            f"{name}: {size - expected} unexpected trailing bytes after the last section "
            f"(sections end at {expected}, file has {size})"
        )
    return tuple(entries)


def check_section(entry: SectionEntry, chunk: bytes | memoryview, index: int, name: str) -> bool:
    """7. a section's checksum, then whether this reader knows its type: True to keep it,
    False to skip it (unknown and optional); an unknown critical type is refused."""
    actual = zlib.crc32(chunk)
    if actual != entry.crc32:
        raise ChecksumError(
            f"{name}: {_type_name(entry.type)} section (#{index}) checksum mismatch "
            f"(stored {entry.crc32:#010x}, computed {actual:#010x})"
        )
    try:
        SectionType(entry.type)
    except ValueError:
        if entry.critical:
            raise UnknownSectionError(
                f"{name}: unknown critical section type {entry.type} (#{index}); this reader "
                f"({FORMAT_VERSION[0]}.{FORMAT_VERSION[1]}) cannot decode it safely"
            ) from None
        return False  # unknown optional: skipped by design
    return True


def unpack(data: bytes, *, name: str = "<bytes>") -> Container:
    """Parse and fully verify a file image; ``name`` labels every error message.

    Every check happens on explicit bounds before any slice or allocation that depends on a
    value read from the file. See FORMAT.md, "Reader checks", for the order.
    """
    view = memoryview(data).cast("B") if not isinstance(data, bytes) else memoryview(data)
    header = parse_header(view, len(view), name=name)
    sections: list[Section] = []
    for i, entry in enumerate(header.entries):
        chunk = view[entry.offset : entry.offset + entry.length]
        if check_section(entry, chunk, i, name):
            sections.append(Section(SectionType(entry.type), bytes(chunk), entry.critical))
    return Container(
        writer_version=header.writer_version,
        reader_version=header.reader_version,
        sections=tuple(sections),
        size=header.size,
        name=name,
    )
