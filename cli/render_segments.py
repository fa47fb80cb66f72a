"""Text the CLI shows for segmented files and encodes: the segment plan, a line per finished
segment with the ETA across workers, the summary, and ``nvc info``'s segment table."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

from cli.render import _clock, _db

if TYPE_CHECKING:
    from nvcodec.inspection import SegmentedInfo
    from nvcodec.segment_encoder import VideoPlan, VideoReport
    from nvcodec.segment_jobs import SegmentResult

__all__ = ["SegmentProgress", "segment_plan_text", "segments_text", "video_summary"]


def segment_plan_text(plan: VideoPlan) -> str:
    """The cuts and every segment's frames, budget and rate setting (``--dry-run``)."""
    info = plan.info
    cuts = ", ".join(map(str, plan.cuts)) if plan.cuts else "none"
    lines = [
        f"{info.source}: {info.width}×{info.height}, {info.frame_count} frames at "
        f"{float(info.fps):g} fps; scene cuts detected: {cuts}",
        f"{len(plan.jobs)} segments, {plan.jobs[0].threads} thread(s) per segment encode:",
    ]
    for job, (a, b) in zip(plan.jobs, plan.spans, strict=True):
        opts = job.options
        rate = f", target {opts.target_bpp:.4g} bpp" if opts.target_bpp else ""
        lines.append(
            f"  segment {job.index:>4d}: frames {a}:{b} ({b - a}), {opts.model} "
            f"{opts.size:,} parameters{rate}"
        )
    return "\n".join(lines)


class SegmentProgress:
    """A line on stderr per finished segment: its bytes and PSNR, and the time left for the
    whole encode at the pace so far, weighted by frames (workers finish out of order)."""

    def __init__(self, disable: bool = False) -> None:
        self._disable = disable
        self._frames = 0
        self._done_frames = 0
        self._start = time.perf_counter()

    def plan(self, plan: VideoPlan) -> None:
        self._frames = sum(job.frames for job in plan.jobs)
        self._start = time.perf_counter()
        if not self._disable:
            print(segment_plan_text(plan), file=sys.stderr)

    def done(self, result: SegmentResult, finished: int, total: int) -> None:
        if result.reused:  # kept from --checkpoint-dir: not part of this run's pace
            self._frames -= result.frames
            if not self._disable:
                print(f"segment {result.index}: kept from the checkpoint folder", file=sys.stderr)
            return
        self._done_frames += result.frames
        if self._disable:
            return
        elapsed = time.perf_counter() - self._start
        left = elapsed * (self._frames - self._done_frames) / max(self._done_frames, 1)
        print(
            f"segment {result.index} done ({finished}/{total}): {len(result.image):,} bytes, "
            f"PSNR-YUV {_db(result.metrics.psnr_yuv)} dB; "
            f"elapsed {_clock(elapsed)}, left about {_clock(left)}",
            file=sys.stderr,
        )


def video_summary(r: VideoReport) -> str:
    m = r.metrics
    ms = "n/a (frames too small)" if m.ms_ssim is None else f"{m.ms_ssim:.4f}"
    rate = (
        f" (target {r.target_bpp:g} bpp: {r.bpp / r.target_bpp - 1:+.1%})" if r.target_bpp else ""
    )
    return "\n".join(
        [
            f"wrote {r.output}: {r.bytes:,} bytes, {r.bpp:.4f} bpp{rate} ({r.width}×{r.height}, "
            f"{r.frames} frames at {r.fps:g} fps) in {len(r.segments)} segments",
            f"quality, decoded from each segment's file: PSNR-YUV 6:1:1 {_db(m.psnr_yuv)} dB "
            f"(Y {_db(m.psnr_y)}, U {_db(m.psnr_u)}, V {_db(m.psnr_v)}), "
            f"PSNR-RGB {_db(m.psnr_rgb)} dB, MS-SSIM {ms}",
            f"model {r.model}, {r.parameters:,} parameters in all, on {r.device}",
            f"time: {r.seconds['total']:.1f} s (scan {r.seconds['scan']:.1f} s; segment "
            f"encodes {r.seconds['segments']:.1f} s of worker time)",
        ]
    )


def segments_text(info: SegmentedInfo) -> str:
    """``nvc info`` of a segmented file."""
    video = info.metadata["video"]
    w, h = video["width"], video["height"]
    lines = [
        f"{info.path}: nvc format {info.writer_version[0]}.{info.writer_version[1]} "
        f"(needs reader ≥ {info.reader_version[0]}.{info.reader_version[1]}), segmented",
        f"video: {w}×{h}, {video['frames']} frames, {video['fps'][0]}/{video['fps'][1]} fps, "
        f"colour {video['colour']['matrix']} {video['colour']['range']}",
        f"size: {info.size:,} bytes, {info.bpp:.5f} bpp, {len(info.segments)} segments "
        "(nvc info --segment K for one segment's model and tensors)",
        f"  {'segment':>7s} {'frames':>13s} {'model':>10s} {'params':>10s} {'bytes':>10s} "
        f"{'bpp':>8s} {'PSNR-YUV':>8s}",
    ]
    for s in info.segments:
        psnr = "?" if s.psnr_yuv is None else _db(s.psnr_yuv)
        lines.append(
            f"  {s.index:>7d} {f'{s.start}:{s.stop}':>13s} {s.model:>10s} {s.parameters:>10,} "
            f"{s.bytes:>10,} {s.bpp(w, h):>8.4f} {psnr:>8s}"
        )
    return "\n".join(lines)
