"""DS-NeRV: code sampling (eqs. 1–4), CCA fusion (eqs. 5–7), config, sizing, training, files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from nvcodec.errors import ConfigError
from nvcodec.models import build_model, count_parameters, model_ids, solve_config
from nvcodec.models.dsnerv import (
    CrossChannelAttention,
    DSNeRV,
    DSNeRVConfig,
    dsnerv_sizing,
    plan_codes,
    sample_codes,
)
from nvcodec.training import TrainConfig, train

CHAPLIN = Path(__file__).resolve().parents[1] / "data" / "clips" / "chaplin_96x72_16f.mkv"


def _codes(count: int, c: int = 3, h: int = 2, w: int = 2) -> torch.Tensor:
    return torch.randn(count, c, h, w, generator=torch.Generator().manual_seed(count))


# --- code sampling -------------------------------------------------------------------------------


def test_static_code_at_anchors_is_exact() -> None:
    codes = _codes(4)  # T = 13: anchors at 0, 4, 8, 12
    out = sample_codes(codes, torch.tensor([0.0, 4.0, 8.0, 12.0]), 13)
    assert torch.equal(out, codes)


def test_static_code_between_anchors_is_distance_weighted() -> None:
    codes = _codes(4)
    out = sample_codes(codes, torch.tensor([2.0, 5.0, 11.0]), 13)
    torch.testing.assert_close(out[0], (codes[0] + codes[1]) / 2)  # halfway: mean
    # t = 5: dis_i = 1 to anchor 4, dis_j = 3 to anchor 8 → w_i = 3/4, w_j = 1/4 (eq. 2)
    torch.testing.assert_close(out[1], 0.75 * codes[1] + 0.25 * codes[2])
    torch.testing.assert_close(out[2], 0.25 * codes[2] + 0.75 * codes[3])


def test_edges_and_clamping() -> None:
    codes = _codes(3)  # T = 10 not divisible by the spacing: anchors at 0, 4.5, 9
    out = sample_codes(codes, torch.tensor([0.0, 9.0, -3.0, 20.0, 4.5, 6.75]), 10)
    assert torch.equal(out[0], codes[0])
    assert torch.equal(out[1], codes[2])
    assert torch.equal(out[2], codes[0])
    assert torch.equal(out[3], codes[2])
    assert torch.equal(out[4], codes[1])
    torch.testing.assert_close(out[5], (codes[1] + codes[2]) / 2)


def test_fractional_positions_are_continuous() -> None:
    codes = _codes(5)
    t = torch.linspace(0, 15, 3001)
    out = sample_codes(codes, t, 16)
    steps = (out[1:] - out[:-1]).abs().amax(dim=(1, 2, 3))
    assert steps.max() < 0.02  # no jumps anywhere, anchors included
    one_frame = sample_codes(codes, torch.tensor([1.0, 1.25, 2.0]), 16)
    torch.testing.assert_close(one_frame[1], 0.75 * one_frame[0] + 0.25 * one_frame[2])


def test_single_frame_clip() -> None:
    codes = _codes(2)
    assert torch.equal(sample_codes(codes, torch.tensor([0.0, 0.5]), 1)[0], codes[0])


def test_dynamic_sampling_matches_interpolate_align_corners() -> None:
    codes = _codes(5, c=2, h=3, w=4)
    T = 16
    seq = codes.permute(1, 2, 3, 0).reshape(1, -1, 5)  # time last
    up = F.interpolate(seq, size=T, mode="linear", align_corners=True)
    up = up.reshape(2, 3, 4, T).permute(3, 0, 1, 2)
    torch.testing.assert_close(sample_codes(codes, torch.arange(T).float(), T), up)


def test_model_codes_use_the_config_counts() -> None:
    cfg = dsnerv_sizing(24, 40, 30, 8)
    model = DSNeRV(cfg)
    assert model.static_codes.shape == (3, cfg.static_dim, cfg.static_h, cfg.static_w)
    assert model.dynamic_codes.shape == (9, 2, cfg.dynamic_h, cfg.dynamic_w)
    static, dynamic = model.codes(torch.tensor([0.0, 29.0]))
    assert torch.equal(static[1], model.static_codes[-1].detach())
    assert torch.equal(dynamic[0], model.dynamic_codes[0].detach())


# --- CCA fusion ----------------------------------------------------------------------------------


def test_cca_attends_over_channels() -> None:
    torch.manual_seed(0)
    cca = CrossChannelAttention(channels=6, dynamic_dim=2, kernel=3)
    static, dynamic = torch.randn(2, 6, 5, 7), torch.randn(2, 2, 5, 7)
    attn = cca.attention(static, dynamic)
    assert attn.shape == (2, 6, 6)
    torch.testing.assert_close(attn.sum(-1), torch.ones(2, 6))
    q = cca.query(static).flatten(2)
    k = cca.key(dynamic).flatten(2)
    torch.testing.assert_close(attn, torch.softmax(q @ k.transpose(1, 2), -1))  # no scaling
    out = cca(static, dynamic)
    assert out.shape == static.shape
    v = cca.value(dynamic).flatten(2)
    torch.testing.assert_close(out, (attn @ v).view_as(static) + static)


def test_cca_residual_path() -> None:
    cca = CrossChannelAttention(channels=4, dynamic_dim=2, kernel=1)
    with torch.no_grad():
        cca.value.weight.zero_()
        cca.value.bias.zero_()
    static = torch.randn(1, 4, 3, 3)
    assert torch.equal(cca(static, torch.randn(1, 2, 3, 3)), static)


# --- model, config, sizing -----------------------------------------------------------------------


def test_registered_and_plans() -> None:
    assert "ds-nerv" in model_ids()
    p = plan_codes(640, 1280)  # REFERENCE.md: static 4×8, dynamic 20×40, strides 2,2,2,2,2
    assert (p.static_h, p.static_w, p.static_strides, p.strides) == (4, 8, (5,), (2,) * 5)
    p = plan_codes(960, 1920)  # paper: static 4×8 (÷240), dynamic 20×40 (÷48)
    assert (p.static_h, p.static_w, p.static_strides, p.scale) == (4, 8, (5,), 240)


@pytest.mark.parametrize(
    "change",
    [
        {"static_rate": 0.5, "dynamic_rate": 0.3},  # static must be sparser
        {"dynamic_rate": 1.5},
        {"channels": (4,) * 7},  # one per stride (the plan has fewer)
        {"kernel": 2},
        {"static_strides": (1,)},  # does not cover the frame
        {"static_h": 100},  # pads far beyond the frame
        {"activation": "tanh"},
        {"fusion_dim": 0},
    ],
)
def test_invalid_config_refused(change: dict) -> None:
    data = dsnerv_sizing(72, 96, 16, 12).to_dict()
    data.update({k: list(v) if isinstance(v, tuple) else v for k, v in change.items()})
    with pytest.raises(ConfigError):
        DSNeRVConfig.from_dict(data)


def test_unknown_field_refused() -> None:
    data = dsnerv_sizing(72, 96, 16, 12).to_dict()
    with pytest.raises(ConfigError):
        DSNeRVConfig.from_dict({**data, "extra": 1})
    data["strides"] = 3
    with pytest.raises(ConfigError):
        DSNeRVConfig.from_dict(data)


def test_sizing_monotone_and_budget() -> None:
    counts = [count_parameters(dsnerv_sizing(80, 160, 16, k)) for k in (4, 8, 16, 32, 64, 96)]
    assert counts == sorted(counts)
    for budget in (30_000, 100_000):
        cfg = solve_config("ds-nerv", 72, 96, 16, budget)
        assert count_parameters(cfg) <= budget
        # the next knob must overshoot
        assert count_parameters(dsnerv_sizing(72, 96, 16, cfg.fusion_dim + 1)) > budget


def test_parameter_groups_give_codes_ten_times_lr() -> None:
    model = DSNeRV(dsnerv_sizing(17, 33, 5, 4))
    decoder, codes = model.parameter_groups(1e-3)
    assert codes["lr"] == pytest.approx(1e-2)
    assert "lr" not in decoder
    assert len(decoder["params"]) + 2 == len(list(model.parameters()))
    assert DSNeRV.TRAINING_DEFAULTS["optimizer"] == "adan"


def test_tiny_model_trains() -> None:
    torch.manual_seed(0)
    t = torch.linspace(0, 1, 6)[:, None, None]
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 12), torch.linspace(0, 1, 20), indexing="ij")
    channels = [0.5 + 0.4 * torch.sin(6 * xx - 3 * t + c) * yy for c in (0, 1, 2)]
    frames = torch.stack(channels, dim=1)
    assert frames.shape == (6, 3, 12, 20)
    model = build_model(dsnerv_sizing(12, 20, 6, 8))
    losses: list[float] = []
    train(
        model,
        frames,
        TrainConfig(epochs=15, lr=5e-3, batch_size=2),
        lambda s: losses.append(s.loss),
    )
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize(
    ("model_id", "has_static", "has_dynamic"),
    [("ds-nerv", True, True), ("ds-nerv-static", True, False), ("ds-nerv-dynamic", False, True)],
)
def test_ablations_store_only_their_code_kind(model_id, has_static, has_dynamic):
    from nvcodec.models import build_model, solve_config

    config = solve_config(model_id, 24, 40, 12, 20_000)
    names = {name for name, _ in build_model(config).named_parameters()}
    assert ("static_codes" in names) is has_static
    assert ("dynamic_codes" in names) is has_dynamic
    assert any(n.startswith("fusion.") for n in names) is (has_static and has_dynamic)
    out = build_model(config)(torch.tensor([0.0, 5.5, 11.0]))
    assert out.shape == (3, 3, 24, 40)


def test_config_without_later_added_field_still_loads() -> None:
    # Files written before the ablation field existed mean "both kinds of codes".
    data = dsnerv_sizing(72, 96, 16, 12).to_dict()
    assert "codes" not in data  # at its default, a field added later is not even written
    assert DSNeRVConfig.from_dict(data).codes == "both"
    static = dsnerv_sizing(72, 96, 16, 12, codes="static").to_dict()
    assert DSNeRVConfig.from_dict(static).codes == "static"
    del data["kernel"]  # an original field stays mandatory
    with pytest.raises(ConfigError, match="missing"):
        DSNeRVConfig.from_dict(data)
