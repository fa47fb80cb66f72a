"""Long videos (issue #15): one network against segments, memory against length, workers.

    python -m benchmarks.long_video rd     --clip LONG.y4m --size 0.1M --epochs 60 --out DIR
    python -m benchmarks.long_video memory --clip LONG.y4m --loops 1,4,16 --out DIR
    python -m benchmarks.long_video jobs   --clip LONG.y4m --epochs 20 --out DIR

``LONG.y4m`` comes from ``python -m benchmarks.long_clip`` (shared clips back to back, with true
cuts in ``LONG.cuts.json``). Every encode runs as its own ``nvc encode`` process (``--threads 1``
for segments; the one-network encode with one OpenMP thread), so peak RSS is that process's
(``ru_maxrss`` from ``wait4`` of that process, in KiB on Linux; worker processes of
``--jobs`` are not included, so ``memory`` runs segments in the encoding process) and times are
wall-clock. Quality is measured by the encoder on frames decoded from its files;
``rd`` also re-measures each file against the clip. Results go to ``DIR/*.json``.

- ``rd``: the whole clip as one network, as fixed segments (``--fixed``), and cut at detected
  scene changes (``--segment auto``), all at the same total ``--size`` and the same epochs per
  frame (every segment trains ``--epochs`` over its own frames), so bytes are close and PSNR
  compares directly. Prints the cuts found against the true cuts.
- ``memory``: the clip looped 1×, 4×, 16× (``benchmarks.long_clip --loop``), each encoded with
  81-frame segments and one epoch at 60k parameters per 324 frames (the same model per segment at
  every length), and as one network too; peak RSS per length.
- ``jobs``: the same segmented encode with ``--jobs 1``, ``--jobs 2`` and ``--ray auto`` (a local
  Ray cluster), wall time each, and whether the files are identical (``--threads 1`` in all).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

NVC = [sys.executable, "-m", "cli.main"]


def _encode(clip: str, out: str, *args: str) -> dict[str, object]:
    """One ``nvc encode`` in its own process: wall seconds, peak RSS (MiB), its summary."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    proc = subprocess.Popen(
        [*NVC, "encode", clip, "-o", out, "-y", "-q", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    stdout = proc.stdout.read() if proc.stdout else ""
    stderr = proc.stderr.read() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"nvc encode {' '.join(args)} failed:\n{stderr}")
    blob = Path(out).read_bytes()
    return {
        "args": list(args),
        "seconds": round(wall, 1),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "bytes": len(blob),
        "sha256": hashlib.sha256(blob).hexdigest(),
        "summary": stdout.strip().splitlines(),
    }


def _psnr(clip: str, path: str) -> dict[str, float]:
    from nvcodec.decoder import decode_frames
    from nvcodec.io import compute_metrics, read_video

    reference, info = read_video(clip, max_frames=1_000_000)
    metrics = compute_metrics(reference, decode_frames(path, device="cpu"), info.colour)
    pixels = info.width * info.height * info.frame_count
    size = os.path.getsize(path)
    return {
        "bpp": round(8 * size / pixels, 4),
        "psnr_yuv": round(metrics.psnr_yuv, 3),
        "psnr_rgb": round(metrics.psnr_rgb, 3),
    }


def rd(args: argparse.Namespace) -> list[dict[str, object]]:
    from nvcodec.scenes import detect_cuts, scan

    differences, _, _ = scan(args.clip, None)
    truth_path = Path(args.clip).with_suffix(".cuts.json")
    truth = json.loads(truth_path.read_text()) if truth_path.exists() else None
    print(f"cuts found {detect_cuts(differences)}; true cuts {truth}")
    common = ["--size", args.size, "--epochs", str(args.epochs), "--seed", "0"]
    runs = []
    for name, extra in (
        ("one network", []),
        (f"segments of {args.fixed}", ["--segment", str(args.fixed), "--threads", "1"]),
        ("scene cuts (auto)", ["--segment", "auto", "--threads", "1"]),
    ):
        out = os.path.join(args.out, f"rd-{len(runs)}.nvc")
        run = {"mode": name, **_encode(args.clip, out, *common, *extra), **_psnr(args.clip, out)}
        print(f"{name:24s} {run['bpp']} bpp  PSNR-YUV {run['psnr_yuv']}  {run['seconds']} s")
        runs.append(run)
    return [{"cuts_found": detect_cuts(differences), "true_cuts": truth}, *runs]


def memory(args: argparse.Namespace) -> list[dict[str, object]]:
    """Peak RSS at each length: segments of 81 frames, and one network for contrast."""
    from benchmarks.long_clip import build

    runs = []
    for loop in (int(x) for x in args.loops.split(",")):
        # the budget grows with the length, so every segment's model is the same size
        common = ["--size", str(60_000 * loop), "--epochs", "1", "--rd-epochs", "1"]
        clip = os.path.join(args.out, f"loop{loop}.y4m")
        build(clip, 4, loop)
        modes = [("segments of 81", ["--segment", "81", "--threads", "1"]), ("one network", [])]
        for mode, extra in modes:
            out = os.path.join(args.out, f"loop{loop}.nvc")
            run = {"mode": mode, "frames": 324 * loop, **_encode(clip, out, *common, *extra)}
            print(
                f"{mode:16s} {run['frames']:>6d} frames: peak RSS {run['peak_rss_mib']} MiB, "
                f"{run['seconds']} s"
            )
            runs.append(run)
        os.unlink(clip)
    return runs


def jobs(args: argparse.Namespace) -> list[dict[str, object]]:
    common = ["--size", "80k", "--epochs", str(args.epochs), "--segment", "81", "--threads", "1"]
    runs = []
    for name, extra in (
        ("--jobs 1", []),
        ("--jobs 2", ["--jobs", "2"]),
        ("--ray auto", ["--ray", "auto"]),
    ):
        out = os.path.join(args.out, f"jobs-{len(runs)}.nvc")
        run = {"mode": name, **_encode(args.clip, out, *common, *extra)}
        print(f"{name:12s} {run['seconds']} s  sha256 {str(run['sha256'])[:16]}")
        runs.append(run)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=["rd", "memory", "jobs"])
    parser.add_argument("--clip", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--size", default="0.1M")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--fixed", type=int, default=81)
    parser.add_argument("--loops", default="1,4,16")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    results = {"rd": rd, "memory": memory, "jobs": jobs}[args.what](args)
    Path(args.out, f"{args.what}.json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
