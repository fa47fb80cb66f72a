"""The compression pipeline: train → prune → fine-tune → choose bit depth → QAT → quantise.

::

    train(model)                         the model's own recipe, ``epochs``
      ─► prune(ratio)                    global size-normalised magnitude masks (prune.py)
      ─► fine-tune  (masks on)           ``prune_epochs``, the recipe at ``FINE_TUNE_LR``× lr
      ─► rate control (``target_bytes``) deepest bit depth whose file fits; if that lands more
                                          than 10 % under the target, one bit deeper with extra
                                          pruning (binary search) to land just under it
      ─► QAT  (masks + fake quant on)    ``qat_epochs``, straight-through estimator (qat.py)
      ─► strip parametrizations ─► encode_tensors(bits per tensor)

The fine-tune phases reuse :func:`nvcodec.training.train` unchanged: masks and fake quantisation
are ``torch.nn.utils.parametrize`` parametrizations, and the model is wrapped so that the
optimiser still sees the model's own parameter groups (DS-NeRV's codes at 10× the lr).

**Checkpoints.** With a :class:`~nvcodec.training.checkpoint.Checkpointer` each fine-tune phase
saves its training state together with what re-entering it needs: the pruning masks (``prune``)
and, for ``qat``, the masks after rate control plus the chosen bit depths and prune ratio.
Resuming from a ``prune`` checkpoint re-attaches the masks and continues the fine-tune; from a
``qat`` checkpoint it re-attaches the masks, skips rate control (its decision is in the
checkpoint), attaches fake quantisation and continues QAT. Everything after is deterministic, so
the file is the one an uninterrupted run writes.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import parametrize

from nvcodec.compression import EncodedTensors, encode_tensors, qat
from nvcodec.compression import prune as pruning
from nvcodec.training import EpochStats, TrainConfig, train
from nvcodec.training.checkpoint import Checkpoint, Checkpointer

__all__ = [
    "BITS_PER_PARAM",
    "DEFAULT_BITS",
    "FINE_TUNE_LR",
    "PRESETS",
    "PipelineResult",
    "Preset",
    "bits_for",
    "compress_model",
    "is_code",
    "stored_tensors",
]

FINE_TUNE_LR = 0.2  # fine-tune / QAT peak lr as a fraction of the training lr
FINE_TUNE_WARMUP = 0.1

BITS_PER_PARAM = {8: 7.0, 7: 6.2, 6: 5.3, 5: 4.4, 4: 3.5}
"""Measured coded bits per *model* parameter (side information included) after 20 % pruning and
QAT, for DS-NeRV on Bunny (320×160, ~100k parameters; see benchmarks/compression/results.md).
``--bpp`` sizes the model with the figure of the default depth before training; the final depth is
then chosen on the real file sizes, so this only needs to be roughly right."""

DEFAULT_BITS = 5  # weights and codes, without --bpp (see benchmarks/compression: 5-bit QAT wins)

RATE_DEPTHS = (8, 7, 6, 5, 4)
RATE_TOLERANCE = 0.15  # what --bpp promises (tests/nvcodec/test_nvcodec_pipeline.py)
REFINE_BELOW = 0.90  # a depth landing further under the target is refined with extra pruning


@dataclass(frozen=True)
class Preset:
    """Training epochs; the fine-tunes are fractions of them (HiNeRV: 300 + 60 + 30)."""

    epochs: int
    prune_fraction: float = 0.15
    qat_fraction: float = 0.10

    def prune_epochs(self, epochs: int) -> int:
        return math.ceil(self.prune_fraction * epochs)

    def qat_epochs(self, epochs: int) -> int:
        return math.ceil(self.qat_fraction * epochs)


PRESETS = {
    "fast": Preset(epochs=100),  # + 15 prune fine-tune + 10 QAT
    "medium": Preset(epochs=300),  # + 45 + 30
    "slow": Preset(epochs=1000),  # + 150 + 100
}


def is_code(name: str) -> bool:
    """Latent codes / embeddings (their own bit depth) vs decoder weights."""
    return "codes" in name or "embeddings" in name


def bits_for(bits: int, code_bits: int) -> Callable[[str], int]:
    return lambda name: code_bits if is_code(name) else bits


def stored_tensors(model: nn.Module, names: Sequence[str]) -> list[tuple[str, torch.Tensor]]:
    """The tensors the file stores, by name, in ``names`` order (the fresh model's
    ``named_parameters()`` order, which parametrizations may have permuted), as currently seen by
    the forward pass (masks and fake quantisation applied if attached)."""
    out = []
    for name in names:
        *path, attr = name.split(".")
        out.append((name, getattr(model.get_submodule(".".join(path)), attr).detach()))
    return out


class _Grouped(nn.Module):
    """``model`` with the parameter groups it had *before* parametrizations were attached."""

    def __init__(self, model: nn.Module, groups: list[tuple[float | None, list[nn.Parameter]]]):
        super().__init__()
        self.model = model
        self._groups = groups

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.model(t)

    def parameter_groups(self, lr: float) -> list[dict]:
        out = []
        for scale, params in self._groups:
            group: dict = {"params": params}
            if scale is not None:
                group["lr"] = scale * lr
            out.append(group)
        return out


def _capture_groups(model: nn.Module) -> list[tuple[float | None, list[nn.Parameter]]]:
    fn = getattr(model, "parameter_groups", None)
    if fn is None:
        return [(None, list(model.parameters()))]
    return [(g.get("lr"), list(g["params"])) for g in fn(1.0)]


def _fine_tune_config(base: TrainConfig, epochs: int) -> TrainConfig:
    return dataclasses.replace(
        base, epochs=epochs, lr=base.lr * FINE_TUNE_LR, warmup=FINE_TUNE_WARMUP
    )


def _attach_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    """Re-register saved pruning masks (module name → keep-mask) on a fresh model."""
    for name, keep in masks.items():
        module = model.get_submodule(name)
        device = next(module.parameters()).device
        parametrize.register_parametrization(module, "weight", pruning.Mask(keep.to(device)))


@dataclass(frozen=True)
class PipelineResult:
    encoded: EncodedTensors
    bits: int
    code_bits: int
    prune_ratio: float  # achieved fraction of prunable weights that are zero
    prunable: int  # number of prunable weights
    phases: dict[str, float]  # phase → seconds
    phase_psnr: dict[str, float]  # phase → training PSNR at its end (float / fake-quant model)
    rate_note: str = ""


def _encode(model: nn.Module, names: Sequence[str], bits: int, code_bits: int) -> EncodedTensors:
    return encode_tensors(stored_tensors(model, names), bits_for(bits, code_bits))[0]


def _size(encoded: EncodedTensors) -> int:
    return len(encoded.table) + len(encoded.data)


def _choose_rate(
    model: nn.Module,
    names: Sequence[str],
    target_bytes: int,
    prune_ratio: float,
    code_bits: int,
    max_bits: int,
) -> tuple[int, int, float, str]:
    """(bits, code_bits, prune ratio, note) landing the tensor payload at or below the target."""
    depths = [d for d in RATE_DEPTHS if d <= max_bits]
    sizes = {d: _size(_encode(model, names, d, min(code_bits, d))) for d in depths}
    fitting = [d for d in depths if sizes[d] <= target_bytes]
    chosen = fitting[0] if fitting else depths[-1]
    note = ", ".join(f"{d}-bit {sizes[d]:,} B" for d in depths)
    if not fitting or sizes[chosen] >= REFINE_BELOW * target_bytes or chosen == depths[0]:
        return chosen, min(code_bits, chosen), prune_ratio, note
    # The fitting depth lands more than 10 % under: one bit more, with more pruning to fit.
    deeper = depths[depths.index(chosen) - 1]
    lo, hi, best = prune_ratio, min(prune_ratio + 0.5, 0.95), None
    for _ in range(10):
        mid = (lo + hi) / 2
        trial = copy.deepcopy(model)  # masks only grow: search on copies
        pruning.prune(trial, mid)
        size = _size(_encode(trial, names, deeper, min(code_bits, deeper)))
        if size <= target_bytes:
            best, hi = mid, mid
            if size >= 0.97 * target_bytes:
                break
        else:
            lo = mid
    if best is None:
        return chosen, min(code_bits, chosen), prune_ratio, note
    pruning.prune(model, best)
    return deeper, min(code_bits, deeper), best, note + f"; {deeper}-bit with {best:.0%} pruning"


def compress_model(
    model: nn.Module,
    frames: torch.Tensor,
    base: TrainConfig,
    *,
    bits: int = 8,
    code_bits: int = 8,
    prune_ratio: float = 0.0,
    prune_epochs: int = 0,
    qat_epochs: int = 0,
    target_bytes: int | None = None,
    names: Sequence[str] | None = None,
    callback: Callable[[str, EpochStats], None] | None = None,
    checkpointer: Checkpointer | None = None,
    resume: Checkpoint | None = None,
) -> PipelineResult:
    """Prune, fine-tune, pick the rate, QAT and entropy-code an already trained ``model``.

    ``target_bytes`` (rate control) bounds TENSOR_TABLE + TENSOR_DATA; ``bits`` is then the
    deepest depth tried. ``names`` is the stored tensor order (default: the model's own
    ``named_parameters()`` before anything is attached). ``checkpointer`` saves the fine-tune
    phases; ``resume`` (a ``prune`` or ``qat`` checkpoint, ``model`` freshly built) re-enters
    the phase it was saved in, skipping the ones before (see the module docstring).
    """
    names = list(names) if names is not None else [n for n, _ in model.named_parameters()]
    groups = _capture_groups(model)
    wrapped = _Grouped(model, groups)
    phases: dict[str, float] = {}
    psnr: dict[str, float] = {}
    if resume is not None:
        if resume.phase not in ("prune", "qat"):
            raise ValueError(f"compress_model resumes prune or qat, not {resume.phase!r}")
        for phase, done in resume.history.get("phases", {}).items():
            phases[phase] = float(done["seconds"])
            if done.get("psnr") is not None:
                psnr[phase] = float(done["psnr"])
        _attach_masks(model, resume.masks)

    def run(phase: str, epochs: int, data: dict[str, object] | None = None) -> None:
        cb = (lambda s: callback(phase, s)) if callback else None
        hook = None
        if checkpointer is not None:
            hook = checkpointer.hook(phase, data, pruning.masks_of(model))
        state = resume.state if resume is not None and resume.phase == phase else None
        result = train(wrapped, frames, _fine_tune_config(base, epochs), cb, hook, state)
        phases[phase] = result.seconds
        psnr[phase] = result.final_psnr
        if checkpointer is not None:
            finite = math.isfinite(result.final_psnr)
            checkpointer.history.setdefault("phases", {})[phase] = {
                "seconds": result.seconds,
                "psnr": result.final_psnr if finite else None,
            }

    if resume is None:
        if prune_ratio > 0:
            pruning.prune(model, prune_ratio)
            if prune_epochs > 0:
                run("prune", prune_epochs)
    elif resume.phase == "prune":
        run("prune", prune_epochs)
    note = ""
    if resume is not None and resume.phase == "qat":
        bits, code_bits = int(resume.data["bits"]), int(resume.data["code_bits"])
        prune_ratio, note = float(resume.data["prune_ratio"]), str(resume.data["note"])
    elif target_bytes is not None:
        t0 = time.perf_counter()
        bits, code_bits, prune_ratio, note = _choose_rate(
            model, names, target_bytes, prune_ratio, code_bits, bits
        )
        phases["rate"] = time.perf_counter() - t0
        if checkpointer is not None:
            checkpointer.history.setdefault("phases", {})["rate"] = {"seconds": phases["rate"]}
    if qat_epochs > 0:
        qat.attach(model, bits_for(bits, code_bits))
        rate = {"bits": bits, "code_bits": code_bits, "prune_ratio": prune_ratio, "note": note}
        run("qat", qat_epochs, rate)
        qat.detach(model)
    else:
        pruning.strip(model)
    model.eval()
    t0 = time.perf_counter()
    encoded = _encode(model, names, bits, code_bits)
    phases["entropy"] = time.perf_counter() - t0
    layers = pruning.prunable(model)
    candidates = sum(m.weight.numel() for _, m in layers)
    zeros = sum(int((m.weight == 0).sum()) for _, m in layers)
    return PipelineResult(
        encoded=encoded,
        bits=bits,
        code_bits=code_bits,
        prune_ratio=zeros / max(candidates, 1),
        prunable=candidates,
        phases=phases,
        phase_psnr=psnr,
        rate_note=note,
    )
