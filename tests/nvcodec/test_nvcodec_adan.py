"""Adan: two hand-computed steps (both weight-decay forms), argument checks, and it trains."""

from __future__ import annotations

import math

import pytest
import torch

from nvcodec.training import Adan

BETAS = (0.98, 0.92, 0.99)


def _hand_steps(theta: float, grads: list[float], lr: float, wd: float, eps: float, prox: bool):
    """The update equations written out with plain floats (not the optimiser)."""
    b1, b2, b3 = BETAS
    m = v = n = 0.0
    prev = grads[0]
    out = []
    for k, g in enumerate(grads, start=1):
        d = g - prev
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * d
        n = b3 * n + (1 - b3) * (g + b2 * d) ** 2
        m_hat, v_hat, n_hat = m / (1 - b1**k), v / (1 - b2**k), n / (1 - b3**k)
        step = lr * (m_hat + b2 * v_hat) / (math.sqrt(n_hat) + eps)
        theta = (theta - step) / (1 + lr * wd) if prox else theta * (1 - lr * wd) - step
        out.append(theta)
        prev = g
    return out


@pytest.mark.parametrize("no_prox", [False, True])
def test_two_steps_match_hand_computation(no_prox: bool) -> None:
    lr, wd, eps = 0.1, 0.02, 1e-8
    grads = [0.5, -0.25]
    p = torch.nn.Parameter(torch.tensor(1.0, dtype=torch.float64))
    opt = Adan([p], lr=lr, betas=BETAS, eps=eps, weight_decay=wd, no_prox=no_prox)
    expected = _hand_steps(1.0, grads, lr, wd, eps, prox=not no_prox)
    for g, want in zip(grads, expected, strict=True):
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        assert p.item() == pytest.approx(want, rel=1e-12, abs=1e-14)


def test_first_step_numbers() -> None:
    # Step 1: m̂ = g, v̂ = 0 (difference is 0), n̂ = g², so the step is lr·sign(g) (up to eps).
    p = torch.nn.Parameter(torch.tensor([2.0, -3.0], dtype=torch.float64))
    opt = Adan([p], lr=0.1, weight_decay=0.0, eps=0.0)
    p.grad = torch.tensor([0.5, -4.0], dtype=torch.float64)
    opt.step()
    torch.testing.assert_close(p.detach(), torch.tensor([1.9, -2.9], dtype=torch.float64))
    # Step 2 with g = (−0.25, −4): hand numbers for the first element
    # m = .98·.01 + .02·(−.25) = .0048; v = .08·(−.75) = −.06; n = .99·.0025 + .01·.94² = .011311
    p.grad = torch.tensor([-0.25, -4.0], dtype=torch.float64)
    opt.step()
    m_hat, v_hat, n_hat = 0.0048 / 0.0396, -0.06 / 0.1536, 0.011311 / 0.0199
    want = 1.9 - 0.1 * (m_hat + 0.92 * v_hat) / math.sqrt(n_hat)
    assert p[0].item() == pytest.approx(want, rel=1e-12)
    assert p[1].item() == pytest.approx(-2.8, rel=1e-12)  # constant gradient: lr·sign again


def test_rejects_bad_arguments() -> None:
    p = [torch.nn.Parameter(torch.zeros(1))]
    with pytest.raises(ValueError, match="betas"):
        Adan(p, betas=(0.9, 0.9))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="betas"):
        Adan(p, betas=(0.9, 1.0, 0.9))
    with pytest.raises(ValueError, match="learning rate"):
        Adan(p, lr=-1.0)


def test_parameter_groups_and_regression() -> None:
    torch.manual_seed(0)
    x = torch.randn(64, 4)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1
    lin = torch.nn.Linear(4, 1)
    opt = Adan(
        [{"params": [lin.weight]}, {"params": [lin.bias], "lr": 0.05}], lr=0.02, weight_decay=0.02
    )
    assert opt.param_groups[1]["lr"] == 0.05
    losses = []
    for _ in range(300):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(lin(x).squeeze(1), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 1e-2 * losses[0]
