"""Decode and training throughput of every model against a compute bound measured in the same run
(issue #16).

    python -m benchmarks.throughput --height 80 --width 160 --size 0.1M \\
        --models ds-nerv,hnerv,nerv,nerv++,dnerv,hinerv --threads 1 --out DIR

For each model at the resolution and parameter budget (the channel widths ``nvc encode`` would
solve for ``--frames`` frames):

- **MACs/px**: :func:`nvcodec.models.complexity.macs_per_pixel` (every convolution and matrix
  product, DS-NeRV's attention included).
- **net fps**: ``model(t)`` alone (seeded random weights, eval, ``inference_mode``, float32) over
  all frame positions in the decoder's batches (its batch size rule, the last batch padded), so
  only the network is timed.
- **e2e fps**: a real ``.nvc`` file (a real encode of a synthetic clip, 1 training + 1 RD epoch:
  the weights do not change the work) decoded to ``.y4m`` by the public :func:`nvcodec.decode`:
  container, entropy decoding, model rebuild, rendering, colour conversion and writing.
- **train steps/s**: :func:`nvcodec.training.loop.train_step` with the model's own recipe
  (optimizer, lr, clipping) and, for HNeRV/DNeRV/DS-NeRV, its training encoder, batch size 1.
- **bound**: float32 GFLOP/s of a large matmul and a large 3×3 conv (64→64 channels, the faster
  of its NCHW and channels-last timings) with the same threads; the network's GFLOP/s
  (2 × MACs/px × pixels × net fps) is given as % of the conv.

Every figure is warmed up, then repeated for at least ``--seconds``. Writes
``DIR/throughput-WxH.json`` and ``DIR/throughput-WxH.md`` (W×H as the clips are named). ``--quick``
is a smoke run (32×16, 4 frames, 0.5 s windows, smaller bounds).
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nvcodec.decode_layout import (
    CHANNELS_LAST,
    DEFAULT_LAYOUT,
    LAYOUTS,
    NCHW,
    frames_per_batch,
    prepare,
)

DEFAULT_MODELS = "ds-nerv,hnerv,nerv,nerv++,dnerv,hinerv"
BOUND_SIZES = {"matmul": 2048, "conv": 256}
"""Matmul side and conv feature-map side of the compute bounds (``--quick`` halves them)."""


def _sync(device: torch.device) -> None:
    """Wait for queued GPU work, so a timing covers the work and not only its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def rate(fn: Callable[[], object], seconds: float, device: torch.device, warmup: int = 2) -> float:
    """Calls of ``fn`` per second: ``warmup`` untimed calls (oneDNN/cuDNN choose and build their
    kernels on the first calls of a shape), then as many as fill ``seconds``."""
    for _ in range(warmup):
        fn()
    _sync(device)
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        _sync(device)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return calls / elapsed


def compute_bounds(seconds: float, device: torch.device, quick: bool) -> dict[str, float]:
    """GFLOP/s of a dense float32 matmul and a 3×3 conv: what this machine does with the same
    threads on shapes that keep the cores busy, the yardstick for the networks' GFLOP/s. The
    conv is timed in both memory layouts and the faster counts (on CPUs the NCHW one pays
    oneDNN's reorders, so it alone understates what the machine can do)."""
    from nvcodec.device import full_fp32

    scale = 2 if quick else 1
    n, side = BOUND_SIZES["matmul"] // scale, BOUND_SIZES["conv"] // scale
    generator = torch.Generator().manual_seed(0)
    a, b = (torch.rand(n, n, generator=generator).to(device) for _ in range(2))
    x = torch.rand(1, 64, side, side, generator=generator).to(device)
    conv = torch.nn.Conv2d(64, 64, 3, padding=1).to(device).eval()
    conv_flop = 2 * side * side * 64 * 64 * 9
    layouts = {}
    with torch.inference_mode(), full_fp32():
        matmul_calls = rate(lambda: torch.matmul(a, b), seconds, device)
        for layout in (NCHW, CHANNELS_LAST):
            prepare(conv, layout)
            y = x.contiguous(memory_format=torch.channels_last) if layout == CHANNELS_LAST else x
            layouts[layout] = conv_flop * rate(lambda y=y: conv(y), seconds, device) / 1e9
            conv.to(memory_format=torch.contiguous_format)
    return {
        "matmul_n": n,
        "matmul_gflops": 2 * n**3 * matmul_calls / 1e9,
        "conv_side": side,
        "conv_gflops": max(layouts.values()),
        "conv_gflops_by_layout": layouts,
    }


def net_decode_fps(
    config: Any, frames: int, seconds: float, device: torch.device, layout: str
) -> tuple[float, int]:
    """Frames/s of the network alone, and the batch size: every frame position in the decoder's
    batches for ``layout`` (a short last batch padded by repeating its last position, as
    ``render`` does)."""
    from nvcodec.device import full_fp32
    from nvcodec.models import build_model

    torch.manual_seed(0)
    model = prepare(build_model(config, device=device), layout).eval()
    batch = frames_per_batch(layout, config.activation_elements(), frames)
    positions = [float(i) for i in range(frames)]
    batches = []
    for start in range(0, frames, batch):
        chunk = positions[start : start + batch]
        chunk += chunk[-1:] * (batch - len(chunk))
        batches.append(torch.tensor(chunk, dtype=torch.float32, device=device))

    def one_pass() -> None:
        for t in batches:
            model(t)

    with torch.inference_mode(), full_fp32():
        passes = rate(one_pass, seconds, device)
    return frames * passes, batch


def train_steps(
    model_id: str, config: Any, frames: int, seconds: float, device: torch.device, bf16: bool
) -> float:
    """Optimiser steps/s of the real training step: the model's recipe, its training encoder
    when it has one (its output then depends on the frames), its training memory format
    (:func:`nvcodec.training.loop.training_layout`), batch size 1, random targets; in fp32, or
    with ``bf16`` under bf16 autocast."""
    from nvcodec import EncodeOptions
    from nvcodec.models import build_model
    from nvcodec.training.loop import make_optimizer, train_step, training_layout

    torch.manual_seed(0)
    recipe = EncodeOptions(model=model_id, seed=0).train_config()
    model = training_layout(build_model(config, device=device), recipe).train()
    make_encoder = getattr(model, "make_training_encoder", None)
    encoder = make_encoder().to(device).train() if make_encoder is not None else None
    if encoder is not None:
        training_layout(encoder, recipe)
    optimizer = make_optimizer(model, recipe, encoder)
    targets = torch.rand(frames, 3, config.height, config.width, device=device)
    step = itertools.count()

    def one_step() -> None:
        i = next(step) % frames
        index = torch.tensor([i], device=device)
        batch = targets[index]
        train_step(model, optimizer, index.float(), batch, bf16, encoder, targets)

    return rate(one_step, seconds, device)


def synthetic_clip(path: Path, width: int, height: int, frames: int) -> None:
    """A smooth moving gradient as a lossless Y4M: the encode needs a clip of the right size,
    and decoding time does not depend on what the frames show."""
    from nvcodec.io import ColourSpec, Yuv420Frames
    from nvcodec.io.writers import open_writer

    t = np.arange(frames)[:, None, None]

    def plane(h: int, w: int, speed: int) -> np.ndarray:
        rows, cols = np.arange(h)[None, :, None], np.arange(w)[None, None, :]
        return ((64 + 2 * rows + cols + speed * t) % 192 + 32).astype(np.uint8)

    ch, cw = (height + 1) // 2, (width + 1) // 2
    clip = Yuv420Frames(plane(height, width, 3), plane(ch, cw, 1), plane(ch, cw, 2))
    colour = ColourSpec(matrix="bt709", range="limited")
    with open_writer(
        str(path), width=width, height=height, fps=Fraction(24), colour=colour, overwrite=True
    ) as writer:
        writer.write(clip)


def e2e_decode(
    model_id: str,
    size: int,
    clip: Path,
    work: Path,
    seconds: float,
    device: torch.device,
    layout: str,
) -> dict[str, float]:
    """Frames/s of ``nvcodec.decode`` of a real file to ``.y4m`` (everything the decoder does),
    with the file's size and the time the brief encode that wrote it took."""
    from nvcodec import EncodeOptions, decode, encode

    nvc, out = work / f"{model_id}.nvc", str(work / f"{model_id}.y4m")
    options = EncodeOptions(
        model=model_id,
        size=size,
        epochs=1,
        rd_epochs=1,
        seed=0,
        device=str(device),
        decode_layout=layout,
    )
    start = time.perf_counter()
    report = encode(clip, nvc, options)
    encode_s = time.perf_counter() - start
    calls = rate(lambda: decode(nvc, out, device=str(device), overwrite=True), seconds, device, 1)
    return {"e2e_fps": report.frames * calls, "file_bytes": report.bytes, "encode_s": encode_s}


def measure(
    model_id: str, args: argparse.Namespace, clip: Path, work: Path, bounds: dict[str, float]
) -> dict[str, Any]:
    """One table row: complexity, the three throughputs and the share of the conv bound."""
    from nvcodec import EncodeOptions
    from nvcodec.models import count_parameters, solve_config
    from nvcodec.models.complexity import macs_per_pixel
    from nvcodec.training.loop import uses_autocast

    device = torch.device(args.device)
    config = solve_config(model_id, args.height, args.width, args.frames, args.size)
    macs = macs_per_pixel(config)
    net_fps, batch = net_decode_fps(config, args.frames, args.seconds, device, args.layout)
    steps = train_steps(model_id, config, args.frames, args.seconds, device, bf16=False)
    # what nvc encode's default (--precision auto) trains this model with on this device
    bf16 = uses_autocast(EncodeOptions(model=model_id).train_config(), device)
    steps_bf16 = (
        train_steps(model_id, config, args.frames, args.seconds, device, True) if bf16 else None
    )
    gflops = 2 * macs * args.height * args.width * net_fps / 1e9
    return {
        "model": model_id,
        "parameters": count_parameters(config),
        "macs_per_pixel": macs,
        "batch": batch,
        "net_fps": net_fps,
        **e2e_decode(model_id, args.size, clip, work, args.seconds, device, args.layout),
        "train_steps_s": steps,  # fp32
        "train_steps_bf16_s": steps_bf16,  # None where bf16 autocast is not used
        "train_fps": steps,  # batch size 1: one frame per step
        "gflops": gflops,
        "conv_bound_pct": 100 * gflops / bounds["conv_gflops"],
    }


def _cpu_name() -> str:
    """The CPU's marketing name (``model name`` of /proc/cpuinfo), for the table's header."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def header(meta: dict[str, Any]) -> str:
    """The line that says what the numbers were measured on."""
    b = meta["bounds"]
    return (
        f"torch {meta['torch']}, {meta['cpu']}, {meta['threads']} thread(s), device "
        f"{meta['device']}, decode layout {meta.get('layout', 'nchw')}; bounds: matmul "
        f"{b['matmul_n']}² {b['matmul_gflops']:.1f} GFLOP/s, "
        f"conv 3×3 64→64 on {b['conv_side']}² {b['conv_gflops']:.1f} GFLOP/s"
        + "".join(
            f", {name} {value:.1f}" for name, value in b.get("conv_gflops_by_layout", {}).items()
        )
    )


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    """The table: one row per model, rates in frames (or steps) per second."""
    lines = [
        f"# Throughput at {meta['width']}×{meta['height']}, {meta['size']:,} parameters, "
        f"{meta['frames']} frames",
        "",
        header(meta),
        "",
        f"Reproduce: `{meta['command']}`",
        "",
        "| model | params | MACs/px | net decode fps | e2e decode fps | train steps/s fp32 "
        "| bf16 | GFLOP/s | % of conv bound |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        bf16 = r.get("train_steps_bf16_s")
        lines.append(
            f"| {r['model']} | {r['parameters']:,} | {r['macs_per_pixel']:,.0f} "
            f"| {r['net_fps']:.1f} | {r['e2e_fps']:.1f} | {r['train_steps_s']:.2f} "
            f"| {'–' if bf16 is None else f'{bf16:.2f}'} "
            f"| {r['gflops']:.1f} | {r['conv_bound_pct']:.0f} % |"
        )
    return "\n".join(lines) + "\n"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    """Options; ``--quick`` replaces the size of the work (not the models or the budget)."""
    from nvcodec.models import model_ids, parse_size

    p = argparse.ArgumentParser(prog="python -m benchmarks.throughput", description=__doc__)
    p.add_argument("--height", type=int, default=80)
    p.add_argument("--width", type=int, default=160)
    p.add_argument("--size", default="0.1M", help="parameter budget, as nvc encode --size")
    p.add_argument("--models", default=DEFAULT_MODELS)
    p.add_argument("--frames", type=int, default=16, help="clip length the model is sized for")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seconds", type=float, default=2.0, help="least measured time per figure")
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--layout",
        default=DEFAULT_LAYOUT,
        choices=LAYOUTS,
        help="decode layout of the files and the network timing (nvcodec.decode_layout)",
    )
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--quick", action="store_true", help="32×16, 4 frames, 0.5 s: a smoke run")
    args = p.parse_args(argv)
    if args.quick:
        args.height, args.width, args.frames, args.seconds = 16, 32, 4, 0.5
    args.size = parse_size(args.size)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(args.models) - set(model_ids()))
    if unknown:
        p.error(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(model_ids())}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    bounds = compute_bounds(args.seconds, device, args.quick)
    meta = {
        "torch": torch.__version__,
        "cpu": _cpu_name(),
        "threads": torch.get_num_threads(),
        "device": str(device),
        **{k: getattr(args, k) for k in ("width", "height", "frames", "size", "seconds", "layout")},
        "bounds": bounds,
        "command": "python -m benchmarks.throughput "
        + " ".join(sys.argv[1:] if argv is None else argv),
    }
    rows = []
    with tempfile.TemporaryDirectory(prefix="nvc-throughput-") as tmp:
        clip = Path(tmp) / "clip.y4m"
        synthetic_clip(clip, args.width, args.height, args.frames)
        for model_id in args.models:
            rows.append(measure(model_id, args, clip, Path(tmp), bounds))
            print(f"{model_id}: done", file=sys.stderr)
    table = markdown(rows, meta)
    print(table)
    stem = args.out / f"throughput-{args.width}x{args.height}"
    stem.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    stem.with_suffix(".md").write_text(table)


if __name__ == "__main__":
    main()
