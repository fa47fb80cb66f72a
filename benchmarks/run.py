"""``python -m benchmarks``: run the rate-distortion protocol (shared/BENCHMARK.md) on clips.

::

    for each clip: read the reference once (only if a point must be computed)
      for each codec × rate point: cached JSON with the same key? ─► reuse
                                   else encode ─► decode the file ─► compute_metrics ─► JSON
      results.md (every point + BD-rates) and rd.png
    summary.md: BD-rate per clip and the mean over clips

Output layout under ``--out``::

    summary.md
    <clip>[_<A>-<B>]/results.md, rd.png, points/*.json, streams/* (bitstreams; not for git)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from benchmarks.clips import prepare_clip
from benchmarks.codecs import ANCHORS, BenchmarkError, Codec, Source, external_codec
from benchmarks.nvc import PREFIX, RD_SUFFIX, nvc_codec
from benchmarks.report import clip_markdown, plot_clip, summary_markdown
from benchmarks.results import load_point, make_record, point_key, point_stem, save_point
from nvcodec.errors import NvcodecError
from nvcodec.io import compute_metrics, read_video
from nvcodec.models import model_ids, parse_size
from nvcodec.ranges import FrameRange, parse_frame_range
from nvcodec.training.loop import PRECISIONS

__all__ = ["BenchConfig", "BenchSummary", "main", "parse_args", "run_benchmark"]

DEFAULT_CODECS = ("x264", "x265", "x264-medium-noB", "x265-medium-noB", "nvc-nerv")
DEFAULT_OUT = Path("benchmarks/results/local")
DEFAULT_EPOCHS = 30
QUICK_EPOCHS = 2
QUICK_FRAMES: FrameRange = (0, 8)


@dataclass(frozen=True)
class BenchConfig:
    """Everything a run needs, built once from the command line (or by a caller/test)."""

    clips: tuple[Path, ...]
    codecs: tuple[str, ...] = DEFAULT_CODECS
    crfs: tuple[float, ...] | None = None  # x264/x265; None = the codec's defaults
    av1_crfs: tuple[float, ...] | None = None
    sizes: tuple[int, ...] | None = None  # nvcodec parameter budgets
    epochs: int | None = None  # None = DEFAULT_EPOCHS (QUICK_EPOCHS with quick)
    batch_size: int = 1
    lr: float | None = None  # None: each model's own recipe
    lam: float | str | None = None  # λ of the nvc-<model>-rd codecs (a number or "auto")
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"  # nvcodec's training arithmetic (--precision)
    frames: FrameRange | None = None  # None = whole clip (QUICK_FRAMES with quick)
    scale: int = 1  # downscale factor for every codec (CPU budgets); 1 = the clip as it is
    out: Path = DEFAULT_OUT
    quick: bool = False
    force: bool = False
    dry_run: bool = False
    report_only: bool = False  # write the reports from cached points; encode nothing
    strip_info_sei: bool = True


@dataclass
class BenchSummary:
    computed: int = 0
    cached: int = 0
    failed: list[str] = field(default_factory=list)
    planned: list[str] = field(default_factory=list)  # dry run: one line per point
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # clip dir → points
    reports: list[Path] = field(default_factory=list)


def codec_names() -> list[str]:
    models = model_ids()
    return [*ANCHORS, *(PREFIX + m for m in models), *(PREFIX + m + RD_SUFFIX for m in models)]


def build_codec(name: str, cfg: BenchConfig) -> Codec:
    codec = external_codec(name, strip_info_sei=cfg.strip_info_sei)
    if codec is not None:
        return codec
    epochs = cfg.epochs or (QUICK_EPOCHS if cfg.quick else DEFAULT_EPOCHS)
    nvc = nvc_codec(
        name,
        epochs=epochs,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        lam=cfg.lam,
        seed=cfg.seed,
        device=cfg.device,
        precision=cfg.precision,
    )
    if nvc is None:
        raise BenchmarkError(f"unknown codec {name!r}; choose from {', '.join(codec_names())}")
    return nvc


def points_for(codec: Codec, cfg: BenchConfig) -> tuple[float, ...]:
    if codec.point_name == "size":
        chosen: Sequence[float] | None = cfg.sizes
    elif codec.label.startswith("svtav1"):
        chosen = cfg.av1_crfs
    else:
        chosen = cfg.crfs
    if chosen is None:
        chosen = codec.quick_points if cfg.quick else codec.default_points
    return tuple(float(p) for p in chosen)


def clip_folder_name(clip: Path, frames: FrameRange | None, scale: int = 1) -> str:
    name = clip.stem
    if frames is not None:
        start, stop = frames
        name = f"{name}_{start}-{'' if stop is None else stop}"
    return f"{name}_x{scale}" if scale > 1 else name


def _log(stream: TextIO) -> Callable[[str], None]:
    def log(message: str) -> None:
        print(message, file=stream, flush=True)

    return log


def run_benchmark(cfg: BenchConfig, log_stream: TextIO | None = None) -> BenchSummary:
    """Run (or, with ``dry_run``, list) every point of ``cfg``; write the reports."""
    log = _log(log_stream or sys.stderr)
    frames = cfg.frames if cfg.frames is not None else (QUICK_FRAMES if cfg.quick else None)
    codecs = [build_codec(name, cfg) for name in cfg.codecs]
    summary = BenchSummary()
    for clip in cfg.clips:
        if not clip.is_file():
            raise BenchmarkError(f"{clip}: no such file")
        folder = cfg.out / clip_folder_name(clip, frames, cfg.scale)
        records: list[dict[str, Any]] = []
        source: Source | None = None
        for codec in codecs:
            for point in points_for(codec, cfg):
                key = point_key(codec, point, clip, frames)
                if cfg.scale > 1:
                    key["scale"] = cfg.scale
                stem = point_stem(codec, point, key)
                json_path = folder / "points" / f"{stem}.json"
                cached = None if cfg.force else load_point(json_path, key)
                what = f"{clip.name} {codec.label} {codec.point_name}={point:g}"
                if cfg.dry_run:
                    state = "cached" if cached is not None else "would encode"
                    summary.planned.append(f"{state}: {what} → {json_path}")
                    log(summary.planned[-1])
                    continue
                if cached is not None:
                    summary.cached += 1
                    records.append(cached)
                    log(f"cached   {what}")
                    continue
                if cfg.report_only:
                    log(f"skipped  {what} (not cached; --report-only)")
                    continue
                if source is None and cfg.scale > 1:
                    y4m = folder / "streams" / f"{clip.stem}_x{cfg.scale}.y4m"
                    path, reference, info = prepare_clip(clip, cfg.scale, frames, y4m)
                    source = Source(path, None, reference, info)
                elif source is None:
                    reference, info = read_video(clip, frames)
                    source = Source(clip, frames, reference, info)
                log(f"encoding {what} ...")
                try:
                    (folder / "streams").mkdir(parents=True, exist_ok=True)
                    run = codec.run(source, point, folder / "streams" / stem)
                except (NvcodecError, BenchmarkError) as exc:
                    summary.failed.append(f"{what}: {exc}")
                    log(f"FAILED   {what}: {exc}")
                    continue
                metrics = compute_metrics(source.reference, run.decoded, source.info.colour)
                record = make_record(codec, point, key, source, run, metrics, folder)
                save_point(json_path, record)
                summary.computed += 1
                records.append(record)
                log(
                    f"done     {what}: {record['bpp']:.4f} bpp, "
                    f"PSNR-YUV {metrics.psnr_yuv:.2f} dB, PSNR-Y {metrics.psnr_y:.2f} dB, "
                    f"enc {run.encode_s:.1f} s, dec {run.decode_s:.2f} s"
                )
        if cfg.dry_run or not records:
            continue
        summary.records[folder.name] = records
        descriptions = {c.label: c.describe() for c in codecs}
        plot_clip(records, folder / "rd.png")
        report = folder / "results.md"
        text = clip_markdown(records, descriptions, "rd.png")
        failures = [f for f in summary.failed if f.startswith(f"{clip.name} ")]
        if failures:
            text += "\n## Failed points\n\n" + "\n".join(f"- {f}" for f in failures) + "\n"
        _write(report, text)
        summary.reports.append(report)
        log(f"wrote {report}")
    if not cfg.dry_run:
        _add_earlier_clips(cfg.out, summary.records)
    if summary.records:
        path = cfg.out / "summary.md"
        _write(path, summary_markdown(summary.records))
        summary.reports.append(path)
        log(f"wrote {path}")
    return summary


def _add_earlier_clips(out: Path, records: dict[str, list[dict[str, Any]]]) -> None:
    """The summary covers every clip folder under ``out``, also those of earlier invocations
    (e.g. clips run with other budgets), from their cached point files."""
    for folder in sorted(p.parent for p in out.glob("*/points")):
        if folder.name in records:
            continue
        points = []
        for path in sorted((folder / "points").glob("*.json")):
            try:
                record = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(record, dict) and "codec" in record:
                points.append(record)
        if points:
            records[folder.name] = points


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 18,23,28, got {text!r}") from None


def _lambda(text: str) -> float | str:
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or auto, got {text!r}") from None


def _sizes(text: str) -> tuple[int, ...]:
    try:
        return tuple(parse_size(t) for t in text.split(",") if t.strip())
    except NvcodecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _frames(text: str) -> FrameRange:
    try:
        return parse_frame_range(text)
    except NvcodecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Rate-distortion benchmark of nvcodec against x264/x265 (shared/BENCHMARK.md).",
    )
    p.add_argument("clips", nargs="+", type=Path, help="video files (any format PyAV reads)")
    p.add_argument(
        "--codecs",
        default=",".join(DEFAULT_CODECS),
        help=f"comma-separated; any of: {', '.join(codec_names())} (default: %(default)s)",
    )
    p.add_argument("--crfs", type=_floats, help="x264/x265 CRFs (default 12,17,...,47)")
    p.add_argument("--av1-crfs", type=_floats, help="SVT-AV1 CRFs (default 20,28,...,60)")
    p.add_argument("--sizes", type=_sizes, help="nvcodec budgets, e.g. 0.05M,0.1M,0.2M,0.4M")
    p.add_argument("--epochs", type=int, help=f"nvcodec epochs (default {DEFAULT_EPOCHS})")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--lr", type=float, default=None, help="default: each model's recipe")
    p.add_argument(
        "--lambda",
        dest="lam",
        type=_lambda,
        default=None,
        help="λ of the nvc-<model>-rd codecs: a number, or auto (the encoder's κ·D/R)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="nvcodec device: auto, cpu, cuda[:N]")
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="nvcodec training arithmetic (fp32 reproduces points cached before bf16 training)",
    )
    p.add_argument("--frames", type=_frames, help="half-open frame range A:B (default: all)")
    p.add_argument(
        "--scale",
        type=int,
        default=1,
        help="downscale every codec's input N× (N×N mean per plane, exact Y4M reference)",
    )
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results folder")
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"CPU-sized defaults: frames 0:8, 2 budgets, {QUICK_EPOCHS} epochs, 4 CRFs",
    )
    p.add_argument("--force", action="store_true", help="recompute cached points")
    p.add_argument("--dry-run", action="store_true", help="list the points, run nothing")
    p.add_argument(
        "--report-only",
        action="store_true",
        help="write the reports from the cached points of these codecs; encode nothing",
    )
    p.add_argument(
        "--keep-info-sei",
        action="store_true",
        help="keep x264/x265's informational SEI in the counted stream",
    )
    return p


def parse_args(argv: Sequence[str] | None = None) -> BenchConfig:
    ns = _parser().parse_args(argv)
    return BenchConfig(
        clips=tuple(ns.clips),
        codecs=tuple(c.strip() for c in ns.codecs.split(",") if c.strip()),
        crfs=ns.crfs,
        av1_crfs=ns.av1_crfs,
        sizes=ns.sizes,
        epochs=ns.epochs,
        batch_size=ns.batch_size,
        lr=ns.lr,
        lam=ns.lam,
        seed=ns.seed,
        device=ns.device,
        precision=ns.precision,
        frames=ns.frames,
        scale=ns.scale,
        out=ns.out,
        quick=ns.quick,
        force=ns.force,
        dry_run=ns.dry_run,
        report_only=ns.report_only,
        strip_info_sei=not ns.keep_info_sei,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; library errors become one ``error:`` line and exit status 1."""
    cfg = parse_args(argv)
    try:
        summary = run_benchmark(cfg)
    except (NvcodecError, BenchmarkError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if summary.failed:
        print(f"{len(summary.failed)} point(s) failed", file=sys.stderr)
        return 1
    return 0
