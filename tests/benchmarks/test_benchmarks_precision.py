"""``python -m benchmarks.precision``: each encode in fp32 and in bf16, from real files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from benchmarks.precision import main

CLIP = Path(__file__).resolve().parents[1] / "data" / "clips" / "chaplin_96x72_16f.mkv"


@pytest.mark.parametrize("amx", [True, False])
def test_pair_of_encodes_and_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, amx: bool
) -> None:
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    threads = torch.get_num_threads()
    try:
        args = ["--models", "nerv", "--size", "8k", "--epochs", "2", "--frames", "0:4"]
        main([str(CLIP), *args, "--out", str(tmp_path)])
    finally:
        torch.set_num_threads(threads)
    rows = [json.loads(line) for line in (tmp_path / "precision.jsonl").read_text().splitlines()]
    assert [(r["precision"], r["bf16"]) for r in rows] == [("fp32", False), ("auto", amx)]
    assert all(r["bytes"] > 0 and r["psnr_yuv"] > 10 for r in rows)
    table = (tmp_path / "results.md").read_text().splitlines()
    assert len(table) == 3
    assert table[2].startswith("| chaplin_96x72_16f.mkv | 0:4 | nerv")
    assert ("auto = fp32 here" in table[2]) is not amx


def test_step_rates_in_both_arithmetics(tmp_path: Path) -> None:
    threads = torch.get_num_threads()
    try:
        args = ["--steps", "32x16,48x32", "--models", "nerv", "--size", "8k", "--seconds", "0.05"]
        main([*args, "--out", str(tmp_path)])
    finally:
        torch.set_num_threads(threads)
    rows = json.loads((tmp_path / "steps.json").read_text())
    assert [(r["width"], r["height"]) for r in rows] == [(32, 16), (48, 32)]
    assert all(len(r["fp32"]) == len(r["bf16"]) == 2 and r["gain"] > 0 for r in rows)
    table = (tmp_path / "steps.md").read_text().splitlines()
    assert table[0] == "| model | 32×16 | 48×32 |"
    assert table[2].startswith("| nerv | ")
