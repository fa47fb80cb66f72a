"""Training checkpoints: the container, damage, fingerprints, bit-exact resume (loop, pipeline)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import torch

from bitstream import ChecksumError, MalformedFileError, NvcError, TruncatedFileError
from nvcodec import EncodeOptions, encode
from nvcodec.errors import ConfigError, OutputError
from nvcodec.models import build_model
from nvcodec.models.hnerv import hnerv_sizing
from nvcodec.models.nerv import nerv_sizing
from nvcodec.training import TrainConfig, train
from nvcodec.training.checkpoint import (
    CHECKPOINT_NAME,
    Checkpoint,
    Checkpointer,
    CheckpointMismatchError,
    NoCheckpointError,
    TrainState,
    compare_fingerprints,
    load_checkpoint,
    save_checkpoint,
)

HEIGHT, WIDTH, FRAMES = 16, 24, 4


def _frames(count: int = FRAMES, height: int = HEIGHT, width: int = WIDTH) -> torch.Tensor:
    t = torch.arange(float(count))[:, None, None, None]
    c = torch.arange(3.0)[None, :, None, None]
    y = torch.arange(float(height))[None, None, :, None]
    x = torch.arange(float(width))[None, None, None, :]
    return (0.5 + 0.4 * torch.sin(x / 5 + t * 0.7 + c) * torch.cos(y / 4)).float()


def _state(**changes) -> TrainState:
    values = {
        "epoch": 3,
        "epochs": 6,
        "loss": 0.0123,
        "seconds": 1.5,
        "model": {
            "w": torch.randn(3, 4),
            "h": torch.randn(5).half(),
            "b": torch.randn(2, 2).bfloat16(),
            "d": torch.randn(3).double(),
            "i": torch.arange(6).reshape(2, 3),
            "i32": torch.arange(4, dtype=torch.int32),
            "i16": torch.arange(4, dtype=torch.int16) - 2,
            "i8": torch.arange(4, dtype=torch.int8) - 2,
            "e": torch.zeros(0, 3),
            "s": torch.tensor(2.5),
        },
        "encoder": {"conv.weight": torch.randn(2, 1, 3, 3)},
        "optimizer_state": {
            0: {"step": torch.tensor(7.0), "exp_avg": torch.randn(3, 4)},
            1: {"step": 7, "exp_avg": torch.randn(5)},
        },
        "optimizer_groups": [
            {"params": [0], "lr": 1e-3, "initial_lr": 2e-3, "betas": [0.9, 0.999]},
            {"params": [1], "lr": 1e-2, "initial_lr": 2e-2, "betas": [0.9, 0.999]},
        ],
        "scheduler": {"last_epoch": 12, "base_lrs": [2e-3, 2e-2], "_last_lr": [1e-3, 1e-2]},
        "generator": torch.Generator().manual_seed(5).get_state(),
        "rng": torch.get_rng_state(),
    }
    values.update(changes)
    return TrainState(**values)


def _equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(
        a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and torch.equal(a[k], b[k]) for k in a
    )


# --------------------------------------------------------------------------- container


def test_round_trip_every_dtype(tmp_path: Path) -> None:
    state = _state()
    masks = {"head.0": torch.rand(3, 4) > 0.5}
    ckpt = Checkpoint(
        phase="qat",
        state=state,
        fingerprint={"input": {"frames_sha256": "ab"}, "options": {"epochs": 6}},
        data={"bits": 6, "note": "x"},
        masks=masks,
        history={"train": {"psnr": 30.5}},
    )
    path = tmp_path / "c.nvck"
    size = save_checkpoint(path, ckpt)
    assert size == path.stat().st_size
    got = load_checkpoint(path)
    assert (got.phase, got.data, got.history, got.fingerprint) == (
        "qat",
        ckpt.data,
        ckpt.history,
        ckpt.fingerprint,
    )
    s = got.state
    assert (s.epoch, s.epochs, s.loss, s.seconds) == (3, 6, 0.0123, 1.5)
    assert _equal(s.model, state.model)
    assert s.encoder is not None
    assert _equal(s.encoder, state.encoder or {})
    assert _equal(got.masks, masks)
    assert got.masks["head.0"].dtype == torch.bool
    assert torch.equal(s.generator, state.generator)
    assert torch.equal(s.rng, state.rng)
    assert s.optimizer_state[1]["step"] == 7
    assert isinstance(s.optimizer_state[1]["step"], int)
    assert torch.equal(s.optimizer_state[0]["step"], torch.tensor(7.0))
    assert torch.equal(s.optimizer_state[0]["exp_avg"], state.optimizer_state[0]["exp_avg"])
    assert s.optimizer_groups == state.optimizer_groups
    assert s.scheduler == state.scheduler
    # No encoder, non-finite loss.
    save_checkpoint(path, Checkpoint("train", _state(encoder=None, loss=math.nan)))
    again = load_checkpoint(path)
    assert again.state.encoder is None
    assert math.isnan(again.state.loss)
    # The file is a pickle-free bitstream container.
    assert path.read_bytes()[:4] == b"\x89NVC"


def test_damaged_checkpoints_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.nvck"
    save_checkpoint(path, Checkpoint("train", _state()))
    data = path.read_bytes()
    (tmp_path / "t.nvck").write_bytes(data[: len(data) // 2])
    with pytest.raises(TruncatedFileError, match=r"t\.nvck: truncated"):
        load_checkpoint(tmp_path / "t.nvck")
    flipped = bytearray(data)
    flipped[-10] ^= 0x01
    (tmp_path / "f.nvck").write_bytes(bytes(flipped))
    with pytest.raises(ChecksumError, match=r"f\.nvck"):
        load_checkpoint(tmp_path / "f.nvck")
    (tmp_path / "e.nvck").write_bytes(b"")
    with pytest.raises(NvcError):
        load_checkpoint(tmp_path / "e.nvck")


def test_inconsistent_tensor_table_is_refused(tmp_path: Path) -> None:
    from bitstream import Section, SectionType, encode_metadata, read_file, write_file
    from bitstream import decode_metadata as decode

    path = tmp_path / "c.nvck"
    save_checkpoint(path, Checkpoint("train", _state()))
    container = read_file(path)
    meta = decode(container.get(SectionType.METADATA).data)
    blob = container.get(SectionType.TENSOR_DATA).data

    def rewrite(change, blob=blob) -> Path:
        new = {**meta, "tensors": [dict(t) for t in meta["tensors"]]}
        change(new)
        out = tmp_path / "bad.nvck"
        write_file(
            out,
            [
                Section(SectionType.METADATA, encode_metadata(new)),
                Section(SectionType.TENSOR_DATA, blob),
            ],
        )
        return out

    cases = [
        (lambda m: m["tensors"][0].update(nbytes=m["tensors"][0]["nbytes"] + 4), "do not hold"),
        (lambda m: m["tensors"][0].update(shape=[1 << 40, 1 << 30]), "do not hold"),
        (lambda m: m["tensors"][1].update(offset=0), "expected"),
        (lambda m: m["tensors"][0].update(dtype="complex64"), "unknown dtype"),
        (lambda m: m["tensors"].pop(), "not in the tensor table"),
        (lambda m: m.update(phase="warmup"), "unknown phase"),
        (lambda m: m.update(format="other"), "not an nvcodec checkpoint"),
        (lambda m: m.update(epoch="3"), "'epoch'"),
    ]
    for change, needle in cases:
        with pytest.raises(MalformedFileError, match=needle):
            load_checkpoint(rewrite(change))
    # A tensor that claims more bytes than the section holds.
    short = rewrite(lambda m: None, blob=blob[:-8])
    with pytest.raises(MalformedFileError, match="ends at byte"):
        load_checkpoint(short)


# --------------------------------------------------------------------------- fingerprints


def test_fingerprint_mismatch_is_refused(tmp_path: Path) -> None:
    fp = {"info": {"input": "a.mkv"}, "input": {"frames_sha256": "1" * 64}, "options": {"e": 4}}
    ck = Checkpointer(tmp_path, fp)
    with pytest.raises(NoCheckpointError, match="no checkpoint to resume from"):
        ck.load()
    ck.save("train", _state())
    assert ck.load().phase == "train"
    # Only the informational part differs: accepted.
    moved = {**fp, "info": {"input": "b.mkv"}}
    assert Checkpointer(tmp_path, moved).load().state.epoch == 3
    other = {**fp, "options": {"e": 5}}
    with pytest.raises(CheckpointMismatchError, match=r"options\.e: 4 in the checkpoint, 5 now"):
        Checkpointer(tmp_path, other).load()
    frames = {**fp, "input": {"frames_sha256": "2" * 64}}
    with pytest.raises(ConfigError, match=r"input\.frames_sha256"):
        Checkpointer(tmp_path, frames).load()
    assert compare_fingerprints(fp, {**fp, "new": 1}) == ["new: not in the checkpoint, 1 now"]


def test_checkpointer_schedule_and_cleanup(tmp_path: Path) -> None:
    now = [0.0]
    ck = Checkpointer(tmp_path, {}, every_epochs=None, every_seconds=10.0, clock=lambda: now[0])
    hook = ck.hook("train")
    captured = []

    def capture() -> TrainState:
        captured.append(1)
        return _state()

    hook(1, 5, capture)  # not due
    now[0] = 11.0
    hook(2, 5, capture)  # 11 s passed
    hook(3, 5, capture)  # not due again
    hook(5, 5, capture)  # end of the phase
    assert ck.saves == 2
    assert len(captured) == 2
    stale = tmp_path / f".{CHECKPOINT_NAME}.abc.tmp"
    stale.write_bytes(b"half")
    ck.remove()
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- bit-exact resume


class _Stop(Exception):
    pass


def _resume_matches(
    make_model, frames: torch.Tensor, config: TrainConfig, tmp: Path, at: int = 3
) -> None:
    straight = make_model()
    train(straight, frames, config)

    ck = Checkpointer(tmp, {"t": 1}, every_epochs=at, every_seconds=None)
    first = make_model()

    def stop(stats) -> None:
        if stats.epoch == at:
            raise _Stop

    with pytest.raises(_Stop):
        train(first, frames, config, callback=stop, checkpoint=ck.hook("train"))
    torch.manual_seed(1234)  # the global RNG is part of the state too
    resumed = make_model()
    saved = ck.load()
    assert saved.state.epoch == at
    seen = []
    result = train(resumed, frames, config, callback=seen.append, resume=saved.state)
    assert [s.epoch for s in seen] == list(range(at + 1, config.epochs + 1))
    assert math.isfinite(result.final_loss)
    a, b = straight.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("optimizer", ["adam", "adan"])
def test_resume_is_bit_exact(tmp_path: Path, optimizer: str) -> None:
    def make() -> torch.nn.Module:
        torch.manual_seed(0)
        return build_model(nerv_sizing(HEIGHT, WIDTH, FRAMES, 2))

    betas = (0.9, 0.999) if optimizer == "adam" else (0.98, 0.92, 0.99)
    config = TrainConfig(epochs=6, batch_size=3, optimizer=optimizer, lr=5e-3, betas=betas, seed=2)
    _resume_matches(make, _frames(), config, tmp_path)


def test_resume_is_bit_exact_across_undone_epochs(tmp_path: Path) -> None:
    def make() -> torch.nn.Module:
        torch.manual_seed(0)
        return build_model(nerv_sizing(HEIGHT, WIDTH, FRAMES, 2))

    # lr 0.3 diverges here in epoch 2, the checkpoint's: the resumed run must accept epoch 3
    # as the uninterrupted one does (no reference after an undone epoch).
    config = TrainConfig(epochs=6, batch_size=3, lr=0.3, warmup=0.0, seed=2)
    seen = []
    train(make(), _frames(), config, callback=seen.append)
    assert [s.epoch for s in seen if s.undone] == [2]
    _resume_matches(make, _frames(), config, tmp_path, at=2)


def test_resume_is_bit_exact_for_hybrid_models(tmp_path: Path) -> None:
    def make() -> torch.nn.Module:
        torch.manual_seed(0)
        return build_model(hnerv_sizing(24, 40, 4, 4))

    config = TrainConfig(epochs=6, batch_size=2, lr=2e-3, seed=1)
    _resume_matches(make, _frames(4, 24, 40), config, tmp_path)


def test_resume_refuses_another_schedule(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model(nerv_sizing(HEIGHT, WIDTH, FRAMES, 2))
    ck = Checkpointer(tmp_path, {}, every_epochs=1)
    train(model, _frames(), TrainConfig(epochs=2, seed=1), checkpoint=ck.hook("train"))
    with pytest.raises(ValueError, match="2 epochs, not 3"):
        train(model, _frames(), TrainConfig(epochs=3, seed=1), resume=ck.load().state)


# --------------------------------------------------------------------------- pipeline phases


CHAPLIN = Path(__file__).resolve().parents[1] / "data" / "clips" / "chaplin_96x72_16f.mkv"
PIPE = EncodeOptions(
    size=8_000,
    epochs=4,
    prune_epochs=3,
    qat_epochs=3,
    frames=(0, 2),
    device="cpu",
    seed=4,
    target_bpp=2.0,
)


@pytest.fixture(scope="module")
def straight_encode(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    out = tmp_path_factory.mktemp("straight") / "s.nvc"
    encode(CHAPLIN, out, PIPE)
    return out.read_bytes()


def _interrupted_encode(out: Path, opts: EncodeOptions, stop_at: int) -> list:
    """Encode until the ``stop_at``-th progress call, which raises KeyboardInterrupt; returns
    the progress calls seen."""
    calls = []

    def interrupt(stats) -> None:
        calls.append(stats)
        if len(calls) == stop_at:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        encode(CHAPLIN, out, opts, progress=interrupt)
    return calls


@pytest.mark.parametrize(("stop_at", "phase"), [(2, "train"), (5, "prune"), (9, "qat")])
def test_every_phase_resumes_to_the_same_file(
    tmp_path: Path, straight_encode: bytes, stop_at: int, phase: str
) -> None:
    ckdir = tmp_path / "ck"
    opts = dataclasses.replace(PIPE, checkpoint_dir=str(ckdir), checkpoint_every=1)
    out = tmp_path / "r.nvc"
    _interrupted_encode(out, opts, stop_at)
    assert not out.exists()
    saved = load_checkpoint(ckdir / CHECKPOINT_NAME)
    assert saved.phase == phase
    if phase != "train":
        assert saved.masks  # pruning masks travel with the fine-tune phases
    if phase == "qat":
        assert {"bits", "code_bits", "prune_ratio"} <= saved.data.keys()
    report = encode(CHAPLIN, out, dataclasses.replace(opts, resume=True))
    assert out.read_bytes() == straight_encode
    assert report.bytes == len(straight_encode)
    assert not (ckdir / CHECKPOINT_NAME).exists()  # removed after success


def test_resume_with_undone_epochs_writes_the_same_file_and_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With every compared epoch judged diverged (threshold 0), epochs are undone in training,
    the pruned fine-tune and QAT; an encode interrupted in QAT and resumed writes the same file
    and reports the same count (finished phases keep theirs in the checkpoint's history)."""
    from nvcodec.training import rollback

    monkeypatch.setattr(rollback, "DIVERGED", 0.0)
    straight = encode(CHAPLIN, tmp_path / "s.nvc", PIPE)
    assert straight.undone_epochs >= 3
    opts = dataclasses.replace(PIPE, checkpoint_dir=str(tmp_path / "ck"), checkpoint_every=1)
    calls = _interrupted_encode(tmp_path / "r.nvc", opts, 8)
    assert (calls[-1].phase, calls[-1].epoch) == ("qat", 1)  # accepted: nothing to compare with
    resumed = encode(CHAPLIN, tmp_path / "r.nvc", dataclasses.replace(opts, resume=True))
    assert (tmp_path / "r.nvc").read_bytes() == (tmp_path / "s.nvc").read_bytes()
    assert resumed.undone_epochs == straight.undone_epochs


def test_encode_resume_errors(tmp_path: Path) -> None:
    ckdir = tmp_path / "ck"
    opts = dataclasses.replace(PIPE, checkpoint_dir=str(ckdir), resume=True)
    with pytest.raises(NoCheckpointError, match="no checkpoint"):
        encode(CHAPLIN, tmp_path / "a.nvc", opts)
    with pytest.raises(ConfigError, match="--resume needs"):
        encode(CHAPLIN, tmp_path / "a.nvc", dataclasses.replace(PIPE, resume=True))
    with pytest.raises(OutputError, match="does not exist"):
        encode(
            CHAPLIN,
            tmp_path / "a.nvc",
            dataclasses.replace(PIPE, checkpoint_dir=str(tmp_path / "no" / "ck")),
        )
    # Interrupted encode, then a resume with other options.
    first = dataclasses.replace(PIPE, checkpoint_dir=str(ckdir), checkpoint_every=1)

    def stop(stats) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        encode(CHAPLIN, tmp_path / "a.nvc", first, progress=stop)
    changed = dataclasses.replace(first, resume=True, seed=5)
    with pytest.raises(CheckpointMismatchError, match=r"options\.seed: 4 in the checkpoint, 5"):
        encode(CHAPLIN, tmp_path / "a.nvc", changed)
    # The same options on a machine that trains in the other arithmetic (AMX or not).
    import torch

    amx = torch.cpu._is_amx_tile_supported
    try:
        torch.cpu._is_amx_tile_supported = lambda: not amx()
        with pytest.raises(CheckpointMismatchError, match=r"bf16_autocast: "):
            encode(CHAPLIN, tmp_path / "a.nvc", dataclasses.replace(first, resume=True))
    finally:
        torch.cpu._is_amx_tile_supported = amx
    # A fresh encode into a folder holding a checkpoint must not silently discard it.
    with pytest.raises(ConfigError, match="--resume"):
        encode(CHAPLIN, tmp_path / "a.nvc", first)
    assert not (tmp_path / "a.nvc").exists()


RD_PIPE = dataclasses.replace(
    PIPE, qat_epochs=None, lam="auto", rd_epochs=3, prune_ratio=0.2, target_bpp=None
)


@pytest.fixture(scope="module")
def straight_rd_encode(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    out = tmp_path_factory.mktemp("straight_rd") / "s.nvc"
    encode(CHAPLIN, out, RD_PIPE)
    return out.read_bytes()


@pytest.mark.parametrize(("stop_at", "saved_phase"), [(2, "train"), (9, "prune")])
def test_rd_encode_interrupted_in_any_phase_resumes_to_the_same_file(
    tmp_path: Path, straight_rd_encode: bytes, stop_at: int, saved_phase: str
) -> None:
    """RD phases are not checkpointed: an interruption in them (progress call 9 is the second
    RD epoch) resumes from the end of the prune fine-tune and repeats them."""
    ckdir = tmp_path / "ck"
    opts = dataclasses.replace(RD_PIPE, checkpoint_dir=str(ckdir), checkpoint_every=1)
    out = tmp_path / "r.nvc"
    calls = _interrupted_encode(out, opts, stop_at)
    assert calls[-1].phase == ("rd" if stop_at == 9 else "train")
    assert load_checkpoint(ckdir / CHECKPOINT_NAME).phase == saved_phase
    encode(CHAPLIN, out, dataclasses.replace(opts, resume=True))
    assert out.read_bytes() == straight_rd_encode
