"""NeRV++: the reference's blocks and sizes, the skip, init, and files written before them.

What every model must do (config round trip, budget, any frame size, files, ``--fps``) is in
test_nvcodec_contract.py.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nvcodec.errors import ConfigError
from nvcodec.models import build_model, config_from_dict, count_parameters, training_defaults
from nvcodec.models.blocks import GatedMLP, NeRVBlock, OutputHead, PositionalEncoding
from nvcodec.models.nervpp import SCRB, GatedCNNBlock, NeRVPPBlock, nervpp_sizing

OLD_FILE_FIELDS = {"expansion": 2, "activation": "gelu"}  # nerv++ configs before the reference's


def _zero(conv: nn.Conv2d) -> None:
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.zero_()


def _config(**changes: object):
    return dataclasses.replace(nervpp_sizing(72, 96, 4, 16), **changes)


# --- building blocks -----------------------------------------------------------------------------


def test_gated_mlp_shape_and_gating() -> None:
    torch.manual_seed(0)
    mlp = GatedMLP(10, 16, 24, "gelu")
    x = torch.randn(5, 10)
    assert mlp(x).shape == (5, 24)
    expected = mlp.out(F.gelu(mlp.gate(x)) * mlp.value(x))
    torch.testing.assert_close(mlp(x), expected)
    with torch.no_grad():  # a zero value path closes the gate: the output is the output bias
        mlp.value.weight.zero_()
        mlp.value.bias.zero_()
    torch.testing.assert_close(mlp(x), mlp.out.bias.expand(5, 24))


@pytest.mark.parametrize("gated", [True, False])
def test_scrb_shapes_and_zeroed_last_pointwise_is_identity(gated: bool) -> None:
    torch.manual_seed(1)
    block = SCRB(6, 12, 3, "gelu", gated=gated)
    assert block.dw.groups == 6  # depthwise
    assert block.pw_in.out_channels == (24 if gated else 12)
    x = torch.randn(2, 6, 5, 7)
    y = block(x)
    assert y.shape == x.shape
    assert not torch.allclose(y, x)
    _zero(block.pw_out)
    assert torch.equal(block(x), x)


def test_scrb_gating_formula() -> None:
    torch.manual_seed(2)
    block = SCRB(4, 3, 3, "silu", gated=True)
    x = torch.randn(1, 4, 6, 6)
    a, b = block.pw_in(block.dw(x)).chunk(2, dim=1)
    torch.testing.assert_close(block(x), x + block.pw_out(F.silu(a) * b))


@pytest.mark.parametrize(
    ("stride", "in_ch", "out_ch"), [(2, 8, 4), (3, 5, 5), (5, 6, 3), (1, 4, 6)]
)
def test_block_shapes_and_parts(stride: int, in_ch: int, out_ch: int) -> None:
    torch.manual_seed(3)
    block = NeRVPPBlock(in_ch, out_ch, stride, _config())
    assert isinstance(block.ub, NeRVBlock)  # the shared UB, not a copy
    assert block.proj.kernel_size == (1, 1)
    assert block.post.dw.kernel_size == (3, 3)
    out = block(torch.randn(2, in_ch, 3, 4))
    assert out.shape == (2, out_ch, 3 * stride, 4 * stride)


def test_zeroed_main_path_leaves_the_bilinear_skip() -> None:
    torch.manual_seed(4)
    block = NeRVPPBlock(6, 4, 2, _config())
    for module in (block.pre, block.ub, block.post):
        for conv in module.modules():
            if isinstance(conv, nn.Conv2d):
                _zero(conv)
    x = torch.randn(2, 6, 3, 5)
    skip = F.interpolate(block.proj(x), scale_factor=2, mode="bilinear", align_corners=False)
    assert skip.shape == (2, 4, 6, 10)
    torch.testing.assert_close(block(x), skip)


# --- whole model ---------------------------------------------------------------------------------


def test_shared_parts_are_used() -> None:
    model = build_model(nervpp_sizing(72, 96, 4, 8))
    assert isinstance(model.encoding, PositionalEncoding)
    assert isinstance(model.stem, GatedMLP)
    assert isinstance(model.head, OutputHead)
    assert model.head.conv.kernel_size == (1, 1)
    assert all(isinstance(b, NeRVPPBlock) for b in model.blocks)
    assert all(isinstance(b.pre, GatedCNNBlock) for b in model.blocks)
    assert all(isinstance(b.ub.act, nn.SiLU) for b in model.blocks)  # the reference's swish


def test_init_follows_the_reference() -> None:
    """Convs: Xavier-uniform; linear layers (stem, gated block's pointwise): truncated normal."""
    torch.manual_seed(6)
    model = build_model(nervpp_sizing(72, 96, 4, 16))
    normal = {id(m) for m in model.modules() if isinstance(m, nn.Linear)}
    normal |= {id(m) for b in model.blocks for m in (b.pre.pw_in, b.pre.pw_out)}
    layers = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    assert len(normal) == 3 + 2 * len(model.blocks)
    for m in layers:
        assert torch.count_nonzero(m.bias) == 0
        if id(m) in normal:
            assert m.weight.abs().max() <= 0.04
            if m.weight.numel() >= 500:
                assert m.weight.std().item() == pytest.approx(0.0176, rel=0.2)
            continue
        fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(m.weight)
        limit = (6.0 / (fan_in + fan_out)) ** 0.5
        assert m.weight.abs().max() <= limit


# --- config, registry, sizing --------------------------------------------------------------------


def test_registered_with_recipe() -> None:
    recipe = training_defaults("nerv++")
    assert recipe["optimizer"] == "adam"
    assert len(recipe["betas"]) == 2


@pytest.mark.parametrize(
    "change",
    [
        {"channels": [8, 4]},  # one channel count per stride
        {"dw_kernel": 4},  # even kernel
        {"kernel": 2},
        {"expansion": 0},
        {"strides": [2]},  # does not cover the frame
        {"base_h": 500},  # pads far more than 2×
        {"activation": "tanh"},
        {"stem_dim": 1.5},
        {"pe_base": float("nan")},
    ],
)
def test_invalid_config_refused(change: dict) -> None:
    data = nervpp_sizing(72, 96, 16, 8).to_dict()
    data.update(change)
    with pytest.raises(ConfigError):
        config_from_dict("nerv++", data)


def test_unknown_or_missing_field_refused() -> None:
    data = nervpp_sizing(72, 96, 16, 8).to_dict()
    with pytest.raises(ConfigError):
        config_from_dict("nerv++", {**data, "extra": 1})
    del data["expansion"]
    with pytest.raises(ConfigError):
        config_from_dict("nerv++", data)


# --- the reference's blocks and sizes ------------------------------------------------------------


def test_gated_cnn_block_formula_and_widths() -> None:
    torch.manual_seed(7)
    block = GatedCNNBlock(6, 16, 5)
    assert (block.pw_in.out_channels, block.dw.groups, block.dw.kernel_size) == (32, 6, (5, 5))
    x = torch.randn(2, 6, 7, 9)
    gate, identity, conv = block.pw_in(x).split((16, 10, 6), dim=1)
    expected = x + block.pw_out(F.gelu(gate) * torch.cat([identity, block.dw(conv)], dim=1))
    torch.testing.assert_close(block(x), expected)
    _zero(block.pw_out)
    assert torch.equal(block(x), x)
    with pytest.raises(ConfigError, match="hidden width"):
        GatedCNNBlock(6, 5, 5)


@pytest.mark.parametrize(
    ("first", "expected"), [(8, 1_902_725), (26, 3_379_541), (58, 6_382_533), (112, 12_546_111)]
)
def test_reference_sizes_at_720p(first: int, expected: int) -> None:
    """ahmedgh970/NeRV- (``model_best``, ``--fc_hw_dim 9_16_{8,26,58,112} --lower-width 80
    --reduction 2 --stem_dim_num 512_1 --strides 5 2 2 2 2``: XS, S, M, L): the counts its layer
    shapes give. The sizing rule reaches M and L; XS and S are the same config, narrower first."""
    config = nervpp_sizing(720, 1280, 132, 80)  # M
    assert (config.base_h, config.base_w, config.strides) == (9, 16, (5, 2, 2, 2, 2))
    assert (config.channels, config.stem_hidden) == ((58, 80, 80, 80, 80), 512)
    config = dataclasses.replace(config, stem_dim=first, channels=(first, 80, 80, 80, 80))
    assert count_parameters(config) == expected
    if first >= 58:
        assert config == nervpp_sizing(720, 1280, 132, 80 + first - 58)
    block = build_model(config, device="meta").blocks[-1]  # 80 → 80, ×2
    parts = {name: sum(p.numel() for p in m.parameters()) for name, m in block.named_children()}
    assert parts == {"proj": 6_480, "pre": 53_706, "ub": 230_720, "post": 13_760}


def test_small_budgets_keep_the_reference_shape() -> None:
    config = nervpp_sizing(80, 160, 132, 16)  # about 0.1M at 160×80
    assert config.channels == (12, 16, 16, 16)  # M's 58 : 80, fine stages equal
    assert 90_000 < count_parameters(config) <= 100_000
    assert config.stem_hidden == round(512 * 16 / 80)


def test_files_written_before_the_reference_blocks_still_decode_the_same() -> None:
    """A nerv++ config without ``pre_block`` means the depthwise-first SCRB and one activation."""
    data = nervpp_sizing(72, 96, 4, 16).to_dict()
    data.update(OLD_FILE_FIELDS)
    del data["pre_block"]
    old = config_from_dict("nerv++", data)
    assert old.pre_block == "scrb"
    model = build_model(old, device="meta")
    assert all(isinstance(b.pre, SCRB) and b.pre.gated for b in model.blocks)
    assert all(b.post.pw_in.out_channels == 2 * b.proj.out_channels for b in model.blocks)
    assert isinstance(model.stem.act, nn.GELU)
    assert "pre_block" not in old.to_dict()  # written back as older readers expect
