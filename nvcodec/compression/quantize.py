"""The one quantiser: symmetric, uniform, per output channel for weights, scales stored as fp16.

``q = round(w / s)`` with ``s = max|w| / (2^(b-1) - 1)`` rounded *up* to the next fp16 value, so
``|w| / s`` never exceeds the integer range and the reconstruction error is at most ``s / 2``
for every element (no clipping error). Zero channels get scale 0 and cost nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["QuantizedTensor", "dequantize", "quantize"]

MIN_BITS, MAX_BITS = 2, 16


@dataclass(frozen=True)
class QuantizedTensor:
    """Integers plus the scales that map them back; ``per_channel`` means one scale per row."""

    q: np.ndarray  # int32, the tensor's shape
    scales: np.ndarray  # float16, (shape[0],) if per_channel else (1,)
    bits: int
    per_channel: bool


def _fp16_ceil(x: np.ndarray) -> np.ndarray:
    """Smallest fp16 values ≥ x (x ≥ 0, finite)."""
    h = x.astype(np.float16)
    low = h.astype(np.float64) < x
    h[low] = np.nextafter(h[low], np.float16(np.inf))
    return h


def quantize(tensor: torch.Tensor, bits: int, per_channel: bool) -> QuantizedTensor:
    if not MIN_BITS <= bits <= MAX_BITS:
        raise ValueError(f"bits must be in [{MIN_BITS}, {MAX_BITS}], got {bits}")
    w = tensor.detach().to("cpu", torch.float64).numpy()
    per_channel = per_channel and w.ndim >= 2
    rows = w.reshape(w.shape[0], -1) if per_channel else w.reshape(1, -1)
    qmax = 2 ** (bits - 1) - 1
    peak = np.abs(rows).max(axis=1) if rows.size else np.zeros(rows.shape[0])
    if not np.all(np.isfinite(peak)):
        raise ValueError("cannot quantise a tensor with NaN or infinite values")
    if np.any(peak / qmax > 65504):
        raise ValueError("tensor values too large for fp16 scales")
    scales = _fp16_ceil(peak / qmax)
    s = scales.astype(np.float64)[:, None]
    safe = np.where(s > 0, s, 1.0)
    q = np.where(s > 0, np.rint(rows / safe), 0.0)
    q = np.clip(q, -qmax, qmax).astype(np.int32).reshape(w.shape)
    return QuantizedTensor(q=q, scales=scales, bits=bits, per_channel=per_channel)


def dequantize(qt: QuantizedTensor) -> torch.Tensor:
    """Float32 tensor ``q · s`` (computed in float64 then rounded once, identically everywhere)."""
    q = qt.q.astype(np.float64)
    s = qt.scales.astype(np.float64)
    w = q.reshape(q.shape[0], -1) * s[:, None] if qt.per_channel else q * s[0]
    return torch.from_numpy(w.reshape(qt.q.shape).astype(np.float32))
