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
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bitstream import MAX_SEGMENTS
from nvcodec import __version__
from nvcodec.device import resolve_device
from nvcodec.encoder import EncodeOptions, check_nvc_output, plan_for, smallest_budget
from nvcodec.errors import ConfigError, OutputError
from nvcodec.fileformat import StoredVideo
from nvcodec.io import QualityMetrics, VideoInfo
from nvcodec.io.metrics import merge_metrics
from nvcodec.io.video import warn_about
from nvcodec.scenes import SegmentRule, detect_cuts, plan_segments, scan
from nvcodec.segment_jobs import SegmentJob, SegmentResult, run_local, run_pool, run_ray
from nvcodec.segment_store import SegmentStore
from nvcodec.segmented import open_video, overhead_bytes, write_segmented

__all__ = ["Execution", "SegmentSummary", "VideoReport", "encode_video", "plan_video"]

MAX_JOBS = 256


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
        if self.ray is not None and self.jobs != 1:
            raise ConfigError("--ray and --jobs exclude each other (Ray schedules the workers)")

    def threads_per_job(self) -> int:
        return self.threads or max(1, (os.cpu_count() or 1) // self.jobs)


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
    return VideoPlan(info, tuple(spans), tuple(cuts), tuple(jobs), digests_of(spans))


def _scan(
    path: str, options: EncodeOptions
) -> tuple[np.ndarray, VideoInfo, Callable[[list[tuple[int, int]]], tuple[str, ...]]]:
    differences, info, cells = scan(path, options.frames)

    def digests(spans: list[tuple[int, int]]) -> tuple[str, ...]:
        return tuple(hashlib.sha256(cells[a:b].tobytes()).hexdigest() for a, b in spans)

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
    finished segment; ``progress`` / ``on_step`` the training of each segment as in
    :func:`nvcodec.encoder.encode` (only when segments run in this process, ``jobs == 1``)."""
    execution = execution or Execution()
    src, out = os.fspath(input_path), os.fspath(output)
    begin = time.perf_counter()
    options.validate()
    check_nvc_output(out, src, options.overwrite)
    plan = plan_video(src, options, rule, execution)
    scanned = time.perf_counter() - begin
    if on_plan is not None:
        on_plan(plan)
    store = SegmentStore.open(options, plan.jobs, plan.digests)
    results = _run(plan, store, execution, on_segment, progress, on_step)
    size = _assemble(out, plan, results, options)
    if store is not None:
        store.remove()
    seconds = {"scan": scanned, "total": time.perf_counter() - begin}
    return _report(out, size, plan, results, options, seconds)


def _run(
    plan: VideoPlan,
    store: SegmentStore | None,
    execution: Execution,
    on_segment: Callable[[SegmentResult, int, int], None] | None,
    progress: Callable[..., None] | None,
    on_step: Callable[[str, int, int], None] | None,
) -> list[SegmentResult]:
    """Finished segments from the store, the rest from the chosen runner, in segment order."""
    kept = {job.index: r for job in plan.jobs if store and (r := store.load(job)) is not None}
    todo = [job for job in plan.jobs if job.index not in kept]
    total = len(plan.jobs)

    def done(result: SegmentResult) -> None:
        if store is not None:
            store.save(plan.jobs[result.index], result)
        kept[result.index] = result
        if on_segment is not None:
            on_segment(result, len(kept), total)

    if todo:
        if execution.ray is not None:
            run_ray(todo, execution.ray, done)
        elif execution.jobs > 1 and len(todo) > 1:
            run_pool(todo, min(execution.jobs, len(todo)), done)
        else:
            run_local(todo, done, progress, on_step)
    return [kept[job.index] for job in plan.jobs]


def _assemble(
    out: str, plan: VideoPlan, results: Sequence[SegmentResult], options: EncodeOptions
) -> int:
    """Write the segmented file, then reopen it and check every segment parses and agrees."""
    info = plan.info
    video = _stored(info)
    encoder = _encoder_meta(options, info.frame_count, [r.metrics.psnr_yuv for r in results])
    try:
        size = write_segmented(
            out,
            video,
            [(r.frames, r.image) for r in results],
            encoder,
            overwrite=options.overwrite,
        )
    except OSError as exc:
        raise OutputError(str(exc)) from None
    with open_video(out) as check:
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
