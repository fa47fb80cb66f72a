"""pack/unpack: round trips and one test per reader rule (each raises its specific error)."""

from __future__ import annotations

import struct
import zlib

import pytest

import bitstream as bs
from bitstream import SectionType as T

MAGIC = b"\x89NVC\r\n\x1a\n"


def build_raw(
    entries: list[tuple[int, int, int, int, int, int]] | None = None,
    payloads: list[bytes] | None = None,
    *,
    magic: bytes = MAGIC,
    writer: tuple[int, int] = (1, 0),
    reader: tuple[int, int] = (1, 0),
    count: int | None = None,
    reserved: int = 0,
    header_crc: int | None = None,
    trailer: bytes = b"",
) -> bytes:
    """An independent encoder of the FORMAT.md layout that can also write invalid files.

    ``entries`` rows are (type, flags, offset, length, crc, reserved); ``None`` fields are not
    supported, so tests compute them with :func:`tiled` below.
    """
    entries = entries or []
    n = len(entries) if count is None else count
    head = magic + struct.pack("<HHHHII", *writer, *reader, n, reserved)
    for e in entries:
        head += struct.pack("<IIQQII", *e)
    crc = zlib.crc32(head) if header_crc is None else header_crc
    return head + struct.pack("<I", crc) + b"".join(payloads or []) + trailer


def tiled(
    specs: list[tuple[int, int, bytes]], *, entry_reserved: int = 0
) -> tuple[list[tuple[int, int, int, int, int, int]], list[bytes]]:
    """Correct table rows for (type, flags, payload) specs, tiled in order."""
    offset = 24 + 32 * len(specs) + 4
    rows = []
    for t, flags, data in specs:
        rows.append((t, flags, offset, len(data), zlib.crc32(data), entry_reserved))
        offset += len(data)
    return rows, [d for _, _, d in specs]


SECTIONS = [
    bs.Section(T.METADATA, b"meta"),
    bs.Section(T.TENSOR_TABLE, b"table!"),
    bs.Section(T.TENSOR_DATA, bytes(range(200))),
]


def test_pack_matches_independent_layout() -> None:
    rows, payloads = tiled([(int(s.type), 1, s.data) for s in SECTIONS])
    assert bs.pack(SECTIONS) == build_raw(rows, payloads, writer=bs.FORMAT_VERSION)


def test_round_trip() -> None:
    blob = bs.pack(SECTIONS)
    c = bs.unpack(blob, name="x.nvc")
    assert c.sections == tuple(SECTIONS)
    assert c.size == len(blob)
    assert c.writer_version == bs.FORMAT_VERSION
    assert c.reader_version == (1, 0)
    assert c.get(T.TENSOR_TABLE).data == b"table!"
    assert c.find(99) is None
    assert all(isinstance(s.type, T) for s in c.sections)


def test_empty_section_and_optional_known_section() -> None:
    blob = bs.pack([bs.Section(T.METADATA, b""), bs.Section(T.TENSOR_DATA, b"x", critical=False)])
    c = bs.unpack(blob)
    assert c.get(T.METADATA).data == b""
    assert c.get(T.TENSOR_DATA).critical is False


def test_missing_section_error_names_file_and_type() -> None:
    c = bs.unpack(bs.pack([bs.Section(T.TENSOR_DATA, b"")]), name="clip.nvc")
    with pytest.raises(bs.MissingSectionError, match=r"^clip\.nvc: no METADATA section$"):
        c.get(T.METADATA)


@pytest.mark.parametrize(
    ("sections", "kwargs"),
    [
        ([], {}),
        ([bs.Section(1, b"")] * 2, {}),
        ([bs.Section(i, b"") for i in range(1, 66)], {}),
        ([bs.Section(0, b"")], {}),
        ([bs.Section(1 << 32, b"")], {}),
        ([bs.Section(-1, b"")], {}),
        ([bs.Section(1, b"")], {"reader_version": (2, 0)}),
        ([bs.Section(1, b"")], {"reader_version": (1, 4)}),
        ([bs.Section(1, b"")], {"reader_version": (0, 9)}),
        ([bs.Section(1, b"")], {"reader_version": (1, -1)}),
    ],
)
def test_pack_validates(sections: list[bs.Section], kwargs: dict[str, tuple[int, int]]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - message varies by case
        bs.pack(sections, **kwargs)


def test_pack_rejects_non_bytes() -> None:
    with pytest.raises(TypeError):
        bs.pack([bs.Section(1, "text")])  # type: ignore[arg-type]


# --- reader rules ---------------------------------------------------------------------------


@pytest.mark.parametrize("blob", [b"", b"\x89", MAGIC[:7], MAGIC, MAGIC + b"\x01\x00" * 4])
def test_short_file_with_magic_prefix_is_truncated(blob: bytes) -> None:
    with pytest.raises(bs.TruncatedFileError, match=r"^f\.nvc: truncated"):
        bs.unpack(blob, name="f.nvc")


@pytest.mark.parametrize("blob", [b"x", b"GIF89a", b"\x89NVX", b"PK\x03\x04" + bytes(100)])
def test_wrong_magic(blob: bytes) -> None:
    with pytest.raises(bs.NotAnNvcFileError, match=r"^f\.nvc: not an \.nvc file"):
        bs.unpack(blob, name="f.nvc")


@pytest.mark.parametrize("version", [(2, 0), (1, 4), (65535, 65535)])
def test_future_version(version: tuple[int, int]) -> None:
    rows, payloads = tiled([(1, 1, b"m")])
    blob = build_raw(rows, payloads, writer=version, reader=version)
    msg = rf"^clip\.nvc needs an nvc reader >= {version[0]}\.{version[1]}; this is 1\.3"
    with pytest.raises(bs.UnsupportedVersionError, match=msg + r" \(upgrade nvcodec\)$"):
        bs.unpack(blob, name="clip.nvc")


def test_future_version_wins_over_broken_rest_of_header() -> None:
    """A v2 file may lay its header out differently; the user must still see 'upgrade'."""
    blob = build_raw(reader=(2, 0), writer=(2, 0), count=0, header_crc=0) + b"?" * 50
    with pytest.raises(bs.UnsupportedVersionError):
        bs.unpack(blob)


def test_newer_writer_minor_with_old_reader_requirement_is_fine() -> None:
    rows, payloads = tiled([(1, 1, b"m")])
    c = bs.unpack(build_raw(rows, payloads, writer=(1, 7), reader=(1, 0)))
    assert c.writer_version == (1, 7)


@pytest.mark.parametrize("count", [0, 65, 2**32 - 1])
def test_bad_section_count(count: int) -> None:
    with pytest.raises(bs.MalformedFileError, match="section count"):
        bs.unpack(build_raw(count=count) + bytes(64))


def test_header_shorter_than_table() -> None:
    rows, payloads = tiled([(1, 1, b"a"), (2, 1, b"b")])
    blob = build_raw(rows, payloads)
    with pytest.raises(bs.TruncatedFileError, match="header with 2 sections"):
        bs.unpack(blob[:60])


def test_header_checksum() -> None:
    rows, payloads = tiled([(1, 1, b"abc")])
    blob = build_raw(rows, payloads, header_crc=12345)
    with pytest.raises(bs.ChecksumError, match="header checksum mismatch"):
        bs.unpack(blob)


def test_section_checksum_names_section() -> None:
    blob = bytearray(bs.pack(SECTIONS))
    blob[-1] ^= 0x01
    with pytest.raises(bs.ChecksumError, match=r"^a\.nvc: TENSOR_DATA section \(#2\) checksum"):
        bs.unpack(bytes(blob), name="a.nvc")


def test_reserved_header_field() -> None:
    rows, payloads = tiled([(1, 1, b"abc")])
    with pytest.raises(bs.MalformedFileError, match="reserved header field"):
        bs.unpack(build_raw(rows, payloads, reserved=1))


def test_reserved_entry_field() -> None:
    rows, payloads = tiled([(1, 1, b"abc")], entry_reserved=7)
    with pytest.raises(bs.MalformedFileError, match="reserved field is 7"):
        bs.unpack(build_raw(rows, payloads))


def test_unknown_flag_bits() -> None:
    rows, payloads = tiled([(1, 3, b"abc")])
    with pytest.raises(bs.MalformedFileError, match="unknown flag bits 0x2"):
        bs.unpack(build_raw(rows, payloads))


@pytest.mark.parametrize(("reader", "writer"), [((0, 5), (1, 0)), ((1, 0), (0, 9))])
def test_inconsistent_versions(reader: tuple[int, int], writer: tuple[int, int]) -> None:
    rows, payloads = tiled([(1, 1, b"abc")])
    with pytest.raises(bs.MalformedFileError, match="version"):
        bs.unpack(build_raw(rows, payloads, reader=reader, writer=writer))


def test_trailing_bytes() -> None:
    rows, payloads = tiled([(1, 1, b"abc")])
    with pytest.raises(bs.MalformedFileError, match="3 unexpected trailing bytes"):
        bs.unpack(build_raw(rows, payloads, trailer=b"xyz"))


def test_truncated_section_data() -> None:
    blob = bs.pack(SECTIONS)
    with pytest.raises(bs.TruncatedFileError, match="TENSOR_DATA"):
        bs.unpack(blob[:-1])


@pytest.mark.parametrize(("delta", "kind"), [(1, "gap before"), (-1, "overlap at")])
def test_gap_and_overlap(delta: int, kind: str) -> None:
    rows, payloads = tiled([(1, 1, b"abcd"), (2, 1, b"efgh")])
    t, f, off, ln, crc, r = rows[1]
    rows[1] = (t, f, off + delta, ln, crc, r)
    with pytest.raises(bs.MalformedFileError, match=kind):
        bs.unpack(build_raw(rows, payloads, trailer=b"\0" * max(delta, 0)))


def test_first_section_must_start_after_header() -> None:
    rows, payloads = tiled([(1, 1, b"abcd")])
    t, f, _, ln, crc, r = rows[0]
    rows[0] = (t, f, 0, ln, crc, r)
    with pytest.raises(bs.MalformedFileError, match="overlap at offset 0"):
        bs.unpack(build_raw(rows, payloads))


@pytest.mark.parametrize("length", [2**63, 2**64 - 1, (1 << 30) + 1])
def test_huge_declared_length_is_refused_without_allocating(length: int) -> None:
    rows, payloads = tiled([(1, 1, b"abcd")])
    t, f, off, _, crc, r = rows[0]
    rows[0] = (t, f, off, length, crc, r)
    with pytest.raises(bs.MalformedFileError, match="exceeds the limit"):
        bs.unpack(build_raw(rows, payloads))


def test_huge_offset() -> None:
    rows, payloads = tiled([(1, 1, b"abcd")])
    t, f, _, ln, crc, r = rows[0]
    rows[0] = (t, f, 2**64 - 1, ln, crc, r)
    with pytest.raises(bs.MalformedFileError, match="gap before"):
        bs.unpack(build_raw(rows, payloads))


def test_duplicate_types() -> None:
    rows, payloads = tiled([(1, 1, b"a"), (1, 1, b"b")])
    with pytest.raises(bs.MalformedFileError, match="duplicate METADATA section"):
        bs.unpack(build_raw(rows, payloads))


def test_duplicate_unknown_types() -> None:
    rows, payloads = tiled([(77, 0, b"a"), (77, 0, b"b")])
    with pytest.raises(bs.MalformedFileError, match="duplicate type 77 section"):
        bs.unpack(build_raw(rows, payloads))


def test_unknown_critical_section_refused() -> None:
    blob = bs.pack([bs.Section(T.METADATA, b"m"), bs.Section(1000, b"future", critical=True)])
    with pytest.raises(bs.UnknownSectionError, match="unknown critical section type 1000"):
        bs.unpack(blob, name="f.nvc")


def test_unknown_optional_section_skipped() -> None:
    blob = bs.pack(
        [
            bs.Section(T.METADATA, b"m"),
            bs.Section(1000, b"future", critical=False),
            bs.Section(T.TENSOR_DATA, b"d"),
        ]
    )
    c = bs.unpack(blob)
    assert [s.type for s in c.sections] == [T.METADATA, T.TENSOR_DATA]
    assert c.size == len(blob)


def test_unknown_optional_section_is_still_checksummed() -> None:
    blob = bytearray(
        bs.pack([bs.Section(T.METADATA, b"m"), bs.Section(1000, b"future", critical=False)])
    )
    blob[-1] ^= 0x80
    with pytest.raises(bs.ChecksumError, match="type 1000"):
        bs.unpack(bytes(blob))


def test_max_sections_accepted() -> None:
    sections = [bs.Section(i, bytes([i]), critical=False) for i in range(1, 65)]
    c = bs.unpack(bs.pack(sections))
    assert [s.type for s in c.sections] == [1, 2, 3, 4, 5]


def test_accepts_bytearray_and_memoryview() -> None:
    blob = bs.pack(SECTIONS)
    assert bs.unpack(bytearray(blob)).sections == tuple(SECTIONS)  # type: ignore[arg-type]
    assert bs.unpack(memoryview(blob)).sections == tuple(SECTIONS)  # type: ignore[arg-type]
