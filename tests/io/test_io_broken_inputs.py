"""Broken and unusual encoder inputs (issue #8): each works (and we say how) or fails early.

Failures must be an :class:`InputError` raised *before training starts* (``train`` is replaced by
a function that fails the test). Inputs that work are encoded end to end with a tiny model and
decoded from the file. What each case does is documented in docs/RELIABILITY.md.
"""

from __future__ import annotations

import math
import warnings
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

import nvcodec.encoder
from nvcodec import EncodeOptions, encode
from nvcodec.decoder import decode_frames
from nvcodec.errors import InputError
from nvcodec.io.video import VideoInputWarning, read_video

W, H = 48, 32


def _rgb(i: int, h: int = H, w: int = W) -> np.ndarray:
    rgb = np.empty((h, w, 3), np.uint8)
    rgb[..., 0] = (np.arange(w)[None, :] * 5 + i * 10) % 256
    rgb[..., 1] = 100
    rgb[..., 2] = (np.arange(h)[:, None] * 7) % 256
    return rgb


def _write(
    path: Path,
    count: int,
    *,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    size: tuple[int, int] = (W, H),
    pts: list[int] | None = None,
    rotation: int | None = None,
    options: dict[str, str] | None = None,
) -> Path:
    w, h = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25, options=options or {})
        stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
        if pts is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for i in range(count):
            frame = av.VideoFrame.from_ndarray(_rgb(i, h, w), format="rgb24")
            if pts is not None:
                frame.pts, frame.time_base = pts[i], Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def _no_training(*args, **kwargs):
    raise AssertionError("training started on an input that should have been refused")


def _options(model: str = "nerv", **kw) -> EncodeOptions:
    return EncodeOptions(
        model=model, size=20_000, epochs=1, prune_epochs=0, qat_epochs=0, device="cpu", **kw
    )


def _refused_before_training(monkeypatch, source: Path, out: Path, match: str) -> None:
    monkeypatch.setattr(nvcodec.encoder, "train", _no_training)
    with pytest.raises(InputError, match=match) as info:
        encode(source, out, _options())
    assert "\n" not in str(info.value)
    assert str(source) in str(info.value)
    assert not out.exists()


def _encodes_and_decodes(source: Path, out: Path, model: str = "nerv", **kw):
    report = encode(source, out, _options(model, **kw))
    decoded = decode_frames(out, device="cpu")
    assert decoded.count == report.frames
    assert (decoded.width, decoded.height) == (report.width, report.height)
    return report, decoded


# ---- refused early --------------------------------------------------------------------------


def test_non_video_file_is_refused_before_training(tmp_path, monkeypatch):
    source = tmp_path / "notes.mp4"
    source.write_text("these are not the frames you are looking for\n" * 50)
    _refused_before_training(monkeypatch, source, tmp_path / "o.nvc", "not a video")


def test_random_bytes_are_refused_before_training(tmp_path, monkeypatch):
    source = tmp_path / "noise.mkv"
    source.write_bytes(np.random.default_rng(1).integers(0, 256, 8192, np.uint8).tobytes())
    _refused_before_training(monkeypatch, source, tmp_path / "o.nvc", "not a video")


def test_audio_only_file_is_refused_before_training(tmp_path, monkeypatch):
    source = tmp_path / "tone.wav"
    with av.open(str(source), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000, layout="mono")
        t = np.arange(800) / 8000
        samples = (np.sin(2 * math.pi * 440 * t) * 10000).astype(np.int16)[None, :]
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = 8000
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    _refused_before_training(monkeypatch, source, tmp_path / "o.nvc", "no video stream")


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("empty.y4m", "no frames decoded"),  # a stream header and no frame
        ("empty.mkv", "not a video PyAV can read"),  # header only: FFmpeg reports end of file
        ("empty.mp4", "no video stream"),  # moov without samples: FFmpeg drops the stream
    ],
)
def test_zero_frame_clip_is_refused_before_training(tmp_path, monkeypatch, name, match):
    source = tmp_path / name
    if name.endswith(".y4m"):
        source.write_bytes(b"YUV4MPEG2 W48 H32 F25:1 Ip A1:1 C420jpeg\n")
    else:
        with av.open(str(source), "w") as container:
            stream = container.add_stream("libx264", rate=25)
            stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
            container.start_encoding()  # writes the header; no frame is ever encoded
    assert source.stat().st_size > 0
    _refused_before_training(monkeypatch, source, tmp_path / "o.nvc", match)


def test_mp4_without_its_moov_box_is_refused_before_training(tmp_path, monkeypatch):
    """An MP4 whose index (the moov box) is gone has samples nothing can find: refused at once.
    (A moov that was only renamed, e.g. to 'free', is found by FFmpeg and decodes in full.)"""
    import struct

    whole = _write(tmp_path / "whole.mp4", 4).read_bytes()
    at = whole.find(b"moov") - 4
    (size,) = struct.unpack(">I", whole[at : at + 4])
    source = tmp_path / "no-moov.mp4"
    source.write_bytes(whole[:at] + whole[at + size :])
    _refused_before_training(monkeypatch, source, tmp_path / "o.nvc", "not a video PyAV can read")


def test_truncated_clip_keeps_the_frames_before_the_cut(tmp_path):
    """An interrupted copy: the complete frames before the cut are used (intra-only codec)."""
    whole = _write(tmp_path / "whole.mkv", 8, codec="ffv1").read_bytes()
    source = tmp_path / "cut.mkv"
    source.write_bytes(whole[: len(whole) // 2])
    frames, info = read_video(source)
    assert 0 < frames.count == info.frame_count < 8


def test_truncated_clip_without_a_whole_frame_is_refused(tmp_path, monkeypatch):
    whole = _write(tmp_path / "whole.mkv", 8).read_bytes()  # x264 buffers: no frame in 1st half
    source = tmp_path / "cut.mkv"
    source.write_bytes(whole[: len(whole) // 2])
    _refused_before_training(monkeypatch, source, tmp_path / "o.nvc", "no frames decoded")


# ---- accepted, with what happens stated ------------------------------------------------------


@pytest.mark.parametrize("model", ["nerv", "ds-nerv", "nerv++", "hnerv"])
def test_one_frame_clip_encodes_and_decodes(tmp_path, model):
    """T = 1: time is normalised by max(T - 1, 1) (NeRV, NeRV++) or pinned to 0 (DS-NeRV)."""
    source = _write(tmp_path / "one.mkv", 1)
    report, decoded = _encodes_and_decodes(source, tmp_path / "one.nvc", model)
    assert report.frames == decoded.count == 1
    assert np.isfinite(report.metrics.psnr_yuv)


def test_variable_frame_rate_uses_decode_order_and_the_average_rate(tmp_path):
    pts = [0, 40, 80, 200, 210, 400, 440, 1000]  # ms
    source = _write(tmp_path / "vfr.mp4", len(pts), pts=pts)
    with pytest.warns(VideoInputWarning, match="variable frame rate"):
        report, decoded = _encodes_and_decodes(source, tmp_path / "vfr.nvc")
    assert report.frames == decoded.count == len(pts)  # nothing dropped or duplicated
    with av.open(str(source)) as container:
        average = container.streams.video[0].average_rate
    assert report.fps == pytest.approx(float(average))
    with pytest.warns(VideoInputWarning):
        _, info = read_video(source)
    assert info.variable_frame_rate


def test_constant_rate_clips_are_not_flagged(chaplin):
    with warnings.catch_warnings():
        warnings.simplefilter("error", VideoInputWarning)
        _, info = read_video(chaplin)
    assert (info.rotation, info.interlaced, info.variable_frame_rate) == (0, False, False)


def test_odd_size_clip_encodes_and_decodes(tmp_path):
    source = _write(tmp_path / "odd.mkv", 2, codec="ffv1", pix_fmt="yuv444p", size=(33, 17))
    report, decoded = _encodes_and_decodes(source, tmp_path / "odd.nvc")
    assert (report.width, report.height) == (33, 17)
    assert decoded.u.shape == (2, 9, 17)


def test_ten_bit_clip_is_reduced_to_eight_bits_and_encodes(tmp_path):
    source = _write(tmp_path / "ten.mkv", 2, codec="ffv1", pix_fmt="yuv420p10le")
    report, decoded = _encodes_and_decodes(source, tmp_path / "ten.nvc")
    assert decoded.y.dtype == np.uint8
    assert report.frames == 2


def test_rotated_clip_is_encoded_in_stored_orientation_with_a_warning(tmp_path):
    source = _write(tmp_path / "rot.mp4", 2, rotation=90)
    with pytest.warns(VideoInputWarning, match=r"rot\.mp4: .*rotate it by 90 degrees"):
        _, info = read_video(source)
    assert info.rotation == 90
    assert (info.width, info.height) == (W, H)  # stored, not displayed, orientation
    with pytest.warns(VideoInputWarning, match="rotate"):
        report, _ = _encodes_and_decodes(source, tmp_path / "rot.nvc")
    assert (report.width, report.height) == (W, H)


def test_interlaced_clip_is_encoded_as_woven_frames_with_a_warning(tmp_path):
    source = _write(tmp_path / "int.mkv", 2, options={"x264-params": "interlaced=1:tff=1"})
    with pytest.warns(VideoInputWarning, match=r"int\.mkv: interlaced source"):
        frames, info = read_video(source)
    assert info.interlaced
    assert (frames.count, frames.height, frames.width) == (2, H, W)
