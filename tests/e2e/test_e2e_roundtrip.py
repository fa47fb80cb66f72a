"""The user's path through the public API: encode → file → decode, with honest numbers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from nvcodec import EncodeOptions, decode, decode_frames, encode, inspect
from nvcodec.io import compute_metrics, read_video


def test_report_numbers_are_recomputable_from_file_and_source(small_encode, chaplin, tmp_path):
    path, report = small_encode
    size = path.stat().st_size
    assert report.bytes == size
    assert report.bpp == pytest.approx(8 * size / (96 * 72 * 8))
    # Decode with the standalone path to a Y4M file, read it back, compare with the source.
    out = tmp_path / "out.y4m"
    decode(path, str(out), device="cpu")
    decoded, info = read_video(out)
    assert (info.width, info.height, info.frame_count) == (96, 72, 8)
    reference, _ = read_video(chaplin, (0, 8))
    metrics = compute_metrics(reference, decoded, info.colour)
    assert metrics.psnr_yuv == report.metrics.psnr_yuv
    assert metrics.psnr_rgb == report.metrics.psnr_rgb
    assert metrics.ms_ssim == report.metrics.ms_ssim
    # A real model, not noise: far better than a flat grey frame would score.
    assert report.metrics.psnr_yuv > 15


def test_decoding_twice_is_bit_identical(small_encode):
    path, _ = small_encode
    a, b = decode_frames(path, device="cpu"), decode_frames(path, device="cpu")
    assert np.array_equal(a.y, b.y)
    assert np.array_equal(a.u, b.u)
    assert np.array_equal(a.v, b.v)


def test_decoding_leaves_the_callers_random_state_alone(small_encode):
    import torch

    path, _ = small_encode
    torch.manual_seed(123)
    expected = torch.rand(4)
    torch.manual_seed(123)
    decode_frames(path, device="cpu")
    assert torch.equal(torch.rand(4), expected)


def test_frame_range_decodes_on_its_own(small_encode):
    path, _ = small_encode
    full = decode_frames(path, device="cpu")
    part = decode_frames(path, (3, 6), device="cpu")
    assert part.count == 3
    assert np.array_equal(part.y, full.y[3:6])
    assert np.array_equal(part.v, full.v[3:6])


def test_same_seed_gives_identical_file(tmp_path, chaplin):
    opts = EncodeOptions(size=8_000, epochs=2, frames=(0, 4), device="cpu", seed=11)
    a = encode(chaplin, tmp_path / "a.nvc", opts)
    b = encode(chaplin, tmp_path / "b.nvc", opts)
    assert (tmp_path / "a.nvc").read_bytes() == (tmp_path / "b.nvc").read_bytes()
    assert a.metrics.psnr_yuv == b.metrics.psnr_yuv


def test_odd_frame_size_round_trips(tmp_path):
    import av

    src = tmp_path / "odd.mkv"
    rng = np.random.default_rng(0)
    with av.open(str(src), "w") as container:
        stream = container.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = 33, 17, "yuv420p"
        for i in range(3):
            rgb = np.full((17, 33, 3), 40 * i, np.uint8) + rng.integers(
                0, 30, (17, 33, 3), np.uint8
            )
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    report = encode(src, tmp_path / "odd.nvc", EncodeOptions(size=15_000, epochs=2, device="cpu"))
    assert (report.width, report.height, report.frames) == (33, 17, 3)
    frames = decode_frames(tmp_path / "odd.nvc", device="cpu")
    assert frames.y.shape == (3, 17, 33)
    assert frames.u.shape == (3, 9, 17)
    out = tmp_path / "odd.y4m"
    decode(tmp_path / "odd.nvc", str(out), device="cpu")
    back, _ = read_video(out)
    assert np.array_equal(back.y, frames.y)


def test_inspect_accounts_for_every_byte(small_encode):
    path, report = small_encode
    info = inspect(path)
    assert sum(info.sections.values()) == path.stat().st_size == info.size
    assert info.bpp == pytest.approx(report.bpp)
    assert info.parameters == report.parameters
    assert sum(t.payload_bytes for t in info.tensors) == info.sections["tensor_data"]
    # RD training (the default) stores each tensor at the depth its learned step needs
    assert max(t.bits for t in info.tensors) == report.compression["bits"]
    assert all(2 <= t.bits <= 16 for t in info.tensors)
    assert math.isclose(sum(info.bpp_breakdown().values()), info.bpp)


def test_encoder_refuses_bad_output_before_training(tmp_path, chaplin, monkeypatch):
    import nvcodec.encoder as enc
    from nvcodec.errors import OutputError

    def boom(*a, **k):  # training must never start
        raise AssertionError("trained before checking the output")

    monkeypatch.setattr(enc, "train", boom)
    with pytest.raises(OutputError, match="does not exist"):
        encode(chaplin, tmp_path / "missing" / "x.nvc", EncodeOptions(epochs=1))
    existing = tmp_path / "exists.nvc"
    existing.write_bytes(b"keep me")
    with pytest.raises(OutputError, match="exists"):
        encode(chaplin, existing, EncodeOptions(epochs=1))
    assert existing.read_bytes() == b"keep me"


def test_files_declare_the_oldest_reader_that_can_decode_them(tmp_path):
    # Tensors that pick the Gaussian model need format 1.1; others stay readable by 1.0.
    import torch

    import bitstream
    from nvcodec.compression import encode_tensors

    rng = torch.Generator().manual_seed(0)
    gaussian_like = [("w", torch.randn(4, 400, generator=rng))]
    encoded, _ = encode_tensors(gaussian_like, bits=8)
    kinds = {s.entropy_model for s in encoded.stats}
    assert encoded.reader_version == ((1, 1) if "gaussian" in kinds else (1, 0))
    golden = bitstream.read_file(Path(__file__).parent.parent / "data" / "golden" / "golden_v1.nvc")
    assert golden.reader_version == (1, 0)


def test_non_finite_model_output_is_refused_not_written_as_zeros(small_encode):
    import pytest
    import torch

    from bitstream import MalformedFileError
    from nvcodec.decoder import load_model, render

    path, _ = small_encode
    loaded = load_model(path, device="cpu")
    with torch.no_grad():
        next(loaded.model.parameters()).fill_(float("inf"))
    with pytest.raises(MalformedFileError, match="non-finite"):
        list(render(loaded, [0.0, 1.0]))
