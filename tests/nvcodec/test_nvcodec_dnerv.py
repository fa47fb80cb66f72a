"""DNeRV: difference stream, CCU fusion, config, budget, training hooks, files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nvcodec import EncodeOptions, decode_frames, encode
from nvcodec.errors import ConfigError
from nvcodec.models import build_model, config_from_dict, count_parameters, model_ids, solve_config
from nvcodec.models.convnext import ConvNeXtEncoder
from nvcodec.models.dnerv import (
    CollaborativeContentUnit,
    DNeRV,
    DNeRVConfig,
    dnerv_sizing,
    frame_differences,
    fusion_stage_for,
)
from nvcodec.models.hnerv import HNeRV, hnerv_sizing, pad_to_grid
from nvcodec.training import TrainConfig, train

CHAPLIN = Path(__file__).resolve().parents[1] / "data" / "clips" / "chaplin_96x72_16f.mkv"


def _frames(count: int = 6, height: int = 24, width: int = 40) -> torch.Tensor:
    t = torch.linspace(0, 1, count)[:, None, None]
    yy, xx = torch.meshgrid(
        torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij"
    )
    channels = [0.5 + 0.4 * torch.sin(6 * xx - 3 * t + c) * yy for c in (0, 1, 2)]
    return torch.stack(channels, dim=1)


# --- difference stream ---------------------------------------------------------------------------


def test_registered_and_reuses_hnerv() -> None:
    assert "dnerv" in model_ids()
    assert issubclass(DNeRV, HNeRV)
    assert DNeRV.INTERPOLATES is False
    # the paper's 960×1920: content 16×2×4, difference 2×40×80, fused with ×24 left
    cfg = dnerv_sizing(960, 1920, 2, 32)
    assert (cfg.embed_h, cfg.embed_w, cfg.fusion_stage) == (2, 4, 2)
    assert cfg.fusion_shape[1:] == (40, 80)
    assert cfg.diff_scale == 24
    assert fusion_stage_for((5, 2, 2, 2)) == 1
    assert fusion_stage_for((3,)) == 0
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
    assert diff.shape == (2, *model.diff_embeddings.shape[1:]) == (2, 2, *cfg.fusion_shape[1:])


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


@pytest.mark.parametrize(("h", "w"), [(17, 33), (72, 96), (1, 1)])
def test_forward_shape_and_range(h: int, w: int) -> None:
    torch.manual_seed(0)
    model = build_model(dnerv_sizing(h, w, 5, 6))
    with torch.no_grad():
        model.embeddings.normal_()
        model.diff_embeddings.normal_()
        out = model(torch.tensor([0.0, 2.0, 4.0]))
    assert out.shape == (3, 3, h, w)
    assert out.min() >= 0.0
    assert out.max() <= 1.0


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
    assert all(n.split(".")[0] in ("embeddings", "diff_embeddings", "lift", "blocks", "head", "ccu")
               for n in names)  # fmt: skip
    encoder = model.make_training_encoder()
    stored = {id(p) for p in model.parameters()}
    assert not any(id(p) in stored for p in encoder.parameters())
    with pytest.raises(ConfigError, match=r"cannot render frame position 2\.5"):
        model(torch.tensor([2.5]))


def test_activation_elements_bounds_real_activations() -> None:
    for h, w, knob in [(17, 33, 8), (72, 96, 3), (80, 160, 20)]:
        cfg = dnerv_sizing(h, w, 2, knob)
        model = build_model(cfg)
        largest = 0

        def hook(_m: torch.nn.Module, _i: object, out: object) -> None:
            nonlocal largest
            if isinstance(out, torch.Tensor):
                largest = max(largest, out.numel() // 2)

        for m in model.modules():
            m.register_forward_hook(hook)
        with torch.no_grad():
            model(torch.tensor([0.0, 1.0]))
        assert largest <= cfg.activation_elements()


# --- config, budget ------------------------------------------------------------------------------


def test_config_round_trip() -> None:
    cfg = dnerv_sizing(72, 96, 16, 12)
    assert config_from_dict("dnerv", cfg.to_dict()) == cfg


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
    counts = [count_parameters(dnerv_sizing(80, 160, 16, k)) for k in (4, 8, 16, 32, 64)]
    assert counts == sorted(counts)
    for budget in (30_000, 100_000):
        cfg = solve_config("dnerv", 72, 96, 16, budget)
        model = build_model(cfg, device="meta")
        _, hd, wd = cfg.fusion_shape
        assert model.diff_embeddings.numel() == 16 * 2 * hd * wd
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


# --- files ---------------------------------------------------------------------------------------


def test_encode_decode_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "d.nvc"
    options = EncodeOptions(
        model="dnerv", size=30_000, epochs=2, frames=(0, 4), device="cpu", overwrite=True
    )
    report = encode(CHAPLIN, out, options)
    assert report.model == "dnerv"
    assert report.parameters <= 30_000
    decoded = decode_frames(out, device="cpu")
    assert decoded.y.shape == (4, 72, 96)
    part = decode_frames(out, frames=(2, 4), device="cpu")
    assert (part.y == decoded.y[2:4]).all()
    assert (part.u == decoded.u[2:4]).all()
