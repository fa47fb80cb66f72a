"""Reading and atomically writing ``.nvc`` files.

Reading checks the size on disk against :data:`MAX_FILE_BYTES` before reading a byte, so a huge
or endless input (a device, a sparse file) cannot exhaust memory. Writing goes to a temporary file
in the destination folder that is fsynced and then moved into place with :func:`os.replace`, so a
reader sees either the old file or the complete new one, never a half-written file; the temporary
file is removed on any failure. An existing character device or FIFO (``/dev/null``, a named pipe)
is written into, never replaced by a regular file.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Sequence

from .container import MAX_FILE_BYTES, Container, Section, pack, unpack
from .errors import (
    MalformedFileError,
    NvcError,
    NvcFileExistsError,
    NvcFileNotFoundError,
    NvcIOError,
    NvcIsADirectoryError,
)

__all__ = ["read_file", "write_file"]


def _is_stream(name: str) -> bool:
    try:
        mode = os.stat(name).st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


def _write_into(name: str, blob: bytes) -> int:
    """Write ``blob`` into an existing device or FIFO (not atomic: there is nothing to replace)."""
    try:
        with open(name, "wb") as f:
            f.write(blob)
    except OSError as exc:
        raise NvcIOError(f"{name}: cannot write ({_describe(exc)})") from None
    return len(blob)


def _describe(exc: OSError) -> str:
    return exc.strerror or str(exc)


def read_file(path: str | os.PathLike[str]) -> Container:
    """Read and verify an ``.nvc`` file; every failure is an :class:`~bitstream.NvcError`."""
    name = os.fspath(path)
    try:
        st = os.stat(name)
    except FileNotFoundError:
        raise NvcFileNotFoundError(f"{name}: no such file") from None
    except OSError as exc:
        raise NvcIOError(f"{name}: cannot read ({_describe(exc)})") from None
    if stat.S_ISDIR(st.st_mode):
        raise NvcIsADirectoryError(f"{name}: is a directory, not an .nvc file")
    if not stat.S_ISREG(st.st_mode):
        raise NvcIOError(f"{name}: not a regular file")
    if st.st_size > MAX_FILE_BYTES:
        raise MalformedFileError(
            f"{name}: file is {st.st_size} bytes, more than the limit {MAX_FILE_BYTES}"
        )
    try:
        with open(name, "rb") as f:
            # bounded even if the file grows between stat() and read()
            data = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise NvcFileNotFoundError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise NvcIsADirectoryError(f"{name}: is a directory, not an .nvc file") from None
    except OSError as exc:
        raise NvcIOError(f"{name}: cannot read ({_describe(exc)})") from None
    return unpack(data, name=name)


def _default_mode() -> int:
    """``0o666`` minus the umask: what a plain ``open(path, "w")`` would have produced."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _fsync_dir(directory: str) -> None:
    """Persist the rename itself (best effort; not possible on every platform)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def write_file(
    path: str | os.PathLike[str],
    sections: Sequence[Section],
    *,
    reader_version: tuple[int, int] = (1, 0),
    overwrite: bool = True,
) -> int:
    """Pack ``sections`` and write them to ``path`` atomically; return the bytes written.

    The sections are validated (by :func:`pack`) before the file system is touched. With
    ``overwrite=False`` an existing path raises :class:`~bitstream.NvcFileExistsError`; the final
    step then uses a hard link, which fails atomically if the path appeared in the meantime
    (falling back to check-then-rename where hard links are unsupported).
    """
    blob = pack(sections, reader_version=reader_version)
    name = os.fspath(path)
    if _is_stream(name):
        return _write_into(name, blob)
    directory = os.path.dirname(os.path.abspath(name))
    if not os.path.isdir(directory):
        raise NvcFileNotFoundError(f"{name}: cannot write: folder {directory} does not exist")
    if os.path.isdir(name):
        raise NvcIsADirectoryError(f"{name}: is a directory, cannot write an .nvc file there")
    if not overwrite and os.path.lexists(name):
        raise NvcFileExistsError(f"{name}: already exists (overwrite not allowed)")

    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(
            dir=directory, prefix=f".{os.path.basename(name)}.", suffix=".tmp"
        )
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _default_mode())
        if overwrite:
            os.replace(tmp, name)
        else:
            try:
                os.link(tmp, name)
            except FileExistsError:
                raise NvcFileExistsError(
                    f"{name}: already exists (overwrite not allowed)"
                ) from None
            except OSError:  # no hard links here (e.g. FAT, some network file systems)
                if os.path.lexists(name):
                    raise NvcFileExistsError(
                        f"{name}: already exists (overwrite not allowed)"
                    ) from None
                os.replace(tmp, name)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        tmp = None
    except NvcError:
        raise
    except IsADirectoryError:
        raise NvcIsADirectoryError(
            f"{name}: is a directory, cannot write an .nvc file there"
        ) from None
    except FileNotFoundError:
        raise NvcFileNotFoundError(
            f"{name}: cannot write: folder {directory} does not exist"
        ) from None
    except OSError as exc:
        raise NvcIOError(f"{name}: cannot write ({_describe(exc)})") from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    _fsync_dir(directory)
    return len(blob)
