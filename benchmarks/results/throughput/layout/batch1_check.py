# ruff: noqa: B023, E401, E402, E501, E731, I001 -- an ad-hoc measurement, kept as it ran (see the .md beside it)
import sys, time, statistics, torch
from nvcodec.device import full_fp32
from nvcodec.models import build_model, parse_size, solve_config
from nvcodec.decode_layout import frames_per_batch as _fpb

frames_per_batch = lambda e, f: _fpb("nchw", e, f)
import os

torch.set_num_threads(int(os.environ.get("T", "2")))
CB = int(sys.argv[6]) if len(sys.argv) > 6 else 1
H, W, F = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
for mid in sys.argv[1].split(","):
    cfg = solve_config(mid, H, W, F, parse_size(sys.argv[5]))
    torch.manual_seed(0)
    m = build_model(cfg).eval()
    batch = frames_per_batch(cfg.activation_elements(), F)
    pos = torch.arange(float(F))

    def legacy():
        outs = []
        for s in range(0, F, batch):
            outs.append(m(pos[s : s + batch]))
        return torch.cat(outs)

    def cl():
        return torch.cat([mc(pos[i : i + CB]) for i in range(0, F, CB)])

    with torch.inference_mode(), full_fp32():
        a = legacy()
        t = []
        for _ in range(3):
            b = time.perf_counter()
            a = legacy()
            t.append(time.perf_counter() - b)
        mc = m.to(memory_format=torch.channels_last)
        c = cl()
        t2 = []
        for _ in range(3):
            b = time.perf_counter()
            c = cl()
            t2.append(time.perf_counter() - b)
        # also NCHW batch1
        m.to(memory_format=torch.contiguous_format)
    q = lambda x: (x.clamp(0, 1) * 255).round()
    d = (a - c).abs().max().item()
    n8 = (q(a) != q(c)).sum().item()
    print(
        f"{mid:12s} batch {batch} legacy {F / statistics.median(t):6.2f} fps  CL b1 {F / statistics.median(t2):6.2f} fps  x{statistics.median(t) / statistics.median(t2):.2f} maxdiff {d:.1e} 8bit-changes {n8}/{a.numel()} cl_out={c.is_contiguous(memory_format=torch.channels_last)}",
        flush=True,
    )
