"""One segment's encode as a self-contained job, and the ways to run many of them.

A :class:`SegmentJob` is plain data (picklable, no open files or tensors), so the same job runs
in this process, in a local worker process (``--jobs``) or as a Ray task (``--ray``), and gives
the same bytes wherever it runs with the same thread count: a segment's file depends on the
threads it trains with (floating-point reduction order), so ``threads`` is part of the job.
Each runner returns :class:`SegmentResult` objects in segment order.

Local workers use :mod:`concurrent.futures` (spawned processes: torch and fork do not mix); a
worker that dies (killed, out of memory) breaks the pool, which is rebuilt and the unfinished
segments resubmitted, up to :data:`MAX_RETRIES` times. Ray is imported only by
:func:`run_ray`; its own task retries cover a lost worker or node.
"""

from __future__ import annotations

import concurrent.futures as futures
import multiprocessing
import os
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nvcodec.errors import ConfigError, NvcodecError

__all__ = [
    "MAX_RETRIES",
    "SegmentJob",
    "SegmentResult",
    "WorkerLostError",
    "encode_segment",
    "run_local",
    "run_pool",
    "run_ray",
]

MAX_RETRIES = 2
"""Times a segment is resubmitted after the worker running it died."""

Done = Callable[["SegmentResult"], None]


class WorkerLostError(NvcodecError, RuntimeError):
    """A segment's worker died more often than the retries allow."""


@dataclass(frozen=True)
class SegmentJob:
    """Encode source frames ``[start, stop)`` of ``source`` with ``options`` (whose ``frames``
    is that range) on ``threads`` CPU threads (0: leave torch's setting)."""

    index: int
    source: str
    start: int
    stop: int
    options: Any  # nvcodec.encoder.EncodeOptions (imported lazily: workers import it themselves)
    threads: int = 0

    @property
    def frames(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class SegmentResult:
    """A finished segment: its one-segment ``.nvc`` image and what its encode measured."""

    index: int
    image: bytes
    frames: int
    parameters: int
    metrics: Any  # nvcodec.io.QualityMetrics
    train_psnr: float
    seconds: float
    device: str
    compression: dict[str, Any]
    reused: bool = False  # kept from --checkpoint-dir, not encoded by this run


def encode_segment(
    job: SegmentJob,
    progress: Callable[..., None] | None = None,
    on_step: Callable[[str, int, int], None] | None = None,
) -> SegmentResult:
    """Run one job in this process (the body of every runner); the image is read back from
    the verified file the encoder wrote into a private temporary folder."""
    import torch

    from nvcodec.encoder import encode
    from nvcodec.io.video import VideoInputWarning

    if job.threads:
        torch.set_num_threads(job.threads)
    with warnings.catch_warnings(), tempfile.TemporaryDirectory(prefix="nvc-segment-") as folder:
        warnings.simplefilter("ignore", VideoInputWarning)  # said once, by the whole encode
        path = os.path.join(folder, "segment.nvc")
        report = encode(job.source, path, job.options, progress=progress, on_step=on_step)
        image = Path(path).read_bytes()
    return SegmentResult(
        index=job.index,
        image=image,
        frames=job.frames,
        parameters=report.parameters,
        metrics=report.metrics,
        train_psnr=report.train_psnr,
        seconds=report.seconds.get("total", 0.0),
        device=report.device,
        compression=dict(report.compression),
    )


def run_local(
    jobs: Sequence[SegmentJob],
    done: Done,
    progress: Callable[..., None] | None = None,
    on_step: Callable[[str, int, int], None] | None = None,
) -> list[SegmentResult]:
    """One after another in this process (``--jobs 1``), with per-step progress."""
    results = []
    for job in jobs:
        result = encode_segment(job, progress, on_step)
        done(result)
        results.append(result)
    return results


Target = Callable[[SegmentJob], SegmentResult]


def run_pool(
    jobs: Sequence[SegmentJob], workers: int, done: Done, target: Target = encode_segment
) -> list[SegmentResult]:
    """``workers`` local processes; a dead worker's segments are retried in a fresh pool.
    ``target`` runs one job in a worker (a module-level function, so a spawned worker can
    import it). Any other failure (a segment's error, Ctrl-C, SIGTERM) stops the workers at
    once: queued segments never start, and the finished ones have been handed to ``done``."""
    pending = {job.index: job for job in jobs}
    tries = dict.fromkeys(pending, 0)
    results: dict[int, SegmentResult] = {}
    context = multiprocessing.get_context("spawn")
    while pending:
        pool = futures.ProcessPoolExecutor(max_workers=workers, mp_context=context)
        try:
            running = [pool.submit(target, job) for job in pending.values()]
            for future in futures.as_completed(running):
                result = future.result()
                results[result.index] = result
                del pending[result.index]
                done(result)
        except futures.process.BrokenProcessPool:
            _count_crash(pending, tries)
        except BaseException:
            _stop(pool)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    return [results[job.index] for job in jobs]


def _count_crash(pending: dict[int, SegmentJob], tries: dict[int, int]) -> None:
    """A worker died (the pool cannot say which segment it ran): every unfinished segment
    counts one try, and after :data:`MAX_RETRIES` the encode stops, naming them all."""
    for i in pending:
        tries[i] += 1
    if max(tries[i] for i in pending) > MAX_RETRIES:
        names = ", ".join(map(str, sorted(pending)))
        raise WorkerLostError(
            f"a worker process died {MAX_RETRIES + 1} times while segments {names} were "
            "unfinished (out of memory, or killed)"
        ) from None


def _stop(pool: futures.ProcessPoolExecutor) -> None:
    """Cancel what is queued and terminate the workers (``shutdown`` alone would wait for
    every running segment to finish training)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())  # no public handle
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()


def run_ray(
    jobs: Sequence[SegmentJob], address: str, done: Done, target: Target = encode_segment
) -> list[SegmentResult]:
    """Each job as a Ray task (``num_gpus=1`` when the cluster has GPUs), retried by Ray when
    its worker dies; ``address`` ``auto`` joins a running cluster or starts a local one. Every
    node must see the input at the same path. On any failure the other tasks are cancelled."""
    ray = _import_ray()
    if not ray.is_initialized():
        _connect(ray, address)
    gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
    task = ray.remote(max_retries=MAX_RETRIES, num_gpus=gpus)(target)
    refs = {task.options(num_cpus=max(1, job.threads)).remote(job): job.index for job in jobs}
    results: dict[int, SegmentResult] = {}
    waiting = list(refs)
    try:
        while waiting:
            ready, waiting = ray.wait(waiting, num_returns=1)
            result = _ray_result(ray, ready[0], refs[ready[0]])
            results[result.index] = result
            done(result)
    except BaseException:
        for ref in waiting:
            ray.cancel(ref, force=True)
        raise
    return [results[job.index] for job in jobs]


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "--ray needs Ray: pip install 'nvcodec[ray]' (or pip install ray)"
        ) from None
    return ray


def _ray_result(ray: Any, ref: Any, index: int) -> SegmentResult:
    """The task's result; its own nvcodec/bitstream error as itself, a lost worker or node as
    :class:`WorkerLostError` (one line, no Ray traceback)."""
    from bitstream import NvcError

    try:
        return ray.get(ref)  # type: ignore[no-any-return]
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)  # the worker's own exception
        if isinstance(cause, NvcodecError | NvcError):
            raise cause from None
        raise
    except ray.exceptions.RayError as exc:  # worker crashed, node died, out of memory
        raise WorkerLostError(
            f"segment {index}: its Ray task failed {MAX_RETRIES + 1} times ({type(exc).__name__})"
        ) from None


def _connect(ray: Any, address: str) -> None:
    """``auto``: a running cluster if there is one, else a local one on this machine's CPUs."""
    if address != "auto":
        ray.init(address=address, log_to_driver=False)
        return
    try:
        ray.init(address="auto", log_to_driver=False)
    except ConnectionError:
        ray.init(log_to_driver=False)
