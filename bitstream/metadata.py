"""The METADATA section: one JSON object, UTF-8, in a single zstd frame.

Decoding is bounded because the section comes from an untrusted file: the frame's declared
content size, the decompressor's window, the bytes actually produced, the JSON nesting depth, and
the set of JSON values (no NaN/Infinity, no duplicate keys) are all limited, and every violation
is a :class:`~bitstream.errors.MalformedFileError`. A zstd "bomb" therefore costs at most
about ``MAX_METADATA_BYTES`` of output before it is refused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

import zstandard

from .errors import MalformedFileError

__all__ = ["MAX_METADATA_BYTES", "MAX_METADATA_DEPTH", "decode_metadata", "encode_metadata"]

MAX_METADATA_BYTES: Final = 1 << 20
#: Deepest allowed nesting of objects/arrays; metadata is shallow, this only stops abuse.
MAX_METADATA_DEPTH: Final = 32
_ZSTD_LEVEL: Final = 19
#: Largest zstd window accepted (level 19's own maximum); bounds decompressor memory.
_MAX_WINDOW: Final = 1 << 23
_READ_CHUNK: Final = 1 << 16


def encode_metadata(obj: Mapping[str, Any]) -> bytes:
    """Compact, key-sorted JSON compressed at zstd level 19 (deterministic bytes for equal input).

    Raises ``ValueError`` for NaN/Infinity or an encoded size above the limit and ``TypeError``
    for values JSON cannot represent, so a writer cannot produce metadata the reader refuses.
    """
    if not isinstance(obj, Mapping):
        raise TypeError(f"metadata must be a mapping, got {type(obj).__name__}")
    text = json.dumps(
        dict(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    raw = text.encode("utf-8")
    if len(raw) > MAX_METADATA_BYTES:
        raise ValueError(
            f"metadata is {len(raw)} bytes of JSON, more than the limit {MAX_METADATA_BYTES}"
        )
    _check_depth(json.loads(raw), "<metadata>", error=ValueError)
    return zstandard.ZstdCompressor(level=_ZSTD_LEVEL, write_content_size=True).compress(raw)


def _reject_constant(token: str) -> Any:
    raise ValueError(f"non-finite number {token} is not allowed")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _check_depth(root: Any, name: str, *, error: type[Exception]) -> None:
    """Walk the parsed value iteratively and refuse nesting deeper than the limit."""
    stack: list[tuple[Any, int]] = [(root, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_METADATA_DEPTH:
                raise error(f"{name}: metadata nests deeper than {MAX_METADATA_DEPTH} levels")
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)


def _exceeds_limit(dctx: zstandard.ZstdDecompressor, data: bytes) -> bool:
    """Whether a frame without a declared size produces more than the limit (bounded probe).

    Only used to word the error: zstd reports "too big" and "truncated" the same way.
    """
    produced = 0
    try:
        with dctx.stream_reader(data, read_across_frames=False) as reader:
            while produced <= MAX_METADATA_BYTES:
                chunk = reader.read(_READ_CHUNK)
                if not chunk:
                    break
                produced += len(chunk)
    except zstandard.ZstdError:
        pass
    return produced > MAX_METADATA_BYTES


def _decompress(data: bytes, name: str) -> bytes:
    """One complete zstd frame, no trailing bytes, at most ``MAX_METADATA_BYTES`` of output.

    The declared content size is checked before decompressing; when a frame declares none,
    ``max_output_size`` caps the output buffer, so no input can make this allocate more.
    """
    try:
        params = zstandard.get_frame_parameters(data)
    except zstandard.ZstdError as exc:
        raise MalformedFileError(f"{name}: METADATA is not a zstd frame ({exc})") from None
    declared = params.content_size
    if declared != zstandard.CONTENTSIZE_UNKNOWN and declared > MAX_METADATA_BYTES:
        raise MalformedFileError(
            f"{name}: METADATA declares {declared} bytes, more than the limit {MAX_METADATA_BYTES}"
        )
    dctx = zstandard.ZstdDecompressor(max_window_size=_MAX_WINDOW)
    try:
        return dctx.decompress(data, max_output_size=MAX_METADATA_BYTES, allow_extra_data=False)
    except zstandard.ZstdError as exc:
        if declared == zstandard.CONTENTSIZE_UNKNOWN and _exceeds_limit(dctx, data):
            raise MalformedFileError(
                f"{name}: METADATA decompresses to more than {MAX_METADATA_BYTES} bytes"
            ) from None
        raise MalformedFileError(f"{name}: METADATA zstd data is corrupt ({exc})") from None


def decode_metadata(data: bytes, *, name: str = "<bytes>") -> dict[str, Any]:
    """Decompress and parse a METADATA section into a dict; bounded at every step."""
    raw = _decompress(data, name)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedFileError(f"{name}: METADATA is not valid UTF-8 ({exc.reason})") from None
    try:
        value = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicates)
    except RecursionError:
        raise MalformedFileError(
            f"{name}: metadata nests deeper than {MAX_METADATA_DEPTH} levels"
        ) from None
    except ValueError as exc:  # includes json.JSONDecodeError and the hooks above
        raise MalformedFileError(f"{name}: METADATA is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise MalformedFileError(
            f"{name}: METADATA must be a JSON object, got {type(value).__name__}"
        )
    _check_depth(value, name, error=MalformedFileError)
    return value
