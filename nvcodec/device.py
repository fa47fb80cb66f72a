"""Choosing the compute device (``auto`` means CUDA when present, else CPU), and the precision
decoding runs at on it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from nvcodec.errors import ConfigError

__all__ = ["bf16_autocast", "full_fp32", "resolve_device"]


@contextlib.contextmanager
def full_fp32() -> Iterator[None]:
    """IEEE fp32 convolutions and matmuls, deterministic cuDNN algorithms, for the duration.

    torch 2.13 lets cuDNN convolutions use TF32 (10-bit mantissa) by default on Ampere and later,
    so a GPU decode could differ from a CPU decode far beyond rounding, and cuDNN's benchmark
    mode could pick different algorithms from run to run. Decoding sets IEEE precision per call
    (a caller's own settings are restored after, never changed at import) and uses the new
    ``fp32_precision`` API only: mixing it with the legacy ``allow_tf32`` flags is an error. On
    the CPU nothing changes.
    """
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    saved = (cudnn.conv.fp32_precision, matmul.fp32_precision, cudnn.deterministic, cudnn.benchmark)
    cudnn.conv.fp32_precision = "ieee"
    matmul.fp32_precision = "ieee"
    cudnn.deterministic, cudnn.benchmark = True, False
    try:
        yield
    finally:
        cudnn.conv.fp32_precision, matmul.fp32_precision = saved[0], saved[1]
        cudnn.deterministic, cudnn.benchmark = saved[2], saved[3]


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


def bf16_autocast(device: torch.device) -> bool:
    """Whether training on ``device`` gains from bf16 autocast: on CUDA, and on CPUs with matrix
    units for bf16 (Intel AMX), where oneDNN runs bf16 convolutions on the AMX tiles (training
    steps 1.25–2.5× as fast for the convolution-heavy models, ``benchmarks/results/precision``).
    Elsewhere bf16 on the CPU is emulated and slower, so training stays fp32. Decoding never
    autocasts."""
    if device.type == "cuda":
        return True
    if device.type != "cpu":
        return False
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)  # private in torch 2.13
    return bool(probe is not None and probe())
