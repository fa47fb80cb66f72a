"""Shared fixtures: the bundled clips and one small real encode reused by many tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
CLIPS = DATA / "clips"


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> Iterator[None]:
    """Tiny convolutions gain nothing from threads, and on a busy 2-core machine OpenMP threads
    waiting for each other made training tests 10-50x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def chaplin() -> Path:
    return CLIPS / "chaplin_96x72_16f.mkv"


@pytest.fixture(scope="session")
def bunny() -> Path:
    return CLIPS / "bunny_160x80_16f.mkv"


@pytest.fixture(scope="session")
def small_encode(tmp_path_factory: pytest.TempPathFactory, chaplin: Path):
    """A real .nvc of 8 chaplin frames (tiny NeRV, few epochs) and the encoder's report."""
    from nvcodec import EncodeOptions, encode

    out = tmp_path_factory.mktemp("enc") / "chaplin.nvc"
    options = EncodeOptions(size=12_000, epochs=4, frames=(0, 8), device="cpu", seed=3)
    report = encode(chaplin, out, options)
    return out, report
