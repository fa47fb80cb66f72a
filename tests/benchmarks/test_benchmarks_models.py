"""The equal-budget / equal-bytes model table."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.models.run import markdown

ROW = {
    "model": "hinerv",
    "parameters": 95_000,
    "macs_per_pixel": 2378.0,
    "bytes": 70_000,
    "bpp": 0.33,
    "psnr_rgb": 30.0,
    "psnr_yuv": 34.0,
    "ms_ssim": 0.98,
    "train_s": 600.0,
    "decode_fps": 41.0,
}
META = {
    "clip": "c.mkv",
    "width": 160,
    "height": 80,
    "frames": 48,
    "scale": 4,
    "epochs": 80,
    "seed": 0,
    "device": "cpu",
    "torch": "x",
    "machine": "y",
    "command": "z",
    "training": "bf16 autocast",
}


def test_table_holds_budget_and_file_size_points() -> None:
    old = {**ROW, "budget": 100_000}  # cached before target_bpp existed
    del old["decode_fps"]
    rows = [{**ROW, "budget": None, "target_bpp": 0.3, "model": "ds-nerv"}, old]
    table = markdown(rows, META).splitlines()
    assert "training in bf16 autocast." in table[2]
    body = [line for line in table if line.startswith("| 0")]
    assert body[0].startswith("| 0.3 bpp | ds-nerv | 95,000 | 2,378 |")
    assert body[0].endswith("| 600 | 41 |")
    assert body[1].startswith("| 0.1M | hinerv |")


def test_cached_point_keys_do_not_change_with_neutral_new_options() -> None:
    from benchmarks.nvc import NvcCodec

    settings = NvcCodec("ds-nerv", epochs=2, lam="auto").settings(50_000)
    assert "patch" not in settings["recipe"]  # whole-frame training keys as before --patch


@pytest.mark.parametrize(
    ("precision", "report", "ds_nerv"),
    [("auto", "results-bf16.md", "bf16 autocast"), ("fp32", "results.md", "fp32")],
)
def test_report_takes_each_model_in_the_arithmetic_it_trains_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, precision: str, report: str, ds_nerv: str
) -> None:
    import argparse
    import json
    import types

    import torch

    from benchmarks.models.run import _write_report

    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    points = {  # nerv++ trains in fp32 on CPUs whatever --precision says (its recipe)
        "c-s4-ds-nerv-100000-e80.json": {"model": "ds-nerv"},  # cached before bf16: fp32
        "c-s4-ds-nerv-100000-e80-bf16.json": {"model": "ds-nerv", "training": "bf16 autocast"},
        "c-s4-nerv++-100000-e80.json": {"model": "nerv++", "training": "fp32"},
        "c-s4-nerv-100000-e800.json": {"model": "nerv"},  # other epochs: never taken
    }
    for name, fields in points.items():
        row = {**ROW, "budget": 100_000, **fields, "psnr_rgb": len(fields)}
        (tmp_path / name).write_text(json.dumps(row))
    args = argparse.Namespace(
        clip=Path("c.mkv"), scale=4, epochs=80, seed=0, device="cpu", out=tmp_path,
        precision=precision,
    )  # fmt: skip
    info = types.SimpleNamespace(width=160, height=80, frame_count=48)
    _write_report(args, info, [], ["x"])
    lines = (tmp_path / report).read_text().splitlines()
    body = [line for line in lines if line.startswith("| 0.1M")]
    assert [line.split(" | ")[1] for line in body] == ["ds-nerv", "nerv++"]
    trained = "bf16 autocast (ds-nerv), other models fp32" if ds_nerv != "fp32" else "fp32"
    assert f"training in {trained}." in lines[2]
