"""Fuzzing the whole decoder with mutated *real* files of every model family (issue #8).

Seed files are tiny real encodes (nerv, ds-nerv, nerv++, hnerv; 4 frames, 1 epoch) plus the
committed golden file. Each hypothesis example applies one mutator from
:mod:`benchmarks.reliability.mutators` — raw damage (stale CRCs) or crafted damage behind valid
CRCs (section table, section list, metadata JSON, in-bounds model configs, zstd payloads, tensor
table, entropy-coded data) — and runs ``load_model`` + render one frame. Every outcome must be a
decode of the right shape or a ``bitstream.NvcError`` with a one-line message; nothing else may
escape, no attempt may take long, and the run must not grow memory.

Derandomised with a bounded example count so CI stays fast; the long run is
``python -m benchmarks.reliability.fuzz`` (see docs/RELIABILITY.md).
"""

from __future__ import annotations

import collections
import resource
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.reliability.fuzz import make_seed_files
from benchmarks.reliability.mutators import MUTATORS, try_decode

EXAMPLES_PER_MUTATOR = 60
MAX_SECONDS_PER_ATTEMPT = 5.0  # typical: 5-20 ms; generous for a loaded 2-core CI machine
MAX_RSS_GROWTH_MIB = 500

OUTCOMES: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
SLOWEST: dict[str, float] = collections.defaultdict(float)


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    return make_seed_files(tmp_path_factory.mktemp("fuzz-seeds"))


@pytest.fixture(scope="module")
def baseline_rss(seeds: dict[str, bytes], tmp_path_factory: pytest.TempPathFactory) -> float:
    """Peak RSS after every seed file decoded once (imports and first model builds done)."""
    folder = tmp_path_factory.mktemp("fuzz-warm")
    for name, data in seeds.items():
        path = folder / f"{name}.nvc"
        path.write_bytes(data)
        assert try_decode(path) == "ok", name
    return _rss_mib()


def test_seed_files_cover_every_model_family(seeds: dict[str, bytes], baseline_rss: float):
    assert set(seeds) == {"golden", "nerv", "ds-nerv", "nerv++", "hnerv", "hinerv"}
    assert all(1_000 < len(data) < 20_000 for data in seeds.values())


@pytest.mark.parametrize("kind", sorted(MUTATORS))
def test_mutated_files_decode_or_fail_with_a_documented_error(
    kind: str, seeds: dict[str, bytes], baseline_rss: float, tmp_path: Path
):
    path = tmp_path / "fuzzed.nvc"
    names = sorted(seeds)

    @settings(
        max_examples=EXAMPLES_PER_MUTATOR,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(source=st.sampled_from(names), rng=st.randoms(use_true_random=False))
    def attempt(source, rng):
        path.write_bytes(MUTATORS[kind](seeds[source], rng))
        # try_decode lets only NvcError through as an outcome and checks the one-line message;
        # any other exception fails the example (and hypothesis shrinks it).
        outcome = try_decode(path)
        OUTCOMES[kind][str(outcome)] += 1
        SLOWEST[kind] = max(SLOWEST[kind], outcome.seconds)
        assert outcome.seconds < MAX_SECONDS_PER_ATTEMPT, (source, outcome, outcome.message)
        if outcome != "ok":
            assert outcome.message.startswith(str(path)) or outcome.message.startswith(
                ("tensor table:", "tensor data:")
            ), outcome.message

    attempt()
    if kind in {"bit_flips", "truncate", "insert", "delete"}:
        # Raw damage leaves a stale checksum or breaks the tiling: never decodes.
        assert "ok" not in OUTCOMES[kind], OUTCOMES[kind]


def test_the_fuzz_run_stayed_bounded_in_memory_and_time(baseline_rss: float):
    if len(OUTCOMES) < len(MUTATORS):
        pytest.skip("needs the whole module's fuzz run (run without -k)")
    total = collections.Counter()
    for counts in OUTCOMES.values():
        total.update(counts)
    # The run reached deep into the decoder: container, metadata and tensor-layer refusals and
    # crafted files that still decode.
    assert {"ok", "ChecksumError", "MalformedFileError", "TruncatedFileError"} <= set(total)
    assert sum(total.values()) >= len(MUTATORS) * EXAMPLES_PER_MUTATOR // 2
    assert _rss_mib() - baseline_rss < MAX_RSS_GROWTH_MIB, (_rss_mib(), baseline_rss)
    assert max(SLOWEST.values()) < MAX_SECONDS_PER_ATTEMPT
