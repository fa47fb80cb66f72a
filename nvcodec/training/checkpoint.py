"""Training checkpoints: save an encode mid-way and continue it after Ctrl-C or ``kill -9``.

A checkpoint is everything :func:`nvcodec.training.train` needs to continue *exactly* where it
stopped (on CPU the resumed run is bit-identical to an uninterrupted one), plus what the pipeline
needs to re-enter its phase:

* the model's ``state_dict`` (and the training encoder's, for hybrid models), the optimiser's
  per-parameter state tensors and counters, its parameter-group hyper-parameters, the scheduler
  position, the frame-order generator's state and the global torch RNG state;
* the phase (``train``, ``prune`` or ``qat``), the epochs done in it, the pruning masks and the
  rate-control decision (bit depths) for the fine-tune phases, and a summary of finished phases;
* a *fingerprint* of the encode (input frames, model config, every option that changes the
  result) so that resuming a different encode is refused, naming what differs.

**No pickle.** The file is an ``.nvc`` v1 container (:mod:`bitstream`: checksummed header and
sections, atomic writes, bounded parsing) with two sections: METADATA (zstd JSON: everything
above that is not a tensor, plus a table of tensors with name, dtype, shape, offset, length) and
TENSOR_DATA (the tensors' raw little-endian bytes back to back). docs/CHECKPOINT.md is the
byte-level description. Loading never executes anything from the file: JSON values are
type-checked and every tensor's extent is checked against the section before it is read.
"""

from __future__ import annotations

import contextlib
import glob
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import torch
from torch import nn

from bitstream import (
    MalformedFileError,
    Section,
    SectionType,
    decode_metadata,
    encode_metadata,
    read_file,
    write_file,
)
from nvcodec.errors import ConfigError

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_NAME",
    "CHECKPOINT_VERSION",
    "PHASES",
    "Checkpoint",
    "CheckpointMismatchError",
    "Checkpointer",
    "NoCheckpointError",
    "TrainState",
    "capture_train_state",
    "compare_fingerprints",
    "load_checkpoint",
    "restore_train_state",
    "save_checkpoint",
]

CHECKPOINT_FORMAT: Final = "nvcodec-checkpoint"
CHECKPOINT_VERSION: Final = 1
CHECKPOINT_NAME: Final = "checkpoint.nvck"
PHASES: Final = ("train", "prune", "qat")
DEFAULT_EVERY_SECONDS: Final = 60.0
MAX_TENSORS: Final = 100_000
MAX_NAME_CHARS: Final = 1_000
MAX_DIMS: Final = 8

# dtype name in the file → (torch dtype, little-endian numpy dtype of the stored bytes)
_DTYPES: Final[dict[str, tuple[torch.dtype, str]]] = {
    "float64": (torch.float64, "<f8"),
    "float32": (torch.float32, "<f4"),
    "float16": (torch.float16, "<f2"),
    "bfloat16": (torch.bfloat16, "<i2"),  # stored as its 16-bit pattern
    "int64": (torch.int64, "<i8"),
    "int32": (torch.int32, "<i4"),
    "int16": (torch.int16, "<i2"),
    "int8": (torch.int8, "i1"),
    "uint8": (torch.uint8, "u1"),
    "bool": (torch.bool, "u1"),  # one byte per element, 0 or 1
}
_NAME_OF: Final = {dtype: name for name, (dtype, _) in _DTYPES.items()}


class NoCheckpointError(ConfigError):
    """``--resume`` was asked for, but the checkpoint folder holds no checkpoint."""


class CheckpointMismatchError(ConfigError):
    """The checkpoint belongs to a different encode (other input, model or options)."""


# --------------------------------------------------------------------------- state


@dataclass
class TrainState:
    """What :func:`~nvcodec.training.train` needs to continue a run after ``epoch`` epochs."""

    epoch: int  # epochs completed (1-based count; the run continues with epoch + 1)
    epochs: int  # the run's length (a resume must have the same schedule)
    loss: float  # divergence reference: objective of the last accepted epoch (NaN after an undo)
    seconds: float  # training time spent so far
    model: dict[str, torch.Tensor]
    encoder: dict[str, torch.Tensor] | None  # training encoder of a hybrid model
    optimizer_state: dict[int, dict[str, Any]]  # param index → {key: tensor | int | float}
    optimizer_groups: list[dict[str, Any]]  # hyper-parameters per group ("params": indices)
    scheduler: dict[str, Any]  # LambdaLR state without its (unsaveable) lambdas
    generator: torch.Tensor  # frame-order torch.Generator state (uint8)
    rng: torch.Tensor  # global CPU torch RNG state (uint8)


@dataclass
class Checkpoint:
    """A saved point of an encode: the phase, its training state and the pipeline's data."""

    phase: str  # one of PHASES
    state: TrainState
    fingerprint: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)  # phase data (bits, prune ratio, ...)
    masks: dict[str, torch.Tensor] = field(default_factory=dict)  # module → keep-mask (bool)
    history: dict[str, Any] = field(default_factory=dict)  # finished phases' summaries


def _json_value(value: Any) -> bool:
    if value is None or isinstance(value, bool | int | str):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list | tuple):
        return all(_json_value(v) for v in value)
    return False


def _cpu(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu", copy=True)


def capture_train_state(
    epoch: int,
    epochs: int,
    loss: float | torch.Tensor,
    seconds: float,
    model: nn.Module,
    encoder: nn.Module | None,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    generator: torch.Generator,
) -> TrainState:
    """A copy (on the CPU) of everything a resumed :func:`train` needs after ``epoch`` epochs."""
    sd = optimizer.state_dict()
    state: dict[int, dict[str, Any]] = {}
    for index, values in sd["state"].items():
        entry: dict[str, Any] = {}
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                entry[key] = _cpu(value)
            elif isinstance(value, bool | int | float):
                entry[key] = value
            else:
                raise TypeError(f"optimizer state {key!r} of type {type(value).__name__}")
        state[int(index)] = entry
    groups = [
        {k: list(v) if isinstance(v, tuple) else v for k, v in g.items() if _json_value(v)}
        for g in sd["param_groups"]
    ]
    sched = {
        k: list(v) if isinstance(v, tuple) else v
        for k, v in scheduler.state_dict().items()
        if k != "lr_lambdas" and _json_value(v)
    }
    return TrainState(
        epoch=epoch,
        epochs=epochs,
        loss=float(loss),
        seconds=seconds,
        model={k: _cpu(v) for k, v in model.state_dict().items()},
        encoder=None if encoder is None else {k: _cpu(v) for k, v in encoder.state_dict().items()},
        optimizer_state=state,
        optimizer_groups=groups,
        scheduler=sched,
        generator=generator.get_state().clone(),
        rng=torch.get_rng_state().clone(),
    )


def _restore_error(what: str, exc: Exception) -> CheckpointMismatchError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return CheckpointMismatchError(f"checkpoint does not fit this encode's {what}: {first}")


def restore_train_state(
    state: TrainState,
    model: nn.Module,
    encoder: nn.Module | None,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    generator: torch.Generator,
) -> None:
    """Put a freshly built model/optimiser/scheduler/generator in the saved state, exactly."""
    try:
        model.load_state_dict(state.model)
    except (RuntimeError, KeyError) as exc:
        raise _restore_error("model", exc) from None
    if (encoder is None) != (state.encoder is None):
        raise CheckpointMismatchError(
            "checkpoint does not fit this encode's model: training encoder "
            f"{'missing' if state.encoder is None else 'unexpected'} in the checkpoint"
        )
    if encoder is not None and state.encoder is not None:
        try:
            encoder.load_state_dict(state.encoder)
        except (RuntimeError, KeyError) as exc:
            raise _restore_error("training encoder", exc) from None
    fresh = optimizer.state_dict()
    if len(fresh["param_groups"]) != len(state.optimizer_groups):
        raise CheckpointMismatchError(
            f"checkpoint has {len(state.optimizer_groups)} optimizer groups, this encode "
            f"{len(fresh['param_groups'])}"
        )
    groups = []
    for now, saved in zip(fresh["param_groups"], state.optimizer_groups, strict=True):
        if list(saved.get("params", [])) != list(now["params"]):
            raise CheckpointMismatchError("checkpoint's optimizer groups hold other parameters")
        merged = dict(now)
        for key, value in saved.items():
            if key != "params":
                merged[key] = tuple(value) if isinstance(now.get(key), tuple) else value
        groups.append(merged)
    try:
        optimizer.load_state_dict({"state": state.optimizer_state, "param_groups": groups})
    except (RuntimeError, ValueError, KeyError) as exc:
        raise _restore_error("optimizer", exc) from None
    sched = dict(state.scheduler)
    sched["lr_lambdas"] = [None] * len(optimizer.param_groups)
    scheduler.load_state_dict(sched)
    generator.set_state(state.generator)
    torch.set_rng_state(state.rng)


# --------------------------------------------------------------------------- file format


def _tensor_bytes(t: torch.Tensor) -> tuple[str, bytes]:
    t = t.detach().cpu().contiguous()
    name = _NAME_OF.get(t.dtype)
    if name is None:
        raise TypeError(f"cannot checkpoint a tensor of dtype {t.dtype}")
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    if t.dtype == torch.bool:
        t = t.to(torch.uint8)
    array = t.numpy()
    return name, array.astype(np.dtype(_DTYPES[name][1]), copy=False).tobytes()


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _unfinite(x: Any, default: float = math.nan) -> float:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else default


def _sections(ckpt: Checkpoint) -> list[Section]:
    s = ckpt.state
    tensors: list[tuple[str, torch.Tensor]] = [(f"model/{k}", v) for k, v in s.model.items()]
    if s.encoder is not None:
        tensors += [(f"encoder/{k}", v) for k, v in s.encoder.items()]
    scalars: dict[str, dict[str, Any]] = {}
    for index, values in s.optimizer_state.items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors.append((f"optimizer/{index}/{key}", value))
            else:
                scalars.setdefault(str(index), {})[key] = value
    tensors += [("generator", s.generator), ("rng", s.rng)]
    tensors += [(f"mask/{k}", v.bool()) for k, v in ckpt.masks.items()]
    table, blobs, offset = [], [], 0
    for name, tensor in tensors:
        dtype, raw = _tensor_bytes(tensor)
        table.append(
            {
                "name": name,
                "dtype": dtype,
                "shape": list(tensor.shape),
                "offset": offset,
                "nbytes": len(raw),
            }
        )
        blobs.append(raw)
        offset += len(raw)
    meta = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "phase": ckpt.phase,
        "epoch": s.epoch,
        "epochs": s.epochs,
        "loss": _finite(s.loss),
        "seconds": s.seconds,
        "encoder": s.encoder is not None,
        "optimizer": {"groups": s.optimizer_groups, "scalars": scalars},
        "scheduler": s.scheduler,
        "data": ckpt.data,
        "history": ckpt.history,
        "fingerprint": ckpt.fingerprint,
        "tensors": table,
    }
    return [
        Section(SectionType.METADATA, encode_metadata(meta)),
        Section(SectionType.TENSOR_DATA, b"".join(blobs)),
    ]


def save_checkpoint(path: str | os.PathLike[str], ckpt: Checkpoint) -> int:
    """Write ``ckpt`` to ``path`` atomically (temporary file + rename); return its size."""
    if ckpt.phase not in PHASES:
        raise ValueError(f"unknown phase {ckpt.phase!r}")
    return write_file(path, _sections(ckpt))


def _get(meta: Mapping[str, Any], key: str, kind: type | tuple[type, ...], name: str) -> Any:
    value = meta.get(key)
    bad_bool = isinstance(value, bool) and kind in (int, float, (int, float))
    if not isinstance(value, kind) or bad_bool:
        raise MalformedFileError(f"{name}: checkpoint field {key!r} is missing or has a bad type")
    return value


def _read_tensors(meta: Mapping[str, Any], blob: bytes, name: str) -> dict[str, torch.Tensor]:
    table = _get(meta, "tensors", list, name)
    if len(table) > MAX_TENSORS:
        raise MalformedFileError(f"{name}: {len(table)} tensors, more than {MAX_TENSORS}")
    out: dict[str, torch.Tensor] = {}
    expected = 0
    for i, entry in enumerate(table):
        where = f"{name}: tensor {i}"
        if not isinstance(entry, dict):
            raise MalformedFileError(f"{where}: entry is not an object")
        tname = _get(entry, "name", str, where)
        dtype = _get(entry, "dtype", str, where)
        shape = _get(entry, "shape", list, where)
        offset = _get(entry, "offset", int, where)
        nbytes = _get(entry, "nbytes", int, where)
        if not tname or len(tname) > MAX_NAME_CHARS or tname in out:
            raise MalformedFileError(f"{where}: empty, too long or duplicate name")
        if dtype not in _DTYPES:
            raise MalformedFileError(f"{where} ({tname}): unknown dtype {dtype!r}")
        if len(shape) > MAX_DIMS or any(
            isinstance(d, bool) or not isinstance(d, int) or d < 0 for d in shape
        ):
            raise MalformedFileError(f"{where} ({tname}): bad shape {shape!r}")
        torch_dtype, np_dtype = _DTYPES[dtype]
        itemsize = np.dtype(np_dtype).itemsize
        numel = math.prod(shape)
        if numel * itemsize != nbytes:
            raise MalformedFileError(
                f"{where} ({tname}): {nbytes} bytes do not hold shape {shape} of {dtype}"
            )
        if offset != expected:
            raise MalformedFileError(
                f"{where} ({tname}): starts at byte {offset}, expected {expected}"
            )
        if offset + nbytes > len(blob):
            raise MalformedFileError(
                f"{where} ({tname}): ends at byte {offset + nbytes}, TENSOR_DATA has {len(blob)}"
            )
        expected = offset + nbytes
        array = np.frombuffer(blob, dtype=np.dtype(np_dtype), count=numel, offset=offset)
        if dtype == "bool" and bool((array > 1).any()):
            raise MalformedFileError(f"{where} ({tname}): bool values other than 0 and 1")
        tensor = torch.from_numpy(array.astype(array.dtype.newbyteorder("="), copy=True))
        if dtype == "bool":
            tensor = tensor.to(torch.bool)
        elif dtype == "bfloat16":
            tensor = tensor.view(torch.bfloat16)
        out[tname] = tensor.reshape(shape).to(torch_dtype)
    if expected != len(blob):
        raise MalformedFileError(
            f"{name}: {len(blob) - expected} bytes of TENSOR_DATA are not in the tensor table"
        )
    return out


def _split(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read and verify a checkpoint; damage raises a :class:`bitstream.NvcError` naming the file."""
    name = os.fspath(path)
    container = read_file(name)
    meta = decode_metadata(container.get(SectionType.METADATA).data, name=name)
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise MalformedFileError(f"{name}: not an nvcodec checkpoint")
    if meta.get("version") != CHECKPOINT_VERSION:
        raise MalformedFileError(
            f"{name}: checkpoint version {meta.get('version')!r}, this nvcodec reads "
            f"{CHECKPOINT_VERSION} (finish the encode with the nvcodec that started it)"
        )
    phase = _get(meta, "phase", str, name)
    if phase not in PHASES:
        raise MalformedFileError(f"{name}: unknown phase {phase!r}")
    epoch = _get(meta, "epoch", int, name)
    epochs = _get(meta, "epochs", int, name)
    if not 0 <= epoch <= epochs:
        raise MalformedFileError(f"{name}: epoch {epoch} outside 0..{epochs}")
    optim = _get(meta, "optimizer", dict, name)
    groups = _get(optim, "groups", list, name)
    scalars = _get(optim, "scalars", dict, name)
    if not all(isinstance(g, dict) for g in groups):
        raise MalformedFileError(f"{name}: optimizer groups must be objects")
    tensors = _read_tensors(meta, container.get(SectionType.TENSOR_DATA).data, name)
    for key in ("generator", "rng"):
        if key not in tensors or tensors[key].dtype != torch.uint8:
            raise MalformedFileError(f"{name}: no uint8 {key} state")
    opt_state: dict[int, dict[str, Any]] = {}
    for key, tensor in _split(tensors, "optimizer/").items():
        index, _, field_name = key.partition("/")
        if not index.isdigit() or not field_name:
            raise MalformedFileError(f"{name}: bad optimizer tensor name {key!r}")
        opt_state.setdefault(int(index), {})[field_name] = tensor
    for index, values in scalars.items():
        if not index.isdigit() or not isinstance(values, dict):
            raise MalformedFileError(f"{name}: bad optimizer scalars for {index!r}")
        for key, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise MalformedFileError(f"{name}: optimizer scalar {index}/{key} is not a number")
            opt_state.setdefault(int(index), {})[key] = value
    has_encoder = _get(meta, "encoder", bool, name)
    state = TrainState(
        epoch=epoch,
        epochs=epochs,
        loss=_unfinite(meta.get("loss")),
        seconds=_unfinite(meta.get("seconds"), 0.0),
        model=_split(tensors, "model/"),
        encoder=_split(tensors, "encoder/") if has_encoder else None,
        optimizer_state=opt_state,
        optimizer_groups=groups,
        scheduler=_get(meta, "scheduler", dict, name),
        generator=tensors["generator"],
        rng=tensors["rng"],
    )
    return Checkpoint(
        phase=phase,
        state=state,
        fingerprint=_get(meta, "fingerprint", dict, name),
        data=_get(meta, "data", dict, name),
        masks=_split(tensors, "mask/"),
        history=_get(meta, "history", dict, name),
    )


# --------------------------------------------------------------------------- fingerprints


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: list(value) if isinstance(value, tuple) else value}


def compare_fingerprints(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Human-readable differences (``"options.epochs: 40 in the checkpoint, 30 now"``).

    Keys under ``info`` (e.g. the input's path) are informational and never compared.
    """
    a = {k: v for k, v in _flatten(saved).items() if not k.startswith("info.")}
    b = {k: v for k, v in _flatten(current).items() if not k.startswith("info.")}
    diffs = []
    for key in sorted(a.keys() | b.keys()):
        if key not in a:
            diffs.append(f"{key}: not in the checkpoint, {b[key]!r} now")
        elif key not in b:
            diffs.append(f"{key}: {a[key]!r} in the checkpoint, not set now")
        elif a[key] != b[key]:
            old, new = a[key], b[key]
            if key.endswith("sha256"):
                old, new = f"{str(old)[:12]}…", f"{str(new)[:12]}…"
            diffs.append(f"{key}: {old!r} in the checkpoint, {new!r} now")
    return diffs


# --------------------------------------------------------------------------- checkpointer

Capture = Callable[[], TrainState]
Hook = Callable[[int, int, Capture], None]


class Checkpointer:
    """Saves an encode's progress into ``directory`` and finds it again on resume.

    Training calls the hook from :meth:`hook` after every epoch; a checkpoint is written when
    ``every_epochs`` epochs have passed, or ``every_seconds`` of wall time since the last one,
    and always at the end of a phase. Only the latest checkpoint is kept: each one atomically
    replaces ``directory/checkpoint.nvck``, so a kill at any instant leaves the previous one
    intact (and at worst a stale temporary file, removed by the next save).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        fingerprint: Mapping[str, Any],
        *,
        every_epochs: int | None = None,
        every_seconds: float | None = DEFAULT_EVERY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.directory = os.fspath(directory)
        self.path = os.path.join(self.directory, CHECKPOINT_NAME)
        self.fingerprint = dict(fingerprint)
        self.every_epochs = every_epochs
        self.every_seconds = every_seconds
        self.history: dict[str, Any] = {}
        self.saves = 0
        self._clock = clock
        self._last = clock()

    def exists(self) -> bool:
        return os.path.isfile(self.path)

    def load(self) -> Checkpoint:
        """The saved checkpoint, checked against this encode's fingerprint."""
        if not self.exists():
            raise NoCheckpointError(
                f"{self.directory}: no checkpoint to resume from ({CHECKPOINT_NAME} is missing)"
            )
        ckpt = load_checkpoint(self.path)
        diffs = compare_fingerprints(ckpt.fingerprint, self.fingerprint)
        if diffs:
            shown = "; ".join(diffs[:4]) + (
                f"; and {len(diffs) - 4} more" if len(diffs) > 4 else ""
            )
            raise CheckpointMismatchError(
                f"{self.path} belongs to a different encode ({shown}); resume with the same "
                "input and options, or use another --checkpoint-dir"
            )
        self.history = dict(ckpt.history)
        return ckpt

    def save(
        self,
        phase: str,
        state: TrainState,
        data: Mapping[str, Any] | None = None,
        masks: Mapping[str, torch.Tensor] | None = None,
    ) -> int:
        self._remove_stale()
        size = save_checkpoint(
            self.path,
            Checkpoint(
                phase=phase,
                state=state,
                fingerprint=self.fingerprint,
                data=dict(data or {}),
                masks=dict(masks or {}),
                history=self.history,
            ),
        )
        self.saves += 1
        self._last = self._clock()
        return size

    def hook(
        self,
        phase: str,
        data: Mapping[str, Any] | None = None,
        masks: Mapping[str, torch.Tensor] | None = None,
    ) -> Hook:
        """The per-epoch callback :func:`~nvcodec.training.train` takes as ``checkpoint``."""
        self._last = self._clock()

        def on_epoch(epoch: int, epochs: int, capture: Capture) -> None:
            due = epoch == epochs
            if self.every_epochs is not None and epoch % self.every_epochs == 0:
                due = True
            if self.every_seconds is not None and self._clock() - self._last >= self.every_seconds:
                due = True
            if due:
                self.save(phase, capture(), data, masks)

        return on_epoch

    def remove(self) -> None:
        """Delete the checkpoint (after a successful encode) and any stale temporary file."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self._remove_stale()

    def _remove_stale(self) -> None:
        pattern = os.path.join(glob.escape(self.directory), f".{CHECKPOINT_NAME}.*.tmp")
        for stale in glob.glob(pattern):
            with contextlib.suppress(OSError):
                os.unlink(stale)
