"""HiNeRV, the shared hierarchical encoding, and DS-NeRV with hierarchical encodings."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from nvcodec import EncodeOptions, decode_frames, encode
from nvcodec.errors import ConfigError
from nvcodec.models import build_model, config_from_dict, count_parameters, model_ids, solve_config
from nvcodec.models.blocks import HierarchicalEncoding, sample_time
from nvcodec.models.dsnerv import DSNeRVConfig, dsnerv_sizing
from nvcodec.models.hinerv import HiNeRVConfig, hinerv_sizing, plan_hinerv


def _tiny(**changes: object) -> HiNeRVConfig:
    base = HiNeRVConfig(
        height=380,
        width=370,
        frame_count=5,
        base_h=24,
        base_w=24,
        grid_frames=2,
        grid_dim=2,
        stem_dim=8,
        strides=(2, 2, 2, 2),
        channels=(8, 4, 2, 1),
        depths=(3, 3, 3, 1),
        expansions=(4, 4, 4, 1),
        kernels=(3, 3, 3, 3),
        local_dim=2,
    )
    return dataclasses.replace(base, **changes)


def _random_model(config: HiNeRVConfig) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(config).eval()
    with torch.no_grad():  # grids start near zero: make every path carry signal
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model


def test_registered() -> None:
    assert {"hinerv", "hinerv-flat", "ds-nerv-he"} <= set(model_ids())


def test_flat_variant_differs_from_the_reference_only_in_stage_widths() -> None:
    # hinerv-flat keeps every stage at the knob's width; layout, grids' frames and plan are
    # the reference's, so at 160x80 and 0.1M the full-resolution stage gets the knob's width.
    flat, ref = solve_config("hinerv-flat", 80, 160, 132, 100_000), hinerv_sizing(80, 160, 132, 8)
    assert len(set(flat.channels)) == 1
    assert flat.channels[0] == flat.stem_dim
    assert (flat.strides, flat.depths, flat.grid_frames) == (
        ref.strides,
        ref.depths,
        ref.grid_frames,
    )
    assert 90_000 < count_parameters(flat) <= 100_000
    halving = solve_config("hinerv", 80, 160, 132, 100_000)
    assert flat.channels[-1] > 4 * halving.channels[-1]


def test_reference_bunny_xxs_configuration_and_size() -> None:
    # hmkx/HiNeRV bunny-xxs at 720×1280, 132 frames: width 136 halved per stage, scales 5,2,2,2,
    # base grids (40, 2) and (20, 4) on 18×32 cells, local grids 4 channels; ≈0.77M parameters.
    c = hinerv_sizing(720, 1280, 132, 136)
    assert c.strides == (5, 2, 2, 2)
    assert c.channels == (136, 68, 34, 17)
    assert c.grid_shapes == [(40, 2, 18, 32), (20, 4, 18, 32)]
    assert (c.grid_dim, c.local_dim) == (2, 4)
    assert 0.75e6 < count_parameters(c) < 0.79e6


@pytest.mark.parametrize(
    ("size", "strides", "base"),
    [
        ((720, 1280), (5, 2, 2, 2), (18, 32)),
        ((1080, 1920), (5, 3, 2, 2), (18, 32)),
        ((80, 160), (2, 2, 2, 2), (5, 10)),
        ((72, 96), (3, 2, 2, 2), (3, 4)),
    ],
)
def test_plan_follows_reference_proportions(size, strides, base) -> None:
    plan = plan_hinerv(*size)
    assert plan.strides == strides
    assert (plan.base_h, plan.base_w) == base


@pytest.mark.parametrize(("height", "width"), [(17, 33), (80, 160), (101, 37)])
def test_budget_solve_and_forward_any_size(height: int, width: int) -> None:
    config = solve_config("hinerv", height, width, 6, 40_000)
    assert count_parameters(config) <= 40_000
    out = build_model(config)(torch.tensor([0.0, 2.5, 5.0]))
    assert out.shape == (3, 3, height, width)
    assert float(out.detach().min()) >= 0.0
    assert float(out.detach().max()) <= 1.0


@pytest.mark.parametrize(
    "cells", [(8, 10, 9, 12), (0, 1, 0, 2), (23, 24, 23, 24), (0, 24, 11, 12), (3, 4, 0, 24)]
)
def test_patch_decode_equals_whole_frame(cells) -> None:
    config = _tiny()
    assert config.halo() < 8  # the interior patch is rendered from a window, not the frame
    model = _random_model(config)
    t = torch.tensor([1.0, 2.5])
    with torch.no_grad():
        full = model(t)
        patch = model.forward_patch(t, cells)
    r0, r1, c0, c1 = cells
    s = config.scale
    expected = full[:, :, r0 * s : r1 * s, c0 * s : c1 * s]
    assert patch.shape == expected.shape
    torch.testing.assert_close(patch, expected, rtol=0, atol=1e-6)


def test_a_smaller_halo_would_not_be_exact() -> None:
    """The halo is not needlessly wide: without context the patch differs."""
    model = _random_model(_tiny())
    t = torch.tensor([1.0])
    with torch.no_grad():
        window = model.render(t, (8, 10, 9, 12))
        full = model.render(t)
    s = model.config.scale
    assert (window - full[:, :, 8 * s : 10 * s, 9 * s : 12 * s]).abs().max() > 1e-3


def test_sample_time_is_cell_centred() -> None:
    grid = torch.arange(4.0).view(4, 1)
    # T = L: integer frames are exact entries
    assert sample_time(grid, torch.tensor([0.0, 3.0]), 4).flatten().tolist() == [0.0, 3.0]
    # L = T/2: frame 0 and 1 straddle entry 0's centre (0.5) → clamped / blended
    out = sample_time(grid[:2], torch.tensor([0.0, 0.5, 1.0, 2.5, 3.0]), 4).flatten()
    torch.testing.assert_close(out, torch.tensor([0.0, 0.0, 0.25, 1.0, 1.0]))
    assert sample_time(grid[:1], torch.tensor([2.7]), 4).flatten().tolist() == [0.0]


def test_hierarchical_encoding_uses_global_positions() -> None:
    torch.manual_seed(0)
    enc = HierarchicalEncoding(frame_count=6, stride=3, out_dim=4, grid_dim=2, levels=3)
    shapes = [tuple(getattr(enc, f"level{j}").shape) for j in range(3)]
    assert shapes == [(6, 3, 3, 2), (3, 3, 3, 4), (1, 3, 3, 8)]
    x = torch.zeros(2, 4, 9, 12)
    t = torch.tensor([0.0, 4.0])
    full = enc(x, t)
    part = enc(x[:, :, 4:, 5:], t, offset=(4, 5))
    torch.testing.assert_close(part, full[:, :, 4:, 5:])
    torch.testing.assert_close(full[:, :, :3, :3], full[:, :, 3:6, 6:9])  # one tile per cell
    assert not torch.equal(full[0], full[1])  # and one per frame


@pytest.mark.parametrize(
    "change",
    [
        {"depths": (3, 3, 3)},
        {"kernels": (3, 3, 2, 3)},
        {"stem_kernel": 4},
        {"grid_frames": 6},
        {"base_h": 11},
    ],
)
def test_config_refuses_inconsistent_fields(change) -> None:
    with pytest.raises(ConfigError):
        _tiny(**change)


def test_dsnerv_files_without_local_fields_mean_no_encodings() -> None:
    config = dsnerv_sizing(80, 160, 8, 16)
    stored = {k: v for k, v in config.to_dict().items() if not k.startswith("local_")}
    loaded = config_from_dict("ds-nerv", stored)
    assert loaded.local_dim == 0
    assert not list(build_model(loaded).encodings)


def test_dsnerv_he_adds_one_encoding_per_decoder_block() -> None:
    config = solve_config("ds-nerv-he", 80, 160, 12, 60_000)
    assert isinstance(config, DSNeRVConfig)
    assert config.local_dim >= 1
    model = build_model(config)
    assert [e.stride for e in model.encodings] == list(config.strides)
    assert count_parameters(config) <= 60_000
    assert model(torch.tensor([0.0, 5.5])).shape == (2, 3, 80, 160)


def test_patch_tiles_cover_the_frame_once() -> None:
    model = build_model(_tiny(height=370, width=300))  # 24×24 cells of 16 px, cropped
    seen = torch.zeros(370, 300, dtype=torch.int64)
    for cells in model.patch_cells(80):  # 5 cells a side, smaller tiles at the edges
        rows, cols = model.patch_slices(cells)
        seen[rows, cols] += 1
    assert bool((seen == 1).all())
    # rows: 5 tiles (the last one 50 px); columns: 4 (cells 20–23 lie wholly outside the frame)
    assert len(model.patch_cells(80)) == 5 * 4
    assert model.patch_cells(10_000) == [(0, 24, 0, 24)]


def test_patch_epoch_reports_the_whole_frame_error() -> None:
    from nvcodec.training.loop import TrainConfig, steps_per_epoch, train_epoch

    model = _random_model(_tiny(height=100, width=90, base_h=7, base_w=6, frame_count=3))
    frames = torch.rand(3, 3, 100, 90)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    # 7×6 cells of 16 px, 2-cell tiles: 4 × 3 tiles; 3 frames in batches of 2: 2 steps each
    assert steps_per_epoch(model, 3, TrainConfig(patch=32, batch_size=2)) == 12 * 2
    mse, objective = train_epoch(
        model, optimizer, scheduler, frames, 2, torch.Generator().manual_seed(0), False, patch=32
    )
    assert torch.equal(objective, mse)  # no penalty
    with torch.no_grad():
        expected = torch.nn.functional.mse_loss(model(torch.arange(3.0)), frames)
    torch.testing.assert_close(mse, expected, rtol=1e-5, atol=0)


def test_patch_option_is_checked_before_training(tmp_path, chaplin) -> None:
    with pytest.raises(ConfigError, match="cannot train on patches"):
        EncodeOptions(model="ds-nerv", patch=64).validate()
    with pytest.raises(ConfigError, match="patch size"):
        EncodeOptions(model="hinerv", patch=0).validate()


def test_encode_on_patches_writes_a_file_that_decodes(tmp_path, chaplin) -> None:
    path = tmp_path / "p.nvc"
    options = EncodeOptions(
        model="hinerv", size=20_000, epochs=2, frames=(0, 3), rd_epochs=1, patch=24
    )
    report = encode(chaplin, path, options)
    assert report.metrics.psnr_rgb > 8.0
    assert decode_frames(path, device="cpu").count == 3


def test_fields_added_later_are_written_only_when_they_matter() -> None:
    plain = dsnerv_sizing(80, 160, 8, 16)
    assert not {"codes", "local_dim", "local_levels"} & set(plain.to_dict())
    he = dataclasses.replace(plain, local_dim=2)
    assert he.to_dict()["local_dim"] == 2
    assert config_from_dict("ds-nerv-he", he.to_dict()) == he


@pytest.mark.parametrize(
    ("file_id", "written_as"),
    [("ds-nerv-static", "ds-nerv"), ("ds-nerv", "ds-nerv-he"), ("ds-nerv-he", "ds-nerv-dynamic")],
)
def test_a_files_id_and_config_must_agree(file_id: str, written_as: str) -> None:
    config = solve_config(written_as, 72, 96, 8, 30_000)
    with pytest.raises(ConfigError, match=f"is not {file_id}"):
        config_from_dict(file_id, config.to_dict())
