"""Frame ranges and device names as users type them."""

from __future__ import annotations

import pytest
import torch

from nvcodec.device import resolve_device
from nvcodec.errors import ConfigError
from nvcodec.ranges import parse_frame_range, resolve_range


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10:20", (10, 20)),
        ("5:", (5, None)),
        (":7", (0, 7)),
        ("3", (3, 4)),
        ("0", (0, 1)),
        (" 2 : 9 ", (2, 9)),
        ("0:1", (0, 1)),
    ],
)
def test_parse_frame_range_valid(text: str, expected: tuple[int, int | None]) -> None:
    assert parse_frame_range(text) == expected


@pytest.mark.parametrize(
    "text", ["a:b", "5:3", "-1:2", "3:3", "-3", "", "1:2:3", "x", "1.5:3", ":0", "4:-1"]
)
def test_parse_frame_range_invalid(text: str) -> None:
    with pytest.raises(ConfigError, match="frame range"):
        parse_frame_range(text)


def test_resolve_range() -> None:
    assert resolve_range(None, 10, "clip") == (0, 10)
    assert resolve_range((3, None), 10, "clip") == (3, 10)
    assert resolve_range((3, 10), 10, "clip") == (3, 10)
    assert resolve_range((9, 10), 10, "clip") == (9, 10)


@pytest.mark.parametrize("frames", [(3, 11), (10, None), (10, 11), (20, 30)])
def test_resolve_range_past_the_end(frames: tuple[int, int | None]) -> None:
    with pytest.raises(ConfigError, match=r"clip\.mp4 has 10 frames"):
        resolve_range(frames, 10, "clip.mp4")


def test_resolve_range_empty_video() -> None:
    with pytest.raises(ConfigError):
        resolve_range(None, 0, "empty")


def test_resolve_device_cpu_and_auto() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected


@pytest.mark.parametrize("name", ["bogus", "", "CPU", "gpu", "mps"])
def test_resolve_device_bogus(name: str) -> None:
    with pytest.raises(ConfigError, match="expected auto, cpu or cuda"):
        resolve_device(name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
@pytest.mark.parametrize("name", ["cuda", "cuda:0"])
def test_resolve_device_cuda_unavailable(name: str) -> None:
    with pytest.raises(ConfigError, match="CUDA is not available"):
        resolve_device(name)
