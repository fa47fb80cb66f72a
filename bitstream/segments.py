"""The segment index of a segmented ``.nvc`` file (format 1.2): where each segment's bytes and
frames are.

A segmented file stores a long video as independently decodable segments, the INR analogue of a
closed GOP: each is a complete one-segment ``.nvc`` image (its own header, METADATA, tensors and
checksums) inside the SEGMENT_DATA section, back to back. SEGMENT_INDEX lists, per segment, its
frame count, its byte length and the CRC-32 of its bytes; first frames and offsets are the
running sums, so an index has exactly one encoding and segments cannot overlap or leave gaps.
A reader that decodes frames ``A:B`` reads the index, then only the segments that hold those
frames, verifying each against its CRC before parsing it. FORMAT.md, "Segmented files", is the
normative description.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from .binary import ByteReader, ByteWriter
from .container import MAX_SECTION_BYTES
from .errors import ChecksumError, MalformedFileError

__all__ = [
    "MAX_SEGMENTS",
    "MAX_SEGMENT_FRAMES",
    "SegmentEntry",
    "check_segment",
    "decode_segment_index",
    "encode_segment_index",
    "segments_for",
]

MAX_SEGMENTS: Final = 65_536
"""Most segments in one file (an hour of 30 fps video in 1.7-frame segments)."""
MAX_SEGMENT_FRAMES: Final = 1 << 20
"""Most frames in one segment (the decoder's own frame limit is lower)."""


@dataclass(frozen=True)
class SegmentEntry:
    """One segment: stored frames ``[first_frame, first_frame + frame_count)`` and its bytes at
    ``offset`` (from the start of SEGMENT_DATA), ``length`` long, with CRC-32 ``crc32``."""

    first_frame: int
    frame_count: int
    offset: int
    length: int
    crc32: int

    @property
    def stop(self) -> int:
        return self.first_frame + self.frame_count


def encode_segment_index(segments: Sequence[tuple[int, bytes]]) -> tuple[bytes, bytes]:
    """``(frame_count, image)`` per segment → the SEGMENT_INDEX and SEGMENT_DATA sections."""
    if not 1 <= len(segments) <= MAX_SEGMENTS:
        raise ValueError(f"a file holds 1..{MAX_SEGMENTS} segments, got {len(segments)}")
    out = ByteWriter()
    out.varint(len(segments))
    for frames, image in segments:
        if not 1 <= frames <= MAX_SEGMENT_FRAMES:
            raise ValueError(f"a segment holds 1..{MAX_SEGMENT_FRAMES} frames, got {frames}")
        if not image:
            raise ValueError("a segment image cannot be empty")
        out.varint(frames)
        out.varint(len(image))
        out.u32(zlib.crc32(image))
    data = b"".join(image for _, image in segments)
    if len(data) > MAX_SECTION_BYTES:
        raise ValueError(f"segments total {len(data)} bytes, more than {MAX_SECTION_BYTES}")
    return out.getvalue(), data


def decode_segment_index(index: bytes, data_length: int) -> tuple[SegmentEntry, ...]:
    """Parse SEGMENT_INDEX; the segments must tile SEGMENT_DATA (``data_length`` bytes) exactly.

    Raises :class:`MalformedFileError` (naming the section) on any violation; nothing is
    allocated from a count before it is bounded by :data:`MAX_SEGMENTS` and the bytes left.
    """
    reader = ByteReader(index, what="segment index")
    count = reader.count(MAX_SEGMENTS, "segment count")
    if count == 0:
        raise MalformedFileError("segment index: no segments")
    if count * 6 > reader.remaining:  # each entry takes at least 1 + 1 + 4 bytes
        raise MalformedFileError(
            f"segment index: {count} segments need at least {6 * count} bytes, "
            f"{reader.remaining} left"
        )
    entries: list[SegmentEntry] = []
    first = offset = 0
    for i in range(count):
        frames = reader.count(MAX_SEGMENT_FRAMES, f"segment {i} frame count")
        length = reader.count(data_length, f"segment {i} length")
        crc = reader.u32()
        if frames == 0 or length == 0:
            raise MalformedFileError(f"segment index: segment {i} is empty")
        if offset + length > data_length:
            raise MalformedFileError(
                f"segment index: segment {i} ends at byte {offset + length} of the segment "
                f"data, which has {data_length}"
            )
        entries.append(SegmentEntry(first, frames, offset, length, crc))
        first, offset = first + frames, offset + length
    reader.expect_end()
    if offset != data_length:
        raise MalformedFileError(
            f"segment index: segments cover {offset} of the {data_length} bytes of segment data"
        )
    return tuple(entries)


def check_segment(entry: SegmentEntry, image: bytes, index: int, name: str) -> None:
    """Refuse a segment whose bytes do not match the index's CRC (before parsing them)."""
    actual = zlib.crc32(image)
    if actual != entry.crc32:
        raise ChecksumError(
            f"{name}: segment {index} checksum mismatch (stored {entry.crc32:#010x}, "
            f"computed {actual:#010x})"
        )


def segments_for(
    entries: Sequence[SegmentEntry], start: int, stop: int
) -> list[tuple[int, SegmentEntry]]:
    """``(index, entry)`` of the segments holding any of the stored frames ``[start, stop)``."""
    return [(i, e) for i, e in enumerate(entries) if e.first_frame < stop and e.stop > start]
