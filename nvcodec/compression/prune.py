"""Global, size-normalised magnitude pruning of conv/linear weights, as fixed masks.

Every ``weight`` of an ``nn.Conv*`` / ``nn.Linear`` module is a candidate; biases, other 1-D
tensors and free parameters (DS-NeRV's latent codes, which are ``nn.Parameter``s of the model
itself, not of a conv) are never pruned. Each candidate element gets the score

    score = |w| / numel(layer) ** alpha

and the globally lowest ``ratio`` of all candidate elements are zeroed (ties broken by position,
so the count is exact). ``alpha = 0`` is plain global magnitude pruning, which empties small layers
first when their weights happen to be small; HiNeRV divides by the layer's (unmasked) size raised
to a power so that large layers, whose weights are individually less important, give up more.
We use ``alpha = 0.5`` (divide by √numel) by default.

The masks are applied through :mod:`torch.nn.utils.parametrize` (:class:`Mask` multiplies by a
fixed 0/1 buffer), so the unmodified training loop fine-tunes the surviving weights while the
pruned ones stay exactly zero: the gradient through the mask is zero and the masked originals are
zeroed up front (weight decay keeps a zero at zero). :func:`strip` removes the parametrizations
and leaves plain parameters, so ``named_parameters()`` is unchanged for the file.

In the file a pruned weight is just the quantised symbol 0: the per-tensor histogram model gives
the (now dominant) zero a short code, ``-log2 p(0)`` bits, so zeros cost about
``H(mask)/fraction-pruned`` bits each instead of the ~``bits`` a surviving weight costs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import parametrize

__all__ = [
    "DEFAULT_ALPHA",
    "Mask",
    "PruneReport",
    "compute_masks",
    "masks_of",
    "prunable",
    "prune",
    "strip",
]

DEFAULT_ALPHA = 0.5
PRUNABLE_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


class Mask(nn.Module):
    """Parametrization ``w ↦ w · mask`` with a fixed boolean mask (kept as a float buffer)."""

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask.to(torch.float32))

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return w * self.mask.to(w.dtype)


@dataclass(frozen=True)
class PruneReport:
    ratio: float  # requested
    pruned: int  # elements zeroed by the masks
    candidates: int  # elements of all prunable weights
    per_layer: dict[str, float]  # module name → fraction pruned

    @property
    def achieved(self) -> float:
        return self.pruned / max(self.candidates, 1)


def prunable(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules whose ``weight`` may be pruned: conv/linear layers with a ≥ 2-D weight."""
    out = []
    for name, module in model.named_modules():
        if isinstance(module, PRUNABLE_TYPES):
            weight = module.weight
            if weight is not None and weight.ndim >= 2:
                out.append((name, module))
    return out


def compute_masks(
    model: nn.Module, ratio: float, alpha: float = DEFAULT_ALPHA
) -> dict[str, torch.Tensor]:
    """Boolean keep-masks (True = kept) zeroing exactly ``round(ratio · candidates)`` weights."""
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"prune ratio must be in [0, 1), got {ratio}")
    layers = prunable(model)
    if not layers:
        return {}
    with torch.no_grad():
        scores = [
            (m.weight.detach().abs().double() / m.weight.numel() ** alpha).flatten()
            for _, m in layers
        ]
        flat = torch.cat(scores)
        k = round(ratio * flat.numel())
        keep = torch.ones(flat.numel(), dtype=torch.bool, device=flat.device)
        if k > 0:
            # stable sort: equal scores are pruned in position order, so exactly k go
            order = torch.sort(flat, stable=True).indices
            keep[order[:k]] = False
    masks, offset = {}, 0
    for (name, m), s in zip(layers, scores, strict=True):
        n = s.numel()
        masks[name] = keep[offset : offset + n].view_as(m.weight)
        offset += n
    return masks


def prune(model: nn.Module, ratio: float, alpha: float = DEFAULT_ALPHA) -> PruneReport:
    """Zero the lowest-scoring ``ratio`` of the weights and register fixed masks on them.

    On a model that is already masked the scores are those of the masked weights, so the pruned
    zeros rank first and the existing masks are updated in place (a superset of the old ones).
    """
    masks = compute_masks(model, ratio, alpha)
    modules = dict(model.named_modules())
    per_layer, pruned, total = {}, 0, 0
    for name, keep in masks.items():
        module = modules[name]
        existing = _mask_of(module)
        with torch.no_grad():
            if parametrize.is_parametrized(module, "weight"):
                original = module.parametrizations["weight"].original
            else:
                original = module.weight
            original.mul_(keep.to(original.dtype))
        if existing is not None:  # re-pruning a masked model: masks only grow
            existing.mask.copy_(keep.to(existing.mask.dtype))
        else:
            parametrize.register_parametrization(module, "weight", Mask(keep))
        zeros = int((~keep).sum())
        per_layer[name] = zeros / keep.numel()
        pruned += zeros
        total += keep.numel()
    return PruneReport(ratio, pruned, total, per_layer)


def _mask_of(module: nn.Module) -> Mask | None:
    if parametrize.is_parametrized(module, "weight"):
        for p in module.parametrizations["weight"]:
            if isinstance(p, Mask):
                return p
    return None


def masks_of(model: nn.Module) -> dict[str, torch.Tensor]:
    """The keep-masks currently registered on ``model`` (module name → bool tensor)."""
    out = {}
    for name, module in model.named_modules():
        if parametrize.is_parametrized(module, "weight"):
            for p in module.parametrizations["weight"]:
                if isinstance(p, Mask):
                    out[name] = p.mask.bool()
    return out


def strip(model: nn.Module) -> None:
    """Remove every parametrization, keeping the parametrized values as plain parameters."""
    for module in list(model.modules()):
        if parametrize.is_parametrized(module):
            for tensor_name in list(module.parametrizations.keys()):
                parametrize.remove_parametrizations(module, tensor_name, leave_parametrized=True)
