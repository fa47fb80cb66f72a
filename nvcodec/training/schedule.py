"""Learning-rate schedule: linear warm-up then cosine decay (NeRV/HNeRV/DS-NeRV recipe)."""

from __future__ import annotations

import math

__all__ = ["cosine_with_warmup"]


def cosine_with_warmup(step: int, total: int, warmup_fraction: float, floor: float = 0.0) -> float:
    """Multiplier of the base learning rate at optimiser step ``step`` of ``total``.

    Warm-up rises linearly from ``1/warmup_steps`` to 1 (never 0, so the first step moves); the
    rest follows half a cosine from 1 down to ``floor``.
    """
    total = max(total, 1)
    warmup = round(total * warmup_fraction)
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(total - warmup, 1)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
