"""What an encode will do, before it does it: ``nvc encode --dry-run``.

The plan is the encoder's own (:func:`nvcodec.encoder.plan_encode`: the same validation, the same
model sizing), summarised for a person: the model and how its budget splits across its parts, the
epochs of every phase, the device, and a time estimate measured by timing a few real training steps
of this model on this device. RD epochs cost more than training epochs (the rate term and the
learned quantisers); :data:`RD_EPOCH_COST` is that factor as measured on DS-NeRV (issue #11).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

import torch

from nvcodec.encoder import EncodeOptions, EncodePlan, plan_encode
from nvcodec.models import build_model
from nvcodec.pipeline import RDSettings
from nvcodec.training.loop import (
    arithmetic,
    make_optimizer,
    steps_per_epoch,
    train_epoch,
    training_layout,
    uses_autocast,
)

__all__ = ["RD_EPOCH_COST", "PlanSummary", "describe", "phase_costs", "plan_line", "summarize"]

RD_EPOCH_COST = 3.0
"""An RD epoch's time over a training epoch's (measured ≈3× on DS-NeRV, issue #11)."""
LONG_ON_CPU_S = 3600.0
"""Above this, the plan says what would make the encode shorter."""


@dataclass(frozen=True)
class PlanSummary:
    model: str
    parameters: int
    parts: list[tuple[str, int]]  # top-level parts of the model and their parameters
    width: int
    height: int
    frames: int
    device: str
    arithmetic: str  # of training: "bf16 autocast" or "fp32"
    phases: list[tuple[str, int, float]]  # (phase, epochs, cost of an epoch in training epochs)
    steps_per_epoch: int
    seconds_per_step: float

    @property
    def estimate_s(self) -> float:
        epochs = sum(e * cost for _, e, cost in self.phases)
        return epochs * self.steps_per_epoch * self.seconds_per_step


def _phases(opts: EncodeOptions) -> list[tuple[str, int, float]]:
    phases = [("training", opts.resolved_epochs, 1.0)]
    if opts.rd:
        return [*phases, ("RD training", opts.resolved_rd_epochs, RD_EPOCH_COST)]
    return [
        *phases,
        ("pruned fine-tune", opts.resolved_prune_epochs, 1.0),
        ("QAT fine-tune", opts.resolved_qat_epochs, 1.0),
    ]


def _time_steps(model: torch.nn.Module, opts: EncodeOptions, device: torch.device) -> float:
    """Seconds per optimiser step: one epoch over a few random frames, after one to warm up."""
    c = model.config
    frames = torch.rand(min(3, c.frame_count), 3, c.height, c.width, device=device)
    cfg = opts.train_config()
    training_layout(model, cfg)
    make_encoder = getattr(model, "make_training_encoder", None)
    encoder = make_encoder().to(device) if make_encoder is not None else None
    if encoder is not None:
        training_layout(encoder, cfg)
    optimizer = make_optimizer(model, cfg, encoder)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    generator = torch.Generator().manual_seed(0)

    def epoch(clip: torch.Tensor) -> None:
        train_epoch(
            model,
            optimizer,
            scheduler,
            clip,
            cfg.batch_size,
            generator,
            uses_autocast(cfg, device),
            encoder=encoder,
            patch=cfg.patch,
        )
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    epoch(frames[:1])  # warm-up: allocations, kernels' first calls
    start = time.perf_counter()
    epoch(frames)
    return (time.perf_counter() - start) / steps_per_epoch(model, len(frames), cfg)


def summarize(input_path: str, options: EncodeOptions) -> PlanSummary:
    """Plan the encode of ``input_path`` with ``options`` and time a few of its steps."""
    return summary_of(plan_encode(input_path, options))


def summary_of(plan: EncodePlan) -> PlanSummary:
    """A plan's budget split, phases and a time estimate from a few timed steps of a separate
    copy of its model (the caller's model and random state are untouched)."""
    with torch.random.fork_rng(devices=[]):  # a dry run must not change the caller's RNG
        model = build_model(plan.config, device=plan.device).train()
        seconds = _time_steps(model, plan.opts, plan.device)
    parts: Counter[str] = Counter()
    for name, p in model.named_parameters():
        parts[part_name(name)] += p.numel()
    info = plan.info
    return PlanSummary(
        model=plan.opts.model,
        parameters=sum(parts.values()),
        parts=list(parts.items()),
        width=info.width,
        height=info.height,
        frames=info.frame_count,
        device=str(plan.device),
        arithmetic=arithmetic(plan.train_cfg, plan.device),
        phases=_phases(plan.opts),
        steps_per_epoch=steps_per_epoch(model, info.frame_count, plan.train_cfg),
        seconds_per_step=seconds,
    )


def part_name(parameter: str) -> str:
    """The part a parameter belongs to: its top-level module, or the numbered stage within a
    stack (``blocks.3``), so the split shows where a sizing rule puts the budget by stage."""
    names = parameter.split(".")
    if len(names) > 2 and names[1].isdigit():
        return ".".join(names[:2])
    return names[0]


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def describe(s: PlanSummary) -> str:
    """The plan as text: a header line, the budget split, the phases and the estimate."""
    lines = [
        f"plan: {s.model}, {s.parameters:,} parameters, {s.width}×{s.height}, {s.frames} frames, "
        f"on {s.device} ({s.arithmetic})",
        "  part                      parameters   share",
    ]
    for name, count in s.parts:
        lines.append(f"  {name:24s} {count:>12,} {count / max(s.parameters, 1):>7.1%}")
    for phase, epochs, cost in s.phases:
        seconds = epochs * cost * s.steps_per_epoch * s.seconds_per_step
        lines.append(
            f"  {phase:24s} {epochs:>5} epochs × {s.steps_per_epoch} steps ≈ {_duration(seconds)}"
        )
    total = s.estimate_s
    lines.append(
        f"estimate: {_duration(total)} ({s.seconds_per_step * 1000:.0f} ms per step, measured on "
        f"{s.device}; RD epochs counted as {RD_EPOCH_COST:g} training epochs)"
    )
    return "\n".join([*lines, *_shorter(s)])


def phase_costs(plan: EncodePlan) -> dict[str, float]:
    """Each progress phase's share of the encode's work, in training steps: what the progress
    bars weigh phases by for the whole encode's ETA (keys as ``encode(on_step=...)`` names them;
    RD epochs count :data:`RD_EPOCH_COST` steps each)."""
    opts = plan.opts
    steps = steps_per_epoch(build_model(plan.config, device="meta"), plan.info.frame_count,
                            plan.train_cfg)  # fmt: skip
    costs = {"train": float(opts.resolved_epochs * steps)}
    if opts.rd:
        epochs = opts.resolved_rd_epochs
        ste = RDSettings(lam=None, epochs=epochs).ste_epochs if epochs else 0
        costs["rd"] = (epochs - ste) * steps * RD_EPOCH_COST
        costs["rd-ste"] = ste * steps * RD_EPOCH_COST
    else:
        costs["prune"] = float(opts.resolved_prune_epochs * steps)
        costs["qat"] = float(opts.resolved_qat_epochs * steps)
    return costs


def plan_line(plan: EncodePlan) -> str:
    """Printed before training: model, parameters, clip, epochs per phase, device, and the time
    estimated from a few timed steps; a second line says what would make a long encode shorter
    (the encode goes on)."""
    s = summary_of(plan)
    phases = ", ".join(f"{name} {epochs}" for name, epochs, _ in s.phases if epochs)
    line = (
        f"plan: {s.model}, {s.parameters:,} parameters, {s.width}×{s.height}, {s.frames} frames, "
        f"on {s.device} ({s.arithmetic}); epochs: {phases} ({s.steps_per_epoch} steps each); "
        f"estimate {_duration(s.estimate_s)} "
        f"({s.seconds_per_step * 1000:.0f} ms per step, measured)"
    )
    return "\n".join([line, *_shorter(s)])


def _shorter(s: PlanSummary) -> list[str]:
    if s.estimate_s > LONG_ON_CPU_S and s.device == "cpu":
        return ["shorter: --preset fast, a smaller --size, fewer frames (--frames A:B), or a GPU"]
    return []
