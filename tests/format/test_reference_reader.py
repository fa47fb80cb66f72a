"""The independent reader (written from FORMAT.md alone) agrees bit for bit with the decoder.

Every golden file is read twice: with constriction decoding the payloads, and with the plain
Python + numpy coder of `ans_reader.py` (FORMAT.md's "Entropy coding in detail"); both must give
the project's symbols and dequantised tensors exactly.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import subprocess
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
        assert a.dtype == theirs[i].dtype, i
        assert np.array_equal(a, b), f"tensor {i} differs"


def _check_image(image: bytes, nvc, name: str) -> None:
    """Both decoders give the same symbols, and the project's metadata and tensors."""
    shapes, expected = _project_tensors(nvc, name)
    metadata, _, symbols = rr.parse_symbols(image, shapes, name, decoder="constriction")
    assert metadata == nvc.metadata()
    _, _, numpy_symbols = rr.parse_symbols(image, shapes, name, decoder="numpy")
    _assert_identical(numpy_symbols, symbols)
    for decoder in rr.DECODERS:
        _, tensors = rr.parse_tensors(image, shapes, name, decoder=decoder)
        assert all(t.dtype == np.float32 for t in tensors)
        _assert_identical(tensors, expected)


def test_golden_files_found() -> None:
    assert len(ONE_SEGMENT) >= 8
    assert SEGMENTED.is_file()


@pytest.mark.parametrize("path", ONE_SEGMENT, ids=lambda p: p.stem)
def test_one_segment_file_matches_decoder(path: Path) -> None:
    _check_image(path.read_bytes(), read_nvc(path), path.name)


def test_segmented_file_matches_decoder() -> None:
    segments = rr.read_segments(SEGMENTED)
    with open_video(SEGMENTED) as video:
        assert [frames for frames, _ in segments] == [e.frame_count for e in video.entries]
        assert [len(image) for _, image in segments] == [e.length for e in video.entries]
        for k, (_, image) in enumerate(segments):
            _check_image(image, video.segment(k), f"{SEGMENTED.name} (segment {k})")


def test_golden_files_cover_every_entropy_kind() -> None:
    kinds = set()
    for path in ONE_SEGMENT:
        container = rr.parse_container(path.read_bytes(), path.name)
        table, data = container.sections[rr.TENSOR_TABLE], container.sections[rr.TENSOR_DATA]
        shapes, _ = _project_tensors(read_nvc(path), path.name)
        kinds |= {e.kind for e in rr.parse_tensor_table(table, shapes, len(data))}
    assert kinds == {0, 1, 2, 3}


_FRESH_READ = """
import hashlib, importlib.util, json, sys
spec = importlib.util.spec_from_file_location("rr", sys.argv[1])
rr = importlib.util.module_from_spec(spec); sys.modules["rr"] = rr; spec.loader.exec_module(rr)
digests = {}
for path, shapes in json.loads(sys.stdin.read()):
    _, tensors = rr.read_tensors(path, [tuple(s) for s in shapes], decoder="numpy")
    digests[path] = hashlib.sha256(b"".join(t.tobytes() for t in tensors)).hexdigest()
loaded = sorted(m for m in ("constriction", "nvcodec", "bitstream", "torch") if m in sys.modules)
print(json.dumps({"digests": digests, "loaded": loaded}))
"""


def test_numpy_path_needs_neither_constriction_nor_nvcodec() -> None:
    """In a fresh interpreter, the numpy decoder reads every one-segment golden file to the
    project's exact float32 bytes without importing constriction, nvcodec, bitstream or torch."""
    jobs, expected = [], {}
    for path in ONE_SEGMENT:
        shapes, tensors = _project_tensors(read_nvc(path), path.name)
        jobs.append((str(path), shapes))
        expected[str(path)] = hashlib.sha256(b"".join(t.tobytes() for t in tensors)).hexdigest()
    result = subprocess.run(
        [sys.executable, "-c", _FRESH_READ, str(HERE / "reference_reader.py")],
        input=json.dumps(jobs),
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(result.stdout)
    assert report["loaded"] == []
    assert report["digests"] == expected


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
