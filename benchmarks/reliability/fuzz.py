"""Long decoder fuzz run: mutate real ``.nvc`` files, decode each through the whole decoder.

::

    OMP_NUM_THREADS=1 python -m benchmarks.reliability.fuzz [-n 20000] [--seed 0] [--out DIR]

Seed files: tiny real encodes (epochs=1, 4 frames of chaplin_96x72_16f.mkv) of nerv, ds-nerv,
nerv++ and hnerv, plus the committed golden file. Each attempt picks a seed file and a mutator
(:mod:`benchmarks.reliability.mutators`) at random, writes the mutated file, and runs
``load_model`` + render one frame. Every outcome must be ``ok`` or a ``bitstream.NvcError``
subclass; anything else is counted as a BUG and its reproducer is saved under ``--out``.

Prints Markdown tables: outcomes by mutator and error type, the slowest attempt per mutator,
and the peak RSS of the whole run (``ru_maxrss``) next to the RSS after the warm-up.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import resource
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHAPLIN = ROOT / "tests" / "data" / "clips" / "chaplin_96x72_16f.mkv"
GOLDEN = ROOT / "tests" / "data" / "golden" / "golden_v1.nvc"
#: (model id, parameter budget): about the smallest each model allows at 96x72.
SEED_MODELS = (
    ("nerv", 8_000),
    ("ds-nerv", 4_000),
    ("nerv++", 14_000),
    ("hnerv", 6_000),
    ("hinerv", 6_000),
)


def make_seed_files(folder: Path) -> dict[str, bytes]:
    """Tiny real encodes of every model family, plus the golden file."""
    from nvcodec import EncodeOptions, encode

    files = {"golden": GOLDEN.read_bytes()}
    for model, size in SEED_MODELS:
        out = folder / f"{model}.nvc"
        options = EncodeOptions(
            model=model,
            size=size,
            epochs=1,
            prune_epochs=0,
            qat_epochs=0,
            frames=(0, 4),
            device="cpu",
            overwrite=True,
        )
        encode(CHAPLIN, out, options)
        files[model] = out.read_bytes()
    return files


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--attempts", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="where to save reproducers")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from benchmarks.reliability.mutators import MUTATORS, try_decode

    work = Path(tempfile.mkdtemp(prefix="nvc-fuzz-"))
    out = args.out or work / "bugs"
    files = make_seed_files(work)
    for data in files.values():  # warm-up: imports, first model builds
        (work / "warm.nvc").write_bytes(data)
        assert try_decode(work / "warm.nvc") == "ok"
    rss_warm = _rss_mib()

    rng = random.Random(args.seed)
    names, kinds = sorted(files), sorted(MUTATORS)
    table: dict[str, collections.Counter[str]] = {k: collections.Counter() for k in kinds}
    slowest: dict[str, float] = dict.fromkeys(kinds, 0.0)
    bugs = 0
    path = work / "m.nvc"
    begin = time.perf_counter()
    for i in range(args.attempts):
        source, kind = rng.choice(names), rng.choice(kinds)
        data = MUTATORS[kind](files[source], rng)
        path.write_bytes(data)
        try:
            outcome = try_decode(path)
        except Exception as exc:  # a bug: save the reproducer
            bugs += 1
            out.mkdir(parents=True, exist_ok=True)
            (out / f"bug_{i}_{kind}_{source}.nvc").write_bytes(data)
            print(f"BUG #{i} {kind} on {source}: {type(exc).__name__}: {exc}", file=sys.stderr)
            traceback.print_exc(limit=3)
            table[kind]["BUG " + type(exc).__name__] += 1
            continue
        table[kind][str(outcome)] += 1
        slowest[kind] = max(slowest[kind], outcome.seconds)
        if (i + 1) % 1000 == 0:
            print(f"{i + 1} attempts, {time.perf_counter() - begin:.0f} s", file=sys.stderr)
    elapsed = time.perf_counter() - begin

    columns = sorted({c for counts in table.values() for c in counts}, key=_column_order)
    print(
        f"\n{args.attempts} attempts, seed {args.seed}, {elapsed:.0f} s "
        f"({1000 * elapsed / max(args.attempts, 1):.1f} ms each), seed files: {', '.join(names)}\n"
    )
    print("| mutator | " + " | ".join(columns) + " | total | slowest (s) |")
    print("| --- | " + " | ".join("---:" for _ in columns) + " | ---: | ---: |")
    totals: collections.Counter[str] = collections.Counter()
    for kind in kinds:
        totals.update(table[kind])
        cells = " | ".join(str(table[kind].get(c, 0)) for c in columns)
        print(f"| {kind} | {cells} | {sum(table[kind].values())} | {slowest[kind]:.2f} |")
    cells = " | ".join(f"**{totals.get(c, 0)}**" for c in columns)
    print(f"| **all** | {cells} | **{sum(totals.values())}** | {max(slowest.values()):.2f} |")
    print(
        f"\npeak RSS: {_rss_mib():.0f} MiB (after warm-up: {rss_warm:.0f} MiB, growth "
        f"{_rss_mib() - rss_warm:.0f} MiB); bugs: {bugs}"
    )
    if bugs:
        print(f"reproducers in {out}")
    os.remove(path)
    return 1 if bugs else 0


def _column_order(name: str) -> tuple[int, str]:
    return (0 if name == "ok" else 2 if name.startswith("BUG") else 1, name)


if __name__ == "__main__":
    sys.exit(main())
