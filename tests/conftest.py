"""Shared fixtures: the bundled clips and one small real encode reused by many tests."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
CLIPS = DATA / "clips"


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
