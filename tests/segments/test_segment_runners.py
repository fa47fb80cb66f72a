"""Segments run here, in local worker processes and as Ray tasks give the same file; a worker
killed mid-segment is retried; an interrupted encode resumes with only the missing segments."""

from __future__ import annotations

import dataclasses
import importlib
import sys
from pathlib import Path

import pytest

from nvcodec.errors import ConfigError
from nvcodec.scenes import SegmentRule
from nvcodec.segment_encoder import Execution, encode_video, plan_video
from nvcodec.segment_jobs import SegmentResult, run_local, run_pool, run_ray

from .conftest import CLIP, tiny_options

HERE = Path(__file__).parent


@pytest.fixture
def die_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The kill-once target, importable by name in spawned workers (sys.path is inherited)."""
    monkeypatch.syspath_prepend(str(HERE))
    targets = importlib.import_module("segment_targets")
    monkeypatch.setenv(targets.MARKER_ENV, str(tmp_path / "killed"))
    yield targets
    sys.modules.pop("segment_targets", None)


def _jobs():  # type: ignore[no-untyped-def]
    return plan_video(str(CLIP), tiny_options(), SegmentRule(length=6), Execution(threads=1)).jobs


def test_pool_retries_a_killed_worker_and_matches_this_process(
    segmented, die_once, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    path, _ = segmented
    seen: list[int] = []
    results = run_pool(_jobs(), 2, lambda r: seen.append(r.index), target=die_once.die_once)
    assert (tmp_path / "killed").exists()  # segment 1's first worker really died
    assert sorted(seen) == [0, 1, 2]
    here = run_local(_jobs()[:1], lambda r: None)
    assert results[0].image == here[0].image  # same job, same threads: same bytes anywhere
    from nvcodec.segmented import open_video

    with open_video(path) as nv:  # the fixture's first segment was made in this process
        assert len(results[0].image) == nv.entries[0].length


def test_a_failing_segment_stops_the_pool_at_once(die_once) -> None:  # type: ignore[no-untyped-def]
    """The error surfaces without waiting for the queued or running segments to train."""
    import time

    jobs = _jobs()
    start = time.perf_counter()
    with pytest.raises(ConfigError, match="segment 0 cannot"):
        run_pool(list(jobs) * 3, 2, lambda r: None, target=die_once.fail_first)
    assert time.perf_counter() - start < 40  # the other segments would sleep 60 s each


def test_ray_retries_a_killed_worker(segmented, die_once, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ray = pytest.importorskip("ray")
    ray.cloudpickle.register_pickle_by_value(die_once)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        results = run_ray(_jobs(), "auto", lambda r: None, target=die_once.die_once)
    finally:
        ray.shutdown()
    assert (tmp_path / "killed").exists()
    expected = run_local(_jobs(), lambda r: None)
    assert [r.image for r in results] == [r.image for r in expected]


def test_resume_encodes_only_missing_segments(segmented, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path, _ = segmented
    folder = tmp_path / "ckpt"
    out = tmp_path / "out.nvc"

    def stop_after_first(result: SegmentResult, done: int, total: int) -> None:
        raise KeyboardInterrupt

    options = tiny_options(checkpoint_dir=str(folder))
    with pytest.raises(KeyboardInterrupt):
        encode_video(
            CLIP,
            out,
            options,
            SegmentRule(length=6),
            Execution(threads=1),
            on_segment=stop_after_first,
        )
    assert not out.exists()
    assert sorted(p.name for p in folder.iterdir()) == ["segment-00000.json", "segment-00000.nvc"]
    with pytest.raises(ConfigError, match="--resume"):
        encode_video(CLIP, out, options, SegmentRule(length=6), Execution(threads=1))
    encoded: list[tuple[int, bool]] = []
    resumed = tiny_options(checkpoint_dir=str(folder), resume=True)
    encode_video(
        CLIP,
        out,
        resumed,
        SegmentRule(length=6),
        Execution(threads=1),
        on_segment=lambda r, d, t: encoded.append((r.index, r.reused)),
    )
    assert encoded == [(0, True), (1, False), (2, False)]  # segment 0 came from the folder
    assert out.read_bytes() == path.read_bytes()
    assert list(folder.iterdir()) == []


def test_changed_options_do_not_reuse_stored_segments(tmp_path: Path) -> None:
    from nvcodec.segment_store import SegmentStore

    folder = tmp_path / "ckpt"
    jobs = _jobs()
    store = SegmentStore.open(tiny_options(checkpoint_dir=str(folder)), jobs, ["a", "b", "c"])
    assert store is not None
    result = run_local(jobs[:1], lambda r: None)[0]
    store.save(jobs[0], result)
    again = SegmentStore.open(
        tiny_options(checkpoint_dir=str(folder), resume=True), jobs, ["a", "b", "c"]
    )
    assert again is not None
    assert again.load(jobs[0]) == dataclasses.replace(result, reused=True)
    other = SegmentStore.open(
        tiny_options(checkpoint_dir=str(folder), resume=True), jobs, ["changed", "b", "c"]
    )
    assert other is not None
    assert other.load(jobs[0]) is None


def test_segments_trained_in_another_arithmetic_are_not_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from nvcodec.segment_store import SegmentStore

    folder = tmp_path / "ckpt"
    jobs = _jobs()
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    store = SegmentStore.open(tiny_options(checkpoint_dir=str(folder)), jobs, ["a", "b", "c"])
    assert store is not None
    store.save(jobs[0], run_local(jobs[:1], lambda r: None)[0])
    resume = tiny_options(checkpoint_dir=str(folder), resume=True)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)  # moved to AMX
    amx = SegmentStore.open(resume, jobs, ["a", "b", "c"])
    assert amx is not None
    assert amx.load(jobs[0]) is None
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    back = SegmentStore.open(resume, jobs, ["a", "b", "c"])
    assert back is not None
    assert back.load(jobs[0]) is not None


def test_execution_options_checked() -> None:
    for bad in (Execution(jobs=0), Execution(threads=-1), Execution(jobs=2, ray="auto")):
        with pytest.raises(ConfigError):
            bad.validate()
