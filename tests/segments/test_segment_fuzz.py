"""Damaged segmented files: every byte flip, truncation or crafted index (behind a valid CRC)
either decodes to frames of the right shape or is refused with a one-line NvcError."""

from __future__ import annotations

import random
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bitstream as bs
from nvcodec.decoder import decode_frames


def _decode(path: Path) -> str:
    message = ""
    try:
        frames = decode_frames(path, device="cpu")
    except bs.NvcError as exc:
        message = str(exc) or "(empty)"
        kind = type(exc).__name__
    else:
        assert frames.y.shape[1:] == (80, 160)
        return "ok"
    assert "\n" not in message, message
    assert message != "(empty)"
    return kind


def _flip(blob: bytes, rng: random.Random) -> bytes:
    data = bytearray(blob)
    data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return bytes(data)


def _truncate(blob: bytes, rng: random.Random) -> bytes:
    return blob[: rng.randrange(len(blob))]


def _crafted_index(blob: bytes, rng: random.Random) -> bytes:
    """Rewrite the index with other frame counts and lengths behind valid CRCs."""
    container = bs.unpack(blob)
    index = container.get(bs.SectionType.SEGMENT_INDEX).data
    data = container.get(bs.SectionType.SEGMENT_DATA).data
    entries = bs.decode_segment_index(index, len(data))
    w = bs.ByteWriter()
    w.varint(len(entries))
    for e in entries:
        w.varint(max(1, e.frame_count + rng.choice([-1, 0, 0, 1])))
        w.varint(e.length)
        w.u32(e.crc32 if rng.random() < 0.8 else rng.getrandbits(32))
    sections = [
        s if s.type != bs.SectionType.SEGMENT_INDEX else bs.Section(s.type, w.getvalue())
        for s in container.sections
    ]
    return bs.pack(sections, reader_version=(1, 2))


MUTATORS = {"flip": _flip, "truncate": _truncate, "index": _crafted_index}


def test_damaged_segmented_files(segmented, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source, _ = segmented
    blob = source.read_bytes()
    path = tmp_path / "fuzzed.nvc"
    outcomes: dict[str, int] = {}

    @settings(
        max_examples=90,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(kind=st.sampled_from(sorted(MUTATORS)), rng=st.randoms(use_true_random=False))
    def attempt(kind: str, rng: random.Random) -> None:
        path.write_bytes(MUTATORS[kind](blob, rng))
        outcome = _decode(path)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1

    attempt()
    assert sum(v for k, v in outcomes.items() if k != "ok") > 45  # damage is mostly caught
