"""The two compression pipelines that follow training.

RD training (:func:`rd_compress`, the encoder's default): learned step sizes and rate models for
every stored tensor, loss = MSE + λ·bpp, noise then straight-through phases, and the file codes
exactly the integers the last epochs used (see nvcodec.compression.rd)::

    train(model) ─► [prune + fine-tune] ─► RD with noise ─► RD through the integers ─► code

The fixed-depth QAT pipeline (:func:`compress_model`, ``--pipeline qat``): train → prune →
fine-tune → choose bit depth → QAT → quantise::

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
import functools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import parametrize

from nvcodec.compression import EncodedTensors, encode_quantized, encode_tensors, qat
from nvcodec.compression import prune as pruning
from nvcodec.compression import rd as rdq
from nvcodec.compression.quantize import QuantizedTensor
from nvcodec.training import EpochStats, TrainConfig, TrainResult, train
from nvcodec.training.checkpoint import Checkpoint, Checkpointer
from nvcodec.training.frames import Frames

__all__ = [
    "BITS_PER_PARAM",
    "DEFAULT_BITS",
    "FINE_TUNE_LR",
    "PRESETS",
    "PipelineResult",
    "Preset",
    "RDOutcome",
    "RDSettings",
    "bits_for",
    "compress_model",
    "float_fine_tune",
    "is_code",
    "rd_compress",
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
RD_LAND_BELOW = 0.96  # RD rate control lands the tensor sections in [0.96, 1] × their target
RD_AUTO_KAPPA = 0.4  # λ = κ·D/R when no λ is given (see _auto_lambda)
RD_PAYLOAD_SHARE = 0.97  # dual ascent aims the payload at this share (the rest: side info)


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

    # patch training (see nvcodec.training.loop) goes through to the model
    def patch_cells(self, pixels: int) -> list[tuple[int, int, int, int]]:
        return self.model.patch_cells(pixels)

    def patch_slices(self, cells: tuple[int, int, int, int]) -> tuple[slice, slice]:
        return self.model.patch_slices(cells)

    def forward_patch(self, t: torch.Tensor, cells: tuple[int, int, int, int]) -> torch.Tensor:
        return self.model.forward_patch(t, cells)

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


def float_fine_tune(
    model: nn.Module, frames: Frames, base: TrainConfig, epochs: int
) -> TrainResult:
    """``epochs`` more float training of ``model`` on the fine-tunes' schedule (their lr scale
    and warm-up): the control that gives an uncompressed model the epochs compression used."""
    return train(_Grouped(model, _capture_groups(model)), frames, _fine_tune_config(base, epochs))


def _fine_tune_config(
    base: TrainConfig, epochs: int, lr_scale: float = FINE_TUNE_LR
) -> TrainConfig:
    warmup = FINE_TUNE_WARMUP if lr_scale != 1.0 else base.warmup
    lr = base.lr * lr_scale * base.fine_tune
    return dataclasses.replace(base, epochs=epochs, lr=lr, warmup=warmup)


def _attach_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    """Re-register saved pruning masks (module name → keep-mask) on a fresh model."""
    for name, keep in masks.items():
        module = model.get_submodule(name)
        device = next(module.parameters()).device
        parametrize.register_parametrization(module, "weight", pruning.Mask(keep.to(device)))


class _PhaseRunner:
    """Runs the fine-tune phases of one pipeline on ``model``: each phase trains the model with
    the groups it had before anything was attached, reports progress under its own label, saves
    checkpoints (unless told not to) and records its time and final training PSNR.

    With ``resume`` the finished phases' summaries are taken from the checkpoint, its pruning
    masks are re-attached, and the phase it was saved in continues from its saved state."""

    def __init__(
        self,
        model: nn.Module,
        frames: Frames,
        base: TrainConfig,
        callback: Callable[[str, EpochStats], None] | None,
        checkpointer: Checkpointer | None,
        resume: Checkpoint | None,
        on_step: Callable[[str, int, int], None] | None = None,
    ) -> None:
        self.model, self.frames, self.base = model, frames, base
        self.on_step = on_step
        self.wrapped = _Grouped(model, _capture_groups(model))
        self.callback, self.checkpointer, self.resume = callback, checkpointer, resume
        self.phases: dict[str, float] = {}
        self.psnr: dict[str, float] = {}
        self.undone = 0  # diverged epochs undone (nvcodec.training.rollback), all phases
        if resume is not None:
            if resume.phase not in ("prune", "qat"):
                raise ValueError(f"the pipeline resumes prune or qat, not {resume.phase!r}")
            for phase, done in resume.history.get("phases", {}).items():
                self.phases[phase] = float(done["seconds"])
                if done.get("psnr") is not None:
                    self.psnr[phase] = float(done["psnr"])
                self.undone += int(done.get("undone", 0))
            _attach_masks(model, resume.masks)

    def run(
        self,
        phase: str,
        epochs: int,
        data: dict[str, object] | None = None,
        *,
        penalty: Callable[[], torch.Tensor] | None = None,
        extra_groups: list[dict] | None = None,
        checkpoint: bool = True,
        lr_scale: float = FINE_TUNE_LR,
    ) -> None:
        callback, checkpointer, resume = self.callback, self.checkpointer, self.resume
        cb = (lambda s: callback(phase, s)) if callback else None
        hook = None
        if checkpointer is not None and checkpoint:
            hook = checkpointer.hook(phase, data, pruning.masks_of(self.model))
        state = resume.state if resume is not None and resume.phase == phase else None
        config = _fine_tune_config(self.base, epochs, lr_scale)
        on_step = self.on_step
        steps = functools.partial(on_step, phase) if on_step is not None else None
        result = train(
            self.wrapped, self.frames, config, cb, hook, state, penalty, extra_groups, steps
        )
        self.phases[phase] = result.seconds
        self.psnr[phase] = result.final_psnr
        self.undone += result.undone
        if checkpointer is not None:
            finite = math.isfinite(result.final_psnr)
            checkpointer.history.setdefault("phases", {})[phase] = {
                "seconds": result.seconds,
                "psnr": result.final_psnr if finite else None,
                "undone": result.undone,
            }


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
    undone: int = 0  # fine-tune epochs undone because they diverged (all phases)


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
    frames: Frames,
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
    on_step: Callable[[str, int, int], None] | None = None,
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
    runner = _PhaseRunner(model, frames, base, callback, checkpointer, resume, on_step)
    run = runner.run
    phases, psnr = runner.phases, runner.psnr

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
    zeros, candidates = _zero_weights(model, {n: w for n, w in stored_tensors(model, names)})
    return PipelineResult(
        encoded=encoded,
        bits=bits,
        code_bits=code_bits,
        prune_ratio=zeros / max(candidates, 1),
        prunable=candidates,
        phases=phases,
        phase_psnr=psnr,
        rate_note=note,
        undone=runner.undone,
    )


def _zero_weights(model: nn.Module, stored: dict[str, torch.Tensor]) -> tuple[int, int]:
    """(zeros, elements) over the conv/linear weights, as stored (``name`` → value)."""
    names = [f"{m}.weight" if m else "weight" for m, _ in pruning.prunable(model)]
    values = [stored[n] for n in names if n in stored]
    return sum(int((v == 0).sum()) for v in values), sum(v.numel() for v in values)


@dataclass(frozen=True)
class RDSettings:
    """RD training (nvcodec.compression.rd): ``epochs`` in all, the last ``ste_fraction`` of them
    through the exact integers (straight-through), the others with additive uniform noise.
    ``target_bytes`` (the tensor sections) turns on dual ascent on λ, starting from ``lam``, and
    a final fit of the steps on real coded sizes (see :func:`_fit_steps`)."""

    lam: float | None  # None: chosen from the model's own D/R (see _auto_lambda)
    epochs: int
    target_bytes: int | None = None  # tensor sections (table + data): dual ascent + step fit
    ste_fraction: float = 0.4
    init_bits: int = 6  # steps start at the symmetric quantiser's for this depth
    per_channel: bool = False  # one step per output channel instead of per tensor
    lr: float = 2e-2  # steps and rate models (Adam/Adan group without weight decay)
    # the weights' lr in the noise phase as a fraction of the training recipe's: 0.5 beat the
    # fine-tunes' 0.2 on Marathon 160×80×16 at 50k (−11.3 % vs −7.6 % bytes at equal PSNR)
    lr_scale: float = 0.5

    @property
    def ste_epochs(self) -> int:
        return min(self.epochs, max(1, round(self.ste_fraction * self.epochs)))


@torch.no_grad()
def _auto_lambda(model: nn.Module, frames: Frames, pixels: int) -> float:
    """``RD_AUTO_KAPPA · D₀ / R₀``: the distortion (MSE) and rate (bits per pixel, the rate
    term's) of the model through its initial learned quantisers.

    Why: the slope of an INR's operational RD curve scales with where it sits. Across the
    rd_cpu size sweeps (4 clips, 50k-300k parameters) ``−dD/dR · R / D`` stayed within
    0.6-1.1, while the absolute slope spanned 3e-4 to 4e-3; a λ below the local slope
    compresses a model that is worth its bits, one above it should have been a smaller model.
    So a fixed fraction of ``D/R`` lands near the useful λ on any clip and at any size."""
    was_training = model.training
    model.eval()  # rounded symbols, no noise
    sq = torch.zeros((), device=frames.device)
    for start in range(0, frames.shape[0], 8):
        index = torch.arange(start, min(start + 8, frames.shape[0]), device=frames.device)
        out = model(index.float()).float()
        sq += ((out - frames[index]) ** 2).sum()
    mse = float(sq) / frames[0].numel() / frames.shape[0]
    bits = sum(float(s.quant.bits(s.input())) for s in rdq.sites(model))
    model.train(was_training)
    return RD_AUTO_KAPPA * mse / max(bits / pixels, 1e-9)


@dataclass(frozen=True)
class RDOutcome:
    lam: float  # λ at the end (after dual ascent with a target)
    proxy_bits: float  # the rate term's bits at the written integers
    step_factor: float = 1.0  # rate control's scaling of the learned steps after training


def rd_compress(
    model: nn.Module,
    frames: Frames,
    base: TrainConfig,
    rd: RDSettings,
    *,
    pixels: int,
    prune_ratio: float = 0.0,
    prune_epochs: int = 0,
    names: Sequence[str] | None = None,
    callback: Callable[[str, EpochStats], None] | None = None,
    on_step: Callable[[str, int, int], None] | None = None,
    checkpointer: Checkpointer | None = None,
    resume: Checkpoint | None = None,
) -> tuple[PipelineResult, RDOutcome]:
    """[prune + fine-tune] ─► RD fine-tune with noise ─► [rate fit] ─► RD fine-tune through the
    integers ─► [rate fit] ─► entropy-code exactly those integers with their learned steps.

    With a target (``rd.target_bytes``) λ follows dual ascent, and the steps are fitted to the
    target on real coded sizes before the straight-through phase. That phase then trains the
    weights through the fitted steps, which stay fixed, with dual ascent holding the rate they
    cost (:meth:`RateTerm.hold`). A last fit after it is needed only if the size left
    the window; its factor is recorded in the outcome.

    The RD phases are not checkpointed: an interrupted encode resumes from the end of training
    (or of the pruned fine-tune) and repeats them, deterministically."""
    names = list(names) if names is not None else [n for n, _ in model.named_parameters()]
    runner = _PhaseRunner(model, frames, base, callback, checkpointer, resume, on_step)
    if resume is None and prune_ratio > 0:
        pruning.prune(model, prune_ratio)
    if prune_ratio > 0 and prune_epochs > 0:
        runner.run("prune", prune_epochs)
    rdq.attach(model, rd.init_bits, rd.per_channel)
    target_bits = None if rd.target_bytes is None else RD_PAYLOAD_SHARE * 8 * rd.target_bytes
    lam = rd.lam if rd.lam is not None else _auto_lambda(model, frames, pixels)
    term = rdq.RateTerm(model, pixels, lam, target_bits)
    noise = rd.epochs - rd.ste_epochs
    for phase, mode, epochs in (("rd", rdq.NOISE, noise), ("rd-ste", rdq.STE, rd.ste_epochs)):
        rdq.set_mode(model, mode)
        if mode == rdq.STE and rd.target_bytes is not None:
            _fit_steps(model, names, rd.target_bytes)
            # The fit put the real size on target: keep its steps, and let dual ascent hold
            # the rate through the weights (see RateTerm.hold and rdq.freeze_steps).
            rdq.freeze_steps(model)
            term.hold()
        if epochs > 0:
            group = {"params": rdq.quantiser_parameters(model), "lr": rd.lr, "weight_decay": 0.0}
            runner.run(
                phase,
                epochs,
                penalty=term,
                extra_groups=[group],  # a fresh dict: each phase's optimiser owns its group
                checkpoint=False,
                lr_scale=rd.lr_scale if mode == rdq.NOISE else FINE_TUNE_LR,
            )
    model.eval()
    t0 = time.perf_counter()
    with torch.no_grad():
        proxy = float(term.bits())
    step_factor, (encoded, rebuilt, quantised) = 1.0, _encode_learned(model, names)
    if rd.target_bytes is not None:
        step_factor, (encoded, rebuilt, quantised) = _fit_steps(model, names, rd.target_bytes)
    runner.phases["entropy"] = time.perf_counter() - t0
    rdq.detach(model)
    zeros, candidates = _zero_weights(model, dict(zip(names, rebuilt, strict=True)))
    result = PipelineResult(
        encoded=encoded,
        bits=max(qt.bits for qt in quantised),
        code_bits=max([q.bits for q, n in zip(quantised, names, strict=True) if is_code(n)] or [0]),
        prune_ratio=zeros / max(candidates, 1),
        prunable=candidates,
        phases=runner.phases,
        phase_psnr=runner.psnr,
        undone=runner.undone,
    )
    return result, RDOutcome(lam=float(term.lam), proxy_bits=proxy, step_factor=step_factor)


_Learned = tuple[
    EncodedTensors, list[torch.Tensor], list[QuantizedTensor]
]  # coded, rebuilt, integers


def _encode_learned(model: nn.Module, names: Sequence[str]) -> _Learned:
    """Entropy-code the integers the learned quantisers give now; each tensor's learned Laplace
    is one more candidate entropy model."""
    quantised = rdq.quantized(model, list(names))
    named = [
        (name, qt, [m] if (m := rdq.learned_laplace(qt.q, *laplace)) else [])
        for name, (qt, laplace) in zip(names, quantised, strict=True)
    ]
    encoded, rebuilt = encode_quantized(named)
    return encoded, rebuilt, [qt for qt, _ in quantised]


def _fit_steps(model: nn.Module, names: Sequence[str], target_bytes: int) -> tuple[float, _Learned]:
    """Rate control on real coded sizes: scale every learned step by one factor (bisection in
    log space) so that the tensor sections land in [``RD_LAND_BELOW`` · target, target], keep
    that factor in the model and return it with the accepted encoding. Dual ascent has usually
    put the rate close already, so the factor is near 1."""
    saved = [site.quant.log_step.detach().clone() for site in rdq.sites(model)]

    def probe(factor: float) -> _Learned:
        with torch.no_grad():
            for site, log_step in zip(rdq.sites(model), saved, strict=True):
                site.quant.log_step.copy_(log_step + math.log(factor))
        return _encode_learned(model, names)

    def lands(n: int) -> bool:
        return RD_LAND_BELOW * target_bytes <= n <= target_bytes

    accepted = (1.0, probe(1.0))
    if lands(_size(accepted[1][0])):
        return accepted
    lo, hi = 1.0 / 64, 64.0  # log-space bracket; the size falls as the factor grows
    best: tuple[float, _Learned] | None = None
    for _ in range(24):
        mid = math.sqrt(lo * hi)
        trial = probe(mid)
        n = _size(trial[0])
        if n <= target_bytes:
            best, hi = (mid, trial), mid
            if lands(n):
                break
        else:
            lo = mid
    accepted = best if best is not None else (hi, probe(hi))
    probe(accepted[0])  # leave the model at the accepted steps
    return accepted
