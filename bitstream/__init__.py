"""``bitstream``: the ``.nvc`` v1 container format (no torch, no numpy).

The container is a checksummed, versioned list of typed sections; FORMAT.md in this package is the
normative byte-level specification. This package owns everything about parsing untrusted ``.nvc``
bytes safely: every length is bounded before allocation and every kind of damage raises a specific
:class:`NvcError` subclass with a one-line message naming the file.
"""

from __future__ import annotations

from .binary import ByteReader, ByteWriter
from .container import (
    FORMAT_VERSION,
    MAGIC,
    MAX_FILE_BYTES,
    MAX_SECTION_BYTES,
    MAX_SECTIONS,
    Container,
    Section,
    SectionType,
    pack,
    unpack,
)
from .errors import (
    ChecksumError,
    MalformedFileError,
    MissingSectionError,
    NotAnNvcFileError,
    NvcError,
    NvcFileExistsError,
    NvcFileNotFoundError,
    NvcIOError,
    NvcIsADirectoryError,
    TruncatedFileError,
    UnknownSectionError,
    UnsupportedVersionError,
)
from .io import SectionFile, open_file, read_file, write_file
from .metadata import MAX_METADATA_BYTES, decode_metadata, encode_metadata
from .segments import (
    MAX_SEGMENTS,
    SegmentEntry,
    check_segment,
    decode_segment_index,
    encode_segment_index,
    segments_for,
)

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "MAX_FILE_BYTES",
    "MAX_METADATA_BYTES",
    "MAX_SECTIONS",
    "MAX_SECTION_BYTES",
    "MAX_SEGMENTS",
    "ByteReader",
    "ByteWriter",
    "ChecksumError",
    "Container",
    "MalformedFileError",
    "MissingSectionError",
    "NotAnNvcFileError",
    "NvcError",
    "NvcFileExistsError",
    "NvcFileNotFoundError",
    "NvcIOError",
    "NvcIsADirectoryError",
    "Section",
    "SectionFile",
    "SectionType",
    "SegmentEntry",
    "TruncatedFileError",
    "UnknownSectionError",
    "UnsupportedVersionError",
    "check_segment",
    "decode_metadata",
    "decode_segment_index",
    "encode_metadata",
    "encode_segment_index",
    "open_file",
    "pack",
    "read_file",
    "segments_for",
    "unpack",
    "write_file",
]
