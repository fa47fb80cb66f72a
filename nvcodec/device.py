"""Choosing the compute device: ``auto`` means CUDA when present, else CPU."""

from __future__ import annotations

import torch

from nvcodec.errors import ConfigError

__all__ = ["resolve_device"]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} requested but CUDA is not available here")
        return torch.device(name)
    raise ConfigError(f"device {name!r}: expected auto, cpu or cuda[:N]")
