"""The compression pipeline end to end: entropy kinds, model choice, --bpp, encode→decode."""

from __future__ import annotations

import numpy as np
import pytest

from bitstream.binary import ByteReader, ByteWriter
from nvcodec.compression import tensor_costs
from nvcodec.compression.entropy import (
    GaussianModel,
    HistogramModel,
    candidate_models,
    choose_and_encode,
    read_model,
    write_model,
)


def _rt(model, symbols: np.ndarray) -> bytes:
    payload = model.encode(symbols)
    w = ByteWriter()
    write_model(w, model)
    r = ByteReader(w.getvalue(), what="t")
    back = read_model(r, symbols.size)
    r.expect_end()
    np.testing.assert_array_equal(back.decode(payload, symbols.size, "t"), symbols)
    return payload


CASES = {
    "gaussian": np.rint(np.random.default_rng(0).normal(3, 7, 3000)).astype(np.int32),
    "pruned laplace": np.where(
        np.random.default_rng(1).random(20_000) < 0.4,
        0,
        np.rint(np.random.default_rng(2).laplace(0, 9, 20_000)),
    ).astype(np.int32),
    "two values": np.array([0, 1] * 50, dtype=np.int32),
    "wide": np.random.default_rng(3).integers(-127, 128, 5000).astype(np.int32),
}


@pytest.mark.parametrize("symbols", list(CASES.values()), ids=list(CASES))
def test_every_candidate_round_trips(symbols: np.ndarray) -> None:
    for model in candidate_models(symbols):
        payload = _rt(model, symbols)
        ideal = model.ideal_bits(symbols) / 8
        assert len(payload) <= ideal * 1.01 + 8  # ANS within 1 % + one word of the model's ideal


@pytest.mark.parametrize("symbols", [np.zeros(500, np.int32), np.full(9, -3, np.int32)])
def test_all_zero_and_single_value_cost_nothing(symbols: np.ndarray) -> None:
    model, payload = choose_and_encode(symbols)
    assert payload == b""
    assert model.KIND == 0
    np.testing.assert_array_equal(model.decode(payload, symbols.size, "t"), symbols)


def test_choice_is_the_smallest_candidate_including_side_information() -> None:
    for symbols in CASES.values():
        model, payload = choose_and_encode(symbols)
        totals = [m.param_bytes() + len(m.encode(symbols)) for m in candidate_models(symbols)]
        assert model.param_bytes() + len(payload) == min(totals)


def test_gaussian_wins_on_gaussian_data_and_scaled_histogram_on_large_pruned() -> None:
    model, _ = choose_and_encode(CASES["gaussian"])
    assert isinstance(model, GaussianModel)
    big = np.where(
        np.random.default_rng(4).random(200_000) < 0.3,
        0,
        np.rint(np.random.default_rng(5).normal(0, 20, 200_000)),
    ).astype(np.int32)
    model, _ = choose_and_encode(big)
    assert isinstance(model, HistogramModel)
    exact = HistogramModel.fit(big)
    # the scaled table is cheaper in total than the exact counts
    assert model.param_bytes() + len(model.encode(big)) <= exact.param_bytes() + len(
        exact.encode(big)
    )


def test_pruned_zeros_cost_little() -> None:
    symbols = CASES["pruned laplace"]
    _, payload = choose_and_encode(symbols)
    dense = symbols[symbols != 0]
    _, dense_payload = choose_and_encode(dense)
    # 40 % zeros: the zeros add about H(0.4)·n bits, far less than a dense symbol each
    extra_bits = 8 * (len(payload) - len(dense_payload))
    assert extra_bits < 1.1 * symbols.size * 0.971 + 64


def test_gaussian_params_refused_when_bad() -> None:
    import math
    import struct

    from bitstream.errors import MalformedFileError

    for mean, std in ((0.0, 0.0), (math.nan, 1.0), (0.0, -1.0), (1e9, 1.0)):
        w = ByteWriter()
        w.u8(3)
        w.svarint(0)
        w.varint(4)
        w.raw(struct.pack("<ff", mean, std))
        with pytest.raises(MalformedFileError):
            read_model(ByteReader(w.getvalue(), what="tensor table"), 10)


# ------------------------------------------------------------------------ encoder, end to end


@pytest.mark.parametrize("pipeline", ["qat", "rd"])
def test_encode_reports_every_undone_epoch(tmp_path, chaplin, monkeypatch, pipeline: str) -> None:
    """Epochs undone in any phase (float training, fine-tunes, RD) reach the report and the
    progress callback alike; a threshold of 0 makes every compared epoch count as diverged."""
    from nvcodec import EncodeOptions, encode
    from nvcodec.training import rollback

    monkeypatch.setattr(rollback, "DIVERGED", 0.0)
    seen = []
    phases = {"rd_epochs": 3} if pipeline == "rd" else {"qat_epochs": 3}
    opts = EncodeOptions(
        size=10_000, epochs=4, frames=(0, 4), device="cpu", pipeline=pipeline, **phases
    )
    report = encode(chaplin, tmp_path / "u.nvc", opts, progress=seen.append)
    undone = [(s.phase, s.epoch) for s in seen if s.undone]
    assert {phase for phase, _ in undone} >= {"train"}
    assert len({phase for phase, _ in undone}) >= 2  # and a compression phase
    assert report.undone_epochs == len(undone)
    assert np.isfinite(report.metrics.psnr_yuv)


def test_encode_with_pruning_and_qat_decodes(tmp_path, chaplin) -> None:
    from nvcodec import EncodeOptions, encode, inspect
    from nvcodec.decoder import decode_frames
    from nvcodec.fileformat import read_nvc
    from nvcodec.models import build_model

    out = tmp_path / "p.nvc"
    opts = EncodeOptions(
        size=10_000,
        epochs=3,
        frames=(0, 4),
        device="cpu",
        prune_ratio=0.4,
        bits=6,
        code_bits=7,
        prune_epochs=1,
        qat_epochs=1,
    )
    report = encode(chaplin, out, opts)
    assert report.bytes == out.stat().st_size
    assert np.isfinite(report.metrics.psnr_yuv)
    frames = decode_frames(out, device="cpu")
    assert frames.y.shape[0] == 4
    nvc = read_nvc(out)
    assert nvc.metadata()["compression"]["prune_ratio"] == pytest.approx(0.4, abs=0.01)
    assert nvc.metadata()["compression"]["qat_epochs"] == 1
    skeleton = build_model(nvc.config, device="meta")
    shapes = [tuple(p.shape) for _, p in skeleton.named_parameters()]
    costs = tensor_costs(nvc.tensor_table, nvc.tensor_data, shapes)
    for (name, _), c in zip(skeleton.named_parameters(), costs, strict=True):
        assert c.bits == (7 if "codes" in name else 6)
    info = inspect(out)
    groups = {g.name: g for g in info.groups()}
    assert groups["codes"].bits == (7,)
    assert info.total().zeros > 0.3 * sum(
        t.numel for t in info.tensors if t.name.endswith("weight")
    )
    assert abs(info.total().payload_gap) < 0.05


@pytest.mark.parametrize("target", [1.2, 2.5])
def test_bpp_lands_within_15_percent(tmp_path, chaplin, target) -> None:
    from nvcodec import EncodeOptions, encode

    out = tmp_path / "r.nvc"
    opts = EncodeOptions(target_bpp=target, epochs=2, frames=(0, 8), device="cpu")
    report = encode(chaplin, out, opts)
    assert abs(report.bpp / target - 1) <= 0.15, report.bpp
    assert report.bpp == pytest.approx(8 * out.stat().st_size / (96 * 72 * 8))
