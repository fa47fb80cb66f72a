"""nvcodec — an implicit-neural-representation video codec with real files.

Public API (imported lazily so that ``import nvcodec`` and ``nvc --help`` stay fast)::

    from nvcodec import encode, decode, inspect, EncodeOptions
    report = encode("clip.mp4", "clip.nvc", EncodeOptions(size=300_000, epochs=300))
    decode("clip.nvc", "out.y4m", frames=(0, 10))
    info = inspect("clip.nvc")
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = [
    "DecodeReport",
    "EncodeOptions",
    "EncodeReport",
    "FileInfo",
    "__version__",
    "decode",
    "decode_frames",
    "encode",
    "inspect",
]

_LAZY = {
    "encode": "nvcodec.encoder",
    "EncodeOptions": "nvcodec.encoder",
    "EncodeReport": "nvcodec.encoder",
    "decode": "nvcodec.decoder",
    "decode_frames": "nvcodec.decoder",
    "DecodeReport": "nvcodec.decoder",
    "inspect": "nvcodec.inspection",
    "FileInfo": "nvcodec.inspection",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'nvcodec' has no attribute {name!r}")
