"""The codecs a benchmark compares: one small class per external encoder, run through PyAV.

::

    Source (reference yuv420p planes, fps, colour)
      ─► PyAV encoder (exact AVOptions, recorded) ─► raw elementary stream file (.h264/.hevc/.ivf)
      ─► [drop the encoder's informational SEI] ─► decode THAT file with PyAV ─► yuv420p planes
      ─► CodecRun(bitstream, bytes = file size, decoded frames, encode/decode seconds, notes)

No shell and no ffmpeg binary: PyAV's bundled FFmpeg does the work, and each class records the
library versions and the encoder's own build/options string (x264/x265 write it into the stream).
Rate is always the size of the file on disk. Frames are paired with the reference by index.
x264 runs with one thread and x265 with one frame thread, so a stream is the same on every
machine (auto threading makes it depend on the core count and, rarely, on timing).

The x264/x265 "info" SEI (a ~0.7–2 KB user-data message holding the version and the full option
list) carries nothing the decoder uses; by default it is read, recorded and removed from the
stream so that it does not inflate the anchors' rate on short clips. ``strip_info_sei=False``
keeps it.
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from nvcodec.io import ColourSpec, VideoInfo, Yuv420Frames

__all__ = [
    "ANCHORS",
    "X264",
    "X265",
    "BenchmarkError",
    "Codec",
    "CodecRun",
    "PyAvCodec",
    "Source",
    "SvtAv1",
    "decode_elementary_stream",
    "external_codec",
    "library_versions",
]


class BenchmarkError(RuntimeError):
    """A benchmark step failed in a way that makes its numbers meaningless."""


@dataclass(frozen=True)
class Source:
    """One clip (or frame range of it) as the protocol's reference: 8-bit yuv420p frames."""

    path: Path
    frames: tuple[int, int | None] | None
    reference: Yuv420Frames
    info: VideoInfo


@dataclass(frozen=True)
class CodecRun:
    """What one rate point produced. ``bytes`` is the size of ``bitstream`` on disk."""

    bitstream: Path
    bytes: int
    decoded: Yuv420Frames
    encode_s: float
    decode_s: float
    device: str = "cpu"
    notes: dict[str, Any] = field(default_factory=dict)


class Codec(ABC):
    """A codec at a family of rate points (CRF values, parameter budgets, ...).

    ``label`` names the curve (and says its preset); ``point_name`` names the rate knob.
    ``settings(point)`` is everything that decides the output — it goes verbatim into the
    result JSON and into the cache key, so it must be JSON-serialisable.
    """

    label: str
    point_name: str
    default_points: tuple[float, ...]
    quick_points: tuple[float, ...]

    @abstractmethod
    def settings(self, point: float) -> dict[str, Any]: ...

    @abstractmethod
    def versions(self) -> dict[str, str]: ...

    @abstractmethod
    def run(self, source: Source, point: float, stem: Path) -> CodecRun:
        """Encode ``source`` at ``point`` to ``stem`` + extension, decode it back, time both."""

    def describe(self) -> str:
        return self.label


def library_versions() -> dict[str, str]:
    """PyAV, its bundled FFmpeg and the libav* library versions (cheap; no encoding)."""
    out = {"pyav": av.__version__, "ffmpeg": str(getattr(av, "ffmpeg_version_info", "?"))}
    for lib, version in sorted(av.library_versions.items()):
        out[lib] = ".".join(str(v) for v in version)
    return out


# --- elementary streams -------------------------------------------------------------------------


def _start_codes(data: bytes) -> list[int]:
    """Offsets where each Annex-B NAL unit's start code begins (its zero_byte included)."""
    starts: list[int] = []
    i = data.find(b"\x00\x00\x01")
    while i >= 0:
        starts.append(i - 1 if i > 0 and data[i - 1] == 0 else i)
        i = data.find(b"\x00\x00\x01", i + 3)
    return starts


def _unescape(payload: bytes) -> bytes:
    """NAL payload → RBSP (drop emulation-prevention bytes ``00 00 03``)."""
    return payload.replace(b"\x00\x00\x03", b"\x00\x00")


def _read_ff_coded(rbsp: bytes, pos: int) -> tuple[int, int]:
    value = 0
    while pos < len(rbsp) and rbsp[pos] == 0xFF:
        value += 255
        pos += 1
    if pos >= len(rbsp):
        raise ValueError("truncated SEI header")
    return value + rbsp[pos], pos + 1


def find_info_sei(data: bytes, hevc: bool) -> tuple[int, int, str] | None:
    """``(start, end, text)`` of the NAL unit that holds only the encoder's user-data SEI.

    The unit must be a (prefix) SEI NAL holding exactly one user_data_unregistered message
    (payloadType 5) whose text starts with ``x264``/``x265``; anything else is left alone.
    """
    starts = _start_codes(data)
    for n, start in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(data)
        header = data.index(b"\x00\x00\x01", start) + 3
        if header >= end:
            continue
        nal_type = (data[header] >> 1) & 0x3F if hevc else data[header] & 0x1F
        if nal_type != (39 if hevc else 6):
            continue
        rbsp = _unescape(data[header + (2 if hevc else 1) : end].rstrip(b"\x00"))
        try:
            ptype, pos = _read_ff_coded(rbsp, 0)
            size, pos = _read_ff_coded(rbsp, pos)
        except ValueError:
            continue
        if ptype != 5 or pos + size + 1 != len(rbsp) or rbsp[-1] != 0x80:
            continue
        text = rbsp[pos + 16 : pos + size].split(b"\x00", 1)[0].decode("latin-1")
        if text.startswith(("x264", "x265")):
            return start, end, text
    return None


def _plane_array(plane: Any) -> np.ndarray:
    """One decoded plane as a (height, width) uint8 array, cropped from its padded lines."""
    h, w, stride = plane.height, plane.width, plane.line_size
    buf = np.frombuffer(plane, dtype=np.uint8)
    if buf.size < stride * h:
        buf = np.concatenate([buf, np.zeros(stride * h - buf.size, np.uint8)])
    return buf[: stride * h].reshape(h, stride)[:, :w].copy()


def decode_elementary_stream(path: Path) -> tuple[Yuv420Frames, list[str], float]:
    """Every frame of ``path`` as yuv420p planes (decoder order = display order after
    reordering), the picture types (``I``/``P``/``B``...) and the wall-clock seconds taken."""
    begin = time.perf_counter()
    planes: list[tuple[np.ndarray, ...]] = []
    types: list[str] = []
    with av.open(str(path), mode="r") as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            if frame.format.name not in ("yuv420p", "yuvj420p"):
                raise BenchmarkError(f"{path}: decoder gave {frame.format.name}, not yuv420p")
            planes.append(tuple(_plane_array(frame.planes[i]) for i in range(3)))
            types.append(av.video.frame.PictureType(int(frame.pict_type)).name)
    seconds = time.perf_counter() - begin
    if not planes:
        raise BenchmarkError(f"{path}: no frames decoded")
    frames = Yuv420Frames(*(np.stack([p[i] for p in planes]) for i in range(3)))
    return frames, types, seconds


def _video_frames(source: Source) -> Iterator[av.VideoFrame]:
    ref = source.reference
    for i in range(ref.count):
        frame = av.VideoFrame(ref.width, ref.height, "yuv420p")
        for plane, arr in zip(frame.planes, (ref.y[i], ref.u[i], ref.v[i]), strict=True):
            pad = plane.line_size - arr.shape[1]
            plane.update(np.ascontiguousarray(np.pad(arr, ((0, 0), (0, pad)))))
        frame.pts = i
        yield frame


def _tag_colour(context: Any, colour: ColourSpec) -> None:
    """Signal the source's matrix and range in the stream (VUI) — the samples are unchanged."""
    context.color_range = 2 if colour.range == "full" else 1  # AVCOL_RANGE_JPEG / _MPEG
    context.colorspace = 6 if colour.matrix == "bt601" else 1  # AVCOL_SPC_SMPTE170M / _BT709


class PyAvCodec(Codec):
    """An FFmpeg encoder driven through PyAV into a raw elementary-stream muxer."""

    encoder: str  # FFmpeg encoder name, e.g. "libx264"
    muxer: str  # FFmpeg output format, e.g. "h264"
    extension: str
    point_name = "crf"
    strip_info_sei: bool = False
    quiet_env: dict[str, str] = {}  # noqa: RUF012 - class-level constant, never mutated

    @abstractmethod
    def options(self, point: float) -> dict[str, str]:
        """The AVOptions given to the encoder, exactly."""

    def settings(self, point: float) -> dict[str, Any]:
        return {
            "encoder": self.encoder,
            "muxer": self.muxer,
            "pix_fmt": "yuv420p",
            "options": self.options(point),
            "strip_info_sei": self.strip_info_sei,
            "frame_rate": "source",
        }

    def versions(self) -> dict[str, str]:
        codec = av.codec.Codec(self.encoder, "w")
        return {"encoder": f"{codec.name} ({codec.long_name})", **library_versions()}

    def _encode(self, source: Source, point: float, path: Path) -> None:
        info = source.info
        fps = Fraction(info.fps)
        with av.open(str(path), mode="w", format=self.muxer) as container:
            stream = container.add_stream(self.encoder, rate=fps)
            stream.width, stream.height = info.width, info.height
            stream.pix_fmt = "yuv420p"
            stream.time_base = 1 / fps
            _tag_colour(stream.codec_context, info.colour)
            stream.options = self.options(point)
            for frame in _video_frames(source):
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))

    def run(self, source: Source, point: float, stem: Path) -> CodecRun:
        ref = source.reference
        if ref.width % 2 or ref.height % 2:
            raise BenchmarkError(
                f"{self.label} needs an even frame size, got {ref.width}×{ref.height}"
            )
        path = stem.with_suffix(self.extension)
        tmp = path.with_name(path.name + ".tmp")
        saved = {k: os.environ.get(k) for k in self.quiet_env}
        os.environ.update(self.quiet_env)
        try:
            begin = time.perf_counter()
            self._encode(source, point, tmp)
            encode_s = time.perf_counter() - begin
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        notes = self._postprocess(tmp)
        os.replace(tmp, path)
        decoded, types, decode_s = decode_elementary_stream(path)
        if decoded.count != ref.count:
            raise BenchmarkError(
                f"{path}: decoded {decoded.count} frames, the source has {ref.count}"
            )
        notes["frame_types"] = "".join(t if len(t) == 1 else "?" for t in types)
        return CodecRun(
            bitstream=path,
            bytes=path.stat().st_size,
            decoded=decoded,
            encode_s=encode_s,
            decode_s=decode_s,
            notes=notes,
        )

    def _postprocess(self, path: Path) -> dict[str, Any]:
        return {}


class _X26x(PyAvCodec):
    family: str  # "x264" / "x265"
    params_option: str  # "x264-params" / "x265-params"
    # Wide on purpose: CPU-budget INRs land at 0.05–1 bpp but 20–30 dB, so the anchors must reach
    # both that bpp range (low CRF) and that PSNR range (CRF 47–51) for BD-rates to exist.
    default_points = (12.0, 17.0, 22.0, 27.0, 32.0, 37.0, 42.0, 47.0, 51.0)
    quick_points = (22.0, 32.0, 42.0, 51.0)

    def __init__(
        self,
        preset: str = "veryslow",
        tune: str | None = "psnr",
        bframes: bool = True,
        strip_info_sei: bool = True,
    ) -> None:
        self.preset, self.tune, self.bframes = preset, tune, bframes
        self.strip_info_sei = strip_info_sei
        label = f"{self.family}-{preset}"
        if not bframes:
            label += "-noB"
        if tune != "psnr":
            label += f"-tune_{tune}" if tune else "-notune"
        self.label = label

    def extra_params(self) -> list[str]:
        return [] if self.bframes else ["bframes=0"]

    def threading(self) -> dict[str, str]:
        """Options that make the stream independent of the machine's core count."""
        return {}

    def options(self, point: float) -> dict[str, str]:
        opts = {"crf": f"{point:g}", "preset": self.preset}
        if self.tune:
            opts["tune"] = self.tune
        opts.update(self.threading())
        params = self.extra_params()
        if params:
            opts[self.params_option] = ":".join(params)
        return opts

    def describe(self) -> str:
        tune = f"-tune {self.tune}" if self.tune else "no tune"
        gop = "default GOP with B-frames" if self.bframes else "no B-frames"
        return f"{self.family} -preset {self.preset} {tune}, {gop}, CRF sweep"

    def _postprocess(self, path: Path) -> dict[str, Any]:
        data = path.read_bytes()
        found = find_info_sei(data, hevc=self.family == "x265")
        if found is None:
            return {
                "encoder_info": None,
                "encoder_bytes": len(data),
                "info_sei_bytes": 0,
                "info_sei_stripped": False,
            }
        start, end, text = found
        if self.strip_info_sei:
            with open(path, "wb") as f:
                f.write(data[:start] + data[end:])
        return {
            "encoder_info": text,
            "encoder_bytes": len(data),  # as the encoder wrote it, before any stripping
            "info_sei_bytes": end - start,
            "info_sei_stripped": self.strip_info_sei,
        }


class X264(_X26x):
    """libx264 into a raw ``.h264`` Annex-B stream. Default: the protocol's strong anchor."""

    family, encoder, muxer, extension = "x264", "libx264", "h264", ".h264"
    params_option = "x264-params"

    def threading(self) -> dict[str, str]:
        # x264's frame threads change the stream (and "auto" depends on the core count); one
        # thread makes it reproducible on any machine at ~25 % more encode time.
        return {"threads": "1"}


class X265(_X26x):
    """libx265 into a raw ``.hevc`` Annex-B stream. Default: the protocol's strong anchor."""

    family, encoder, muxer, extension = "x265", "libx265", "hevc", ".hevc"
    params_option = "x265-params"

    def extra_params(self) -> list[str]:
        # log-level only quietens x265's stderr report. Frame threads change the stream (their
        # number follows the core count); wavefront threads (WPP) do not, so they stay on.
        return ["log-level=error", "frame-threads=1", *super().extra_params()]


class SvtAv1(PyAvCodec):
    """SVT-AV1 (libsvtav1) into an ``.ivf`` file (an extra, not one of the protocol's anchors)."""

    encoder, muxer, extension = "libsvtav1", "ivf", ".ivf"
    default_points = (20.0, 28.0, 36.0, 44.0, 52.0, 60.0)
    quick_points = (30.0, 45.0, 60.0)
    quiet_env = {"SVT_LOG": "1"}  # noqa: RUF012 - errors only

    def __init__(self, preset: int = 4) -> None:
        self.preset = preset
        self.label = f"svtav1-p{preset}"

    def options(self, point: float) -> dict[str, str]:
        return {"crf": f"{point:g}", "preset": str(self.preset)}

    def describe(self) -> str:
        return f"SVT-AV1 -preset {self.preset}, default random-access GOP, CRF sweep (extra)"


ANCHORS: dict[str, tuple[type[Codec], dict[str, Any]]] = {
    "x264": (X264, {}),
    "x265": (X265, {}),
    "x264-veryslow": (X264, {}),
    "x265-veryslow": (X265, {}),
    "x264-medium-noB": (X264, {"preset": "medium", "bframes": False}),
    "x265-medium-noB": (X265, {"preset": "medium", "bframes": False}),
    "svtav1": (SvtAv1, {}),
}
"""External codecs by the names ``--codecs`` accepts (``x264`` = ``x264-veryslow``)."""


def external_codec(name: str, *, strip_info_sei: bool = True) -> Codec | None:
    """The external codec called ``name``, or None when it is not one."""
    if name not in ANCHORS:
        return None
    cls, kwargs = ANCHORS[name]
    if issubclass(cls, _X26x):
        kwargs = {**kwargs, "strip_info_sei": strip_info_sei}
    return cls(**kwargs)
