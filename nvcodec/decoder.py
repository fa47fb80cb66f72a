"""The standalone decoder: ``.nvc`` bytes → model → frames. Imports no training code.

::

    read + verify container ─► validate metadata ─► check limits on the meta device
      ─► entropy-decode + dequantise ─► load into the rebuilt model ─► model(t) in bounded batches
      ─► RGB → yuv420p (the file's colour conversion) ─► writer

Any frame range decodes on its own: the model is evaluated only at the requested positions.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from bitstream import MalformedFileError, SegmentEntry
from nvcodec.compression import decode_tensors
from nvcodec.decode_layout import colour_dtype, frames_per_batch, prepare
from nvcodec.device import full_fp32, resolve_device
from nvcodec.errors import ConfigError
from nvcodec.fileformat import NvcFile, naming_file, read_nvc
from nvcodec.io import (
    Yuv420Frames,
    check_output,
    is_stream_target,
    open_writer,
    rgb_to_yuv420,
    y4m_bytes,
)
from nvcodec.limits import check_disk, check_memory, check_output_frames
from nvcodec.models import build_model, get_spec
from nvcodec.models.budget import MAX_PARAMETERS
from nvcodec.ranges import (
    FrameRange,
    first_output_index,
    output_count,
    output_positions,
    parse_fps,
    resolve_range,
)
from nvcodec.segmented import NvcVideo, open_video

__all__ = [
    "DecodeReport",
    "LoadedModel",
    "decode",
    "decode_frames",
    "load_model",
    "load_segment",
    "render",
    "render_video",
    "split_positions",
]

"""Refuse files whose model would have more parameters (a constant-coded tensor costs 0 bytes)."""
MAX_ACTIVATION = 1 << 31
"""Refuse configs whose largest per-frame activation has more elements (8 GiB in float32)."""


@dataclass(frozen=True)
class LoadedModel:
    nvc: NvcFile
    model: nn.Module
    device: torch.device
    name: str


@dataclass(frozen=True)
class DecodeReport:
    output: str
    frames: int  # frames written
    start: int  # first stored frame of the range
    stop: int  # end of the range (exclusive), in stored frames
    fps: float  # output frame rate
    seconds: float
    device: str


def checked_skeleton(
    nvc: NvcFile, name: str, max_memory: int | None, *, activations: bool = True
) -> list[tuple[str, nn.Parameter]]:
    """The model's parameters on the meta device, after the decoder's limits (the file's format
    limits, then the memory decoding needs: :mod:`nvcodec.limits`); nothing real is allocated."""
    per_frame = nvc.config.activation_elements()
    if per_frame > MAX_ACTIVATION:
        raise MalformedFileError(f"{name}: model activations exceed the decoder's limit")
    named = list(build_model(nvc.config, device="meta").named_parameters())
    parameters = sum(p.numel() for _, p in named)
    if parameters > MAX_PARAMETERS:
        raise MalformedFileError(f"{name}: model has more than {MAX_PARAMETERS:,} parameters")
    check_memory(name, parameters, per_frame if activations else 0, max_memory)
    return named


def load_model(
    path: str | os.PathLike[str], device: str = "auto", max_memory: int | None = None
) -> LoadedModel:
    """Parse a one-segment ``path`` and rebuild its network from the file alone.

    ``max_memory``: bytes decoding may use (default: 80 % of physical memory); a file that needs
    more is refused before anything is allocated."""
    return load_segment(read_nvc(path), os.fspath(path), device, max_memory)


def load_segment(
    nvc: NvcFile, name: str, device: str = "auto", max_memory: int | None = None
) -> LoadedModel:
    """Rebuild the network of one parsed segment (a one-segment file is one)."""
    named = checked_skeleton(nvc, name, max_memory)
    with naming_file(name):
        shapes = [tuple(p.shape) for _, p in named]
        tensors = decode_tensors(nvc.tensor_table, nvc.tensor_data, shapes)
    target = resolve_device(device)
    # The constructor draws initial weights that the file's replace; drawing them from a forked
    # generator leaves the caller's random state as it was (decoding must not change it).
    with torch.random.fork_rng(devices=[]):
        model = build_model(nvc.config, device="cpu")
    with torch.no_grad():
        for (_, param), value in zip(model.named_parameters(), tensors, strict=True):
            param.copy_(value)
    prepare(model.to(target), nvc.layout).eval()
    return LoadedModel(nvc=nvc, model=model, device=target, name=name)


def split_positions(
    entries: Sequence[SegmentEntry], positions: Sequence[float]
) -> list[tuple[int, list[float]]]:
    """Group output positions (frame units of the whole video, ascending) by the segment that
    renders them, as positions local to it. A position between two segments' frames (``--fps``)
    belongs to the earlier one and is held at its last frame: segments are independent, so no
    model is asked to extrapolate past its own frames."""
    parts: list[tuple[int, list[float]]] = []
    k = 0
    for p in positions:
        while k + 1 < len(entries) and p >= entries[k + 1].first_frame:
            k += 1
        entry = entries[k]
        local = min(p - entry.first_frame, float(entry.frame_count - 1))
        if not parts or parts[-1][0] != k:
            parts.append((k, []))
        parts[-1][1].append(local)
    return parts


def _preflight(
    nv: NvcVideo, parts: list[tuple[int, list[float]]], max_memory: int | None, interpolate: bool
) -> None:
    """Read and validate every segment a decode needs before any output exists: a damaged or
    oversized segment, or one whose model cannot interpolate, is refused up front."""
    for index, _ in parts:
        nvc = nv.segment(index)
        label = _label(nv, index)
        checked_skeleton(nvc, label, max_memory)
        if interpolate and not getattr(get_spec(nvc.model_id).module, "INTERPOLATES", False):
            raise ConfigError(
                f"{label}: model {nvc.model_id} stores one embedding per frame and cannot "
                "render frames between them; --fps is unavailable for it"
            )


def _label(nv: NvcVideo, index: int) -> str:
    return f"{nv.name} (segment {index})" if nv.segmented else nv.name


def render_video(
    nv: NvcVideo,
    parts: list[tuple[int, list[float]]],
    device: str,
    max_memory: int | None,
) -> Iterator[Yuv420Frames]:
    """The frames of ``parts`` (:func:`split_positions`), one segment's model at a time."""
    for index, local in parts:
        loaded = load_segment(nv.segment(index), _label(nv, index), device, max_memory)
        yield from render(loaded, local)
        del loaded


def batch_size_for(loaded: LoadedModel) -> int:
    """Frames per decode batch of a loaded file: its layout's rule
    (:func:`nvcodec.decode_layout.frames_per_batch`)."""
    nvc = loaded.nvc
    return frames_per_batch(nvc.layout, nvc.config.activation_elements(), nvc.video.frame_count)


def render(loaded: LoadedModel, positions: Sequence[float]) -> Iterator[Yuv420Frames]:
    """Frames at ``positions`` (frame units, may be fractional), as yuv420p, in bounded batches.

    Every batch has the same shape (a short last batch is padded by repeating its last
    position, and the padding dropped): convolution libraries pick their algorithm by shape,
    and a frame computed in a batch of 1 could otherwise differ by one level from the same
    frame in a batch of 6, so a range decode would not equal the slice of a whole decode."""
    batch = batch_size_for(loaded)
    colour = loaded.nvc.video.colour
    with torch.inference_mode():
        for start in range(0, len(positions), batch):
            chunk = list(positions[start : start + batch])
            count = len(chunk)
            t = torch.tensor(chunk + chunk[-1:] * (batch - count), dtype=torch.float32)
            with full_fp32():  # per call: the caller's settings hold between batches
                rgb = loaded.model(t.to(loaded.device))[:count]
            if not bool(torch.isfinite(rgb).all()):
                # clamp would turn NaN into 0: refuse instead of writing garbage as success
                raise MalformedFileError(
                    f"{loaded.name}: the model produces non-finite values (frame positions "
                    f"{positions[start]:g}..{positions[min(start + batch, len(positions)) - 1]:g})"
                )
            rgb = rgb.clamp_(0.0, 1.0)
            rgb_np = rgb.permute(0, 2, 3, 1).to("cpu", torch.float32).numpy()
            y, u, v = rgb_to_yuv420(rgb_np, colour, colour_dtype(loaded.nvc.layout))
            yield Yuv420Frames(y=y, u=u, v=v)


def decode_frames(
    path: str | os.PathLike[str],
    frames: FrameRange | None = None,
    device: str = "auto",
    max_memory: int | None = None,
) -> Yuv420Frames:
    """All requested frames in memory (for verification and tests; use :func:`decode` to stream)."""
    with open_video(path) as nv:
        start, stop = resolve_range(frames, nv.video.frame_count, nv.name)
        parts = split_positions(nv.entries, [float(i) for i in range(start, stop)])
        _preflight(nv, parts, max_memory, interpolate=False)
        return Yuv420Frames.concatenate(list(render_video(nv, parts, device, max_memory)))


def decode(
    path: str | os.PathLike[str],
    output: str,
    *,
    frames: FrameRange | None = None,
    fps: str | None = None,
    device: str = "auto",
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    max_memory: int | None = None,
) -> DecodeReport:
    """Decode ``path`` to ``output`` (``.y4m``, ``.mp4``/``.mkv``, ``DIR/%05d.png`` or ``-``).

    ``frames`` selects stored frames ``[A, B)``; ``fps`` (``"2x"``, ``"48"``) renders that range
    at another frame rate by evaluating the model between stored frames (models whose codes are
    continuous in time only: DS-NeRV, HiNeRV, NeRV, NeRV++). Of a segmented file only the
    segments holding the range are read, and one segment's model is in memory at a time.
    """
    begin = time.perf_counter()
    check_output(output, overwrite=overwrite)
    with open_video(path) as nv:
        video = nv.video
        start, stop = resolve_range(frames, video.frame_count, nv.name)
        rate, positions, first_number = video.fps, [float(i) for i in range(start, stop)], start
        if fps is not None:
            rate = parse_fps(fps, video.fps)
            check_output_frames(output_count(start, stop, video.fps, rate), nv.name)
            positions = output_positions(start, stop, video.fps, rate, video.frame_count)
            first_number = first_output_index(start, video.fps, rate)
        parts = split_positions(nv.entries, positions)
        _preflight(nv, parts, max_memory, interpolate=rate != video.fps)
        if output.lower().endswith(".y4m") and not is_stream_target(output):
            check_disk(output, y4m_bytes(len(positions), video.width, video.height))
        done = 0
        with open_writer(
            output,
            width=video.width,
            height=video.height,
            fps=rate,
            colour=video.colour,
            overwrite=overwrite,
            first_number=first_number,
        ) as writer:
            for batch in render_video(nv, parts, device, max_memory):
                writer.write(batch)
                done += batch.count
                if progress is not None:
                    progress(done, len(positions))
    return DecodeReport(
        output=output,
        frames=len(positions),
        start=start,
        stop=stop,
        fps=float(rate),
        seconds=time.perf_counter() - begin,
        device=str(resolve_device(device)),
    )
