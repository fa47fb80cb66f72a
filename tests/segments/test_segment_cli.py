"""``nvc encode --segment``, ``nvc info`` and ``nvc decode`` of segmented files from the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import main

from .conftest import CLIP


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args))


def test_encode_info_decode(tmp_path: Path) -> None:
    out = tmp_path / "c.nvc"
    common = ["--size", "20k", "--epochs", "1", "--rd-epochs", "1", "--threads", "1"]
    result = run("encode", str(CLIP), "-o", str(out), "--segment", "10", *common)
    assert result.exit_code == 0, result.output
    assert "in 2 segments" in result.output
    assert "segment 1 done (2/2)" in result.output  # progress lines (stderr is mixed in)
    info = run("info", str(out))
    assert info.exit_code == 0, info.output
    assert "segmented" in info.output
    assert "10:16" in info.output
    detail = run("info", str(out), "--segment", "1", "--no-tensors")
    assert "6 frames" in detail.output
    decoded = run("decode", str(out), "-o", str(tmp_path / "x.y4m"), "--frames", "8:12")
    assert decoded.exit_code == 0, decoded.output
    assert (tmp_path / "x.y4m").stat().st_size > 4 * 160 * 80


def test_dry_run_shows_the_segments(tmp_path: Path) -> None:
    result = run(
        "encode", str(CLIP), "-o", str(tmp_path / "c.nvc"), "--segment", "auto", "--dry-run"
    )
    assert result.exit_code == 0, result.output
    assert "scene cuts detected: none" in result.output
    assert "frames 0:16" in result.output
    assert not (tmp_path / "c.nvc").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--jobs", "2"], "apply to --segment"),
        (["--segment", "0"], "segment length"),
        (["--segment", "x"], "number of frames or 'auto'"),
        (["--segment", "4", "--jobs", "2", "--ray", "auto"], "exclude each other"),
        (["--segment", "4", "--jobs", "0"], "--jobs must be"),
    ],
)
def test_bad_options_refused_before_training(tmp_path: Path, args: list[str], message: str) -> None:
    result = run("encode", str(CLIP), "-o", str(tmp_path / "c.nvc"), *args)
    assert result.exit_code != 0
    assert message in result.output
    assert not (tmp_path / "c.nvc").exists()
