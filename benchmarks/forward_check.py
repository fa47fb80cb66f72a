"""Network forward speed and a hash of its output, to compare two versions of the code (#16).

    python -m benchmarks.forward_check --models ds-nerv,hnerv --size 0.35M --width 640 --height 320

For each model: the config ``nvc encode`` would solve for ``--frames`` frames, seeded random
weights, one decode batch (the rule of the ``--layout``, default the one new files declare) of
frame positions 0, 1, …, rendered in inference mode with the decoder's float32 settings. Prints
the median frames/s of ``--repeats`` runs and the SHA-256 of the float output. Run it from two
checkouts (``cd`` into each: the working directory's ``nvcodec`` is imported), alternating, on
an idle machine: the hashes must be equal (a speed-up may not change a decoded value) and the
speeds compare the hot path alone, without the file, entropy decoding or writing that
``benchmarks.throughput``'s end-to-end figure adds.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import time

import torch

from nvcodec.decode_layout import DEFAULT_LAYOUT, LAYOUTS, frames_per_batch, prepare
from nvcodec.device import full_fp32
from nvcodec.models import build_model, parse_size, solve_config


def check(
    model_id: str, height: int, width: int, frames: int, budget: int, repeats: int, layout: str
) -> str:
    """One model's line: frames/s (median) and the output's SHA-256 prefix."""
    config = solve_config(model_id, height, width, frames, budget)
    torch.manual_seed(0)
    model = prepare(build_model(config), layout).eval()
    batch = frames_per_batch(layout, config.activation_elements(), frames)
    positions = torch.arange(float(batch))
    seconds = []
    with torch.inference_mode(), full_fp32():
        output = model(positions)  # warm-up
        for _ in range(repeats):
            begin = time.perf_counter()
            output = model(positions)
            seconds.append(time.perf_counter() - begin)
    digest = hashlib.sha256(output.contiguous().numpy().tobytes()).hexdigest()[:16]
    fps = batch / statistics.median(seconds)
    return f"{model_id:12s} {width}x{height} batch {batch:2d}  {fps:7.2f} frames/s  sha256 {digest}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="ds-nerv")
    parser.add_argument("--size", default="0.35M")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=320)
    parser.add_argument("--frames", type=int, default=32, help="clip length the model is sized for")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--layout", default=DEFAULT_LAYOUT, choices=LAYOUTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for model_id in args.models.split(","):
        line = check(
            model_id,
            args.height,
            args.width,
            args.frames,
            parse_size(args.size),
            args.repeats,
            args.layout,
        )
        print(line, flush=True)


if __name__ == "__main__":
    main()
