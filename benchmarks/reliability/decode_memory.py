"""Peak memory of ``nvc decode`` for a short and a long clip of the same network.

::

    OMP_NUM_THREADS=1 python -m benchmarks.reliability.decode_memory [--long 8192] [--real 512]

Two pairs of files, each pair sharing one network so only the clip length differs:

- **crafted** (cheap, any length): a real NeRV encode of 4 chaplin frames (96x72) whose METADATA
  is re-written to declare T frames (``video.frames`` = ``model.config.frame_count`` = T) and
  re-packed with valid CRCs. NeRV's parameter count does not depend on T (time enters only through
  the positional encoding of t / (T - 1)), so this is a valid file of a T-frame clip;
- **real**: two real encodes (epochs=1) of a synthetic 48x32 clip with 16 and ``--real`` frames.

Each file is decoded by the real CLI in a fresh process (``nvc decode FILE -o OUT.y4m`` and
``-o -`` piped to /dev/null); the peak RSS of that process is read with ``os.wait4``. Decoding
streams frames in batches (``nvcodec.decoder.render``), so the long clip should cost what the
short one costs; accumulating the frames would add T·W·H·1.5 bytes (yuv420p) or T·W·H·12 bytes
(float RGB).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHAPLIN = ROOT / "tests" / "data" / "clips" / "chaplin_96x72_16f.mkv"


def nvc_command() -> list[str]:
    exe = shutil.which("nvc", path=os.path.dirname(sys.executable)) or shutil.which("nvc")
    return [exe] if exe else [sys.executable, "-m", "cli"]


def peak_rss_mib(args: list[str], stdout_to_null: bool = False) -> float:
    """Run ``args`` in a fresh process and return its own peak RSS (MiB)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with open(os.devnull, "wb") as null:
        proc = subprocess.Popen(
            args,
            stdout=null if stdout_to_null else subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        if not stdout_to_null:
            proc.stdout.close()  # the CLI writes its summary to stderr
        stderr = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))} failed: {stderr.decode(errors='replace')}")
    return usage.ru_maxrss / 1024  # Linux: KiB


def decode_peak(nvc: Path, output: str) -> float:
    args = [*nvc_command(), "decode", str(nvc), "-o", output, "-y", "-q", "--device", "cpu"]
    return peak_rss_mib(args, stdout_to_null=output == "-")


def with_frame_count(source: Path, out: Path, frames: int) -> Path:
    """A copy of a NeRV file that declares ``frames`` frames (same network, valid CRCs)."""
    import bitstream
    from bitstream import Section, SectionType

    container = bitstream.unpack(source.read_bytes())
    meta = bitstream.decode_metadata(container.get(SectionType.METADATA).data)
    assert meta["model"]["id"] == "nerv", "only NeRV's parameter count is independent of T"
    meta["video"]["frames"] = meta["model"]["config"]["frame_count"] = frames
    sections = [
        Section(s.type, bitstream.encode_metadata(meta), s.critical)
        if s.type == SectionType.METADATA
        else s
        for s in container.sections
    ]
    out.write_bytes(bitstream.pack(sections))
    return out


def tiny_nerv(source: Path, out: Path, frames: tuple[int, int] | None = (0, 4)) -> Path:
    import torch

    from nvcodec import EncodeOptions, encode

    torch.set_num_threads(1)
    options = EncodeOptions(
        model="nerv",
        size=8_000,
        epochs=1,
        prune_epochs=0,
        qat_epochs=0,
        frames=frames,
        device="cpu",
        overwrite=True,
    )
    encode(source, out, options)
    return out


def synthetic_clip(path: Path, frames: int, width: int = 48, height: int = 32) -> Path:
    import av
    import numpy as np

    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=Fraction(25))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        x = np.arange(width)[None, :]
        y = np.arange(height)[:, None]
        for i in range(frames):
            rgb = np.zeros((height, width, 3), np.uint8)
            rgb[..., 0] = (x * 5 + i * 3) % 256
            rgb[..., 1] = (y * 7 + i) % 256
            rgb[..., 2] = 90
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", type=int, default=16)
    parser.add_argument("--long", type=int, default=8192, help="frames of the crafted long file")
    parser.add_argument("--real", type=int, default=512, help="frames of the real long encode")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="nvc-decmem-"))
    try:
        base = tiny_nerv(CHAPLIN, work / "base.nvc")
        clip_short = synthetic_clip(work / "short.mkv", args.short)
        clip_long = synthetic_clip(work / "long.mkv", args.real)
        pairs = [
            ("crafted NeRV 96x72", args.short, with_frame_count(base, work / "cs.nvc", args.short)),
            ("crafted NeRV 96x72", args.long, with_frame_count(base, work / "cl.nvc", args.long)),
            ("real NeRV 48x32", args.short, tiny_nerv(clip_short, work / "rs.nvc", None)),
            ("real NeRV 48x32", args.real, tiny_nerv(clip_long, work / "rl.nvc", None)),
        ]
        print("| file | frames | .nvc bytes | peak RSS → .y4m (MiB) | peak RSS → `-` (MiB) |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for label, frames, nvc in pairs:
            y4m = decode_peak(nvc, str(work / "out.y4m"))
            pipe = decode_peak(nvc, "-")
            print(f"| {label} | {frames} | {nvc.stat().st_size} | {y4m:.0f} | {pipe:.0f} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
