"""Paired encodes: channels-last training (the default) against NCHW training, everything else
equal (seed, recipe, RD, decode layout); one JSON line per encode. Kept with its results.

    python benchmarks/results/throughput/training_layout/ab.py OUT.jsonl MODELS CLIPS...
"""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from nvcodec import EncodeOptions, encode


class NchwOptions(EncodeOptions):
    """The same options, with the recipe's training layout switched to NCHW."""

    def train_config(self):  # type: ignore[no-untyped-def]
        return dataclasses.replace(super().train_config(), channels_last=False)


def main() -> None:
    out, models, clips = Path(sys.argv[1]), sys.argv[2].split(","), sys.argv[3:]
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp, out.open("a") as log:
        for clip in clips:
            for model in models:
                for layout, cls in (("nchw", NchwOptions), ("channels-last", EncodeOptions)):
                    opts = cls(model=model, size=50_000, epochs=80, seed=0, device="cpu")
                    begin = time.perf_counter()
                    report = encode(
                        clip, Path(tmp) / "a.nvc", dataclasses.replace(opts, overwrite=True)
                    )
                    row = {
                        "clip": Path(clip).stem,
                        "model": model,
                        "train_layout": layout,
                        "bytes": report.bytes,
                        "psnr_yuv": report.metrics.psnr_yuv,
                        "train_s": report.seconds["train"],
                        "total_s": time.perf_counter() - begin,
                    }
                    print(json.dumps(row), file=log, flush=True)
                    print(row, flush=True)


if __name__ == "__main__":
    main()
