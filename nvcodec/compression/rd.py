"""Rate–distortion training: learned step sizes and a differentiable rate for every stored tensor.

Each stored tensor ``w`` gets a :class:`LearnedQuant` parametrization with

* a learnable quantisation step ``Δ``, one per tensor (per output channel on request: it lost on
  real sizes, benchmarks/results/rd_train), kept as ``log Δ`` and rounded to binary16 in the
  forward pass (the file stores it as fp16),
* a learnable Laplace over the *weights* (location ``μ``, scale ``b`` in weight units),
  integrated over each symbol's bin, which is the tensor's differentiable rate model:
  ``bits = Σ −log₂ P(⌊y⌉)`` with ``P(k) = F((k + ½)Δ) − F((k − ½)Δ)``.

Two modes, as in C3 / Cool-chic: ``"noise"`` replaces rounding by additive uniform noise
``y + U(−½, ½)`` (a smooth relaxation whose expected rate the Laplace models), ``"ste"`` rounds
for real and passes the gradient straight through, so the last epochs train through exactly the
integers that are written. In eval mode the symbols are always rounded.

:func:`quantized` computes, with the same float32 operations as the STE forward pass, the
integers and fp16 steps the file stores (:class:`~nvcodec.compression.quantize.QuantizedTensor`),
and :func:`~nvcodec.compression.quantize.dequantize` of them equals the trained forward value bit
for bit: ``q · Δ`` is one correctly rounded product whether it is computed in float32 (here) or
in float64 and rounded once (the decoder), because ``q`` has at most 16 significant bits and an
fp16 ``Δ`` 11.

:class:`RateTerm` sums the bits of every attached tensor and turns them into the loss term
``λ · R / (W·H·T)`` (``R`` in bits, so the term is ``λ`` times bits per pixel). With a target it
adapts ``λ`` by dual ascent (multiplicatively, on the device, without host syncs) so that the rate
settles at the target: ``λ ← λ · exp(η · (R / R* − 1))``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from nvcodec.compression import qat
from nvcodec.compression.qat import parameter_owners
from nvcodec.compression.quantize import QuantizedTensor
from nvcodec.errors import TrainingDivergedError

__all__ = [
    "LearnedQuant",
    "RateTerm",
    "attach",
    "detach",
    "freeze_steps",
    "laplace_bits",
    "learned_laplace",
    "quantiser_parameters",
    "quantized",
    "set_mode",
    "sites",
]

MAX_SYMBOL = 2**15 - 1  # the 16-bit range of the file's quantiser
MIN_STEP, MAX_STEP = 2.0**-24, 65504.0  # smallest positive fp16 (subnormal), largest fp16
MIN_LAPLACE_SCALE = 0.01  # in symbols; the file's Laplace accepts scales ≥ 0.001
MAX_MODEL_PARAM = 65536.0  # a reader's bound on a Laplace's |loc| and scale
NOISE, STE = "noise", "ste"


class _Round(torch.autograd.Function):
    """Round half to even in the forward pass, identity gradient (straight-through)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return torch.round(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return grad


class _Fp16(torch.autograd.Function):
    """Round to the nearest binary16 value, one binary16 step up where that fell below
    ``floor`` (kept in the input dtype); identity gradient for ``x``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, floor: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        h = x.to(torch.float16)
        up = (h.view(torch.int16) + 1).view(torch.float16)  # next binary16 up (x > 0)
        return torch.where(h.to(x.dtype) < floor, up, h).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return grad, None


def laplace_bits(y: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Elementwise ``−log₂ P(y)`` under a Laplace(``loc``, ``scale``) quantised to unit bins.

    Computed in log space on both sides of the mode, so tails cost their true (large) number of
    bits instead of saturating at a probability floor.
    """
    z = (y - loc).abs()
    inv = 1.0 / scale
    # |z| ≥ ½: P = ½ · e^{−(z−½)/b} · (1 − e^{−1/b})
    tail = math.log(0.5) - (z - 0.5).clamp(min=0) * inv + torch.log(-torch.expm1(-inv))
    # |z| < ½: P = 1 − ½ · (e^{−(½−z)/b} + e^{−(½+z)/b})
    zc = z.clamp(max=0.5)
    centre = torch.log1p(-0.5 * (torch.exp(-(0.5 - zc) * inv) + torch.exp(-(0.5 + zc) * inv)))
    log_p = torch.where(z >= 0.5, tail, centre)
    return -log_p / math.log(2.0)


class LearnedQuant(nn.Module):
    """Parametrization ``w ↦ Δ · Q(w / Δ)`` with a learned step and a learned rate model."""

    def __init__(self, w: torch.Tensor, bits: int, per_channel: bool = False) -> None:
        super().__init__()
        self.per_channel = per_channel and w.ndim >= 2
        w = w.detach().float()
        rows = w.reshape(w.shape[0], -1) if self.per_channel else w.reshape(1, -1)
        peak = rows.abs().amax(dim=1) if rows.numel() else torch.zeros(rows.shape[0])
        step = (peak / (2 ** (bits - 1) - 1)).clamp(min=1e-4, max=MAX_STEP)
        self.shape = (w.shape[0],) + (1,) * (w.ndim - 1) if self.per_channel else (1,)
        self.log_step = nn.Parameter(step.log().reshape(self.shape))
        # The rate model is a Laplace over the *weights* (location and scale in weight units),
        # integrated over each symbol's bin: when a step grows, the model of its symbols narrows
        # by itself instead of waiting for a scale parameter to catch up.
        spread = float(w.abs().mean()) if w.numel() else 1.0
        self.loc = nn.Parameter(torch.zeros(()))
        self.log_scale = nn.Parameter(torch.tensor(math.log(max(spread, 1e-6))))
        self.mode = NOISE

    def symbol_laplace(self, step: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(location, scale) of the rate model in symbol units for the given steps."""
        scale = self.log_scale.exp() / step
        return self.loc / step, scale.clamp(min=MIN_LAPLACE_SCALE)

    def step(self, w: torch.Tensor) -> torch.Tensor:
        """Δ as stored (fp16), never so small that a symbol would leave the 16-bit range."""
        rows = w.detach().reshape(w.shape[0], -1) if self.per_channel else w.detach().reshape(1, -1)
        if rows.numel():
            floor = (rows.abs().amax(dim=1) / MAX_SYMBOL).reshape(self.shape)
        else:
            floor = torch.zeros(self.shape, device=w.device)
        floor = floor.clamp(min=MIN_STEP)
        step = torch.maximum(self.log_step.exp(), floor).clamp(max=MAX_STEP)
        return _Fp16.apply(step, floor)

    def symbols(self, w: torch.Tensor, step: torch.Tensor | None = None) -> torch.Tensor:
        y = w / (self.step(w) if step is None else step)
        if self.training and self.mode == NOISE:
            return y + (torch.rand_like(y) - 0.5)
        return _Round.apply(y).clamp(-MAX_SYMBOL, MAX_SYMBOL)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        step = self.step(w)
        y = self.symbols(w, step)
        # the rate of this very sample (same noise) is what the next bits() call measures
        self._last = y if torch.is_grad_enabled() else None
        return y * step

    def drop_sample(self) -> None:
        """Forget the latest forward pass's sample, so that :meth:`bits` measures the symbols
        as they are now (a forward pass outside training, e.g. registration, left one)."""
        self._last = None

    def bits(self, w: torch.Tensor) -> torch.Tensor:
        """Differentiable code length of ``w``'s symbols in bits (a scalar): of the sample the
        latest training forward pass used (consumed), else of ``w`` quantised afresh."""
        y = getattr(self, "_last", None)
        self._last = None
        step = self.step(w)
        if y is None:
            y = self.symbols(w, step)
        loc, scale = self.symbol_laplace(step)
        return laplace_bits(y, loc, scale).sum()

    def extra_repr(self) -> str:
        return f"mode={self.mode}, per_channel={self.per_channel}"


@dataclass(frozen=True)
class _Site:
    name: str  # the stored tensor's name
    module: nn.Module
    attr: str
    quant: LearnedQuant

    def input(self) -> torch.Tensor:
        """The value the quantiser sees: the original parameter times any pruning mask."""
        chain = self.module.parametrizations[self.attr]
        x = chain.original
        for p in chain:
            if p is self.quant:
                return x
            x = p(x)
        raise AssertionError("LearnedQuant not in its parametrization chain")


def sites(model: nn.Module) -> Iterator[_Site]:
    """Every attached learned quantiser with the stored tensor's name, its module and
    attribute, in ``named_parameters`` order."""
    seen = set()  # a quantiser's own parameters list its weight again
    for name, module, attr in parameter_owners(model):
        if (id(module), attr) in seen or not parametrize.is_parametrized(module, attr):
            continue
        seen.add((id(module), attr))
        for p in module.parametrizations[attr]:
            if isinstance(p, LearnedQuant):
                yield _Site(name, module, attr, p)


def attach(
    model: nn.Module, bits: int = 6, per_channel: bool = False
) -> list[tuple[str, LearnedQuant]]:
    """Attach a :class:`LearnedQuant` to every parameter (after any pruning mask), its step
    initialised to the ``bits``-deep symmetric quantiser's, one step per tensor or (with
    ``per_channel``) per output channel of rank ≥ 2 tensors. Returns (name, quantiser) pairs."""
    out = []
    for name, module, attr in parameter_owners(model):
        value = getattr(module, attr)  # masked if pruned
        quant = LearnedQuant(value, bits, per_channel).to(value.device)
        parametrize.register_parametrization(module, attr, quant)
        quant.drop_sample()  # registering ran a forward pass: no training step used it
        out.append((name, quant))
    return out


def set_mode(model: nn.Module, mode: str) -> None:
    if mode not in (NOISE, STE):
        raise ValueError(f"mode must be {NOISE!r} or {STE!r}, got {mode!r}")
    for site in sites(model):
        site.quant.mode = mode


def quantiser_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Every step and rate-model parameter attached to ``model`` that still learns (their own
    optimiser group)."""
    return [p for site in sites(model) for p in site.quant.parameters() if p.requires_grad]


def freeze_steps(model: nn.Module) -> None:
    """Fix every learned step where it is (the rate models still learn).

    Why: after rate control has fitted the steps on real coded sizes, a learned step would
    drift back to where λ balances it, the size would leave the target's window, and the last
    fit would then scale every step and re-round every trained integer. Measured on
    hinerv-flat, Marathon 160×80×48, 0.1M, at a 60 kB target: with learned steps the size fell
    3.4 % below the fit and the refit (×0.878) cost 0.21 dB; with fixed steps no refit was
    needed and the file decoded 0.38 dB higher at 0.6 % fewer bytes."""
    for site in sites(model):
        site.quant.log_step.requires_grad_(False)


@torch.no_grad()
def quantized(model: nn.Module, names: list[str]) -> list[tuple[QuantizedTensor, tuple]]:
    """The integers and fp16 steps of every stored tensor, in ``names`` order, exactly as the
    STE forward pass uses them, plus each tensor's learned Laplace ``(loc, scale)``."""
    by_name = {site.name: site for site in sites(model)}
    out = []
    for name in names:
        if name not in by_name:
            raise ValueError(f"{name}: no learned quantiser attached")
        site = by_name[name]
        w = site.input().float()
        step = site.quant.step(w)
        if not (torch.isfinite(w).all() and torch.isfinite(step).all()):
            raise TrainingDivergedError(
                f"{name}: RD training diverged (non-finite weights); try a smaller --lambda"
            )
        q = torch.round(w / step).clamp(-MAX_SYMBOL, MAX_SYMBOL)
        peak = int(q.abs().max()) if q.numel() else 0
        bits = max(2, math.ceil(math.log2(peak + 1)) + 1)
        steps = step.reshape(-1).cpu().numpy().astype(np.float16)
        qt = QuantizedTensor(
            q=q.cpu().numpy().astype(np.int32),
            scales=steps,
            bits=bits,
            per_channel=site.quant.per_channel,
        )
        loc, scale = site.quant.symbol_laplace(step)
        # one Laplace per tensor in the file: the per-channel models' typical member
        out.append((qt, (float(loc.reshape(-1).median()), float(scale.reshape(-1).median()))))
    return out


def detach(model: nn.Module) -> None:
    """Remove every parametrization, leaving the float weights (masked) as plain parameters."""
    qat.detach(model)


def learned_laplace(symbols: np.ndarray, loc: float, scale: float):  # -> LaplaceModel | None
    """The learned rate model as a file entropy model over the symbols' range (a candidate)."""
    from nvcodec.compression.entropy import LaplaceModel

    if symbols.size == 0 or not (math.isfinite(loc) and math.isfinite(scale)):
        return None
    lo, hi = int(symbols.min()), int(symbols.max())
    if lo == hi or abs(loc) > MAX_MODEL_PARAM or scale > MAX_MODEL_PARAM:
        return None  # nothing to code, or outside what a reader accepts (FORMAT.md, kind 2)
    return LaplaceModel(lo, hi, float(np.float32(loc)), float(np.float32(max(scale, 1e-3))))


class RateTerm:
    """``λ · R / pixels`` for the training loss, ``R`` the bits of every attached tensor.

    ``target_bits`` switches on dual ascent on λ (see the module docstring); ``lam`` is then its
    starting value. ``last_bits`` is the rate of the latest call (detached, on the device).
    """

    def __init__(
        self,
        model: nn.Module,
        pixels: int,
        lam: float,
        target_bits: float | None = None,
        ascent: float = 0.01,
    ) -> None:
        self.sites = list(sites(model))
        if not self.sites:
            raise ValueError("no learned quantiser attached to the model")
        device = self.sites[0].quant.log_step.device
        self.pixels = pixels
        self.lam = torch.tensor(float(lam), device=device)
        self.target_bits = target_bits
        self.ascent = ascent
        self.last_bits = torch.zeros((), device=device)

    @property
    def stationary(self) -> bool:
        """Whether λ stays fixed, so the losses of two epochs can be compared (the training
        loop undoes a diverged epoch only then: with a target, dual ascent raises λ)."""
        return self.target_bits is None

    def bits(self) -> torch.Tensor:
        return torch.stack([s.quant.bits(s.input()) for s in self.sites]).sum()

    @torch.no_grad()
    def hold(self) -> float:
        """Aim dual ascent at the rate the quantisers give now, and return it (bits).

        Why: the proxy (the learned Laplaces) over-counts what the file's entropy coder spends,
        which picks the best of several models per tensor. Aimed at the target itself, dual
        ascent would walk the real size away from where rate control has just fitted it on
        real coded sizes. Used with :func:`freeze_steps`, which has the measurements: holding
        the rate alone did not keep the size in the window while the steps still learned."""
        for site in self.sites:
            site.quant.drop_sample()
        self.target_bits = float(self.bits())
        return self.target_bits

    def __call__(self) -> torch.Tensor:
        bits = self.bits()
        self.last_bits = bits.detach()
        if self.target_bits is not None:
            gap = (self.last_bits / self.target_bits - 1.0).clamp(-1.0, 1.0)
            self.lam = (self.lam * torch.exp(self.ascent * gap)).clamp(1e-8, 1e4)
        return self.lam * bits / self.pixels
