"""Resource limits of decoding, from the header alone: memory, output frames, disk, fps, names."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import pytest

from nvcodec import decode, decode_frames, inspect
from nvcodec.errors import ConfigError, OutputError
from nvcodec.limits import (
    LimitError,
    check_output_frames,
    default_max_memory,
    memory_needed,
    parse_bytes,
)
from nvcodec.ranges import output_count, output_positions, parse_fps


def test_memory_limit_is_checked_before_anything_is_built(small_encode) -> None:
    path, report = small_encode
    need = memory_needed(report.parameters, 1)
    with pytest.raises(LimitError, match="--max-memory"):
        decode_frames(path, device="cpu", max_memory=need // 2)
    with pytest.raises(LimitError, match="parameters"):
        inspect(path, max_memory=need // 2)
    assert decode_frames(path, device="cpu", max_memory=1 << 30).count == 8
    assert default_max_memory() > 1 << 30  # this machine and CI have several GiB


@pytest.mark.parametrize(
    ("text", "expected"),
    [("4G", 4 << 30), ("512M", 512 << 20), ("1.5g", 3 << 29), ("2GiB", 2 << 30)],
)
def test_parse_bytes(text: str, expected: int) -> None:
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["", "lots", "-1G", "10", "2000T"])
def test_parse_bytes_refuses(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_bytes(text)


@pytest.mark.parametrize("fps", ["1/1000000000000", "0.0000001", "0", "-2", "1001", "1e9x"])
def test_output_rates_are_bounded(fps: str) -> None:
    with pytest.raises(ConfigError, match="fps"):
        parse_fps(fps, Fraction(25))


@pytest.mark.parametrize(
    ("start", "stop", "source", "output"),
    [(0, 8, 25, 50), (3, 11, 25, 60), (0, 5, 30000 / 1001, 24), (2, 3, 1_000_000, 24)],
)
def test_output_count_is_the_length_of_the_positions(start, stop, source, output) -> None:
    source, output = Fraction(source).limit_denominator(1001), Fraction(output)
    assert output_count(start, stop, source, output) == len(
        output_positions(start, stop, source, output)
    )


def test_too_many_output_frames_are_refused_first(small_encode, tmp_path, monkeypatch) -> None:
    import nvcodec.limits

    path, _ = small_encode
    check_output_frames(1_000_000, "x")
    with pytest.raises(LimitError, match="1,000,001 frames"):
        check_output_frames(1_000_001, "x")
    monkeypatch.setattr(nvcodec.limits, "MAX_OUTPUT_FRAMES", 10)
    out = tmp_path / "x.y4m"
    with pytest.raises(LimitError, match="16 frames"):
        decode(path, str(out), fps="2x", device="cpu")  # 8 stored frames → 16
    assert not out.exists()


def test_a_y4m_that_does_not_fit_on_disk_is_refused_first(small_encode, tmp_path, monkeypatch):
    import shutil

    path, _ = small_encode
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage._replace(free=50_000))
    out = tmp_path / "x.y4m"
    with pytest.raises(LimitError, match="free"):
        decode(path, str(out), device="cpu")  # 8 frames of 96×72: 83 kB
    assert os.listdir(tmp_path) == []


def test_png_field_width_is_bounded(small_encode, tmp_path: Path) -> None:
    path, _ = small_encode
    for pattern in ("%0999999999d.png", "%09999999999999d.png", "%17d.png"):
        with pytest.raises(OutputError, match="16 digits"):
            decode(path, str(tmp_path / pattern), device="cpu")
    decode(path, str(tmp_path / "%016d.png"), device="cpu", frames=(0, 1))
    assert os.listdir(tmp_path) == ["0000000000000000.png"]
