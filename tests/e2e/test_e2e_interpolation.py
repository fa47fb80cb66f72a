"""Frame interpolation: DS-NeRV's codes are continuous in time, so --fps renders new frames."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from nvcodec import EncodeOptions, decode, decode_frames, encode
from nvcodec.errors import ConfigError
from nvcodec.io import read_video
from nvcodec.ranges import first_output_index, output_positions, parse_fps


def test_parse_fps():
    assert parse_fps("2x", Fraction(25)) == 50
    assert parse_fps("1.5x", Fraction(24)) == 36
    assert parse_fps("30000/1001", Fraction(25)) == Fraction(30000, 1001)
    assert parse_fps("12", Fraction(24)) == 12
    for bad in ("0", "-5", "fast", "1/0", "5000"):
        with pytest.raises(ConfigError):
            parse_fps(bad, Fraction(25))


def test_output_positions_keep_duration():
    assert output_positions(0, 4, Fraction(25), Fraction(50)) == [0, 0.5, 1, 1.5, 2, 2.5, 3, 3]
    assert output_positions(2, 6, Fraction(24), Fraction(12)) == [2, 4]
    assert output_positions(0, 3, Fraction(25), Fraction(25)) == [0, 1, 2]


@pytest.mark.parametrize(("source", "output"), [(25, 50), (24, 12), (25, 60), (30, 29.97)])
def test_range_decodes_join_into_the_whole_decode(source, output):
    src, out = Fraction(source), Fraction(output).limit_denominator(1001)
    whole = output_positions(0, 16, src, out, frame_count=16)
    joined = []
    for a, b in ((0, 5), (5, 8), (8, 16)):
        part = output_positions(a, b, src, out, frame_count=16)
        assert not part or first_output_index(a, src, out) == len(joined)
        joined += part
    assert joined == whole
    assert output_positions(0, 8, Fraction(25), Fraction(50), frame_count=16)[-2:] == [7.0, 7.5]


@pytest.fixture(scope="module")
def dsnerv_file(tmp_path_factory, chaplin):
    path = tmp_path_factory.mktemp("interp") / "d.nvc"
    encode(chaplin, path, EncodeOptions(size=20_000, epochs=3, frames=(0, 6), device="cpu"))
    return path


def test_double_rate_renders_stored_and_in_between_frames(dsnerv_file, tmp_path):
    out = tmp_path / "2x.y4m"
    report = decode(dsnerv_file, str(out), fps="2x", device="cpu")
    frames, info = read_video(out)
    assert info.fps == 50
    assert frames.count == report.frames == 12
    stored = decode_frames(dsnerv_file, device="cpu")
    # even output frames are the stored frames (±1 for batch-dependent float rounding)
    diff = np.abs(frames.y[0:12:2].astype(int) - stored.y.astype(int))
    assert diff.max() <= 1
    # odd ones are new frames, different from both neighbours
    assert not np.array_equal(frames.y[1], frames.y[0])
    assert not np.array_equal(frames.y[1], frames.y[2])


def test_fps_on_a_range_and_png_numbering(dsnerv_file, tmp_path):
    (tmp_path / "f").mkdir()
    decode(dsnerv_file, str(tmp_path / "f" / "%03d.png"), frames=(2, 4), fps="2x", device="cpu")
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == [
        "004.png",
        "005.png",
        "006.png",
        "007.png",
    ]


def test_models_without_continuous_time_refuse_fps(dsnerv_file, tmp_path, monkeypatch):
    from nvcodec.models.dsnerv import DSNeRV

    monkeypatch.setattr(DSNeRV, "INTERPOLATES", False)
    out = tmp_path / "x.y4m"
    with pytest.raises(ConfigError, match="cannot render frames between"):
        decode(dsnerv_file, str(out), fps="2x", device="cpu")
    assert not out.exists()


@pytest.mark.parametrize("model", ["ds-nerv-static", "ds-nerv-dynamic"])
def test_ablation_models_round_trip(tmp_path, chaplin, model):
    path = tmp_path / "a.nvc"
    report = encode(chaplin, path, EncodeOptions(model=model, size=20_000, epochs=2, frames=(0, 4)))
    assert report.parameters <= 20_000
    assert decode_frames(path, device="cpu").count == 4
