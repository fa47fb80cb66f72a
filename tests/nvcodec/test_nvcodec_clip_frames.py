"""ClipFrames: training targets made batch by batch from uint8 yuv420 must be bit-identical to
the whole-clip conversion the encoder used before (so encodes do not change)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nvcodec.io import ClipFrames, ColourSpec, Yuv420Frames, yuv420_to_rgb
from nvcodec.io.colour import MATRICES


def _clip(t: int, h: int, w: int, seed: int = 0) -> Yuv420Frames:
    rng = np.random.default_rng(seed)
    ch, cw = (h + 1) // 2, (w + 1) // 2
    return Yuv420Frames(
        rng.integers(0, 256, (t, h, w), dtype=np.uint8),
        rng.integers(0, 256, (t, ch, cw), dtype=np.uint8),
        rng.integers(0, 256, (t, ch, cw), dtype=np.uint8),
    )


def _whole(clip: Yuv420Frames, colour: ColourSpec) -> torch.Tensor:
    rgb = yuv420_to_rgb(clip.y, clip.u, clip.v, colour)
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(0, 3, 1, 2)))


@pytest.mark.parametrize("matrix", MATRICES)
@pytest.mark.parametrize("range_", ["limited", "full"])
def test_every_batch_is_bit_identical_to_the_whole_clip_conversion(matrix, range_) -> None:
    clip, colour = _clip(5, 9, 13), ColourSpec(matrix=matrix, range=range_)  # odd sizes
    whole, frames = _whole(clip, colour), ClipFrames(clip, colour, torch.device("cpu"))
    assert frames.shape == whole.shape
    assert len(frames) == 5
    index = torch.tensor([4, 0, 2, 2])
    assert torch.equal(frames[index], whole[index])
    assert torch.equal(frames[1:3], whole[1:3])
    assert torch.equal(frames[3], whole[3])
    assert torch.equal(frames[-1], whole[-1])
    assert frames[index].dtype == torch.float32
    assert frames.device == torch.device("cpu")


def test_planes_are_shared_not_copied_on_the_cpu() -> None:
    clip = _clip(3, 8, 8)
    frames = ClipFrames(clip, ColourSpec(), torch.device("cpu"))
    before = frames[0].clone()
    clip.y[0] = 255 - clip.y[0]  # the store sees the caller's arrays
    assert not torch.equal(frames[0], before)


@pytest.mark.parametrize("model_id", ["nerv", "dnerv"])  # dnerv reads neighbouring frames
def test_training_on_clip_frames_equals_training_on_the_tensor(model_id) -> None:
    """The same seeded training run on either form of the targets ends in the same weights."""
    from nvcodec.models import build_model, solve_config
    from nvcodec.training.loop import TrainConfig, train

    clip, colour = _clip(4, 32, 64, seed=1), ColourSpec()
    config = solve_config(model_id, 32, 64, 4, 20_000)
    runs = []
    for frames in (_whole(clip, colour), ClipFrames(clip, colour, torch.device("cpu"))):
        torch.manual_seed(0)
        model = build_model(config)
        train(model, frames, TrainConfig(epochs=2, batch_size=2, seed=0))
        runs.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(runs[0], runs[1])
