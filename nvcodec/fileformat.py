"""What nvcodec stores in a ``.nvc`` container, and the validation of it on the way back in.

The container (:mod:`bitstream`) knows sections and checksums; this module knows what the
METADATA section means: video geometry, frame rate, colour, the model id and its full config,
and the quantisation settings. Everything read from a file is checked here (types, ranges,
consistency between the video and the model) before the decoder builds anything, and every
failure is a :class:`bitstream.MalformedFileError` naming the file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from bitstream import (
    Container,
    MalformedFileError,
    Section,
    SectionType,
    decode_metadata,
    encode_metadata,
    read_file,
    write_file,
)
from nvcodec.decode_layout import NCHW, layout_metadata, parse_layout
from nvcodec.decode_layout import reader_version as layout_reader
from nvcodec.errors import ConfigError
from nvcodec.io.colour import ColourSpec
from nvcodec.models.config import MAX_FRAMES, ModelConfig
from nvcodec.models.registry import config_from_dict

__all__ = [
    "NvcFile",
    "StoredVideo",
    "naming_file",
    "parse_metadata",
    "parse_video",
    "read_nvc",
    "write_nvc",
]

MAX_FPS_TERM = 1_000_000


@dataclass(frozen=True)
class StoredVideo:
    width: int
    height: int
    frame_count: int
    fps: Fraction
    colour: ColourSpec

    def to_dict(self) -> dict[str, Any]:
        return {
            "width": self.width,
            "height": self.height,
            "frames": self.frame_count,
            "fps": [self.fps.numerator, self.fps.denominator],
            "colour": self.colour.to_dict(),
        }


@dataclass(frozen=True)
class NvcFile:
    """A parsed, validated ``.nvc`` file: everything the decoder needs, nothing trusted blindly."""

    video: StoredVideo
    model_id: str
    config: ModelConfig
    bits: int
    encoder: dict[str, Any] = field(default_factory=dict)  # informational: version, settings
    container: Container | None = None
    # informational compression settings (pruning, QAT, code bits, rate target); bits per tensor
    # are in the tensor table
    compression: dict[str, Any] = field(default_factory=dict)
    layout: str = NCHW  # how the network is evaluated (nvcodec.decode_layout); "nchw" before 1.3

    def metadata(self) -> dict[str, Any]:
        return {
            **layout_metadata(self.layout),
            "video": self.video.to_dict(),
            "model": {"id": self.model_id, "config": self.config.to_dict()},
            "compression": {
                "quantiser": "symmetric-per-channel-fp16-scale",
                **self.compression,  # RD training names its own quantiser
                "bits": self.bits,
            },
            "encoder": self.encoder,
        }

    @property
    def tensor_table(self) -> bytes:
        assert self.container is not None
        return self.container.get(SectionType.TENSOR_TABLE).data

    @property
    def tensor_data(self) -> bytes:
        assert self.container is not None
        return self.container.get(SectionType.TENSOR_DATA).data


@contextlib.contextmanager
def naming_file(name: str) -> Iterator[None]:
    """Prefix errors from section parsers (which only know the section) with the file name."""
    try:
        yield
    except MalformedFileError as exc:
        if str(exc).startswith(f"{name}: "):
            raise
        raise MalformedFileError(f"{name}: {exc}") from None


def write_nvc(
    path: str | os.PathLike[str],
    nvc: NvcFile,
    table: bytes,
    data: bytes,
    *,
    overwrite: bool,
    reader_version: tuple[int, int] = (1, 0),
) -> int:
    """Write atomically; returns the file size in bytes (the rate).

    ``reader_version`` is the oldest format a reader must support to decode the tensor
    sections: the newest feature they use (e.g. 1.1 for the Gaussian entropy model), 1.0
    otherwise. The file declares the later of it and its decode layout's (1.3 for channels-last).
    """
    reader_version = max(reader_version, layout_reader(nvc.layout))
    sections = [
        Section(SectionType.METADATA, encode_metadata(nvc.metadata())),
        Section(SectionType.TENSOR_TABLE, table),
        Section(SectionType.TENSOR_DATA, data),
    ]
    return write_file(path, sections, overwrite=overwrite, reader_version=reader_version)


def read_nvc(path: str | os.PathLike[str]) -> NvcFile:
    """Read, verify and validate a one-segment file (raises :class:`bitstream.NvcError`
    subclasses); :func:`nvcodec.segmented.open_video` opens either kind."""
    name = os.fspath(path)
    container = read_file(path)
    if container.find(SectionType.SEGMENT_INDEX) is not None:
        raise MalformedFileError(f"{name}: a segmented file; open it with open_video")
    return parse_metadata(container, name)


def parse_metadata(container: Container, name: str) -> NvcFile:
    """The validated contents of a verified one-segment container."""
    meta = decode_metadata(container.get(SectionType.METADATA).data, name=name)
    container.get(SectionType.TENSOR_TABLE)
    container.get(SectionType.TENSOR_DATA)
    with _invalid_metadata(name):
        return _parse(meta, container)


def parse_video(meta: dict[str, Any], name: str) -> StoredVideo:
    """The ``video`` object of a METADATA section, validated."""
    with _invalid_metadata(name):
        return _video(meta["video"])


@contextlib.contextmanager
def _invalid_metadata(name: str) -> Iterator[None]:
    """Validation failures as one :class:`MalformedFileError` naming the file."""
    try:
        yield
    except (ConfigError, KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
        if isinstance(exc, MalformedFileError):
            raise
        detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise MalformedFileError(f"{name}: invalid metadata: {detail}") from None


def _int(obj: Any, lo: int, hi: int, what: str) -> int:
    if not isinstance(obj, int) or isinstance(obj, bool) or not lo <= obj <= hi:
        raise ValueError(f"{what} must be an integer in [{lo}, {hi}], got {obj!r}")
    return obj


def _video(video: Any) -> StoredVideo:
    if not isinstance(video, dict):
        raise ValueError("video must be an object")
    fps = video["fps"]
    if not isinstance(fps, list) or len(fps) != 2:
        raise ValueError("fps must be [numerator, denominator]")
    return StoredVideo(
        width=_int(video["width"], 1, 1 << 16, "width"),
        height=_int(video["height"], 1, 1 << 16, "height"),
        frame_count=_int(video["frames"], 1, MAX_FRAMES, "frames"),
        fps=Fraction(
            _int(fps[0], 1, MAX_FPS_TERM, "fps numerator"),
            _int(fps[1], 1, MAX_FPS_TERM, "fps denominator"),
        ),
        colour=ColourSpec.from_dict(video["colour"]),
    )


def _parse(meta: dict[str, Any], container: Container) -> NvcFile:
    model, compression = meta["model"], meta["compression"]
    config = config_from_dict(model["id"], model["config"])
    stored = _video(meta["video"])
    if (stored.width, stored.height, stored.frame_count) != (
        config.width,
        config.height,
        config.frame_count,
    ):
        raise ValueError("video geometry and model config disagree")
    encoder = meta.get("encoder", {})
    return NvcFile(
        video=stored,
        model_id=model["id"],
        config=config,
        bits=_int(compression["bits"], 2, 16, "bits"),
        encoder=encoder if isinstance(encoder, dict) else {},
        container=container,
        compression={k: v for k, v in compression.items() if k != "bits"}
        if isinstance(compression, dict)
        else {},
        layout=parse_layout(meta),
    )
