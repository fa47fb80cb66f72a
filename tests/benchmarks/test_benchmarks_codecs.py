"""External codecs through PyAV: real elementary streams, rate from the file, GOP structure."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.codecs import (
    X264,
    X265,
    CodecRun,
    Source,
    decode_elementary_stream,
    find_info_sei,
)
from nvcodec.io import compute_metrics, read_video

CLIPS = Path(__file__).resolve().parents[1] / "data" / "clips"


@pytest.fixture(scope="module")
def source() -> Source:
    path = CLIPS / "chaplin_96x72_16f.mkv"
    reference, info = read_video(path, (0, 8))
    return Source(path, (0, 8), reference, info)


def _run(codec: X264 | X265, source: Source, crf: float, folder: Path) -> CodecRun:
    return codec.run(source, crf, folder / f"{codec.label}_{crf:g}")


def test_x264_writes_a_raw_stream_and_decodes_every_frame(source: Source, tmp_path: Path) -> None:
    psnrs = []
    for crf in (40, 30, 20):
        run = _run(X264(), source, crf, tmp_path)
        assert run.bitstream.suffix == ".h264"
        assert run.bitstream.is_file()
        assert run.bytes == run.bitstream.stat().st_size
        assert run.decoded.count == source.reference.count
        assert run.bitstream.read_bytes()[:4] in (b"\x00\x00\x00\x01", b"\x00\x00\x01\x09")
        # chaplin is grey: its chroma survives losslessly, so compare luma
        psnrs.append(compute_metrics(source.reference, run.decoded, source.info.colour).psnr_y)
    assert psnrs[0] < psnrs[1] < psnrs[2]


@pytest.mark.parametrize("cls", [X264, X265])
def test_weak_anchor_has_no_b_frames_and_strong_one_has(
    cls: type[X264 | X265], source: Source, tmp_path: Path
) -> None:
    strong = _run(cls(), source, 30, tmp_path)
    weak = _run(cls(preset="medium", bframes=False), source, 30, tmp_path)
    assert weak.notes["frame_types"].count("B") == 0
    assert strong.notes["frame_types"].count("B") > 0
    # the types come from decoding the file itself
    _, types, _ = decode_elementary_stream(weak.bitstream)
    assert "B" not in types
    assert types[0] == "I"
    assert cls(preset="medium", bframes=False).label.endswith("-medium-noB")
    assert cls().label.endswith("-veryslow")


@pytest.mark.parametrize("cls", [X264, X265])
def test_info_sei_is_recorded_and_stripped(
    cls: type[X264 | X265], source: Source, tmp_path: Path
) -> None:
    kept = cls(strip_info_sei=False).run(source, 30, tmp_path / "kept")
    stripped = cls().run(source, 30, tmp_path / "stripped")
    info = stripped.notes["encoder_info"]
    assert info.startswith(cls.family)
    assert "options:" in info
    data = kept.bitstream.read_bytes()
    assert kept.bytes == kept.notes["encoder_bytes"] == len(data)
    found = find_info_sei(data, hevc=cls is X265)
    assert found is not None
    start, end, text = found
    assert text == kept.notes["encoder_info"]
    assert end - start == kept.notes["info_sei_bytes"] > 0
    # the stripped stream lost exactly that NAL unit and still decodes every frame
    stripped_data = stripped.bitstream.read_bytes()
    assert stripped.bytes == stripped.notes["encoder_bytes"] - stripped.notes["info_sei_bytes"]
    assert info.encode() not in stripped_data
    assert find_info_sei(stripped_data, hevc=cls is X265) is None
    assert stripped.decoded.count == source.reference.count
