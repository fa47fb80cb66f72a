"""Reading a video file into the protocol's reference: 8-bit yuv420p frames plus facts about it.

Any pixel format PyAV can decode is brought to 8-bit yuv420p with swscale, keeping the source's
matrix and range (so the samples mean what the reported :class:`ColourSpec` says). Sources that
already are 8-bit yuv420p (or full-range yuvj420p) are read directly, untouched.

Sources that a player would show differently from their stored samples are read as stored and
reported (fields of :class:`VideoInfo`, plus a one-line :class:`VideoInputWarning` naming the file),
never silently "fixed": a display rotation (display-matrix side data) is not applied, interlaced
frames are kept as woven frames (no deinterlacing), and variable-frame-rate timestamps are
ignored (frames are taken in decode order and stored at the stream's average rate).
"""

from __future__ import annotations

import itertools
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace, Interpolation

from nvcodec.errors import InputError
from nvcodec.io.colour import ColourSpec
from nvcodec.io.frames import Yuv420Frames

__all__ = ["VideoInfo", "VideoInputWarning", "read_video", "scan_video", "warn_about"]

# AVColorSpace → the matrix nvcodec converts with. bt470bg and smpte170m are BT.601; BT.2020
# constant luminance (10) is not a matrix at all and is read as non-constant (with a warning).
_MATRIX_OF_AVCOL_SPC = {1: "bt709", 4: "fcc", 5: "bt601", 6: "bt601", 7: "smpte240m", 9: "bt2020"}
_AVCOL_SPC_UNSPECIFIED = 2
_AVCOL_SPC_BT2020_CL = 10
_SWS_SPACE = {
    "bt709": Colorspace.ITU709,
    "bt601": Colorspace.ITU601,
    "fcc": Colorspace.FCC,
    "smpte240m": Colorspace.SMPTE240M,
    "bt2020": Colorspace.BT2020,
}
# AVColorTransferCharacteristic values of HDR transfers: SMPTE ST 2084 (PQ), ARIB STD-B67 (HLG).
_HDR_TRANSFERS = {16: "PQ (SMPTE ST 2084)", 18: "HLG (ARIB STD-B67)"}
_AVCOL_RANGE_JPEG = 2
_DEFAULT_FPS = Fraction(25)
# FFmpeg "decodes" any text file as ANSI art (the tty demuxer); that is never a real input.
_TEXT_DEMUXERS = frozenset({"tty"})
# Bit-exact, accurately rounded swscale output: the same on every CPU.
_SWS_FLAGS = Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.BITEXACT


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`read_video` found. ``frame_count`` is the number of frames returned."""

    width: int
    height: int
    frame_count: int
    fps: Fraction
    colour: ColourSpec
    source: str
    rotation: int = 0  # display rotation in degrees the source asks players for (not applied)
    colour_note: str = ""  # what the source's colour tags ask for that nvcodec does not do
    interlaced: bool = False  # at least one selected frame is flagged interlaced (not deinterlaced)
    variable_frame_rate: bool = False  # timestamps of selected frames are not evenly spaced


class VideoInputWarning(UserWarning):
    """The source is usable but will not look the same as in a player (rotation, interlacing,
    variable frame rate); the message is one line naming the file and what nvcodec does."""


def _is_variable_rate(pts: list[int]) -> bool:
    """Timestamps whose spacing varies by more than rounding (2 ticks or 5 % of the median)."""
    deltas = sorted(b - a for a, b in itertools.pairwise(pts))
    if len(deltas) < 2:
        return False
    median = deltas[len(deltas) // 2]
    return deltas[-1] - deltas[0] > max(2, median // 20)


def _is_rgb_like(frame: av.VideoFrame) -> bool:
    fmt = frame.format
    return bool(fmt.is_rgb or fmt.has_palette)


def _colour_of(frame: av.VideoFrame) -> ColourSpec:
    """The conversion the source's tags ask for; BT.709 limited when untagged or RGB.

    RGB sources carry no YUV matrix/range of their own; they are converted the default way.
    """
    if _is_rgb_like(frame):
        return ColourSpec()
    space = 9 if int(frame.colorspace) == _AVCOL_SPC_BT2020_CL else int(frame.colorspace)
    matrix = _MATRIX_OF_AVCOL_SPC.get(space, "bt709")
    full = int(frame.color_range) == _AVCOL_RANGE_JPEG or frame.format.name.startswith("yuvj")
    return ColourSpec(matrix=matrix, range="full" if full else "limited")


def _colour_note(frame: av.VideoFrame) -> str:
    """What the frame's colour tags ask for that reading it as :func:`_colour_of` does not do."""
    if _is_rgb_like(frame):
        return ""
    space, notes = int(frame.colorspace), []
    if space == _AVCOL_SPC_BT2020_CL:
        notes.append("BT.2020 constant-luminance YUV is read as non-constant BT.2020")
    elif space not in _MATRIX_OF_AVCOL_SPC and space != _AVCOL_SPC_UNSPECIFIED:
        notes.append(f"its YUV matrix (AVColorSpace {space}) is not supported: read as BT.709")
    transfer = _HDR_TRANSFERS.get(int(frame.color_trc))
    if transfer:
        notes.append(
            f"{transfer} HDR transfer: samples are kept as stored, not tone-mapped, and outputs "
            "carry the matrix and range but not the transfer"
        )
    return "; ".join(notes)


def _plane(frame: av.VideoFrame, index: int) -> np.ndarray:
    """One plane as a (height, width) array, cropped from the padded line buffer.

    Works for odd sizes, unlike ``to_ndarray`` for yuv420p.
    """
    plane = frame.planes[index]
    h, w, stride = plane.height, plane.width, plane.line_size
    buf = np.frombuffer(plane, dtype=np.uint8)
    if buf.size < stride * (h - 1) + w:
        raise InputError(f"unexpected plane layout ({w}x{h}, stride {stride})")
    if buf.size < stride * h:
        buf = np.concatenate([buf, np.zeros(stride * h - buf.size, np.uint8)])
    return buf[: stride * h].reshape(h, stride)[:, :w].copy()


def _to_yuv420p(frame: av.VideoFrame, spec: ColourSpec) -> tuple[np.ndarray, ...]:
    """The frame's 8-bit yuv420 planes, with samples in ``spec``'s range and matrix."""
    name = frame.format.name
    if name in ("yuv420p", "yuvj420p") and _colour_of(frame) == spec:
        return _plane(frame, 0), _plane(frame, 1), _plane(frame, 2)
    space = _SWS_SPACE[spec.matrix]  # YUV → YUV: swscale changes bit depth and range only
    dst_range = ColorRange.JPEG if spec.range == "full" else ColorRange.MPEG
    if _is_rgb_like(frame):
        src_range = ColorRange.JPEG
    else:
        src_range = ColorRange.JPEG if _colour_of(frame).range == "full" else ColorRange.MPEG
    # Always write plain "yuv420p" and state both ranges: the yuvj formats would make swscale
    # pick the range itself.
    out = frame.reformat(
        format="yuv420p",
        src_colorspace=space,
        dst_colorspace=space,
        src_color_range=src_range,
        dst_color_range=dst_range,
        interpolation=_SWS_FLAGS,
    )
    return _plane(out, 0), _plane(out, 1), _plane(out, 2)


def _fps_of(stream: av.video.stream.VideoStream) -> Fraction:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and rate > 0:
            return Fraction(rate)
    return _DEFAULT_FPS


def _range_text(start: int, stop: int | None) -> str:
    return f"{start}:{'' if stop is None else stop}"


def scan_video(
    path: str | os.PathLike[str],
    frames: tuple[int, int | None] | None,
    feature: Callable[[tuple[np.ndarray, ...]], Any],
    *,
    max_frames: int = 1_000_000,
) -> tuple[list[Any], VideoInfo]:
    """``feature((y, u, v))`` of every frame of the range, without keeping the frames: a pass
    over a long video in the memory of one frame (segment planning, scene cuts, content
    hashes). Checks and errors are :func:`read_video`'s."""
    scan, fps = _scan(path, frames, max_frames, feature)
    features = [p[0] for p in scan.planes]
    return features, _info(scan, fps, len(scan.planes), path)


def _scan(
    path: str | os.PathLike[str],
    frames: tuple[int, int | None] | None,
    max_frames: int,
    feature: Callable[[tuple[np.ndarray, ...]], Any] | None,
) -> tuple[_Scan, Fraction]:
    name = os.fspath(path)
    start, stop = frames if frames is not None else (0, None)
    if start < 0 or (stop is not None and stop <= start):
        raise InputError(
            f"{name}: invalid frame range {_range_text(start, stop)} (need 0 <= start < stop)"
        )
    if not os.path.exists(name):
        raise InputError(f"{name}: no such file")
    if os.path.isdir(name):
        raise InputError(f"{name}: is a directory, not a video file")
    try:
        container = av.open(name, mode="r")
    except OSError as exc:  # includes PyAV's permission / not-found errors
        raise InputError(f"{name}: cannot open ({exc.strerror or exc})") from None
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise InputError(f"{name}: not a video PyAV can read ({reason})") from None
    scan = _Scan(name, start, stop, max_frames, feature)
    fps = _decode_into(scan, container, name)
    if not scan.planes or scan.spec is None:
        if frames is None:
            raise InputError(f"{name}: no frames decoded")
        raise InputError(
            f"{name} has {scan.seen} frames; --frames {_range_text(start, stop)} selects none"
        )
    return scan, fps


def _decode_into(scan: _Scan, container: Any, name: str) -> Fraction:
    """Feed every decoded frame of the first video stream to ``scan``; the stream's rate."""
    with container:
        if container.format.name in _TEXT_DEMUXERS:
            raise InputError(f"{name}: not a video PyAV can read (text, not video)")
        if not container.streams.video:
            raise InputError(f"{name}: no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        fps = _fps_of(stream)
        try:
            for frame in container.decode(stream):
                if scan.add(frame):
                    break
        except av.FFmpegError as exc:
            raise InputError(f"{name}: decoding failed at frame {scan.seen} ({exc})") from None
    return fps


def read_video(
    path: str | os.PathLike[str],
    frames: tuple[int, int | None] | None = None,
    *,
    max_frames: int = 100_000,
) -> tuple[Yuv420Frames, VideoInfo]:
    """Decode ``path`` (or the half-open frame range ``frames``) to 8-bit yuv420p.

    Frames are counted in the order the decoder returns them (pair frames by index, never by
    timestamp). Decoding stops at ``stop``. Every user mistake is an :class:`InputError` naming
    the file: missing, a folder, not a video, no video stream, an empty or invalid range, or more
    than ``max_frames`` frames.
    """
    scan, fps = _scan(path, frames, max_frames, None)
    out = Yuv420Frames(*(np.stack([p[i] for p in scan.planes]) for i in range(3)))
    info = _info(scan, fps, out.count, path)
    warn_about(info)
    return out, info


def _info(scan: _Scan, fps: Fraction, count: int, path: str | os.PathLike[str]) -> VideoInfo:
    assert scan.spec is not None
    return VideoInfo(
        width=scan.size[0],
        height=scan.size[1],
        frame_count=count,
        fps=fps,
        colour=scan.spec,
        source=os.fspath(path),
        rotation=scan.rotation,
        colour_note=scan.colour_note,
        interlaced=scan.interlaced,
        variable_frame_rate=_is_variable_rate(scan.pts),
    )


class _Scan:
    """The frames of ``[start, stop)`` as they are decoded, and what they say about the clip."""

    def __init__(
        self,
        name: str,
        start: int,
        stop: int | None,
        max_frames: int,
        feature: Callable[[tuple[np.ndarray, ...]], Any] | None = None,
    ) -> None:
        self.name, self.start, self.stop, self.max_frames = name, start, stop, max_frames
        self.feature = feature
        self.planes: list[tuple[np.ndarray, ...]] = []
        self.spec: ColourSpec | None = None
        self.colour_note = ""
        self.seen = 0
        self.size = (0, 0)
        self.rotation = 0
        self.interlaced = False
        self.pts: list[int] = []

    def add(self, frame: av.VideoFrame) -> bool:
        """Take the next decoded frame; True once the range is complete."""
        index, self.seen = self.seen, self.seen + 1
        if index < self.start:
            return False
        if self.spec is None:
            self.spec, self.colour_note = _colour_of(frame), _colour_note(frame)
            self.rotation = int(getattr(frame, "rotation", 0) or 0)
            self.size = (frame.width, frame.height)
        if len(self.planes) >= self.max_frames:
            raise InputError(
                f"{self.name}: more than {self.max_frames} frames selected; "
                "choose a range with --frames"
            )
        if (frame.width, frame.height) != self.size:
            raise InputError(
                f"{self.name}: frame size changes from {self.size[0]}x{self.size[1]} to "
                f"{frame.width}x{frame.height} at frame {index}"
            )
        self.interlaced = self.interlaced or bool(getattr(frame, "interlaced_frame", False))
        if frame.pts is not None:
            self.pts.append(int(frame.pts))
        planes = _to_yuv420p(frame, self.spec)
        self.planes.append(planes if self.feature is None else (self.feature(planes),))
        return self.stop is not None and self.seen >= self.stop


def warn_about(info: VideoInfo) -> None:
    name = info.source
    if info.rotation:
        warnings.warn(
            f"{name}: the source asks players to rotate it by {info.rotation} degrees; nvcodec "
            f"encodes the stored {info.width}x{info.height} orientation (rotate the source first "
            "to keep the displayed one)",
            VideoInputWarning,
            stacklevel=3,
        )
    if info.colour_note:
        warnings.warn(f"{name}: {info.colour_note}", VideoInputWarning, stacklevel=3)
    if info.interlaced:
        warnings.warn(
            f"{name}: interlaced source; frames are encoded as stored (both fields woven, "
            "no deinterlacing)",
            VideoInputWarning,
            stacklevel=3,
        )
    if info.variable_frame_rate:
        warnings.warn(
            f"{name}: variable frame rate; frames are kept in decode order and stored at the "
            f"stream's average rate {float(info.fps):g} fps (original timestamps are not kept)",
            VideoInputWarning,
            stacklevel=3,
        )
