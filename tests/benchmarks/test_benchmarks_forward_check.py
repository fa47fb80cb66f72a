"""benchmarks.forward_check: its hash identifies the output, so two checkouts can be compared."""

from __future__ import annotations

import pytest

from benchmarks.forward_check import check


@pytest.mark.parametrize("layout", ["nchw", "channels-last"])
def test_forward_check_hash_is_reproducible_and_follows_the_values(monkeypatch, layout) -> None:
    first = check("nerv", 16, 32, 4, 8_000, 1, layout)
    again = check("nerv", 16, 32, 4, 8_000, 1, layout)
    assert first.split("sha256 ")[1] == again.split("sha256 ")[1]
    assert "batch  4" in first
    assert float(first.split("frames/s")[0].split()[-1]) > 0

    from nvcodec.models import blocks

    real = blocks.pixel_shuffle
    monkeypatch.setattr(blocks, "pixel_shuffle", lambda x, s: real(x, s) * (1 + 2**-20))
    changed = check("nerv", 16, 32, 4, 8_000, 1, layout)
    assert changed.split("sha256 ")[1] != first.split("sha256 ")[1]


def test_forward_check_runs_every_model_kind() -> None:
    lines = [check(m, 16, 32, 4, 8_000, 1, "channels-last") for m in ("ds-nerv", "hinerv-flat")]
    assert all(len(line.split("sha256 ")[1]) == 16 for line in lines)
