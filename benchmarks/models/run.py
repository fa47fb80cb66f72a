"""Compare models at equal parameter budgets and equal epochs, PSNR measured from real files.

    python -m benchmarks.models CLIP --models nerv,ds-nerv,ds-nerv-static,ds-nerv-dynamic \\
        --sizes 0.1M,0.2M --epochs 100 --scale 4 --out benchmarks/results/models

Each (model, size) is a real ``nvcodec.encode`` of the clip (downscaled by ``--scale`` with a
2×2 mean per yuv420p plane and written losslessly to a temporary Y4M, so the reference is exact);
quality is what the standalone decoder produces from the ``.nvc`` file. Results are cached as
one JSON per point (``--force`` recomputes) and summarised in ``results.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.clips import prepare_clip


def run_point(
    source: Path,
    model: str,
    size: int | None,
    args: argparse.Namespace,
    work: Path,
    bpp: float | None = None,
) -> dict:
    """One real encode at a parameter budget ``size`` or, with ``bpp``, at a file-size target
    (rate control lands every model on the same bytes: equal-bytes comparisons)."""
    from nvcodec import EncodeOptions, encode
    from nvcodec.fileformat import read_nvc
    from nvcodec.io import read_video
    from nvcodec.models import count_parameters

    options = EncodeOptions(
        model=model,
        size=size or 300_000,
        target_bpp=bpp,
        epochs=args.epochs,
        seed=args.seed,
        device=args.device,
        precision=args.precision,
        batch_size=args.batch_size,
        overwrite=True,
    )
    nvc = work / f"{model}-{size}-{bpp}.nvc"
    report = encode(source, nvc, options)
    _, info = read_video(source)
    config = read_nvc(nvc).config
    row: dict[str, Any] = {
        "model": model,
        "budget": size,
        "target_bpp": bpp,
        "parameters": count_parameters(config),
        "bytes": report.bytes,
        "bpp": report.bpp,
        "psnr_rgb": report.metrics.psnr_rgb,
        "psnr_yuv": report.metrics.psnr_yuv,
        "psnr_y": report.metrics.psnr_y,
        "ms_ssim": report.metrics.ms_ssim,
        "train_psnr_float": report.train_psnr,
        "undone_epochs": report.undone_epochs,  # diverged epochs undone (training.rollback)
        "epochs": args.epochs,
        "train_s": report.seconds["train"],
        "decode_fps": info.frame_count / report.seconds["decode"],
        "device": report.device,
        "config": config.to_dict(),
        "recipe": options.train_config().__dict__,
        "training": _arithmetic(args, model),
        "per_frame_psnr_rgb": report.metrics.per_frame["psnr_rgb"],
    }
    try:
        from nvcodec.models.complexity import macs_per_pixel

        row["macs_per_pixel"] = macs_per_pixel(config)
    except ImportError:  # complexity counting not available in this build
        row["macs_per_pixel"] = None
    return row


def _arithmetic(args: argparse.Namespace, model: str) -> str:
    """How this run trains ``model``: "bf16 autocast" or "fp32" (``nvc encode --precision``;
    the device and the model's recipe decide)."""
    from nvcodec import EncodeOptions
    from nvcodec.device import resolve_device
    from nvcodec.training.loop import arithmetic

    config = EncodeOptions(model=model, precision=args.precision).train_config()
    return arithmetic(config, resolve_device(args.device))


def _tag(args: argparse.Namespace, model: str) -> str:
    """File-name suffix of bf16 points: they are never mixed with fp32 ones (every point made
    before bf16 training existed is fp32 and keeps its name)."""
    return "-bf16" if _arithmetic(args, model) != "fp32" else ""


def markdown(rows: list[dict], meta: dict) -> str:
    lines = [
        f"# Model comparison on `{meta['clip']}`",
        "",
        f"{meta['width']}×{meta['height']}, {meta['frames']} frames (scale 1/{meta['scale']}), "
        f"{meta['epochs']} epochs, seed {meta['seed']}, device {meta['device']}, "
        f"torch {meta['torch']}, {meta['machine']}, training in {meta['training']}.",
        "Every PSNR is measured on frames decoded from the written `.nvc` file against the "
        "yuv420p reference; bpp is the file size. Each model trains with its own recipe "
        "(DS-NeRV: Adan lr 7e-3, codes 10×; NeRV: Adam lr 1e-3).",
        "",
        f"Reproduce: `{meta['command']}`",
        "",
        "| budget | model | params | MACs/px | bytes | bpp | PSNR-RGB | PSNR-YUV 6:1:1 | MS-SSIM "
        "| train s | decode fps |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: (r["budget"] or 0, r.get("target_bpp") or 0, r["model"])):
        budget = f"{r['budget'] / 1e6:g}M" if r["budget"] else f"{r['target_bpp']:g} bpp"
        macs = f"{r['macs_per_pixel']:,.0f}" if r.get("macs_per_pixel") else "–"
        ms = f"{r['ms_ssim']:.4f}" if r["ms_ssim"] is not None else "–"
        lines.append(
            f"| {budget} | {r['model']} | {r['parameters']:,} | {macs} "
            f"| {r['bytes']:,} | {r['bpp']:.4f} | {r['psnr_rgb']:.2f} | {r['psnr_yuv']:.2f} "
            f"| {ms} | {r['train_s']:.0f} | {r.get('decode_fps', 0):.0f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    from nvcodec.models import parse_size
    from nvcodec.ranges import parse_frame_range
    from nvcodec.training.loop import PRECISIONS

    p = argparse.ArgumentParser(prog="python -m benchmarks.models", description=__doc__)
    p.add_argument("clip", type=Path)
    p.add_argument("--models", default="nerv,ds-nerv,ds-nerv-static,ds-nerv-dynamic")
    p.add_argument("--sizes", default="0.1M,0.2M")
    p.add_argument(
        "--bpp", default=None, help="comma-separated file-size targets instead of --sizes"
    )
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--scale", type=int, default=4, help="downscale factor (2×2 means)")
    p.add_argument("--frames", default=None, help="A:B of the source clip")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="training arithmetic (bf16 points are cached and reported apart from fp32 ones)",
    )
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/models"))
    p.add_argument("--force", action="store_true", help="recompute cached points")
    p.add_argument(
        "--report-only", action="store_true", help="rebuild the table from cached points only"
    )
    args = p.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    points: list[tuple[int | None, float | None]] = (
        [(None, float(b)) for b in args.bpp.split(",")]
        if args.bpp
        else [(parse_size(s), None) for s in args.sizes.split(",")]
    )
    frames = parse_frame_range(args.frames) if args.frames else None
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        source, _, info = prepare_clip(args.clip, args.scale, frames, work / "source.y4m")
        for size, bpp in points:
            for model in models:
                row = _cached_or_run(args, source, work, model, size, bpp)
                if row is not None:
                    rows.append(row)
    _write_report(args, info, rows, argv)


def _cached_or_run(
    args: argparse.Namespace,
    source: Path,
    work: Path,
    model: str,
    size: int | None,
    bpp: float | None,
) -> dict | None:
    """One point: from its JSON cache, or encoded now and cached (None: not cached and
    ``--report-only``)."""
    point = size if size is not None else f"bpp{bpp:g}"
    tag = _tag(args, model)
    cache = args.out / f"{args.clip.stem}-s{args.scale}-{model}-{point}-e{args.epochs}{tag}.json"
    if cache.exists() and not args.force:
        print(f"cached {cache.name}", file=sys.stderr)
        return json.loads(cache.read_text())
    if args.report_only:
        print(f"skipped {cache.name} (not cached; --report-only)", file=sys.stderr)
        return None
    t0 = time.perf_counter()
    row = run_point(source, model, size, args, work, bpp)
    row["wall_s"] = time.perf_counter() - t0
    cache.write_text(json.dumps(row, indent=1))
    print(
        f"{model:16s} {point!s:>9} {row['bpp']:.4f} bpp {row['psnr_rgb']:.2f} dB RGB "
        f"({row['wall_s']:.0f} s)",
        file=sys.stderr,
    )
    return row


def _write_report(
    args: argparse.Namespace, info: Any, rows: list[dict], argv: list[str] | None
) -> None:
    """The clip's table from every cached point of this clip/scale/epochs, so runs that add
    models (or run in parallel) build one table together."""
    import torch

    meta = {
        "clip": args.clip.name,
        "width": info.width,
        "height": info.height,
        "frames": info.frame_count,
        "scale": args.scale,
        "epochs": args.epochs,
        "seed": args.seed,
        "device": rows[0]["device"] if rows else args.device,
        "torch": torch.__version__,
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
        "command": "python -m benchmarks.models "
        + " ".join(sys.argv[1:] if argv is None else argv),
    }
    stem = f"{args.clip.stem}-s{args.scale}-*-e{args.epochs}"
    files = sorted([*args.out.glob(f"{stem}.json"), *args.out.glob(f"{stem}-bf16.json")])
    rows = [json.loads(p.read_text()) for p in files]
    # each model's points in the arithmetic this run trains it in (rows before bf16: fp32)
    rows = [r for r in rows if r.get("training", "fp32") == _arithmetic(args, r["model"])]
    bf16 = sorted({r["model"] for r in rows if r.get("training", "fp32") != "fp32"})
    meta["training"] = f"bf16 autocast ({', '.join(bf16)}), other models fp32" if bf16 else "fp32"
    # one clip per folder: results.md; a folder shared by several clips: one report per clip
    clips = {q.name.split("-s")[0] for q in args.out.glob("*.json")}
    name = "results" if len(clips) <= 1 else f"results_{args.clip.stem}"
    report = args.out / f"{name}{'-bf16' if bf16 else ''}.md"
    report.write_text(markdown(rows, meta))
    print(report.read_text())
