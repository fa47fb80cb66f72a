"""Writing decoded yuv420 frames: Y4M (file or stdout), H.264 in MP4/MKV, or numbered PNGs.

Every file output is atomic: frames go to a temporary file in the destination folder, which
replaces the destination only when the ``with`` block ends normally. An exception deletes the
temporary file (and, for PNG sequences, every PNG written so far), so a failed run never leaves
a half-written output behind. Without ``overwrite`` the temporary file is hard-linked into place,
which fails if the destination appeared meanwhile (two decodes to one new name: the second is
refused, not silently replaced). :func:`check_output` runs the cheap checks up front, before any
expensive work.

An existing character device or FIFO (``/dev/null``, a named pipe) is written into as a stream
of Y4M, never replaced by a regular file, whatever its suffix (``.mp4``/``.mkv`` need a seekable
file and are refused there). Streams are written completely or fail: a reader that goes away
(``| head``) raises :class:`BrokenPipeError` instead of a short write passing as success.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import sys
import tempfile
from fractions import Fraction
from types import TracebackType
from typing import BinaryIO, Literal, Protocol

import av
import numpy as np

from nvcodec.errors import OutputError
from nvcodec.io.colour import ColourSpec, yuv420_to_rgb
from nvcodec.io.frames import Yuv420Frames

__all__ = ["FrameWriter", "check_output", "is_stream_target", "open_writer", "y4m_bytes"]

Kind = Literal["stdout", "stream", "y4m", "video", "png"]

_ACCEPTED = (
    "'-' (Y4M to stdout), NAME.y4m, NAME.mp4, NAME.mkv, or a PNG pattern like frames/%05d.png"
)
_FIELD = re.compile(r"%0?\d*d")
# AVColorSpace: BT709, SMPTE170M, BT2020_NCL, SMPTE240M, FCC
_AVCOL_SPC = {"bt709": 1, "bt601": 6, "bt2020": 9, "smpte240m": 7, "fcc": 4}
_AVCOL_RANGE = {"limited": 1, "full": 2}  # AVColorRange: MPEG, JPEG


class FrameWriter(Protocol):
    """A context manager that accepts frames; commits on normal exit, cleans up on error."""

    def write(self, frames: Yuv420Frames) -> None: ...

    def __enter__(self) -> FrameWriter: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def is_stream_target(output: str) -> bool:
    """An existing character device or FIFO: written into, never replaced."""
    try:
        mode = os.stat(output).st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


def _kind(output: str) -> Kind:
    if output == "-":
        return "stdout"
    lower = output.lower()
    if is_stream_target(output):
        if lower.endswith((".mp4", ".mkv")):
            raise OutputError(f"{output}: is a pipe or device; only Y4M can be streamed into it")
        return "stream"
    if lower.endswith(".y4m"):
        return "y4m"
    if lower.endswith((".mp4", ".mkv")):
        return "video"
    if lower.endswith(".png"):
        if "%" not in output:
            raise OutputError(
                f"{output}: a PNG output needs a frame-number pattern, e.g. frames/%05d.png"
            )
        return "png"
    raise OutputError(f"{output}: unknown output kind; use {_ACCEPTED}")


MAX_FIELD_WIDTH = 16
"""Widest frame-number field of a PNG pattern (``%016d``): Python would otherwise pad a name to
any width the pattern asks for (``%0999999999d``: gigabytes per name)."""


def _check_pattern(output: str) -> None:
    """Exactly one printf integer field (``%d``, ``%05d``); ``%%`` is a literal percent."""
    rest = output.replace("%%", "")
    fields = _FIELD.findall(rest)
    if len(fields) != 1 or "%" in _FIELD.sub("", rest):
        raise OutputError(
            f"{output}: a PNG pattern needs exactly one frame-number field like %05d or %d"
        )
    digits = fields[0][1:-1].lstrip("0")
    if len(digits) > 2 or int(digits or 0) > MAX_FIELD_WIDTH:
        raise OutputError(
            f"{output}: the frame-number field may be at most {MAX_FIELD_WIDTH} digits wide"
        )


def _pattern_regex(output: str) -> re.Pattern[str]:
    """A regex matching the file names ``output`` (a PNG pattern) can produce."""
    base = os.path.basename(output).replace("%%", "\0")
    pieces = _FIELD.split(base)
    return re.compile(r"-?\d+".join(re.escape(p).replace("\0", "%") for p in pieces))


def check_output(output: str, *, overwrite: bool) -> None:
    """Reject an output that cannot be written, before any expensive work.

    Checks the kind (from the suffix), the PNG pattern, that the folder exists, and that the
    output does not exist unless ``overwrite``. Raises :class:`OutputError`.
    """
    kind = _kind(output)
    if kind in ("stdout", "stream"):
        return
    if kind == "png":
        _check_pattern(output)
    parent = os.path.dirname(output)
    if parent and not os.path.isdir(parent):
        raise OutputError(f"{output}: folder '{parent}' does not exist")
    if kind == "png":
        if not overwrite:
            regex = _pattern_regex(output)
            clash = sorted(n for n in os.listdir(parent or ".") if regex.fullmatch(n))
            if clash:
                raise OutputError(
                    f"{output}: {len(clash)} matching file(s) exist, e.g. {clash[0]} "
                    "(use -y to overwrite)"
                )
        return
    if os.path.isdir(output):
        raise OutputError(f"{output}: is a directory")
    if os.path.lexists(output) and not overwrite:
        raise OutputError(f"{output}: exists (use -y to overwrite)")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _temp_path(output: str, suffix: str) -> str:
    """A new, empty file next to ``output``, so ``os.replace`` is an atomic rename."""
    folder = os.path.dirname(output) or "."
    fd, tmp = tempfile.mkstemp(
        dir=folder, prefix=f".{os.path.basename(output)}.", suffix=f".part{suffix}"
    )
    os.close(fd)
    return tmp


def _commit(tmp: str, output: str, overwrite: bool) -> None:
    """Move ``tmp`` into place; without ``overwrite`` by a hard link, which fails atomically if
    ``output`` appeared since :func:`check_output` (falls back to check-then-rename where the
    file system has no hard links)."""
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
    if overwrite:
        os.replace(tmp, output)
        return
    try:
        os.link(tmp, output)
    except FileExistsError:
        _discard(tmp)
        raise OutputError(f"{output}: exists (use -y to overwrite)") from None
    except OSError:
        if os.path.lexists(output):
            _discard(tmp)
            raise OutputError(f"{output}: exists (use -y to overwrite)") from None
        os.replace(tmp, output)
    else:
        _discard(tmp)


def _write_all(stream: BinaryIO, data: bytes) -> None:
    """Write every byte: a buffered write to a pipe may return short when the reader leaves;
    the next write then raises :class:`BrokenPipeError`."""
    view = memoryview(data)
    while view:
        written = stream.write(view)
        if not written:
            raise BrokenPipeError(32, "the output stream accepts no more data")
        view = view[written:]


def _reason(exc: BaseException) -> str:
    """What went wrong, without the file name: PyAV's and the OS's messages name the hidden
    temporary file, which the user never asked for (the caller names ``-o``'s path)."""
    return str(getattr(exc, "strerror", None) or exc.__class__.__name__)


def _discard(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


class _BaseWriter:
    """Shared size checks and context-manager plumbing."""

    def __init__(self, output: str, width: int, height: int) -> None:
        self.output = output
        self.width = width
        self.height = height
        self._closed = False

    def _check(self, frames: Yuv420Frames) -> None:
        if self._closed:
            raise ValueError(f"{self.output}: writer is closed")
        if (frames.width, frames.height) != (self.width, self.height):
            raise ValueError(
                f"{self.output}: frames are {frames.width}x{frames.height}, "
                f"writer expects {self.width}x{self.height}"
            )

    def write(self, frames: Yuv420Frames) -> None:
        raise NotImplementedError

    def _commit(self) -> None:
        raise NotImplementedError

    def _abort(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> _BaseWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._closed:
            return
        self._closed = True
        if exc_type is None:
            try:
                self._commit()
            except BaseException:
                self._abort()
                raise
        else:
            self._abort()


def _y4m_header(width: int, height: int, fps: Fraction, colour: ColourSpec) -> bytes:
    rng = "FULL" if colour.range == "full" else "LIMITED"
    return (
        f"YUV4MPEG2 W{width} H{height} F{fps.numerator}:{fps.denominator} Ip A1:1 "
        f"C420jpeg XYSCSS=420JPEG XCOLORRANGE={rng}\n"
    ).encode("ascii")


def y4m_bytes(count: int, width: int, height: int) -> int:
    """Size of a Y4M file of ``count`` frames (the header line counted generously)."""
    frame = len(b"FRAME\n") + width * height + 2 * ((width + 1) // 2) * ((height + 1) // 2)
    return 256 + count * frame


def _y4m_frames(frames: Yuv420Frames) -> bytes:
    out = bytearray()
    for i in range(frames.count):
        out += b"FRAME\n"
        out += frames.y[i].tobytes()
        out += frames.u[i].tobytes()
        out += frames.v[i].tobytes()
    return bytes(out)


class _Y4mStreamWriter(_BaseWriter):
    """Y4M to a binary stream (stdout): streamed, so it cannot be atomic."""

    def __init__(
        self, stream: BinaryIO, width: int, height: int, fps: Fraction, colour: ColourSpec
    ) -> None:
        super().__init__("-", width, height)
        self._stream = stream
        _write_all(self._stream, _y4m_header(width, height, fps, colour))

    def write(self, frames: Yuv420Frames) -> None:
        self._check(frames)
        _write_all(self._stream, _y4m_frames(frames))

    def _commit(self) -> None:
        self._stream.flush()

    def _abort(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._stream.flush()


class _Y4mIntoFileWriter(_Y4mStreamWriter):
    """Y4M streamed into an existing device or FIFO, which is closed at the end."""

    def __init__(
        self, output: str, width: int, height: int, fps: Fraction, colour: ColourSpec
    ) -> None:
        try:
            target = open(output, "wb")  # noqa: SIM115 - closed in commit/abort
        except OSError as exc:
            raise OutputError(f"{output}: cannot write ({_reason(exc)})") from None
        super().__init__(target, width, height, fps, colour)
        self.output = output

    def _commit(self) -> None:
        try:
            super()._commit()
        finally:
            with contextlib.suppress(OSError):
                self._stream.close()

    def _abort(self) -> None:
        super()._abort()
        with contextlib.suppress(OSError):
            self._stream.close()


class _Y4mFileWriter(_BaseWriter):
    """Y4M file, written to a temporary file and renamed into place."""

    def __init__(
        self,
        output: str,
        width: int,
        height: int,
        fps: Fraction,
        colour: ColourSpec,
        overwrite: bool,
    ) -> None:
        super().__init__(output, width, height)
        self._overwrite = overwrite
        self._tmp = _temp_path(output, ".y4m")
        try:
            self._file = open(self._tmp, "wb")  # noqa: SIM115 - closed in commit/abort
            self._file.write(_y4m_header(width, height, fps, colour))
        except OSError as exc:
            _discard(self._tmp)
            raise OutputError(f"{output}: cannot write ({_reason(exc)})") from None

    def write(self, frames: Yuv420Frames) -> None:
        self._check(frames)
        try:
            self._file.write(_y4m_frames(frames))
        except OSError as exc:
            raise OutputError(f"{self.output}: cannot write ({_reason(exc)})") from None

    def _commit(self) -> None:
        self._file.close()
        _commit(self._tmp, self.output, self._overwrite)

    def _abort(self) -> None:
        self._file.close()
        _discard(self._tmp)


class _H264Writer(_BaseWriter):
    """H.264 (libx264, CRF 12, yuv420p) in MP4 or Matroska, via a temporary file."""

    def __init__(
        self,
        output: str,
        width: int,
        height: int,
        fps: Fraction,
        colour: ColourSpec,
        overwrite: bool,
    ) -> None:
        if width % 2 or height % 2:
            raise OutputError(
                f"{output}: mp4/mkv output needs even width and height "
                f"(got {width}x{height}); use .y4m or .png"
            )
        super().__init__(output, width, height)
        self._overwrite = overwrite
        suffix = os.path.splitext(output)[1].lower()
        fmt = "mp4" if suffix == ".mp4" else "matroska"
        self._colour = colour
        self._fps = fps
        self._index = 0
        self._tmp = _temp_path(output, suffix)
        try:
            self._container = av.open(self._tmp, mode="w", format=fmt)
            stream = self._container.add_stream(
                "libx264", rate=fps, options={"crf": "12", "preset": "medium"}
            )
            stream.width = width
            stream.height = height
            stream.pix_fmt = "yuv420p"
            stream.codec_context.colorspace = _AVCOL_SPC[colour.matrix]
            stream.codec_context.color_range = _AVCOL_RANGE[colour.range]
            stream.codec_context.time_base = Fraction(1) / fps
            self._stream = stream
        except (av.FFmpegError, OSError) as exc:
            _discard(self._tmp)
            raise OutputError(f"{output}: cannot start the encoder ({_reason(exc)})") from None

    def write(self, frames: Yuv420Frames) -> None:
        self._check(frames)
        w, h = self.width, self.height
        for i in range(frames.count):
            data = np.concatenate(
                [frames.y[i].ravel(), frames.u[i].ravel(), frames.v[i].ravel()]
            ).reshape(h * 3 // 2, w)
            frame = av.VideoFrame.from_ndarray(data, format="yuv420p")
            frame.colorspace = _AVCOL_SPC[self._colour.matrix]
            frame.color_range = _AVCOL_RANGE[self._colour.range]
            frame.pts = self._index
            frame.time_base = Fraction(1) / self._fps
            self._index += 1
            self._mux(self._stream.encode(frame))

    def _mux(self, packets: list[av.Packet]) -> None:
        try:
            self._container.mux(packets)
        except (av.FFmpegError, OSError) as exc:
            raise OutputError(f"{self.output}: cannot write ({_reason(exc)})") from None

    def _commit(self) -> None:
        self._mux(self._stream.encode(None))
        self._container.close()
        _commit(self._tmp, self.output, self._overwrite)

    def _abort(self) -> None:
        with contextlib.suppress(av.FFmpegError, OSError):
            self._container.close()
        _discard(self._tmp)


def _encode_png(rgb: np.ndarray) -> bytes:
    """One RGB24 PNG, encoded by FFmpeg's png encoder (no PIL dependency)."""
    h, w, _ = rgb.shape
    ctx = av.CodecContext.create("png", "w")
    ctx.width = w
    ctx.height = h
    ctx.pix_fmt = "rgb24"
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    packets = list(ctx.encode(frame)) + list(ctx.encode(None))
    return b"".join(bytes(p) for p in packets)


class _PngWriter(_BaseWriter):
    """One RGB PNG per frame, numbered from ``first_number``; each file atomic."""

    def __init__(
        self,
        output: str,
        width: int,
        height: int,
        colour: ColourSpec,
        overwrite: bool,
        first_number: int,
    ) -> None:
        super().__init__(output, width, height)
        self._colour = colour
        self._overwrite = overwrite
        self._number = first_number
        self._written: list[str] = []

    def write(self, frames: Yuv420Frames) -> None:
        self._check(frames)
        rgb = yuv420_to_rgb(frames.y, frames.u, frames.v, self._colour)
        rgb8 = np.round(rgb * 255.0).astype(np.uint8)
        for i in range(frames.count):
            path = self.output % self._number
            if not self._overwrite and os.path.lexists(path):
                raise OutputError(f"{path}: exists (use -y to overwrite)")
            data = _encode_png(rgb8[i])
            tmp = _temp_path(path, ".png")
            try:
                with open(tmp, "wb") as f:
                    f.write(data)
                _commit(tmp, path, self._overwrite)
            except OutputError:
                raise
            except OSError as exc:
                _discard(tmp)
                raise OutputError(f"{path}: cannot write ({_reason(exc)})") from None
            self._written.append(path)
            self._number += 1

    def _commit(self) -> None:
        pass

    def _abort(self) -> None:
        for path in self._written:
            _discard(path)
        self._written.clear()


def open_writer(
    output: str,
    *,
    width: int,
    height: int,
    fps: Fraction,
    colour: ColourSpec,
    overwrite: bool = False,
    stdout: BinaryIO | None = None,
    first_number: int = 0,
) -> FrameWriter:
    """Open the writer for ``output``; the kind comes from its form (see :func:`check_output`).

    ``-`` streams Y4M to ``stdout`` (default ``sys.stdout.buffer``). ``first_number`` is the
    number of the first PNG of a pattern (e.g. 10 for ``--frames 10:20``).
    """
    check_output(output, overwrite=overwrite)
    kind = _kind(output)
    fps = Fraction(fps)
    if kind == "stdout":
        return _Y4mStreamWriter(
            stdout if stdout is not None else sys.stdout.buffer, width, height, fps, colour
        )
    if kind == "stream":
        return _Y4mIntoFileWriter(output, width, height, fps, colour)
    if kind == "y4m":
        return _Y4mFileWriter(output, width, height, fps, colour, overwrite)
    if kind == "video":
        return _H264Writer(output, width, height, fps, colour, overwrite)
    return _PngWriter(output, width, height, colour, overwrite, first_number)
