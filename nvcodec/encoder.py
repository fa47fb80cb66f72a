"""``encode``: video file → overfitted network → ``.nvc`` file, verified by decoding that file.

::

    read_video ─► yuv420p reference, kept as uint8 (RGB made batch by batch: ClipFrames)
      ─► solve --size (or the size --bpp implies) ─► train (CUDA when present)
      ─► prune + fine-tune ─► [--bpp: pick the bit depth on real sizes] ─► QAT fine-tune
      ─► quantise + entropy-code (nvcodec.pipeline) ─► write .nvc atomically
      ─► decode the written file with the standalone decoder ─► metrics against the reference

Everything that can be checked cheaply (output path, options, input video) is checked before
training starts, so a mistake never costs an hour of GPU time. The reported quality is measured
on the frames the decoder produces from the file, never on the in-memory float model.

**Interrupted encodes.** With ``checkpoint_dir`` the training state is saved there periodically
(:mod:`nvcodec.training.checkpoint`; every ``checkpoint_every`` epochs, else about once a minute,
and at the end of every phase). ``resume=True`` continues from it: the checkpoint must have been
made by the same encode (input frames, model config and every option that changes the result,
see :func:`_fingerprint`), phases before the saved one are skipped, and on the CPU the resumed
encode writes exactly the file an uninterrupted one would. The checkpoint is deleted once the
``.nvc`` file is written and verified.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from bitstream import NvcFileExistsError, NvcFileNotFoundError, encode_metadata
from nvcodec import __version__
from nvcodec.compression import TensorStat
from nvcodec.decode_layout import DEFAULT_LAYOUT, LAYOUTS
from nvcodec.decoder import decode_frames
from nvcodec.device import resolve_device
from nvcodec.errors import ConfigError, InputError, OutputError
from nvcodec.fileformat import NvcFile, StoredVideo, write_nvc
from nvcodec.io import (
    ClipFrames,
    QualityMetrics,
    VideoInfo,
    Yuv420Frames,
    compute_metrics,
    is_stream_target,
    psnr_from_mse,
    read_video,
)
from nvcodec.models import (
    build_model,
    count_parameters,
    get_spec,
    solve_config,
    training_defaults,
)
from nvcodec.models.budget import MAX_PARAMETERS
from nvcodec.models.config import MAX_SIDE, ModelConfig
from nvcodec.pipeline import (
    BITS_PER_PARAM,
    DEFAULT_BITS,
    PRESETS,
    RATE_DEPTHS,
    PipelineResult,
    RDSettings,
    compress_model,
    rd_compress,
)
from nvcodec.ranges import FrameRange
from nvcodec.training import EpochStats, TrainConfig, TrainResult, train
from nvcodec.training.checkpoint import (
    CHECKPOINT_NAME,
    Checkpoint,
    Checkpointer,
    NoCheckpointError,
)
from nvcodec.training.frames import Frames
from nvcodec.training.loop import OPTIMIZERS, PRECISIONS, training_layout, uses_autocast

__all__ = [
    "EncodeOptions",
    "EncodeReport",
    "check_nvc_output",
    "encode",
    "plan_for",
    "prepare_checkpoint_folder",
    "smallest_budget",
    "staged_output",
]

RD, QAT = "rd", "qat"  # the two compression pipelines
AUTO = "auto"  # --lambda auto: λ = κ·D/R of the trained model (nvcodec.pipeline._auto_lambda)
DEFAULT_PRUNE_RATIO = 0.2  # the QAT pipeline's (benchmarks/compression)
MIN_RD_TENSOR_BYTES = 256  # below this --bpp with --lambda is refused before training
MAX_LAMBDA = 100.0  # λ in MSE per bpp: 100 would trade 1 bpp for an MSE of 100 (far past useful)


MAX_SEED = 2**63 - 1
"""Largest ``--seed`` (torch's generators take 64-bit seeds)."""


@dataclass(frozen=True)
class EncodeOptions:
    """Everything that decides the output file; built once at the edge (CLI or caller)."""

    model: str = "ds-nerv"
    size: int = 300_000  # parameter budget for the whole stored model (ignored with target_bpp)
    epochs: int | None = None  # None: the preset's
    batch_size: int = 1
    patch: int | None = None  # train on patches of about this many pixels a side (HiNeRV)
    optimizer: str | None = None  # None: the model's own recipe (DS-NeRV: Adan; NeRV: Adam)
    lr: float | None = None
    warmup: float | None = None
    bits: int | None = None  # weights; None: 5, or with target_bpp the deepest depth tried, 8
    code_bits: int | None = None  # codes / embeddings; None: same as the weights
    prune_ratio: float | None = None  # conv/linear weights zeroed; None: 0.2, with RD 0
    prune_epochs: int | None = None  # fine-tune after pruning; None: the preset's
    qat_epochs: int | None = None  # quantisation-aware fine-tune; None: the preset's (0: off)
    target_bpp: float | None = None  # rate control: size the model and pick the depth for this
    pipeline: str | None = None  # "rd" or "qat"; None: RD unless a QAT option is given
    lam: float | str | None = None  # RD loss D + λ·bpp; None or "auto": λ = κ·D/R of the model
    rd_epochs: int | None = None  # RD epochs; None: the preset's QAT (+ prune fine-tune) epochs
    preset: str = "medium"
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"  # training arithmetic: "auto" (bf16 autocast where fast) or "fp32"
    decode_layout: str = DEFAULT_LAYOUT  # how the file is decoded (nvcodec.decode_layout)
    frames: FrameRange | None = None
    overwrite: bool = False
    checkpoint_dir: str | None = None  # save progress here (created if missing; parent must exist)
    resume: bool = False  # continue from the checkpoint in checkpoint_dir
    checkpoint_every: int | None = None  # epochs between checkpoints; None: about once a minute

    @property
    def resolved_epochs(self) -> int:
        return self.epochs if self.epochs is not None else PRESETS[self.preset].epochs

    @property
    def resolved_prune_ratio(self) -> float:
        """As given; by default 0.2 for the QAT pipeline and 0 for RD training, whose rate term
        zeroes what does not pay for its bits by itself."""
        if self.prune_ratio is not None:
            return self.prune_ratio
        return 0.0 if self.rd else DEFAULT_PRUNE_RATIO

    @property
    def resolved_prune_epochs(self) -> int:
        if self.resolved_prune_ratio == 0:
            return 0
        if self.prune_epochs is not None:
            return self.prune_epochs
        return PRESETS[self.preset].prune_epochs(self.resolved_epochs)

    @property
    def resolved_qat_epochs(self) -> int:
        if self.rd:
            return 0  # RD training's STE epochs take QAT's place
        if self.qat_epochs is not None:
            return self.qat_epochs
        return PRESETS[self.preset].qat_epochs(self.resolved_epochs)

    @property
    def rd(self) -> bool:
        """RD training (the default) or the fixed-depth QAT pipeline: ``pipeline`` decides; else
        giving ``--bits``, ``--code-bits`` or ``--qat-epochs`` asks for QAT."""
        if self.pipeline is not None:
            return self.pipeline == RD
        qat_options = (self.bits, self.code_bits, self.qat_epochs)
        return self.lam is not None or all(v is None for v in qat_options)

    @property
    def resolved_lam(self) -> float | str:
        return self.lam if self.lam is not None else AUTO

    @property
    def resolved_rd_epochs(self) -> int:
        """The preset's QAT epochs, plus its prune fine-tune's when nothing is pruned: the same
        total epochs as the QAT pipeline."""
        if self.rd_epochs is not None:
            return self.rd_epochs
        preset = PRESETS[self.preset]
        epochs = preset.qat_epochs(self.resolved_epochs)
        if self.resolved_prune_ratio == 0:
            epochs += preset.prune_epochs(self.resolved_epochs)
        return epochs

    @property
    def resolved_bits(self) -> int:
        if self.bits is not None:
            return self.bits
        return max(RATE_DEPTHS) if self.target_bpp is not None else DEFAULT_BITS

    @property
    def resolved_code_bits(self) -> int:
        return self.code_bits if self.code_bits is not None else self.resolved_bits

    def validate(self) -> None:
        get_spec(self.model)
        if self.preset not in PRESETS:
            raise ConfigError(f"preset {self.preset!r}: expected one of {', '.join(PRESETS)}")
        if not 1 <= self.resolved_epochs <= 100_000:
            raise ConfigError(f"epochs must be in [1, 100000], got {self.resolved_epochs}")
        for what, value in (
            ("prune epochs", self.prune_epochs),
            ("QAT epochs", self.qat_epochs),
        ):
            if value is not None and not 0 <= value <= 100_000:
                raise ConfigError(f"{what} must be in [0, 100000], got {value}")
        if self.prune_ratio is not None and not 0 <= self.prune_ratio <= 0.95:
            raise ConfigError(f"prune ratio must be in [0, 0.95], got {self.prune_ratio}")
        if self.code_bits is not None and not 2 <= self.code_bits <= 16:
            raise ConfigError(f"code bits must be in [2, 16], got {self.code_bits}")
        if self.target_bpp is not None and not 0 < self.target_bpp <= 64:
            raise ConfigError(f"target bpp must be in (0, 64], got {self.target_bpp}")
        if not 1 <= self.batch_size <= 4096:
            raise ConfigError(f"batch size must be in [1, 4096], got {self.batch_size}")
        if not 1_000 <= self.size <= MAX_PARAMETERS:
            raise ConfigError(
                f"size must be in [1000, {MAX_PARAMETERS:,}] parameters (the largest model the "
                f"decoder rebuilds), got {self.size:,}"
            )
        if self.precision not in PRECISIONS:
            raise ConfigError(
                f"precision {self.precision!r}: expected one of {', '.join(PRECISIONS)}"
            )
        if self.decode_layout not in LAYOUTS:
            raise ConfigError(
                f"decode layout {self.decode_layout!r}: expected one of {', '.join(LAYOUTS)}"
            )
        if not 0 <= self.seed <= MAX_SEED:
            raise ConfigError(f"seed must be in [0, {MAX_SEED}], got {self.seed}")
        if self.target_bpp is not None and self.bits is not None and self.bits < RATE_DEPTHS[-1]:
            raise ConfigError(
                f"--bpp chooses among {RATE_DEPTHS[0]}..{RATE_DEPTHS[-1]}-bit weights; "
                f"--bits {self.bits} leaves it none (give --bits {RATE_DEPTHS[-1]} or more)"
            )
        if self.patch is not None:
            if not 1 <= self.patch <= MAX_SIDE:
                raise ConfigError(f"patch size must be in [1, {MAX_SIDE}] pixels, got {self.patch}")
            if not hasattr(get_spec(self.model).module, "forward_patch"):
                raise ConfigError(
                    f"--patch: {self.model} computes each frame as a whole (its stored inputs or "
                    f"attention span the frame), so it cannot train on patches; hinerv and "
                    f"hinerv-flat can"
                )
        if self.optimizer is not None and self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer {self.optimizer!r}: expected one of {OPTIMIZERS}")
        if self.lr is not None and not 0 < self.lr < 1:
            raise ConfigError(f"learning rate must be in (0, 1), got {self.lr}")
        if self.warmup is not None and not 0 <= self.warmup < 1:
            raise ConfigError(f"warm-up fraction must be in [0, 1), got {self.warmup}")
        if self.bits is not None and not 2 <= self.bits <= 16:
            raise ConfigError(f"bits must be in [2, 16], got {self.bits}")
        if self.pipeline not in (None, RD, QAT):
            raise ConfigError(f"pipeline {self.pipeline!r}: expected {RD!r} or {QAT!r}")
        if (
            self.lam is not None
            and self.lam != AUTO
            and not (
                isinstance(self.lam, float | int)
                and math.isfinite(self.lam)
                and 0 < self.lam <= MAX_LAMBDA
            )
        ):
            raise ConfigError(
                f"lambda must be {AUTO!r} or a number in (0, {MAX_LAMBDA:g}], got {self.lam}"
            )
        self._check_pipeline_options()
        if self.rd_epochs is not None and not 1 <= self.rd_epochs <= 100_000:
            raise ConfigError(f"RD epochs must be in [1, 100000], got {self.rd_epochs}")
        if self.resume and not self.checkpoint_dir:
            raise ConfigError("--resume needs --checkpoint-dir (the folder holding the checkpoint)")
        if self.checkpoint_every is not None and not 1 <= self.checkpoint_every <= 100_000:
            raise ConfigError(
                f"checkpoint interval must be in [1, 100000] epochs, got {self.checkpoint_every}"
            )

    def _check_pipeline_options(self) -> None:
        """Options of one pipeline are refused with the other (never silently ignored)."""
        rd_options = (("--lambda", self.lam), ("--rd-epochs", self.rd_epochs))
        rd_given = [what for what, value in rd_options if value is not None]
        qat_given = [
            what
            for what, value in (
                ("--bits", self.bits),
                ("--code-bits", self.code_bits),
                ("--qat-epochs", self.qat_epochs),
            )
            if value is not None
        ]
        if self.rd and qat_given:
            raise ConfigError(
                f"{qat_given[0]} sets the fixed-depth QAT pipeline; RD training learns the step "
                "sizes (leave it out, or use --pipeline qat)"
            )
        if not self.rd and rd_given:
            raise ConfigError(
                f"{rd_given[0]} applies to RD training, not to the QAT pipeline "
                "(leave out --pipeline qat / --bits / --code-bits / --qat-epochs)"
            )

    def train_config(self) -> TrainConfig:
        """The model's recipe with this encode's overrides applied."""
        recipe = training_defaults(self.model)
        optimizer = self.optimizer or recipe.get("optimizer", "adam")
        betas = tuple(recipe.get("betas", ()))
        if optimizer != recipe.get("optimizer"):
            betas = (0.98, 0.92, 0.99) if optimizer == "adan" else (0.9, 0.999)
        return TrainConfig(
            epochs=self.resolved_epochs,
            batch_size=self.batch_size,
            patch=self.patch or 0,
            optimizer=optimizer,
            lr=self.lr if self.lr is not None else recipe.get("lr", 1e-3),
            warmup=self.warmup if self.warmup is not None else recipe.get("warmup", 0.2),
            betas=betas or (0.9, 0.999),
            weight_decay=recipe.get("weight_decay", 0.0)
            if optimizer == recipe.get("optimizer")
            else 0.0,
            seed=self.seed,
            amp=self.precision == "auto",
            cpu_bf16=recipe.get("cpu_bf16", True),
            channels_last=recipe.get("channels_last", True),
            clip=recipe.get("clip", 0.0),
            fine_tune=recipe.get("fine_tune", 1.0),
        )


@dataclass(frozen=True)
class EncodeReport:
    """The encoder's summary; every number is re-computable from the file and the source."""

    output: str
    bytes: int
    bpp: float
    width: int
    height: int
    frames: int
    fps: float
    model: str
    parameters: int
    device: str
    metrics: QualityMetrics
    train_psnr: float  # float model on RGB, before quantisation (for diagnosing the gap)
    seconds: dict[str, float] = field(default_factory=dict)  # read, train, compress, verify, total
    tensors: tuple[TensorStat, ...] = ()
    compression: dict[str, object] = field(default_factory=dict)  # as stored in the metadata
    target_bpp: float | None = None
    undone_epochs: int = 0  # training epochs undone because they diverged (all phases)


def check_nvc_output(output: str, input_path: str, overwrite: bool) -> None:
    if is_stream_target(output):
        return  # a device or FIFO is written into (see staged_output)
    folder = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(folder):
        raise OutputError(f"{output}: folder {os.path.dirname(output) or '.'!r} does not exist")
    if os.path.isdir(output):
        raise OutputError(f"{output}: is a directory")
    if os.path.exists(output):
        if os.path.exists(input_path) and os.path.samefile(output, input_path):
            raise OutputError(f"{output}: is the input file")
        if not overwrite:
            raise OutputError(f"{output}: exists (use -y to overwrite)")
    try:  # the file is written next to its target and renamed: try that before training
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".nvc-probe-"):
            pass
    except OSError as exc:
        raise OutputError(f"{output}: cannot write in {folder}: {exc.strerror}") from None


_NOT_RESULT_OPTIONS = ("overwrite", "checkpoint_dir", "resume", "checkpoint_every")


def prepare_checkpoint_folder(folder: str) -> None:
    """A usable ``--checkpoint-dir``: created now if only it is missing (its parent must exist)."""
    parent = os.path.dirname(os.path.abspath(folder))
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise OutputError(f"{folder}: checkpoint folder is a file")
    if not os.path.isdir(parent):
        raise OutputError(f"{folder}: cannot create the checkpoint folder: {parent} does not exist")
    os.makedirs(folder, exist_ok=True)


def _check_checkpoint_dir(opts: EncodeOptions) -> None:
    """Before reading anything: the folder can be used (created now if only it is missing)."""
    if not opts.checkpoint_dir:
        return
    folder = opts.checkpoint_dir
    prepare_checkpoint_folder(folder)
    if opts.resume and not os.path.isfile(os.path.join(folder, CHECKPOINT_NAME)):
        raise NoCheckpointError(
            f"{folder}: no checkpoint to resume from ({CHECKPOINT_NAME} is missing)"
        )


def _fingerprint(
    opts: EncodeOptions,
    src: str,
    reference: Yuv420Frames,
    info: VideoInfo,
    config: ModelConfig,
    train_cfg: TrainConfig,
    device: torch.device,
) -> dict[str, object]:
    """What must be equal for a checkpoint to be resumed: the frames (hashed), the model config,
    the training recipe, every option that changes the result, the device type, whether it
    trains under bf16 autocast, and versions.
    ``info`` is shown in messages but never compared (the same frames may move or be re-muxed)."""
    digest = hashlib.sha256()
    for plane in (reference.y, reference.u, reference.v):
        digest.update(repr(plane.shape).encode())
        digest.update(np.ascontiguousarray(plane).tobytes())
    options = {
        f.name: list(v) if isinstance(v := getattr(opts, f.name), tuple) else v
        for f in dataclasses.fields(opts)
        if f.name not in _NOT_RESULT_OPTIONS
    }
    recipe = {
        f.name: list(v) if isinstance(v := getattr(train_cfg, f.name), tuple) else v
        for f in dataclasses.fields(train_cfg)
    }
    return {
        "info": {"input": os.path.abspath(src)},
        "input": {
            "frames_sha256": digest.hexdigest(),
            "width": info.width,
            "height": info.height,
            "frame_count": info.frame_count,
            "fps": str(info.fps),
            "colour": str(info.colour),
        },
        "options": options,
        "train": recipe,
        "model_config": config.to_dict(),
        "device": device.type,
        "bf16_autocast": uses_autocast(train_cfg, device),  # a CPU with AMX or without
        "versions": {"nvcodec": __version__, "torch": torch.__version__},
    }


@dataclass(frozen=True)
class EncodePlan:
    """What the encode decided before training: the clip, the model and the recipe."""

    opts: EncodeOptions
    info: VideoInfo
    config: ModelConfig
    train_cfg: TrainConfig
    device: torch.device
    target_bytes: int | None  # --bpp: the whole file

    @property
    def pixels(self) -> int:
        return self.info.width * self.info.height * self.info.frame_count


def plan_encode(input_path: str | os.PathLike[str], options: EncodeOptions) -> EncodePlan:
    """The encode's decisions before training (validated options, the clip, the sized model,
    the recipe, the device), made exactly as :func:`encode` makes them; nothing is written."""
    options.validate()
    _, info = _read(os.fspath(input_path), options)
    return _plan(options, info, resolve_device(options.device))


def encode(
    input_path: str | os.PathLike[str],
    output: str | os.PathLike[str],
    options: EncodeOptions | None = None,
    progress: Callable[[EpochStats], None] | None = None,
    on_step: Callable[[str, int, int], None] | None = None,
    on_plan: Callable[[EncodePlan], None] | None = None,
) -> EncodeReport:
    """Encode ``input_path`` into ``output`` and report rate and quality measured from the file.

    The phases: read → plan (size the model) → train → compress (prune / QAT or RD fine-tunes,
    entropy coding) → write → decode the file and measure it. ``progress`` gets each epoch's
    statistics; ``on_step(phase, done, total)`` the optimiser steps of each phase as they go;
    ``on_plan(plan)`` the plan, once, before the frames are converted and training starts."""
    opts = options or EncodeOptions()
    opts.validate()
    src, out = os.fspath(input_path), os.fspath(output)
    check_nvc_output(out, src, opts.overwrite)
    _check_checkpoint_dir(opts)
    times: dict[str, float] = {}
    begin = time.perf_counter()
    reference, info = _read(src, opts)
    plan = _plan(opts, info, resolve_device(opts.device))
    if on_plan is not None:
        on_plan(plan)
    frames = ClipFrames(reference, info.colour, plan.device)  # RGB batches made on demand
    times["read"] = time.perf_counter() - begin

    torch.manual_seed(opts.seed)
    model = training_layout(build_model(plan.config, device=plan.device), plan.train_cfg)
    names = [n for n, _ in model.named_parameters()]
    checkpointer, resume = _open_checkpoint(plan, src, reference)
    result, resume = _train_phase(plan, model, frames, progress, checkpointer, resume, on_step)
    times["train"] = result.seconds

    t0 = time.perf_counter()
    piped, compression = _compress_phase(
        plan, model, frames, names, progress, checkpointer, resume, on_step
    )
    del frames
    with staged_output(out) as written:
        size = _write(written, plan, piped, compression)
        times["compress"] = time.perf_counter() - t0
        times.update({f"compress.{k}": v for k, v in piped.phases.items()})

        t0 = time.perf_counter()
        decoded = decode_frames(written, device=opts.device)
        times["decode"] = time.perf_counter() - t0
    metrics = compute_metrics(reference, decoded, info.colour)
    if checkpointer is not None:
        checkpointer.remove()
    times["total"] = time.perf_counter() - begin
    return EncodeReport(
        output=out,
        bytes=size,
        bpp=8 * size / plan.pixels,
        width=info.width,
        height=info.height,
        frames=info.frame_count,
        fps=float(info.fps),
        model=opts.model,
        parameters=count_parameters(plan.config),
        device=str(plan.device),
        metrics=metrics,
        train_psnr=result.final_psnr,
        seconds=times,
        tensors=piped.encoded.stats,
        compression={"bits": piped.bits, **compression},
        target_bpp=opts.target_bpp,
        undone_epochs=result.undone + piped.undone,
    )


def _read(src: str, opts: EncodeOptions) -> tuple[Yuv420Frames, VideoInfo]:
    reference, info = read_video(src, opts.frames)
    if opts.frames is not None and opts.frames[1] is not None:
        start, stop = opts.frames
        if info.frame_count < stop - start:
            raise InputError(
                f"{src} has {start + info.frame_count} frames; range {start}:{stop} is outside it"
            )
    return reference, info


def plan_for(opts: EncodeOptions, info: VideoInfo, device: torch.device) -> EncodePlan:
    """The plan of an encode of the clip ``info`` describes (a segment's, before it is read):
    every option and the sized model are checked here, before any training."""
    return _plan(opts, info, device)


def smallest_budget(model_id: str, info: VideoInfo) -> int:
    """Parameters of the smallest model of ``model_id`` for the clip ``info`` describes."""
    return _smallest_feasible(model_id, info, 1_000)


def _plan(opts: EncodeOptions, info: VideoInfo, device: torch.device) -> EncodePlan:
    """Size the model: ``--size`` as given, or the budget a ``--bpp`` target buys at the
    measured bits per parameter of the deepest depth (the depth, extra pruning or the RD step
    fit then land the real file on the target)."""
    target_bytes = None
    budget = opts.size
    if opts.target_bpp is not None:
        target_bytes = int(opts.target_bpp * info.width * info.height * info.frame_count / 8)
        overhead = _overhead_bytes(opts, info, config=None)
        per_param = BITS_PER_PARAM[max(4, min(DEFAULT_BITS, opts.resolved_bits))]
        budget = max(1_000, int(8 * (target_bytes - overhead) / per_param))
        budget = _smallest_feasible(opts.model, info, budget)
    config = solve_config(opts.model, info.height, info.width, info.frame_count, budget)
    if target_bytes is not None and opts.rd:
        # RD rate control lands the tensors themselves: refuse a target they cannot fit
        room = target_bytes - _overhead_bytes(opts, info, config=config)
        if room < MIN_RD_TENSOR_BYTES:
            raise ConfigError(
                f"--bpp {opts.target_bpp:g} leaves {room} bytes for the model after the file's "
                f"header and metadata; RD training needs at least {MIN_RD_TENSOR_BYTES} "
                "(raise --bpp, or encode more frames)"
            )
    return EncodePlan(opts, info, config, opts.train_config(), device, target_bytes)


def _open_checkpoint(
    plan: EncodePlan, src: str, reference: Yuv420Frames
) -> tuple[Checkpointer | None, Checkpoint | None]:
    """The checkpointer of ``--checkpoint-dir`` and, with ``--resume``, what it holds."""
    opts = plan.opts
    if not opts.checkpoint_dir:
        return None, None
    fingerprint = _fingerprint(
        opts, src, reference, plan.info, plan.config, plan.train_cfg, plan.device
    )
    checkpointer = Checkpointer(
        opts.checkpoint_dir, fingerprint, every_epochs=opts.checkpoint_every
    )
    if opts.resume:
        return checkpointer, checkpointer.load()
    if checkpointer.exists():
        raise ConfigError(
            f"{checkpointer.path}: a checkpoint of an interrupted encode is there; continue "
            "it with --resume, or delete it (or use another --checkpoint-dir) to start over"
        )
    return checkpointer, None


def _train_phase(
    plan: EncodePlan,
    model: nn.Module,
    frames: Frames,
    progress: Callable[[EpochStats], None] | None,
    checkpointer: Checkpointer | None,
    resume: Checkpoint | None,
    on_step: Callable[[str, int, int], None] | None = None,
) -> tuple[TrainResult, Checkpoint | None]:
    """Train (or continue training) the model; returns the result and the checkpoint still to
    resume from (None once training ran: the later phases start afresh)."""
    if resume is not None and resume.phase != "train":
        # a later phase: training is done, its summary travels in the checkpoint
        done = resume.history.get("train", {})
        loss = done.get("loss")
        loss = float(loss) if loss is not None else float("nan")
        seconds, steps = float(done.get("seconds", 0.0)), int(done.get("steps", 0))
        undone = int(done.get("undone", 0))
        return TrainResult(loss, psnr_from_mse(loss, peak=1.0), seconds, steps, undone), resume
    result = train(
        model,
        frames,
        plan.train_cfg,
        progress,
        checkpointer.hook("train") if checkpointer else None,
        resume.state if resume else None,
        on_step=functools.partial(on_step, "train") if on_step else None,
    )
    if checkpointer is not None:
        checkpointer.history["train"] = {
            "loss": result.final_loss if np.isfinite(result.final_loss) else None,
            "seconds": result.seconds,
            "steps": result.steps,
            "undone": result.undone,
        }
    return result, None


def _compress_phase(
    plan: EncodePlan,
    model: nn.Module,
    frames: Frames,
    names: list[str],
    progress: Callable[[EpochStats], None] | None,
    checkpointer: Checkpointer | None,
    resume: Checkpoint | None,
    on_step: Callable[[str, int, int], None] | None = None,
) -> tuple[PipelineResult, dict[str, object]]:
    """The QAT pipeline or RD training, then entropy coding; returns the coded tensors and the
    METADATA ``compression`` fields."""
    opts = plan.opts
    tensor_target = None
    if plan.target_bytes is not None:
        tensor_target = plan.target_bytes - _overhead_bytes(opts, plan.info, config=plan.config)
    callback = None
    if progress is not None:
        report = progress

        def callback(phase: str, stats: EpochStats) -> None:
            report(dataclasses.replace(stats, phase=phase))

    common = dict(
        names=names, callback=callback, on_step=on_step, checkpointer=checkpointer, resume=resume
    )
    if not opts.rd:
        piped = compress_model(
            model,
            frames,
            plan.train_cfg,
            bits=opts.resolved_bits,
            code_bits=opts.resolved_code_bits,
            prune_ratio=opts.resolved_prune_ratio,
            prune_epochs=opts.resolved_prune_epochs,
            qat_epochs=opts.resolved_qat_epochs,
            target_bytes=tensor_target,
            **common,
        )
        return piped, _compression_meta(opts, piped.code_bits, piped.prune_ratio)
    settings = RDSettings(
        lam=None if opts.resolved_lam == AUTO else float(opts.resolved_lam),
        epochs=opts.resolved_rd_epochs,
        target_bytes=tensor_target,
    )
    piped, outcome = rd_compress(
        model,
        frames,
        plan.train_cfg,
        settings,
        pixels=plan.pixels,
        prune_ratio=opts.resolved_prune_ratio,
        prune_epochs=opts.resolved_prune_epochs,
        **common,
    )
    compression = _compression_meta(opts, piped.code_bits, piped.prune_ratio)
    compression.update(_rd_meta(opts, outcome.lam, outcome.proxy_bits, outcome.step_factor))
    return piped, compression


def _rd_meta(opts: EncodeOptions, lam: float, proxy_bits: float, factor: float) -> dict:
    """METADATA ``compression`` fields of an RD-trained file (informational)."""
    return {
        "lambda": lam,
        "lambda_auto": opts.resolved_lam == AUTO,
        "quantiser": "learned-step-per-tensor-fp16",
        "rd_epochs": opts.resolved_rd_epochs,
        "rd_proxy_bits": round(proxy_bits),
        "rd_step_factor": round(factor, 6),
    }


@contextlib.contextmanager
def staged_output(out: str) -> Iterator[str]:
    """Where to write the file: ``out`` itself, or for a device or FIFO (``-o /dev/null``) a
    temporary file that the encoder verifies and then streams into ``out``, which cannot be
    read back."""
    if not is_stream_target(out):
        yield out
        return
    with tempfile.TemporaryDirectory(prefix="nvc-") as folder:
        staged = os.path.join(folder, "out.nvc")
        yield staged
        with open(staged, "rb") as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst)


def _write(
    out: str, plan: EncodePlan, piped: PipelineResult, compression: dict[str, object]
) -> int:
    """Write the ``.nvc`` file (atomically); returns its size in bytes."""
    info = plan.info
    video = StoredVideo(
        width=info.width,
        height=info.height,
        frame_count=info.frame_count,
        fps=info.fps,
        colour=info.colour,
    )
    nvc = NvcFile(
        video=video,
        model_id=plan.opts.model,
        config=plan.config,
        bits=piped.bits,
        encoder=_encoder_meta(plan.opts, plan.train_cfg, info.frame_count),
        compression=compression,
        layout=plan.opts.decode_layout,
    )
    try:
        return write_nvc(
            out,
            nvc,
            piped.encoded.table,
            piped.encoded.data,
            overwrite=plan.opts.overwrite,
            reader_version=piped.encoded.reader_version,
        )
    except (NvcFileNotFoundError, NvcFileExistsError) as exc:
        raise OutputError(str(exc)) from None


def _compression_meta(opts: EncodeOptions, code_bits: int, pruned: float) -> dict[str, object]:
    meta: dict[str, object] = {
        "code_bits": code_bits,
        "prune_ratio": round(pruned, 4),
        "prune_epochs": opts.resolved_prune_epochs,
        "qat_epochs": opts.resolved_qat_epochs,
        "preset": opts.preset,
    }
    if opts.target_bpp is not None:
        meta["target_bpp"] = opts.target_bpp
    return meta


def _encoder_meta(opts: EncodeOptions, train_cfg: TrainConfig, frame_count: int) -> dict:
    return {
        "name": "nvcodec",
        "version": __version__,
        "epochs": train_cfg.epochs,
        "batch_size": opts.batch_size,
        **({"patch": opts.patch} if opts.patch else {}),
        "optimizer": train_cfg.optimizer,
        "lr": train_cfg.lr,
        **({"fine_tune_lr": train_cfg.fine_tune} if train_cfg.fine_tune != 1.0 else {}),
        "seed": opts.seed,
        "source_frames": [opts.frames[0] if opts.frames else 0, frame_count],
    }


def _overhead_bytes(opts: EncodeOptions, info: VideoInfo, config: ModelConfig | None) -> int:
    """Header + section table + METADATA bytes (everything but the tensor sections)."""
    if config is None:
        config = solve_config(opts.model, info.height, info.width, info.frame_count, opts.size)
    nvc = NvcFile(
        video=StoredVideo(info.width, info.height, info.frame_count, info.fps, info.colour),
        model_id=opts.model,
        config=config,
        bits=opts.resolved_bits,
        encoder=_encoder_meta(opts, opts.train_config(), info.frame_count),
        compression=_compression_meta(opts, opts.resolved_code_bits, opts.resolved_prune_ratio),
        layout=opts.decode_layout,
    )
    slack = 0
    if opts.rd:  # the longest values the RD fields can take; the depth may take two digits
        longest = _rd_meta(opts, -1.2345678901234567e-100, 1e15, 12345.123456)
        nvc = dataclasses.replace(nvc, compression={**nvc.compression, **longest})
        slack = 8
    return 28 + 3 * 32 + len(encode_metadata(nvc.metadata())) + slack


def _smallest_feasible(model_id: str, info: VideoInfo, budget: int) -> int:
    """``budget``, raised to the smallest model of ``model_id`` if it is below that."""
    smallest = count_parameters(
        get_spec(model_id).sizing(info.height, info.width, info.frame_count, 1)
    )
    return max(budget, smallest)
