"""``python -m benchmarks.throughput --quick``: every figure measured, positive and finite."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from benchmarks.throughput import main


def _positive(value: object) -> bool:
    """A measured number: int or float (not bool), finite and above zero."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return number and math.isfinite(value) and value > 0  # type: ignore[arg-type]


def test_quick_run_measures_every_model_and_writes_the_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)  # bf16 steps too
    threads = torch.get_num_threads()
    try:
        main(["--quick", "--models", "nerv,ds-nerv", "--threads", "1", "--out", str(tmp_path)])
    finally:
        torch.set_num_threads(threads)  # main sets the process's threads; later tests keep theirs
    result = json.loads((tmp_path / "throughput-32x16.json").read_text())
    rows = result["rows"]
    assert [r["model"] for r in rows] == ["nerv", "ds-nerv"]
    assert set(rows[0]) == set(rows[1])
    figures = [(r["model"], k, v) for r in rows for k, v in r.items() if k != "model"]
    assert [f for f in figures if not _positive(f[2])] == []
    bounds = dict(result["meta"]["bounds"])
    by_layout = bounds.pop("conv_gflops_by_layout")
    assert set(by_layout) == {"nchw", "channels-last"}
    assert all(_positive(v) for v in [*bounds.values(), *by_layout.values()])
    table = (tmp_path / "throughput-32x16.md").read_text()
    assert "| nerv | " in table
    assert "| ds-nerv | " in table
    assert "GFLOP/s" in table.splitlines()[2]
    assert "train steps/s fp32 | bf16 |" in table
