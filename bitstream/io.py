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
from collections.abc import Iterator, Sequence

from .container import (
    MAX_FILE_BYTES,
    MAX_HEADER_BYTES,
    Container,
    Header,
    Section,
    SectionEntry,
    SectionType,
    check_section,
    pack,
    parse_header,
    unpack,
)
from .errors import (
    MalformedFileError,
    NvcError,
    NvcFileExistsError,
    NvcFileNotFoundError,
    NvcIOError,
    NvcIsADirectoryError,
)

__all__ = ["SectionFile", "open_file", "read_file", "write_file"]


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


def _stat_regular(name: str) -> int:
    """The size of ``name`` after the checks every reader makes before reading a byte."""
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
    return st.st_size


@contextlib.contextmanager
def _reading(name: str) -> Iterator[None]:
    """File-system errors while reading, as :class:`NvcError` subclasses."""
    try:
        yield
    except FileNotFoundError:
        raise NvcFileNotFoundError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise NvcIsADirectoryError(f"{name}: is a directory, not an .nvc file") from None
    except OSError as exc:
        raise NvcIOError(f"{name}: cannot read ({_describe(exc)})") from None


def read_file(path: str | os.PathLike[str]) -> Container:
    """Read and verify an ``.nvc`` file; every failure is an :class:`~bitstream.NvcError`."""
    name = os.fspath(path)
    _stat_regular(name)
    with _reading(name), open(name, "rb") as f:
        # bounded even if the file grows between stat() and read()
        data = f.read(MAX_FILE_BYTES + 1)
    return unpack(data, name=name)


class SectionFile:
    """An ``.nvc`` file opened for reading by parts (a segmented file's range decode).

    Opening reads only the header and section table (checked as :func:`unpack` checks them) and
    verifies every section except SEGMENT_DATA, whose bytes are read later, segment by segment,
    with :meth:`read_span`; each segment is verified against the CRC in the segment index, and the
    segments tile the section, so every byte a decode uses is still checked before it is used.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.name = os.fspath(path)
        size = _stat_regular(self.name)
        with _reading(self.name):
            self._file = open(self.name, "rb")  # noqa: SIM115 (closed by close())
        try:
            head = self._read_at(0, min(size, MAX_HEADER_BYTES))
            self.header: Header = parse_header(head, size, name=self.name)
            self.sections: dict[int, Section] = {}
            self.lazy: dict[int, SectionEntry] = {}
            self._check_sections()
        except BaseException:
            self._file.close()
            raise

    def _read_at(self, offset: int, length: int) -> bytes:
        with _reading(self.name):
            self._file.seek(offset)
            data = self._file.read(length)
        if len(data) != length:  # the file shrank after it was opened
            raise MalformedFileError(f"{self.name}: changed while it was being read")
        return data

    def _check_sections(self) -> None:
        for i, entry in enumerate(self.header.entries):
            if entry.type == SectionType.SEGMENT_DATA:
                self.lazy[entry.type] = entry
                continue
            chunk = self._read_at(entry.offset, entry.length)
            if check_section(entry, chunk, i, self.name):
                self.sections[entry.type] = Section(SectionType(entry.type), chunk, entry.critical)

    def find(self, type: int) -> Section | None:
        return self.sections.get(type)

    def span_length(self, type: int) -> int | None:
        """Length of a lazily read section, or None when the file has none."""
        entry = self.lazy.get(type)
        return None if entry is None else entry.length

    def read_span(self, type: int, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset`` inside a lazily read section (unverified: the caller
        checks them against its own CRC)."""
        entry = self.lazy[type]
        if not 0 <= offset <= offset + length <= entry.length:
            raise ValueError("span outside the section")
        return self._read_at(entry.offset + offset, length)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> SectionFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_file(path: str | os.PathLike[str]) -> SectionFile:
    """Open ``path`` for reading by parts (see :class:`SectionFile`)."""
    return SectionFile(path)


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
