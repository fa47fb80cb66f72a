"""RD training: the rate term, learned steps, and files that code exactly what was trained."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from nvcodec import EncodeOptions, decode_frames, encode
from nvcodec.compression import decode_tensors, encode_quantized
from nvcodec.compression import rd as rdq
from nvcodec.compression.entropy import LaplaceModel
from nvcodec.compression.quantize import dequantize
from nvcodec.errors import ConfigError


def _tiny() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 12, 3, padding=1), nn.GELU(), nn.Conv2d(12, 3, 1))


def _names(model: nn.Module) -> list[str]:
    return [n for n, _ in model.named_parameters()]


def _plain(names: list[str], quantised: list) -> list:
    """(name, integers, no extra entropy model) for :func:`encode_quantized`."""
    return [(n, qt, ()) for n, (qt, _) in zip(names, quantised, strict=True)]


@pytest.mark.parametrize(("loc", "scale"), [(0.0, 0.3), (0.4, 2.0), (-1.3, 15.0)])
def test_laplace_bits_are_the_files_laplace_probabilities(loc: float, scale: float) -> None:
    k = torch.arange(-3000, 3001, dtype=torch.float64)
    loc_t, scale_t = torch.tensor(loc, dtype=k.dtype), torch.tensor(scale, dtype=k.dtype)
    p = torch.exp2(-rdq.laplace_bits(k, loc_t, scale_t))
    assert float(p.sum()) == pytest.approx(1.0, abs=1e-9)
    ref = LaplaceModel(-3000, 3000, loc, scale)
    x = k.numpy()
    expected = ref.cdf(x + 0.5) - ref.cdf(x - 0.5)
    body = expected > 1e-9  # the reference's CDF differences cancel in the far tails
    np.testing.assert_allclose(p.numpy()[body], expected[body], rtol=1e-6)


def test_far_tails_cost_their_true_bits_instead_of_saturating() -> None:
    bits = rdq.laplace_bits(torch.tensor([50.0, 500.0]), torch.tensor(0.0), torch.tensor(1.0))
    assert float(bits[1] - bits[0]) == pytest.approx(450 / math.log(2), rel=1e-4)


@pytest.mark.parametrize("per_channel", [False, True])
def test_rate_term_equals_the_coded_size(per_channel: bool) -> None:
    model = _tiny()
    names = _names(model)
    rdq.attach(model, bits=6, per_channel=per_channel)
    rdq.set_mode(model, rdq.STE)
    model.eval()
    term = rdq.RateTerm(model, pixels=1000, lam=1.0)
    with torch.no_grad():
        proxy = float(term.bits())
    quantised = rdq.quantized(model, names)
    coded = 0.0
    for qt, (loc, scale) in quantised:
        laplace = rdq.learned_laplace(qt.q, loc, scale)
        if laplace is not None:
            coded += 8 * len(laplace.encode(qt.q))
    if not per_channel:  # one Laplace per tensor: the proxy is that code's length
        assert coded == pytest.approx(proxy, rel=0.02, abs=64 * len(quantised))
    encoded, _ = encode_quantized(_plain(names, quantised))
    assert 8 * len(encoded.data) <= proxy * 1.05 + 64 * len(quantised)


def test_rate_term_is_stationary_only_without_a_target() -> None:
    """With a target, dual ascent moves λ every step, so the training loop must not compare two
    epochs' losses (it undoes diverged epochs only for a stationary penalty)."""
    model = _tiny()
    rdq.attach(model, bits=6)
    assert rdq.RateTerm(model, pixels=1000, lam=1.0).stationary
    moving = rdq.RateTerm(model, pixels=1000, lam=1.0, target_bits=10.0)
    assert not moving.stationary
    before = float(moving.lam)
    moving()
    assert float(moving.lam) != before


def test_the_first_rate_after_attaching_is_of_the_rounded_integers() -> None:
    """Registering a parametrization runs its forward pass once (in noise mode); that sample
    must not be what the first rate measurement (the auto λ's) consumes."""
    model = _tiny()
    rdq.attach(model, bits=6)
    model.eval()
    term = rdq.RateTerm(model, pixels=1000, lam=1.0)
    with torch.no_grad():
        first, second = float(term.bits()), float(term.bits())
    assert first == second


def test_hold_aims_dual_ascent_at_the_rate_of_the_current_integers() -> None:
    """Rate control fits the steps on real coded sizes before the straight-through phase; dual
    ascent must then hold that rate, not walk back to the proxy's own target."""
    model = _tiny()
    rdq.attach(model, bits=6)
    rdq.set_mode(model, rdq.STE)
    term = rdq.RateTerm(model, pixels=1000, lam=0.5, target_bits=10.0)
    held = term.hold()
    with torch.no_grad():
        assert held == pytest.approx(float(term.bits()))
    assert held > 10.0 * 100  # far from the original target: it was replaced
    term()
    assert float(term.lam) == pytest.approx(0.5)  # on target: λ does not move


def test_frozen_steps_stay_where_rate_control_put_them() -> None:
    """After the fit on real sizes, the straight-through phase trains weights, not steps."""
    model = _tiny()
    rdq.attach(model, bits=6)
    rdq.set_mode(model, rdq.STE)
    rdq.freeze_steps(model)
    steps = [site.quant.log_step.detach().clone() for site in rdq.sites(model)]
    learning = {id(p) for p in rdq.quantiser_parameters(model)}
    assert learning  # the rate models still learn
    assert not learning & {id(site.quant.log_step) for site in rdq.sites(model)}
    term = rdq.RateTerm(model, pixels=1000, lam=10.0)
    opt = torch.optim.Adam([*model.parameters()], lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        (model(torch.rand(1, 3, 8, 8)).square().mean() + term()).backward()
        opt.step()
    after = [site.quant.log_step for site in rdq.sites(model)]
    assert all(torch.equal(a, b) for a, b in zip(steps, after, strict=True))


def test_fine_tunes_scale_with_the_recipes_factor() -> None:
    from nvcodec.models import model_ids
    from nvcodec.pipeline import FINE_TUNE_LR, _fine_tune_config
    from nvcodec.training import TrainConfig

    base = TrainConfig(lr=1e-2, fine_tune=0.2)
    assert _fine_tune_config(base, 3).lr == pytest.approx(1e-2 * FINE_TUNE_LR * 0.2)
    assert _fine_tune_config(base, 3, 0.5).lr == pytest.approx(1e-3)  # the RD noise phase
    scaled = {m for m in model_ids() if EncodeOptions(model=m).train_config().fine_tune != 1.0}
    assert scaled == {"hinerv", "hinerv-flat"}  # trained at lr 1e-2 (the others ≤ 7e-3)


def test_the_file_stores_exactly_the_values_the_model_trained_through() -> None:
    model = _tiny()
    names = _names(model)
    rdq.attach(model, bits=5)
    term = rdq.RateTerm(model, pixels=3 * 16 * 16, lam=0.01)
    opt = torch.optim.Adam([*model.parameters()], lr=1e-2)
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    for mode in (rdq.NOISE, rdq.STE):
        rdq.set_mode(model, mode)
        for _ in range(5):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), x) + term()
            loss.backward()
            opt.step()
    model.eval()
    trained = {n: v.detach().clone() for n, v in zip(names, _values(model, names), strict=True)}
    quantised = rdq.quantized(model, names)
    encoded, rebuilt = encode_quantized(_plain(names, quantised))
    shapes = [tuple(trained[n].shape) for n in names]
    back = dict(zip(names, decode_tensors(encoded.table, encoded.data, shapes), strict=True))
    for name, (qt, _), r in zip(names, quantised, rebuilt, strict=True):
        assert torch.equal(dequantize(qt), trained[name]), name
        assert torch.equal(r, trained[name]), name
        assert torch.equal(back[name], trained[name]), name


def _values(model: nn.Module, names: list[str]) -> list[torch.Tensor]:
    """The parameters as the forward pass sees them (through the learned quantisers)."""
    out = []
    for name in names:
        *path, attr = name.split(".")
        out.append(getattr(model.get_submodule(".".join(path)), attr))
    return out


def test_noise_mode_samples_and_ste_mode_rounds() -> None:
    w = torch.linspace(-1, 1, 101)
    quant = rdq.LearnedQuant(w, bits=4)
    quant.train()
    noisy = quant(w)
    quant.mode = rdq.STE
    rounded = quant(w)
    step = quant.step(w)
    assert torch.equal(rounded / step, torch.round(rounded / step))
    assert not torch.equal(noisy / step, torch.round(noisy / step))
    assert float((noisy.detach() - w).abs().max()) <= float(step.detach()) / 2 + 1e-6


def test_the_rate_gradient_grows_the_step() -> None:
    w = torch.randn(4, 64, generator=torch.Generator().manual_seed(0))
    quant = rdq.LearnedQuant(w, bits=8)
    quant.mode = rdq.STE
    quant.bits(w).backward()
    assert quant.log_step.grad is not None
    assert float(quant.log_step.grad.sum()) < 0


def _encode(tmp_path, chaplin, lam: float | None, **kw):
    opts = EncodeOptions(
        size=6_000,
        epochs=3,
        frames=(0, 4),
        device="cpu",
        lam=lam,
        rd_epochs=kw.pop("rd_epochs", 4 if lam is not None else None),
        prune_ratio=kw.pop("prune_ratio", 0.0),
        overwrite=True,
        **kw,
    )
    out = tmp_path / f"rd_{lam}_{kw.get('target_bpp')}.nvc"
    return out, encode(chaplin, out, opts)


def test_larger_lambda_gives_a_smaller_file_that_decodes_to_the_report(tmp_path, chaplin) -> None:
    sizes = []
    for lam in (1e-4, 1e-2, 1.0):
        out, report = _encode(tmp_path, chaplin, lam)
        assert report.compression["lambda"] == pytest.approx(lam)
        decoded = decode_frames(out, device="cpu")
        again = decode_frames(out, device="cpu")
        assert np.array_equal(decoded.y, again.y)
        sizes.append(report.bytes)
    assert sizes[0] > sizes[1] > sizes[2], sizes


def test_bpp_target_lands_within_five_percent(tmp_path, chaplin) -> None:
    target = 2.0
    out, report = _encode(tmp_path, chaplin, 1e-3, target_bpp=target)
    assert abs(report.bpp / target - 1) <= 0.05, report.bpp
    assert report.bpp == pytest.approx(8 * out.stat().st_size / (96 * 72 * 4))


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"lam": 0.0}, "lambda must be"),
        ({"lam": float("nan")}, "lambda must be"),
        ({"lam": 1e-3, "bits": 6}, "--bits"),
        ({"lam": 1e-3, "qat_epochs": 2}, "--qat-epochs"),
        ({"rd_epochs": 3, "bits": 6}, "--rd-epochs applies to RD training"),
        ({"pipeline": "qat", "lam": 0.01}, "--lambda applies to RD training"),
        ({"pipeline": "rd", "qat_epochs": 3}, "--qat-epochs sets the fixed-depth QAT"),
        ({"pipeline": "fast"}, "pipeline 'fast'"),
        ({"lam": 1e-3, "rd_epochs": 0}, "RD epochs"),
    ],
)
def test_rd_options_are_checked_before_training(kw, message) -> None:
    with pytest.raises(ConfigError, match=message):
        EncodeOptions(**kw).validate()


def test_auto_lambda_is_stored_and_info_shows_the_learned_steps(tmp_path, chaplin) -> None:
    from nvcodec.inspection import inspect

    out, report = _encode(tmp_path, chaplin, "auto")
    compression = report.compression
    assert compression["lambda_auto"] is True
    assert 0 < compression["lambda"] < 1
    info = inspect(out)
    assert info.metadata["compression"]["quantiser"] == "learned-step-per-tensor-fp16"
    coded = [t for t in info.tensors if t.entropy_model != "constant"]
    assert all(t.steps[0] == t.steps[1] > 0 for t in coded)  # one learned step per tensor
    assert sum(t.payload_bytes for t in info.tensors) <= 1.01 * sum(
        t.ideal_payload_bits / 8 for t in info.tensors
    ) + 4 * len(info.tensors)


def test_a_learned_laplace_outside_the_readers_bounds_is_not_offered() -> None:
    symbols = np.array([-3, 0, 2, 5], dtype=np.int32)
    assert rdq.learned_laplace(symbols, 0.5, 2.0) is not None
    assert rdq.learned_laplace(symbols, 0.5, 1e6) is None
    assert rdq.learned_laplace(symbols, -1e6, 2.0) is None
    assert rdq.learned_laplace(np.zeros(4, np.int32), 0.0, 1.0) is None


def test_diverged_weights_stop_with_a_clear_error_instead_of_a_file() -> None:
    from nvcodec.errors import TrainingDivergedError

    model = _tiny()
    names = _names(model)
    rdq.attach(model)
    with torch.no_grad():
        model[0].parametrizations.weight.original[0, 0, 0, 0] = float("nan")
    with pytest.raises(TrainingDivergedError, match="diverged"):
        rdq.quantized(model, names)


def test_a_bpp_target_too_small_for_rd_is_refused_before_training(tmp_path, chaplin) -> None:
    with pytest.raises(ConfigError, match=r"leaves .* bytes for the model"):
        _encode(tmp_path, chaplin, "auto", target_bpp=0.01)


def test_rd_training_prunes_nothing_unless_asked_and_keeps_equal_total_epochs() -> None:
    qat, rd = EncodeOptions(epochs=100, pipeline="qat"), EncodeOptions(epochs=100)
    assert (qat.resolved_prune_ratio, rd.resolved_prune_ratio) == (0.2, 0.0)
    qat_total = qat.resolved_prune_epochs + qat.resolved_qat_epochs
    assert rd.resolved_prune_epochs + rd.resolved_rd_epochs == qat_total
    pruned = EncodeOptions(epochs=100, lam="auto", prune_ratio=0.3)
    assert pruned.resolved_prune_epochs + pruned.resolved_rd_epochs == qat_total
    assert rd.resolved_qat_epochs == 0


def test_rd_training_is_the_default_and_qat_options_select_the_qat_pipeline() -> None:
    assert EncodeOptions().rd
    assert EncodeOptions().resolved_lam == "auto"
    assert not EncodeOptions(bits=6).rd
    assert not EncodeOptions(qat_epochs=0).rd
    assert not EncodeOptions(pipeline="qat").rd
    assert EncodeOptions(pipeline="rd", rd_epochs=4).rd
