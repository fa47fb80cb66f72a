"""read_video: the bundled clips, many containers/codecs/pixel formats, ranges and errors."""

from __future__ import annotations

import math
import warnings
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from nvcodec.errors import InputError
from nvcodec.io import ColourSpec, read_video

CLIPS = Path(__file__).resolve().parents[1] / "data" / "clips"
CHAPLIN = CLIPS / "chaplin_96x72_16f.mkv"
BUNNY = CLIPS / "bunny_160x80_16f.mkv"


def _rgb(i: int, h: int, w: int) -> np.ndarray:
    """A smooth, moving test pattern (compresses well, exercises all channels)."""
    rgb = np.empty((h, w, 3), np.uint8)
    rgb[..., 0] = (np.arange(w)[None, :] * 7 + i * 10) % 256
    rgb[..., 1] = 100
    rgb[..., 2] = (np.arange(h)[:, None] * 5) % 256
    return rgb


def make_clip(
    path: Path,
    codec: str,
    pix_fmt: str,
    width: int,
    height: int,
    *,
    count: int = 4,
    color_range: int | None = None,
    frames: list[av.VideoFrame] | None = None,
) -> None:
    """Encode a short synthetic clip with PyAV."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if color_range is not None:
            stream.codec_context.color_range = color_range
        if frames is None:
            frames = [
                av.VideoFrame.from_ndarray(_rgb(i, height, width), format="rgb24")
                for i in range(count)
            ]
        for frame in frames:
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def test_bundled_clips() -> None:
    for path, (w, h), fps in ((CHAPLIN, (96, 72), 25), (BUNNY, (160, 80), 24)):
        frames, info = read_video(path)
        assert (frames.count, frames.height, frames.width) == (16, h, w)
        assert frames.u.shape == (16, h // 2, w // 2)
        assert (info.width, info.height, info.frame_count) == (w, h, 16)
        assert info.fps == Fraction(fps)
        assert isinstance(info.fps, Fraction)
        assert info.colour == ColourSpec("bt709", "limited")
        assert info.source == str(path)


def test_direct_read_matches_pyav() -> None:
    frames, _ = read_video(CHAPLIN, (0, 1))
    with av.open(str(CHAPLIN)) as c:
        ref = next(c.decode(video=0)).to_ndarray()  # (H*3/2, W) for even sizes
    np.testing.assert_array_equal(frames.y[0], ref[:72])


def test_frame_range() -> None:
    full, _ = read_video(CHAPLIN)
    part, info = read_video(str(CHAPLIN), (2, 5))
    assert info.frame_count == part.count == 3
    for a, b in zip((part.y, part.u, part.v), (full.y, full.u, full.v), strict=True):
        np.testing.assert_array_equal(a, b[2:5])
    tail, _ = read_video(CHAPLIN, (14, None))
    np.testing.assert_array_equal(tail.y, full.y[14:])
    clipped, _ = read_video(CHAPLIN, (10, 100))
    assert clipped.count == 6


CASES = [
    ("mp4", "libx264", "yuv420p", 32, 18),
    ("webm", "libvpx-vp9", "yuv420p", 33, 17),
    ("mkv", "libsvtav1", "yuv420p", 64, 48),
    ("avi", "mjpeg", "yuvj420p", 33, 17),
    ("avi", "ffv1", "yuv420p", 33, 17),
    ("mkv", "ffv1", "yuv420p10le", 33, 17),
    ("mkv", "ffv1", "yuv444p", 34, 18),
    ("mkv", "ffv1", "gray", 33, 17),
    ("avi", "png", "rgb24", 33, 17),
    ("y4m", "rawvideo", "yuv420p", 33, 17),
]


@pytest.mark.parametrize(
    ("suffix", "codec", "pix_fmt", "w", "h"), CASES, ids=[f"{c[1]}-{c[2]}" for c in CASES]
)
def test_containers_and_formats(
    tmp_path: Path, suffix: str, codec: str, pix_fmt: str, w: int, h: int
) -> None:
    if codec not in av.codecs_available:
        pytest.skip(f"encoder {codec} not in this FFmpeg build")
    path = tmp_path / f"clip.{suffix}"
    make_clip(path, codec, pix_fmt, w, h)
    frames, info = read_video(path)
    assert (frames.count, frames.height, frames.width) == (4, h, w)
    assert frames.u.shape == frames.v.shape == (4, (h + 1) // 2, (w + 1) // 2)
    assert (info.width, info.height, info.frame_count) == (w, h, 4)
    assert info.fps == 25
    # The pattern's luma is mid-range everywhere: a wrong plane layout would show up here.
    assert 40 < frames.y.mean() < 200
    if pix_fmt == "gray":
        assert (frames.u == 128).all()
    if pix_fmt == "yuvj420p":
        assert info.colour.range == "full"  # MJPEG is full-range BT.601
        assert info.colour.matrix == "bt601"
    else:
        assert info.colour.range == "limited"


def test_ten_bit_is_reduced_to_eight(tmp_path: Path) -> None:
    path = tmp_path / "ten.mkv"
    make_clip(path, "ffv1", "yuv420p10le", 33, 17, count=2)
    frames, info = read_video(path)
    with av.open(str(path)) as c:
        src = next(c.decode(video=0))
        y10 = np.frombuffer(src.planes[0], np.uint16)
        stride = src.planes[0].line_size // 2
        y10 = y10[: stride * 17].reshape(17, stride)[:, :33]
    assert info.colour == ColourSpec()
    assert np.abs(frames.y[0].astype(int) - np.round(y10 / 4).astype(int)).max() <= 1


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv444p"])
def test_full_range_tag_keeps_full_range_samples(tmp_path: Path, pix_fmt: str) -> None:
    """A yuv frame tagged full range is reported "full" and its samples are not rescaled."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, 256, (17, 33), dtype=np.uint8)
    frame = av.VideoFrame.from_ndarray(np.full((17, 33, 3), 128, np.uint8), format="rgb24")
    frame = frame.reformat(format=pix_fmt)
    plane = frame.planes[0]
    buf = np.zeros((17, plane.line_size), np.uint8)
    buf[:, :33] = y
    plane.update(buf.tobytes())
    frame.color_range = 2
    path = tmp_path / "full.mkv"
    make_clip(path, "ffv1", pix_fmt, 33, 17, color_range=2, frames=[frame])
    frames, info = read_video(path)
    assert info.colour.range == "full"
    np.testing.assert_array_equal(frames.y[0], y)
    assert (np.abs(frames.u.astype(int) - 128) <= 1).all()


def test_max_frames(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="more than 5 frames"):
        read_video(CHAPLIN, max_frames=5)
    frames, _ = read_video(CHAPLIN, (3, 8), max_frames=5)
    assert frames.count == 5


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"input\.mp4: no such file"):
        read_video(tmp_path / "input.mp4")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="directory"):
        read_video(tmp_path)


def test_text_file(tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.write_text("hello, this is not a video\n" * 20)
    with pytest.raises(InputError, match=r"x\.txt: not a video PyAV can read"):
        read_video(path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    with pytest.raises(InputError, match=r"empty\.mp4"):
        read_video(path)


def test_audio_only(tmp_path: Path) -> None:
    path = tmp_path / "tone.wav"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000, layout="mono")
        t = np.arange(800) / 8000
        samples = (np.sin(2 * math.pi * 440 * t) * 10000).astype(np.int16)[None, :]
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = 8000
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with pytest.raises(InputError, match=r"tone\.wav: no video stream"):
        read_video(path)


@pytest.mark.parametrize(
    ("rng", "match"),
    [
        ((20, 30), r"has 16 frames; --frames 20:30 selects none"),
        ((16, None), r"has 16 frames; --frames 16: selects none"),
        ((-1, 4), "invalid frame range"),
        ((5, 5), "invalid frame range"),
        ((6, 2), "invalid frame range"),
    ],
)
def test_bad_ranges(rng: tuple[int, int | None], match: str) -> None:
    with pytest.raises(InputError, match=match) as err:
        read_video(CHAPLIN, rng)
    assert "\n" not in str(err.value)
    assert "chaplin_96x72_16f.mkv" in str(err.value)


def test_garbage_bytes(tmp_path: Path) -> None:
    path = tmp_path / "noise.mp4"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(InputError, match=r"noise\.mp4: not a video PyAV can read"):
        read_video(path)


def _tagged(path: Path, space: int, trc: int | None, codec: str = "ffv1") -> np.ndarray:
    """A 2-frame yuv420p clip tagged with AVColorSpace ``space`` (and a transfer); its luma."""
    rng = np.random.default_rng(0)
    planes = [rng.integers(16, 235, (24, 32), dtype=np.uint8) for _ in range(2)]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 16, "yuv420p"
        stream.codec_context.colorspace = space
        if trc is not None:
            stream.codec_context.color_trc = trc
        for data in planes:
            frame = av.VideoFrame.from_ndarray(data, format="yuv420p")
            frame.colorspace = space
            if trc is not None:
                frame.color_trc = trc
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return np.stack([p[:16] for p in planes])


@pytest.mark.parametrize(
    ("space", "trc", "matrix", "warning"),
    [
        (9, 16, "bt2020", "PQ"),  # BT.2100 PQ: the matrix is converted, the transfer reported
        (9, None, "bt2020", None),
        (7, None, "smpte240m", None),
        (4, None, "fcc", None),
        (10, None, "bt2020", "constant-luminance"),
        (8, 18, "bt709", "not supported"),  # YCgCo: said, not hidden
    ],
)
def test_colour_tags_choose_the_matrix_or_say_why_not(tmp_path, space, trc, matrix, warning):
    from nvcodec.io.video import VideoInputWarning

    path = tmp_path / "tagged.mkv"
    luma = _tagged(path, space, trc)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frames, info = read_video(path)
    assert info.colour == ColourSpec(matrix, "limited")
    np.testing.assert_array_equal(frames.y, luma)  # samples as stored
    messages = [str(w.message) for w in caught if issubclass(w.category, VideoInputWarning)]
    if warning is None:
        assert messages == []
    else:
        assert len(messages) == 1
        assert warning in messages[0]
        assert str(path) in messages[0]


@pytest.mark.parametrize("matrix", ["bt2020", "smpte240m", "fcc"])
def test_every_matrix_converts_with_its_coefficients(matrix: str) -> None:
    from nvcodec.io import rgb_to_yuv420, yuv420_to_rgb

    spec = ColourSpec(matrix, "limited")
    kr, kb = {"bt2020": (0.2627, 0.0593), "smpte240m": (0.212, 0.087), "fcc": (0.30, 0.11)}[matrix]
    y = np.full((1, 2, 2), 126, np.uint8)
    u, v = np.full((1, 1, 1), 148, np.uint8), np.full((1, 1, 1), 168, np.uint8)
    rgb = yuv420_to_rgb(y, u, v, spec)
    luma = (126 - 16) / 219
    assert rgb[0, 0, 0, 0] == pytest.approx(luma + 2 * (1 - kr) * 40 / 224, abs=1e-6)
    assert rgb[0, 0, 0, 2] == pytest.approx(luma + 2 * (1 - kb) * 20 / 224, abs=1e-6)
    back = rgb_to_yuv420(rgb, spec)
    assert [int(p[0, 0, 0]) for p in back] == [126, 148, 168]
