"""Peak memory and time of HiNeRV training on whole frames against patches (``--patch``).

    python -m benchmarks.patch_memory --height 640 --width 1280 --size 0.3M --patches 0,128,256

Each setting runs one epoch over two random frames in its own process (peak RSS is per
process), one thread, and prints the peak RSS above the process's footprint before training and
the seconds per frame. Patch training exists to bound memory per step; this shows the price.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def _one(height: int, width: int, size: int, patch: int) -> dict[str, float]:
    import torch

    from nvcodec.models import build_model, solve_config
    from nvcodec.training.loop import train_epoch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    config = solve_config("hinerv", height, width, 4, size)
    model = build_model(config)
    frames = torch.rand(2, 3, height, width)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    start = time.perf_counter()
    generator = torch.Generator().manual_seed(0)
    train_epoch(model, optimizer, scheduler, frames, 1, generator, False, patch=patch)
    seconds = (time.perf_counter() - start) / 2
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"patch": patch, "training_mib": peak - before, "s_per_frame": seconds}


def main(argv: list[str] | None = None) -> None:
    from nvcodec.models import parse_size

    p = argparse.ArgumentParser(prog="python -m benchmarks.patch_memory", description=__doc__)
    p.add_argument("--height", type=int, default=640)
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--size", default="0.3M")
    p.add_argument("--patches", default="0,128,256", help="0 = whole frames")
    p.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    size = parse_size(args.size)
    if args.one is not None:
        print(json.dumps(_one(args.height, args.width, size, args.one)))
        return
    print(f"hinerv {args.size} at {args.width}×{args.height}, one thread")
    print("| patch | training memory (MiB, peak RSS above the model's) | s per frame |")
    print("| --- | ---: | ---: |")
    for patch in (int(v) for v in args.patches.split(",")):
        cmd = [sys.executable, "-m", "benchmarks.patch_memory", "--one", str(patch)]
        cmd += ["--height", str(args.height), "--width", str(args.width), "--size", args.size]
        row = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        label = f"{patch} px" if patch else "whole frame"
        print(f"| {label} | {row['training_mib']:.0f} | {row['s_per_frame']:.1f} |")


if __name__ == "__main__":
    main()
