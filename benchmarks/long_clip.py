"""A long test clip with real scene cuts: shared clips at one size, back to back (issue #15).

``python -m benchmarks.long_clip OUT.y4m [--scale 4] [--loop N]`` writes Bunny (132 frames),
Marathon, ToS pan, dashcam and event (48 each) at 1/``scale`` of 640×320, 324 frames with four
true cuts (printed, and written next to the clip as ``OUT.cuts.json``). Event (640×480) is
cropped to its middle 640×320 first. ``--loop N`` repeats the whole clip N times (for memory
measurements at N× the length; the repeats add N−1 cuts). Y4M keeps the frames lossless; the
clip is built from ``../shared/clips`` and is not committed.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import av
import numpy as np

from nvcodec.io import Yuv420Frames, read_video
from nvcodec.io.colour import ColourSpec
from nvcodec.io.writers import open_writer

CLIPS = (
    "bunny_640x320_132f.mkv",
    "marathon_640x320_48f.mp4",
    "tos_pan_640x320_48f.mp4",
    "dashcam_640x320_48f.mp4",
    "event_640x480_48f.mp4",
)
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "clips"


def _resized(frames: Yuv420Frames, width: int, height: int) -> Yuv420Frames:
    """Area-downscale (after a centre crop to 2:1) with swscale, plane by plane in yuv420p."""
    rows = frames.width // 2
    top = (frames.height - rows) // 2 // 2 * 2
    out: list[tuple[np.ndarray, ...]] = []
    for i in range(frames.count):
        y = frames.y[i, top : top + rows]
        u = frames.u[i, top // 2 : (top + rows) // 2]
        v = frames.v[i, top // 2 : (top + rows) // 2]
        packed = np.concatenate([y.reshape(-1), u.reshape(-1), v.reshape(-1)])
        frame = av.VideoFrame.from_ndarray(
            packed.reshape(rows * 3 // 2, frames.width), format="yuv420p"
        )
        small = frame.reformat(width, height, "yuv420p", interpolation="AREA").to_ndarray()
        out.append(
            (
                small[:height],
                small[height : height * 5 // 4].reshape(height // 2, width // 2),
                small[height * 5 // 4 :].reshape(height // 2, width // 2),
            )
        )
    return Yuv420Frames(*(np.stack([f[k] for f in out]) for k in range(3)))


def build(output: str, scale: int, loop: int) -> list[int]:
    """Write the clip; return the true cut positions (first frame of each new shot)."""
    width, height = 640 // scale, 320 // scale
    parts = []
    for name in CLIPS:
        frames, _ = read_video(SHARED / name)
        parts.append(_resized(frames, width, height))
    clip = Yuv420Frames.concatenate(parts * loop)
    cuts = list(np.cumsum([p.count for p in parts * loop])[:-1])
    colour = ColourSpec(matrix="bt709", range="limited")
    with open_writer(
        output, width=width, height=height, fps=24, colour=colour, overwrite=True
    ) as writer:
        writer.write(clip)
    return [int(c) for c in cuts]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("output")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--loop", type=int, default=1)
    args = parser.parse_args()
    cuts = build(args.output, args.scale, args.loop)
    Path(os.path.splitext(args.output)[0] + ".cuts.json").write_text(json.dumps(cuts) + "\n")
    print(f"{args.output}: cuts at {cuts}")


if __name__ == "__main__":
    main()
