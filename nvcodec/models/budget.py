"""Solve a parameter budget (``--size 0.3M``) into a concrete model config.

Each registered model has a sizing rule monotone in one integer knob; we binary-search the knob on
the ``meta`` device (no memory is allocated) for the largest model within the budget. The count
is the model's real ``parameters()``, so it cannot drift from the architecture.
"""

from __future__ import annotations

from nvcodec.errors import ConfigError
from nvcodec.models.config import ModelConfig
from nvcodec.models.registry import SizingRule, build_model, get_spec

__all__ = ["MAX_PARAMETERS", "count_parameters", "parse_size", "solve_config", "solve_sizing"]

MAX_KNOB = 4096
MAX_PARAMETERS = 200_000_000
"""The largest model a decoder rebuilds; the encoder refuses budgets above it before building."""


def count_parameters(config: ModelConfig) -> int:
    """Number of stored parameters (learned codes included), computed without allocating."""
    model = build_model(config, device="meta")
    return sum(p.numel() for p in model.parameters())


def parse_size(text: str) -> int:
    """``"0.3M"``, ``"350k"``, ``"1200000"`` → parameter count."""
    s = text.strip().upper()
    mult = {"K": 1_000, "M": 1_000_000}.get(s[-1:], 1)
    try:
        value = float(s[:-1] if mult != 1 else s) * mult
    except ValueError:
        raise ConfigError(f"size {text!r}: expected a number like 0.3M or 350k") from None
    if not 1_000 <= value <= MAX_PARAMETERS:
        raise ConfigError(
            f"size {text!r}: must be between 1k and {MAX_PARAMETERS // 1_000_000}M parameters "
            f"(the largest model the decoder rebuilds)"
        )
    return round(value)


def solve_config(
    model_id: str, height: int, width: int, frame_count: int, budget: int
) -> ModelConfig:
    """Largest config of ``model_id`` whose parameter count is ≤ ``budget``."""
    return solve_sizing(get_spec(model_id).sizing, height, width, frame_count, budget, model_id)


def solve_sizing(
    sizing: SizingRule, height: int, width: int, frame_count: int, budget: int, name: str
) -> ModelConfig:
    """Largest config of the sizing rule ``sizing`` (``name`` in the error) within ``budget``:
    also for rules no id is registered with (sizing experiments)."""
    lo, hi = 1, MAX_KNOB
    if count_parameters(sizing(height, width, frame_count, lo)) > budget:
        smallest = count_parameters(sizing(height, width, frame_count, lo))
        raise ConfigError(
            f"{name} at {width}×{height} needs at least {smallest:,} parameters; "
            f"budget {budget:,} is too small"
        )
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count_parameters(sizing(height, width, frame_count, mid)) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return sizing(height, width, frame_count, lo)
