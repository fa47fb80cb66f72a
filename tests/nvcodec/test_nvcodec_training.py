"""Training: the warm-up + cosine schedule and the overfitting loop on a tiny NeRV."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from nvcodec.models import build_model
from nvcodec.models.nerv import nerv_sizing
from nvcodec.training import EpochStats, TrainConfig, TrainResult, cosine_with_warmup, train

# --------------------------------------------------------------------------- schedule


@pytest.mark.parametrize(("total", "fraction"), [(100, 0.2), (37, 0.1), (10, 0.5), (1000, 0.05)])
def test_cosine_with_warmup_shape(total: int, fraction: float) -> None:
    warmup = round(total * fraction)
    values = [cosine_with_warmup(step, total, fraction) for step in range(total + 1)]
    assert values[0] > 0.0
    assert values[0] == pytest.approx(1 / warmup)
    ramp = values[:warmup]
    assert all(b > a for a, b in itertools.pairwise(ramp))
    assert ramp[-1] == pytest.approx(1.0)
    assert values[warmup] == pytest.approx(1.0)
    decay = values[warmup:]
    assert all(b < a for a, b in itertools.pairwise(decay))
    assert values[total] == pytest.approx(0.0, abs=1e-12)
    # Halfway through the decay the cosine is at one half.
    if (total - warmup) % 2 == 0:
        assert values[warmup + (total - warmup) // 2] == pytest.approx(0.5)
    assert all(0.0 <= v <= 1.0 for v in values)


def test_cosine_with_warmup_floor() -> None:
    total, floor = 50, 0.1
    values = [cosine_with_warmup(s, total, 0.2, floor=floor) for s in range(total + 1)]
    assert values[-1] == pytest.approx(floor)
    assert min(values[10:]) == pytest.approx(floor)
    assert all(v >= floor - 1e-12 for v in values[10:])
    # Past the end it stays at the floor.
    assert cosine_with_warmup(total + 25, total, 0.2, floor=floor) == pytest.approx(floor)


def test_cosine_without_warmup_starts_at_one() -> None:
    assert cosine_with_warmup(0, 100, 0.0) == 1.0
    assert cosine_with_warmup(1, 100, 0.0) < 1.0
    assert cosine_with_warmup(100, 100, 0.0) == pytest.approx(0.0, abs=1e-12)


def test_cosine_never_zero_at_step_zero() -> None:
    for total in (1, 2, 3, 7, 100):
        for fraction in (0.0, 0.1, 0.5, 0.99, 1.0):
            assert cosine_with_warmup(0, total, fraction) > 0.0, (total, fraction)
    assert cosine_with_warmup(0, 0, 0.5) > 0.0


def test_cosine_full_warmup() -> None:
    values = [cosine_with_warmup(s, 10, 1.0) for s in range(10)]
    assert values == pytest.approx([(s + 1) / 10 for s in range(10)])


# --------------------------------------------------------------------------- train


HEIGHT, WIDTH, FRAMES = 16, 24, 4


def _frames() -> torch.Tensor:
    t = torch.arange(float(FRAMES))[:, None, None, None]
    c = torch.arange(3.0)[None, :, None, None]
    y = torch.arange(float(HEIGHT))[None, None, :, None]
    x = torch.arange(float(WIDTH))[None, None, None, :]
    return (0.5 + 0.4 * torch.sin(x / 5 + t * 0.7 + c) * torch.cos(y / 4)).float()


def _model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(nerv_sizing(HEIGHT, WIDTH, FRAMES, 2))


def test_train_reduces_loss_and_reports_each_epoch() -> None:
    model = _model(0)
    frames = _frames()
    config = TrainConfig(epochs=30, batch_size=3, lr=5e-3, warmup=0.2, seed=1)
    seen: list[EpochStats] = []
    result = train(model, frames, config, callback=seen.append)

    assert [s.epoch for s in seen] == list(range(1, 31))
    assert all(s.epochs == 30 for s in seen)
    assert seen[-1].loss < 0.7 * seen[0].loss
    assert all(math.isfinite(s.loss) and s.loss > 0 for s in seen)
    assert all(s.psnr == pytest.approx(-10 * math.log10(s.loss)) for s in seen)
    times = [s.seconds for s in seen]
    assert times == sorted(times)
    # The schedule reaches the base lr after warm-up and ends at 0.
    assert max(s.lr for s in seen) == pytest.approx(config.lr)
    assert seen[0].lr < config.lr
    assert seen[-1].lr == pytest.approx(0.0, abs=1e-12)

    assert isinstance(result, TrainResult)
    assert result.steps == 30 * math.ceil(FRAMES / 3)
    assert result.final_loss == seen[-1].loss
    assert result.final_psnr == pytest.approx(-10 * math.log10(result.final_loss))
    assert result.seconds >= seen[-1].seconds > 0
    assert not model.training

    # final_loss is the training loss of the last epoch, close to the model's actual error.
    with torch.no_grad():
        mse = float(torch.nn.functional.mse_loss(model(torch.arange(float(FRAMES))), frames))
    assert mse < seen[0].loss


def test_train_without_callback_still_reports_final_loss() -> None:
    result = train(_model(0), _frames(), TrainConfig(epochs=2, batch_size=4, lr=1e-3))
    assert math.isfinite(result.final_loss)
    assert result.final_loss > 0
    assert result.steps == 2


def _state_after(seed: int, train_seed: int) -> dict[str, torch.Tensor]:
    model = _model(seed)
    train(model, _frames(), TrainConfig(epochs=3, batch_size=2, lr=5e-3, seed=train_seed))
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_train_is_deterministic_for_equal_seeds() -> None:
    a = _state_after(0, 3)
    b = _state_after(0, 3)
    c = _state_after(0, 4)  # same init, different frame order
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_train_reports_steps_within_epochs(monkeypatch: pytest.MonkeyPatch) -> None:
    from nvcodec.training import loop

    monkeypatch.setattr(loop, "STEP_REPORT_S", 0.0)  # report every step
    frames = _frames()
    config = TrainConfig(epochs=3, batch_size=2, lr=1e-3)
    steps: list[tuple[int, int]] = []
    result = train(_model(0), frames, config, on_step=lambda d, t: steps.append((d, t)))
    per_epoch = math.ceil(frames.shape[0] / 2)
    assert steps == [(k, 3 * per_epoch) for k in range(1, 3 * per_epoch + 1)]
    assert result.steps == 3 * per_epoch


def test_step_reports_are_throttled_but_end_every_epoch() -> None:
    frames = _frames()
    config = TrainConfig(epochs=2, batch_size=1, lr=1e-3)
    steps: list[int] = []
    train(_model(0), frames, config, on_step=lambda d, t: steps.append(d))
    assert steps[-1] == 2 * frames.shape[0]
    assert frames.shape[0] in steps  # the first epoch's end
    assert steps == sorted(set(steps))


@pytest.mark.parametrize("clip", [0.0, 0.1])
def test_gradient_norm_clipping_before_each_step(clip: float) -> None:
    from nvcodec.training.loop import make_optimizer

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    optimizer = make_optimizer(model, TrainConfig(lr=0.0, clip=clip))
    (1000.0 * model(torch.randn(8, 4)).square().sum()).backward()
    before = torch.nn.utils.get_total_norm([p.grad for p in model.parameters()])
    optimizer.step()
    after = torch.nn.utils.get_total_norm([p.grad for p in model.parameters()])
    assert float(before) > 10.0
    if clip:
        assert float(after) == pytest.approx(clip, rel=1e-3)
    else:
        assert torch.equal(after, before)


def test_decoding_precision_is_set_per_call_and_restored() -> None:
    from nvcodec.device import full_fp32

    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    before = (cudnn.conv.fp32_precision, matmul.fp32_precision, cudnn.deterministic)
    with full_fp32():
        assert (cudnn.conv.fp32_precision, matmul.fp32_precision) == ("ieee", "ieee")
        assert cudnn.deterministic
        assert not cudnn.benchmark
    assert (cudnn.conv.fp32_precision, matmul.fp32_precision, cudnn.deterministic) == before


# --------------------------------------------------------------------------- divergence


def _linear_run() -> tuple[
    torch.nn.Module, torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR
]:
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (1 + step))
    return model, optimizer, scheduler


def _step(model, optimizer, scheduler, scale: float = 1.0) -> None:
    optimizer.zero_grad()
    (scale * model(torch.randn(8, 4)).square().sum()).backward()
    optimizer.step()
    scheduler.step()


def test_rollback_undoes_a_diverged_epoch_and_halves_the_lr() -> None:
    from nvcodec.training.rollback import DIVERGED, Rollback

    model, optimizer, scheduler = _linear_run()
    guard = Rollback([model], optimizer, scheduler)
    _step(model, optimizer, scheduler)
    assert guard.check(1.0, 1.0)  # the first epoch has nothing to compare with
    kept = {k: v.clone() for k, v in model.state_dict().items()}
    moments = {k: v.clone() for k, v in optimizer.state[model.weight].items()}
    lr = optimizer.param_groups[0]["lr"]

    _step(model, optimizer, scheduler, scale=1e6)
    assert not torch.equal(model.weight, kept["weight"])
    assert not guard.check(DIVERGED * 1.0 + 0.01, 1.0)  # the objective decides, not the MSE
    assert all(torch.equal(v, kept[k]) for k, v in model.state_dict().items())
    assert all(torch.equal(v, moments[k]) for k, v in optimizer.state[model.weight].items())
    assert scheduler.base_lrs == [pytest.approx(0.05)]
    # The current lr is the schedule's at this step, from the halved base.
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.05 / 3)
    assert optimizer.param_groups[0]["lr"] < lr
    assert guard.undone == 1
    assert guard.loss == 1.0

    # The epoch after an undone one is accepted whatever its finite loss, and is the new reference.
    _step(model, optimizer, scheduler)
    assert guard.check(5.0, 4.0)
    assert guard.check(DIVERGED * 5.0, 40.0)  # MSE up 10×, objective within bounds: accepted
    assert guard.loss == 40.0
    assert not guard.check(math.nan, 1.0)
    assert guard.undone == 2


def test_train_undoes_diverged_epochs_and_ends_on_an_accepted_one() -> None:
    model = _model(0)
    frames = _frames()
    seen: list[EpochStats] = []
    config = TrainConfig(epochs=8, batch_size=3, lr=0.3, warmup=0.0, seed=2)
    result = train(model, frames, config, callback=seen.append)
    undone = [s.epoch for s in seen if s.undone]
    assert undone  # lr 0.3 diverges on this model
    assert result.undone == len(undone)
    assert seen[-1].undone or result.final_loss == seen[-1].loss
    # What the run reports is the model it leaves, not a diverged state that was undone.
    with torch.no_grad():
        mse = float(torch.nn.functional.mse_loss(model(torch.arange(float(FRAMES))), frames))
    assert mse < 2 * result.final_loss
    assert all(seen[k].lr < seen[k - 1].lr for k in range(1, len(seen)) if seen[k].undone)


def test_ordinary_runs_undo_nothing() -> None:
    seen: list[EpochStats] = []
    config = TrainConfig(epochs=30, batch_size=3, lr=5e-3, warmup=0.2, seed=1)
    assert train(_model(0), _frames(), config, callback=seen.append).undone == 0
    assert not any(s.undone for s in seen)


def test_rollback_floor_and_disabled_guard() -> None:
    """Near float precision a doubled mean is noise, not a divergence; a disabled guard (a loss
    whose weight moves during the run) never undoes, not even a non-finite epoch."""
    from nvcodec.training.rollback import FLOOR, Rollback

    model, optimizer, scheduler = _linear_run()
    guard = Rollback([model], optimizer, scheduler)
    assert guard.check(FLOOR / 100, FLOOR / 100)
    assert guard.check(1.9 * FLOOR, 1.9 * FLOOR)  # 190× the reference, but under the floor
    assert not guard.check(10 * FLOOR * 2.1, 1.0)

    model, optimizer, scheduler = _linear_run()
    off = Rollback([model], optimizer, scheduler, enabled=False)
    assert off.check(1.0, 1.0)
    assert off.check(100.0, 50.0)
    assert off.check(math.nan, math.nan)
    assert off.undone == 0


class _MovingPenalty:
    """A penalty whose weight changes during the run (as RD training's dual ascent on λ)."""

    stationary = False

    def __call__(self) -> torch.Tensor:
        return torch.zeros(())


def test_train_undoes_nothing_when_the_penalty_is_not_stationary() -> None:
    config = TrainConfig(epochs=8, batch_size=3, lr=0.3, warmup=0.0, seed=2)
    seen: list[EpochStats] = []
    # the same run undoes epochs without the penalty (test above)
    result = train(_model(0), _frames(), config, callback=seen.append, penalty=_MovingPenalty())
    assert result.undone == 0
    assert not any(s.undone for s in seen)


def test_psnr_of_no_measured_epoch_is_nan_not_perfect() -> None:
    from nvcodec.training.loop import _psnr

    assert math.isnan(_psnr(math.nan))
    assert _psnr(0.0) == math.inf
    assert _psnr(0.01) == pytest.approx(20.0)


# --------------------------------------------------------------------------- precision


@pytest.mark.parametrize("amx", [True, False])
def test_bf16_autocast_where_the_device_runs_it_fast(
    monkeypatch: pytest.MonkeyPatch, amx: bool
) -> None:
    from nvcodec.device import bf16_autocast
    from nvcodec.training.loop import uses_autocast

    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    cpu = torch.device("cpu")
    assert bf16_autocast(cpu) is amx
    assert bf16_autocast(torch.device("cuda")) is True
    assert bf16_autocast(torch.device("meta")) is False
    assert uses_autocast(TrainConfig(amp=True), cpu) is amx
    assert uses_autocast(TrainConfig(amp=False), cpu) is False
    # a model whose recipe says it gains nothing from bf16 on CPUs, still autocast on CUDA
    assert uses_autocast(TrainConfig(cpu_bf16=False), cpu) is False
    assert uses_autocast(TrainConfig(cpu_bf16=False), torch.device("cuda")) is True
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported")  # a torch without the probe
    assert bf16_autocast(cpu) is False


def _conv_dtypes(model: torch.nn.Module, amp: bool) -> set[torch.dtype]:
    seen: set[torch.dtype] = set()
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.register_forward_hook(lambda m, i, out: seen.add(out.dtype))
    train(model, _frames(), TrainConfig(epochs=2, batch_size=2, lr=5e-3, amp=amp))
    return seen


def test_training_autocasts_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    model = _model(0)
    assert _conv_dtypes(model, amp=True) == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights stay fp32
    assert _conv_dtypes(_model(0), amp=False) == {torch.float32}
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert _conv_dtypes(_model(0), amp=True) == {torch.float32}


def test_bf16_training_is_deterministic(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    states = []
    for amp in (True, True, False):
        model = _model(0)
        train(model, _frames(), TrainConfig(epochs=3, batch_size=2, lr=5e-3, seed=3, amp=amp))
        states.append({k: v.clone() for k, v in model.state_dict().items()})
    fp32 = states[2]
    assert all(torch.equal(states[0][k], states[1][k]) for k in fp32)
    assert any(not torch.equal(states[0][k], fp32[k]) for k in fp32)  # bf16 did run


def test_recipes_keep_slow_bf16_models_in_fp32_on_cpus() -> None:
    from nvcodec.encoder import EncodeOptions
    from nvcodec.models import model_ids

    fp32_on_cpu = {m for m in model_ids() if not EncodeOptions(model=m).train_config().cpu_bf16}
    assert fp32_on_cpu == {"nerv++", "dnerv", "hinerv"}  # slower in bf16 at some measured size
