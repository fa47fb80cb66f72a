"""The equal-budget / equal-bytes model table."""

from __future__ import annotations

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
