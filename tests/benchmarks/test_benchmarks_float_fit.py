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
