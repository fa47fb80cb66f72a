"""Undo an epoch that diverged, and go on at half the learning rate.

Why: an overfitted network trained at the edge of its stable learning rate sometimes takes one
bad step — Adam's second moments are small after a calm stretch, a large gradient arrives, and
the weights jump far from where they were. Measured: hinerv-flat at 0.1M on Dashcam 160×80×48
went from 23.66 to 17.47 dB in its ninth epoch (lr 1e-2) and ended 3 dB below the 0.05M model,
because the remaining 70 epochs were spent climbing back. Lowering every model's lr to avoid
such a step costs quality everywhere else (0.4–0.8 dB on clips that never diverge), and
gradient clipping did not prevent it.

The rule: an epoch whose training objective (the MSE, plus the rate term in RD training) is more
than :data:`DIVERGED` times the last accepted epoch's (a drop of over 3 dB), or not finite, is
undone. The objective, not the MSE alone: in RD training the rate term may legitimately trade
distortion away, and undoing that would fight the loss being minimised. (On the Dashcam runs
measured both ways, the two rules undid the same epochs and wrote the same files.)

The model, the training encoder, every optimised tensor (learned step sizes included) and the
optimiser's moments return to their values after the last accepted epoch, and every group's
base learning rate is halved for the rest of the run. The epoch still counts: a run never
takes more epochs than asked for.

The epoch after an undone one is accepted whatever its (finite) loss, and becomes the new
reference. An epoch's loss is the mean over its steps, so a step late in an accepted epoch can
already have spoiled the state kept; comparing against that epoch for ever would undo every
later epoch and stall the run (seen on a small model at lr 0.3).

A loss whose weights move during the run (RD training with a target size, where dual ascent
raises λ every step) gives objectives that two epochs cannot compare; such a run passes
``enabled=False`` and nothing is undone.

It is decided from values alone, so seeded runs stay deterministic. Only the state after the
last epoch is kept, the reference loss goes into checkpoints, so a resumed run undoes the same
epochs as an uninterrupted one.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable

import torch
from torch import nn

__all__ = ["DIVERGED", "FLOOR", "LR_BACKOFF", "Rollback"]

DIVERGED = 2.0
"""An epoch whose objective exceeds this multiple of the last accepted epoch's is undone."""

FLOOR = 1e-6
"""Objectives below this (60 dB PSNR on [0, 1] RGB) count as this when compared: near float
precision, noise alone can double an epoch's mean, and that is not a divergence."""

LR_BACKOFF = 0.5
"""Factor on every group's base learning rate after each undone epoch."""


class Rollback:
    """Keeps the state after the last accepted epoch; :meth:`check` accepts or undoes one."""

    def __init__(
        self,
        modules: Iterable[nn.Module | None],
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LambdaLR,
        loss: float = math.nan,
        enabled: bool = True,
    ) -> None:
        self.enabled = enabled
        self._optimizer = optimizer
        self._scheduler = scheduler
        tensors: dict[int, torch.Tensor] = {}
        for group in optimizer.param_groups:
            tensors.update((id(p), p) for p in group["params"])
        for module in modules:
            if module is not None:
                tensors.update((id(b), b) for b in module.buffers())
        self._tensors = list(tensors.values())
        self.reference = loss  # the next epoch is undone above DIVERGED × this (NaN: accepted)
        self.loss = loss  # MSE of the last accepted epoch (NaN: none yet; on resume the reference)
        self.undone = 0  # epochs undone so far in this run
        self._values = [torch.empty_like(t) for t in self._tensors] if enabled else []
        self._save()

    def _save(self) -> None:
        if not self.enabled:
            return
        with torch.no_grad():  # into the same buffers: no second copy of the model at a time
            for value, tensor in zip(self._values, self._tensors, strict=True):
                value.copy_(tensor)
        self._moments = copy.deepcopy(self._optimizer.state_dict())

    def _restore(self) -> None:
        with torch.no_grad():
            for tensor, value in zip(self._tensors, self._values, strict=True):
                tensor.copy_(value)
        # A copy: load_state_dict may keep our tensors, and the next steps change them in place.
        self._optimizer.load_state_dict(copy.deepcopy(self._moments))
        scheduler = self._scheduler
        scheduler.base_lrs = [lr * LR_BACKOFF for lr in scheduler.base_lrs]
        step = scheduler.last_epoch
        for group, base, factor in zip(
            self._optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas, strict=True
        ):
            group["lr"] = base * factor(step)
        scheduler._last_lr = [group["lr"] for group in self._optimizer.param_groups]

    def check(self, objective: float, mse: float) -> bool:
        """Accept the epoch that ended with mean ``objective`` and ``mse`` (True) or undo it
        (False)."""
        reference = self.reference  # NaN: nothing to compare with, accepted if finite
        diverged = math.isfinite(reference) and objective > DIVERGED * max(reference, FLOOR)
        if self.enabled and (diverged or not math.isfinite(objective)):
            self._restore()
            self.undone += 1
            self.reference = math.nan
            return False
        self.reference, self.loss = objective, mse
        self._save()
        return True
