"""Quantisation-aware fine-tuning: train through the exact integers the file will store.

:func:`fake_quantize` is :func:`nvcodec.compression.quantize.quantize` followed by
:func:`~nvcodec.compression.quantize.dequantize`, written in torch so it runs on the training
device: symmetric, per output channel for tensors of rank ≥ 2 (one scale otherwise), scale
``max|w| / (2^(b-1) - 1)`` rounded *up* to fp16, ``q = round(w / s)`` (half to even) computed in
float64, ``q · s`` rounded once to float32. Its forward value equals
``dequantize(quantize(w))`` bit for bit; its backward is the straight-through estimator (the
gradient passes unchanged; the scale is treated as a constant).

:class:`FakeQuant` is the parametrization that applies it; :func:`attach` registers it on every
parameter of a model (after any pruning :class:`~nvcodec.compression.prune.Mask`, so pruned
weights stay zero), with a per-tensor bit depth. :func:`detach` removes the parametrizations and
keeps the *float* weights (masked), because quantising those reproduces exactly the integers the
fine-tune trained through — whereas re-quantising already fake-quantised values could move the
fp16 scale by one step.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn.utils import parametrize

from nvcodec.compression.prune import Mask

__all__ = ["FakeQuant", "attach", "detach", "fake_quantize", "parameter_owners"]


def _fp16_ceil(x: torch.Tensor) -> torch.Tensor:
    """Smallest fp16 values ≥ ``x`` (float64, ≥ 0, finite), returned as float64."""
    h = x.clamp(max=65504.0).to(torch.float16)
    low = h.to(torch.float64) < x
    bumped = (h.view(torch.int16) + 1).view(torch.float16)  # next fp16 up (x ≥ 0)
    return torch.where(low, bumped, h).to(torch.float64)


def _fake_quantize(w: torch.Tensor, bits: int, per_channel: bool) -> torch.Tensor:
    w64 = w.detach().to(torch.float64)
    per_channel = per_channel and w.ndim >= 2
    rows = w64.reshape(w.shape[0], -1) if per_channel else w64.reshape(1, -1)
    qmax = 2 ** (bits - 1) - 1
    if rows.numel() == 0:
        return w.detach().clone()
    peak = rows.abs().amax(dim=1, keepdim=True)
    s = _fp16_ceil(peak / qmax)
    safe = torch.where(s > 0, s, torch.ones_like(s))
    q = torch.where(s > 0, torch.round(rows / safe), torch.zeros_like(rows)).clamp(-qmax, qmax)
    return (q * s).reshape(w.shape).to(w.dtype)


class _STE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w: torch.Tensor, bits: int, per_channel: bool) -> torch.Tensor:  # type: ignore[override]
        return _fake_quantize(w, bits, per_channel)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:  # type: ignore[override]
        return grad, None, None


def fake_quantize(w: torch.Tensor, bits: int, per_channel: bool | None = None) -> torch.Tensor:
    """``dequantize(quantize(w, bits, per_channel))`` with a straight-through gradient.

    ``per_channel`` defaults to what the file uses: per output channel for rank ≥ 2.
    """
    if not 2 <= bits <= 16:
        raise ValueError(f"bits must be in [2, 16], got {bits}")
    return _STE.apply(w, bits, w.ndim >= 2 if per_channel is None else per_channel)


class FakeQuant(nn.Module):
    """Parametrization ``w ↦ fake_quantize(w, bits)``."""

    def __init__(self, bits: int) -> None:
        super().__init__()
        self.bits = bits

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return fake_quantize(w, self.bits)

    def extra_repr(self) -> str:
        return f"bits={self.bits}"


def parameter_owners(model: nn.Module) -> list[tuple[str, nn.Module, str]]:
    """(full name, owning module, attribute) for every parameter, in ``named_parameters`` order."""
    out = []
    for full, _ in model.named_parameters():
        *path, attr = full.split(".")
        if "parametrizations" in path:  # already parametrized: ….parametrizations.weight.original
            i = path.index("parametrizations")
            attr, path = path[i + 1], path[:i]
            full = ".".join([*path, attr])
        out.append((full, model.get_submodule(".".join(path)), attr))
    return out


def attach(model: nn.Module, bits: int | Callable[[str], int]) -> None:
    """Fake-quantise every parameter of ``model`` at ``bits`` (one depth or ``name -> depth``)."""
    for name, module, attr in parameter_owners(model):
        depth = bits if isinstance(bits, int) else int(bits(name))
        parametrize.register_parametrization(module, attr, FakeQuant(depth))


def detach(model: nn.Module) -> None:
    """Remove all parametrizations, keeping the float weights (times any pruning mask)."""
    for module in list(model.modules()):
        if not parametrize.is_parametrized(module):
            continue
        for attr in list(module.parametrizations.keys()):
            chain = module.parametrizations[attr]
            masks = [p.mask for p in chain if isinstance(p, Mask)]
            parametrize.remove_parametrizations(module, attr, leave_parametrized=False)
            if masks:
                with torch.no_grad():
                    param = getattr(module, attr)
                    for m in masks:
                        param.mul_(m.to(param.dtype))
