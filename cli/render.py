"""Text the CLI shows: the training progress bar (tqdm, on stderr) and summaries.

tqdm rather than a hand-written bar: it handles terminals, pipes and rate estimates already.
"""

from __future__ import annotations

import json
import math
import sys
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from nvcodec.encoder import EncodeReport
    from nvcodec.inspection import FileInfo
    from nvcodec.training import EpochStats


class TrainingProgress:
    """One tqdm bar per phase over its optimiser steps (so it moves, with an ETA, within
    seconds even when an epoch takes minutes), showing the epoch, loss and PSNR as each epoch
    ends, how many epochs were undone because they diverged (once one was), and, once
    :meth:`set_plan` gave every phase's weight, the whole encode's ETA (all phases; tqdm's own
    ETA is the phase's); closed on exit."""

    PHASES: ClassVar[dict[str, str]] = {
        "train": "training",
        "prune": "pruned fine-tune",
        "qat": "QAT fine-tune",
        "rd": "RD training (noise)",
        "rd-ste": "RD training (integers)",
    }

    def __init__(self, disable: bool = False) -> None:
        self._disable = disable
        self._bar: Any = None
        self._phase = ""
        self._costs: dict[str, float] = {}
        self._finished = 0.0  # work of the phases before the current one, in training steps
        self._started: float | None = None
        self._postfix: dict[str, str] = {}
        self._undone = 0

    def set_plan(self, costs: dict[str, float]) -> None:
        """Every phase's work in training steps (:func:`nvcodec.planning.phase_costs`)."""
        self._costs = dict(costs)

    def _encode_eta(self, phase: str, done: int, total: int) -> str | None:
        """Time left for the whole encode: the work still to do at the pace so far."""
        if phase not in self._costs or self._started is None or done == 0:
            return None
        now = self._costs[phase] * done / max(total, 1) + self._finished
        elapsed = time.perf_counter() - self._started
        left = elapsed * (sum(self._costs.values()) - now) / max(now, 1e-9)
        return _clock(max(left, 0.0))

    def __enter__(self) -> TrainingProgress:
        return self

    def _bar_for(self, phase: str, total: int, unit: str) -> Any:
        if self._bar is not None and phase != self._phase:
            self._bar.close()  # each phase (training, fine-tunes, RD) has its own bar
            self._bar = None
            self._finished += self._costs.get(self._phase, 0.0)
            self._postfix = {}
        if self._bar is None:
            from tqdm import tqdm

            self._phase = phase
            desc = self.PHASES.get(phase, phase)
            self._bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr)
        return self._bar

    def step(self, phase: str, done: int, total: int) -> None:
        """Optimiser steps of ``phase``: ``done`` of ``total``."""
        if self._disable:
            return
        if self._started is None:
            self._started = time.perf_counter()
        bar = self._bar_for(phase, total, "step")
        eta = self._encode_eta(phase, done, total)
        if eta is not None:
            self._postfix["encode ETA"] = eta
            bar.set_postfix(self._postfix, refresh=False)
        bar.update(done - bar.n)

    def update(self, stats: EpochStats) -> None:
        """End of an epoch: its number, loss and PSNR (an epoch bar if no steps were shown)."""
        if self._disable:
            return
        bar = self._bar_for(stats.phase, stats.epochs, "epoch")
        self._postfix.update(
            epoch=f"{stats.epoch}/{stats.epochs}",
            loss=f"{stats.loss:.5f}",
            psnr=f"{stats.psnr:.2f}dB",
        )
        self._undone += stats.undone
        if self._undone:  # for the whole encode, so it survives the bar of a new phase
            self._postfix["undone (diverged)"] = str(self._undone)
        bar.set_postfix(self._postfix, refresh=False)
        if bar.unit == "epoch":
            bar.update(stats.epoch - bar.n)
        else:
            bar.refresh()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.close()


def _sub_phases(seconds: dict[str, float], phase: str) -> str:
    """`` [rd 12.0, entropy 0.4]``: the parts of a phase that took a measurable time."""
    parts = [
        f"{key.split('.', 1)[1]} {value:.1f}"
        for key, value in seconds.items()
        if key.startswith(f"{phase}.") and value >= 0.05
    ]
    return f" [{', '.join(parts)}]" if parts else ""


def _undone(epochs: int) -> str:
    """``; 2 diverged epochs undone`` (training went back and halved its lr), or nothing."""
    if not epochs:
        return ""
    return f"; {epochs} diverged epoch{'s' if epochs > 1 else ''} undone"


def _clock(seconds: float) -> str:
    """``1:02:03`` or ``2:03``, as tqdm shows its own times."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _db(x: float) -> str:
    return "inf" if math.isinf(x) else f"{x:.2f}"


def encode_summary(r: EncodeReport) -> str:
    m, s = r.metrics, r.seconds
    ms = "n/a (frames too small)" if m.ms_ssim is None else f"{m.ms_ssim:.4f}"
    decode_fps = r.frames / s["decode"] if s.get("decode") else float("inf")
    c = r.compression
    rate = (
        f" (target {r.target_bpp:g} bpp: {r.bpp / r.target_bpp - 1:+.1%})" if r.target_bpp else ""
    )
    compression = (
        f"compression: {c.get('bits')}-bit weights, {c.get('code_bits')}-bit codes, "
        f"{c.get('prune_ratio', 0):.0%} of conv weights pruned, "
        f"fine-tune {c.get('prune_epochs', 0)} + QAT {c.get('qat_epochs', 0)} epochs"
        if c
        else ""
    )
    return "\n".join(
        [
            f"wrote {r.output}: {r.bytes:,} bytes, {r.bpp:.4f} bpp{rate} "
            f"({r.width}×{r.height}, {r.frames} frames at {r.fps:g} fps)",
            f"quality, decoded from the file: PSNR-YUV 6:1:1 {_db(m.psnr_yuv)} dB "
            f"(Y {_db(m.psnr_y)}, U {_db(m.psnr_u)}, V {_db(m.psnr_v)}), "
            f"PSNR-RGB {_db(m.psnr_rgb)} dB, MS-SSIM {ms}",
            f"model {r.model}, {r.parameters:,} parameters, on {r.device}; "
            f"float model before quantisation {_db(r.train_psnr)} dB RGB{_undone(r.undone_epochs)}",
            *([compression] if compression else []),
            f"time: encode {s['total']:.1f} s (read {s['read']:.1f}, train {s['train']:.1f}, "
            f"compress {s['compress']:.2f}{_sub_phases(s, 'compress')}, "
            f"decode+verify {s['decode']:.2f}); decode {decode_fps:.1f} fps",
        ]
    )


def info_text(info: FileInfo, tensors: bool = True) -> str:
    meta = info.metadata
    video, model = meta["video"], meta["model"]
    lines = [
        f"{info.path}: nvc format {info.writer_version[0]}.{info.writer_version[1]} "
        f"(needs reader ≥ {info.reader_version[0]}.{info.reader_version[1]})",
        f"video: {video['width']}×{video['height']}, {video['frames']} frames, "
        f"{video['fps'][0]}/{video['fps'][1]} fps, colour {video['colour']['matrix']} "
        f"{video['colour']['range']}",
        f"model: {model['id']}, {info.parameters:,} parameters, decode layout "
        f"{meta.get('decode', {}).get('layout', 'nchw')}",
        f"config: {json.dumps(model['config'], separators=(', ', ': '))}",
        f"compression: {json.dumps(meta['compression'])}",
        f"encoder: {json.dumps(meta['encoder'])}",
        f"size: {info.size:,} bytes, {info.bpp:.5f} bpp",
        "sections:",
    ]
    breakdown = info.bpp_breakdown()
    for name, n in info.sections.items():
        lines.append(f"  {name:14s} {n:>12,} bytes  {breakdown[name]:.5f} bpp")
    lines.append(
        "tensor groups (payload vs ideal: coded bytes over the Shannon length under the model):"
    )
    lines.append(
        f"  {'group':16s} {'params':>10s} {'bits':>6s} {'zeros':>6s} {'side B':>8s} "
        f"{'payload B':>10s} {'ideal B':>10s} {'vs ideal':>8s} {'bits/param':>10s}"
    )
    for g in [*info.groups(), info.total()]:
        depth = "/".join(map(str, g.bits))
        lines.append(
            f"  {g.name:16s} {g.parameters:>10,} {depth:>6s} "
            f"{g.zeros / max(g.parameters, 1):>6.1%} {g.side_bytes:>8,} {g.payload_bytes:>10,} "
            f"{g.ideal_payload_bits / 8:>10,.0f} {g.payload_gap:>+8.2%} {g.bits_per_param:>10.3f}"
        )
    if tensors:
        lines.append("tensors:")
        lines.append(
            f"  {'name':32s} {'shape':>18s} {'bits':>4s} {'step':>17s} {'model':>9s} "
            f"{'side B':>8s} {'payload B':>10s} {'vs ideal':>8s} {'bits/param':>10s}"
        )
        for t in info.tensors:
            shape = "×".join(map(str, t.shape))
            lines.append(
                f"  {t.name:32s} {shape:>18s} {t.bits:>4d} {_steps(t.steps):>17s} "
                f"{t.entropy_model:>9s} {t.side_bytes:>8,} {t.payload_bytes:>10,} "
                f"{t.payload_gap:>+8.2%} {t.bits_per_param:>10.3f}"
            )
    return "\n".join(lines)


def _steps(steps: tuple[float, float]) -> str:
    """One quantisation step, or the range of a tensor's per-channel steps."""
    lo, hi = steps
    return f"{lo:.3g}" if lo == hi else f"{lo:.3g}–{hi:.3g}"
