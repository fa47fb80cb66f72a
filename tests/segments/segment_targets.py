"""Segment-job targets for the runner tests; imported by name in worker processes (the test
puts this folder on ``sys.path``, which spawned workers inherit)."""

from __future__ import annotations

import os

from nvcodec.segment_jobs import SegmentJob, SegmentResult, encode_segment

MARKER_ENV = "NVC_TEST_KILL_MARKER"


def die_once(job: SegmentJob) -> SegmentResult:
    """Segment 1's first attempt kills its own worker process, as an OOM kill would."""
    marker = os.environ.get(MARKER_ENV, "")
    if job.index == 1 and marker and not os.path.exists(marker):
        with open(marker, "w"):
            pass
        os._exit(9)
    return encode_segment(job)


def fail_first(job: SegmentJob) -> SegmentResult:
    """Segment 0 fails at once; the others would train for a minute."""
    import time

    from nvcodec.errors import ConfigError

    if job.index == 0:
        raise ConfigError("segment 0 cannot be encoded")
    time.sleep(60)
    return encode_segment(job)
