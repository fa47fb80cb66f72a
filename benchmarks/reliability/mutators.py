"""Mutations of valid ``.nvc`` files and the decode harness used by the fuzz test and fuzz.py.

Every mutator is ``(data, rng) -> bytes``: a pure function of a valid file image and a
``random.Random``, so the same code runs under hypothesis (``st.randoms()``, derandomised) in
``tests/e2e/test_e2e_fuzz_decoder.py`` and from a seeded loop in ``benchmarks/reliability/fuzz.py``.

Two families:

- **raw** mutations (bit flips, truncation, insertion, deletion, overwrite) leave the checksums
  stale, so the container must refuse them;
- **crafted** mutations recompute every CRC (header CRC patched as FORMAT.md specifies, or the
  file rebuilt with :func:`bitstream.pack`), so the damage reaches the section table, the metadata
  validation, the tensor-table parser, the entropy decoder and the model itself.

:func:`try_decode` runs the whole decoder (``load_model`` + render one frame) and returns ``"ok"``
or the name of the :class:`bitstream.NvcError` subclass; any other exception propagates (a bug).
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import struct
import time
import zlib
from collections.abc import Callable
from typing import Any

import zstandard

import bitstream
from bitstream import NvcError, Section, SectionType

__all__ = ["MUTATORS", "Outcome", "try_decode"]

Mutator = Callable[[bytes, random.Random], bytes]

_FIXED = struct.Struct("<8sHHHHII")
_ENTRY = struct.Struct("<IIQQII")
_HEADER = 24
_ENTRY_BYTES = 32

HUGE = (2**62, 2**64 - 1, 2**63, 2**32, 2**30 + 1, 2**31 - 1)
ABSURD_VALUES: tuple[Any, ...] = (
    -1,
    0,
    -(2**63),
    10**12,
    2**63,
    2**64,
    10**400,  # bigger than any float
    1e308,
    -1e308,
    0.5,
    -0.0,
    "NaN",
    "Infinity",
    "-Infinity",
    "",
    "3",
    "x" * 5000,
    "\u0000\ud7ff",
    None,
    True,
    False,
    [],
    {},
    [1, 2, 3],
    [[[[[[[[[[[]]]]]]]]]]],
    {"a": {"b": [1, {"c": None}]}},
    [10**12] * 4,
    [-5, 0, 4096, 1],
)
MODEL_IDS = ("nerv", "ds-nerv", "nerv++", "hnerv", "dnerv", "evil", "", "../../etc/passwd")


# ---- raw byte mutations (stale checksums) -------------------------------------------------


def bit_flips(data: bytes, rng: random.Random) -> bytes:
    """1-8 distinct bits flipped (distinct, so two flips never cancel out)."""
    out = bytearray(data)
    for bit in rng.sample(range(8 * len(out)), min(rng.randint(1, 8), 8 * len(out))):
        out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(len(data))]


def insert_bytes(data: bytes, rng: random.Random) -> bytes:
    i = rng.randrange(len(data) + 1)
    return data[:i] + rng.randbytes(rng.randint(1, 16)) + data[i:]


def delete_bytes(data: bytes, rng: random.Random) -> bytes:
    i = rng.randrange(len(data))
    return data[:i] + data[i + rng.randint(1, 16) :]


def overwrite_bytes(data: bytes, rng: random.Random) -> bytes:
    i = rng.randrange(len(data))
    chunk = rng.randbytes(rng.randint(1, 8))
    return data[:i] + chunk + data[i + len(chunk) :]


# ---- section table edits, header CRC recomputed --------------------------------------------


def _fix_header_crc(buf: bytearray) -> bytes:
    """Recompute the header CRC for the section count the (edited) header now declares."""
    count = struct.unpack_from("<I", buf, 16)[0]
    if not 1 <= count <= bitstream.MAX_SECTIONS:
        return bytes(buf)  # refused before the CRC is read; nothing to fix
    end = _HEADER + _ENTRY_BYTES * count
    if len(buf) < end + 4:
        buf.extend(bytes(end + 4 - len(buf)))
    struct.pack_into("<I", buf, end, zlib.crc32(bytes(buf[:end])))
    return bytes(buf)


def table_edit(data: bytes, rng: random.Random) -> bytes:
    """Huge lengths/offsets, overlaps, gaps, section count changes, types, flags, versions."""
    buf = bytearray(data)
    count = struct.unpack_from("<I", buf, 16)[0]
    entry = rng.randrange(count)
    at = _HEADER + _ENTRY_BYTES * entry
    t, flags, offset, length, crc, reserved = _ENTRY.unpack_from(buf, at)
    kind = rng.randrange(12)
    if kind == 0:
        length = rng.choice(HUGE)
    elif kind == 1:
        offset = rng.choice(HUGE)
    elif kind == 2:  # overlap with the previous section, or point back into the header
        offset = rng.choice((0, _HEADER, max(0, offset - rng.randint(1, 64))))
    elif kind == 3:  # gap
        offset += rng.randint(1, 64)
    elif kind == 4:  # shorten/lengthen by a little, keeping the CRC
        length = max(0, length + rng.choice((-1, 1, -17, 64)))
    elif kind == 5:  # section count changes (including 0 and far too many)
        struct.pack_into("<I", buf, 16, rng.choice((0, count - 1, count + 1, 64, 65, 2**32 - 1)))
    elif kind == 6:
        t = rng.choice((0, 1, 2, 3, 4, 77, 2**32 - 1))  # duplicate, unknown, reserved
    elif kind == 7:
        flags = rng.choice((0, 2, 2**31, 2**32 - 1))
    elif kind == 8:
        reserved = rng.randint(1, 2**32 - 1)
    elif kind == 9:  # versions
        struct.pack_into("<HHHH", buf, 8, *(rng.choice((0, 1, 2, 65535)) for _ in range(4)))
    elif kind == 10:  # header reserved field
        struct.pack_into("<I", buf, 20, rng.randint(1, 2**32 - 1))
    else:  # swap two entries (sections out of tiling order)
        other = rng.randrange(count)
        b = _HEADER + _ENTRY_BYTES * other
        buf[at : at + 32], buf[b : b + 32] = buf[b : b + 32], buf[at : at + 32]
        return _fix_header_crc(buf)
    _ENTRY.pack_into(buf, at, t, flags, offset & (2**64 - 1), length & (2**64 - 1), crc, reserved)
    return _fix_header_crc(buf)


# ---- whole-container rebuilds with valid CRCs -----------------------------------------------


def _sections(data: bytes) -> list[Section]:
    return list(bitstream.unpack(data).sections)


def _pack(sections: list[Section]) -> bytes:
    return bitstream.pack(sections)


def section_list_edit(data: bytes, rng: random.Random) -> bytes:
    """Drop, reorder, or add sections (unknown optional/critical, swapped contents)."""
    sections = _sections(data)
    kind = rng.randrange(5)
    if kind == 0:
        sections.pop(rng.randrange(len(sections)))
        if not sections:
            sections = [Section(77, b"", critical=False)]
    elif kind == 1:
        rng.shuffle(sections)
    elif kind == 2:
        sections.insert(
            rng.randrange(len(sections) + 1),
            Section(
                rng.randint(4, 2**32 - 1), rng.randbytes(rng.randint(0, 64)), rng.random() < 0.5
            ),
        )
    elif kind == 3:  # contents of two sections swapped under their original types
        i, j = rng.randrange(len(sections)), rng.randrange(len(sections))
        a, b = sections[i], sections[j]
        sections[i], sections[j] = Section(a.type, b.data), Section(b.type, a.data)
    else:  # a section emptied
        i = rng.randrange(len(sections))
        sections[i] = Section(sections[i].type, b"")
    return _pack(sections)


def _replace(data: bytes, type_: int, new: bytes) -> bytes:
    return _pack(
        [Section(s.type, new, s.critical) if s.type == type_ else s for s in _sections(data)]
    )


def _get(data: bytes, type_: int) -> bytes:
    return bitstream.unpack(data).get(type_).data


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def metadata_edit(data: bytes, rng: random.Random) -> bytes:
    """Absurd JSON values anywhere in the metadata (negative, 10**12, 'NaN', wrong types,
    unknown model ids, nested garbage, deleted/added keys), re-encoded with valid zstd + CRCs."""
    meta = bitstream.decode_metadata(_get(data, SectionType.METADATA))
    for _ in range(rng.randint(1, 3)):
        kind = rng.randrange(6)
        model = meta.get("model")
        if kind == 0 and isinstance(model, dict):  # model id
            model["id"] = rng.choice(MODEL_IDS)
            continue
        if kind == 1 and isinstance(model, dict):  # frame count / geometry, video and config agree
            cfg = model.get("config")
            key, vkey = rng.choice(
                (("frame_count", "frames"), ("width", "width"), ("height", "height"))
            )
            value = rng.choice((1, 2, 3, 7, 1000, 10**6, 10**6 + 1, 10**12, -4))
            if isinstance(cfg, dict):
                cfg[key] = value
            if isinstance(meta.get("video"), dict):
                meta["video"][vkey] = value
            continue
        paths = [p for p in _paths(meta) if p]
        path = rng.choice(paths)
        parent = meta
        for k in path[:-1]:
            parent = parent[k]
        last = path[-1]
        if kind == 2 and isinstance(parent, dict):
            del parent[last]
        elif kind == 3 and isinstance(parent, dict):
            parent[rng.choice(("evil", "__class__", "__reduce__", "extra"))] = rng.choice(
                ABSURD_VALUES
            )
        else:
            old = parent[last]
            if isinstance(old, int | float) and not isinstance(old, bool) and rng.random() < 0.5:
                parent[last] = rng.choice((old + 1, old - 1, old * 2, -old, old * 10**6))
            else:
                parent[last] = rng.choice(ABSURD_VALUES)
    try:
        encoded = bitstream.encode_metadata(meta)
    except (ValueError, TypeError, OverflowError):  # too big/deep for the writer: craft it raw
        text = json.dumps(meta, separators=(",", ":"), default=str).encode()
        encoded = zstandard.ZstdCompressor(level=3).compress(text)
    return _replace(data, SectionType.METADATA, encoded)


def _in_bounds_value(f: dataclasses.Field, old: Any, rng: random.Random) -> Any:
    lo, hi = f.metadata.get("lo"), f.metadata.get("hi")
    choices = f.metadata.get("choices")
    if choices:
        return rng.choice(sorted(choices))
    if isinstance(old, list):
        new = list(old)
        max_len = f.metadata.get("max_len", 8)
        action = rng.randrange(3)
        if action == 0 and len(new) < max_len:
            new.insert(rng.randrange(len(new) + 1), rng.choice(new or [lo]))
        elif action == 1 and len(new) > 1:
            new.pop(rng.randrange(len(new)))
        elif new:
            i = rng.randrange(len(new))
            new[i] = _number(lo, hi, new[i], rng)
        return new
    return _number(lo, hi, old, rng)


def _number(lo: float, hi: float, old: Any, rng: random.Random) -> Any:
    if isinstance(old, float):
        return rng.choice((float(lo), float(hi), rng.uniform(lo, hi), old * 1.01))
    old = old if isinstance(old, int) else int(lo)
    near = min(int(hi), max(int(lo), old + rng.choice((-2, -1, 1, 2))))
    return rng.choice(
        (int(lo), int(hi), near, near, rng.randint(int(lo), min(int(hi), 4 * old + 4)))
    )


def config_edit(data: bytes, rng: random.Random) -> bytes:
    """Model config values *within* their declared bounds (valid-looking but inconsistent
    networks), keeping video geometry equal to the config's; sometimes another model's id."""
    from nvcodec.models import get_spec

    meta = bitstream.decode_metadata(_get(data, SectionType.METADATA))
    model = meta["model"]
    if rng.random() < 0.15:
        model["id"] = rng.choice(MODEL_IDS[:5])
    cfg = model["config"]
    try:
        fields = {f.name: f for f in dataclasses.fields(get_spec(model["id"]).config)}
    except Exception:
        fields = {}
    names = sorted(set(fields) & set(cfg))
    for _ in range(rng.randint(1, 3)):
        if not names:
            break
        name = rng.choice(names)
        cfg[name] = _in_bounds_value(fields[name], cfg[name], rng)
    video = meta["video"]
    video["width"], video["height"] = cfg.get("width"), cfg.get("height")
    video["frames"] = cfg.get("frame_count")
    return _replace(data, SectionType.METADATA, bitstream.encode_metadata(meta))


def metadata_raw(data: bytes, rng: random.Random) -> bytes:
    """Valid zstd frames of bad payloads: bombs, non-JSON, NaN, duplicates, deep nesting."""
    payloads = (
        bytes(2 << 20),  # 2 MiB of zeros: a zstd bomb
        b"[]",
        b"null",
        b'{"a":1,"a":2}',
        b'{"video":NaN}',
        b"\xff\xfe{}",
        b"[" * 100 + b"]" * 100,
        b"{" + b'"a":{' * 40 + b"}" * 41,
        b'{"video":{},"model":{},"compression":{}}',
        json.dumps({"model": {"id": "nerv", "config": "import os"}}).encode(),
    )
    kind = rng.randrange(4)
    if kind == 0:
        new = zstandard.ZstdCompressor(level=3).compress(rng.choice(payloads))
    elif kind == 1:  # a valid frame followed by junk, or two frames
        old = _get(data, SectionType.METADATA)
        new = old + rng.choice((old, b"\x00", rng.randbytes(8)))
    elif kind == 2:  # damaged zstd frame behind a valid CRC
        new = bit_flips(_get(data, SectionType.METADATA), rng)
    else:
        new = rng.randbytes(rng.randint(0, 64))
    return _replace(data, SectionType.METADATA, new)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def tensor_table_edit(data: bytes, rng: random.Random) -> bytes:
    """Flipped/inserted/deleted bytes and huge varints in TENSOR_TABLE, behind valid CRCs."""
    table = _get(data, SectionType.TENSOR_TABLE)
    kind = rng.randrange(5)
    if kind == 0:
        table = bit_flips(table, rng)
    elif kind == 1:
        table = overwrite_bytes(table, rng)
    elif kind == 2:
        i = rng.randrange(len(table) + 1)
        table = table[:i] + _varint(rng.choice((*HUGE, 2**64 - 1, 131073, 0))) + table[i:]
    elif kind == 3:
        table = delete_bytes(table, rng) if rng.random() < 0.5 else truncate(table, rng)
    else:  # a 10-byte over-long or non-minimal varint
        i = rng.randrange(len(table) + 1)
        table = (
            table[:i] + rng.choice((b"\xff" * 11, b"\x80\x00", b"\xff" * 9 + b"\x7f")) + table[i:]
        )
    return _replace(data, SectionType.TENSOR_TABLE, table)


def tensor_data_edit(data: bytes, rng: random.Random) -> bytes:
    """Damaged entropy-coded payloads behind valid CRCs (decode to garbage or refuse)."""
    payload = _get(data, SectionType.TENSOR_DATA)
    mutate = rng.choice((bit_flips, overwrite_bytes, insert_bytes, delete_bytes, truncate))
    return _replace(data, SectionType.TENSOR_DATA, mutate(payload, rng) if payload else b"\x00")


MUTATORS: dict[str, Mutator] = {
    "bit_flips": bit_flips,
    "truncate": truncate,
    "insert": insert_bytes,
    "delete": delete_bytes,
    "overwrite": overwrite_bytes,
    "table_edit": table_edit,
    "section_list": section_list_edit,
    "metadata_json": metadata_edit,
    "metadata_raw": metadata_raw,
    "config_in_bounds": config_edit,
    "tensor_table": tensor_table_edit,
    "tensor_data": tensor_data_edit,
}


class Outcome(str):
    """``"ok"`` or an error class name, with the message and the time the attempt took."""

    message: str
    seconds: float


def try_decode(path: str | os.PathLike[str], render_frame: bool = True) -> Outcome:
    """The whole decoder on ``path``: parse, validate, rebuild the model, render one frame.

    Returns ``"ok"`` or the :class:`bitstream.NvcError` subclass name; any other exception is a
    bug and propagates. The message of every refusal must be one line.
    """
    from nvcodec.decoder import load_model, render

    begin = time.perf_counter()
    message = ""
    try:
        loaded = load_model(path, device="cpu")
        if render_frame:
            video = loaded.nvc.video
            frames = next(render(loaded, [0.0]))
            if frames.y.shape != (1, video.height, video.width):
                raise AssertionError(f"decoded shape {frames.y.shape} for {video}")
        result = Outcome("ok")
    except NvcError as exc:
        message = str(exc)
        if "\n" in message or not message:
            raise AssertionError(
                f"{type(exc).__name__} message is not one line: {message!r}"
            ) from exc
        result = Outcome(type(exc).__name__)
    result.message = message
    result.seconds = time.perf_counter() - begin
    return result
