"""DNeRV: difference stream and decoder, CCU fusion, the reference's counts, training hooks.

What every model must do (config round trip, budget, any frame size, files, ``--fps``) is in
test_nvcodec_contract.py.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from nvcodec.errors import ConfigError
from nvcodec.models import (
    build_model,
    config_from_dict,
    count_parameters,
    solve_config,
    training_defaults,
)
from nvcodec.models.convnext import ConvNeXtEncoder
from nvcodec.models.dnerv import (
    CollaborativeContentUnit,
    DNeRV,
    DNeRVConfig,
    difference_plan,
    dnerv_sizing,
    frame_differences,
)
from nvcodec.models.hnerv import HNeRV, hnerv_sizing, pad_to_grid
from nvcodec.training import TrainConfig, train


def _frames(count: int = 6, height: int = 24, width: int = 40) -> torch.Tensor:
    t = torch.linspace(0, 1, count)[:, None, None]
    yy, xx = torch.meshgrid(
        torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij"
    )
    channels = [0.5 + 0.4 * torch.sin(6 * xx - 3 * t + c) * yy for c in (0, 1, 2)]
    return torch.stack(channels, dim=1)


# --- difference stream ---------------------------------------------------------------------------


def test_reuses_hnerv() -> None:
    assert issubclass(DNeRV, HNeRV)
    assert DNeRV.INTERPOLATES is False
    # the content stream is HNeRV's
    h = hnerv_sizing(72, 96, 4, 12)
    d = dnerv_sizing(72, 96, 4, 12)
    assert {k: v for k, v in d.to_dict().items() if k in h.to_dict()} == h.to_dict()


def test_frame_differences_clamp_at_the_ends() -> None:
    frames = torch.arange(4.0)[:, None, None, None].expand(4, 3, 2, 2) ** 2  # 0, 1, 4, 9
    diff = frame_differences(torch.tensor([0, 2, 3]), frames)
    assert diff.shape == (3, 6, 2, 2)
    assert diff[:, 0, 0, 0].tolist() == [0.0, 3.0, 5.0]  # x_t − x_{t−1}
    assert diff[:, 3, 0, 0].tolist() == [1.0, 5.0, 0.0]  # x_{t+1} − x_t


@pytest.mark.parametrize(("h", "w"), [(17, 33), (72, 96), (80, 160)])
def test_encoder_embedding_shapes(h: int, w: int) -> None:
    cfg = dnerv_sizing(h, w, 3, 8)
    model = build_model(cfg)
    encoder = model.make_training_encoder()
    assert all(isinstance(encoder.get_submodule(n), ConvNeXtEncoder) for n in ("content", "diff"))
    frames = torch.rand(3, 3, h, w)
    index = torch.tensor([0, 2])
    content, diff = model.encode_batch(encoder, index, frames[index], frames)
    assert content.shape == (2, *model.embeddings.shape[1:]) == (2, 16, cfg.embed_h, cfg.embed_w)
    assert diff.shape == (2, *model.diff_embeddings.shape[1:]) == (2, *cfg.diff_shape)


# --- CCU -----------------------------------------------------------------------------------------


def _ccu() -> tuple[CollaborativeContentUnit, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    return CollaborativeContentUnit(6, 2, 3), torch.randn(2, 6, 5, 7), torch.randn(2, 2, 5, 7)


def test_ccu_shapes_and_formula() -> None:
    ccu, c, d = _ccu()
    out = ccu(c, d)
    assert out.shape == c.shape
    assert all(m.kernel_size == (3, 3) for m in ccu.modules() if isinstance(m, torch.nn.Conv2d))
    p = torch.tanh(ccu.candidate_c(c) + ccu.candidate_d(d))
    s = torch.sigmoid(ccu.gate_c(c) + ccu.gate_d(d))
    torch.testing.assert_close(out, s * p + (1 - s) * c)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_ccu_gate_extremes(sign: float) -> None:
    ccu, c, d = _ccu()
    with torch.no_grad():
        ccu.gate_c.bias.fill_(sign * 1e4)
        ccu.gate_d.bias.fill_(sign * 1e4)
        out = ccu(c, d)
        p = ccu.candidate(c, d)
    assert torch.equal(out, p if sign > 0 else c)


# --- model ---------------------------------------------------------------------------------------


def test_diff_embeddings_change_the_output() -> None:
    torch.manual_seed(0)
    model = build_model(dnerv_sizing(24, 40, 3, 6))
    t = torch.tensor([1.0])
    with torch.no_grad():
        model.embeddings.normal_()
        before = model(t)
        model.diff_embeddings[1].normal_()
        assert not torch.equal(model(t), before)


def test_stored_parameters_and_positions() -> None:
    model = build_model(dnerv_sizing(24, 40, 6, 8))
    names = [n for n, _ in model.named_parameters()]
    assert names[:2] == ["embeddings", "diff_embeddings"]
    parts = ("embeddings", "diff_embeddings", "lift", "blocks", "head", "diff_decoder", "ccu")
    assert all(n.split(".")[0] in parts for n in names)
    encoder = model.make_training_encoder()
    stored = {id(p) for p in model.parameters()}
    assert not any(id(p) in stored for p in encoder.parameters())
    with pytest.raises(ConfigError, match=r"cannot render frame position 2\.5"):
        model(torch.tensor([2.5]))


# --- config, budget ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"fusion_stage": 4},  # 72×96 has four stages: 0..3
        {"ccu_kernel": 2},
        {"diff_dim": 0},
        {"kernels": (1, 3)},
        {"embed_h": 1},
        {"extra": 1},
    ],
)
def test_invalid_config_refused(change: dict) -> None:
    data = dnerv_sizing(72, 96, 16, 12).to_dict()
    data.update({k: list(v) if isinstance(v, tuple) else v for k, v in change.items()})
    with pytest.raises(ConfigError):
        DNeRVConfig.from_dict(data)
    del data["diff_dim"]
    with pytest.raises(ConfigError):
        DNeRVConfig.from_dict(data)


def test_budget_counts_both_embeddings() -> None:
    for budget in (30_000, 100_000):
        cfg = solve_config("dnerv", 72, 96, 16, budget)
        model = build_model(cfg, device="meta")
        assert model.diff_embeddings.numel() == 16 * 2 * cfg.diff_shape[1] * cfg.diff_shape[2]
        assert count_parameters(cfg) <= budget
        assert count_parameters(dnerv_sizing(72, 96, 16, cfg.lift_dim + 1)) > budget


# --- training hooks ------------------------------------------------------------------------------


def test_training_lowers_loss_and_finalize_fills_both_tables() -> None:
    torch.manual_seed(0)
    frames = _frames()
    cfg = dnerv_sizing(24, 40, 6, 8)
    model = build_model(cfg)
    made: list[torch.nn.Module] = []
    make = model.make_training_encoder
    model.make_training_encoder = lambda: made.append(make()) or made[-1]  # type: ignore[method-assign]
    losses: list[float] = []
    train(
        model,
        frames,
        TrainConfig(epochs=12, lr=5e-3, batch_size=2, warmup=0.1),
        lambda s: losses.append(s.loss),
    )
    assert losses[-1] < 0.5 * losses[0]
    (encoder,) = made
    with torch.no_grad():
        index = torch.arange(6)
        content = encoder.get_submodule("content")(pad_to_grid(frames, cfg.grid_size))
        diff_in = pad_to_grid(frame_differences(index, frames), cfg.grid_size)
        diff = encoder.get_submodule("diff")(diff_in)
        torch.testing.assert_close(model.embeddings, content)
        torch.testing.assert_close(model.diff_embeddings, diff)
        mse = float(torch.nn.functional.mse_loss(model(index.float()), frames))
    assert mse < losses[0]


# --- the reference -------------------------------------------------------------------------------


def test_reference_configuration_counts() -> None:
    """QiZhao-NJU's ``cfgs/DNeRV.yaml`` at 960×1920: 16×2×4 content and 2×40×80 difference
    embeddings, lift 92, channels 76, 63, 52, 43, 35, the CCU after the third block; the counts
    its layer shapes give, part by part."""
    config = DNeRVConfig(
        height=960,
        width=1920,
        frame_count=1,
        embed_h=2,
        embed_w=4,
        strides=(5, 4, 4, 3, 2),
        kernels=(1, 3, 5, 5, 5),
        lift_dim=92,
        channels=(76, 63, 52, 43, 35),
        fusion_stage=3,
        diff_from=2,
    )
    model = build_model(config, device="meta")
    assert config.diff_shape == (2, 40, 80)

    def count(module: torch.nn.Module) -> int:
        return sum(p.numel() for p in module.parameters())

    assert [count(b) for b in model.blocks] == [176_700, 690_480, 1_311_232, 503_487, 150_640]
    assert (count(model.lift), count(model.head), count(model.ccu)) == (1_564, 948, 97_552)
    assert [count(m) for m in model.diff_decoder] == [189, 472_576]
    assert model.diff_decoder[1].conv.kernel_size == (3, 3)


@pytest.mark.parametrize(
    ("strides", "plan"),
    [
        ((5, 4, 4, 3, 2), (3, 2)),  # 960×1920: the reference's 40×80, fused before ×3, ×2
        ((5, 4, 4, 2, 2), (3, 2)),  # 640×1280: 40×80 (1/16 of the side)
        ((5, 2, 2, 2), (2, 0)),  # Bunny 160×80: 2×4 (1/40), not 10×20 (1/8)
        ((3, 2), (1, 0)),
        ((3,), (0, 0)),
    ],
)
def test_difference_plan(strides: tuple[int, ...], plan: tuple[int, int]) -> None:
    assert difference_plan(strides) == plan


def test_difference_embeddings_no_longer_crowd_out_the_decoder() -> None:
    """At 0.1M on Bunny 160×80×132 the first DNeRV's difference embeddings took 54 %."""
    config = solve_config("dnerv", 80, 160, 132, 100_000)
    assert count_parameters(config) <= 100_000
    model = build_model(config, device="meta")
    assert model.diff_embeddings.numel() / count_parameters(config) < 0.05
    assert config.diff_shape == (2, 2, 4)


def test_files_written_before_the_difference_decoder_still_decode_the_same() -> None:
    data = dataclasses.replace(dnerv_sizing(72, 96, 4, 12), fusion_stage=1).to_dict()
    del data["diff_from"]
    old = config_from_dict("dnerv", data)
    assert (old.diff_from, old.diff_stage, old.diff_decoded) == (-1, 1, False)
    model = build_model(old, device="meta")
    assert isinstance(model.diff_decoder, torch.nn.Identity)
    assert model.diff_embeddings.shape[1:] == (2, *old.fusion_shape[1:])
    assert model.ccu.gate_d.in_channels == 2
    assert "diff_from" not in old.to_dict()


def test_recipe_clips_gradients_as_the_reference_does() -> None:
    recipe = training_defaults("dnerv")
    assert recipe["clip"] == 0.1
    assert recipe["cpu_bf16"] is False  # bf16 steps slower at 160×80 (benchmarks/results/precision)
    own = ("clip", "cpu_bf16")
    assert {k: v for k, v in recipe.items() if k not in own} == training_defaults("hnerv")
