"""Regenerate the golden v1 files. Run on purpose only, and say why in the commit.

    python tests/data/golden/make_golden.py

``golden_v1.nvc`` is a real file written by nvcodec 0.1 (format 1.0); every later version must
still decode it. ``golden_v1_expected.y4m`` is what this version decoded from it on the CPU;
tests allow ±1 code value for floating-point differences between machines.
"""

from __future__ import annotations

from pathlib import Path

from nvcodec import EncodeOptions, decode, encode

HERE = Path(__file__).parent
CLIP = HERE.parent / "clips" / "chaplin_96x72_16f.mkv"


def main() -> None:
    nvc = HERE / "golden_v1.nvc"
    options = EncodeOptions(
        size=9_000, epochs=20, frames=(0, 4), device="cpu", seed=0, overwrite=True
    )
    report = encode(CLIP, nvc, options)
    decode(nvc, str(HERE / "golden_v1_expected.y4m"), device="cpu", overwrite=True)
    print(f"{nvc.name}: {report.bytes} bytes, PSNR-YUV {report.metrics.psnr_yuv:.2f} dB")


if __name__ == "__main__":
    main()
