"""Segmented files end to end: independent segments, range decodes across boundaries, merged
metrics, interpolation across a boundary, and damaged or inconsistent files refused."""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

import bitstream as bs
from nvcodec.decoder import decode, decode_frames, split_positions
from nvcodec.errors import ConfigError
from nvcodec.fileformat import StoredVideo
from nvcodec.inspection import inspect, inspect_segments
from nvcodec.io import compute_metrics, read_video
from nvcodec.segmented import open_video, write_segmented

from .conftest import CLIP, tiny_options


def _images(path: Path) -> list[tuple[int, bytes]]:
    with open_video(path) as nv:
        out = []
        for e in nv.entries:
            image = nv._file.read_span(bs.SectionType.SEGMENT_DATA, e.offset, e.length)  # type: ignore[union-attr]
            out.append((e.frame_count, image))
        return out


def test_layout_and_report(segmented) -> None:  # type: ignore[no-untyped-def]
    path, report = segmented
    with open_video(path) as nv:
        assert nv.segmented
        assert nv.reader_version == (1, 3)  # its segments' channels-last layout needs 1.3
        assert [(e.first_frame, e.stop) for e in nv.entries] == [(0, 6), (6, 12), (12, 16)]
    assert [(s.start, s.stop) for s in report.segments] == [(0, 6), (6, 12), (12, 16)]
    assert report.bytes == path.stat().st_size
    # --size is split by length: 6/16, 6/16 and 4/16 of 20k
    assert [s.parameters for s in report.segments][:2] == [report.segments[0].parameters] * 2
    assert report.segments[2].parameters < report.segments[0].parameters <= 7_500
    assert report.parameters == sum(s.parameters for s in report.segments)


def test_segments_are_independent_files(segmented, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path, _ = segmented
    whole = decode_frames(path)
    start = 0
    for i, (frames, image) in enumerate(_images(path)):
        alone = tmp_path / f"s{i}.nvc"
        alone.write_bytes(image)
        part = decode_frames(alone)
        assert np.array_equal(part.y, whole.y[start : start + frames])
        start += frames


@pytest.mark.parametrize("span", [(4, 9), (5, 6), (6, 7), (11, 13), (0, 16)])
def test_range_across_boundaries_equals_slice(segmented, span: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    path, _ = segmented
    whole = decode_frames(path)
    part = decode_frames(path, frames=span)
    a, b = span
    for plane in ("y", "u", "v"):
        assert np.array_equal(getattr(part, plane), getattr(whole, plane)[a:b])


def test_merged_metrics_equal_a_whole_clip_measurement(segmented) -> None:  # type: ignore[no-untyped-def]
    path, report = segmented
    reference, info = read_video(CLIP)
    measured = compute_metrics(reference, decode_frames(path), info.colour)
    for key in ("psnr_y", "psnr_u", "psnr_v", "psnr_yuv", "psnr_rgb", "ms_ssim"):
        assert getattr(report.metrics, key) == pytest.approx(getattr(measured, key), abs=1e-9)


def test_interpolated_chunks_join_across_a_boundary(segmented, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path, _ = segmented
    for name, frames in (("all", None), ("a", (0, 7)), ("b", (7, 16))):
        decode(path, str(tmp_path / f"{name}.y4m"), frames=frames, fps="2x", device="cpu")
    whole = read_video(tmp_path / "all.y4m")[0]
    joined = [read_video(tmp_path / f"{n}.y4m")[0] for n in ("a", "b")]
    assert whole.count == 32 == joined[0].count + joined[1].count
    assert np.array_equal(whole.y, np.concatenate([j.y for j in joined]))


def test_positions_between_segments_hold_the_last_frame() -> None:
    entries = bs.decode_segment_index(*_index([(6, b"a"), (6, b"b")]))
    parts = split_positions(entries, [4.5, 5.5, 6.0, 11.0])
    assert parts == [(0, [4.5, 5.0]), (1, [0.0, 5.0])]


def _index(segments: list[tuple[int, bytes]]) -> tuple[bytes, int]:
    index, data = bs.encode_segment_index(segments)
    return index, len(data)


def test_info_lists_segments(segmented) -> None:  # type: ignore[no-untyped-def]
    path, report = segmented
    table = inspect_segments(path)
    assert table is not None
    assert [(s.start, s.stop, s.bytes) for s in table.segments] == [
        (s.start, s.stop, s.bytes) for s in report.segments
    ]
    assert [s.psnr_yuv for s in table.segments] == pytest.approx(
        [s.psnr_yuv for s in report.segments], abs=1e-3
    )
    assert inspect(path, segment=2).parameters == report.segments[2].parameters
    with pytest.raises(ConfigError, match="no segment 3"):
        inspect(path, segment=3)


def test_old_reader_says_upgrade(segmented, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    path, _ = segmented
    monkeypatch.setattr("bitstream.container.FORMAT_VERSION", (1, 2))  # segments, not layouts
    with pytest.raises(bs.UnsupportedVersionError, match=r"needs an nvc reader >= 1\.3"):
        open_video(path)


def test_nchw_segments_keep_format_1_2(tmp_path: Path) -> None:
    """A segmented file declares the newest reader its segments need, and no newer."""
    from nvcodec.scenes import SegmentRule
    from nvcodec.segment_encoder import Execution, encode_video

    out = tmp_path / "nchw.nvc"
    options = tiny_options(decode_layout="nchw", frames=(0, 4))
    encode_video(CLIP, out, options, SegmentRule(length=2), Execution(threads=1))
    with open_video(out) as nv:
        assert nv.segmented
        assert nv.reader_version == (1, 2)
        assert nv.segment(0).layout == "nchw"


def _rewrite(path: Path, out: Path, counts: list[int], frames: int | None = None) -> None:
    images = _images(path)
    with open_video(path) as nv:
        video = nv.video
    video = dataclasses.replace(video, frame_count=frames or sum(counts))
    segments = [(n, image) for n, (_, image) in zip(counts, images, strict=True)]
    write_segmented(out, video, segments, {"name": "test"}, overwrite=True)


def test_segment_disagreeing_with_index_refused_before_output(segmented, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path, _ = segmented
    bad = tmp_path / "bad.nvc"
    _rewrite(path, bad, [7, 5, 4])
    out = tmp_path / "out.y4m"
    with pytest.raises(bs.MalformedFileError, match=r"segment 0\).*disagrees"):
        decode(bad, str(out), device="cpu")
    assert not out.exists()


def test_flipped_byte_fails_only_the_segments_that_use_it(segmented, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path, _ = segmented
    blob = bytearray(path.read_bytes())
    blob[-10] ^= 0x40  # inside the last segment
    bad = tmp_path / "flip.nvc"
    bad.write_bytes(bytes(blob))
    assert decode_frames(bad, frames=(0, 12)).count == 12
    out = tmp_path / "out.y4m"
    with pytest.raises(bs.ChecksumError, match="segment 2 checksum"):
        decode(bad, str(out), frames=(10, 16), device="cpu")
    assert not out.exists()


def test_metadata_disagreeing_with_index_refused(tmp_path: Path) -> None:
    from nvcodec.io import ColourSpec

    video = StoredVideo(16, 16, 4, Fraction(24), ColourSpec("bt709", "limited"))
    index, data = bs.encode_segment_index([(4, b"image")])
    meta = bs.encode_metadata({"video": video.to_dict(), "segments": {"count": 2}})
    path = tmp_path / "f.nvc"
    bs.write_file(
        path,
        [
            bs.Section(bs.SectionType.METADATA, meta),
            bs.Section(bs.SectionType.SEGMENT_INDEX, index),
            bs.Section(bs.SectionType.SEGMENT_DATA, data),
        ],
        reader_version=(1, 2),
    )
    with pytest.raises(bs.MalformedFileError, match="disagrees with the metadata"):
        open_video(path)
    with pytest.raises(ValueError, match="add up"):
        write_segmented(tmp_path / "g.nvc", video, [(3, b"image")], {}, overwrite=True)


def test_segmented_file_with_model_tensors_refused(segmented, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path, _ = segmented
    container = bs.read_file(path)
    extra = bs.Section(bs.SectionType.TENSOR_TABLE, b"")
    bad = tmp_path / "both.nvc"
    bs.write_file(bad, [*container.sections, extra], reader_version=(1, 2))
    with pytest.raises(bs.MalformedFileError, match="segmented file with a TENSOR_TABLE"):
        open_video(bad)
    only_index = tmp_path / "index.nvc"
    bs.write_file(only_index, list(container.sections[:2]), reader_version=(1, 2))
    with pytest.raises(bs.MalformedFileError, match="no SEGMENT_DATA"):
        open_video(only_index)


def test_bpp_is_met_by_the_file_as_a_whole(tmp_path: Path) -> None:
    from nvcodec.scenes import SegmentRule
    from nvcodec.segment_encoder import Execution, encode_video

    from .conftest import tiny_options

    out = tmp_path / "rate.nvc"
    options = tiny_options(size=300_000, target_bpp=0.5)
    report = encode_video(CLIP, out, options, SegmentRule(length=8), Execution(threads=1))
    assert report.bpp <= 0.5
    assert report.bpp > 0.42  # and not far below it
    assert report.bytes == out.stat().st_size
