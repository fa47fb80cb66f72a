"""Segmented ``.nvc`` files (format 1.2): a long video as independently decodable segments.

A segmented file's METADATA describes the whole video (geometry, rate, colour, frame count) and
the encode; SEGMENT_INDEX and SEGMENT_DATA (:mod:`bitstream.segments`) hold the segments, each a
complete one-segment ``.nvc`` image with its own model. :func:`open_video` opens either kind of
file as a :class:`NvcVideo`: a file without segments (every file before 1.2, and any encode
without ``--segment``) is a video of one segment, so the decoder has one code path.

Opening reads the header, METADATA and the index only; :meth:`NvcVideo.segment` reads, verifies
and validates one segment's bytes when it is needed, so a range decode of a long file reads only
the segments that hold its frames, and memory never holds more than one segment's tensors.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bitstream import (
    Container,
    MalformedFileError,
    Section,
    SectionFile,
    SectionType,
    SegmentEntry,
    check_segment,
    decode_metadata,
    decode_segment_index,
    encode_metadata,
    encode_segment_index,
    open_file,
    unpack,
    write_file,
)
from bitstream.container import MAX_HEADER_BYTES, parse_header
from nvcodec.fileformat import NvcFile, StoredVideo, parse_metadata, parse_video

__all__ = [
    "SEGMENTED_READER",
    "NvcVideo",
    "open_video",
    "overhead_bytes",
    "parse_segment",
    "segmented_metadata",
    "write_segmented",
]

SEGMENTED_READER = (1, 2)
"""The oldest reader version of a segmented file (older readers say "upgrade"); a file declares
the latest of it and its segments' own (1.3 for channels-last segments)."""


@dataclass
class NvcVideo:
    """An open ``.nvc`` file of one or more segments; close it (or use ``with``) when done."""

    name: str
    video: StoredVideo
    entries: tuple[SegmentEntry, ...]
    size: int
    writer_version: tuple[int, int]
    reader_version: tuple[int, int]
    metadata: dict[str, Any] = field(default_factory=dict)
    _file: SectionFile | None = None
    _single: NvcFile | None = None

    @property
    def segmented(self) -> bool:
        return self._single is None

    def segment(self, index: int) -> NvcFile:
        """Segment ``index``, read, verified against the index's CRC and validated (its video
        must be the file's, its frame count the index's)."""
        if self._single is not None:
            return self._single
        assert self._file is not None
        entry = self.entries[index]
        image = self._file.read_span(SectionType.SEGMENT_DATA, entry.offset, entry.length)
        check_segment(entry, image, index, self.name)
        return parse_segment(image, self.video, entry.frame_count, f"{self.name} (segment {index})")

    def segment_bytes(self, index: int) -> int:
        return self.entries[index].length if self.segmented else self.size

    def close(self) -> None:
        if self._file is not None:
            self._file.close()

    def __enter__(self) -> NvcVideo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def parse_segment(image: bytes, video: StoredVideo, frame_count: int, label: str) -> NvcFile:
    """A segment image, verified and validated: a one-segment file (no segment sections of its
    own) whose video is ``video``'s with ``frame_count`` frames. The decoder checks every segment
    it reads with this, and the encoder every segment before it is stored or assembled."""
    container = unpack(image, name=label)
    for nested in (SectionType.SEGMENT_INDEX, SectionType.SEGMENT_DATA):
        if container.find(nested) is not None:
            raise MalformedFileError(f"{label}: a segment cannot hold segments")
    nvc = parse_metadata(container, label)
    stored = nvc.video
    expected = (video.width, video.height, frame_count, video.fps)
    if (stored.width, stored.height, stored.frame_count, stored.fps) != expected:
        raise MalformedFileError(
            f"{label}: its video ({stored.width}x{stored.height}, {stored.frame_count} "
            f"frames, {stored.fps} fps) disagrees with the file's and the index's"
        )
    if stored.colour != video.colour:
        raise MalformedFileError(f"{label}: its colour disagrees with the file's")
    return nvc


def open_video(path: str | os.PathLike[str]) -> NvcVideo:
    """Open and validate ``path``: a segmented file's header, METADATA and index, or a whole
    one-segment file (raises :class:`bitstream.NvcError` subclasses)."""
    name = os.fspath(path)
    handle = open_file(path)
    try:
        return _open(handle, name)
    except BaseException:
        handle.close()
        raise


def _open(handle: SectionFile, name: str) -> NvcVideo:
    header = handle.header
    data_length = handle.span_length(SectionType.SEGMENT_DATA)
    index = handle.find(SectionType.SEGMENT_INDEX)
    common = dict(
        name=name,
        size=header.size,
        writer_version=header.writer_version,
        reader_version=header.reader_version,
    )
    if index is None and data_length is None:
        container = Container(
            header.writer_version,
            header.reader_version,
            tuple(handle.sections.values()),
            header.size,
            name,
        )
        handle.close()
        nvc = parse_metadata(container, name)
        entry = SegmentEntry(0, nvc.video.frame_count, 0, header.size, 0)
        return NvcVideo(
            video=nvc.video, entries=(entry,), metadata=nvc.metadata(), _single=nvc, **common
        )  # type: ignore[arg-type]
    if index is None or data_length is None:
        missing = "SEGMENT_INDEX" if index is None else "SEGMENT_DATA"
        raise MalformedFileError(f"{name}: no {missing} section")
    for tensors in (SectionType.TENSOR_TABLE, SectionType.TENSOR_DATA):
        if handle.find(tensors) is not None:
            raise MalformedFileError(f"{name}: a segmented file with a {tensors.name} section")
    meta = decode_metadata(_required(handle, SectionType.METADATA, name).data, name=name)
    try:
        entries = decode_segment_index(index.data, data_length)
    except MalformedFileError as exc:
        raise MalformedFileError(f"{name}: {exc}") from None
    video = parse_video(meta, name)
    declared = (
        meta.get("segments", {}).get("count") if isinstance(meta.get("segments"), dict) else None
    )
    if declared != len(entries) or entries[-1].stop != video.frame_count:
        raise MalformedFileError(
            f"{name}: the segment index ({len(entries)} segments, {entries[-1].stop} frames) "
            f"disagrees with the metadata ({declared} segments, {video.frame_count} frames)"
        )
    return NvcVideo(video=video, entries=entries, metadata=meta, _file=handle, **common)  # type: ignore[arg-type]


def _required(handle: SectionFile, type: int, name: str) -> Section:
    section = handle.find(type)
    if section is None:
        raise MalformedFileError(f"{name}: no {SectionType(type).name} section")
    return section


def segmented_metadata(video: StoredVideo, count: int, encoder: dict[str, Any]) -> dict[str, Any]:
    """The METADATA object of a segmented file."""
    return {"video": video.to_dict(), "segments": {"count": count}, "encoder": encoder}


def overhead_bytes(video: StoredVideo, count: int, encoder: dict[str, Any]) -> int:
    """Bytes of a segmented file outside its segments (header, table, METADATA, an index of
    ``count`` segments at its longest), for rate control before the segments exist."""
    index = 3 + count * (3 + 5 + 4)  # varints of at most 2^20 frames and 2^30 bytes, a CRC
    meta = encode_metadata(segmented_metadata(video, count, encoder))
    return 28 + 3 * 32 + len(meta) + index


def _reader_version(image: bytes) -> tuple[int, int]:
    """The reader version a segment image declares (its header only; the encode that wrote the
    image verified the rest)."""
    return parse_header(image[:MAX_HEADER_BYTES], len(image)).reader_version


def write_segmented(
    path: str | os.PathLike[str],
    video: StoredVideo,
    segments: Sequence[tuple[int, bytes]],
    encoder: dict[str, Any],
    *,
    overwrite: bool,
) -> int:
    """Assemble one-segment images (``(frame_count, bytes)`` in frame order) into a segmented
    file, written atomically; returns its size. The images are the files each segment's encode
    wrote, verified there; their frame counts must add up to the video's."""
    if sum(frames for frames, _ in segments) != video.frame_count:
        raise ValueError("segment frame counts do not add up to the video's")
    index, data = encode_segment_index(segments)
    meta = segmented_metadata(video, len(segments), encoder)
    sections = [
        Section(SectionType.METADATA, encode_metadata(meta)),
        Section(SectionType.SEGMENT_INDEX, index),
        Section(SectionType.SEGMENT_DATA, data),
    ]
    reader = max([SEGMENTED_READER, *(_reader_version(image) for _, image in segments)])
    return write_file(path, sections, overwrite=overwrite, reader_version=reader)
