"""Pruning masks: exact ratio, size normalisation, what is never pruned, masks through fine-tune."""

from __future__ import annotations

import torch
from torch import nn

from nvcodec.compression import prune as pruning
from nvcodec.models import build_model
from nvcodec.models.dsnerv import dsnerv_sizing
from nvcodec.pipeline import _capture_groups, _fine_tune_config, _Grouped, stored_tensors
from nvcodec.training import TrainConfig, train


class TwoLayers(nn.Module):
    def __init__(self, small: int, large: int) -> None:
        super().__init__()
        self.small = nn.Linear(small, 1)
        self.large = nn.Linear(large, 1)
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():  # identical weight distributions, different sizes
            self.small.weight.copy_(torch.rand(1, small, generator=g) * 2 - 1)
            self.large.weight.copy_(torch.rand(1, large, generator=g) * 2 - 1)


def _tiny_dsnerv() -> nn.Module:
    torch.manual_seed(0)
    return build_model(dsnerv_sizing(24, 32, 4, 6))


def test_exact_ratio_over_all_candidates() -> None:
    model = _tiny_dsnerv()
    candidates = sum(m.weight.numel() for _, m in pruning.prunable(model))
    for ratio in (0.0, 0.1, 0.37, 0.9):
        m = _tiny_dsnerv()
        report = pruning.prune(m, ratio)
        zeros = sum(int((mod.weight == 0).sum()) for _, mod in pruning.prunable(m))
        assert report.pruned == zeros == round(ratio * candidates)
        assert report.candidates == candidates


def test_ties_are_pruned_exactly() -> None:
    model = TwoLayers(10, 10)
    with torch.no_grad():
        model.small.weight.fill_(0.5)
        model.large.weight.fill_(0.5)
    report = pruning.prune(model, 0.45, alpha=0.0)
    assert report.pruned == 9


def test_size_normalisation_prunes_large_layers_more() -> None:
    plain = pruning.compute_masks(TwoLayers(100, 10_000), 0.5, alpha=0.0)
    fractions = {k: 1 - float(v.float().mean()) for k, v in plain.items()}
    assert abs(fractions["small"] - fractions["large"]) < 0.15  # same distribution, same share
    normed = pruning.compute_masks(TwoLayers(100, 10_000), 0.5, alpha=0.5)
    fractions = {k: 1 - float(v.float().mean()) for k, v in normed.items()}
    assert fractions["large"] > 0.49
    assert fractions["small"] < 0.1


def test_biases_and_codes_are_never_pruned() -> None:
    model = _tiny_dsnerv()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    pruning.prune(model, 0.8)
    pruning.strip(model)
    for name, p in model.named_parameters():
        if name.endswith("bias") or "codes" in name:
            assert torch.equal(p, before[name]), name
    names = {name for name, _ in pruning.prunable(model)}
    assert names
    assert all(not n.endswith("codes") for n in names)


def test_masks_hold_through_fine_tune_and_strip_keeps_names() -> None:
    model = _tiny_dsnerv()
    names = [n for n, _ in model.named_parameters()]
    groups = _capture_groups(model)
    pruning.prune(model, 0.5)
    masks = pruning.masks_of(model)
    frames = torch.rand(4, 3, 24, 32)
    base = TrainConfig(
        epochs=3, optimizer="adan", lr=7e-3, betas=(0.98, 0.92, 0.99), weight_decay=0.02
    )
    before = {n: t.clone() for n, t in stored_tensors(model, names)}
    train(_Grouped(model, groups), frames, _fine_tune_config(base, 3))
    after = dict(stored_tensors(model, names))
    assert any(not torch.equal(before[n], after[n]) for n in names)  # it did train
    modules = dict(model.named_modules())
    for name, keep in masks.items():
        assert torch.all(modules[name].weight[~keep] == 0)
    pruning.strip(model)
    assert sorted(n for n, _ in model.named_parameters()) == sorted(names)
    for name, keep in masks.items():
        assert torch.all(modules[name].weight[~keep] == 0)
        assert isinstance(modules[name].weight, nn.Parameter)


def test_re_pruning_grows_masks() -> None:
    model = _tiny_dsnerv()
    pruning.prune(model, 0.3)
    first = pruning.masks_of(model)
    report = pruning.prune(model, 0.6)
    second = pruning.masks_of(model)
    assert report.achieved == report.pruned / report.candidates
    for name in first:
        assert torch.all(second[name] <= first[name])  # everything pruned stays pruned
