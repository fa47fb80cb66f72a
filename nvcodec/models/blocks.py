"""Building blocks shared by every model in the registry (never copied into a model file).

* :class:`PositionalEncoding` — NeRV's sin/cos embedding of a normalised time index.
* :class:`NeRVBlock` — conv → PixelShuffle(s) → activation, the upsampling unit of the NeRV family
  (NeRV, HNeRV, DS-NeRV, NeRV++'s "UB").
* :func:`pixel_shuffle` — the same values as ``torch.nn.functional.pixel_shuffle``, faster on CPU.
* :class:`OutputHead` — conv to RGB and ``(tanh + 1) / 2`` so outputs live in [0, 1].
* :func:`plan_grid` — picks a base grid and strides for an arbitrary W×H so that the stack's
  output covers the frame with little padding (the model crops back to W×H).
* :class:`GatedMLP` — GLU-style MLP ``W_o(act(W_g x) ⊙ W_v x)`` (NeRV++'s stem).
* :func:`xavier_init_` — Xavier-uniform weights and zero biases for every conv/linear layer.
* :func:`sample_time` — linear interpolation of a stored sequence (grid levels, codes) at frame
  positions, cell-centred (HiNeRV's convention), continuous in ``t``.
* :class:`HierarchicalEncoding` — HiNeRV's hierarchical (local) encoding: multi-level temporal
  grids of per-cell features, added to an upsampled feature map. HiNeRV uses it at every stage;
  ``ds-nerv-he`` adds it to DS-NeRV's decoder stages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

__all__ = [
    "ACTIVATIONS",
    "GatedMLP",
    "GridPlan",
    "HierarchicalEncoding",
    "NeRVBlock",
    "OutputHead",
    "PositionalEncoding",
    "activate_",
    "encoding_width_for",
    "make_activation",
    "pixel_shuffle",
    "plan_grid",
    "sample_time",
    "xavier_init_",
]

ACTIVATIONS = ("gelu", "silu", "relu")


def make_activation(name: str) -> nn.Module:
    """The activation named in a config (configs store names, never classes)."""
    if name == "gelu":
        return nn.GELU()
    if name == "silu":
        return nn.SiLU()
    if name == "relu":
        return nn.ReLU()
    raise ValueError(f"unknown activation {name!r}")


def activate_(act: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``act(x)``, in place on ``x`` when no gradient is recorded (decoding).

    Why: at 640×320 a decode batch's activations are hundreds of MB, and every new tensor of
    that size costs fresh pages from the system; the in-place kernels compute the same values
    (tested). Training needs the input for the backward pass, so it keeps ``act(x)``.
    """
    if torch.is_grad_enabled():
        return act(x)
    if isinstance(act, nn.GELU):
        return torch.ops.aten.gelu_(x, approximate=act.approximate)
    if isinstance(act, nn.SiLU):
        return nn.functional.silu(x, inplace=True)
    if isinstance(act, nn.ReLU):
        return torch.relu_(x)
    return act(x)


class PositionalEncoding(nn.Module):
    """``t ↦ [sin(b^i π t), cos(b^i π t)]_{i<L}`` for normalised ``t`` (NeRV, eq. 2).

    Frequencies are a fixed buffer, not parameters, so they cost nothing in the file.
    """

    freqs: torch.Tensor

    def __init__(self, levels: int, base: float) -> None:
        super().__init__()
        self.out_dim = 2 * levels
        freqs = (base ** torch.arange(levels, dtype=torch.float64)) * math.pi
        self.register_buffer("freqs", freqs.float(), persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        angles = t[:, None].float() * self.freqs[None, :]
        return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


def pixel_shuffle(x: torch.Tensor, stride: int) -> torch.Tensor:
    """``N×C·s²×H×W → N×C×sH×sW``, the values of ``torch.nn.functional.pixel_shuffle``.

    Why not that function: both are a pure copy (equal values and gradients, tested), but
    ATen's dedicated CPU kernel moves about 2 GB/s where this view + permute + one strided
    copy moves 3.5 GB/s or more: 1.7–2.4× faster on 640×320 decoder activations (issue #16),
    where the shuffle took 13 % of a DS-NeRV decode.
    """
    if stride == 1:
        return x
    n, c, h, w = x.shape
    c //= stride * stride
    if _channels_last(x):  # the channels-last decode path: stays channels-last, one copy
        y = x.permute(0, 2, 3, 1).view(n, h, w, c, stride, stride).permute(0, 1, 4, 2, 5, 3)
        return y.reshape(n, h * stride, w * stride, c).permute(0, 3, 1, 2)
    x = x.reshape(n, c, stride, stride, h, w).permute(0, 1, 4, 2, 5, 3)
    return x.reshape(n, c, h * stride, w * stride)


def _channels_last(x: torch.Tensor) -> bool:
    """``x`` is stored channels-last (and not also plain contiguous, as 1-channel maps are)."""
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


class NeRVBlock(nn.Module):
    """Conv(k×k) to ``out·s²`` channels → PixelShuffle(s) → activation; no normalisation."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, kernel: int, act: str) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch * stride * stride, kernel, padding=kernel // 2)
        self.stride = stride
        self.act = make_activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return activate_(self.act, pixel_shuffle(self.conv(x), self.stride))


class OutputHead(nn.Module):
    """Conv to 3 channels, then ``(tanh + 1) / 2``: bounded RGB without sigmoid saturation."""

    def __init__(self, in_ch: int, kernel: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, 3, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        if torch.is_grad_enabled():  # tanh's backward needs its output: no in-place
            return (torch.tanh(y) + 1.0) * 0.5
        return y.tanh_().add_(1.0).mul_(0.5)  # the same values, no new frame-sized tensors


@dataclass(frozen=True)
class GridPlan:
    """A base grid ``base_h × base_w`` upsampled by ``strides`` to at least H×W."""

    base_h: int
    base_w: int
    strides: tuple[int, ...]

    @property
    def scale(self) -> int:
        return math.prod(self.strides)

    def padding_ratio(self, height: int, width: int) -> float:
        return (self.base_h * self.scale * self.base_w * self.scale) / (height * width) - 1.0


def plan_grid(
    height: int, width: int, *, min_base: int = 2, max_pad: float = 0.05, max_stages: int = 6
) -> GridPlan:
    """Choose strides ``(s1, 2, 2, ...)`` with ``s1 ∈ {2..5}`` for an arbitrary frame size.

    Among plans whose base grid has at least ``min_base`` cells on its short side, take the
    largest total upsampling whose padding stays within ``max_pad`` (fewer base cells mean a
    smaller stem); if none qualifies, the least padding. NeRV's 720×1280 plan (5,2,2,2,2 from 9×16)
    is one such plan; the point here is that *any* size works, odd ones included.
    """
    candidates = []
    for stages in range(1, max_stages + 1):
        for first in (2, 3, 4, 5):
            strides = (first,) + (2,) * (stages - 1)
            scale = math.prod(strides)
            plan = GridPlan(math.ceil(height / scale), math.ceil(width / scale), strides)
            if min(plan.base_h, plan.base_w) >= min(min_base, height, width):
                candidates.append(plan)
    if not candidates:
        return GridPlan(height, width, (1,))
    good = [p for p in candidates if p.padding_ratio(height, width) <= max_pad]
    if good:
        return max(good, key=lambda p: (p.scale, -len(p.strides)))
    return min(candidates, key=lambda p: (p.padding_ratio(height, width), -p.scale))


class GatedMLP(nn.Module):
    """Gated (GLU-style) MLP: ``W_o(act(W_g x) ⊙ W_v x)``.

    Two input projections of width ``hidden`` (gate and value), their elementwise product, and an
    output projection; biases everywhere. The output is linear (no trailing activation), so a
    caller that wants one adds it. Input ``(N, in_dim)`` → ``(N, out_dim)``.
    """

    def __init__(self, in_dim: int, hidden: int, out_dim: int, act: str) -> None:
        super().__init__()
        self.gate = nn.Linear(in_dim, hidden)
        self.value = nn.Linear(in_dim, hidden)
        self.out = nn.Linear(hidden, out_dim)
        self.act = make_activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.act(self.gate(x)) * self.value(x))


def xavier_init_(module: nn.Module) -> nn.Module:
    """Xavier-uniform weights and zero biases for every ``Conv*d`` and ``Linear`` in ``module``.

    In place; returns ``module``. Other parameters (e.g. learned codes) are left alone.
    """
    for m in module.modules():
        if isinstance(m, nn.Linear | nn.Conv1d | nn.Conv2d | nn.Conv3d):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


def sample_time(grid: torch.Tensor, t: torch.Tensor, frame_count: int) -> torch.Tensor:
    """Entries of ``grid`` (L, …) at frame positions ``t`` (N,) → (N, …), linear in time.

    Cell-centred (``align_corners=False``), as HiNeRV's grids: entry ``k`` covers frames
    ``[k·T/L, (k+1)·T/L)`` and sits at their centre, so a level with ``L = T`` is an exact
    per-frame lookup at integer ``t`` and coarser levels blend their two nearest entries.
    Positions are clamped to the first/last entry (border padding). Fractional ``t`` interpolates
    (``--fps``). The position arithmetic runs in float64 so that a frame decodes to the same
    weights whatever batch it is in.
    """
    count = grid.shape[0]
    tt = t.detach().to(torch.float64)
    pos = ((tt + 0.5) * count / max(frame_count, 1) - 0.5).clamp(0.0, count - 1)
    if count == 1:
        return grid[torch.zeros_like(pos, dtype=torch.long)]
    left = pos.floor().long().clamp(0, count - 2)
    frac = (pos - left).to(grid.dtype).view(-1, *([1] * (grid.dim() - 1)))
    return grid[left] * (1.0 - frac) + grid[left + 1] * frac


class HierarchicalEncoding(nn.Module):
    """HiNeRV's hierarchical encoding for one upsampling stage of stride ``s`` (Kwan et al. 2023).

    After a ×s upsampling every output pixel sits at one of ``s × s`` positions inside its
    source cell. ``levels`` temporal grids hold one feature vector per (frame, cell position):
    level ``j`` has ``T_j = max(1, T // 2^j)`` frames and ``C·2^j`` channels, stored
    ``(T_j, s, s, C·2^j)`` — coarser in time, wider in features, so the budget buys both
    per-frame detail and smooth long-range terms. For frame ``t`` each level is sampled in time
    (:func:`sample_time`), the levels are concatenated, one linear layer maps them to the feature
    width, and the resulting ``s × s`` tile is added to every cell of the upsampled map, indexed by
    the *global* pixel position modulo ``s`` (so a patch decodes as the whole frame does).

    It costs ``Σ_j T_j·s²·C·2^j`` values plus the linear layer, nothing per pixel beyond an add:
    local detail that a small decoder cannot produce from a coarse input, for frames it stores.
    Grids start at U(±1e-3) (the reference's initial scale), the linear layer with zero bias.
    """

    def __init__(
        self, frame_count: int, stride: int, out_dim: int, grid_dim: int, levels: int = 3
    ) -> None:
        super().__init__()
        self.frame_count = frame_count
        self.stride = stride
        self.levels = levels
        width = 0
        for j in range(levels):
            frames = max(1, frame_count // 2**j)
            grid = torch.empty(frames, stride, stride, grid_dim * 2**j)
            self.register_parameter(f"level{j}", nn.Parameter(nn.init.uniform_(grid, -1e-3, 1e-3)))
            width += grid_dim * 2**j
        self.project = nn.Linear(width, out_dim)
        nn.init.zeros_(self.project.bias)

    def tile(self, t: torch.Tensor) -> torch.Tensor:
        """The (N, out_dim, s, s) encoding of frames ``t`` for the s×s cell positions."""
        grids = [getattr(self, f"level{j}") for j in range(self.levels)]
        features = torch.cat([sample_time(g, t, self.frame_count) for g in grids], dim=-1)
        return self.project(features).permute(0, 3, 1, 2)

    def forward(
        self, x: torch.Tensor, t: torch.Tensor, offset: tuple[int, int] = (0, 0)
    ) -> torch.Tensor:
        """``x`` (N, C, H, W) on the upsampled grid, whose pixel (0, 0) is the frame's pixel
        ``offset`` at this resolution → ``x`` plus the encoding."""
        tile = self.tile(t).to(x.dtype)
        s = self.stride
        rows = (torch.arange(x.shape[-2], device=x.device) + offset[0]) % s
        cols = (torch.arange(x.shape[-1], device=x.device) + offset[1]) % s
        return x + tile[:, :, rows][:, :, :, cols]


def encoding_width_for(
    parameters: float,
    frame_count: int,
    strides: tuple[int, ...],
    widths: tuple[int, ...],
    levels: int,
) -> int:
    """The ``grid_dim`` of stage 0 (halved per later stage) for which one
    :class:`HierarchicalEncoding` per stage (stride ``s``, adding to ``widths[i]`` channels)
    costs about ``parameters``: at least 1, at most 256. The sizing rules of the models that use
    the encodings share this count, so it stays in step with the block."""
    per_channel = sum(
        (max(1, frame_count // 2**j) * s * s + width) * 2**j * 0.5**i
        for i, (s, width) in enumerate(zip(strides, widths, strict=True))
        for j in range(levels)
    )
    return max(1, min(256, round(parameters / per_channel)))
