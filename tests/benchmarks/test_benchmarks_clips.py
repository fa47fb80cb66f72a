"""Downscaled benchmark sources: exact, shared by every codec, and keyed apart in the cache."""

from __future__ import annotations

import numpy as np

from benchmarks.clips import downscale, prepare_clip
from benchmarks.run import clip_folder_name
from nvcodec.io import read_video


def test_downscale_is_the_block_mean():
    plane = np.arange(2 * 4 * 6, dtype=np.uint8).reshape(2, 4, 6)
    out = downscale(plane, 2)
    assert out.shape == (2, 2, 3)
    assert out[0, 0, 0] == round(np.mean([0, 1, 6, 7]))


def test_prepare_clip_writes_an_exact_reference(tmp_path, chaplin):
    path, reference, info = prepare_clip(chaplin, 2, (0, 3), tmp_path / "s.y4m")
    again, _ = read_video(path)
    assert (info.width, info.height, info.frame_count) == (48, 36, 3)
    assert reference.u.shape == (3, 18, 24)
    assert np.array_equal(again.y, reference.y)
    original, _ = read_video(chaplin, (0, 3))
    assert np.array_equal(reference.y, downscale(original.y, 2))


def test_scaled_runs_get_their_own_folder(chaplin):
    assert clip_folder_name(chaplin, None) == "chaplin_96x72_16f"
    assert clip_folder_name(chaplin, (0, 8), 4) == "chaplin_96x72_16f_0-8_x4"


def test_summary_includes_clip_folders_of_earlier_runs(tmp_path):
    import json

    from benchmarks.run import _add_earlier_clips

    for name in ("a_x4", "b_x4"):
        (tmp_path / name / "points").mkdir(parents=True)
        (tmp_path / name / "points" / "p.json").write_text(json.dumps({"codec": "x264"}))
    (tmp_path / "b_x4" / "points" / "broken.json").write_text("{not json")
    records = {"a_x4": [{"codec": "fresh"}]}
    _add_earlier_clips(tmp_path, records)
    assert records == {"a_x4": [{"codec": "fresh"}], "b_x4": [{"codec": "x264"}]}
