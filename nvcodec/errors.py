"""The nvcodec error hierarchy.

Every error a user can cause (a bad path, an unreadable video, a broken ``.nvc`` file) is an
:class:`NvcodecError` whose message is one readable line naming the file and what is wrong. The CLI
turns these into ``Error: ...`` on stderr and a non-zero exit; anything else is a bug.

Like PyAV's errors, each one also inherits the matching builtin so callers can catch either.
Errors from the container layer (:mod:`bitstream`) are separate (``bitstream.NvcError``) because
``bitstream`` must not import nvcodec; the public API lets them through unchanged.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "InputError",
    "NvcodecError",
    "OutputError",
    "TrainingDivergedError",
    "UnsupportedModelError",
]


class NvcodecError(Exception):
    """Base class of every error nvcodec raises on purpose."""


class InputError(NvcodecError, ValueError):
    """The input video cannot be used: missing, not a video, no frames, bad frame range."""


class OutputError(NvcodecError, OSError):
    """The output cannot be written: missing folder, exists without overwrite, bad pattern."""


class ConfigError(NvcodecError, ValueError):
    """An option or a stored configuration is out of range or inconsistent."""


class UnsupportedModelError(ConfigError):
    """A model id that this build of nvcodec does not know."""


class TrainingDivergedError(NvcodecError, ArithmeticError):
    """Training produced non-finite weights: nothing sensible can be written."""
