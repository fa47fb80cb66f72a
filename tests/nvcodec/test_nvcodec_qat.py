"""Fake quantisation: bit-exact with the file's quantiser, straight-through gradient."""

from __future__ import annotations

import pytest
import torch

from nvcodec.compression import dequantize, qat, quantize
from nvcodec.compression import prune as pruning
from nvcodec.models import build_model
from nvcodec.models.dsnerv import dsnerv_sizing
from nvcodec.pipeline import bits_for, stored_tensors


def _cases() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    w = torch.randn(6, 5, 3, 3, generator=g)
    w[2] = 0  # an all-zero channel
    w[3] *= 1e-6  # a subnormal fp16 scale
    return [
        w,
        torch.randn(7, generator=g) * 3,  # 1-D: one scale
        torch.randn(4, 9, generator=g) * 100,
        torch.zeros(3, 3),
        torch.full((5,), -0.25),
        (torch.rand(16, 16, generator=g) - 0.5) * 1e-3,
    ]


@pytest.mark.parametrize("bits", [2, 4, 6, 7, 8, 12, 16])
def test_forward_equals_dequantize_quantize(bits: int) -> None:
    for w in _cases():
        expected = dequantize(quantize(w, bits, per_channel=w.ndim >= 2))
        got = qat.fake_quantize(w, bits)
        assert got.dtype == torch.float32
        assert torch.equal(got, expected), (bits, tuple(w.shape))


def test_error_bound_half_a_step() -> None:
    for w in _cases():
        qt = quantize(w, 6, per_channel=w.ndim >= 2)
        err = (qat.fake_quantize(w, 6) - w).abs().double()
        s = torch.from_numpy(qt.scales.astype("float64"))
        bound = (s.view(-1, *[1] * (w.ndim - 1)) if qt.per_channel else s) / 2
        assert torch.all(err <= bound * (1 + 1e-6) + 1e-12)


def test_straight_through_gradient() -> None:
    w = torch.randn(4, 3, 3, 3, requires_grad=True)
    upstream = torch.randn(4, 3, 3, 3)
    (qat.fake_quantize(w, 5) * upstream).sum().backward()
    assert torch.equal(w.grad, upstream)


def test_attach_detach_trains_through_the_stored_integers() -> None:
    torch.manual_seed(0)
    model = build_model(dsnerv_sizing(24, 32, 4, 6))
    names = [n for n, _ in model.named_parameters()]
    pruning.prune(model, 0.4)
    depth = bits_for(5, 7)
    qat.attach(model, depth)
    seen = dict(stored_tensors(model, names))  # what the forward pass uses
    assert model(torch.arange(4).float()).shape == (4, 3, 24, 32)
    qat.detach(model)
    assert sorted(n for n, _ in model.named_parameters()) == sorted(names)
    for name, tensor in stored_tensors(model, names):
        stored = dequantize(quantize(tensor, depth(name), per_channel=tensor.ndim >= 2))
        assert torch.equal(stored, seen[name]), name
    for _, module in pruning.prunable(model):
        assert float((module.weight == 0).float().mean()) > 0  # masks survived detach
