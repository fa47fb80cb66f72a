"""benchmarks.float_fit: every model and a HiNeRV width ratio fit at the budget and train."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from benchmarks.float_fit import fit

CLIP = str(Path(__file__).parent.parent / "data" / "clips" / "chaplin_96x72_16f.mkv")


@pytest.mark.parametrize(("what", "widths_equal"), [("hinerv:1.0", True), ("hinerv:2.0", False)])
def test_hinerv_width_ratio_is_sized_within_the_budget(what: str, widths_equal: bool) -> None:
    row = fit(CLIP, what, 12_000, 1, 4)
    assert row["parameters"] <= 12_000
    assert (len(set(row["channels"])) == 1) is widths_equal
    assert math.isfinite(row["psnr_rgb"])


def test_registered_model_uses_its_own_sizing() -> None:
    row = fit(CLIP, "ds-nerv", 12_000, 1, 4)
    assert 9_000 < row["parameters"] <= 12_000


def test_curves_hold_every_epoch_and_are_plotted(tmp_path: Path) -> None:
    import json

    import torch

    from benchmarks.float_fit import main

    png = tmp_path / "curves.png"
    threads = torch.get_num_threads()
    try:
        main([CLIP, "--models", "nerv", "--size", "8k", "--epochs", "3", "--frames", "4",
              "--curves", str(png)])  # fmt: skip
    finally:
        torch.set_num_threads(threads)  # main sets the process's threads
    rows = json.loads((tmp_path / "curves.json").read_text())
    assert len(rows[0]["curve"]) == 3
    assert rows[0]["curve"][-1] == pytest.approx(rows[0]["psnr_rgb"], abs=0.01)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
