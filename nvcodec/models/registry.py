"""One registry of model variants, keyed by stable string ids stored in ``.nvc`` files.

Ids are part of the file format: never rename or reuse one. A variant registers its module class
together with its config class and a *sizing rule* (``(frame geometry, width) → config``) so that
``--size`` can be solved the same way for every model (see :mod:`nvcodec.models.budget`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from nvcodec.errors import UnsupportedModelError
from nvcodec.models.config import ModelConfig

__all__ = [
    "ModelSpec",
    "build_model",
    "config_from_dict",
    "get_spec",
    "model_ids",
    "register_model",
]

SizingRule = Callable[[int, int, int, int], ModelConfig]
"""``(height, width, frame_count, width_knob) -> config``; larger knob → more parameters."""
ConfigCheck = Callable[[ModelConfig], None]
"""Raises :class:`~nvcodec.errors.ConfigError` for a config that is not this id's variant."""


@dataclass(frozen=True)
class ModelSpec:
    model_id: str
    module: type[nn.Module]
    config: type[ModelConfig]
    sizing: SizingRule
    summary: str
    check: ConfigCheck | None = None
    """For ids that share a config class: what makes a config this variant (a file's id and
    config must agree, or a ``ds-nerv-static`` file could decode as full DS-NeRV)."""
    recipe: Mapping[str, Any] = field(default_factory=dict)
    """This id's changes to its module's ``TRAINING_DEFAULTS`` (ids sharing a module can differ,
    e.g. ``hinerv`` trains in fp32 on CPUs and ``hinerv-flat`` in bf16)."""


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(
    model_id: str,
    config: type[ModelConfig],
    sizing: SizingRule,
    summary: str,
    check: ConfigCheck | None = None,
    recipe: Mapping[str, Any] | None = None,
) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: ``@register_model("nerv", NeRVConfig, sizing, "...")``."""

    def wrap(module: type[nn.Module]) -> type[nn.Module]:
        if model_id in _REGISTRY:
            raise ValueError(f"model id {model_id!r} registered twice")
        _REGISTRY[model_id] = ModelSpec(
            model_id, module, config, sizing, summary, check, MappingProxyType(dict(recipe or {}))
        )
        return module

    return wrap


def _ensure_loaded() -> None:
    # Importing the variants registers them; done lazily so importing the registry is cheap.
    from nvcodec.models import dnerv, dsnerv, hinerv, hnerv, nerv, nervpp  # noqa: F401


def model_ids() -> list[str]:
    _ensure_loaded()
    return sorted(_REGISTRY)


def get_spec(model_id: str) -> ModelSpec:
    _ensure_loaded()
    try:
        return _REGISTRY[model_id]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise UnsupportedModelError(f"unknown model {model_id!r} (known: {known})") from None


def training_defaults(model_id: str) -> dict[str, Any]:
    """The model's own training recipe (optimizer, lr, betas, weight decay, warm-up, ...): its
    module's ``TRAINING_DEFAULTS`` with the id's own changes."""
    spec = get_spec(model_id)
    return {**getattr(spec.module, "TRAINING_DEFAULTS", {}), **spec.recipe}


def config_from_dict(model_id: str, data: Mapping[str, Any]) -> ModelConfig:
    """The config of a ``model_id`` file, validated, and checked to be that id's variant."""
    spec = get_spec(model_id)
    config = spec.config.from_dict(data)
    if spec.check is not None:
        spec.check(config)
    return config


def build_model(config: ModelConfig, device: torch.device | str | None = None) -> nn.Module:
    """Instantiate the module for ``config`` (on ``device``; ``"meta"`` allocates nothing)."""
    spec = get_spec(config.MODEL_ID)
    if not isinstance(config, spec.config):
        raise TypeError(f"{type(config).__name__} is not a {spec.config.__name__}")
    with torch.device(device or "cpu"):
        return spec.module(config)
