# ruff: noqa: B023, E401, E501, I001 -- an ad-hoc measurement, kept as it ran (see the .md beside it)
import sys, itertools, time, torch
from nvcodec import EncodeOptions
from nvcodec.models import build_model, solve_config, parse_size
from nvcodec.training.loop import make_optimizer, train_step

torch.set_num_threads(int(sys.argv[5]) if len(sys.argv) > 5 else 1)
H, W, F = int(sys.argv[2]), int(sys.argv[3]), 16


def rate(fn, seconds=3.0):
    for _ in range(3):
        fn()
    n = 0
    b = time.perf_counter()
    while time.perf_counter() - b < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - b)


for mid in sys.argv[1].split(","):
    cfg = solve_config(mid, H, W, F, parse_size(sys.argv[4]))
    res = {}
    for bf16 in (False, True):
        for cl in (False, True):
            torch.manual_seed(0)
            recipe = EncodeOptions(model=mid, seed=0).train_config()
            model = build_model(cfg).train()
            mk = getattr(model, "make_training_encoder", None)
            enc = mk().train() if mk is not None else None
            targets = torch.rand(F, 3, H, W)
            if cl:
                model.to(memory_format=torch.channels_last)
                if enc is not None:
                    enc.to(memory_format=torch.channels_last)
                targets = targets.contiguous(memory_format=torch.channels_last)
            opt = make_optimizer(model, recipe, enc)
            step = itertools.count()

            def one():
                i = next(step) % F
                idx = torch.tensor([i])
                train_step(model, opt, idx.float(), targets[idx], bf16, enc, targets)

            res[(bf16, cl)] = rate(one)
    base = res[(False, False)]
    print(
        f"{mid:10s} {W}x{H} fp32 {base:6.2f} fp32-CL {res[(False, True)]:6.2f} ({res[(False, True)] / base:.2f}x) bf16 {res[(True, False)]:6.2f} ({res[(True, False)] / base:.2f}x) bf16-CL {res[(True, True)]:6.2f} ({res[(True, True)] / base:.2f}x)",
        flush=True,
    )
