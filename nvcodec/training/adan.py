"""Adan: adaptive Nesterov momentum (Xie, Zhou, Li, Lin, Yan, arXiv:2208.06677, 2022).

Convention: ``betas`` are the *decay* coefficients (PyTorch/Adam style, like Adam's 0.9), so the
default ``(0.98, 0.92, 0.99)`` — the values DS-NeRV trains with — keeps 98 % of the old first
moment. (The Adan paper writes the complementary weights of the *new* term, β = 0.02, 0.08, 0.01.)

For a parameter θ with gradient ``g_k`` at step ``k`` (``g_0 := g_1``: the first difference is 0)::

    m_k = β1·m_{k−1} + (1−β1)·g_k
    v_k = β2·v_{k−1} + (1−β2)·(g_k − g_{k−1})
    n_k = β3·n_{k−1} + (1−β3)·(g_k + β2·(g_k − g_{k−1}))²
    m̂ = m_k/(1−β1^k),  v̂ = v_k/(1−β2^k),  n̂ = n_k/(1−β3^k)        (bias correction)
    θ_k = (θ_{k−1} − η·(m̂ + β2·v̂)/(√n̂ + ε)) / (1 + λη)               (proximal decoupled decay)

With ``no_prox=True`` the decay is applied first instead: ``θ ← θ·(1 − λη)`` then the step. This
follows the official implementation's conventions (bias correction, ``√n̂ + ε`` denominator,
``no_prox=False`` default); gradient-norm clipping and restarts are left out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

__all__ = ["Adan"]


class Adan(torch.optim.Optimizer):
    """Adan with PyTorch-style betas ``(β1, β2, β3)`` and decoupled weight decay."""

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float, float] = (0.98, 0.92, 0.99),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        no_prox: bool = False,
    ) -> None:
        if not lr >= 0.0:
            raise ValueError(f"invalid learning rate {lr}")
        if not eps >= 0.0:
            raise ValueError(f"invalid eps {eps}")
        if len(betas) != 3 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"invalid betas {betas}: need three values in [0, 1)")
        if not weight_decay >= 0.0:
            raise ValueError(f"invalid weight decay {weight_decay}")
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "no_prox": no_prox,
        }
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2, beta3 = group["betas"]
            lr, eps, decay = group["lr"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if grad.is_sparse:
                    raise RuntimeError("Adan does not support sparse gradients")
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_diff"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                    state["prev_grad"] = grad.clone()  # first difference is zero
                state["step"] += 1
                k = state["step"]
                m, v, n = state["exp_avg"], state["exp_avg_diff"], state["exp_avg_sq"]
                diff = grad - state["prev_grad"]
                m.mul_(beta1).add_(grad, alpha=1.0 - beta1)
                v.mul_(beta2).add_(diff, alpha=1.0 - beta2)
                nesterov = grad + beta2 * diff
                n.mul_(beta3).addcmul_(nesterov, nesterov, value=1.0 - beta3)

                denom = (n.sqrt() / math.sqrt(1.0 - beta3**k)).add_(eps)
                if group["no_prox"]:
                    p.mul_(1.0 - lr * decay)
                p.addcdiv_(m, denom, value=-lr / (1.0 - beta1**k))
                p.addcdiv_(v, denom, value=-lr * beta2 / (1.0 - beta2**k))
                if not group["no_prox"]:
                    p.div_(1.0 + lr * decay)
                state["prev_grad"].copy_(grad)
        return loss
