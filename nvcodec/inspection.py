"""``inspect``: what is inside a ``.nvc`` file, and where its bits go (for ``nvc info``).

Reads and validates the file like the decoder does, but decodes no payload: per-tensor costs come
from the tensor table, tensor names from the model rebuilt on the ``meta`` device.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from bitstream import SectionType
from nvcodec.compression import read_table
from nvcodec.fileformat import read_nvc
from nvcodec.models import build_model

__all__ = ["FileInfo", "TensorInfo", "inspect"]

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

    @property
    def bits_per_param(self) -> float:
        numel = 1
        for d in self.shape:
            numel *= d
        return 8 * (self.side_bytes + self.payload_bytes) / max(numel, 1)


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

    @property
    def bpp(self) -> float:
        return 8 * self.size / self.pixels

    def bpp_breakdown(self) -> dict[str, float]:
        return {name: 8 * n / self.pixels for name, n in self.sections.items()}


def inspect(path: str | os.PathLike[str]) -> FileInfo:
    nvc = read_nvc(path)
    assert nvc.container is not None
    skeleton = build_model(nvc.config, device="meta")
    named = [(n, tuple(p.shape)) for n, p in skeleton.named_parameters()]
    rows = read_table(nvc.tensor_table, [shape for _, shape in named])
    tensors = tuple(
        TensorInfo(name, shape, bits, model, side, payload)
        for (name, shape), (bits, model, side, payload) in zip(named, rows, strict=True)
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
        path=os.fspath(path),
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
