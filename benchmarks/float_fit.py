"""Float training PSNR of models at one budget: the quick experiment behind sizing decisions.

    python -m benchmarks.float_fit ../shared/clips/bunny_160x80_16f.mkv --size 50k --epochs 80 \\
        --models ds-nerv,hnerv,hinerv,hinerv:1.4,hinerv-flat

No compression and no file: each model is sized to ``--size`` by its registered rule, trained
with its own recipe on the clip's frames (seed 0) and reported with the training loop's final
PSNR-RGB. ``hinerv:R`` is HiNeRV whose stage widths shrink by ``R`` per stage (the reference:
2.0; ``hinerv-flat``: 1.0). Use it to rank choices cheaply; the numbers that count come from
files (``benchmarks.models``).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import time
from typing import Any

import torch

from nvcodec.encoder import EncodeOptions
from nvcodec.io import ClipFrames, read_video
from nvcodec.models import (
    ModelConfig,
    build_model,
    count_parameters,
    parse_size,
    solve_config,
    solve_sizing,
)
from nvcodec.models.hinerv import sized_hinerv
from nvcodec.training import train
from nvcodec.training.loop import uses_autocast


def _config(what: str, height: int, width: int, frames: int, budget: int) -> ModelConfig:
    if not what.startswith("hinerv:"):
        return solve_config(what, height, width, frames, budget)
    reduction = float(what.split(":", 1)[1])
    sizing = functools.partial(sized_hinerv, reduction=reduction)
    return solve_sizing(sizing, height, width, frames, budget, what)


def fit(
    path: str, what: str, budget: int, epochs: int, frames: int | None, **recipe: Any
) -> dict[str, object]:
    """One model's float fit: parameters, final training PSNR-RGB, seconds. ``recipe``
    overrides fields of the model's training recipe (``lr``, ``clip``, ``warmup``, ``amp``)."""
    reference, info = read_video(path, (0, frames) if frames else None)
    config = _config(what, info.height, info.width, reference.count, budget)
    torch.manual_seed(0)
    model = build_model(config)
    model_id = what.split(":", 1)[0]
    recipe_ = EncodeOptions(model=model_id).train_config()
    recipe_ = dataclasses.replace(recipe_, epochs=epochs, **recipe)
    begin = time.perf_counter()
    curve: list[float] = []
    result = train(
        model,
        ClipFrames(reference, info.colour, torch.device("cpu")),
        recipe_,
        callback=lambda s: curve.append(round(s.psnr, 3)),
    )
    return {
        "clip": path.rsplit("/", 1)[-1],
        "model": what,
        "parameters": count_parameters(config),
        "channels": list(getattr(config, "channels", ())),
        "recipe": {
            "lr": recipe_.lr,
            "clip": recipe_.clip,
            "warmup": recipe_.warmup,
            "bf16": uses_autocast(recipe_, torch.device("cpu")),  # what ran, not what was asked
        },
        "psnr_rgb": round(result.final_psnr, 2),
        "seconds": round(time.perf_counter() - begin, 1),
        "curve": curve,  # training PSNR-RGB after each epoch
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("clips", nargs="+")
    parser.add_argument("--models", default="ds-nerv,hnerv,hinerv-flat")
    parser.add_argument("--size", default="50k")
    parser.add_argument("--epochs", type=int, default=80)
    parser.add_argument("--frames", type=int, default=None, help="the first N frames")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--lr", type=float, default=None, help="instead of the recipe's")
    parser.add_argument("--clip", type=float, default=None, help="gradient-norm clipping")
    parser.add_argument("--warmup", type=float, default=None, help="warm-up share of the epochs")
    parser.add_argument(
        "--precision", choices=("auto", "fp32"), default="auto", help="as nvc encode --precision"
    )
    parser.add_argument(
        "--curves", default=None, help="PNG: every run's training PSNR per epoch (and .json)"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    given = (("lr", args.lr), ("clip", args.clip), ("warmup", args.warmup))
    recipe: dict[str, Any] = {k: v for k, v in given if v is not None}
    recipe["amp"] = args.precision == "auto"
    rows = []
    for clip in args.clips:
        for what in args.models.split(","):
            row = fit(clip, what, parse_size(args.size), args.epochs, args.frames, **recipe)
            print(json.dumps({k: v for k, v in row.items() if k != "curve"}), flush=True)
            rows.append(row)
    if args.curves:
        plot_curves(rows, args.curves)


def plot_curves(rows: list[dict[str, object]], path: str) -> None:
    """Training PSNR per epoch, one line per (clip, model), to ``path`` (PNG) and its JSON."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for row in rows:
        curve = row["curve"]
        assert isinstance(curve, list)
        ax.plot(range(1, len(curve) + 1), curve, label=f"{row['model']} ({row['clip']})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training PSNR-RGB (dB)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    with open(f"{path.rsplit('.', 1)[0]}.json", "w") as f:
        json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
