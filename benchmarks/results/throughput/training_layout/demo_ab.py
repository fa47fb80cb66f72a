# ruff: noqa: E401, E402, F401, I001 -- an ad-hoc measurement, kept as it ran (see the README)
import dataclasses, json, sys, time, importlib.util
import torch

spec = importlib.util.spec_from_file_location(
    "ab", "/work/main/benchmarks/results/throughput/training_layout/ab.py"
)
ab = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ab)
from nvcodec import EncodeOptions, encode

torch.set_num_threads(2)
for name, cls in (
    ("nchw", ab.NchwOptions),
    ("channels-last", EncodeOptions),
    ("nchw", ab.NchwOptions),
):
    opts = dataclasses.replace(cls(size=100_000, epochs=100, seed=0), overwrite=True)
    b = time.perf_counter()
    r = encode("/work/main/tests/data/clips/bunny_160x80_132f.mp4", "/tmp/demo_ab.nvc", opts)
    print(
        json.dumps(
            {
                "train_layout": name,
                "bytes": r.bytes,
                "psnr_yuv": round(r.metrics.psnr_yuv, 3),
                "train_s": round(r.seconds["train"], 1),
                "compress_s": round(r.seconds["compress"], 1),
                "total_s": round(time.perf_counter() - b, 1),
            }
        ),
        flush=True,
    )
