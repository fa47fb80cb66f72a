"""NeRV++: gated-MLP stem, SCRBs, the NeRV++ block and its skip, config, sizing, init, files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nvcodec import EncodeOptions, decode_frames, encode
from nvcodec.errors import ConfigError
from nvcodec.models import (
    build_model,
    config_from_dict,
    count_parameters,
    model_ids,
    solve_config,
    training_defaults,
)
from nvcodec.models.blocks import GatedMLP, NeRVBlock, OutputHead, PositionalEncoding
from nvcodec.models.nervpp import SCRB, NeRVPP, NeRVPPBlock, NeRVPPConfig, nervpp_sizing

CHAPLIN = Path(__file__).resolve().parents[1] / "data" / "clips" / "chaplin_96x72_16f.mkv"


def _zero(conv: nn.Conv2d) -> None:
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.zero_()


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
    block = NeRVPPBlock(in_ch, out_ch, stride, 3, 3, 2, "gelu")
    assert isinstance(block.ub, NeRVBlock)  # the shared UB, not a copy
    assert block.proj.kernel_size == (1, 1)
    assert block.post.dw.kernel_size == (3, 3)
    out = block(torch.randn(2, in_ch, 3, 4))
    assert out.shape == (2, out_ch, 3 * stride, 4 * stride)


def test_zeroed_main_path_leaves_the_bilinear_skip() -> None:
    torch.manual_seed(4)
    block = NeRVPPBlock(6, 4, 2, 3, 3, 2, "gelu")
    for module in (block.pre, block.ub, block.post):
        for conv in module.modules():
            if isinstance(conv, nn.Conv2d):
                _zero(conv)
    x = torch.randn(2, 6, 3, 5)
    skip = F.interpolate(block.proj(x), scale_factor=2, mode="bilinear", align_corners=False)
    assert skip.shape == (2, 4, 6, 10)
    torch.testing.assert_close(block(x), skip)


# --- whole model ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("h", "w"), [(17, 33), (72, 96)])
def test_forward_shapes_and_range(h: int, w: int) -> None:
    torch.manual_seed(5)
    model = build_model(nervpp_sizing(h, w, 7, 8))
    assert type(model) is NeRVPP
    out = model(torch.tensor([0.0, 2.5, 6.0]))
    assert out.shape == (3, 3, h, w)
    assert out.min() >= 0.0
    assert out.max() <= 1.0


def test_shared_parts_are_used() -> None:
    model = build_model(nervpp_sizing(72, 96, 4, 8))
    assert isinstance(model.encoding, PositionalEncoding)
    assert isinstance(model.stem, GatedMLP)
    assert isinstance(model.head, OutputHead)
    assert model.head.conv.kernel_size == (1, 1)
    assert all(isinstance(b, NeRVPPBlock) for b in model.blocks)


def test_xavier_init_applied() -> None:
    torch.manual_seed(6)
    model = build_model(nervpp_sizing(72, 96, 4, 16))
    layers = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    assert layers
    for m in layers:
        assert torch.count_nonzero(m.bias) == 0
        fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(m.weight)
        limit = (6.0 / (fan_in + fan_out)) ** 0.5
        assert m.weight.abs().max() <= limit
        if m.weight.numel() >= 500:  # uniform on [-limit, limit]: fills most of the range
            assert m.weight.abs().max() > 0.8 * limit
            std = m.weight.std().item()
            assert std == pytest.approx(limit / 3**0.5, rel=0.15)


# --- config, registry, sizing --------------------------------------------------------------------


def test_registered_with_recipe() -> None:
    assert "nerv++" in model_ids()
    recipe = training_defaults("nerv++")
    assert recipe["optimizer"] == "adam"
    assert len(recipe["betas"]) == 2


def test_config_json_round_trip() -> None:
    cfg = nervpp_sizing(72, 96, 16, 12)
    data = json.loads(json.dumps(cfg.to_dict()))
    again = config_from_dict("nerv++", data)
    assert again == cfg
    assert isinstance(again, NeRVPPConfig)
    assert type(build_model(again, device="meta")) is NeRVPP


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


def test_budget_respected_and_knob_monotone() -> None:
    counts = [count_parameters(nervpp_sizing(72, 96, 16, k)) for k in range(1, 40, 3)]
    assert counts == sorted(counts)
    for budget in (30_000, 100_000):
        cfg = solve_config("nerv++", 72, 96, 16, budget)
        assert isinstance(cfg, NeRVPPConfig)
        n = count_parameters(cfg)
        assert n <= budget
        bigger = nervpp_sizing(72, 96, 16, cfg.stem_dim + 1)
        assert count_parameters(bigger) > budget


def test_activation_elements_bounds_real_activations() -> None:
    cfg = nervpp_sizing(72, 96, 4, 8)
    model = build_model(cfg, device="meta")
    largest = 0

    def hook(_m: nn.Module, _i: object, out: torch.Tensor) -> None:
        nonlocal largest
        largest = max(largest, out.numel())

    for m in model.modules():
        if not list(m.children()):
            m.register_forward_hook(hook)
    model(torch.zeros(1, device="meta"))
    assert largest <= cfg.activation_elements()


# --- through the public API ----------------------------------------------------------------------


def test_encode_decode_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "c.nvc"
    opts = EncodeOptions(
        model="nerv++", size=30_000, epochs=2, frames=(0, 4), device="cpu", overwrite=True
    )
    report = encode(CHAPLIN, path, opts)
    assert report.model == "nerv++"
    full = decode_frames(path, device="cpu")
    assert full.y.shape == (4, 72, 96)
    assert full.u.shape == (4, 36, 48)
    part = decode_frames(path, (1, 3), device="cpu")
    assert part.y.shape == (2, 72, 96)
    assert np.array_equal(part.y, full.y[1:3])
    assert np.array_equal(part.u, full.u[1:3])
    assert np.array_equal(part.v, full.v[1:3])
