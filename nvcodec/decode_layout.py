"""The decode layout: how a file's network is evaluated, declared by the file (format 1.3).

Why it is a format field and not a decoder setting: convolution libraries choose their kernels by
memory layout and batch shape, and different kernels round differently (one float32 ulp, which
moves up to about 100 in 10⁷ 8-bit samples by one code at 640×320, depending on the model). A
file's frames are what its encoder measured, so the arithmetic that makes them is part of the
file:

- ``nchw`` — every file before format 1.3 (they carry no ``decode`` key): contiguous NCHW
  tensors, decode batches of up to 32 frames with at most 2²⁶ activation elements. Kept bit for
  bit, so old files decode exactly as before (``benchmarks.forward_check --layout nchw`` gives
  the hashes of the code before 1.3; the golden files check it to ±1 code across machines).
- ``channels-last`` — what nvcodec writes from format 1.3 on: weights and activations in
  channels-last order, batches whose largest activation stays under 2²² elements where a frame
  allows (at 640×320 none does: one frame per batch), spread evenly. oneDNN then runs the
  convolutions in its native NHWC kernels instead of reordering every activation into and out
  of its blocked layout, and a smaller batch stays in the cache: at 640×320 on the project's
  CPU every model decodes 1.5–3.4× as fast end to end (a 48-frame DS-NeRV file 2.5×;
  ``benchmarks/results/throughput``). The RGB → YUV conversion runs in float32 instead of
  float64 (:func:`colour_dtype`).

A layout's batch rule and colour arithmetic are frozen with its name: changing them would change
what existing files decode to, so a new rule needs a new layout name (and a reader version).
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import torch
from torch import nn

__all__ = [
    "CHANNELS_LAST",
    "DEFAULT_LAYOUT",
    "LAYOUTS",
    "NCHW",
    "colour_dtype",
    "frames_per_batch",
    "layout_metadata",
    "parse_layout",
    "prepare",
    "reader_version",
]

NCHW: Final = "nchw"
CHANNELS_LAST: Final = "channels-last"
LAYOUTS: Final = (CHANNELS_LAST, NCHW)
DEFAULT_LAYOUT: Final = CHANNELS_LAST
"""What ``nvc encode`` writes unless told otherwise (``--decode-layout nchw`` writes files that
nvcodec readers before format 1.3 decode)."""

_BATCH_ACTIVATION: Final = {NCHW: 1 << 26, CHANNELS_LAST: 1 << 22}
"""Per layout: frames per batch keep the batch's largest activation under this many elements.
2²² (16 MiB of float32) was the fastest of batches 1, 4 and 16 in channels-last at 160×80,
320×160 and 640×320 (DS-NeRV and HNeRV, 2 threads)."""
_MAX_BATCH: Final = 32
_COLOUR_DTYPE: Final = {NCHW: np.float64, CHANNELS_LAST: np.float32}
_READER: Final = {NCHW: (1, 0), CHANNELS_LAST: (1, 3)}


def frames_per_batch(layout: str, activation_elements: int, frames: int) -> int:
    """Frames per decode batch in ``layout`` for a model whose largest activation has
    ``activation_elements`` per frame. Decoded values depend on it.

    The cap: as many frames as keep the activation under the layout's budget, at most 32, and
    never more than the clip's ``frames``. ``nchw`` (frozen as before 1.3) uses the cap itself;
    ``channels-last`` evens the batches out under it, because a short last batch is padded to
    full size: 16 frames under a cap of 15 would compute 30, in two batches of 8 they compute 16.
    """
    cap = max(1, min(_MAX_BATCH, frames, _BATCH_ACTIVATION[layout] // max(activation_elements, 1)))
    if layout == NCHW:
        return cap
    batches = -(-frames // cap)
    return -(-frames // batches)


def colour_dtype(layout: str) -> type[np.floating]:
    """The float type the decoder converts RGB to YUV in for ``layout``: float64 for ``nchw``
    (as before 1.3), float32 for ``channels-last``, whose chroma means are strided adds: in a
    channels-last decode of 48 DS-NeRV frames at 640×320 the conversion took 0.15 instead of
    0.35 s (a fifth of the decode), and it rounds one sample in about 10⁵ to the neighbouring
    code."""
    return _COLOUR_DTYPE[layout]


def prepare(model: nn.Module, layout: str) -> nn.Module:
    """``model`` with its weights in ``layout`` (in place); its activations follow them, because
    every convolution returns the memory format of its weight and the models' pixel shuffles and
    norms keep the format they are given."""
    if layout == CHANNELS_LAST:
        return model.to(memory_format=torch.channels_last)
    return model


def reader_version(layout: str) -> tuple[int, int]:
    """The oldest format version whose readers decode ``layout``: a reader that ignored the
    field would decode the file in another layout, close to but not what was encoded."""
    return _READER[layout]


def layout_metadata(layout: str) -> dict[str, Any]:
    """The METADATA entries that declare ``layout`` (none for ``nchw``, as before 1.3)."""
    return {} if layout == NCHW else {"decode": {"layout": layout}}


def parse_layout(meta: dict[str, Any]) -> str:
    """The layout a METADATA object declares: ``nchw`` without a ``decode`` key; raises
    ``ValueError`` for anything but a known layout, so a file is never decoded in a guessed one."""
    if "decode" not in meta:
        return NCHW
    decode = meta["decode"]
    if not isinstance(decode, dict) or set(decode) != {"layout"}:
        raise ValueError('decode must be an object with exactly the key "layout"')
    layout = decode["layout"]
    if layout not in LAYOUTS:
        raise ValueError(f"decode layout {layout!r} is unknown (known: {', '.join(LAYOUTS)})")
    return str(layout)
