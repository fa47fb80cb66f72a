"""The errors the ``.nvc`` container layer raises.

``.nvc`` files are untrusted input, so every way a file can be wrong maps to one specific class
whose message is a single readable line naming the file and stating expected vs. actual. Callers
(the CLI, the decoder) can catch :class:`NvcError` for "this file is unusable" and let anything
else surface as a bug. Each class also inherits the matching builtin (``ValueError`` for bad
content, the ``OSError`` family for file-system problems) so generic handlers keep working.

Note on the ``OSError`` subclasses: ``OSError`` only builds its ``[Errno N] ...`` text when it is
given ``(errno, strerror[, filename])``. These classes are always constructed with exactly one
argument, the finished message, so ``str(err)`` is that message (a test pins this).
"""

from __future__ import annotations

__all__ = [
    "ChecksumError",
    "MalformedFileError",
    "MissingSectionError",
    "NotAnNvcFileError",
    "NvcError",
    "NvcFileExistsError",
    "NvcFileNotFoundError",
    "NvcIOError",
    "NvcIsADirectoryError",
    "TruncatedFileError",
    "UnknownSectionError",
    "UnsupportedVersionError",
]


class NvcError(Exception):
    """Base class of every error the container layer raises on purpose."""


class NvcFileNotFoundError(NvcError, FileNotFoundError):
    """The file to read, or the folder to write into, does not exist."""


class NvcFileExistsError(NvcError, FileExistsError):
    """The output exists and the caller asked not to overwrite it."""


class NvcIsADirectoryError(NvcError, IsADirectoryError):
    """The path names a directory where a file was expected."""


class NvcIOError(NvcError, OSError):
    """Any other file-system failure (permissions, not a regular file, disk full)."""


class NotAnNvcFileError(NvcError, ValueError):
    """The magic bytes are wrong: this is not an ``.nvc`` file at all."""


class TruncatedFileError(NvcError, ValueError):
    """The file ends before the structure it declares (an interrupted copy or download)."""


class ChecksumError(NvcError, ValueError):
    """A CRC-32 does not match: the bytes were corrupted after writing."""


class UnsupportedVersionError(NvcError, ValueError):
    """The file needs a newer reader than this one."""


class MalformedFileError(NvcError, ValueError):
    """The structure is inconsistent or exceeds a limit (bounds, tiling, reserved bits)."""


class UnknownSectionError(NvcError, ValueError):
    """A section this reader does not know is marked critical, so decoding cannot be trusted."""


class MissingSectionError(NvcError, ValueError):
    """A section the caller needs is absent."""
