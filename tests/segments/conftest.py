"""A real segmented file shared by the segment tests: 16 Bunny frames as segments of 6."""

from __future__ import annotations

from pathlib import Path

import pytest

CLIP = Path(__file__).parents[1] / "data" / "clips" / "bunny_160x80_16f.mkv"


def tiny_options(**changes: object):  # type: ignore[no-untyped-def]
    from nvcodec import EncodeOptions

    base = dict(size=20_000, epochs=1, rd_epochs=1, device="cpu", seed=1, overwrite=True)
    return EncodeOptions(**{**base, **changes})  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def segmented(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """(path, report) of a three-segment file: frames 0:6, 6:12, 12:16."""
    from nvcodec.scenes import SegmentRule
    from nvcodec.segment_encoder import Execution, encode_video

    out = tmp_path_factory.mktemp("seg") / "bunny.nvc"
    report = encode_video(CLIP, out, tiny_options(), SegmentRule(length=6), Execution(threads=1))
    return out, report
