"""Decoder MACs per pixel, counted from the model's own forward pass (attention included)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nvcodec.models import build_model, model_ids, solve_config
from nvcodec.models.complexity import macs_per_pixel, total_macs
from nvcodec.models.nerv import NeRVConfig
from nvcodec.models.nervpp import nervpp_sizing


def test_tiny_nerv_matches_hand_count() -> None:
    cfg = NeRVConfig(
        height=7,  # cropped from the padded 8×8 grid: padded work counts against real pixels
        width=8,
        frame_count=4,
        base_h=2,
        base_w=2,
        strides=(2, 2),
        stem_dim=4,
        stem_hidden=8,
        channels=(4, 2),
        kernel=3,
        pe_levels=2,
    )
    stem = 8 * 4 + (4 * 2 * 2) * 8  # Linear(4 → 8), Linear(8 → 4·2·2)
    block1 = (4 * 4) * (2 * 2) * 4 * 9  # conv 4 → 4·2² at 2×2, 3×3
    block2 = (2 * 4) * (4 * 4) * 4 * 9  # conv 4 → 2·2² at 4×4, 3×3
    head = 3 * (8 * 8) * 2 * 9  # conv 2 → 3 at 8×8, 3×3
    expected = stem + block1 + block2 + head
    assert total_macs(cfg) == expected == 10_528
    assert macs_per_pixel(cfg) == pytest.approx(expected / (7 * 8))


def _weighted_layer_macs(model_id: str) -> tuple[int, int]:
    """(all MACs, MACs of conv/linear layers alone by hooks) of a small model of ``model_id``."""
    cfg = solve_config(model_id, 72, 96, 8, 30_000)
    model = build_model(cfg, device="meta")
    counted = 0

    def hook(module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        nonlocal counted
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            counted += output.numel() * module.in_channels // module.groups * k
        elif isinstance(module, nn.Linear):
            counted += output.numel() * module.in_features

    for m in model.modules():
        m.register_forward_hook(hook)
    with torch.no_grad():
        model(torch.zeros(1, device="meta"))
    return total_macs(cfg), counted


def test_attention_counts_on_top_of_the_weighted_layers() -> None:
    total, layers = _weighted_layer_macs("ds-nerv")
    assert total > layers  # softmax(QKᵀ)V of the channel attention
    for model_id in ("nerv", "hnerv"):  # no parameter-free products: both counts agree
        total, layers = _weighted_layer_macs(model_id)
        assert total == layers


def test_nervpp_block_count() -> None:
    cfg = nervpp_sizing(16, 16, 4, 4)  # every layer of every block, by formula
    h, w = cfg.base_h, cfg.base_w
    e, k, dk = cfg.expansion, cfg.kernel, cfg.dw_kernel
    macs = 2 * cfg.stem_hidden * 2 * cfg.pe_levels + cfg.stem_dim * h * w * cfg.stem_hidden
    c_in = cfg.stem_dim
    for c, s in zip(cfg.channels, cfg.strides, strict=True):
        lo, hi = h * w, h * s * w * s
        macs += lo * c * c_in  # projection
        g = 8 * c // 3  # pre-UB gated CNN block: C → 2g, depthwise 5×5 on C, g → C
        macs += lo * 2 * g * c + lo * c * 25 + lo * g * c
        macs += lo * c * s * s * c * k * k  # UB
        macs += hi * c * dk * dk + hi * e * c * c + hi * c * e * c  # post-UB SCRB
        h, w, c_in = h * s, w * s, c
    macs += h * w * 3 * c_in  # 1×1 head
    assert total_macs(cfg) == macs


@pytest.mark.parametrize("model_id", ["nerv", "ds-nerv", "nerv++"])
def test_every_model_counts(model_id: str) -> None:
    assert model_id in model_ids()
    cfg = solve_config(model_id, 72, 96, 8, 30_000)
    mpp = macs_per_pixel(cfg)
    assert 10 < mpp < 1e6
