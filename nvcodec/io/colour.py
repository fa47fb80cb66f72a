"""The one YUV <-> RGB conversion the codec uses.

The reference of every quality measurement is the source decoded to 8-bit yuv420p; the network
is trained on RGB made from it, and its RGB output goes back to yuv420p for YUV metrics and for
writing. Using a single, fixed, documented conversion on both sides (rather than whatever swscale
picks for a given build and CPU) keeps the round trip exact and the numbers reproducible.

Chroma upsampling is nearest-neighbour (each chroma sample covers its 2x2 block) and chroma
downsampling is the mean of each 2x2 block. Together they make
``rgb_to_yuv420(yuv420_to_rgb(x)) == x`` wherever no RGB clipping happens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from nvcodec.errors import ConfigError

__all__ = ["MATRICES", "ColourSpec", "rgb_to_yuv420", "yuv420_to_rgb", "yuv420_to_rgb_tensor"]

Matrix = Literal["bt709", "bt601", "bt2020", "smpte240m", "fcc"]
Range = Literal["limited", "full"]

# (Kr, Kb) luma coefficients of each matrix.
_COEFFS: dict[str, tuple[float, float]] = {
    "bt709": (0.2126, 0.0722),
    "bt601": (0.299, 0.114),
    "bt2020": (0.2627, 0.0593),  # non-constant luminance (BT.2020 NCL, BT.2100 Y'CbCr)
    "smpte240m": (0.212, 0.087),
    "fcc": (0.30, 0.11),
}
MATRICES = tuple(_COEFFS)
"""Every YUV matrix nvcodec converts exactly; a file stores one of these names."""
# (luma offset, luma scale, chroma scale) for 8-bit samples of each range.
_SCALES: dict[str, tuple[float, float, float]] = {
    "limited": (16.0, 219.0, 224.0),
    "full": (0.0, 255.0, 255.0),
}


@dataclass(frozen=True)
class ColourSpec:
    """How 8-bit YUV samples map to RGB: the matrix and the sample range."""

    matrix: Matrix = "bt709"
    range: Range = "limited"

    def __post_init__(self) -> None:
        if self.matrix not in _COEFFS:
            raise ConfigError(
                f"unknown colour matrix {self.matrix!r} (expected one of {', '.join(MATRICES)})"
            )
        if self.range not in _SCALES:
            raise ConfigError(f"unknown colour range {self.range!r} (expected limited or full)")

    def to_dict(self) -> dict[str, str]:
        """A JSON-friendly form, read back by :meth:`from_dict`."""
        return {"matrix": self.matrix, "range": self.range}

    @classmethod
    def from_dict(cls, d: Any) -> ColourSpec:
        """Parse :meth:`to_dict` output; :class:`ConfigError` on anything else."""
        if not isinstance(d, dict):
            raise ConfigError(f"colour spec must be a mapping, got {type(d).__name__}")
        unknown = set(d) - {"matrix", "range"}
        if unknown:
            raise ConfigError(f"unknown colour spec keys: {', '.join(sorted(map(str, unknown)))}")
        matrix = d.get("matrix", "bt709")
        range_ = d.get("range", "limited")
        if matrix not in _COEFFS:
            raise ConfigError(
                f"unknown colour matrix {matrix!r} (expected one of {', '.join(MATRICES)})"
            )
        if range_ not in _SCALES:
            raise ConfigError(f"unknown colour range {range_!r} (expected limited or full)")
        return cls(matrix=matrix, range=range_)


def _check_planes(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> None:
    if y.ndim != 3:
        raise ValueError(f"y must be (T,H,W), got shape {y.shape}")
    t, h, w = y.shape
    want = (t, (h + 1) // 2, (w + 1) // 2)
    if u.shape != want or v.shape != want:
        raise ValueError(f"u and v must be {want} for y {y.shape}, got {u.shape} and {v.shape}")


def yuv420_to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray, spec: ColourSpec) -> np.ndarray:
    """Convert 8-bit yuv420 planes to float32 RGB in [0, 1], shape (T, H, W, 3).

    Chroma is upsampled by repeating each sample over its 2x2 block (cropped to H, W for odd
    sizes): simple, exact, and the inverse of the block mean in :func:`rgb_to_yuv420`.
    Computed in float64 for determinism (:func:`yuv420_to_rgb_tensor`); clipped to [0, 1].
    """
    _check_planes(y, u, v)
    planes = (torch.from_numpy(np.require(p, np.uint8, ["C", "W"])) for p in (y, u, v))
    return yuv420_to_rgb_tensor(*planes, spec).permute(0, 2, 3, 1).contiguous().numpy()


def yuv420_to_rgb_tensor(
    y: torch.Tensor, u: torch.Tensor, v: torch.Tensor, spec: ColourSpec
) -> torch.Tensor:
    """N×3×H×W float32 RGB from uint8 planes (N×H×W, chroma N×⌈H/2⌉×⌈W/2⌉) on their device.

    The one conversion: :func:`yuv420_to_rgb` and the training targets
    (:class:`~nvcodec.io.ClipFrames`) both use it, so a batch made on the device equals the
    same frames converted whole on the host. IEEE ``+ - * /`` in float64 are correctly rounded
    on every device; the divisors are device tensors because CUDA divides by a host scalar as
    a multiplication by its reciprocal, which rounds differently.
    """
    h, w = y.shape[-2:]
    kr, kb = _COEFFS[spec.matrix]
    y_off, y_scale, c_scale = _SCALES[spec.range]
    y_div, c_div, kg = (
        torch.tensor(d, dtype=torch.float64, device=y.device)
        for d in (y_scale, c_scale, 1.0 - kr - kb)
    )
    luma = (y.to(torch.float64) - y_off) / y_div
    pb = (u.to(torch.float64) - 128.0) / c_div
    pr = (v.to(torch.float64) - 128.0) / c_div
    pb = pb.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)[..., :h, :w]
    pr = pr.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)[..., :h, :w]
    r = luma + 2.0 * (1.0 - kr) * pr
    b = luma + 2.0 * (1.0 - kb) * pb
    g = (luma - kr * r - kb * b) / kg
    return torch.stack([r, g, b], dim=-3).clamp_(0.0, 1.0).to(torch.float32)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """Round half to even (``np.rint``: deterministic) and saturate to 0..255."""
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


CHUNK_PIXELS = 1 << 19
"""Pixels converted at a time by :func:`rgb_to_yuv420` (about 12 MB of float64 RGB)."""


def rgb_to_yuv420(
    rgb: np.ndarray, spec: ColourSpec, dtype: type[np.floating] = np.float64
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Convert RGB (T, H, W, 3) in [0, 1] (clipped) to 8-bit yuv420 planes (y, u, v).

    Chroma is the mean of each 2x2 block, computed in ``dtype`` and only then rounded; odd sizes
    are edge-replicated to a whole block first. Rounding is ``np.rint`` (half to even).
    ``dtype``: float64, or float32 for files whose decode layout says so
    (:func:`nvcodec.decode_layout.colour_dtype`): then each chroma sample is
    ``((a00 + a10) + (a01 + a11)) · 0.25`` of its block, several times faster, and about one
    sample in 10⁵ rounds to the neighbouring code.

    Frames are converted a few at a time (:data:`CHUNK_PIXELS`): every value is computed per
    frame, so the result is the same, but the float64 temporaries stay in the cache. Measured
    on 24 frames of 640×320: 446 ms whole, 152 ms in chunks of two frames (issue #16).
    """
    if rgb.ndim != 4 or rgb.shape[-1] != 3:
        raise ValueError(f"rgb must be (T,H,W,3), got shape {rgb.shape}")
    t, h, w, _ = rgb.shape
    step = max(1, CHUNK_PIXELS // max(h * w, 1))
    hc, wc = (h + 1) // 2, (w + 1) // 2
    planes = (np.empty((t, h, w), np.uint8), *(np.empty((t, hc, wc), np.uint8) for _ in "uv"))
    for start in range(0, t, step):
        parts = _rgb_to_yuv420(rgb[start : start + step], spec, dtype)
        for plane, part in zip(planes, parts, strict=True):
            plane[start : start + step] = part
    return planes


def _rgb_to_yuv420(
    rgb: np.ndarray, spec: ColourSpec, dtype: type[np.floating]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`rgb_to_yuv420` of a few frames at once."""
    _, h, w, _ = rgb.shape
    kr, kb = _COEFFS[spec.matrix]
    kg = 1.0 - kr - kb
    y_off, y_scale, c_scale = _SCALES[spec.range]

    x = np.clip(rgb.astype(dtype), 0.0, 1.0)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    luma = kr * r + kg * g + kb * b
    pb = (b - luma) / (2.0 * (1.0 - kb))
    pr = (r - luma) / (2.0 * (1.0 - kr))

    pad = ((0, 0), (0, h % 2), (0, w % 2))
    t = rgb.shape[0]
    hc, wc = (h + 1) // 2, (w + 1) // 2

    def block_mean(p: np.ndarray) -> np.ndarray:
        if h % 2 or w % 2:
            p = np.pad(p, pad, mode="edge")
        if dtype is np.float64:  # numpy's reduction order, as every file before format 1.3
            return p.reshape(t, hc, 2, wc, 2).mean(axis=(2, 4))
        # ((a00 + a10) + (a01 + a11)) · 0.25: strided adds, 12× numpy's 2×2 mean here
        rows = p[:, 0::2] + p[:, 1::2]
        return (rows[:, :, 0::2] + rows[:, :, 1::2]) * 0.25

    y_plane = _to_uint8(y_off + y_scale * luma)
    u_plane = _to_uint8(128.0 + c_scale * block_mean(pb))
    v_plane = _to_uint8(128.0 + c_scale * block_mean(pr))
    return y_plane, u_plane, v_plane
