"""Regenerate golden files. Run on purpose only, and say why in the commit.

    python tests/data/golden/make_golden.py                  # nchw per-model files, segmented
    python tests/data/golden/make_golden.py --channels-last  # only the channels-last files
    python tests/data/golden/make_golden.py --v1             # also golden_v1 (never, in practice)

``golden_v1.nvc`` is a real file written by nvcodec 0.1 (format 1.0, ds-nerv); every later
version must still decode it. ``golden_<model>.nvc`` is one file per registered model in the
``nchw`` decode layout (format as of 1.2) and ``golden_segmented.nvc`` a two-segment file (format
1.2); ``golden_cl_<model>.nvc`` is one file per model in the ``channels-last`` layout (format
1.3, what ``nvc encode`` writes by default); ``*_expected.y4m`` is what this version decoded
from each on the CPU. Tests allow ±1 code value for floating-point
differences between machines, and check that together the files use every entropy model kind.
They pin the decoder: a speed-up that changes a decoded value fails them.
"""

from __future__ import annotations

import sys
from pathlib import Path

from nvcodec import EncodeOptions, decode, encode

HERE = Path(__file__).parent
CLIP = HERE.parent / "clips" / "chaplin_96x72_16f.mkv"
MODELS = {  # id: size (the smallest budgets these models fill on 96x72 well)
    "nerv": 9_000,
    "hnerv": 9_000,
    "nerv++": 14_000,
    "dnerv": 9_000,
    "hinerv": 9_000,
    "hinerv-flat": 9_000,
    "ds-nerv-he": 12_000,
}


def _one(name: str, options: EncodeOptions) -> None:
    nvc = HERE / f"golden_{name}.nvc"
    report = encode(CLIP, nvc, options)
    decode(nvc, str(HERE / f"golden_{name}_expected.y4m"), device="cpu", overwrite=True)
    kinds = sorted({t.entropy_model for t in report.tensors})
    print(f"{nvc.name}: {report.bytes} bytes, {report.metrics.psnr_yuv:.2f} dB, {kinds}")


def _channels_last() -> None:
    for model, size in {"ds-nerv": 12_000, **MODELS}.items():
        options = EncodeOptions(
            model=model, size=size, epochs=10, frames=(0, 4), device="cpu", overwrite=True
        )
        _one(f"cl_{model}", options)


def _segmented() -> None:
    from nvcodec.scenes import SegmentRule
    from nvcodec.segment_encoder import Execution, encode_video

    nvc = HERE / "golden_segmented.nvc"
    options = EncodeOptions(
        size=12_000, epochs=10, frames=(0, 6), device="cpu", overwrite=True, decode_layout="nchw"
    )
    report = encode_video(CLIP, nvc, options, SegmentRule(length=3), Execution(threads=1))
    decode(nvc, str(HERE / "golden_segmented_expected.y4m"), device="cpu", overwrite=True)
    print(f"{nvc.name}: {report.bytes} bytes, {report.metrics.psnr_yuv:.2f} dB")


def main() -> None:
    import torch

    torch.set_num_threads(1)
    if "--channels-last" in sys.argv:
        _channels_last()
        return
    if "--v1" in sys.argv:
        options = EncodeOptions(
            size=9_000, epochs=20, frames=(0, 4), device="cpu", overwrite=True, decode_layout="nchw"
        )
        _one("v1", options)
    for model, size in MODELS.items():
        _one(
            model,
            EncodeOptions(
                model=model,
                size=size,
                epochs=10,
                frames=(0, 4),
                device="cpu",
                seed=0,
                overwrite=True,
                decode_layout="nchw",
            ),
        )
    # the QAT pipeline's fixed depths give the histogram and constant kinds their turn
    _one(
        "qat",
        EncodeOptions(
            size=9_000,
            epochs=10,
            frames=(0, 4),
            device="cpu",
            pipeline="qat",
            bits=4,
            overwrite=True,
            decode_layout="nchw",
        ),
    )
    _segmented()


if __name__ == "__main__":
    main()
