"""Frozen model configurations that round-trip through the ``.nvc`` metadata.

A config is the *only* thing the decoder knows about the network, so it must rebuild the model
exactly and it must be validated like any other untrusted input: :meth:`ModelConfig.from_dict`
checks the key set, every type and every bound before a single tensor is allocated. Bounds live
next to the fields (``field(metadata=bounds(lo, hi))``) so adding a field cannot forget them.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Mapping
from typing import Any, ClassVar, Self

from nvcodec.errors import ConfigError

__all__ = ["MAX_FRAMES", "MAX_SIDE", "ModelConfig", "added_later", "bounds"]

MAX_SIDE = 8192
"""Largest frame width or height a model may declare."""
MAX_FRAMES = 1_000_000
"""Largest frame count a model may declare."""


def bounds(lo: float, hi: float, *, max_len: int = 0) -> dict[str, Any]:
    """Field metadata: inclusive numeric bounds (per element for tuples, which have ``max_len``)."""
    return {"lo": lo, "hi": hi, "max_len": max_len}


def added_later(**metadata: Any) -> dict[str, Any]:
    """Metadata of a field added after files were written: it may be missing from a stored
    config, and its default must reproduce what files without it meant."""
    return {**metadata, "optional": True}


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Base of every model config: geometry shared by all models plus strict (de)serialisation."""

    MODEL_ID: ClassVar[str] = ""

    height: int = dataclasses.field(default=0, metadata=bounds(1, MAX_SIDE))
    width: int = dataclasses.field(default=0, metadata=bounds(1, MAX_SIDE))
    frame_count: int = dataclasses.field(default=1, metadata=bounds(1, MAX_FRAMES))

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every field's type and bounds; subclasses add cross-field checks."""
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            kind = hints[f.name]
            lo, hi = f.metadata.get("lo"), f.metadata.get("hi")
            if kind is int or kind is float:
                _check_number(f.name, value, kind, lo, hi)
            elif kind is str:
                choices = f.metadata.get("choices", ())
                if not isinstance(value, str) or (choices and value not in choices):
                    raise ConfigError(f"config field {f.name!r}: {value!r} is not one of {choices}")
            elif typing.get_origin(kind) is tuple:
                (elem,) = {a for a in typing.get_args(kind) if a is not Ellipsis}
                max_len = f.metadata.get("max_len", 0)
                if not isinstance(value, tuple) or not 0 < len(value) <= max_len:
                    raise ConfigError(
                        f"config field {f.name!r}: expected 1..{max_len} values, got {value!r}"
                    )
                for v in value:
                    _check_number(f.name, v, elem, lo, hi)
            else:  # pragma: no cover - a programming error in a config class
                raise TypeError(f"unsupported config field type {kind!r}")

    def check_output_grid(self, out_h: int, out_w: int) -> None:
        """The decoder's output grid (before the crop) must cover the frame without padding it
        more than 2× (+16): shared by every model whose strides come from a stored plan."""
        if out_h < self.height or out_w < self.width:
            raise ConfigError(f"{self.MODEL_ID} config: the stride plan does not cover the frame")
        if out_h > 2 * self.height + 16 or out_w > 2 * self.width + 16:
            raise ConfigError(
                f"{self.MODEL_ID} config: the stride plan pads the frame more than 2×"
            )

    def activation_elements(self) -> int:
        """Elements of the largest activation tensor for one frame (bounds decode memory).

        The decoder refuses configs whose per-frame activations exceed its limit *before*
        building the model, and sizes its frame batches from this number.
        """
        return 3 * self.height * self.width

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists). A field added later is left out while it holds
        its default, which means what files without it meant: such files stay readable by the
        readers that came before the field (e.g. a plain ``ds-nerv`` file without ``local_dim``)."""
        return {
            f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
            for f in dataclasses.fields(self)
            if not (f.metadata.get("optional") and getattr(self, f.name) == f.default)
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Rebuild from :meth:`to_dict` output, refusing unknown, missing or out-of-range fields."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{cls.MODEL_ID} config must be an object, got {type(data).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        names = set(fields)
        missing = sorted(n for n in names - set(data) if not fields[n].metadata.get("optional"))
        extra = sorted(set(data) - names)
        if extra or missing:
            raise ConfigError(f"{cls.MODEL_ID} config: unknown fields {extra}, missing {missing}")
        names &= set(data)
        hints = typing.get_type_hints(cls)
        values = {}
        for name in names:
            value = data[name]
            if typing.get_origin(hints[name]) is tuple:
                if not isinstance(value, list):
                    raise ConfigError(f"config field {name!r}: expected a list, got {value!r}")
                value = tuple(value)
            values[name] = value
        return cls(**values)


def _check_number(name: str, value: object, kind: object, lo: float, hi: float) -> None:
    # bool is an int subclass; a float field accepts ints that JSON wrote without a point.
    ok = (
        isinstance(value, int) and not isinstance(value, bool)
        if kind is int
        else isinstance(value, int | float) and not isinstance(value, bool)
    )
    # Bounds first: a huge JSON int would overflow math.isfinite; NaN fails the comparison.
    if not ok or not lo <= value <= hi or not math.isfinite(value):  # type: ignore[operator]
        raise ConfigError(
            f"config field {name!r}: {value!r} is not a {kind.__name__} in [{lo}, {hi}]"
        )  # type: ignore[attr-defined]
