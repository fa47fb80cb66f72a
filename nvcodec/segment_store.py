"""Finished segments kept in ``--checkpoint-dir``, so that ``--resume`` encodes only the rest.

Each finished segment is two files written atomically: ``segment-NNNNN.nvc`` (its verified
one-segment image) and ``segment-NNNNN.json`` (what must match for it to be reused: the
content hash of its frames, its frame span, every option of its encode, the threads it trained
with and the versions; plus what its encode measured). A segment whose record does not match
the current plan is encoded again, never reused. The folder's segment files are removed once
the whole file is written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from typing import Any

import torch

from bitstream import NvcError, unpack
from nvcodec import __version__
from nvcodec.device import resolve_device
from nvcodec.encoder import prepare_checkpoint_folder
from nvcodec.errors import ConfigError
from nvcodec.io import QualityMetrics
from nvcodec.segment_jobs import SegmentJob, SegmentResult
from nvcodec.training.checkpoint import NoCheckpointError
from nvcodec.training.loop import uses_autocast

__all__ = ["SegmentStore"]


class SegmentStore:
    """The segment files of one segmented encode in one folder."""

    def __init__(self, folder: str, fingerprints: dict[int, dict[str, Any]]) -> None:
        self.folder = folder
        self.fingerprints = fingerprints

    @staticmethod
    def check(options: Any) -> None:
        """Before anything is read: the folder can be used (created now if only it is missing),
        and ``--resume`` only where there is something to resume, never a silent restart over
        old segments (the same rules as a one-segment encode's checkpoint)."""
        folder = options.checkpoint_dir
        if not folder:
            return
        prepare_checkpoint_folder(folder)
        existing = glob.glob(os.path.join(glob.escape(folder), "segment-*.json"))
        if options.resume and not existing:
            raise NoCheckpointError(f"{folder}: no finished segments to resume from")
        if existing and not options.resume:
            raise ConfigError(
                f"{folder}: finished segments of an interrupted encode are there; continue it "
                "with --resume, or delete them (or use another --checkpoint-dir) to start over"
            )

    @classmethod
    def open(
        cls, options: Any, jobs: Sequence[SegmentJob], digests: Sequence[str]
    ) -> SegmentStore | None:
        """The store of ``options.checkpoint_dir`` (None without one), checked by :meth:`check`."""
        if not options.checkpoint_dir:
            return None
        cls.check(options)
        prints = {job.index: _fingerprint(job, d) for job, d in zip(jobs, digests, strict=True)}
        return cls(options.checkpoint_dir, prints)

    def _paths(self, index: int) -> tuple[str, str]:
        base = os.path.join(self.folder, f"segment-{index:05d}")
        return base + ".nvc", base + ".json"

    def load(self, job: SegmentJob) -> SegmentResult | None:
        """The finished segment of ``job``, if one matching it is stored and intact."""
        image_path, record_path = self._paths(job.index)
        try:
            with open(record_path, encoding="utf-8") as f:
                record = json.load(f)
            with open(image_path, "rb") as f:
                image = f.read()
            unpack(image, name=image_path)  # every checksum, before it is reused
        except (OSError, ValueError, NvcError):
            return None
        if record.get("fingerprint") != self.fingerprints[job.index]:
            return None
        if record.get("image_sha256") != hashlib.sha256(image).hexdigest():
            return None  # the image of another record (a save interrupted between the two)
        result = record["result"]
        metrics = QualityMetrics(**result.pop("metrics"))
        return SegmentResult(image=image, metrics=metrics, reused=True, **result)

    def save(self, job: SegmentJob, result: SegmentResult) -> None:
        image_path, record_path = self._paths(job.index)
        fields = {
            f.name: getattr(result, f.name)
            for f in dataclasses.fields(result)
            if f.name not in ("image", "reused")
        }
        fields["metrics"] = result.metrics.to_dict()
        record = {
            "fingerprint": self.fingerprints[job.index],
            "image_sha256": hashlib.sha256(result.image).hexdigest(),
            "result": fields,
        }
        _atomic(image_path, result.image)
        _atomic(record_path, json.dumps(record).encode())

    def remove(self) -> None:
        for path in glob.glob(os.path.join(glob.escape(self.folder), "segment-*.*")):
            with contextlib.suppress(OSError):
                os.unlink(path)


def _fingerprint(job: SegmentJob, digest: str) -> dict[str, Any]:
    device = resolve_device(job.options.device)
    options = {
        f.name: list(v) if isinstance(v := getattr(job.options, f.name), tuple) else v
        for f in dataclasses.fields(job.options)
    }
    return {
        "frames_sha256": digest,
        "span": [job.start, job.stop],
        "options": options,
        "threads": job.threads,
        # this machine's arithmetic: a store moved to a machine with(out) AMX is not reused
        "bf16_autocast": uses_autocast(job.options.train_config(), device),
        "versions": {"nvcodec": __version__, "torch": torch.__version__},
    }


def _atomic(path: str, blob: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".segment-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
