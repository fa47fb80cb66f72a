"""One JSON file per (codec, settings, clip, frame range, rate point): the benchmark's cache.

A point's key holds everything that decides its numbers — codec label, exact settings, tool
versions, clip name and size, frame range. The file name carries a hash of the key; a file is
reused only when the key stored inside it is equal to the wanted one, so changing any setting or
upgrading a library recomputes the point, and ``--force`` always does. Writes are atomic.

PSNRs of identical planes are infinite; JSON has no infinity, so they are stored as ``"inf"``.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

from benchmarks.codecs import Codec, CodecRun, Source
from nvcodec.io import QualityMetrics

__all__ = [
    "SCHEMA",
    "load_point",
    "make_record",
    "point_key",
    "point_stem",
    "save_point",
]

SCHEMA = 1
METRIC_KEYS = ("psnr_yuv", "psnr_y", "psnr_u", "psnr_v", "psnr_rgb", "ms_ssim")


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def metric_value(value: Any) -> float | None:
    """A stored metric back as a float (``"inf"`` → ``math.inf``; missing → None)."""
    if value is None:
        return None
    if isinstance(value, str):
        return float(value)
    return float(value)


def point_key(
    codec: Codec,
    point: float,
    clip: Path,
    frames: tuple[int, int | None] | None,
) -> dict[str, Any]:
    """Everything that decides a point's numbers (cheap: no video is read)."""
    start, stop = frames if frames is not None else (0, None)
    return {
        "schema": SCHEMA,
        "codec": codec.label,
        "point": {codec.point_name: point},
        "settings": codec.settings(point),
        "versions": codec.versions(),
        "clip": clip.name,
        "clip_bytes": clip.stat().st_size,
        "frames": [start, stop],
    }


def key_hash(key: dict[str, Any]) -> str:
    text = json.dumps(key, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def point_stem(codec: Codec, point: float, key: dict[str, Any]) -> str:
    """``x264-veryslow_crf28_1a2b3c4d5e``: readable, and unique per key."""
    return f"{codec.label}_{codec.point_name}{point:g}_{key_hash(key)[:10]}"


LATER_RECIPE_FIELDS: dict[str, Any] = {"patch": 0, "clip": 0.0, "bf16": False}
"""Training-recipe fields added after points were cached, with the value that means "off": a
key without such a field and one with it at this value describe the same encode."""
UNUSED_RECIPE_FIELDS = ("amp", "cpu_bf16")
"""Recipe fields that do not decide a point: ``amp`` and ``cpu_bf16`` only say when to autocast;
whether it ran is ``bf16`` (every point cached before it was fp32: no GPU had run, CPUs ignored
``amp``)."""


def _normal(key: Any) -> Any:
    """``key`` with :data:`LATER_RECIPE_FIELDS` at their "off" value and
    :data:`UNUSED_RECIPE_FIELDS` left out."""
    if not isinstance(key, dict):
        return key
    settings = key.get("settings")
    recipe = settings.get("recipe") if isinstance(settings, dict) else None
    if not isinstance(recipe, dict):
        return key
    recipe = {
        k: v
        for k, v in recipe.items()
        if LATER_RECIPE_FIELDS.get(k, object()) != v and k not in UNUSED_RECIPE_FIELDS
    }
    return {**key, "settings": {**settings, "recipe": recipe}}


def load_point(path: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    """The cached record at ``path`` if it parses and was made for ``key``; else one of its
    siblings for the same codec and point made for an equivalent key (one cached before a
    recipe field was added: its file name hashes the key it had then)."""
    wanted = _normal(key)
    prefix = path.stem.rsplit("_", 1)[0]
    candidates = [path, *sorted(p for p in path.parent.glob(f"{prefix}_*.json") if p != path)]
    for candidate in candidates:
        try:
            record = json.loads(candidate.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and _normal(record.get("key")) == wanted:
            return record
    return None


def save_point(path: Path, record: dict[str, Any]) -> None:
    """Write ``record`` atomically (temp file + ``os.replace``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(_jsonable(record), indent=1, sort_keys=False) + "\n")
    os.replace(tmp, path)


def _versions(key: dict[str, Any], run: CodecRun) -> dict[str, Any]:
    """The key's library versions plus the build line the encoder wrote into its stream."""
    versions = dict(key["versions"])
    info = run.notes.get("encoder_info")
    if isinstance(info, str):
        versions["encoder_build"] = info.split(" - options:", 1)[0]
    return versions


def make_record(
    codec: Codec,
    point: float,
    key: dict[str, Any],
    source: Source,
    run: CodecRun,
    metrics: QualityMetrics,
    folder: Path,
) -> dict[str, Any]:
    """The JSON record of one measured point (the protocol's fields, plus per-frame values)."""
    info = source.info
    pixels = info.width * info.height * info.frame_count
    start = source.frames[0] if source.frames else 0
    m = metrics.to_dict()
    return {
        "key": key,
        "codec": codec.label,
        "description": codec.describe(),
        "point": {codec.point_name: point},
        "clip": source.path.name,
        "clip_path": str(source.path),
        "frames": [start, start + info.frame_count],
        "width": info.width,
        "height": info.height,
        "frame_count": info.frame_count,
        "fps": str(info.fps),
        "colour": info.colour.to_dict(),
        "bitstream": os.path.relpath(run.bitstream, folder),
        "bytes": run.bytes,
        "bpp": 8.0 * run.bytes / pixels,
        **{k: m[k] for k in METRIC_KEYS},
        "encode_s": run.encode_s,
        "decode_s": run.decode_s,
        "device": run.device,
        "versions": _versions(key, run),
        "settings": key["settings"],
        "notes": run.notes,
        "per_frame": m["per_frame"],
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
