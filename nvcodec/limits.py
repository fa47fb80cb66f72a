"""What decoding a file may cost, checked before anything is allocated.

A ``.nvc`` file is untrusted: a 1 kB file can declare a model of 200M constant-coded parameters,
a 4096×4096 frame, a million frames or a frame rate that turns ``--fps 24`` into hundreds of
millions of positions. Every such cost follows from the validated header alone, so the decoder
(and ``nvc info``) computes it first and refuses, in one line, what exceeds a limit:

* memory: about :data:`BYTES_PER_PARAMETER` per parameter (the entropy-decoded integers, the
  dequantised tensor and the model's copy) plus :data:`BYTES_PER_ACTIVATION` per element of the
  largest activation of one frame (a few live tensors of that size), against ``max_memory``
  (``--max-memory``; by default 80 % of the machine's physical memory);
* output positions: at most :data:`MAX_OUTPUT_FRAMES` frames per decode, counted before the list
  of positions is built;
* disk: a Y4M file's size is known in advance and must fit in the free space of its folder.

The limits bound work per call, not per file: a long legitimate clip decodes in ranges.
"""

from __future__ import annotations

import os
import re
import shutil

from nvcodec.errors import ConfigError, NvcodecError

__all__ = [
    "BYTES_PER_ACTIVATION",
    "BYTES_PER_PARAMETER",
    "MAX_OUTPUT_FRAMES",
    "LimitError",
    "check_disk",
    "check_memory",
    "check_output_frames",
    "default_max_memory",
    "memory_needed",
    "parse_bytes",
]

BYTES_PER_PARAMETER = 16
"""Decoded integers (int64), the float32 tensor and the model's float32 parameter."""
BYTES_PER_ACTIVATION = 16
"""Four float32 tensors of the largest activation alive at once (input, output, two temporaries)."""
MAX_OUTPUT_FRAMES = 1_000_000
"""Most frames one decode call renders (the largest clip a file may declare)."""
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


class LimitError(NvcodecError, MemoryError):
    """Decoding this would exceed a resource limit (memory, output frames, disk space)."""


def default_max_memory() -> int:
    """80 % of the machine's physical memory (4 GiB where the platform does not say)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 4 << 30
    return int(total * 0.8)


def parse_bytes(text: str) -> int:
    """``"4G"``, ``"512M"``, ``"1.5G"``, ``"2000000"`` → bytes (binary units)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)I?B?\s*", text.upper())
    if match is None:
        raise ConfigError(f"memory {text!r}: expected a size like 4G or 512M")
    value = float(match.group(1)) * _UNITS[match.group(2)]
    if not 1 << 20 <= value <= 1 << 50:
        raise ConfigError(f"memory {text!r}: must be between 1M and 1024T")
    return int(value)


def memory_needed(parameters: int, activation_elements: int) -> int:
    """Bytes decoding needs at one frame per batch (see the module docstring)."""
    return BYTES_PER_PARAMETER * parameters + BYTES_PER_ACTIVATION * activation_elements


def _gib(n: float) -> str:
    return f"{n / (1 << 30):.1f} GiB"


def check_memory(
    name: str, parameters: int, activation_elements: int, max_memory: int | None
) -> int:
    """The memory limit in force; :class:`LimitError` if the file needs more."""
    limit = max_memory if max_memory is not None else default_max_memory()
    need = memory_needed(parameters, activation_elements)
    if need > limit:
        raise LimitError(
            f"{name}: decoding needs about {_gib(need)} ({parameters:,} parameters, "
            f"{activation_elements:,} values in the largest activation of a frame), more than "
            f"the limit of {_gib(limit)}; raise it with --max-memory if the machine has it"
        )
    return limit


def check_output_frames(count: int, name: str) -> None:
    if count > MAX_OUTPUT_FRAMES:
        raise LimitError(
            f"{name}: this decode would render {count:,} frames, more than "
            f"{MAX_OUTPUT_FRAMES:,}; decode a range (--frames) or a lower --fps"
        )


def check_disk(output: str, needed: int) -> None:
    """:class:`LimitError` if ``needed`` bytes do not fit in ``output``'s folder."""
    folder = os.path.dirname(os.path.abspath(output))
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return  # unknown: let the write itself fail if it must
    if needed > free:
        raise LimitError(
            f"{output}: the output needs {_gib(needed)}, and its folder has {_gib(free)} free"
        )
