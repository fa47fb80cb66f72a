"""Damage every byte of a small valid file: only NvcError subclasses may escape, never a crash."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bitstream as bs
from bitstream import SectionType as T

SAMPLE = bs.pack(
    [
        bs.Section(T.METADATA, bs.encode_metadata({"width": 160, "height": 80, "frames": 16})),
        bs.Section(T.TENSOR_TABLE, bytes(range(40))),
        bs.Section(T.TENSOR_DATA, bytes((i * 37) % 256 for i in range(180))),
    ]
)


def test_sample_size_is_small() -> None:
    assert 200 <= len(SAMPLE) <= 400
    bs.unpack(SAMPLE)


@pytest.mark.parametrize("bit", [0, 3, 7])
def test_every_single_bit_flip_is_detected(bit: int) -> None:
    for pos in range(len(SAMPLE)):
        damaged = bytearray(SAMPLE)
        damaged[pos] ^= 1 << bit
        with pytest.raises(bs.NvcError):
            bs.unpack(bytes(damaged), name="f.nvc")


def test_every_truncation_is_detected() -> None:
    for n in range(len(SAMPLE)):
        with pytest.raises((bs.TruncatedFileError, bs.MalformedFileError)):
            bs.unpack(SAMPLE[:n], name="f.nvc")


def test_every_truncation_of_bare_header_is_truncated() -> None:
    """Cutting inside magic, fixed header, table or data always reads as truncation."""
    for n in range(len(SAMPLE)):
        with pytest.raises(bs.TruncatedFileError):
            bs.unpack(SAMPLE[:n])


_mutation = st.one_of(
    st.tuples(st.just("overwrite"), st.integers(0, 10_000), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("insert"), st.integers(0, 10_000), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("delete"), st.integers(0, 10_000), st.integers(1, 8)),
)


def _apply(data: bytes, mutation: tuple[str, int, bytes | int]) -> bytes:
    kind, pos, arg = mutation
    pos %= len(data) + 1
    if kind == "overwrite":
        assert isinstance(arg, bytes)
        return data[:pos] + arg + data[pos + len(arg) :]
    if kind == "insert":
        assert isinstance(arg, bytes)
        return data[:pos] + arg + data[pos:]
    assert isinstance(arg, int)
    return data[:pos] + data[pos + arg :]


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(_mutation, min_size=1, max_size=4))
def test_random_mutations_raise_only_nvc_errors(
    mutations: list[tuple[str, int, bytes | int]],
) -> None:
    data = SAMPLE
    for m in mutations:
        data = _apply(data, m)
    try:
        c = bs.unpack(data)
    except bs.NvcError:
        return
    # only a no-op mutation (e.g. overwriting a byte with itself) may decode, and then exactly
    assert data == SAMPLE
    assert bs.decode_metadata(c.get(T.METADATA).data)["frames"] == 16


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_nvc_errors(data: bytes) -> None:
    with pytest.raises(bs.NvcError):
        bs.unpack(data)
