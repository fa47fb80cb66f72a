"""The clip a network trains on, held as 8-bit yuv420 and converted to RGB one batch at a time.

Why: the training loop only ever looks at a batch of frames (and, for HNeRV/DNeRV, their
neighbours), but the encoder used to convert the whole clip to float32 RGB up front: 12 bytes per
pixel on the device, plus float64 temporaries of about 70 bytes per pixel during the conversion
(1080p × 600 frames: ~15 GB held, ~90 GB at the peak). :class:`ClipFrames` keeps the planes as
uint8 (1.5 bytes per pixel, shared with the reference on the CPU, one copy on a GPU) and converts
the frames a step asks for.

The conversion is :func:`nvcodec.io.colour.yuv420_to_rgb_tensor`, the one
:func:`nvcodec.io.yuv420_to_rgb` uses, so every target is bit-identical to what the whole-clip
conversion gave and encodes do not change (tests compare the two).
"""

from __future__ import annotations

import torch

from nvcodec.io.colour import ColourSpec, yuv420_to_rgb_tensor
from nvcodec.io.frames import Yuv420Frames

__all__ = ["ClipFrames"]


class ClipFrames:
    """T frames as a read-only T×3×H×W float32 RGB tensor in [0, 1], materialised on indexing.

    Supports what training needs of a frame tensor: ``shape``, ``device``, ``len()``, and
    indexing by an int, a slice or an index tensor (on any device), which returns a float32
    tensor on :attr:`device`.
    """

    def __init__(self, frames: Yuv420Frames, colour: ColourSpec, device: torch.device) -> None:
        self.device = torch.device(device)
        self.colour = colour
        planes = (frames.y, frames.u, frames.v)
        # On the CPU the planes are shared with the caller's arrays (no copy).
        self._y, self._u, self._v = (torch.from_numpy(p).to(self.device) for p in planes)

    @property
    def shape(self) -> torch.Size:
        t, h, w = self._y.shape
        return torch.Size((t, 3, h, w))

    def __len__(self) -> int:
        return int(self._y.shape[0])

    def __getitem__(self, index: int | slice | torch.Tensor) -> torch.Tensor:
        if isinstance(index, int):
            return self[torch.tensor([index])][0]
        if isinstance(index, torch.Tensor):
            index = index.to(self.device)
        planes = (self._y[index], self._u[index], self._v[index])
        return yuv420_to_rgb_tensor(*planes, self.colour)
