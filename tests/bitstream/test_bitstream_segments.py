"""The segment index (format 1.2) and reading a file by parts: round trip, every kind of damage
refused with its own error, and the lazy reader agreeing with the whole-file reader."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest

import bitstream as bs
from bitstream import SectionType as T

SEGMENTS = [(5, b"first image"), (3, b"second"), (1, b"x")]


def test_index_round_trip_and_spans() -> None:
    index, data = bs.encode_segment_index(SEGMENTS)
    entries = bs.decode_segment_index(index, len(data))
    assert [(e.first_frame, e.frame_count) for e in entries] == [(0, 5), (5, 3), (8, 1)]
    for entry, (_, image) in zip(entries, SEGMENTS, strict=True):
        assert data[entry.offset : entry.offset + entry.length] == image
        bs.check_segment(entry, image, 0, "f.nvc")
    assert [i for i, _ in bs.segments_for(entries, 4, 6)] == [0, 1]
    assert [i for i, _ in bs.segments_for(entries, 8, 9)] == [2]


def _varint(v: int) -> bytes:
    w = bs.ByteWriter()
    w.varint(v)
    return w.getvalue()


@pytest.mark.parametrize(
    ("index", "data_length", "message"),
    [
        (b"", 10, "truncated"),
        (_varint(0), 0, "no segments"),
        (_varint(70_000), 10, "more than the limit"),
        (_varint(1000) + b"\x01" * 20, 10, "need at least"),
        (_varint(1) + _varint(0) + _varint(3) + b"\0" * 4, 3, "is empty"),
        (_varint(1) + _varint(2) + _varint(0) + b"\0" * 4, 3, "is empty"),
        (_varint(1) + _varint(2) + _varint(5) + b"\0" * 4, 3, "more than the limit"),
        (_varint(2) + (_varint(2) + _varint(2) + b"\0" * 4) * 2, 3, "ends at byte 4"),
        (_varint(1) + _varint(2) + _varint(2) + b"\0" * 4, 3, "cover 2 of the 3"),
        (_varint(1) + _varint(2) + _varint(3) + b"\0" * 4 + b"!", 3, "trailing"),
    ],
)
def test_damaged_index_refused(index: bytes, data_length: int, message: str) -> None:
    with pytest.raises(bs.MalformedFileError, match=message):
        bs.decode_segment_index(index, data_length)


def test_segment_checksum_mismatch() -> None:
    index, data = bs.encode_segment_index(SEGMENTS)
    entry = bs.decode_segment_index(index, len(data))[1]
    with pytest.raises(bs.ChecksumError, match=r"^f\.nvc: segment 1 checksum mismatch"):
        bs.check_segment(entry, b"secOnd", 1, "f.nvc")


def test_writer_refuses_what_readers_refuse() -> None:
    with pytest.raises(ValueError, match="segments"):
        bs.encode_segment_index([])
    with pytest.raises(ValueError, match="frames"):
        bs.encode_segment_index([(0, b"a")])
    with pytest.raises(ValueError, match="empty"):
        bs.encode_segment_index([(1, b"")])


def _file(tmp_path: Path, sections: list[bs.Section]) -> Path:
    path = tmp_path / "f.nvc"
    bs.write_file(path, sections, reader_version=(1, 2))
    return path


def test_open_file_reads_small_sections_and_spans_lazily(tmp_path: Path) -> None:
    index, data = bs.encode_segment_index(SEGMENTS)
    meta = bs.encode_metadata({"video": {}})
    path = _file(
        tmp_path,
        [
            bs.Section(T.METADATA, meta),
            bs.Section(T.SEGMENT_INDEX, index),
            bs.Section(T.SEGMENT_DATA, data),
            bs.Section(77, b"optional", critical=False),
        ],
    )
    with bs.open_file(path) as f:
        assert f.find(T.METADATA) == bs.Section(T.METADATA, meta)
        assert f.find(T.SEGMENT_DATA) is None  # read by parts only
        assert f.span_length(T.SEGMENT_DATA) == len(data)
        assert f.read_span(T.SEGMENT_DATA, 11, 6) == b"second"
        with pytest.raises(ValueError, match="outside"):
            f.read_span(T.SEGMENT_DATA, 15, 10)
        assert f.find(77) is None
    assert bs.read_file(path).get(T.SEGMENT_INDEX).data == index


@pytest.mark.parametrize("where", ["header", "index", "trailing", "truncated"])
def test_open_file_refuses_damage_like_read_file(tmp_path: Path, where: str) -> None:
    index, data = bs.encode_segment_index(SEGMENTS)
    path = _file(tmp_path, [bs.Section(T.SEGMENT_INDEX, index), bs.Section(T.SEGMENT_DATA, data)])
    blob = bytearray(path.read_bytes())
    if where == "header":
        blob[30] ^= 1
    elif where == "index":
        blob[28 + 2 * 32] ^= 1  # the index is the first section
    elif where == "trailing":
        blob += b"!"
    else:
        blob = blob[:-1]
    path.write_bytes(bytes(blob))
    with pytest.raises(bs.NvcError) as whole:
        bs.read_file(path)
    with pytest.raises(type(whole.value)):
        bs.open_file(path)


def test_lazy_reader_skips_segment_data_checksum_but_segments_are_checked(tmp_path: Path) -> None:
    """SEGMENT_DATA's own CRC is not read by parts; the index's per-segment CRCs, which tile
    it, catch a flipped byte in whichever segment is read."""
    index, data = bs.encode_segment_index(SEGMENTS)
    path = _file(tmp_path, [bs.Section(T.SEGMENT_INDEX, index), bs.Section(T.SEGMENT_DATA, data)])
    blob = bytearray(path.read_bytes())
    blob[-2] ^= 0xFF  # the last byte of the second segment ("second"; the third is "x")
    path.write_bytes(bytes(blob))
    with pytest.raises(bs.ChecksumError):
        bs.read_file(path)
    with bs.open_file(path) as f:
        section = f.find(T.SEGMENT_INDEX)
        assert section is not None
        entries = bs.decode_segment_index(section.data, len(data))
        good, bad = entries[2], entries[1]
        bs.check_segment(good, f.read_span(T.SEGMENT_DATA, good.offset, good.length), 2, "f")
        image = f.read_span(T.SEGMENT_DATA, bad.offset, bad.length)
        assert zlib.crc32(image) != bad.crc32
        with pytest.raises(bs.ChecksumError, match="segment 1"):
            bs.check_segment(bad, image, 1, "f.nvc")
