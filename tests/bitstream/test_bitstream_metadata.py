"""METADATA encoding: round trip, determinism, and bounded, strict decoding."""

from __future__ import annotations

import time
from typing import Any

import pytest
import zstandard

import bitstream as bs


def _zstd(raw: bytes, **kwargs: Any) -> bytes:
    return zstandard.ZstdCompressor(level=3, **kwargs).compress(raw)


def test_round_trip_and_determinism() -> None:
    obj = {"b": [1, 2.5, None, True], "a": {"nested": "ünïcode"}, "n": 10**20}
    blob = bs.encode_metadata(obj)
    assert bs.decode_metadata(blob) == obj
    assert bs.encode_metadata(dict(reversed(list(obj.items())))) == blob
    assert zstandard.ZstdDecompressor().decompress(blob).startswith(b'{"a":{"nested"')


def test_encode_rejects_nan_and_non_mapping() -> None:
    with pytest.raises(ValueError, match="Out of range float"):
        bs.encode_metadata({"x": float("nan")})
    with pytest.raises(TypeError):
        bs.encode_metadata([1, 2])  # type: ignore[arg-type]


def test_encode_rejects_too_large_or_too_deep() -> None:
    with pytest.raises(ValueError, match="more than the limit"):
        bs.encode_metadata({"x": "a" * bs.MAX_METADATA_BYTES})
    deep: dict[str, Any] = {}
    for _ in range(40):
        deep = {"d": deep}
    with pytest.raises(ValueError, match="deeper"):
        bs.encode_metadata(deep)


def test_zstd_bomb_with_declared_size_is_refused_quickly() -> None:
    bomb = _zstd(b"\0" * 50_000_000)
    start = time.perf_counter()
    with pytest.raises(bs.MalformedFileError, match="declares 50000000 bytes"):
        bs.decode_metadata(bomb, name="b.nvc")
    assert time.perf_counter() - start < 1.0


def test_zstd_bomb_without_declared_size_is_refused_quickly() -> None:
    cctx = zstandard.ZstdCompressor(level=3, write_content_size=False)
    chunks = cctx.compressobj()
    bomb = b"".join(chunks.compress(b" " * 1_000_000) for _ in range(50)) + chunks.flush()
    assert zstandard.get_frame_parameters(bomb).content_size == zstandard.CONTENTSIZE_UNKNOWN
    start = time.perf_counter()
    with pytest.raises(bs.MalformedFileError, match="decompresses to more than"):
        bs.decode_metadata(bomb, name="b.nvc")
    assert time.perf_counter() - start < 1.0


def test_exactly_at_limit_is_accepted() -> None:
    raw = b'{"x":"' + b"a" * (bs.MAX_METADATA_BYTES - 8) + b'"}'
    assert len(raw) == bs.MAX_METADATA_BYTES
    assert len(bs.decode_metadata(_zstd(raw))["x"]) == bs.MAX_METADATA_BYTES - 8


@pytest.mark.parametrize(
    ("blob", "match"),
    [
        (b"", "not a zstd frame"),
        (b"not zstd at all", "not a zstd frame"),
        (_zstd(b'{"a": 1}')[:-3], "corrupt"),
        (_zstd(b'{"a": 1}', write_content_size=False)[:-3], "corrupt"),
        (_zstd(b'{"a": 1}') * 2, "corrupt"),
        (_zstd(b'{"a": 1}') + b"junk", "corrupt"),
        (_zstd(b'{"a": 1'), "not valid JSON"),
        (_zstd(b"\xff\xfe"), "not valid UTF-8"),
        (_zstd(b"[1, 2]"), "must be a JSON object, got list"),
        (_zstd(b'"text"'), "must be a JSON object, got str"),
        (_zstd(b'{"a": NaN}'), "non-finite number NaN"),
        (_zstd(b'{"a": -Infinity}'), "non-finite number -Infinity"),
        (_zstd(b'{"a": 1, "a": 2}'), "duplicate key"),
        (_zstd(b'{"a":' + b"[" * 40 + b"]" * 40 + b"}"), "deeper than"),
        (_zstd(b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"), "deeper than"),
    ],
)
def test_bad_metadata(blob: bytes, match: str) -> None:
    with pytest.raises(bs.MalformedFileError, match=r"^m\.nvc: .*" + match):
        bs.decode_metadata(blob, name="m.nvc")


def test_huge_window_is_refused() -> None:
    params = zstandard.ZstdCompressionParameters.from_level(
        3, window_log=27, write_content_size=False
    )
    cobj = zstandard.ZstdCompressor(compression_params=params).compressobj()
    blob = cobj.compress(b"{}") + cobj.flush()
    assert zstandard.get_frame_parameters(blob).window_size == 1 << 27
    with pytest.raises(bs.MalformedFileError, match="too much memory"):
        bs.decode_metadata(blob)
