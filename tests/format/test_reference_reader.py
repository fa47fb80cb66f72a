"""The independent reader (written from FORMAT.md alone) agrees bit for bit with the decoder."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from nvcodec.compression import decode_tensors
from nvcodec.decoder import checked_skeleton
from nvcodec.fileformat import read_nvc
from nvcodec.segmented import open_video

HERE = Path(__file__).parent
GOLDEN = HERE.parent / "data" / "golden"
SEGMENTED = GOLDEN / "golden_segmented.nvc"
ONE_SEGMENT = sorted(p for p in GOLDEN.glob("golden_*.nvc") if p != SEGMENTED)


def _load_reader():
    """Import the sibling module by path (works under `--import-mode=importlib`)."""
    name = "nvc_reference_reader"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, HERE / "reference_reader.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while it executes
        spec.loader.exec_module(module)
    return sys.modules[name]


rr = _load_reader()


def _project_tensors(nvc, name: str) -> tuple[list[tuple[int, ...]], list[np.ndarray]]:
    """Parameter shapes and flat float32 tensors according to the project's own decoder."""
    skeleton = checked_skeleton(nvc, name, None, activations=False)
    shapes = [tuple(p.shape) for _, p in skeleton]
    tensors = decode_tensors(nvc.tensor_table, nvc.tensor_data, shapes)
    return shapes, [t.detach().cpu().numpy().astype(np.float32).ravel() for t in tensors]


def _assert_identical(ours: list[np.ndarray], theirs: list[np.ndarray]) -> None:
    assert len(ours) == len(theirs)
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        assert a.dtype == np.float32, i
        assert np.array_equal(a, b), f"tensor {i} differs"


def test_golden_files_found() -> None:
    assert len(ONE_SEGMENT) >= 8
    assert SEGMENTED.is_file()


@pytest.mark.parametrize("path", ONE_SEGMENT, ids=lambda p: p.stem)
def test_one_segment_file_matches_decoder(path: Path) -> None:
    nvc = read_nvc(path)
    shapes, expected = _project_tensors(nvc, path.name)
    metadata, tensors = rr.read_tensors(path, shapes)
    assert metadata == nvc.metadata()
    _assert_identical(tensors, expected)


def test_segmented_file_matches_decoder() -> None:
    segments = rr.read_segments(SEGMENTED)
    with open_video(SEGMENTED) as video:
        assert [frames for frames, _ in segments] == [e.frame_count for e in video.entries]
        assert [len(image) for _, image in segments] == [e.length for e in video.entries]
        for k, (_, image) in enumerate(segments):
            nvc = video.segment(k)
            shapes, expected = _project_tensors(nvc, f"{SEGMENTED.name} (segment {k})")
            metadata, tensors = rr.parse_tensors(image, shapes, f"segment {k}")
            assert metadata == nvc.metadata()
            _assert_identical(tensors, expected)


def test_reader_refuses_damage() -> None:
    """A few of the document's checks, so the reader is not trivially permissive."""
    data = bytearray(ONE_SEGMENT[0].read_bytes())
    with pytest.raises(rr.NotAnNvcFileError):
        rr.parse_tensors(b"\x89NVX")
    with pytest.raises(rr.TruncatedFileError):
        rr.parse_tensors(bytes(data[:12]))
    flipped = bytearray(data)
    flipped[-1] ^= 1
    with pytest.raises(rr.ChecksumError):
        rr.parse_tensors(bytes(flipped))
    future = bytearray(data)
    future[12:14] = (2).to_bytes(2, "little")
    with pytest.raises(rr.UnsupportedVersionError, match="upgrade nvcodec"):
        rr.parse_tensors(bytes(future))


@pytest.mark.parametrize(
    ("encoded", "value"),
    [(b"\x00", 0), (b"\x7f", 127), (b"\x80\x01", 128), (b"\xac\x02", 300)],
)
def test_varint_examples(encoded: bytes, value: int) -> None:
    assert rr.ByteCursor(encoded, "t").varint() == value


def test_varint_refusals() -> None:
    assert rr.ByteCursor(b"\xff" * 9 + b"\x01", "t").varint() == 2**64 - 1
    for bad in (b"\x80\x00", b"\xff" * 9 + b"\x02", b"\x80" * 10 + b"\x01"):
        with pytest.raises(rr.MalformedFileError):
            rr.ByteCursor(bad, "t").varint()
