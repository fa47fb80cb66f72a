"""``encode_video``: a long video → independently coded segments → one segmented ``.nvc`` file.

::

    scan the input once (one frame in memory) ─► cuts (``--segment auto``) or fixed spans
      ─► one job per segment: its frames, its share of the budget, the same rate setting
      ─► run the jobs: here, in ``--jobs`` worker processes, or as Ray tasks (``--ray``)
      ─► assemble the verified segment files in frame order ─► write atomically ─► check

Each segment is an ordinary encode of a frame range (:func:`nvcodec.encoder.encode`, which
reads only that range and verifies its file by decoding it), so memory holds one segment's
frames per worker whatever the video's length. Rate across segments: ``--size`` is split in
proportion to segment length (never below the model's smallest size); ``--bpp`` is each
segment's target, less the segmented file's own header, index and metadata; a given
``--lambda`` is the same slope in every segment (equal-slope allocation), while ``--lambda
auto`` picks each segment's own. With ``--checkpoint-dir`` every finished segment is kept there,
and ``--resume`` encodes only the missing ones.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bitstream import MAX_SECTION_BYTES, MAX_SEGMENTS
from nvcodec import __version__
from nvcodec.device import resolve_device
from nvcodec.encoder import (
    AUTO,
    EncodeOptions,
    check_nvc_output,
    plan_for,
    smallest_budget,
    staged_output,
)
from nvcodec.errors import ConfigError, OutputError
from nvcodec.fileformat import StoredVideo
from nvcodec.io import QualityMetrics, VideoInfo
from nvcodec.io.metrics import merge_metrics
from nvcodec.io.video import warn_about
from nvcodec.scenes import SegmentRule, detect_cuts, plan_segments, scan
from nvcodec.segment_jobs import SegmentJob, SegmentResult, run_local, run_pool, run_ray
from nvcodec.segment_store import SegmentStore
from nvcodec.segmented import open_video, overhead_bytes, parse_segment, write_segmented

__all__ = ["Execution", "SegmentSummary", "VideoReport", "encode_video", "plan_video"]

MAX_JOBS = 256
BUDGET_SLACK = 0.05  # segments' sizes may exceed --size by this much before a warning
BYTES_PER_PARAMETER_BOUND = 2  # 16-bit weights: a generous bound on a file's bytes per parameter


class BudgetWarning(UserWarning):
    """The segments need more parameters than ``--size`` (each has a smallest model)."""


@dataclass(frozen=True)
class Execution:
    """Where the segments run; none of it changes the file except ``threads``."""

    jobs: int = 1  # local worker processes (1: in this process, with per-step progress)
    threads: int = 0  # CPU threads per segment encode; 0: the machine's cores / jobs
    ray: str | None = None  # "auto" or a cluster address

    def validate(self) -> None:
        if not 1 <= self.jobs <= MAX_JOBS:
            raise ConfigError(f"--jobs must be in [1, {MAX_JOBS}], got {self.jobs}")
        if not 0 <= self.threads <= 1024:
            raise ConfigError(f"--threads must be in [0, 1024], got {self.threads}")
        if self.ray is not None:
            if self.jobs != 1:
                raise ConfigError("--ray and --jobs exclude each other (Ray schedules the workers)")
            if importlib.util.find_spec("ray") is None:
                raise ConfigError(
                    "--ray needs Ray: pip install 'nvcodec[ray]' (or pip install ray)"
                )

    def threads_per_job(self) -> int:
        """``--threads``, else this machine's usable cores shared by the local workers; a Ray
        task asks for one CPU (a cluster's nodes may be smaller than this machine)."""
        if self.threads:
            return self.threads
        if self.ray is not None:
            return 1
        return max(1, len(os.sched_getaffinity(0)) // self.jobs)


@dataclass(frozen=True)
class SegmentSummary:
    index: int
    start: int  # first frame, in the file's frames
    stop: int
    parameters: int
    bytes: int
    psnr_yuv: float
    seconds: float


@dataclass(frozen=True)
class VideoReport:
    """The whole encode; quality is measured per segment on its decoded file and merged."""

    output: str
    bytes: int
    bpp: float
    width: int
    height: int
    frames: int
    fps: float
    model: str
    parameters: int  # all segments together
    device: str
    metrics: QualityMetrics
    cuts: tuple[int, ...]  # detected scene cuts (auto mode), in the file's frames
    segments: tuple[SegmentSummary, ...]
    seconds: dict[str, float] = field(default_factory=dict)
    target_bpp: float | None = None


@dataclass(frozen=True)
class VideoPlan:
    info: VideoInfo
    spans: tuple[tuple[int, int], ...]
    cuts: tuple[int, ...]
    jobs: tuple[SegmentJob, ...]
    digests: tuple[str, ...]  # content hash of each segment's frames (for --resume)


def plan_video(
    input_path: str, options: EncodeOptions, rule: SegmentRule, execution: Execution
) -> VideoPlan:
    """Scan the input, cut it, and plan (and check) every segment's encode; nothing trains."""
    options.validate()
    rule.validate()
    execution.validate()
    cells_diff, info, digests_of = _scan(input_path, options)
    warn_about(info)
    cuts = detect_cuts(cells_diff) if rule.auto else []
    spans = plan_segments(info.frame_count, rule, cuts)
    if len(spans) > MAX_SEGMENTS:
        raise ConfigError(
            f"{len(spans)} segments is more than a file holds ({MAX_SEGMENTS}); use longer ones"
        )
    first = options.frames[0] if options.frames else 0
    device = resolve_device(options.device)
    jobs = []
    for i, (a, b) in enumerate(spans):
        opts = _segment_options(options, info, (a, b), first, len(spans))
        plan_for(opts, dataclasses.replace(info, frame_count=b - a), device)  # refuse now
        threads = execution.threads_per_job()
        jobs.append(SegmentJob(i, os.path.abspath(input_path), first + a, first + b, opts, threads))
    _check_totals(options, jobs)
    return VideoPlan(info, tuple(spans), tuple(cuts), tuple(jobs), digests_of(spans))


def _check_totals(options: EncodeOptions, jobs: Sequence[SegmentJob]) -> None:
    """Before training: say when the segments' smallest models overrun ``--size``, and refuse a
    plan whose segments could not fit in one file's segment data."""
    total = sum(job.options.size for job in jobs)
    if options.target_bpp is None and total > options.size * (1 + BUDGET_SLACK):
        warnings.warn(
            f"{len(jobs)} segments need {total:,} parameters, more than --size {options.size:,} "
            "(each segment has a smallest model); use longer segments for a smaller file",
            BudgetWarning,
            stacklevel=3,
        )
    if total * BYTES_PER_PARAMETER_BOUND > MAX_SECTION_BYTES:
        raise ConfigError(
            f"{total:,} parameters in all could pass the {MAX_SECTION_BYTES >> 30} GiB a "
            "segmented file holds; split the video into several files"
        )


def _scan(
    path: str, options: EncodeOptions
) -> tuple[np.ndarray, VideoInfo, Callable[[list[tuple[int, int]]], tuple[str, ...]]]:
    differences, info, frame_digests = scan(path, options.frames)

    def digests(spans: list[tuple[int, int]]) -> tuple[str, ...]:
        """A segment's content: every sample of its frames, and what they are (size, rate,
        colour), so a re-graded or re-tagged source never reuses a stored segment."""
        what = f"{info.width}x{info.height}@{info.fps}/{info.colour}".encode()
        return tuple(
            hashlib.sha256(what + b"".join(frame_digests[a:b])).hexdigest() for a, b in spans
        )

    return differences, info, digests


def _segment_options(
    options: EncodeOptions, info: VideoInfo, span: tuple[int, int], first: int, count: int
) -> EncodeOptions:
    """The encode of one segment: its frames, its share of ``--size`` (or the ``--bpp`` left
    after the segmented file's own bytes), the same everything else."""
    a, b = span
    segment = dataclasses.replace(info, frame_count=b - a)
    share_of_size = round(options.size * (b - a) / info.frame_count)
    size = max(smallest_budget(options.model, segment), share_of_size)
    target = options.target_bpp
    if target is not None:
        total = target * info.width * info.height * info.frame_count / 8
        share = 1 - _outer_bytes(info, options, count) / total
        if share < 0.5:
            raise ConfigError(
                f"--bpp {target:g} is too low for a segmented file of {info.frame_count} frames "
                "(its index and metadata alone take half of it)"
            )
        target *= share
    return dataclasses.replace(
        options,
        frames=(first + a, first + b),
        size=min(size, 200_000_000),
        target_bpp=target,
        overwrite=True,  # written in a private temporary folder
        checkpoint_dir=None,
        resume=False,
    )


def _stored(info: VideoInfo) -> StoredVideo:
    return StoredVideo(info.width, info.height, info.frame_count, info.fps, info.colour)


def _encoder_meta(options: EncodeOptions, frames: int, psnrs: Sequence[float]) -> dict[str, Any]:
    """The segmented file's METADATA ``encoder`` object (informational)."""
    return {
        "name": "nvcodec",
        "version": __version__,
        "model": options.model,
        "segment_psnr_yuv": [round(p, 4) if math.isfinite(p) else None for p in psnrs],
        "source_frames": [options.frames[0] if options.frames else 0, frames],
    }


def _outer_bytes(info: VideoInfo, options: EncodeOptions, segments: int) -> int:
    """The segmented file's bytes outside its segments, at their longest (PSNRs of 6 digits)."""
    encoder = _encoder_meta(options, info.frame_count, [-99.1234] * segments)
    return overhead_bytes(_stored(info), segments, encoder)


def encode_video(
    input_path: str | os.PathLike[str],
    output: str | os.PathLike[str],
    options: EncodeOptions,
    rule: SegmentRule,
    execution: Execution | None = None,
    *,
    on_plan: Callable[[VideoPlan], None] | None = None,
    on_segment: Callable[[SegmentResult, int, int], None] | None = None,
    progress: Callable[..., None] | None = None,
    on_step: Callable[[str, int, int], None] | None = None,
) -> VideoReport:
    """Encode ``input_path`` as segments into the segmented file ``output``.

    ``on_plan`` gets the plan before any training; ``on_segment(result, done, total)`` each
    finished segment (``result.reused`` for one kept from ``--checkpoint-dir``); ``progress`` /
    ``on_step`` the training of each segment as in :func:`nvcodec.encoder.encode` (only when
    segments run in this process, ``jobs == 1``)."""
    execution = execution or Execution()
    src, out = os.fspath(input_path), os.fspath(output)
    begin = time.perf_counter()
    options.validate()
    execution.validate()
    check_nvc_output(out, src, options.overwrite)
    SegmentStore.check(options)  # before the scan, which reads the whole input
    plan = plan_video(src, options, rule, execution)
    scanned = time.perf_counter() - begin
    if on_plan is not None:
        on_plan(plan)
    store = SegmentStore.open(options, plan.jobs, plan.digests)
    results = _run(plan, store, _runner(execution, progress, on_step), on_segment)
    size = _assemble(out, plan, results, options)
    if store is not None:
        store.remove()
    seconds = {"scan": scanned, "total": time.perf_counter() - begin}
    return _report(out, size, plan, results, options, seconds)


Runner = Callable[[Sequence[SegmentJob], Callable[[SegmentResult], None]], object]


def _runner(
    execution: Execution,
    progress: Callable[..., None] | None,
    on_step: Callable[[str, int, int], None] | None,
) -> Runner:
    """How the jobs run: Ray tasks, local worker processes, or one by one here."""
    if execution.ray is not None:
        address = execution.ray
        return lambda jobs, done: run_ray(jobs, address, done)
    if execution.jobs > 1:
        workers = execution.jobs
        return lambda jobs, done: (
            run_pool(jobs, min(workers, len(jobs)), done)
            if len(jobs) > 1
            else run_local(jobs, done)
        )
    return lambda jobs, done: run_local(jobs, done, progress, on_step)


def _run(
    plan: VideoPlan,
    store: SegmentStore | None,
    runner: Runner,
    on_segment: Callable[[SegmentResult, int, int], None] | None,
) -> list[SegmentResult]:
    """Finished segments from the store, the rest from ``runner``, in segment order. Every new
    segment is checked (a one-segment file of the planned video and frame count) before it is
    stored or used, so a bad one stops the encode before anything is written."""
    kept = {job.index: r for job in plan.jobs if store and (r := store.load(job)) is not None}
    video = _stored(plan.info)

    def done(result: SegmentResult) -> None:
        job = plan.jobs[result.index]
        parse_segment(result.image, video, job.frames, f"segment {job.index}")
        if store is not None:
            store.save(job, result)
        kept[result.index] = result
        if on_segment is not None:
            on_segment(result, len(kept), len(plan.jobs))

    for result in sorted(kept.values(), key=lambda r: r.index):
        if on_segment is not None:
            on_segment(result, len(kept), len(plan.jobs))
    todo = [job for job in plan.jobs if job.index not in kept]
    if todo and _shares_lambda(plan):
        if 0 not in kept:
            runner(todo[:1], done)
            todo = todo[1:]
        lam = float(kept[0].compression["lambda"])  # type: ignore[arg-type]
        todo = [_with_lambda(job, lam) for job in todo]
    if todo:
        runner(todo, done)
    return [kept[job.index] for job in plan.jobs]


def _shares_lambda(plan: VideoPlan) -> bool:
    """``--lambda auto`` without ``--bpp``: the first segment's λ becomes every segment's, one
    slope for the whole video (equal-slope allocation of the bytes across segments)."""
    opts = plan.jobs[0].options
    return len(plan.jobs) > 1 and opts.rd and opts.target_bpp is None and opts.lam in (None, AUTO)


def _with_lambda(job: SegmentJob, lam: float) -> SegmentJob:
    return dataclasses.replace(job, options=dataclasses.replace(job.options, lam=lam))


def _assemble(
    out: str, plan: VideoPlan, results: Sequence[SegmentResult], options: EncodeOptions
) -> int:
    """Write the segmented file (atomically; into a device or pipe through a checked temporary
    file), then reopen it and check every segment parses and agrees."""
    info = plan.info
    encoder = _encoder_meta(options, info.frame_count, [r.metrics.psnr_yuv for r in results])
    segments = [(r.frames, r.image) for r in results]
    with staged_output(out) as written:
        try:
            size = write_segmented(
                written, _stored(info), segments, encoder, overwrite=options.overwrite
            )
        except OSError as exc:
            raise OutputError(str(exc)) from None
        except ValueError as exc:  # more than a file holds
            raise OutputError(f"{out}: {exc}") from None
        with open_video(written) as check:
            for i in range(len(check.entries)):
                check.segment(i)
    return size


def _report(
    out: str,
    size: int,
    plan: VideoPlan,
    results: Sequence[SegmentResult],
    options: EncodeOptions,
    seconds: dict[str, float],
) -> VideoReport:
    info = plan.info
    summaries = tuple(
        SegmentSummary(r.index, a, b, r.parameters, len(r.image), r.metrics.psnr_yuv, r.seconds)
        for r, (a, b) in zip(results, plan.spans, strict=True)
    )
    return VideoReport(
        output=out,
        bytes=size,
        bpp=8 * size / (info.width * info.height * info.frame_count),
        width=info.width,
        height=info.height,
        frames=info.frame_count,
        fps=float(info.fps),
        model=options.model,
        parameters=sum(r.parameters for r in results),
        device=results[0].device,
        metrics=merge_metrics([r.metrics for r in results]),
        cuts=plan.cuts,
        segments=summaries,
        seconds={**seconds, "segments": sum(r.seconds for r in results)},
        target_bpp=options.target_bpp,
    )
