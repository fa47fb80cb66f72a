"""``python -m benchmarks`` end to end on a tiny clip: JSON, results.md, PNG, cache, --force."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from benchmarks.run import BenchConfig, main, run_benchmark

CLIP = Path(__file__).resolve().parents[1] / "data" / "clips" / "chaplin_96x72_16f.mkv"


def _config(out: Path, **kwargs: object) -> BenchConfig:
    base: dict[str, object] = {
        "clips": (CLIP,),
        "codecs": ("x264", "nvc-nerv"),
        "crfs": (30.0, 45.0),
        "sizes": (12_000, 16_000),
        "epochs": 1,
        "device": "cpu",
        "out": out,
        "quick": True,
    }
    base.update(kwargs)
    return BenchConfig(**base)  # type: ignore[arg-type]


def test_quick_run_writes_points_report_plot_and_uses_the_cache(tmp_path: Path) -> None:
    first = run_benchmark(_config(tmp_path))
    assert (first.computed, first.cached, first.failed) == (4, 0, [])
    folder = tmp_path / "chaplin_96x72_16f_0-8"
    points = sorted((folder / "points").glob("*.json"))
    assert len(points) == 4
    assert (folder / "results.md").is_file()
    assert (folder / "rd.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "summary.md").is_file()

    for path in points:
        record = json.loads(path.read_text())
        stream = folder / record["bitstream"]
        assert record["bytes"] == stream.stat().st_size
        assert record["bpp"] == pytest.approx(8 * record["bytes"] / (96 * 72 * 8))
        assert record["frames"] == [0, 8]
        assert len(record["per_frame"]["psnr_y"]) == 8
        assert math.isfinite(record["psnr_y"])
        assert record["versions"]["pyav"]
        assert record["settings"]
        if record["codec"] in ("nvc-nerv", "nvc-nerv-bf16"):  # -bf16: trained under autocast
            assert stream.suffix == ".nvc"
            assert record["settings"]["epochs"] == 1
            assert record["notes"]["encoder_report_matches"] is True
        else:
            assert record["codec"] == "x264-veryslow"
            assert record["settings"]["options"]["preset"] == "veryslow"
            assert record["versions"]["encoder_build"].startswith("x264 - core")
    text = (folder / "results.md").read_text()
    assert "x264-veryslow" in text
    assert "nvc-nerv" in text
    assert "BD-rate" in text

    mtimes = {p: p.stat().st_mtime_ns for p in points}
    second = run_benchmark(_config(tmp_path))
    assert (second.computed, second.cached) == (0, 4)
    assert {p: p.stat().st_mtime_ns for p in points} == mtimes

    forced = run_benchmark(_config(tmp_path, force=True))
    assert (forced.computed, forced.cached) == (4, 0)

    changed = run_benchmark(_config(tmp_path, crfs=(30.0, 40.0)))
    assert (changed.computed, changed.cached) == (1, 3)

    # --report-only: the reports from what is cached; an uncached point is skipped, not encoded
    report = run_benchmark(_config(tmp_path, crfs=(30.0, 45.0, 50.0), report_only=True))
    assert (report.computed, report.cached, report.failed) == (0, 4, [])
    assert not list((folder / "points").glob("x264-veryslow_crf50*"))


def test_dry_run_lists_points_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [str(CLIP), "--quick", "--codecs", "x264-medium-noB,nvc-nerv", "--crfs", "30,40"]
    code = main([*args, "--sizes", "12k", "--out", str(tmp_path / "out"), "--dry-run"])
    assert code == 0
    err = capsys.readouterr().err
    assert err.count("would encode") == 3
    assert "x264-medium-noB crf=30" in err
    assert not (tmp_path / "out").exists()


def test_unknown_codec_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(CLIP), "--codecs", "x266", "--out", str(tmp_path), "--dry-run"]) == 1
    assert "unknown codec 'x266'" in capsys.readouterr().err


def _record(key: dict) -> dict:
    return {"key": key, "bpp": 0.5}


def test_cached_point_is_found_after_a_neutral_recipe_field_was_added(tmp_path: Path) -> None:
    from benchmarks.results import load_point

    old = {"codec": "nvc-x", "settings": {"recipe": {"lr": 0.01, "patch": 0}}}
    (tmp_path / "nvc-x_size100_aaaaaaaaaa.json").write_text(json.dumps(_record(old)))
    now = {"codec": "nvc-x", "settings": {"recipe": {"lr": 0.01, "clip": 0.0}}}
    found = load_point(tmp_path / "nvc-x_size100_bbbbbbbbbb.json", now)
    assert found is not None
    assert found["key"] == old
    # a real difference, or the field switched on, is another encode
    for other in ({"lr": 0.02, "clip": 0.0}, {"lr": 0.01, "clip": 0.1}):
        key = {"codec": "nvc-x", "settings": {"recipe": other}}
        assert load_point(tmp_path / "nvc-x_size100_bbbbbbbbbb.json", key) is None
    # another point of the same codec is never taken
    assert load_point(tmp_path / "nvc-x_size200_bbbbbbbbbb.json", now) is None


def test_fp32_points_cached_before_bf16_training_stay_found(tmp_path: Path) -> None:
    from benchmarks.results import load_point

    old = {"codec": "nvc-x", "settings": {"recipe": {"lr": 0.01, "amp": True}}}  # ran fp32
    (tmp_path / "nvc-x_size100_aaaaaaaaaa.json").write_text(json.dumps(_record(old)))
    fp32 = {"codec": "nvc-x", "settings": {"recipe": {"lr": 0.01, "amp": False}}}
    assert load_point(tmp_path / "nvc-x_size100_bbbbbbbbbb.json", fp32) is not None
    bf16 = {"codec": "nvc-x", "settings": {"recipe": {"lr": 0.01, "amp": True, "bf16": True}}}
    assert load_point(tmp_path / "nvc-x_size100_bbbbbbbbbb.json", bf16) is None


@pytest.mark.parametrize("amx", [True, False])
def test_nvc_points_key_the_training_arithmetic(monkeypatch: pytest.MonkeyPatch, amx: bool) -> None:
    import torch

    from benchmarks.nvc import NvcCodec

    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    auto = NvcCodec("nerv", epochs=2, device="cpu").settings(50_000)["recipe"]
    fp32 = NvcCodec("nerv", epochs=2, device="cpu", precision="fp32").settings(50_000)["recipe"]
    assert auto.get("bf16", False) is amx
    assert "bf16" not in fp32
    # bf16 curves are other curves: their own label, before the RD suffix
    label = NvcCodec("nerv", epochs=2, device="cpu", lam="auto").label
    assert label == ("nvc-nerv-bf16-rd" if amx else "nvc-nerv-rd")
    assert NvcCodec("nerv", device="cpu", lam="auto", precision="fp32").label == "nvc-nerv-rd"
