"""Damaged and hostile .nvc files through the *whole* decoder, not just the container.

Every outcome must be a correct decode or one of our documented errors (``bitstream.NvcError``);
nothing else may escape, and nothing may allocate from an unchecked size.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import bitstream
from bitstream import NvcError, Section, SectionType
from nvcodec.decoder import decode_frames, load_model, render
from nvcodec.io import read_video

GOLDEN = Path(__file__).parent.parent / "data" / "golden"


def _try_decode(path: Path) -> str:
    """'ok' or the error class name; any other exception fails the test."""
    try:
        loaded = load_model(path, device="cpu")
        frames = next(render(loaded, [0.0]))
        assert frames.y.shape == (1, loaded.nvc.video.height, loaded.nvc.video.width)
        return "ok"
    except NvcError as exc:
        message = str(exc)
        kind = type(exc).__name__
    assert "\n" not in message
    return kind


def test_golden_v1_still_decodes():
    expected, _ = read_video(GOLDEN / "golden_v1_expected.y4m")
    got = decode_frames(GOLDEN / "golden_v1.nvc", device="cpu")
    for plane in ("y", "u", "v"):
        diff = np.abs(getattr(got, plane).astype(int) - getattr(expected, plane).astype(int))
        assert diff.max() <= 1, plane
        assert diff.mean() < 0.01, plane


def test_every_bit_flip_and_truncation_is_refused(tmp_path):
    data = (GOLDEN / "golden_v1.nvc").read_bytes()
    path = tmp_path / "m.nvc"
    outcomes: dict[str, int] = {}
    for i in range(len(data)):
        for mutated in (data[:i] + bytes([data[i] ^ 0x10]) + data[i + 1 :], data[:i]):
            path.write_bytes(mutated)
            name = _try_decode(path)
            outcomes[name] = outcomes.get(name, 0) + 1
    # Everything is checksummed, so no single flip or truncation may slip through.
    assert "ok" not in outcomes, outcomes
    assert set(outcomes) <= {
        "ChecksumError",
        "TruncatedFileError",
        "NotAnNvcFileError",
        "MalformedFileError",
        "UnsupportedVersionError",
    }


def _sections(data: bytes) -> dict[int, bytes]:
    return {s.type: s.data for s in bitstream.unpack(data).sections}


def _repack(sections: dict[int, bytes]) -> bytes:
    return bitstream.pack([Section(t, d) for t, d in sorted(sections.items())])


@pytest.mark.parametrize("section", [SectionType.TENSOR_TABLE, SectionType.METADATA])
def test_flips_behind_valid_checksums_never_crash(tmp_path, section):
    """A crafted file has valid CRCs: flip every byte of a section and re-checksum it."""
    sections = _sections((GOLDEN / "golden_v1.nvc").read_bytes())
    original = sections[section]
    path = tmp_path / "c.nvc"
    seen = set()
    for i in range(len(original)):
        sections[section] = original[:i] + bytes([original[i] ^ 0xFF]) + original[i + 1 :]
        path.write_bytes(_repack(sections))
        seen.add(_try_decode(path))
    assert seen - {"ok"} <= {"MalformedFileError"}, seen


def test_flips_in_payloads_decode_or_fail_cleanly(tmp_path):
    sections = _sections((GOLDEN / "golden_v1.nvc").read_bytes())
    original = sections[SectionType.TENSOR_DATA]
    path = tmp_path / "d.nvc"
    for i in range(0, len(original), 97):
        sections[SectionType.TENSOR_DATA] = (
            original[:i] + bytes([original[i] ^ 0x5A]) + original[i + 1 :]
        )
        path.write_bytes(_repack(sections))
        assert _try_decode(path) in {"ok", "MalformedFileError"}


def _with_metadata(edit) -> bytes:
    sections = _sections((GOLDEN / "golden_v1.nvc").read_bytes())
    meta = bitstream.decode_metadata(sections[SectionType.METADATA])
    edit(meta)
    sections[SectionType.METADATA] = bitstream.encode_metadata(meta)
    return _repack(sections)


ABSURD = {
    "negative width": lambda m: m["video"].update(width=-5),
    "billions of frames": lambda m: (
        m["video"].update(frames=3_000_000_000),
        m["model"]["config"].update(frame_count=3_000_000_000),
    ),
    "unknown model": lambda m: m["model"].update(id="evil"),
    "huge channels": lambda m: m["model"]["config"].update(channels=[4096] * 4, stem_dim=4096),
    "huge frame": lambda m: (
        m["video"].update(width=8192, height=8192),
        m["model"]["config"].update(width=8192, height=8192, base_h=2048, base_w=2048),
    ),
    "string for int": lambda m: m["model"]["config"].update(kernel="3"),
    "extra config key": lambda m: m["model"]["config"].update(evil=1),
    "geometry mismatch": lambda m: m["video"].update(width=95),
    "zero fps": lambda m: m["video"].update(fps=[0, 1]),
    "bad colour": lambda m: m["video"]["colour"].update(matrix="ycgco"),
    "missing video": lambda m: m.pop("video"),
    "bits out of range": lambda m: m["compression"].update(bits=40),
}
BAD_DECODE = [{"layout": "nhwc-fused"}, {"layout": ["channels-last"]}, "channels-last", {}]
BAD_DECODE.append({"layout": "nchw", "batch": 1})


@pytest.mark.parametrize("decode", BAD_DECODE)
def test_a_bad_decode_layout_is_refused(tmp_path, decode):
    path = tmp_path / "a.nvc"
    path.write_bytes(_with_metadata(lambda m: m.update(decode=decode)))
    with pytest.raises(bitstream.MalformedFileError, match=r"a\.nvc: invalid metadata: decode"):
        load_model(path, device="cpu")


@pytest.mark.parametrize("case", sorted(ABSURD))
def test_absurd_metadata_is_refused_before_allocation(tmp_path, case):
    path = tmp_path / "a.nvc"
    path.write_bytes(_with_metadata(ABSURD[case]))
    with pytest.raises(NvcError) as info:
        load_model(path, device="cpu")
    assert str(path) in str(info.value)


def test_future_major_version_is_refused_with_a_clear_message(tmp_path):
    data = bytearray((GOLDEN / "golden_v1.nvc").read_bytes())
    data[12:14] = (2).to_bytes(2, "little")  # minimum reader 2.0
    path = tmp_path / "future.nvc"
    path.write_bytes(bytes(data))
    with pytest.raises(bitstream.UnsupportedVersionError, match=r"2\.0"):
        load_model(path)


def test_metadata_json_is_what_the_format_documents():
    meta = bitstream.decode_metadata(_sections((GOLDEN / "golden_v1.nvc").read_bytes())[1])
    assert set(meta) == {"video", "model", "compression", "encoder"}
    assert meta["model"]["id"] == "nerv"
    json.dumps(meta)  # plain JSON, nothing else


def test_tensor_layer_errors_name_the_file(tmp_path):
    from nvcodec import inspect

    sections = _sections((GOLDEN / "golden_v1.nvc").read_bytes())
    sections[SectionType.TENSOR_TABLE] = sections[SectionType.TENSOR_TABLE][:-1]
    path = tmp_path / "short-table.nvc"
    path.write_bytes(_repack(sections))
    for load in (lambda: load_model(path, device="cpu"), lambda: inspect(path)):
        with pytest.raises(bitstream.MalformedFileError, match=rf"^{path}: tensor table"):
            load()
