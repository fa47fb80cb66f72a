"""The overfitting loop: one model, one clip, many epochs.

Split into :func:`train_step` (one batch), :func:`train_epoch` (one pass, loss kept on the device)
and :func:`train` (schedule, seeding, callbacks). Nothing here prints: progress goes to a callback
once per epoch, which is the only point where a value is brought back to the host.

**Training-encoder hook (hybrid models: HNeRV, DNeRV).** A model whose stored inputs are computed
from the frames by an encoder that is *not* stored may define three methods (duck-typed; a model
without ``make_training_encoder`` trains as ``model(positions)`` against the frames):

* ``make_training_encoder(self) -> nn.Module`` — builds the encoder. :func:`train` calls it once,
  moves it to the frames' device and optimises its parameters together with the model's (one
  extra Adam/Adan group at the base lr). It is not a submodule of the model, so it is never
  counted in ``--size`` nor stored.
* ``training_forward(self, encoder, positions, frames, all_frames) -> Tensor`` — used by
  :func:`train_step` instead of ``model(positions)``: ``positions`` (N,) are the batch's integer
  frame positions as floats, ``frames`` (N×3×H×W) the batch's targets, ``all_frames`` (T×3×H×W)
  the whole clip on the device (for neighbouring frames); returns N×3×H×W. It must not bring
  values back to the host, to keep one host sync per epoch.
* ``finalize_training(self, encoder, all_frames) -> None`` — called once by :func:`train` after
  the last epoch (encoder in eval mode): writes the encoder's outputs for every frame into the
  model's stored parameters (its embedding tables), so that ``model(t)`` afterwards — and the
  decoder, which only has the stored parameters — reproduces what training optimised.

**Patches.** With ``TrainConfig.patch`` (pixels per side) each epoch visits every patch of every
frame: a model that can compute its output per patch (HiNeRV) provides ``patch_cells(pixels)``
(the tiling of its grid), ``patch_slices(cells)`` (the frame pixels of one tile) and
``forward_patch(t, cells)`` (those pixels, equal to the whole-frame output's). Memory per step is
then a patch's (with its context), not a frame's: a 1080p clip trains on a small GPU or in a
CPU's cache. Patches are visited in a seeded random order, each with all frames in batches.

**Divergence** (:mod:`nvcodec.training.rollback`). An epoch whose loss jumps above twice the last
accepted epoch's is undone and the run goes on at half the learning rate; callbacks see it as
``EpochStats.undone`` and :class:`TrainResult` counts such epochs. A ``penalty`` whose weight
moves during the run says so with ``stationary = False``; then nothing is undone.

**Checkpoints** (:mod:`nvcodec.training.checkpoint`). ``checkpoint(epoch, epochs, capture)`` is
called after every epoch; it decides whether to save and only then calls ``capture()``, which
copies the whole training state to the CPU (the only extra host sync). ``resume`` puts a freshly
built model/optimiser/scheduler/generator in a saved state and continues with the next epoch, so
on the CPU a resumed run ends bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from nvcodec.device import bf16_autocast
from nvcodec.training.adan import Adan
from nvcodec.training.checkpoint import TrainState, capture_train_state, restore_train_state
from nvcodec.training.frames import Frames
from nvcodec.training.rollback import Rollback
from nvcodec.training.schedule import cosine_with_warmup

__all__ = [
    "BF16_AUTOCAST",
    "OPTIMIZERS",
    "PRECISIONS",
    "EpochStats",
    "TrainConfig",
    "TrainResult",
    "arithmetic",
    "steps_per_epoch",
    "train",
    "train_epoch",
    "train_step",
    "uses_autocast",
]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (stored in the file's metadata for reproducibility)."""

    epochs: int = 100
    batch_size: int = 1
    optimizer: str = "adam"  # "adam" or "adan"
    lr: float = 1e-3
    warmup: float = 0.2
    betas: tuple[float, ...] = (0.9, 0.999)  # two for Adam, three for Adan
    weight_decay: float = 0.0
    seed: int = 0
    amp: bool = True  # bf16 autocast where it is fast: see uses_autocast
    cpu_bf16: bool = True  # the model gains from bf16 on CPUs (its recipe says; see uses_autocast)
    channels_last: bool = True  # train in channels-last memory format (see training_layout)
    patch: int = 0  # train on patches of about this many pixels per side (0: whole frames)
    clip: float = 0.0  # largest gradient norm of the model's (and encoder's) parameters; 0: off
    # every fine-tune phase's lr fraction (prune, QAT, RD) times this: for a model trained at an
    # lr far above the others', whose fine-tunes at the usual fractions would re-train it
    fine_tune: float = 1.0


@dataclass(frozen=True)
class EpochStats:
    epoch: int  # 1-based
    epochs: int
    loss: float
    psnr: float  # RGB PSNR in dB of the training loss (float model, before quantisation)
    lr: float
    seconds: float
    phase: str = "train"  # set by the compression pipeline: "prune", "qat"
    undone: bool = False  # the epoch diverged and was undone (see nvcodec.training.rollback)


@dataclass(frozen=True)
class TrainResult:
    final_loss: float
    final_psnr: float
    seconds: float
    steps: int
    undone: int = 0  # epochs undone because they diverged


def _psnr(mse: float) -> float:
    if math.isnan(mse):
        return math.nan  # no epoch measured (or all diverged): not "perfect"
    return -10.0 * math.log10(mse) if mse > 0 else math.inf


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    positions: torch.Tensor,
    targets: torch.Tensor,
    autocast: bool,
    encoder: nn.Module | None = None,
    all_frames: Frames | None = None,
    penalty: Callable[[], torch.Tensor] | None = None,
    cells: tuple[int, int, int, int] | None = None,
) -> torch.Tensor:
    """One optimiser step on a batch; returns (detached, on device) the batch's summed squared
    error and summed objective (error plus penalty), stacked.

    With a training ``encoder`` the output is ``model.training_forward(encoder, positions,
    targets, all_frames)`` (see the module docstring), with ``cells`` the patch
    ``model.forward_patch(positions, cells)``, else ``model(positions)``. ``penalty()`` (e.g.
    the rate term of RD training) is added to the loss; the returned error excludes it.
    """
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(targets.device.type, dtype=torch.bfloat16, enabled=autocast):
        if cells is not None:
            output = model.forward_patch(positions, cells)
        elif encoder is None:
            output = model(positions)
        else:
            output = model.training_forward(encoder, positions, targets, all_frames)
    loss = torch.nn.functional.mse_loss(output.float(), targets)
    total = loss if penalty is None else loss + penalty()
    total.backward()
    optimizer.step()
    return torch.stack((loss, total)).detach() * targets.shape[0]


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    frames: Frames,
    batch_size: int,
    generator: torch.Generator,
    autocast: bool,
    encoder: nn.Module | None = None,
    penalty: Callable[[], torch.Tensor] | None = None,
    patch: int = 0,
    on_step: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """One pass over the frames (and, with ``patch``, over every patch of each) in a seeded
    random order; returns the mean MSE per pixel and the mean objective (MSE plus penalty),
    stacked, on the device. ``on_step(k)`` after the k-th
    step (no host sync: it is for progress)."""
    count = frames.shape[0]
    order = torch.randperm(count, generator=generator).to(frames.device)
    tiles: list[tuple[int, int, int, int] | None] = [None]
    if patch:
        cells = model.patch_cells(patch)
        tiles = [cells[i] for i in torch.randperm(len(cells), generator=generator).tolist()]
    pixels = frames.shape[-2] * frames.shape[-1]
    total = torch.zeros(2, device=frames.device)
    done = 0
    for tile in tiles:
        rows, cols = model.patch_slices(tile) if tile is not None else (slice(None),) * 2
        for start in range(0, count, batch_size):
            index = order[start : start + batch_size]
            batch = frames[index][:, :, rows, cols]
            error = train_step(
                model, optimizer, index.float(), batch, autocast, encoder, frames, penalty, tile
            )
            total += error * (batch.shape[-2] * batch.shape[-1] / pixels)
            scheduler.step()
            done += 1
            if on_step is not None:
                on_step(done)
    return total / count


STEP_REPORT_S = 0.25
"""Least seconds between two step reports within an epoch."""


def _step_reporter(
    on_step: Callable[[int, int], None] | None, before: int, per_epoch: int, total: int
) -> Callable[[int], None] | None:
    """``k ↦ on_step(before + k, total)``, throttled to one call per :data:`STEP_REPORT_S`
    (and always at the epoch's last step)."""
    if on_step is None:
        return None
    last = time.perf_counter()

    def report(k: int) -> None:
        nonlocal last
        now = time.perf_counter()
        if k == per_epoch or now - last >= STEP_REPORT_S:
            last = now
            on_step(before + k, total)

    return report


def steps_per_epoch(model: nn.Module, frame_count: int, config: TrainConfig) -> int:
    """Optimiser steps in one epoch: frame batches, times the patches of a frame."""
    tiles = len(model.patch_cells(config.patch)) if config.patch else 1
    return tiles * math.ceil(frame_count / config.batch_size)


OPTIMIZERS = ("adam", "adan")
PRECISIONS = ("auto", "fp32")
"""``--precision``: ``auto`` trains under bf16 autocast where the device runs it fast
(:func:`uses_autocast`), ``fp32`` never does. Decoding is fp32 either way."""


BF16_AUTOCAST = "bf16 autocast"
"""How plans, reports and benchmark tables name training under bf16 autocast (else "fp32")."""


def uses_autocast(config: TrainConfig, device: torch.device) -> bool:
    """Whether training with ``config`` on ``device`` runs under bf16 autocast: ``amp`` asks for
    it, the device has fast bf16 (CUDA, or a CPU with AMX; :func:`nvcodec.device.bf16_autocast`)
    and, on a CPU, the model's recipe does not say that bf16 is slower for it there
    (``cpu_bf16``: NeRV++, DNeRV and hinerv). Weights, optimiser state and the loss stay fp32."""
    if device.type == "cpu" and not config.cpu_bf16:
        return False
    return config.amp and bf16_autocast(device)


def arithmetic(config: TrainConfig, device: torch.device) -> str:
    """:data:`BF16_AUTOCAST` or ``"fp32"``: what training with ``config`` on ``device`` runs."""
    return BF16_AUTOCAST if uses_autocast(config, device) else "fp32"


def training_layout(module: nn.Module, config: TrainConfig) -> nn.Module:
    """``module`` (in place) in the memory format its training runs fastest in: channels-last
    unless the recipe says otherwise. A speed choice only, not stored in the file (the decoder
    follows the file's own decode layout). Training steps at 640×320 / 160×80, 2 threads, in
    each model's own arithmetic: DS-NeRV 1.22× / 1.12× NCHW's, NeRV 1.70× / 1.00×, NeRV++
    1.36× / 1.24×, DNeRV 1.10× / 1.08×, HNeRV 1.06× / 1.06×; both HiNeRVs 0.96–0.99×, so they
    stay NCHW (``benchmarks/results/throughput/training_layout/steps.md``)."""
    if config.channels_last:
        module.to(memory_format=torch.channels_last)
    return module


def make_optimizer(
    model: nn.Module,
    config: TrainConfig,
    encoder: nn.Module | None = None,
    extra_groups: list[dict] | None = None,
) -> torch.optim.Optimizer:
    """Adam or Adan over the model's parameter groups (a model may give some a larger lr), plus
    a training ``encoder``'s parameters as one more group at the base lr, plus ``extra_groups``."""
    groups_fn = getattr(model, "parameter_groups", None)
    groups = groups_fn(config.lr) if groups_fn else [{"params": list(model.parameters())}]
    if encoder is not None:
        groups.append({"params": list(encoder.parameters())})
    if config.clip > 0:
        clipped = [p for group in groups for p in group["params"]]
    groups += list(extra_groups or [])
    optimizer = _build_optimizer(groups, config)
    if config.clip > 0:
        optimizer.register_step_pre_hook(functools.partial(_clip_before_step, clipped, config.clip))
    return optimizer


def _clip_before_step(parameters: list[torch.Tensor], max_norm: float, *_: object) -> None:
    """Scale the gradients to a norm of at most ``max_norm`` (an optimizer step pre-hook; on
    the device, no host sync)."""
    nn.utils.clip_grad_norm_(parameters, max_norm)


def _build_optimizer(groups: list[dict], config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        if len(config.betas) != 2:
            raise ValueError(f"Adam needs two betas, got {config.betas}")
        b1, b2 = config.betas
        return torch.optim.Adam(
            groups, lr=config.lr, betas=(b1, b2), weight_decay=config.weight_decay
        )
    if config.optimizer == "adan":
        if len(config.betas) != 3:
            raise ValueError(f"Adan needs three betas, got {config.betas}")
        b1, b2, b3 = config.betas
        return Adan(groups, lr=config.lr, betas=(b1, b2, b3), weight_decay=config.weight_decay)
    raise ValueError(f"unknown optimizer {config.optimizer!r} (known: {', '.join(OPTIMIZERS)})")


def _schedule(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup: float
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up, then cosine decay, stepped once per optimiser step."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: cosine_with_warmup(step, total_steps, warmup)
    )


@dataclass
class _Run:
    """Everything one call of :func:`train` steps: the model and its training encoder, the
    optimiser, schedule and shuffling generator, and the clock (moved back on resume)."""

    model: nn.Module
    encoder: nn.Module | None
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    generator: torch.Generator
    config: TrainConfig
    per_epoch: int
    start: float

    def state(self, epoch: int, loss: float) -> Callable[[], TrainState]:
        """The checkpoint state after ``epoch``, captured only if a checkpoint is saved."""
        return functools.partial(
            capture_train_state,
            epoch,
            self.config.epochs,
            loss,
            time.perf_counter() - self.start,
            self.model,
            self.encoder,
            self.optimizer,
            self.scheduler,
            self.generator,
        )


def _prepare(
    model: nn.Module, frames: Frames, config: TrainConfig, extra_groups: list[dict] | None
) -> _Run:
    generator = torch.Generator().manual_seed(config.seed)
    make_encoder = getattr(model, "make_training_encoder", None)
    encoder = make_encoder().to(frames.device) if make_encoder is not None else None
    if encoder is not None:
        training_layout(encoder, config)
    optimizer = make_optimizer(model, config, encoder, extra_groups)
    per_epoch = steps_per_epoch(model, frames.shape[0], config)
    scheduler = _schedule(optimizer, config.epochs * per_epoch, config.warmup)
    model.train()
    if encoder is not None:
        encoder.train()
    return _Run(
        model, encoder, optimizer, scheduler, generator, config, per_epoch, time.perf_counter()
    )


def _resume(run: _Run, resume: TrainState | None) -> tuple[int, float]:
    """The first epoch to run and the loss so far (a fresh run: 1 and NaN)."""
    if resume is None:
        return 1, math.nan
    if resume.epochs != run.config.epochs:
        raise ValueError(f"resume state is for {resume.epochs} epochs, not {run.config.epochs}")
    restore_train_state(resume, run.model, run.encoder, run.optimizer, run.scheduler, run.generator)
    run.start -= resume.seconds
    return resume.epoch + 1, resume.loss


def train(
    model: nn.Module,
    frames: Frames,
    config: TrainConfig,
    callback: Callable[[EpochStats], None] | None = None,
    checkpoint: Callable[[int, int, Callable[[], TrainState]], None] | None = None,
    resume: TrainState | None = None,
    penalty: Callable[[], torch.Tensor] | None = None,
    extra_groups: list[dict] | None = None,
    on_step: Callable[[int, int], None] | None = None,
) -> TrainResult:
    """Overfit ``model`` to ``frames`` (T×3×H×W in [0, 1], already on the training device).

    A model with ``make_training_encoder`` trains through its encoder and is finalised at the end
    (see the module docstring); the encoder is discarded afterwards. ``checkpoint`` and
    ``resume``: see the module docstring. ``penalty()`` is added to every step's loss (RD
    training's rate term); ``extra_groups`` are optimiser groups appended to the model's (e.g.
    learned step sizes, with their own lr and no weight decay). ``on_step(done, total)``
    reports optimiser steps as they happen, at most every :data:`STEP_REPORT_S` seconds and at
    each epoch's end, so progress shows from the first seconds even when an epoch takes minutes.
    """
    run = _prepare(model, frames, config, extra_groups)
    total_steps = config.epochs * run.per_epoch
    autocast = uses_autocast(config, frames.device)
    first, mse = _resume(run, resume)
    stationary = getattr(penalty, "stationary", True)  # see nvcodec.training.rollback
    guard = Rollback([model, run.encoder], run.optimizer, run.scheduler, mse, stationary)
    for epoch in range(first, config.epochs + 1):
        done = (epoch - 1) * run.per_epoch
        losses = train_epoch(
            model,
            run.optimizer,
            run.scheduler,
            frames,
            config.batch_size,
            run.generator,
            autocast,
            encoder=run.encoder,
            penalty=penalty,
            patch=config.patch,
            on_step=_step_reporter(on_step, done, run.per_epoch, total_steps),
        )
        mse, objective = losses.tolist()  # the one host sync per epoch
        accepted = guard.check(objective, mse)
        if checkpoint is not None:
            checkpoint(epoch, config.epochs, run.state(epoch, guard.reference))
        if callback is not None:
            lr = run.optimizer.param_groups[0]["lr"]
            seconds = time.perf_counter() - run.start
            undone = not accepted
            callback(EpochStats(epoch, config.epochs, mse, _psnr(mse), lr, seconds, undone=undone))
    model.eval()
    if run.encoder is not None:
        model.finalize_training(run.encoder.eval(), frames)
    seconds = time.perf_counter() - run.start
    return TrainResult(guard.loss, _psnr(guard.loss), seconds, total_steps, guard.undone)
