"""ByteWriter/ByteReader: exact encodings, round trips, range checks, bounded reads."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bitstream import ByteReader, ByteWriter, MalformedFileError

VARINT_CASES = [
    (0, b"\x00"),
    (1, b"\x01"),
    (127, b"\x7f"),
    (128, b"\x80\x01"),
    (300, b"\xac\x02"),
    (16383, b"\xff\x7f"),
    (16384, b"\x80\x80\x01"),
    (2**63, b"\x80" * 9 + b"\x01"),
    (2**64 - 1, b"\xff" * 9 + b"\x01"),
]


@pytest.mark.parametrize(("value", "encoded"), VARINT_CASES)
def test_varint_encoding(value: int, encoded: bytes) -> None:
    w = ByteWriter()
    w.varint(value)
    assert w.getvalue() == encoded
    r = ByteReader(encoded, what="t")
    assert r.varint() == value
    r.expect_end()


@pytest.mark.parametrize(
    ("value", "zigzag"),
    [(0, 0), (-1, 1), (1, 2), (-2, 3), (2**63 - 1, 2**64 - 2), (-(2**63), 2**64 - 1)],
)
def test_svarint_zigzag(value: int, zigzag: int) -> None:
    w, z = ByteWriter(), ByteWriter()
    w.svarint(value)
    z.varint(zigzag)
    assert w.getvalue() == z.getvalue()
    assert ByteReader(w.getvalue(), what="t").svarint() == value


def test_fixed_width_round_trip_and_layout() -> None:
    w = ByteWriter()
    w.u8(255)
    w.u16(0x1234)
    w.u32(0xDEADBEEF)
    w.u64(2**64 - 1)
    w.i32(-(2**31))
    w.i64(-1)
    w.f64(1.5)
    w.raw(b"xyz")
    assert len(w) == 1 + 2 + 4 + 8 + 4 + 8 + 8 + 3
    blob = w.getvalue()
    assert blob[:7] == b"\xff\x34\x12\xef\xbe\xad\xde"
    r = ByteReader(blob, what="t")
    assert (r.u8(), r.u16(), r.u32(), r.u64()) == (255, 0x1234, 0xDEADBEEF, 2**64 - 1)
    assert (r.i32(), r.i64(), r.f64()) == (-(2**31), -1, 1.5)
    assert r.remaining == 3
    assert r.raw(3) == b"xyz"
    assert r.pos == len(blob)
    r.expect_end()


def test_f64_special_values() -> None:
    w = ByteWriter()
    for v in (math.inf, -0.0, math.nan):
        w.f64(v)
    r = ByteReader(w.getvalue(), what="t")
    assert r.f64() == math.inf
    assert math.copysign(1.0, r.f64()) == -1.0
    assert math.isnan(r.f64())


@pytest.mark.parametrize(
    ("method", "value"),
    [
        ("u8", 256),
        ("u8", -1),
        ("u16", 65536),
        ("u32", 2**32),
        ("u64", 2**64),
        ("u64", -1),
        ("i32", 2**31),
        ("i32", -(2**31) - 1),
        ("i64", 2**63),
        ("varint", -1),
        ("varint", 2**64),
        ("svarint", 2**63),
        ("svarint", -(2**63) - 1),
    ],
)
def test_writer_range_checks(method: str, value: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        getattr(ByteWriter(), method)(value)


def test_writer_type_checks() -> None:
    w = ByteWriter()
    with pytest.raises(TypeError):
        w.u8(True)
    with pytest.raises(TypeError):
        w.u32(1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        w.f64("1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        w.raw("abc")  # type: ignore[arg-type]


READS: list[tuple[str, Callable[[ByteReader], object], int]] = [
    ("u8", ByteReader.u8, 1),
    ("u16", ByteReader.u16, 2),
    ("u32", ByteReader.u32, 4),
    ("u64", ByteReader.u64, 8),
    ("i32", ByteReader.i32, 4),
    ("i64", ByteReader.i64, 8),
    ("f64", ByteReader.f64, 8),
]


@pytest.mark.parametrize(("name", "read", "size"), READS)
def test_truncated_reads(name: str, read: Callable[[ByteReader], object], size: int) -> None:
    r = ByteReader(b"\x00" * (size + 1), what="tensor table")
    r.u8()
    r.u8()
    msg = rf"^tensor table: truncated at byte 2 \(wanted {size} bytes, {size - 1} left\)$"
    with pytest.raises(MalformedFileError, match=msg):
        read(r)
    assert r.pos == 2  # a failed read consumes nothing


def test_raw_checks_length_before_slicing() -> None:
    r = ByteReader(b"abc", what="tensor data")
    with pytest.raises(MalformedFileError, match=r"wanted 18446744073709551615 bytes, 3 left"):
        r.raw(2**64 - 1)
    with pytest.raises(ValueError, match="non-negative"):
        r.raw(-1)
    assert r.raw(0) == b""


@pytest.mark.parametrize(
    ("blob", "match"),
    [
        (b"", "truncated at byte 0"),
        (b"\x80", "truncated at byte 1"),
        (b"\xff" * 9, "truncated at byte 9"),
        (b"\x80" * 10 + b"\x01", "longer than 10 bytes"),
        (b"\xff" * 10, "longer than 10 bytes"),
        (b"\xff" * 9 + b"\x02", ">= 2\\*\\*64"),
        (b"\xff" * 9 + b"\x7f", ">= 2\\*\\*64"),
        (b"\x80\x00", "not minimally encoded"),
        (b"\xff\x80\x00", "not minimally encoded"),
    ],
)
def test_bad_varints(blob: bytes, match: str) -> None:
    with pytest.raises(MalformedFileError, match=r"^tbl: .*" + match):
        ByteReader(blob, what="tbl").varint()


def test_count_is_bounded() -> None:
    w = ByteWriter()
    w.varint(1000)
    w.varint(5)
    r = ByteReader(w.getvalue(), what="tensor table")
    with pytest.raises(MalformedFileError, match="tensor count at byte 0 is 1000, more than"):
        r.count(999, "tensor count")
    assert r.count(5, "shape rank") == 5


def test_expect_end() -> None:
    r = ByteReader(b"ab", what="tensor table")
    r.u8()
    with pytest.raises(MalformedFileError, match="1 unexpected trailing bytes at byte 1"):
        r.expect_end()


def test_reader_accepts_bytearray_and_memoryview() -> None:
    assert ByteReader(bytearray(b"\x05"), what="t").u8() == 5
    assert ByteReader(memoryview(b"\x01\x02"), what="t").u16() == 0x0201
    assert ByteReader(memoryview(b"\xac\x02"), what="t").varint() == 300


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(st.integers(0, 2**64 - 1)), st.lists(st.integers(-(2**63), 2**63 - 1)))
def test_varint_round_trip(unsigned: list[int], signed: list[int]) -> None:
    w = ByteWriter()
    for u in unsigned:
        w.varint(u)
    for s in signed:
        w.svarint(s)
    r = ByteReader(w.getvalue(), what="t")
    assert [r.varint() for _ in unsigned] == unsigned
    assert [r.svarint() for _ in signed] == signed
    r.expect_end()


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.binary(max_size=40))
def test_reader_on_garbage_raises_only_malformed(data: bytes) -> None:
    r = ByteReader(data, what="t")
    try:
        while True:
            r.varint()
            r.svarint()
            r.u32()
            r.raw(r.u8())
    except MalformedFileError:
        pass
