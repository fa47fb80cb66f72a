"""``encode``: video file → overfitted network → ``.nvc`` file, verified by decoding that file.

::

    read_video ─► yuv420p reference ─► RGB (the clip's one colour conversion) ─► solve --size
      ─► train (CUDA when present) ─► quantise + entropy-code ─► write .nvc atomically
      ─► decode the written file with the standalone decoder ─► metrics against the reference

Everything that can be checked cheaply (output path, options, input video) is checked before
training starts, so a mistake never costs an hour of GPU time. The reported quality is measured
on the frames the decoder produces from the file, never on the in-memory float model.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from bitstream import NvcFileExistsError, NvcFileNotFoundError
from nvcodec import __version__
from nvcodec.compression import TensorStat, encode_tensors
from nvcodec.decoder import decode_frames
from nvcodec.device import resolve_device
from nvcodec.errors import ConfigError, InputError, OutputError
from nvcodec.fileformat import NvcFile, StoredVideo, write_nvc
from nvcodec.io import QualityMetrics, compute_metrics, read_video, yuv420_to_rgb
from nvcodec.models import (
    build_model,
    count_parameters,
    get_spec,
    solve_config,
    training_defaults,
)
from nvcodec.ranges import FrameRange
from nvcodec.training import EpochStats, TrainConfig, train
from nvcodec.training.loop import OPTIMIZERS

__all__ = ["EncodeOptions", "EncodeReport", "encode"]


@dataclass(frozen=True)
class EncodeOptions:
    """Everything that decides the output file; built once at the edge (CLI or caller)."""

    model: str = "ds-nerv"
    size: int = 300_000  # parameter budget for the whole stored model
    epochs: int = 300
    batch_size: int = 1
    optimizer: str | None = None  # None: the model's own recipe (DS-NeRV: Adan; NeRV: Adam)
    lr: float | None = None
    warmup: float | None = None
    bits: int = 8
    seed: int = 0
    device: str = "auto"
    frames: FrameRange | None = None
    overwrite: bool = False

    def validate(self) -> None:
        get_spec(self.model)
        if not 1 <= self.epochs <= 100_000:
            raise ConfigError(f"epochs must be in [1, 100000], got {self.epochs}")
        if not 1 <= self.batch_size <= 4096:
            raise ConfigError(f"batch size must be in [1, 4096], got {self.batch_size}")
        if self.optimizer is not None and self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer {self.optimizer!r}: expected one of {OPTIMIZERS}")
        if self.lr is not None and not 0 < self.lr < 1:
            raise ConfigError(f"learning rate must be in (0, 1), got {self.lr}")
        if self.warmup is not None and not 0 <= self.warmup < 1:
            raise ConfigError(f"warm-up fraction must be in [0, 1), got {self.warmup}")
        if not 2 <= self.bits <= 16:
            raise ConfigError(f"bits must be in [2, 16], got {self.bits}")

    def train_config(self) -> TrainConfig:
        """The model's recipe with this encode's overrides applied."""
        recipe = training_defaults(self.model)
        optimizer = self.optimizer or recipe.get("optimizer", "adam")
        betas = tuple(recipe.get("betas", ()))
        if optimizer != recipe.get("optimizer"):
            betas = (0.98, 0.92, 0.99) if optimizer == "adan" else (0.9, 0.999)
        return TrainConfig(
            epochs=self.epochs,
            batch_size=self.batch_size,
            optimizer=optimizer,
            lr=self.lr if self.lr is not None else recipe.get("lr", 1e-3),
            warmup=self.warmup if self.warmup is not None else recipe.get("warmup", 0.2),
            betas=betas or (0.9, 0.999),
            weight_decay=recipe.get("weight_decay", 0.0)
            if optimizer == recipe.get("optimizer")
            else 0.0,
            seed=self.seed,
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


def _check_nvc_output(output: str, input_path: str, overwrite: bool) -> None:
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


def encode(
    input_path: str | os.PathLike[str],
    output: str | os.PathLike[str],
    options: EncodeOptions | None = None,
    progress: Callable[[EpochStats], None] | None = None,
) -> EncodeReport:
    """Encode ``input_path`` into ``output`` and report rate and quality measured from the file."""
    opts = options or EncodeOptions()
    opts.validate()
    src, out = os.fspath(input_path), os.fspath(output)
    _check_nvc_output(out, src, opts.overwrite)
    device = resolve_device(opts.device)
    times: dict[str, float] = {}
    begin = time.perf_counter()

    reference, info = read_video(src, opts.frames)
    if opts.frames is not None and opts.frames[1] is not None:
        start, stop = opts.frames
        if info.frame_count < stop - start:
            raise InputError(
                f"{src} has {start + info.frame_count} frames; range {start}:{stop} is outside it"
            )
    config = solve_config(opts.model, info.height, info.width, info.frame_count, opts.size)
    rgb = yuv420_to_rgb(reference.y, reference.u, reference.v, info.colour)
    frames = torch.from_numpy(np.ascontiguousarray(rgb.transpose(0, 3, 1, 2))).to(device)
    times["read"] = time.perf_counter() - begin

    torch.manual_seed(opts.seed)
    model = build_model(config, device=device)
    train_cfg = opts.train_config()
    result = train(model, frames, train_cfg, progress)
    times["train"] = result.seconds
    del frames

    t0 = time.perf_counter()
    encoded, _ = encode_tensors(list(model.named_parameters()), bits=opts.bits)
    nvc = NvcFile(
        video=StoredVideo(
            width=info.width,
            height=info.height,
            frame_count=info.frame_count,
            fps=info.fps,
            colour=info.colour,
        ),
        model_id=opts.model,
        config=config,
        bits=opts.bits,
        encoder={
            "name": "nvcodec",
            "version": __version__,
            "epochs": opts.epochs,
            "batch_size": opts.batch_size,
            "optimizer": train_cfg.optimizer,
            "lr": train_cfg.lr,
            "seed": opts.seed,
            "source_frames": [opts.frames[0] if opts.frames else 0, info.frame_count],
        },
    )
    try:
        size = write_nvc(out, nvc, encoded.table, encoded.data, overwrite=opts.overwrite)
    except (NvcFileNotFoundError, NvcFileExistsError) as exc:
        raise OutputError(str(exc)) from None
    times["compress"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    decoded = decode_frames(out, device=opts.device)
    times["decode"] = time.perf_counter() - t0
    metrics = compute_metrics(reference, decoded, info.colour)
    times["total"] = time.perf_counter() - begin

    return EncodeReport(
        output=out,
        bytes=size,
        bpp=8 * size / (info.width * info.height * info.frame_count),
        width=info.width,
        height=info.height,
        frames=info.frame_count,
        fps=float(info.fps),
        model=opts.model,
        parameters=count_parameters(config),
        device=str(device),
        metrics=metrics,
        train_psnr=result.final_psnr,
        seconds=times,
        tensors=encoded.stats,
    )
