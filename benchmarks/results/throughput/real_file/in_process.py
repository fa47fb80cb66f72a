# ruff: noqa: E401, E402, F401, I001 -- an ad-hoc measurement, kept as it ran (see the .md beside it)
import time, torch, cProfile, pstats, sys

t0 = time.perf_counter()
from nvcodec import decode

print(f"import {time.perf_counter() - t0:.2f} s")
torch.set_num_threads(2)
for r in range(2):
    for L in ("nchw", "channels-last"):
        b = time.perf_counter()
        rep = decode(f"bunny_{L}.nvc", f"out_{L}.y4m", overwrite=True)
        s = time.perf_counter() - b
        print(f"{L} round {r}: {48 / s:.1f} frames/s ({s:.2f} s)")
pr = cProfile.Profile()
pr.enable()
decode("bunny_channels-last.nvc", "out_cl.y4m", overwrite=True)
pr.disable()
pstats.Stats(pr).sort_stats("cumulative").print_stats(18)
