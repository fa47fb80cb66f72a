"""DS-NeRV (Yan et al., CVPR 2024): a video decomposed into learnable static and dynamic codes.

::

    t ─► sample static codes  (ls × dims × hs × ws)  ─► NeRVBlock(s) ×r₁ ─┐
    t ─► sample dynamic codes (ld × dimd × hd × wd) ───────────────────── CCA fusion
          ─► NeRVBlock(s₁) ─► … ─► NeRVBlock(sₙ) ─► OutputHead ─► crop to H×W

**Codes.** Both code sets are ``nn.Parameter``s (GLO-style latents initialised N(0, 1), stored in
the file like any weight), kept channel-first: static ``(ls, dims, hs, ws)`` and dynamic
``(ld, dimd, hd, wd)`` with ``ls = max(2, round(T·rs))``, ``ld = max(2, round(T·rd))``, ``rs < rd``.

**Static sampling (paper eqs. 1–3).** Eq. 1 literally puts static code ``i`` at frame
``i·(zs+1)`` with ``zs = T/ls``, which overshoots the clip whenever ``ls² > T`` (T = 600,
ls = 60: the last code sits at frame 649), so the last codes would never be reached. We implement
the sensible reading instead: the ``ls`` anchors are evenly spaced over ``[0, T−1]`` (anchor
``i`` at ``i·(T−1)/(ls−1)``, first and last frame on an anchor). Frame ``t`` blends its two
neighbouring anchors ``i < j = i+1`` with ``w_i = dis_j/(dis_i+dis_j)`` and
``w_j = dis_i/(dis_i+dis_j)`` (eq. 2), i.e. weights linear in the distance; at an anchor the
result is exactly that code, and ``t`` outside ``[0, T−1]`` clamps to the end codes.

**Dynamic sampling (eq. 4).** The dynamic code sequence is linearly interpolated along time to
length ``T`` and entry ``t`` is taken. We use the ``align_corners=True`` convention (the same as
``F.interpolate(codes, size=T, mode="linear", align_corners=True)``): code ``k`` sits at frame
``k·(T−1)/(ld−1)``. For fractional ``t`` the interpolation is evaluated continuously at ``t``
(frame interpolation, higher frame rates). With evenly spaced anchors both samplers are therefore
the same piecewise-linear interpolation (:func:`sample_codes`); what differs is the number of codes
(``ls ≪ ld``) and their shape (few wide static cells vs. a finer 2-channel dynamic grid).

**CCA fusion (eqs. 5–7).** NeRV blocks bring the static code to the dynamic grid; then
``Q = Conv_q(static)``, ``K = Conv_k(dynamic)``, ``V = Conv_v(dynamic)`` (the K/V convs lift the
``dimd`` dynamic channels to the static width ``C``), each flattened to ``C × (hd·wd)``; the
attention is over *channels*: ``A = softmax(Q·Kᵀ)`` is ``C × C`` (row-wise softmax) and the fused
code is ``A·V + static``. The paper writes no ``1/√d`` scaling and we add none (at init the
logits sum over ``hd·wd`` cells, so the softmax starts nearly one-hot; dividing by ``√(hd·wd)``
made no consistent difference in a small Bunny test). All three convs use ``cca_kernel`` (3×3 by
default; the paper does not give the kernel size). The softmax runs in float32 under autocast.

**Sizes.** The paper uses static 4×8×64 and dynamic 20×40×2 codes for 960×1920 frames (static grid
÷240, dynamic ÷48). :func:`plan_codes` keeps that shape for any frame size: a static grid with
about one cell per 160 px on its short side (2 to 4 cells, :func:`static_cells`), one NeRV
block of stride ``r₁ ∈ {2..5}`` (5 when it fits) up to the dynamic grid, and decoder strides
``(f, 2, 2, …)`` whose product covers the rest; the output is cropped to H×W. 640×1280 gives
static 4×8, ×5, dynamic 20×40, strides 2,2,2,2,2; 960×1920 gives static 4×8, ×5, dynamic 20×40,
strides 3,2,2,2,2; 160×80 gives static 2×4, ×5, dynamic 10×20, strides 2,2,2.

The sizing knob is the fusion width ``C``: static code channels ``dims = min(64, C)`` (64 is the
paper's value), decoder channels shrink by 1.2 per stage (HNeRV's rule, which DS-NeRV builds on),
``dimd = 2``, ``rs = 0.1``, ``rd = 0.3``, static block kernel 1 (as HNeRV's first block; a 3×3
stride-5 block would dominate the parameter count), decoder kernel 3.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, ClassVar

import torch
from torch import nn

from nvcodec.errors import ConfigError
from nvcodec.models.blocks import (
    ACTIVATIONS,
    HierarchicalEncoding,
    NeRVBlock,
    OutputHead,
    encoding_width_for,
)
from nvcodec.models.config import ModelConfig, added_later, bounds
from nvcodec.models.registry import register_model

__all__ = [
    "CodePlan",
    "CrossChannelAttention",
    "DSNeRV",
    "DSNeRVConfig",
    "code_count",
    "dsnerv_sizing",
    "plan_codes",
    "sample_codes",
]


CODE_KINDS = ("both", "static", "dynamic")


def code_count(frame_count: int, rate: float) -> int:
    """Codes for a clip of ``frame_count`` frames at ``rate`` codes per frame (at least 2)."""
    return max(2, round(frame_count * rate))


@dataclasses.dataclass(frozen=True)
class DSNeRVConfig(ModelConfig):
    MODEL_ID: ClassVar[str] = "ds-nerv"

    static_rate: float = dataclasses.field(default=0.1, metadata=bounds(0.0, 1.0))
    dynamic_rate: float = dataclasses.field(default=0.3, metadata=bounds(0.0, 1.0))
    static_h: int = dataclasses.field(default=1, metadata=bounds(1, 1024))
    static_w: int = dataclasses.field(default=1, metadata=bounds(1, 1024))
    static_dim: int = dataclasses.field(default=64, metadata=bounds(1, 1024))
    dynamic_dim: int = dataclasses.field(default=2, metadata=bounds(1, 256))
    # static grid → dynamic grid (NeRV blocks, each to fusion_dim channels)
    static_strides: tuple[int, ...] = dataclasses.field(
        default=(2,), metadata=bounds(1, 8, max_len=4)
    )
    static_kernel: int = dataclasses.field(default=1, metadata=bounds(1, 7))
    fusion_dim: int = dataclasses.field(default=16, metadata=bounds(1, 4096))
    cca_kernel: int = dataclasses.field(default=3, metadata=bounds(1, 7))
    # dynamic grid → frame
    strides: tuple[int, ...] = dataclasses.field(default=(2,), metadata=bounds(1, 8, max_len=8))
    channels: tuple[int, ...] = dataclasses.field(
        default=(16,), metadata=bounds(1, 4096, max_len=8)
    )
    kernel: int = dataclasses.field(default=3, metadata=bounds(1, 7))
    activation: str = dataclasses.field(default="gelu", metadata={"choices": ACTIVATIONS})
    # "both" is DS-NeRV; "static"/"dynamic" are the paper's ablations (one code kind only)
    codes: str = dataclasses.field(default="both", metadata=added_later(choices=CODE_KINDS))
    # ds-nerv-he: hierarchical encodings after each decoder block (0 = none, DS-NeRV as published)
    local_dim: int = dataclasses.field(default=0, metadata=added_later(lo=0, hi=256))
    local_levels: int = dataclasses.field(default=3, metadata=added_later(lo=1, hi=4))

    def validate(self) -> None:
        super().validate()
        if len(self.channels) != len(self.strides):
            raise ConfigError("ds-nerv config: one channel count per stride is required")
        for name in ("static_kernel", "cca_kernel", "kernel"):
            if getattr(self, name) % 2 == 0:
                raise ConfigError(f"ds-nerv config: {name} must be odd")
        if not self.static_rate < self.dynamic_rate:
            raise ConfigError("ds-nerv config: static_rate must be below dynamic_rate")
        scale = self.static_scale * math.prod(self.strides)
        self.check_output_grid(self.static_h * scale, self.static_w * scale)

    @property
    def static_scale(self) -> int:
        return math.prod(self.static_strides)

    @property
    def static_count(self) -> int:
        """``ls``: number of static codes."""
        return code_count(self.frame_count, self.static_rate)

    @property
    def dynamic_count(self) -> int:
        """``ld``: number of dynamic codes."""
        return code_count(self.frame_count, self.dynamic_rate)

    @property
    def dynamic_h(self) -> int:
        return self.static_h * self.static_scale

    @property
    def dynamic_w(self) -> int:
        return self.static_w * self.static_scale

    def activation_elements(self) -> int:
        h, w = self.static_h, self.static_w
        largest = self.static_dim * h * w
        for s in self.static_strides:
            largest = max(largest, self.fusion_dim * s * s * h * w)  # conv output before shuffle
            h, w = h * s, w * s
        cells = h * w
        # dynamic code, Q, K, V (C × hd·wd each) and the C × C attention matrix
        largest = max(largest, self.dynamic_dim * cells, self.fusion_dim * cells)
        largest = max(largest, self.fusion_dim * self.fusion_dim)
        for out_ch, s in zip(self.channels, self.strides, strict=True):
            largest = max(largest, out_ch * s * s * h * w)
            h, w = h * s, w * s
        return max(largest, 3 * h * w, super().activation_elements())


@dataclasses.dataclass(frozen=True)
class CodePlan:
    """Static grid, static→dynamic strides and decoder strides for one frame size."""

    static_h: int
    static_w: int
    static_strides: tuple[int, ...]
    strides: tuple[int, ...]

    @property
    def scale(self) -> int:
        return math.prod(self.static_strides) * math.prod(self.strides)

    def padding_ratio(self, height: int, width: int) -> float:
        s = self.scale
        return (self.static_h * s * self.static_w * s) / (height * width) - 1.0


def plan_codes(
    height: int, width: int, *, min_static: int = 4, max_pad: float = 0.05, max_stages: int = 6
) -> CodePlan:
    """Static grid and strides for an arbitrary frame size (see the module docstring).

    Candidates: one static block of stride ``r₁ ∈ {2..5}`` and decoder strides ``(f, 2, …)`` with
    ``f ∈ {2..5}``, ``1..max_stages`` stages. Among those whose static grid keeps ``min_static``
    cells on its short side and pads at most ``max_pad``, take the largest total scale (smallest
    static grid), then the largest ``r₁`` (the paper's ×5), then the most (smaller) stages. If none
    pads little enough, take the least padding. Tiny frames fall back to the ×2, ×2 plan.
    """
    candidates = []
    for r1 in (2, 3, 4, 5):
        for stages in range(1, max_stages + 1):
            for first in (2, 3, 4, 5):
                strides = (first,) + (2,) * (stages - 1)
                scale = r1 * math.prod(strides)
                plan = CodePlan(-(-height // scale), -(-width // scale), (r1,), strides)
                candidates.append(plan)
    fits = [p for p in candidates if min(p.static_h, p.static_w) >= min_static]
    if not fits:
        smallest = min(p.scale for p in candidates)
        fits = [p for p in candidates if p.scale == smallest]

    def preference(p: CodePlan) -> tuple[int, int, int]:
        return (p.scale, p.static_strides[0], len(p.strides))

    good = [p for p in fits if p.padding_ratio(height, width) <= max_pad]
    if good:
        return max(good, key=preference)
    return min(fits, key=lambda p: (p.padding_ratio(height, width), *(-v for v in preference(p))))


def static_cells(height: int, width: int) -> int:
    """Cells on the static grid's short side: the paper's ratio (640 px → 4 cells), 2..4.

    The paper's static grid is 4×8 at 640×1280 and 960×1920 (÷160, ÷240), with the dynamic grid
    5× finer. Keeping 4 cells at small frames (160×80) would make the dynamic grid a quarter of
    the frame and the dynamic codes most of a small budget; measured on Bunny 160×80×132 at
    0.1M that starved the decoder so badly that static-only codes scored 1.9 dB higher.
    """
    return max(2, min(4, round(min(height, width) / 160)))


def dsnerv_sizing(
    height: int, width: int, frame_count: int, knob: int, codes: str = "both"
) -> DSNeRVConfig:
    """DS-NeRV with fusion width ``knob``: ``dims = min(64, knob)``, decoder channels ÷1.2/stage."""
    plan = plan_codes(height, width, min_static=static_cells(height, width))
    channels = tuple(max(4, round(knob / 1.2 ** (k + 1))) for k in range(len(plan.strides)))
    return DSNeRVConfig(
        height=height,
        width=width,
        frame_count=frame_count,
        static_h=plan.static_h,
        static_w=plan.static_w,
        static_dim=min(64, knob),
        static_strides=plan.static_strides,
        fusion_dim=knob,
        strides=plan.strides,
        channels=channels,
        codes=codes,
    )


def sample_codes(codes: torch.Tensor, t: torch.Tensor, frame_count: int) -> torch.Tensor:
    """Piecewise-linear interpolation of ``codes`` (L, C, h, w) at frame positions ``t`` (N,).

    Code ``k`` sits at frame ``k·(T−1)/(L−1)`` (evenly spaced over ``[0, T−1]``, the
    ``align_corners=True`` convention); ``t`` is clamped to ``[0, T−1]``. Between two codes the
    weights are linear in the distance (DS-NeRV eqs. 2–3); on a code position the result is
    exactly that code. Returns (N, C, h, w).
    """
    count = codes.shape[0]
    tt = t.detach().to(torch.float64).clamp(0.0, max(frame_count - 1, 0))
    # numerator first: on an anchor the quotient is exact, so the weight is exactly 0 or 1
    pos = tt * (count - 1) / (frame_count - 1) if frame_count > 1 else torch.zeros_like(tt)
    left = pos.floor().long().clamp(0, count - 2)
    frac = (pos - left).to(codes.dtype).view(-1, 1, 1, 1)
    return codes[left] * (1.0 - frac) + codes[left + 1] * frac


class CrossChannelAttention(nn.Module):
    """CCA fusion: channel-wise cross attention from static (queries) to dynamic (keys/values).

    ``out = softmax(Q·Kᵀ)·V + static`` with Q, K, V flattened to ``C × (h·w)``; no logit scaling.
    """

    def __init__(self, channels: int, dynamic_dim: int, kernel: int) -> None:
        super().__init__()
        pad = kernel // 2
        self.query = nn.Conv2d(channels, channels, kernel, padding=pad)
        self.key = nn.Conv2d(dynamic_dim, channels, kernel, padding=pad)
        self.value = nn.Conv2d(dynamic_dim, channels, kernel, padding=pad)

    def attention(self, static: torch.Tensor, dynamic: torch.Tensor) -> torch.Tensor:
        """The (N, C, C) channel attention matrix; each row sums to 1."""
        q = self.query(static).flatten(2)
        k = self.key(dynamic).flatten(2)
        return torch.softmax(torch.bmm(q, k.transpose(1, 2)).float(), dim=-1)

    def forward(self, static: torch.Tensor, dynamic: torch.Tensor) -> torch.Tensor:
        attn = self.attention(static, dynamic)
        v = self.value(dynamic).flatten(2)
        fused = torch.bmm(attn.to(v.dtype), v).view_as(static)
        return fused + static


def _variant(model_id: str, codes: str, encodings: bool) -> Callable[[ModelConfig], None]:
    """The check that a config is ``model_id``'s variant of DS-NeRV (the ids share a class)."""

    def check(config: ModelConfig) -> None:
        assert isinstance(config, DSNeRVConfig)
        if config.codes != codes or (config.local_dim > 0) != encodings:
            raise ConfigError(
                f"{model_id} config: codes {config.codes!r} with local_dim {config.local_dim} "
                f"is not {model_id} (codes {codes!r}, "
                f"{'with' if encodings else 'without'} hierarchical encodings)"
            )

    return check


@register_model(
    "ds-nerv",
    DSNeRVConfig,
    dsnerv_sizing,
    "DS-NeRV: sparse static + dense dynamic learnable codes, CCA fusion, NeRV blocks",
    _variant("ds-nerv", "both", encodings=False),
)
class DSNeRV(nn.Module):
    """Frame position in, frame out; the video lives in the codes and the decoder weights."""

    INTERPOLATES: ClassVar[bool] = True
    """Continuous in time: frames between stored ones can be rendered (``--fps``)."""

    TRAINING_DEFAULTS: ClassVar[Mapping[str, Any]] = MappingProxyType(
        {
            "optimizer": "adan",
            "lr": 7e-3,
            "betas": (0.98, 0.92, 0.99),
            "weight_decay": 0.02,
            "warmup": 0.2,
        }
    )
    """The paper's recipe (sec. 4.1); codes get 10× the lr through :meth:`parameter_groups`."""

    CODE_LR_SCALE: ClassVar[float] = 10.0

    def __init__(self, config: DSNeRVConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.static_codes: nn.Parameter | None = None
        self.dynamic_codes: nn.Parameter | None = None
        self.static_blocks: nn.Sequential | None = None
        self.fusion: CrossChannelAttention | None = None
        self.lift: nn.Conv2d | None = None
        if c.codes in ("both", "static"):
            self.static_codes = nn.Parameter(
                torch.randn(c.static_count, c.static_dim, c.static_h, c.static_w)
            )
            static_blocks = []
            in_ch = c.static_dim
            for stride in c.static_strides:
                static_blocks.append(
                    NeRVBlock(in_ch, c.fusion_dim, stride, c.static_kernel, c.activation)
                )
                in_ch = c.fusion_dim
            self.static_blocks = nn.Sequential(*static_blocks)
        if c.codes in ("both", "dynamic"):
            self.dynamic_codes = nn.Parameter(
                torch.randn(c.dynamic_count, c.dynamic_dim, c.dynamic_h, c.dynamic_w)
            )
        if c.codes == "both":
            self.fusion = CrossChannelAttention(c.fusion_dim, c.dynamic_dim, c.cca_kernel)
        elif c.codes == "dynamic":
            # ablation without static codes: lift the dynamic code to the fusion width
            self.lift = nn.Conv2d(
                c.dynamic_dim, c.fusion_dim, c.cca_kernel, padding=c.cca_kernel // 2
            )
        in_ch = c.fusion_dim
        blocks = []
        for out_ch, stride in zip(c.channels, c.strides, strict=True):
            blocks.append(NeRVBlock(in_ch, out_ch, stride, c.kernel, c.activation))
            in_ch = out_ch
        self.blocks = nn.Sequential(*blocks)
        self.encodings = nn.ModuleList(
            HierarchicalEncoding(
                c.frame_count, stride, out_ch, max(1, c.local_dim >> i), c.local_levels
            )
            for i, (out_ch, stride) in enumerate(zip(c.channels, c.strides, strict=True))
            if c.local_dim > 0
        )
        self.head = OutputHead(in_ch)

    def codes(self, t: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Static and dynamic codes for frame positions ``t`` (eqs. 1–4); None if ablated."""
        T = self.config.frame_count
        static = sample_codes(self.static_codes, t, T) if self.static_codes is not None else None
        dynamic = sample_codes(self.dynamic_codes, t, T) if self.dynamic_codes is not None else None
        return static, dynamic

    def fused(self, t: torch.Tensor) -> torch.Tensor:
        """The feature map on the dynamic grid that the decoder blocks upsample."""
        static, dynamic = self.codes(t)
        if static is not None:
            assert self.static_blocks is not None
            feature = self.static_blocks(static)
            if self.fusion is None:
                return feature
            assert dynamic is not None
            return self.fusion(feature, dynamic)
        assert dynamic is not None
        assert self.lift is not None
        return self.lift(dynamic)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """``t``: (N,) frame positions in frame units (may be fractional) → (N, 3, H, W)."""
        x = self.fused(t)
        if self.encodings:
            for block, encoding in zip(self.blocks, self.encodings, strict=True):
                x = encoding(block(x), t)
        else:
            x = self.blocks(x)
        x = self.head(x)
        return x[:, :, : self.config.height, : self.config.width]

    def parameter_groups(self, lr: float) -> list[dict[str, Any]]:
        """Decoder at ``lr``; static and dynamic codes at ``10·lr`` (paper, sec. 4.1)."""
        codes = [p for p in (self.static_codes, self.dynamic_codes) if p is not None]
        ids = {id(p) for p in codes}
        decoder = [p for p in self.parameters() if id(p) not in ids]
        return [{"params": decoder}, {"params": codes, "lr": self.CODE_LR_SCALE * lr}]


def _ablation(codes: str) -> Callable[[int, int, int, int], DSNeRVConfig]:
    return lambda h, w, t, knob: dsnerv_sizing(h, w, t, knob, codes=codes)


# The paper's ablations as their own ids, so `--model` and the comparison benchmark reach them.
register_model(
    "ds-nerv-static",
    DSNeRVConfig,
    _ablation("static"),
    "DS-NeRV ablation: static codes only (no dynamic codes, no fusion)",
    _variant("ds-nerv-static", "static", encodings=False),
)(DSNeRV)
register_model(
    "ds-nerv-dynamic",
    DSNeRVConfig,
    _ablation("dynamic"),
    "DS-NeRV ablation: dynamic codes only (no static codes, no fusion)",
    _variant("ds-nerv-dynamic", "dynamic", encodings=False),
)(DSNeRV)


def dsnerv_he_sizing(height: int, width: int, frame_count: int, knob: int) -> DSNeRVConfig:
    """DS-NeRV of fusion width ``knob`` plus hierarchical encodings at HiNeRV's share of the
    decoder's parameters (``LOCAL_GRID_SHARE``; at least one channel per stage)."""
    from nvcodec.models.budget import count_parameters
    from nvcodec.models.hinerv import LOCAL_GRID_SHARE

    base = dsnerv_sizing(height, width, frame_count, knob)
    codes = base.static_count * base.static_dim * base.static_h * base.static_w
    codes += base.dynamic_count * base.dynamic_dim * base.dynamic_h * base.dynamic_w
    decoder = count_parameters(base) - codes
    local_dim = encoding_width_for(
        LOCAL_GRID_SHARE * decoder, frame_count, base.strides, base.channels, base.local_levels
    )
    return dataclasses.replace(base, local_dim=local_dim)


register_model(
    "ds-nerv-he",
    DSNeRVConfig,
    dsnerv_he_sizing,
    "DS-NeRV + HiNeRV's hierarchical encodings after every decoder block",
    _variant("ds-nerv-he", "both", encodings=True),
)(DSNeRV)
