"""``inspect``: what is inside a ``.nvc`` file, and where its bits go (for ``nvc info``).

Reads and validates the file like the decoder does; per-tensor costs come from the tensor table,
tensor names from the model rebuilt on the ``meta`` device. The payloads are entropy-decoded (no
network is run; it is cheap) to measure each one against the ideal code length of the symbols
under the tensor's stored model, and to count zero symbols (pruned weights).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from bitstream import SectionType
from nvcodec.compression import tensor_costs
from nvcodec.decoder import checked_skeleton
from nvcodec.errors import ConfigError
from nvcodec.fileformat import naming_file
from nvcodec.models import count_parameters
from nvcodec.segmented import open_video

__all__ = [
    "FileInfo",
    "GroupInfo",
    "SegmentInfo",
    "SegmentedInfo",
    "TensorInfo",
    "group_of",
    "inspect",
    "inspect_segments",
]

HEADER_BYTES_FIXED = 28  # magic, versions, count, reserved, header CRC
SECTION_ENTRY_BYTES = 32


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    bits: int
    entropy_model: str
    side_bytes: int
    payload_bytes: int
    ideal_payload_bits: float = 0.0
    zeros: int = 0
    steps: tuple[float, float] = (0.0, 0.0)  # smallest and largest quantisation step

    @property
    def numel(self) -> int:
        return _numel(self.shape)

    @property
    def payload_gap(self) -> float:
        """Coded payload over its ideal length, minus 1."""
        ideal = self.ideal_payload_bits / 8
        return self.payload_bytes / ideal - 1 if ideal > 0 else 0.0

    @property
    def bits_per_param(self) -> float:
        return 8 * (self.side_bytes + self.payload_bytes) / max(self.numel, 1)


@dataclass(frozen=True)
class GroupInfo:
    """Tensors grouped by role: ``codes`` (latents/embeddings) or the top-level decoder module."""

    name: str
    parameters: int
    bits: tuple[int, ...]  # distinct bit depths in the group
    side_bytes: int
    payload_bytes: int
    ideal_payload_bits: float
    zeros: int

    @property
    def bits_per_param(self) -> float:
        return 8 * (self.side_bytes + self.payload_bytes) / max(self.parameters, 1)

    @property
    def payload_gap(self) -> float:
        """Coded payload over its ideal length, minus 1 (0.004 = 0.4 % above the ideal)."""
        ideal = self.ideal_payload_bits / 8
        return self.payload_bytes / ideal - 1 if ideal > 0 else 0.0


def group_of(name: str) -> str:
    if "codes" in name or "embeddings" in name:
        return "codes"
    return name.split(".")[0]


@dataclass(frozen=True)
class FileInfo:
    path: str
    size: int
    writer_version: tuple[int, int]
    reader_version: tuple[int, int]
    metadata: dict[str, Any]
    parameters: int
    sections: dict[str, int]  # section name (and "header") → bytes
    tensors: tuple[TensorInfo, ...]
    pixels: int  # W·H·T

    def groups(self) -> list[GroupInfo]:
        order: dict[str, list[TensorInfo]] = {}
        for t in self.tensors:
            order.setdefault(group_of(t.name), []).append(t)
        return [_group(name, ts) for name, ts in order.items()]

    def total(self) -> GroupInfo:
        return _group("all", list(self.tensors))

    @property
    def bpp(self) -> float:
        return 8 * self.size / self.pixels

    def bpp_breakdown(self) -> dict[str, float]:
        return {name: 8 * n / self.pixels for name, n in self.sections.items()}


@dataclass(frozen=True)
class SegmentInfo:
    index: int
    start: int
    stop: int
    model: str
    parameters: int
    bytes: int
    psnr_yuv: float | None  # as the encoder measured it, when the file says

    def bpp(self, width: int, height: int) -> float:
        return 8 * self.bytes / (width * height * (self.stop - self.start))


@dataclass(frozen=True)
class SegmentedInfo:
    """A segmented file: the whole video, and per segment its frames, model and bytes."""

    path: str
    size: int
    writer_version: tuple[int, int]
    reader_version: tuple[int, int]
    metadata: dict[str, Any]
    segments: tuple[SegmentInfo, ...]

    @property
    def bpp(self) -> float:
        video = self.metadata["video"]
        return 8 * self.size / (video["width"] * video["height"] * video["frames"])


def inspect_segments(path: str | os.PathLike[str]) -> SegmentedInfo | None:
    """The segment table of a segmented file (each segment read and validated, no tensor
    decoded); None for a one-segment file."""
    with open_video(path) as nv:
        if not nv.segmented:
            return None
        psnrs = nv.metadata.get("encoder", {}).get("segment_psnr_yuv")
        rows = []
        for i, entry in enumerate(nv.entries):
            nvc = nv.segment(i)
            psnr = psnrs[i] if isinstance(psnrs, list) and len(psnrs) == len(nv.entries) else None
            rows.append(
                SegmentInfo(
                    i,
                    entry.first_frame,
                    entry.stop,
                    nvc.model_id,
                    count_parameters(nvc.config),
                    entry.length,
                    float(psnr) if isinstance(psnr, int | float) else None,
                )
            )
        return SegmentedInfo(
            nv.name, nv.size, nv.writer_version, nv.reader_version, nv.metadata, tuple(rows)
        )


def inspect(
    path: str | os.PathLike[str], max_memory: int | None = None, segment: int | None = None
) -> FileInfo:
    """What is in the file (or in segment ``segment`` of a segmented file), with the decoder's
    limits: decoding the tensors to count their costs needs the parameters' memory (not the
    activations'), checked before anything is allocated."""
    with open_video(path) as nv:
        if segment is not None and not 0 <= segment < len(nv.entries):
            raise ConfigError(f"{nv.name} has {len(nv.entries)} segment(s); no segment {segment}")
        if nv.segmented and segment is None:
            raise ConfigError(f"{nv.name} is segmented: choose a segment to inspect")
        nvc = nv.segment(segment or 0)
    name = f"{os.fspath(path)} (segment {segment})" if nv.segmented else os.fspath(path)
    assert nvc.container is not None
    checked = checked_skeleton(nvc, name, max_memory, activations=False)
    named = [(n, tuple(p.shape)) for n, p in checked]
    with naming_file(name):
        rows = tensor_costs(nvc.tensor_table, nvc.tensor_data, [shape for _, shape in named])
    tensors = tuple(
        TensorInfo(
            name,
            shape,
            c.bits,
            c.entropy_model,
            c.side_bytes,
            c.payload_bytes,
            c.ideal_payload_bits,
            c.zeros,
            c.steps,
        )
        for (name, shape), c in zip(named, rows, strict=True)
    )
    sections = {"header": HEADER_BYTES_FIXED + SECTION_ENTRY_BYTES * len(nvc.container.sections)}
    for section in nvc.container.sections:
        try:
            key = SectionType(section.type).name.lower()
        except ValueError:
            key = f"section-{section.type}"
        sections[key] = len(section.data)
    video = nvc.video
    return FileInfo(
        path=name,
        size=nvc.container.size,
        writer_version=nvc.container.writer_version,
        reader_version=nvc.container.reader_version,
        metadata=nvc.metadata(),
        parameters=sum(_numel(s) for _, s in named),
        sections=sections,
        tensors=tensors,
        pixels=video.width * video.height * video.frame_count,
    )


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _group(name: str, tensors: list[TensorInfo]) -> GroupInfo:
    return GroupInfo(
        name=name,
        parameters=sum(t.numel for t in tensors),
        bits=tuple(sorted({t.bits for t in tensors})),
        side_bytes=sum(t.side_bytes for t in tensors),
        payload_bytes=sum(t.payload_bytes for t in tensors),
        ideal_payload_bits=sum(t.ideal_payload_bits for t in tensors),
        zeros=sum(t.zeros for t in tensors),
    )
