"""bf16 training against fp32 training: the same encode twice, files and times compared (#16).

    python -m benchmarks.precision ../shared/clips/{bunny,marathon}_160x80_16f.mkv \\
        --models ds-nerv,hnerv --size 50k --epochs 80 --out benchmarks/results/precision

Each (clip, model) is encoded with ``--precision fp32`` and then ``--precision auto`` (bf16
autocast where the device runs it fast; on a device without, the two encodes are the same and
the run says so), with everything else equal: seed, recipe, pipeline (RD training, λ auto).
Quality and rate come from the written files (the encoder decodes them), times from the
encoder's report. One JSON line per encode goes to ``OUT/precision.jsonl`` (appended, so runs
on several clips build one table) and the table to ``OUT/results.md``. Run it on an idle
machine, one process at a time: the times are the point.

    python -m benchmarks.precision --steps 160x80,320x160,640x320 --models ds-nerv,nerv++ \
        --size 0.1M --out benchmarks/results/precision

measures training steps/s instead (``benchmarks.throughput.train_steps``: the real step, the
model's recipe, batch 1, random frames), fp32 and bf16 autocast alternating twice, for every
model and frame size, into ``OUT/steps.json`` and ``OUT/steps.md``: the data behind each
recipe's ``cpu_bf16``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import torch

from nvcodec import EncodeOptions, encode
from nvcodec.device import resolve_device
from nvcodec.models import parse_size
from nvcodec.ranges import parse_frame_range
from nvcodec.training.loop import PRECISIONS, uses_autocast


def run_pair(clip: str, model: str, args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    """The clip encoded by ``model`` in each precision: one row each."""
    rows = []
    for precision in reversed(PRECISIONS):  # fp32 first: the reference
        options = EncodeOptions(
            model=model,
            size=args.size,
            epochs=args.epochs,
            seed=0,
            device=args.device,
            precision=precision,
            frames=parse_frame_range(args.frames) if args.frames else None,
            overwrite=True,
        )
        report = encode(clip, work / f"{model}-{precision}.nvc", options)
        bf16 = uses_autocast(options.train_config(), resolve_device(args.device))
        rows.append(
            {
                "clip": Path(clip).name,
                "frames": args.frames,
                "model": model,
                "size": args.size,
                "epochs": args.epochs,
                "precision": precision,
                "bf16": bf16,
                "bytes": report.bytes,
                "bpp": report.bpp,
                "psnr_yuv": report.metrics.psnr_yuv,
                "psnr_rgb": report.metrics.psnr_rgb,
                "train_psnr_float": report.train_psnr,
                "undone_epochs": report.undone_epochs,
                "seconds": report.seconds,
                "threads": torch.get_num_threads(),
                "device": report.device,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    """One line per (clip, frames, model, size, epochs): fp32 against auto."""
    pairs: dict[tuple, dict[str, dict[str, Any]]] = {}
    for r in rows:
        key = (r["clip"], r["frames"], r["model"], r["size"], r["epochs"], r["threads"])
        pairs.setdefault(key, {})[r["precision"]] = r
    lines = [
        "| clip | frames | model | size | epochs | threads | bytes fp32 → auto | PSNR-YUV fp32 "
        "→ auto | Δ dB | train s fp32 → auto | speed-up | total s fp32 → auto |",
        "| --- | --- | --- | ---: | ---: | ---: | --- | --- | ---: | --- | ---: | --- |",
    ]
    for key, pair in pairs.items():
        if set(pair) != set(PRECISIONS):
            continue
        a, b = pair["fp32"], pair["auto"]
        mode = "" if b["bf16"] else " (auto = fp32 here)"
        ta, tb = a["seconds"]["train"], b["seconds"]["train"]
        lines.append(
            f"| {key[0]} | {key[1] or 'all'} | {key[2]}{mode} | {key[3]:,} | {key[4]} | {key[5]} "
            f"| {a['bytes']:,} → {b['bytes']:,} | {a['psnr_yuv']:.2f} → {b['psnr_yuv']:.2f} "
            f"| {b['psnr_yuv'] - a['psnr_yuv']:+.2f} | {ta:.0f} → {tb:.0f} | {ta / tb:.2f}× "
            f"| {a['seconds']['total']:.0f} → {b['seconds']['total']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def step_rates(sizes: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Training steps/s in fp32 and in bf16 per (frame size, model), alternating, twice."""
    from benchmarks.throughput import train_steps
    from nvcodec.models import solve_config

    rows = []
    device = torch.device(args.device)
    for size in sizes.split(","):
        width, height = (int(v) for v in size.split("x"))
        for model in args.models.split(","):
            config = solve_config(model, height, width, 16, args.size)
            rates: dict[bool, list[float]] = {False: [], True: []}
            for bf16 in (False, True, False, True):
                rates[bf16].append(train_steps(model, config, 16, args.seconds, device, bf16))
            row = {"width": width, "height": height, "model": model, "size": args.size,
                   "fp32": rates[False], "bf16": rates[True],
                   "gain": sum(rates[True]) / sum(rates[False])}  # fmt: skip
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def steps_markdown(rows: list[dict[str, Any]]) -> str:
    """Models down, frame sizes across: bf16 steps/s ÷ fp32 steps/s."""
    sizes = list(dict.fromkeys(f"{r['width']}×{r['height']}" for r in rows))
    models = list(dict.fromkeys(r["model"] for r in rows))
    gain = {(r["model"], f"{r['width']}×{r['height']}"): r["gain"] for r in rows}
    lines = ["| model | " + " | ".join(sizes) + " |", "| --- |" + " ---: |" * len(sizes)]
    for m in models:
        cells = [f"{gain[m, s]:.2f}×" if (m, s) in gain else "–" for s in sizes]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("clips", nargs="*")
    p.add_argument("--steps", default=None, help="WxH,...: training steps/s instead of encodes")
    p.add_argument("--seconds", type=float, default=2.0, help="--steps: least time per figure")
    p.add_argument("--models", default="ds-nerv,hnerv")
    p.add_argument("--size", type=parse_size, default=parse_size("50k"))
    p.add_argument("--epochs", type=int, default=80)
    p.add_argument("--frames", default=None, help="A:B of each clip")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.steps:
        rows = step_rates(args.steps, args)
        (args.out / "steps.json").write_text(json.dumps(rows, indent=1))
        (args.out / "steps.md").write_text(steps_markdown(rows))
        print(steps_markdown(rows))
        return
    if not args.clips:
        p.error("give clips to encode, or --steps")
    log = args.out / "precision.jsonl"
    with tempfile.TemporaryDirectory() as tmp:
        for clip in args.clips:
            for model in args.models.split(","):
                for row in run_pair(clip, model, args, Path(tmp)):
                    with log.open("a") as f:
                        f.write(json.dumps(row) + "\n")
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    (args.out / "results.md").write_text(markdown(rows))
    print(markdown(rows))


if __name__ == "__main__":
    main()
