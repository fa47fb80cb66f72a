"""nvcodec itself as a benchmark codec: the public API, rate points set by parameter budgets.

::

    clip + frame range ─► nvcodec.encode(...) (trains, writes the real .nvc, verifies it)
      ─► rate = size of the .nvc file ─► decode_frames(.nvc) ─► frames for the harness's metrics
      ─► check: those metrics == the encoder's own report (one distortion definition)

Nothing here estimates a rate: the whole file (header, config, tables, entropy-coded weights) is
counted, exactly as the protocol asks.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import torch

import nvcodec
from benchmarks.codecs import BenchmarkError, Codec, CodecRun, Source, library_versions
from benchmarks.report import BF16_TAG, RD_SUFFIX  # nvc-<model>[-bf16][-rd]
from nvcodec import EncodeOptions, decode_frames, encode
from nvcodec.device import resolve_device
from nvcodec.io import QualityMetrics, compute_metrics
from nvcodec.models import get_spec
from nvcodec.pipeline import RD_AUTO_KAPPA, RDSettings
from nvcodec.training.loop import uses_autocast

__all__ = ["NvcCodec", "nvc_codec"]

PREFIX = "nvc-"


class NvcCodec(Codec):
    """One nvcodec model (``nvc-nerv``, ``nvc-ds-nerv``, ...) swept over parameter budgets."""

    point_name = "size"
    default_points = (50_000.0, 100_000.0, 200_000.0, 400_000.0)
    quick_points = (12_000.0, 24_000.0)

    def __init__(
        self,
        model: str = "nerv",
        *,
        epochs: int = 30,
        batch_size: int = 1,
        lr: float | None = None,
        bits: int | None = None,  # None: the encoder's default pipeline (5-bit QAT, pruning)
        lam: float | str | None = None,  # RD training at this λ (or "auto") instead of QAT
        seed: int = 0,
        device: str = "auto",
        precision: str = "auto",
    ) -> None:
        get_spec(model)  # unknown ids fail here, before any work
        self.model, self.epochs, self.batch_size = model, epochs, batch_size
        self.lr, self.bits, self.lam, self.seed, self.device = lr, bits, lam, seed, device
        self.precision = precision
        # bf16-trained curves are other curves: never one line (or one summary) with fp32 points
        bf16 = uses_autocast(self.options(None, 1e5).train_config(), _device(device))
        self.label = f"{PREFIX}{model}" + (BF16_TAG if bf16 else "")
        self.label += RD_SUFFIX if lam is not None else ""

    def options(self, source: Source | None, point: float) -> EncodeOptions:
        return EncodeOptions(
            model=self.model,
            size=int(point),
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            bits=self.bits,
            pipeline="qat" if self.lam is None else "rd",
            lam=self.lam,
            seed=self.seed,
            device=self.device,
            precision=self.precision,
            frames=source.frames if source is not None else None,
            overwrite=True,
        )

    def settings(self, point: float) -> dict[str, Any]:
        opts = self.options(None, point)
        return {
            "model": opts.model,
            "size": opts.size,
            "epochs": opts.epochs,
            "batch_size": opts.batch_size,
            # JSON-normal form (tuples → lists) so cached keys compare equal after a reload
            "recipe": _recipe(opts),
            "seed": opts.seed,
            # the compression pipeline as the encoder resolves it, so a change of defaults
            # (e.g. the bit depth) invalidates cached points
            "compression": {
                "bits": opts.resolved_bits,
                "code_bits": opts.resolved_code_bits,
                "prune_ratio": opts.resolved_prune_ratio,
                "prune_epochs": opts.resolved_prune_epochs,
                "qat_epochs": opts.resolved_qat_epochs,
                "preset": opts.preset,
                **(
                    {
                        "lambda": opts.lam,
                        "kappa": RD_AUTO_KAPPA if opts.lam == "auto" else None,
                        "rd_epochs": opts.resolved_rd_epochs,
                        # every RD default (steps' lr, phase split, ...) keys the cache
                        "rd": _rd_defaults(),
                    }
                    if opts.lam is not None
                    else {}
                ),
            },
        }

    def versions(self) -> dict[str, str]:
        return {"nvcodec": nvcodec.__version__, "torch": torch.__version__, **library_versions()}

    def describe(self) -> str:
        return (
            f"nvcodec {self.model}, {self.epochs} epochs, batch {self.batch_size}, "
            f"lr {'model recipe' if self.lr is None else f'{self.lr:g}'}, "
            f"{self._pipeline()}, parameter-budget sweep"
        )

    def _pipeline(self) -> str:
        if self.lam is not None:
            return f"RD training λ={self.lam}, no pruning"
        return "default pipeline" if self.bits is None else f"{self.bits}-bit weights"

    def run(self, source: Source, point: float, stem: Path) -> CodecRun:
        path = stem.with_suffix(".nvc")
        opts = self.options(source, point)
        report = encode(source.path, path, opts)
        size = os.path.getsize(path)
        if size != report.bytes:
            raise BenchmarkError(
                f"{path}: file has {size} bytes, the encoder reported {report.bytes}"
            )
        begin = time.perf_counter()
        decoded = decode_frames(path, device=self.device)
        decode_s = time.perf_counter() - begin
        if decoded.count != source.reference.count:
            raise BenchmarkError(
                f"{path}: decoded {decoded.count} frames, the source has {source.reference.count}"
            )
        mine = compute_metrics(source.reference, decoded, source.info.colour)
        check_same_metrics(mine, report.metrics, exact=str(report.device) == "cpu", what=str(path))
        seconds = dict(report.seconds)
        return CodecRun(
            bitstream=path,
            bytes=size,
            decoded=decoded,
            encode_s=sum(seconds.get(k, 0.0) for k in ("read", "train", "compress")),
            decode_s=decode_s,
            device=report.device,
            notes={
                "parameters": report.parameters,
                "train_psnr": report.train_psnr,
                "undone_epochs": report.undone_epochs,
                "encoder_seconds": seconds,
                "encoder_report_matches": True,
            },
        )


def _rd_defaults() -> dict[str, Any]:
    fields = dataclasses.asdict(RDSettings(lam=None, epochs=1))
    return {k: v for k, v in fields.items() if k not in ("lam", "epochs", "target_bytes")}


def check_same_metrics(
    mine: QualityMetrics, theirs: QualityMetrics, *, exact: bool, what: str
) -> None:
    """Raise unless two metric sets agree: exactly on CPU, to 0.01 dB / 1e-4 MS-SSIM on GPUs
    (whose kernels may round a few pixels differently between two decodes)."""
    a, b = mine.to_dict(), theirs.to_dict()
    a.pop("per_frame"), b.pop("per_frame")
    if exact:
        if a != b or mine.per_frame != theirs.per_frame:
            raise BenchmarkError(f"{what}: metrics differ from the encoder's report: {a} vs {b}")
        return
    for key, x in a.items():
        y = b[key]
        tol = 1e-4 if key == "ms_ssim" else 1e-2
        same = (x is None and y is None) or (
            x is not None and y is not None and (x == y or math.isclose(x, y, abs_tol=tol))
        )
        if not same:
            raise BenchmarkError(f"{what}: {key} {x} differs from the encoder's report ({y})")


def nvc_codec(name: str, *, lam: float | str | None = None, **kwargs: Any) -> NvcCodec | None:
    """``nvc-<model id>`` → :class:`NvcCodec` (the QAT pipeline), ``nvc-<model id>-rd`` → the
    same model with RD training at ``lam``; None when ``name`` is not an nvcodec name."""
    if not name.startswith(PREFIX):
        return None
    model = name[len(PREFIX) :]
    if model.endswith(RD_SUFFIX):
        if lam is None:
            raise BenchmarkError(f"{name}: RD training needs --lambda")
        return NvcCodec(model[: -len(RD_SUFFIX)], lam=lam, **kwargs)
    return NvcCodec(model, **kwargs)


def _recipe(opts: EncodeOptions) -> dict[str, Any]:
    """The training recipe in JSON-normal form (tuples → lists, so cached keys compare equal
    after a reload). Fields added to the recipe later are left out at their neutral value, so
    that points cached before them keep their keys (whole-frame training: no ``patch``; the
    usual fine-tune lr: no ``fine_tune``).
    ``bf16`` says whether training actually ran under bf16 autocast on this device (``amp`` only
    asks for it, and was a no-op on CPUs before AMX support)."""
    config = opts.train_config()
    recipe = json.loads(json.dumps(dataclasses.asdict(config)))
    if recipe.get("patch") == 0:
        del recipe["patch"]
    if recipe.get("fine_tune") == 1.0:
        del recipe["fine_tune"]
    if uses_autocast(config, _device(opts.device)):
        recipe["bf16"] = True
    return recipe


def _device(name: str) -> torch.device:
    """The device a point trains on, without requiring it here: ``--report-only`` of CUDA
    points works on a CPU-only machine (``auto`` resolves to this machine's device)."""
    if name == "auto" or not name.startswith("cuda"):
        return resolve_device(name)  # cpu, or a clear error for a name that is no device
    return torch.device(name)
