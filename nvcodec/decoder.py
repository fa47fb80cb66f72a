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

from bitstream import MalformedFileError
from nvcodec.compression import decode_tensors
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
from nvcodec.models import build_model
from nvcodec.models.budget import MAX_PARAMETERS
from nvcodec.ranges import (
    FrameRange,
    first_output_index,
    output_count,
    output_positions,
    parse_fps,
    resolve_range,
)

__all__ = ["DecodeReport", "LoadedModel", "decode", "decode_frames", "load_model", "render"]

"""Refuse files whose model would have more parameters (a constant-coded tensor costs 0 bytes)."""
MAX_ACTIVATION = 1 << 31
"""Refuse configs whose largest per-frame activation has more elements (8 GiB in float32)."""
BATCH_ACTIVATION = 1 << 26
"""Frames per decode batch are chosen so one batch's largest activation stays under this."""


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
    """Parse ``path`` and rebuild its network from the file alone.

    ``max_memory``: bytes decoding may use (default: 80 % of physical memory); a file that needs
    more is refused before anything is allocated."""
    name = os.fspath(path)
    nvc = read_nvc(path)
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
    model.to(target).eval()
    return LoadedModel(nvc=nvc, model=model, device=target, name=name)


def batch_size_for(loaded: LoadedModel) -> int:
    per_frame = loaded.nvc.config.activation_elements()
    return max(1, min(32, BATCH_ACTIVATION // max(per_frame, 1)))


def render(loaded: LoadedModel, positions: Sequence[float]) -> Iterator[Yuv420Frames]:
    """Frames at ``positions`` (frame units, may be fractional), as yuv420p, in bounded batches."""
    batch = batch_size_for(loaded)
    colour = loaded.nvc.video.colour
    with torch.inference_mode():
        for start in range(0, len(positions), batch):
            t = torch.tensor(positions[start : start + batch], dtype=torch.float32)
            with full_fp32():  # per call: the caller's settings hold between batches
                rgb = loaded.model(t.to(loaded.device))
            if not bool(torch.isfinite(rgb).all()):
                # clamp would turn NaN into 0: refuse instead of writing garbage as success
                raise MalformedFileError(
                    f"{loaded.name}: the model produces non-finite values (frame positions "
                    f"{positions[start]:g}..{positions[min(start + batch, len(positions)) - 1]:g})"
                )
            rgb = rgb.clamp_(0.0, 1.0)
            rgb_np = rgb.permute(0, 2, 3, 1).to("cpu", torch.float32).numpy()
            y, u, v = rgb_to_yuv420(rgb_np, colour)
            yield Yuv420Frames(y=y, u=u, v=v)


def decode_frames(
    path: str | os.PathLike[str],
    frames: FrameRange | None = None,
    device: str = "auto",
    max_memory: int | None = None,
) -> Yuv420Frames:
    """All requested frames in memory (for verification and tests; use :func:`decode` to stream)."""
    loaded = load_model(path, device, max_memory)
    start, stop = resolve_range(frames, loaded.nvc.video.frame_count, loaded.name)
    return Yuv420Frames.concatenate(list(render(loaded, [float(i) for i in range(start, stop)])))


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
    continuous in time only: DS-NeRV, HiNeRV, NeRV, NeRV++).
    """
    begin = time.perf_counter()
    check_output(output, overwrite=overwrite)
    loaded = load_model(path, device, max_memory)
    video = loaded.nvc.video
    start, stop = resolve_range(frames, video.frame_count, loaded.name)
    rate = video.fps
    positions = [float(i) for i in range(start, stop)]
    first_number = start
    if fps is not None:
        rate = parse_fps(fps, video.fps)
        if rate != video.fps and not getattr(loaded.model, "INTERPOLATES", False):
            raise ConfigError(
                f"{loaded.name}: model {loaded.nvc.model_id} stores one embedding per frame and "
                "cannot render frames between them; --fps is unavailable for it"
            )
        check_output_frames(output_count(start, stop, video.fps, rate), loaded.name)
        positions = output_positions(start, stop, video.fps, rate, video.frame_count)
        first_number = first_output_index(start, video.fps, rate)
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
        for batch in render(loaded, positions):
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
        device=str(loaded.device),
    )
