"""Golden files: one per registered model in each decode layout, the QAT pipeline's, a segmented
one, and v1. Each must decode to what was decoded when it was made (±1 code value across
machines), whole and as a range; together they use every entropy model kind. They pin the
decoder's output: a change that moves a decoded value (a speed-up, a refactor) fails here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nvcodec.decoder import decode_frames
from nvcodec.inspection import inspect
from nvcodec.io import read_video
from nvcodec.models import model_ids
from nvcodec.segmented import open_video

GOLDEN = Path(__file__).parent.parent / "data" / "golden"
FILES = sorted(p.stem for p in GOLDEN.glob("golden_*.nvc"))
DS_NERV_VARIANTS = {"ds-nerv", "ds-nerv-static", "ds-nerv-dynamic"}  # golden_v1 is ds-nerv


def _close(got, expected) -> None:  # type: ignore[no-untyped-def]
    for plane in ("y", "u", "v"):
        diff = np.abs(getattr(got, plane).astype(int) - getattr(expected, plane).astype(int))
        assert diff.max() <= 1, plane
        assert diff.mean() < 0.01, plane


@pytest.mark.parametrize("name", FILES)
def test_golden_file_decodes_as_recorded(name: str) -> None:
    expected, _ = read_video(GOLDEN / f"{name}_expected.y4m")
    path = GOLDEN / f"{name}.nvc"
    _close(decode_frames(path, device="cpu"), expected)
    _close(decode_frames(path, frames=(1, 3), device="cpu"), expected[1:3])


@pytest.mark.parametrize("layout", ["nchw", "channels-last"])
def test_every_model_has_a_golden_file_in_each_layout(layout: str) -> None:
    covered = {
        meta["model"]["id"]
        for n in FILES
        if n != "golden_segmented"
        for meta in [inspect(GOLDEN / f"{n}.nvc").metadata]
        if meta.get("decode", {}).get("layout", "nchw") == layout
    }
    assert set(model_ids()) - DS_NERV_VARIANTS <= covered


ACTIVATIONS = {  # ModelConfig.activation_elements() of each golden file's model(s)
    "golden_cl_dnerv": [27648],
    "golden_cl_ds-nerv-he": [41472],
    "golden_cl_ds-nerv": [41472],
    "golden_cl_hinerv-flat": [62208],
    "golden_cl_hinerv": [20736],
    "golden_cl_hnerv": [27648],
    "golden_cl_nerv++": [20736],
    "golden_cl_nerv": [20736],
    "golden_dnerv": [27648],
    "golden_ds-nerv-he": [41472],
    "golden_hinerv-flat": [62208],
    "golden_hinerv": [20736],
    "golden_hnerv": [27648],
    "golden_nerv++": [20736],
    "golden_nerv": [20736],
    "golden_qat": [34560],
    "golden_segmented": [27648, 27648],
    "golden_v1": [27648],
}


@pytest.mark.parametrize("name", FILES)
def test_activation_bound_of_golden_configs_is_pinned(name: str) -> None:
    """Decode batches are a function of ``activation_elements()`` (nvcodec.decode_layout), and
    batches change decoded values: a change to it would silently change what existing files
    decode to, which the ±1 tolerance above could miss."""
    with open_video(GOLDEN / f"{name}.nvc") as nv:
        got = [nv.segment(i).config.activation_elements() for i in range(len(nv.entries))]
    assert got == ACTIVATIONS[name]


def test_golden_files_use_every_entropy_kind() -> None:
    kinds = {
        t.entropy_model
        for n in FILES
        if n != "golden_segmented"
        for t in inspect(GOLDEN / f"{n}.nvc").tensors
    }
    assert kinds == {"constant", "histogram", "laplace", "gaussian"}
