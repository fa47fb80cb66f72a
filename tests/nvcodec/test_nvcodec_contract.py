"""The contract every registered model keeps, checked once per model id.

A model joins the registry by passing this file: its config survives a JSON round trip, its
sizing stays within any budget it accepts and grows with the knob, it renders any frame size in
[0, 1], its activation bound holds, and a real file of it decodes standalone, identically twice,
with a range equal to the slice of the whole; ``--fps`` either renders between stored frames or
is refused with the reason. Model-specific behaviour (blocks, plans, formulas, reference
parameter counts) stays in each model's own test file.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from nvcodec import EncodeOptions, decode, decode_frames, encode
from nvcodec.decode_layout import CHANNELS_LAST, prepare
from nvcodec.errors import ConfigError
from nvcodec.io import read_video
from nvcodec.models import (
    build_model,
    config_from_dict,
    count_parameters,
    get_spec,
    model_ids,
    solve_config,
)

MODEL_IDS = sorted(model_ids())
ODD_SIZES = [(17, 33), (37, 53), (72, 96), (5, 3)]


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_config_survives_json(model_id: str) -> None:
    config = solve_config(model_id, 37, 53, 7, 80_000)
    text = json.dumps(config.to_dict())
    assert config_from_dict(model_id, json.loads(text)) == config


@pytest.mark.parametrize("model_id", MODEL_IDS)
@pytest.mark.parametrize("budget", [20_000, 80_000])
def test_sizing_fills_the_budget_and_no_more(model_id: str, budget: int) -> None:
    sizing = get_spec(model_id).sizing
    config = solve_config(model_id, 72, 96, 12, budget)
    model = build_model(config, device="meta")
    assert sum(p.numel() for p in model.parameters()) == count_parameters(config) <= budget
    assert count_parameters(config) > 0.6 * budget  # the solver does not leave most of it unused
    counts = [count_parameters(sizing(72, 96, 12, k)) for k in (4, 8, 16, 32)]
    assert counts == sorted(counts)


@pytest.mark.parametrize("model_id", MODEL_IDS)
@pytest.mark.parametrize(("height", "width"), ODD_SIZES)
def test_any_frame_size_renders_in_range(model_id: str, height: int, width: int) -> None:
    torch.manual_seed(0)
    model = build_model(solve_config(model_id, height, width, 5, 80_000)).eval()
    with torch.no_grad():
        out = model(torch.tensor([0.0, 2.0, 4.0]))
    assert out.shape == (3, 3, height, width)
    assert bool(torch.isfinite(out).all())
    assert 0.0 <= float(out.min()) <= float(out.max()) <= 1.0


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_one_frame_clip(model_id: str) -> None:
    torch.manual_seed(0)
    model = build_model(solve_config(model_id, 72, 96, 1, 60_000)).eval()
    with torch.no_grad():
        out = model(torch.tensor([0.0]))
    assert out.shape == (1, 3, 72, 96)
    assert bool(torch.isfinite(out).all())


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_activation_bound_holds(model_id: str) -> None:
    """``activation_elements`` bounds every module output per frame (the decoder's memory plan)."""
    config = solve_config(model_id, 37, 53, 4, 80_000)
    model = build_model(config).eval()
    largest = 0

    def hook(_m: torch.nn.Module, _i: object, out: object) -> None:
        nonlocal largest
        if isinstance(out, torch.Tensor):
            largest = max(largest, out.numel() // 2)

    for module in model.modules():
        module.register_forward_hook(hook)
    with torch.no_grad():
        model(torch.tensor([0.0, 3.0]))
    assert 0 < largest <= config.activation_elements()


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_channels_last_layout_computes_the_same_frames(model_id: str) -> None:
    """The channels-last decode layout is the same network: equal frames up to float rounding,
    and the output stays channels-last (a block that silently fell back to NCHW would cost
    oneDNN a reorder per convolution, the time the layout exists to save)."""
    torch.manual_seed(0)
    model = build_model(solve_config(model_id, 72, 96, 5, 40_000)).eval()  # no crop at 96x72
    t = torch.tensor([0.0, 2.0, 4.0])
    with torch.inference_mode():
        reference = model(t)
        out = prepare(model, CHANNELS_LAST)(t)
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, reference, atol=1e-5, rtol=0)


@pytest.fixture(scope="module", params=MODEL_IDS)
def encoded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """A real, tiny file of each model: 6 Chaplin frames, two epochs and one RD epoch."""
    clip = Path(__file__).resolve().parents[1] / "data" / "clips" / "chaplin_96x72_16f.mkv"
    path = tmp_path_factory.mktemp(request.param) / "clip.nvc"
    options = EncodeOptions(
        model=request.param, size=15_000, epochs=2, rd_epochs=1, frames=(0, 6), device="cpu"
    )
    report = encode(clip, path, options)
    return request.param, path, report


def test_file_decodes_standalone_and_identically(encoded) -> None:
    model_id, path, report = encoded
    assert report.model == model_id
    assert report.parameters <= 15_000
    first = decode_frames(path, device="cpu")
    again = decode_frames(path, device="cpu")
    assert first.count == 6
    assert (first.y.shape, first.u.shape) == ((6, 72, 96), (6, 36, 48))
    for a, b in zip((first.y, first.u, first.v), (again.y, again.u, again.v), strict=True):
        assert np.array_equal(a, b)


def test_range_decode_equals_the_slice(encoded) -> None:
    _, path, _ = encoded
    whole = decode_frames(path, device="cpu")
    part = decode_frames(path, (2, 5), device="cpu")
    for a, b in zip((part.y, part.u, part.v), (whole.y, whole.u, whole.v), strict=True):
        assert np.array_equal(a, b[2:5])


def test_fps_renders_between_frames_or_says_why_not(encoded, tmp_path: Path) -> None:
    model_id, path, _ = encoded
    out = tmp_path / "2x.y4m"
    if not getattr(get_spec(model_id).module, "INTERPOLATES", False):
        with pytest.raises(ConfigError, match="cannot render frames between them"):
            decode(path, str(out), fps="2x", device="cpu")
        assert not out.exists()
        return
    decode(path, str(out), fps="2x", device="cpu")
    doubled, _ = read_video(out)
    stored = decode_frames(path, device="cpu")
    assert doubled.count == 12
    assert np.array_equal(doubled.y[::2], stored.y)  # stored frames are unchanged
    new = doubled.y[1::2].astype(int)
    assert not all(np.array_equal(a, b) for a, b in zip(new, doubled.y[::2], strict=True))
