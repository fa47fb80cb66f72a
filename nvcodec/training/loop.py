"""The overfitting loop: one model, one clip, many epochs.

Split into :func:`train_step` (one batch), :func:`train_epoch` (one pass, loss kept on the device)
and :func:`train` (schedule, seeding, callbacks). Nothing here prints: progress goes to a callback
once per epoch, which is the only point where a value is brought back to the host.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from nvcodec.training.adan import Adan
from nvcodec.training.schedule import cosine_with_warmup

__all__ = ["EpochStats", "TrainConfig", "TrainResult", "train", "train_epoch", "train_step"]


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
    amp: bool = True  # bf16 autocast on CUDA; ignored on CPU where it does not help


@dataclass(frozen=True)
class EpochStats:
    epoch: int  # 1-based
    epochs: int
    loss: float
    psnr: float  # RGB PSNR in dB of the training loss (float model, before quantisation)
    lr: float
    seconds: float


@dataclass(frozen=True)
class TrainResult:
    final_loss: float
    final_psnr: float
    seconds: float
    steps: int


def _psnr(mse: float) -> float:
    return -10.0 * math.log10(mse) if mse > 0 else math.inf


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    positions: torch.Tensor,
    targets: torch.Tensor,
    autocast: bool,
) -> torch.Tensor:
    """One optimiser step on a batch; returns the (detached, on-device) summed squared error."""
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(targets.device.type, dtype=torch.bfloat16, enabled=autocast):
        output = model(positions)
    loss = torch.nn.functional.mse_loss(output.float(), targets)
    loss.backward()
    optimizer.step()
    return loss.detach() * targets.shape[0]


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    frames: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
    autocast: bool,
) -> torch.Tensor:
    """One pass over the frames in a seeded random order; returns the mean MSE (on device)."""
    count = frames.shape[0]
    order = torch.randperm(count, generator=generator).to(frames.device)
    total = torch.zeros((), device=frames.device)
    for start in range(0, count, batch_size):
        index = order[start : start + batch_size]
        total += train_step(model, optimizer, index.float(), frames[index], autocast)
        scheduler.step()
    return total / count


OPTIMIZERS = ("adam", "adan")


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam or Adan over the model's parameter groups (a model may give some a larger lr)."""
    groups_fn = getattr(model, "parameter_groups", None)
    groups = groups_fn(config.lr) if groups_fn else [{"params": list(model.parameters())}]
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


def train(
    model: nn.Module,
    frames: torch.Tensor,
    config: TrainConfig,
    callback: Callable[[EpochStats], None] | None = None,
) -> TrainResult:
    """Overfit ``model`` to ``frames`` (T×3×H×W in [0, 1], already on the training device)."""
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = make_optimizer(model, config)
    steps_per_epoch = math.ceil(frames.shape[0] / config.batch_size)
    total_steps = config.epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: cosine_with_warmup(step, total_steps, config.warmup)
    )
    autocast = config.amp and frames.device.type == "cuda"
    model.train()
    start = time.perf_counter()
    mse = math.nan
    for epoch in range(1, config.epochs + 1):
        mse_t = train_epoch(
            model, optimizer, scheduler, frames, config.batch_size, generator, autocast
        )
        if callback is not None or epoch == config.epochs:
            mse = float(mse_t)  # the one host sync per epoch
            if callback is not None:
                callback(
                    EpochStats(
                        epoch=epoch,
                        epochs=config.epochs,
                        loss=mse,
                        psnr=_psnr(mse),
                        lr=optimizer.param_groups[0]["lr"],
                        seconds=time.perf_counter() - start,
                    )
                )
    model.eval()
    return TrainResult(mse, _psnr(mse), time.perf_counter() - start, total_steps)
