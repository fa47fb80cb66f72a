"""Models: registry, strict configs, grid planning, NeRV forward, building blocks, budgets."""

from __future__ import annotations

import dataclasses
import json
import math
import random
from typing import ClassVar

import pytest
import torch
from torch import nn

from nvcodec.errors import ConfigError, UnsupportedModelError
from nvcodec.models import (
    build_model,
    config_from_dict,
    count_parameters,
    get_spec,
    model_ids,
    parse_size,
    solve_config,
)
from nvcodec.models.blocks import (
    NeRVBlock,
    OutputHead,
    PositionalEncoding,
    make_activation,
    plan_grid,
)
from nvcodec.models.config import ModelConfig
from nvcodec.models.nerv import NeRV, NeRVConfig, nerv_sizing
from nvcodec.models.registry import register_model


def small_config(height: int = 24, width: int = 32, frames: int = 4, knob: int = 4) -> NeRVConfig:
    return nerv_sizing(height, width, frames, knob)


# --------------------------------------------------------------------------- registry


def test_model_ids_contains_nerv() -> None:
    ids = model_ids()
    assert "nerv" in ids
    assert ids == sorted(ids)


def test_build_model_returns_exact_nerv_class() -> None:
    model = build_model(small_config())
    assert type(model) is NeRV
    assert all(p.device.type == "cpu" for p in model.parameters())


def test_build_model_on_meta_allocates_nothing() -> None:
    model = build_model(small_config(), device="meta")
    assert all(p.is_meta for p in model.parameters())


def test_get_spec_unknown_id_lists_known_ids() -> None:
    with pytest.raises(UnsupportedModelError) as info:
        get_spec("no-such-model")
    message = str(info.value)
    assert "no-such-model" in message
    for known in model_ids():
        assert known in message
    # UnsupportedModelError is a ConfigError, so generic handlers catch it too.
    assert isinstance(info.value, ConfigError)


def test_get_spec_nerv_fields() -> None:
    spec = get_spec("nerv")
    assert spec.model_id == "nerv"
    assert spec.module is NeRV
    assert spec.config is NeRVConfig
    assert spec.sizing is nerv_sizing


def test_config_from_dict_via_registry() -> None:
    cfg = small_config()
    assert config_from_dict("nerv", cfg.to_dict()) == cfg
    with pytest.raises(UnsupportedModelError):
        config_from_dict("bogus", cfg.to_dict())


def test_register_same_id_twice_is_refused() -> None:
    class Other(nn.Module):
        pass

    with pytest.raises(ValueError, match="twice"):
        register_model("nerv", NeRVConfig, nerv_sizing, "duplicate")(Other)
    assert get_spec("nerv").module is NeRV


def test_build_model_refuses_foreign_config_class() -> None:
    @dataclasses.dataclass(frozen=True)
    class Impostor(ModelConfig):
        MODEL_ID: ClassVar[str] = "nerv"

    with pytest.raises(TypeError):
        build_model(Impostor(height=4, width=4, frame_count=1))


# --------------------------------------------------------------------------- config


def test_config_json_round_trip() -> None:
    cfg = nerv_sizing(17, 33, 9, 12)
    cfg = dataclasses.replace(cfg, pe_base=1.5, activation="silu", kernel=5)
    text = json.dumps(cfg.to_dict())
    back = NeRVConfig.from_dict(json.loads(text))
    assert back == cfg
    assert isinstance(back.strides, tuple)
    assert isinstance(back.channels, tuple)
    assert back.to_dict() == cfg.to_dict()


def test_to_dict_lists_and_keys() -> None:
    cfg = small_config()
    d = cfg.to_dict()
    added_later_at_default = {"head_kernel"}  # left out so that older readers can read it
    assert set(d) == {f.name for f in dataclasses.fields(NeRVConfig)} - added_later_at_default
    assert isinstance(d["strides"], list)
    assert d["strides"] == list(cfg.strides)


def test_pe_base_accepts_int_written_by_json() -> None:
    d = small_config().to_dict()
    d["pe_base"] = 2
    assert NeRVConfig.from_dict(d).pe_base == 2


def _mutated(**changes: object) -> dict[str, object]:
    d = small_config().to_dict()
    d.update(changes)
    return d


BAD_CONFIGS = {
    "unknown key": _mutated(extra=1),
    "height as string": _mutated(height="24"),
    "height as float": _mutated(height=24.0),
    "height as bool": _mutated(frame_count=True),
    "kernel as None": _mutated(kernel=None),
    "negative height": _mutated(height=-24),
    "zero width": _mutated(width=0),
    "too many frames": _mutated(frame_count=10**9),
    "strides length 9": _mutated(strides=[2] * 9, channels=[4] * 9),
    "empty strides": _mutated(strides=[], channels=[]),
    "strides not a list": _mutated(strides="42"),
    "strides as tuple object": _mutated(strides={"a": 1}),
    "stride element float": _mutated(strides=[4.0, 2]),
    "stride element bool": _mutated(strides=[True, 2]),
    "stride element too large": _mutated(strides=[9, 2]),
    "pe_base NaN": _mutated(pe_base=float("nan")),
    "pe_base inf": _mutated(pe_base=float("inf")),
    "pe_base as string": _mutated(pe_base="1.25"),
    "pe_base below range": _mutated(pe_base=0.5),
    "activation unknown": _mutated(activation="tanh"),
    "activation not a string": _mutated(activation=1),
    "kernel too large": _mutated(kernel=9),
}


@pytest.mark.parametrize("data", list(BAD_CONFIGS.values()), ids=list(BAD_CONFIGS))
def test_from_dict_refuses(data: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        NeRVConfig.from_dict(data)


def test_from_dict_refuses_missing_key_and_names_it() -> None:
    d = small_config().to_dict()
    del d["kernel"]
    with pytest.raises(ConfigError, match="kernel"):
        NeRVConfig.from_dict(d)


@pytest.mark.parametrize("data", [None, [], "nerv", 3, [("height", 1)]])
def test_from_dict_refuses_non_mapping(data: object) -> None:
    with pytest.raises(ConfigError):
        NeRVConfig.from_dict(data)  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["height", "pe_base"])
def test_from_dict_refuses_huge_integers_with_config_error(field: str) -> None:
    # json.loads happily produces arbitrarily large ints from untrusted metadata; the config
    # must refuse them as a ConfigError, not crash with OverflowError in math.isfinite.
    data = json.loads(json.dumps(_mutated(**{field: 10**400})))
    with pytest.raises(ConfigError):
        NeRVConfig.from_dict(data)


def test_constructor_validates_too() -> None:
    with pytest.raises(ConfigError):
        dataclasses.replace(small_config(), height=-1)


def test_nerv_config_channels_strides_mismatch() -> None:
    d = small_config().to_dict()
    d["channels"] = [*d["channels"], 4]
    with pytest.raises(ConfigError, match="channel"):
        NeRVConfig.from_dict(d)


def test_nerv_config_plan_must_cover_frame() -> None:
    cfg = small_config()
    with pytest.raises(ConfigError, match="cover"):
        dataclasses.replace(cfg, base_h=cfg.base_h - 1)
    with pytest.raises(ConfigError, match="cover"):
        dataclasses.replace(cfg, base_w=cfg.base_w - 1)


def test_nerv_config_refuses_excessive_padding() -> None:
    cfg = NeRVConfig(height=8, width=8, base_h=4, base_w=4, strides=(2,), channels=(4,))
    assert cfg.base_h * 2 == 8
    with pytest.raises(ConfigError, match="pads"):
        dataclasses.replace(cfg, base_h=17)  # 34 > 2*8 + 16


# --------------------------------------------------------------------------- plan_grid


FIXED_SIZES = [(17, 33), (1, 1), (5, 3), (72, 96), (80, 160), (1080, 1920), (720, 1280), (2, 2)]


def _random_sizes() -> list[tuple[int, int]]:
    rng = random.Random(1234)
    return [(rng.randint(1, 2000), rng.randint(1, 2000)) for _ in range(300)]


def _check_plan(height: int, width: int) -> None:
    plan = plan_grid(height, width)
    assert plan.base_h * plan.scale >= height
    assert plan.base_w * plan.scale >= width
    # The base grid is the smallest that covers: one cell fewer would not.
    assert (plan.base_h - 1) * plan.scale < height
    assert (plan.base_w - 1) * plan.scale < width
    assert plan.scale == math.prod(plan.strides)
    if plan.strides != (1,):
        assert plan.strides[0] in (2, 3, 4, 5)
        assert all(s == 2 for s in plan.strides[1:])
        assert len(plan.strides) <= 6
    if min(height, width) >= 64:
        # A stride-2 plan alone pads < 3.2% at this size, so a ≤ 5% plan always exists.
        assert plan.padding_ratio(height, width) <= 0.05 + 1e-12
    # Whatever the size, the sizing rule must produce a config the model accepts.
    cfg = nerv_sizing(height, width, 1, 8)
    assert (cfg.base_h, cfg.base_w, cfg.strides) == (plan.base_h, plan.base_w, plan.strides)


@pytest.mark.parametrize(("height", "width"), FIXED_SIZES)
def test_plan_grid_fixed_sizes(height: int, width: int) -> None:
    _check_plan(height, width)


def test_plan_grid_random_sizes() -> None:
    for height, width in _random_sizes():
        _check_plan(height, width)


def test_plan_grid_known_plans() -> None:
    # The NeRV paper's 720p plan.
    plan = plan_grid(720, 1280)
    assert (plan.base_h, plan.base_w, plan.strides) == (9, 16, (5, 2, 2, 2, 2))
    assert plan.padding_ratio(720, 1280) == 0.0
    exact = plan_grid(72, 96)
    assert exact.padding_ratio(72, 96) == 0.0


# --------------------------------------------------------------------------- NeRV forward


def test_nerv_fractional_positions() -> None:
    torch.manual_seed(0)
    model = build_model(small_config(frames=4)).eval()
    with torch.no_grad():
        out = model(torch.tensor([0.0, 0.5, 1.0, 2.75]))
        single = model(torch.tensor([0.5]))
    assert out.shape == (4, 3, 24, 32)
    assert not torch.equal(out[0], out[1])
    assert not torch.equal(out[1], out[2])
    torch.testing.assert_close(single[0], out[1], rtol=1e-5, atol=1e-6)


def test_nerv_single_frame_video() -> None:
    torch.manual_seed(0)
    model = build_model(small_config(frames=1)).eval()
    with torch.no_grad():
        out = model(torch.tensor([0.0]))
    assert out.shape == (1, 3, 24, 32)
    assert torch.isfinite(out).all()


def test_nerv_deterministic_for_equal_seeds() -> None:
    cfg = small_config()
    t = torch.tensor([0.0, 1.0, 3.0])
    outs = []
    for seed in (7, 7, 8):
        torch.manual_seed(seed)
        model = build_model(cfg).eval()
        with torch.no_grad():
            outs.append(model(t))
    assert torch.equal(outs[0], outs[1])
    assert not torch.equal(outs[0], outs[2])


# --------------------------------------------------------------------------- blocks


def test_positional_encoding_values() -> None:
    pe = PositionalEncoding(levels=5, base=2.0)
    assert pe.out_dim == 10
    assert "freqs" not in pe.state_dict()  # not persistent: costs nothing in the file
    assert list(pe.parameters()) == []
    t = torch.tensor([0.0, 0.5, 0.25])
    out = pe(t)
    assert out.shape == (3, 10)
    torch.testing.assert_close(out[0, :5], torch.zeros(5))
    torch.testing.assert_close(out[0, 5:], torch.ones(5))
    for row, tv in enumerate(t.tolist()):
        for i in range(5):
            angle = (2.0**i) * math.pi * tv
            assert out[row, i].item() == pytest.approx(math.sin(angle), abs=1e-5)
            assert out[row, 5 + i].item() == pytest.approx(math.cos(angle), abs=1e-5)
    # sin² + cos² = 1 per level
    torch.testing.assert_close(out[:, :5] ** 2 + out[:, 5:] ** 2, torch.ones(3, 5))


@pytest.mark.parametrize(("stride", "act"), [(1, "relu"), (2, "gelu"), (3, "silu")])
def test_nerv_block_shape(stride: int, act: str) -> None:
    torch.manual_seed(0)
    block = NeRVBlock(4, 6, stride, 3, act)
    x = torch.randn(2, 4, 5, 7)
    with torch.no_grad():
        y = block(x)
    assert y.shape == (2, 6, 5 * stride, 7 * stride)
    assert block.conv.out_channels == 6 * stride * stride
    if act == "relu":
        assert float(y.min()) >= 0.0


def test_output_head_range_saturates_within_bounds() -> None:
    torch.manual_seed(0)
    head = OutputHead(4)
    with torch.no_grad():
        y = head(torch.randn(2, 4, 6, 6) * 1000)
    assert y.shape == (2, 3, 6, 6)
    assert float(y.min()) >= 0.0
    assert float(y.max()) <= 1.0


def test_make_activation() -> None:
    assert isinstance(make_activation("gelu"), nn.GELU)
    assert isinstance(make_activation("silu"), nn.SiLU)
    assert isinstance(make_activation("relu"), nn.ReLU)
    with pytest.raises(ValueError, match="tanh"):
        make_activation("tanh")


# --------------------------------------------------------------------------- budget


@pytest.mark.parametrize(
    ("height", "width", "budget"), [(24, 32, 12_000), (17, 33, 30_000), (72, 96, 100_000)]
)
def test_solve_config_is_largest_within_budget(height: int, width: int, budget: int) -> None:
    cfg = solve_config("nerv", height, width, 4, budget)
    assert isinstance(cfg, NeRVConfig)
    assert (cfg.height, cfg.width, cfg.frame_count) == (height, width, 4)
    knob = next(k for k in range(1, 500) if nerv_sizing(height, width, 4, k) == cfg)
    assert count_parameters(cfg) <= budget
    bigger = get_spec("nerv").sizing(height, width, 4, knob + 1)
    assert count_parameters(bigger) > budget


def test_solve_config_budget_too_small() -> None:
    smallest = count_parameters(nerv_sizing(24, 32, 4, 1))
    with pytest.raises(ConfigError, match="too small"):
        solve_config("nerv", 24, 32, 4, smallest - 1)
    assert solve_config("nerv", 24, 32, 4, smallest).stem_dim == 1


def test_solve_config_unknown_model() -> None:
    with pytest.raises(UnsupportedModelError):
        solve_config("bogus", 24, 32, 4, 10_000)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.3M", 300_000),
        ("350k", 350_000),
        ("350K", 350_000),
        (" 2m ", 2_000_000),
        ("1200000", 1_200_000),
        ("1k", 1_000),
        ("200M", 200_000_000),
        ("1e6", 1_000_000),
    ],
)
def test_parse_size_valid(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("32.3k", 32_300), ("1.001M", 1_001_000)],
)
def test_parse_size_decimal_is_not_truncated(text: str, expected: int) -> None:
    # float("1.001") * 1e6 == 1000999.9999999999; int() truncates it to one parameter less.
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "M", "k", "abc", "1.2.3M", "350kk", "12x", "nan", "inf", "-5k", "999", "0", "501M", "1G"],
)
def test_parse_size_invalid(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_size(text)


@pytest.mark.parametrize("knob", [1, 4, 8])
def test_count_parameters_matches_real_instance(knob: int) -> None:
    cfg = nerv_sizing(17, 33, 3, knob)
    model = build_model(cfg)
    assert count_parameters(cfg) == sum(p.numel() for p in model.parameters())


def test_count_parameters_grows_with_knob() -> None:
    counts = [count_parameters(nerv_sizing(24, 32, 4, k)) for k in (1, 2, 3, 4, 8, 16)]
    assert counts == sorted(counts)
    assert len(set(counts)) == len(counts)


# --------------------------------------------------------------------------- activation bound


def _max_activation_per_frame(model: nn.Module, batch: int = 2) -> int:
    largest = 0

    def hook(_module: nn.Module, _inputs: object, output: object) -> None:
        nonlocal largest
        if isinstance(output, torch.Tensor):
            largest = max(largest, output.numel() // batch)

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        with torch.no_grad():
            model(torch.arange(batch, dtype=torch.float32))
    finally:
        for h in handles:
            h.remove()
    return largest


@pytest.mark.parametrize(
    ("height", "width", "knob"),
    [(24, 32, 4), (17, 33, 8), (72, 96, 4), (40, 30, 16), (9, 13, 8)],
)
def test_activation_elements_bounds_observed_activations(
    height: int, width: int, knob: int
) -> None:
    cfg = nerv_sizing(height, width, 4, knob)
    observed = _max_activation_per_frame(build_model(cfg))
    assert cfg.activation_elements() >= observed
    assert cfg.activation_elements() >= 3 * height * width


EDGE_CONFIGS = {
    # A valid config whose last block is narrower than RGB: the head's conv output on the
    # padded grid (3 × 18 × 33) is the largest tensor, not counted by activation_elements.
    "narrow last block with padding": NeRVConfig(
        height=17, width=33, base_h=6, base_w=11, strides=(3,), channels=(1,), stem_hidden=64
    ),
    # A tiny frame: the stem's hidden layer (64) and the positional encoding (80) dominate.
    "1x1 frame from the sizing rule": nerv_sizing(1, 1, 1, 8),
}


@pytest.mark.parametrize("cfg", list(EDGE_CONFIGS.values()), ids=list(EDGE_CONFIGS))
def test_activation_elements_bounds_edge_configs(cfg: NeRVConfig) -> None:
    observed = _max_activation_per_frame(build_model(cfg))
    assert cfg.activation_elements() >= observed


def test_nerv_head_kernel_is_a_config_field_and_old_files_keep_3x3() -> None:
    import dataclasses

    from nvcodec.models.nerv import nerv_sizing
    from nvcodec.models.registry import config_from_dict

    default = nerv_sizing(72, 96, 4, 16)
    assert default.head_kernel == 3
    assert "head_kernel" not in default.to_dict()  # readable by readers older than the field
    reference = dataclasses.replace(default, head_kernel=1)
    assert build_model(reference, device="meta").head.conv.kernel_size == (1, 1)
    again = config_from_dict("nerv", reference.to_dict())
    assert again.head_kernel == 1
    with pytest.raises(ConfigError):
        dataclasses.replace(default, head_kernel=2).validate()


@pytest.mark.parametrize(
    ("shape", "stride"), [((2, 12, 5, 7), 2), ((1, 18, 4, 3), 3), ((3, 50, 2, 4), 5)]
)
def test_pixel_shuffle_equals_torchs_values_and_gradients(shape, stride) -> None:
    """The faster shuffle is a copy of the same elements: equal outputs and input gradients,
    also for a non-contiguous input; stride 1 returns the input."""
    from nvcodec.models.blocks import pixel_shuffle

    torch.manual_seed(0)
    x = torch.randn(shape, requires_grad=True)
    grad = torch.randn(torch.nn.functional.pixel_shuffle(x, stride).shape)
    ours = pixel_shuffle(x, stride)
    (mine,) = torch.autograd.grad(ours, x, grad)
    theirs = torch.nn.functional.pixel_shuffle(x, stride)
    (reference,) = torch.autograd.grad(theirs, x, grad)
    assert torch.equal(ours, theirs)
    assert torch.equal(mine, reference)
    strided = x.detach().transpose(2, 3).contiguous().transpose(2, 3)  # channels-last-like strides
    assert torch.equal(pixel_shuffle(strided, stride), theirs.detach())
    assert pixel_shuffle(x, 1) is x
    last = x.detach().contiguous(memory_format=torch.channels_last)  # the channels-last layout
    shuffled = pixel_shuffle(last, stride)
    assert torch.equal(shuffled, theirs.detach())
    assert shuffled.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("name", ["gelu", "silu", "relu"])
def test_in_place_activations_and_head_equal_the_training_path(name: str) -> None:
    """Decoding (no gradients) computes activations and the output head in place: the same
    values as the out-of-place training path, which keeps its gradients."""
    from nvcodec.models.blocks import OutputHead, activate_, make_activation

    torch.manual_seed(0)
    act = make_activation(name)
    x = torch.randn(2, 5, 7, 9) * 4
    expected = act(x)
    with torch.no_grad():
        y = x.clone()
        out = activate_(act, y)
    assert out.data_ptr() == y.data_ptr()
    assert torch.equal(out, expected)
    leaf = x.clone().requires_grad_()
    activate_(act, leaf).sum().backward()
    assert leaf.grad is not None

    head = OutputHead(5)
    trained = head(x)
    with torch.inference_mode():
        decoded = head(x)
    assert trained.requires_grad
    assert torch.equal(decoded, trained.detach())
