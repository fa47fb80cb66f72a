"""HNeRV: plan, ConvNeXt encoder, decoder, config, budget, training hooks, files."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch

from nvcodec.errors import ConfigError
from nvcodec.models import build_model, count_parameters, model_ids, solve_config
from nvcodec.models.blocks import NeRVBlock
from nvcodec.models.convnext import ConvNeXtBlock, ConvNeXtEncoder
from nvcodec.models.hnerv import (
    HNeRV,
    HNeRVConfig,
    hnerv_sizing,
    pad_to_grid,
    plan_hybrid,
    stage_kernels,
)
from nvcodec.training import TrainConfig, train

CHAPLIN = Path(__file__).resolve().parents[1] / "data" / "clips" / "chaplin_96x72_16f.mkv"


def _frames(count: int = 6, height: int = 24, width: int = 40) -> torch.Tensor:
    t = torch.linspace(0, 1, count)[:, None, None]
    yy, xx = torch.meshgrid(
        torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij"
    )
    channels = [0.5 + 0.4 * torch.sin(6 * xx - 3 * t + c) * yy for c in (0, 1, 2)]
    return torch.stack(channels, dim=1)


# --- plan, encoder -------------------------------------------------------------------------------


def test_registered_and_plans() -> None:
    assert "hnerv" in model_ids()
    assert HNeRV.INTERPOLATES is False
    p = plan_hybrid(640, 1280)  # REFERENCE.md: 16×2×4 with strides 5,4,4,2,2
    assert (p.base_h, p.base_w, p.strides) == (2, 4, (5, 4, 4, 2, 2))
    p = plan_hybrid(960, 1920)
    assert (p.base_h, p.base_w, p.scale) == (2, 4, 480)
    for h, w in [(17, 33), (72, 96), (80, 160), (1, 1), (2, 2), (5, 3), (1080, 1920)]:
        p = plan_hybrid(h, w)
        assert p.base_h * p.scale >= h
        assert p.base_w * p.scale >= w
        assert list(p.strides) == sorted(p.strides, reverse=True)


@pytest.mark.parametrize(("h", "w"), [(17, 33), (72, 96), (80, 160)])
def test_encoder_embedding_shape(h: int, w: int) -> None:
    cfg = hnerv_sizing(h, w, 3, 8)
    model = build_model(cfg)
    encoder = model.make_training_encoder()
    assert isinstance(encoder, ConvNeXtEncoder)
    x = pad_to_grid(torch.rand(2, 3, h, w), cfg.grid_size)
    assert x.shape[-2:] == cfg.grid_size
    emb = encoder(x)
    assert emb.shape == (2, 16, cfg.embed_h, cfg.embed_w) == (2, *model.embeddings.shape[1:])


def test_convnext_block_is_residual() -> None:
    block = ConvNeXtBlock(8)
    with torch.no_grad():
        block.project.weight.zero_()
        block.project.bias.zero_()
    x = torch.randn(2, 8, 5, 6)
    assert torch.equal(block(x), x)


# --- decoder -------------------------------------------------------------------------------------


def test_kernels_and_channel_reduction() -> None:
    assert stage_kernels(5) == (1, 3, 5, 5, 5)
    assert stage_kernels(4) == (1, 3, 5, 5)
    assert stage_kernels(7) == (1, 3, 5, 5, 5, 5, 5)
    cfg = hnerv_sizing(640, 1280, 2, 96)
    assert cfg.kernels == (1, 3, 5, 5, 5)
    assert cfg.channels == (80, 67, 56, 46, 39)  # 96 / 1.2^k
    model = build_model(cfg, device="meta")
    blocks = list(model.blocks)
    assert all(type(b) is NeRVBlock for b in blocks)
    assert [b.conv.kernel_size[0] for b in blocks] == [1, 3, 5, 5, 5]
    assert model.lift.kernel_size == (1, 1)
    assert model.head.conv.kernel_size == (3, 3)
    ins = [cfg.lift_dim, *cfg.channels]
    for a, b in itertools.pairwise(ins):
        assert a / b == pytest.approx(1.2, rel=0.03)


def test_stored_parameters_are_decoder_and_embeddings_only() -> None:
    cfg = hnerv_sizing(24, 40, 6, 8)
    model = build_model(cfg)
    names = [n for n, _ in model.named_parameters()]
    assert names[0] == "embeddings"
    assert all(n == "embeddings" or n.split(".")[0] in ("lift", "blocks", "head") for n in names)
    encoder = model.make_training_encoder()
    stored = {id(p) for p in model.parameters()}
    assert not any(id(p) in stored for p in encoder.parameters())
    assert not any(isinstance(m, ConvNeXtEncoder) for m in model.modules())


def test_fractional_and_outside_positions_refused() -> None:
    model = build_model(hnerv_sizing(24, 40, 6, 4))
    for bad in ([0.5], [1.0, 2.25], [-1.0], [6.0]):
        with pytest.raises(ConfigError, match=r"cannot render frame position.*integer"):
            model(torch.tensor(bad))
    assert model(torch.tensor([5.0])).shape == (1, 3, 24, 40)


def test_meta_forward_for_complexity() -> None:
    from nvcodec.models.complexity import macs_per_pixel

    assert macs_per_pixel(hnerv_sizing(72, 96, 4, 8)) > 0


# --- config, budget ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"kernels": (1, 3, 5)},  # one per stride
        {"kernels": (1, 3, 4, 5)},  # even kernel
        {"head_kernel": 2},
        {"channels": (4, 4)},
        {"embed_h": 1},  # does not cover the frame
        {"embed_w": 100},  # pads far beyond the frame
        {"embed_dim": 0},
        {"activation": "tanh"},
        {"extra": 1},
    ],
)
def test_invalid_config_refused(change: dict) -> None:
    data = hnerv_sizing(72, 96, 16, 12).to_dict()
    data.update({k: list(v) if isinstance(v, tuple) else v for k, v in change.items()})
    with pytest.raises(ConfigError):
        HNeRVConfig.from_dict(data)


def test_budget_counts_embeddings() -> None:
    counts = [count_parameters(hnerv_sizing(80, 160, 16, k)) for k in (4, 8, 16, 32, 64)]
    assert counts == sorted(counts)
    for budget in (30_000, 100_000):
        cfg = solve_config("hnerv", 72, 96, 16, budget)
        model = build_model(cfg, device="meta")
        decoder = sum(p.numel() for n, p in model.named_parameters() if n != "embeddings")
        assert model.embeddings.numel() == 16 * 16 * cfg.embed_h * cfg.embed_w
        assert decoder + model.embeddings.numel() == count_parameters(cfg) <= budget
        assert count_parameters(hnerv_sizing(72, 96, 16, cfg.lift_dim + 1)) > budget


# --- training hooks ------------------------------------------------------------------------------


def _train_capturing_encoder(model: HNeRV, frames: torch.Tensor, epochs: int) -> tuple:
    made: list[torch.nn.Module] = []
    make = model.make_training_encoder

    def capture() -> torch.nn.Module:
        made.append(make())
        return made[-1]

    model.make_training_encoder = capture  # type: ignore[method-assign]
    losses: list[float] = []
    train(
        model,
        frames,
        TrainConfig(epochs=epochs, lr=5e-3, batch_size=2, warmup=0.1),
        lambda s: losses.append(s.loss),
    )
    (encoder,) = made
    return encoder, losses


def test_training_lowers_loss_and_finalize_fills_embeddings() -> None:
    torch.manual_seed(0)
    frames = _frames()
    cfg = hnerv_sizing(24, 40, 6, 8)
    model = build_model(cfg)
    encoder, losses = _train_capturing_encoder(model, frames, epochs=12)
    assert losses[-1] < 0.5 * losses[0]
    assert not encoder.training
    with torch.no_grad():
        expected = encoder(pad_to_grid(frames, cfg.grid_size))
        torch.testing.assert_close(model.embeddings, expected)
        mse = float(torch.nn.functional.mse_loss(model(torch.arange(6.0)), frames))
    assert mse < losses[0]


def test_finalize_training_batches_every_frame() -> None:
    torch.manual_seed(0)
    frames = _frames(count=11)
    model = build_model(hnerv_sizing(24, 40, 11, 4))
    encoder = model.make_training_encoder().eval()
    model.FINALIZE_BATCH = 4  # type: ignore[misc]
    model.finalize_training(encoder, frames)
    with torch.no_grad():
        expected = encoder(pad_to_grid(frames, model.config.grid_size))
    torch.testing.assert_close(model.embeddings.detach(), expected)
    with pytest.raises(ConfigError):
        model.finalize_training(encoder, frames[:3])


# --- files ---------------------------------------------------------------------------------------
