"""Our PSNR on an anchor's decoded frames agrees with ffmpeg's psnr filter (when ffmpeg exists)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from benchmarks.codecs import X264, Source
from nvcodec.io import compute_metrics, open_writer, read_video

BUNNY = Path(__file__).resolve().parents[1] / "data" / "clips" / "bunny_160x80_16f.mkv"


@pytest.mark.skipif(
    shutil.which("ffmpeg") is None,
    reason="no ffmpeg binary on PATH (apt-get install ffmpeg); PyAV alone cannot run this check",
)
def test_psnr_matches_ffmpeg_psnr_filter(tmp_path: Path) -> None:
    reference, info = read_video(BUNNY, (0, 8))
    run = X264().run(Source(BUNNY, (0, 8), reference, info), 32, tmp_path / "x264")
    paths = []
    for name, frames in (("ref", reference), ("dec", run.decoded)):
        path = str(tmp_path / f"{name}.y4m")
        with open_writer(
            path, width=info.width, height=info.height, fps=info.fps, colour=info.colour
        ) as writer:
            writer.write(frames)
        paths.append(path)
    result = subprocess.run(
        ["ffmpeg", "-nostdin", "-i", paths[1], "-i", paths[0], "-lavfi", "psnr", "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=True,
    )
    found = re.search(r"PSNR y:([\d.]+) u:([\d.]+) v:([\d.]+)", result.stderr)
    assert found is not None, result.stderr[-2000:]
    ours = compute_metrics(reference, run.decoded, info.colour)
    for value, theirs in zip((ours.psnr_y, ours.psnr_u, ours.psnr_v), found.groups(), strict=True):
        assert value == pytest.approx(float(theirs), abs=0.01)
