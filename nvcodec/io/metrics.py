"""Quality of a decoded clip against its reference: PSNR (Y, U, V, YUV 6:1:1, RGB) and MS-SSIM.

Sequence PSNRs follow ffmpeg's convention: the PSNR of the mean MSE over all frames, not the
mean of per-frame PSNRs (which one perfect frame would make infinite). Per-frame values are kept
too. Frames are processed in chunks so memory stays bounded for long clips. torch and
pytorch-msssim are imported only when MS-SSIM is computed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nvcodec.io.colour import ColourSpec, yuv420_to_rgb
from nvcodec.io.frames import Yuv420Frames

__all__ = [
    "LOSSLESS_PSNR",
    "QualityMetrics",
    "compute_metrics",
    "merge_metrics",
    "ms_ssim_window",
    "psnr_from_mse",
]

_PLANES = ("psnr_y", "psnr_u", "psnr_v")


@dataclass(frozen=True)
class QualityMetrics:
    """Sequence metrics plus per-frame lists (``per_frame[key][i]`` is frame i).

    PSNRs are in dB and ``math.inf`` for identical content; JSON writers must map it (e.g. to
    ``null`` or a string). ``ms_ssim`` is None when frames are too small for MS-SSIM.
    """

    psnr_y: float
    psnr_u: float
    psnr_v: float
    psnr_yuv: float
    psnr_rgb: float
    ms_ssim: float | None
    per_frame: dict[str, list[float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields (floats may be ``inf``)."""
        return {
            "psnr_y": self.psnr_y,
            "psnr_u": self.psnr_u,
            "psnr_v": self.psnr_v,
            "psnr_yuv": self.psnr_yuv,
            "psnr_rgb": self.psnr_rgb,
            "ms_ssim": self.ms_ssim,
            "per_frame": {k: list(v) for k, v in self.per_frame.items()},
        }


def psnr_from_mse(mse: float, peak: float = 255.0) -> float:
    """PSNR in dB; ``math.inf`` when ``mse`` is 0 (identical content)."""
    if mse < 0:
        raise ValueError(f"mse must be >= 0, got {mse}")
    if mse == 0:
        return math.inf
    return 10.0 * math.log10(peak * peak / mse)


LOSSLESS_PSNR = 100.0
"""The most a plane's PSNR counts for in the 6:1:1 mean, in dB.

Why: a plane that decodes identically has an infinite PSNR, and the mean would then call the
whole clip perfect. Black-and-white video is the common case: its chroma is flat 128, every
codec keeps it exactly, and a reconstruction at 8 dB PSNR-Y was reported as PSNR-YUV ``inf``.
Above any 8-bit lossy result up to HD (one level off in one sample of a 1080p frame: 111 dB,
of a 96×72 one: 87 dB), and the same for every codec, so comparisons stay fair. The plane's own
PSNR is still reported as ``inf``, and so is PSNR-YUV when all three planes are identical."""


def _yuv_611(y: float, u: float, v: float) -> float:
    planes = (y, u, v)
    if all(math.isinf(p) for p in planes):
        return math.inf
    y, u, v = (min(p, LOSSLESS_PSNR) for p in planes)
    return (6.0 * y + u + v) / 8.0


def ms_ssim_window(height: int, width: int) -> int | None:
    """The largest odd window <= 11 that pytorch-msssim accepts for this size, or None.

    pytorch-msssim requires ``min(H, W) > (win_size - 1) * 16`` (four 2x downsamplings);
    windows smaller than 3 are meaningless, so such frames get no MS-SSIM.
    """
    side = min(height, width)
    for win in range(11, 2, -2):
        if (win - 1) * 16 < side:
            return win
    return None


def _mse(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-frame MSE of two (T, ...) arrays, exact in float64."""
    d = a.astype(np.float64) - b.astype(np.float64)
    return (d * d).reshape(d.shape[0], -1).mean(axis=1)


def _rgb255(frames: Yuv420Frames, colour: ColourSpec) -> np.ndarray:
    """RGB as 8-bit values (held in float64), the way an RGB viewer would see the clip."""
    rgb = yuv420_to_rgb(frames.y, frames.u, frames.v, colour)
    return np.round(rgb.astype(np.float64) * 255.0)


def _ms_ssim(ref: np.ndarray, dec: np.ndarray, win: int) -> list[float]:
    """Per-frame MS-SSIM of (T, H, W, 3) 0..255 arrays, in float64 for determinism."""
    import torch
    from pytorch_msssim import ms_ssim

    x = torch.from_numpy(np.ascontiguousarray(ref.transpose(0, 3, 1, 2)))
    y = torch.from_numpy(np.ascontiguousarray(dec.transpose(0, 3, 1, 2)))
    with torch.no_grad():
        values = ms_ssim(x, y, data_range=255, size_average=False, win_size=win)
    return [float(v) for v in values]


def compute_metrics(
    reference: Yuv420Frames,
    decoded: Yuv420Frames,
    colour: ColourSpec,
    *,
    chunk: int = 16,
) -> QualityMetrics:
    """Compare ``decoded`` with ``reference`` (same size and count), ``chunk`` frames at a time.

    YUV PSNRs compare the 8-bit planes directly; PSNR-RGB and MS-SSIM compare both clips
    converted to 8-bit RGB with ``colour``. ``psnr_yuv`` is the 6:1:1 weighting of the
    sequence (or per-frame) plane PSNRs.
    """
    if reference.y.shape != decoded.y.shape:
        raise ValueError(
            f"cannot compare clips of different shapes: {reference.y.shape} and {decoded.y.shape}"
        )
    if reference.count == 0:
        raise ValueError("cannot compare empty clips")
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")

    win = ms_ssim_window(reference.height, reference.width)
    mses: dict[str, list[float]] = {k: [] for k in (*_PLANES, "psnr_rgb")}
    ssim: list[float] = []
    for start in range(0, reference.count, chunk):
        ref = reference[start : start + chunk]
        dec = decoded[start : start + chunk]
        for key, a, b in zip(_PLANES, (ref.y, ref.u, ref.v), (dec.y, dec.u, dec.v), strict=True):
            mses[key].extend(_mse(a, b).tolist())
        ref_rgb, dec_rgb = _rgb255(ref, colour), _rgb255(dec, colour)
        mses["psnr_rgb"].extend(_mse(ref_rgb, dec_rgb).tolist())
        if win is not None:
            ssim.extend(_ms_ssim(ref_rgb, dec_rgb, win))

    per_frame = {k: [psnr_from_mse(m) for m in v] for k, v in mses.items()}
    per_frame["psnr_yuv"] = [
        _yuv_611(y, u, v) for y, u, v in zip(*(per_frame[k] for k in _PLANES), strict=True)
    ]
    seq = {k: psnr_from_mse(math.fsum(v) / len(v)) for k, v in mses.items()}
    if win is not None:
        per_frame["ms_ssim"] = ssim
    order = ("psnr_y", "psnr_u", "psnr_v", "psnr_yuv", "psnr_rgb", "ms_ssim")
    return QualityMetrics(
        psnr_y=seq["psnr_y"],
        psnr_u=seq["psnr_u"],
        psnr_v=seq["psnr_v"],
        psnr_yuv=_yuv_611(seq["psnr_y"], seq["psnr_u"], seq["psnr_v"]),
        psnr_rgb=seq["psnr_rgb"],
        ms_ssim=math.fsum(ssim) / len(ssim) if win is not None else None,
        per_frame={k: per_frame[k] for k in order if k in per_frame},
    )


def merge_metrics(parts: list[QualityMetrics]) -> QualityMetrics:
    """The metrics of consecutive clips taken as one clip (segments of a video): each sequence
    PSNR from the mean per-frame MSE, recovered from the per-frame PSNRs, as
    :func:`compute_metrics` would have measured the whole clip; MS-SSIM the mean per frame."""
    if not parts:
        raise ValueError("no metrics to merge")
    per_frame = {k: [v for p in parts for v in p.per_frame[k]] for k in parts[0].per_frame}
    seq = {
        k: psnr_from_mse(math.fsum(_mse_of(v) for v in per_frame[k]) / len(per_frame[k]))
        for k in (*_PLANES, "psnr_rgb")
    }
    ssim = per_frame.get("ms_ssim")
    return QualityMetrics(
        psnr_y=seq["psnr_y"],
        psnr_u=seq["psnr_u"],
        psnr_v=seq["psnr_v"],
        psnr_yuv=_yuv_611(seq["psnr_y"], seq["psnr_u"], seq["psnr_v"]),
        psnr_rgb=seq["psnr_rgb"],
        ms_ssim=math.fsum(ssim) / len(ssim) if ssim else None,
        per_frame=per_frame,
    )


def _mse_of(psnr: float, peak: float = 255.0) -> float:
    return 0.0 if math.isinf(psnr) else peak * peak / 10 ** (psnr / 10)
