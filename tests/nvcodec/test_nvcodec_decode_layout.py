"""The decode layout a file declares (format 1.3): parsed strictly, written only when it is not
the pre-1.3 default, raising the reader version, and followed by the decoder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import bitstream
from nvcodec import EncodeOptions, decode_frames, encode
from nvcodec.decode_layout import (
    CHANNELS_LAST,
    NCHW,
    colour_dtype,
    frames_per_batch,
    layout_metadata,
    parse_layout,
    prepare,
    reader_version,
)
from nvcodec.decoder import batch_size_for, load_model
from nvcodec.errors import ConfigError
from nvcodec.inspection import inspect

CLIP = Path(__file__).resolve().parents[1] / "data" / "clips" / "chaplin_96x72_16f.mkv"


def test_files_without_the_key_are_nchw_and_the_key_round_trips() -> None:
    assert parse_layout({"video": {}}) == NCHW
    assert layout_metadata(NCHW) == {}
    assert parse_layout(layout_metadata(CHANNELS_LAST)) == CHANNELS_LAST
    for bad in ({"layout": "nhwc"}, {"layout": 1}, {}, "channels-last", {"layout": "nchw", "x": 0}):
        with pytest.raises(ValueError, match="decode"):
            parse_layout({"decode": bad})


def test_batches_follow_the_layouts_frozen_rules() -> None:
    per_frame_640x320 = 4_505_600  # DS-NeRV 0.35M's largest activation at 640x320
    assert frames_per_batch(NCHW, per_frame_640x320, 16) == 14
    assert frames_per_batch(CHANNELS_LAST, per_frame_640x320, 16) == 1
    assert frames_per_batch(CHANNELS_LAST, 1_024_000, 16) == 4  # 320x160
    assert frames_per_batch(CHANNELS_LAST, 217_600, 16) == 16  # 160x80, at most the clip
    # even batches under the cap: a padded last batch would compute frames for nothing
    assert frames_per_batch(NCHW, 268_800, 16) == 16
    assert frames_per_batch(CHANNELS_LAST, 268_800, 16) == 8  # cap 15: 8 + 8, not 15 + 15
    assert frames_per_batch(NCHW, 1, 100) == 32  # 32 + 32 + 32 + 32: 28 padded
    assert frames_per_batch(CHANNELS_LAST, 1, 100) == 25
    assert reader_version(NCHW) == (1, 0)
    assert reader_version(CHANNELS_LAST) == (1, 3)
    assert colour_dtype(NCHW) is np.float64  # as before 1.3
    assert colour_dtype(CHANNELS_LAST) is np.float32


def test_prepare_puts_the_weights_in_the_layout() -> None:
    conv = torch.nn.Conv2d(4, 8, 3)
    assert not prepare(conv, NCHW).weight.is_contiguous(memory_format=torch.channels_last)
    assert prepare(conv, CHANNELS_LAST).weight.is_contiguous(memory_format=torch.channels_last)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, object]]:
    """The same encode written in each layout (6 frames, two epochs and one RD epoch)."""
    out = {}
    for layout in (NCHW, CHANNELS_LAST):
        path = tmp_path_factory.mktemp(layout) / "clip.nvc"
        options = EncodeOptions(
            size=12_000, epochs=2, rd_epochs=1, frames=(0, 6), device="cpu", decode_layout=layout
        )
        out[layout] = (path, encode(CLIP, path, options))
    return out


def test_a_file_declares_its_layout_and_the_reader_it_needs(files) -> None:
    nchw, last = inspect(files[NCHW][0]), inspect(files[CHANNELS_LAST][0])
    assert "decode" not in nchw.metadata
    assert nchw.reader_version <= (1, 1)
    assert last.metadata["decode"] == {"layout": CHANNELS_LAST}
    assert last.reader_version == (1, 3)
    loaded = load_model(files[CHANNELS_LAST][0], device="cpu")
    assert loaded.nvc.layout == CHANNELS_LAST
    assert batch_size_for(loaded) == 6  # a 96x72 frame is far under the batch budget
    convs = [m for m in loaded.model.modules() if isinstance(m, torch.nn.Conv2d)]
    kernels = [m.weight for m in convs if m.in_channels > 1 and m.kernel_size != (1, 1)]
    assert kernels
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in kernels)
    assert not any(p.is_contiguous() for p in kernels)


def test_the_decoder_follows_the_declared_layout(files, monkeypatch) -> None:
    """The decoder prepares the model and sizes its batches in the layout the file declares,
    and the encoder reported the PSNR of exactly those frames."""
    import nvcodec.decoder as decoder
    from nvcodec.io import compute_metrics, read_video

    seen: list[tuple[str, object]] = []
    real_prepare, real_batch = decoder.prepare, decoder.frames_per_batch
    real_colour = decoder.rgb_to_yuv420

    def rgb_to_yuv420(rgb, spec, dtype):  # type: ignore[no-untyped-def]
        seen.append(("colour", dtype))
        return real_colour(rgb, spec, dtype)

    def prepare(model, layout):  # type: ignore[no-untyped-def]
        seen.append(("model", layout))
        return real_prepare(model, layout)

    def frames_per_batch(layout, elements, frames):  # type: ignore[no-untyped-def]
        seen.append(("batch", layout))
        return real_batch(layout, elements, frames)

    monkeypatch.setattr(decoder, "prepare", prepare)
    monkeypatch.setattr(decoder, "frames_per_batch", frames_per_batch)
    monkeypatch.setattr(decoder, "rgb_to_yuv420", rgb_to_yuv420)
    reference, info = read_video(CLIP, frames=(0, 6))
    for layout, (path, report) in files.items():
        seen.clear()
        decoded = decode_frames(path, device="cpu")
        assert set(seen) == {("model", layout), ("batch", layout), ("colour", colour_dtype(layout))}
        psnr = compute_metrics(reference, decoded, info.colour).psnr_yuv
        assert psnr == pytest.approx(report.metrics.psnr_yuv, abs=1e-9)


def test_even_batches_decode_a_range_as_the_slice_of_the_whole(tmp_path: Path) -> None:
    """40 frames under a cap of 32: channels-last decodes two batches of 20 (nchw: 32 and 8
    padded to 32), and a range across the batch boundary equals the slice of the whole."""
    bunny = CLIP.parent / "bunny_160x80_132f.mp4"
    path = tmp_path / "forty.nvc"
    options = EncodeOptions(size=8_000, epochs=1, rd_epochs=1, frames=(0, 40), device="cpu")
    encode(bunny, path, options)
    loaded = load_model(path, device="cpu")
    assert loaded.nvc.config.activation_elements() == 51_200  # cap min(32, 40, 81) = 32
    assert batch_size_for(loaded) == 20
    whole = decode_frames(path, device="cpu")
    part = decode_frames(path, (13, 29), device="cpu")
    for a, b in zip((part.y, part.u, part.v), (whole.y, whole.u, whole.v), strict=True):
        assert (a == b[13:29]).all()


def test_the_cli_offers_the_layouts_the_encoder_knows() -> None:
    from cli.main import encode as encode_command
    from nvcodec.decode_layout import DEFAULT_LAYOUT, LAYOUTS

    option = next(p for p in encode_command.params if p.name == "decode_layout")
    assert sorted(option.type.choices) == sorted(LAYOUTS)  # type: ignore[attr-defined]
    assert option.default == DEFAULT_LAYOUT == EncodeOptions().decode_layout


def test_an_older_reader_refuses_a_channels_last_file(files, monkeypatch) -> None:
    monkeypatch.setattr("bitstream.container.FORMAT_VERSION", (1, 2))
    with pytest.raises(bitstream.UnsupportedVersionError, match=r">= 1\.3.*upgrade"):
        load_model(files[CHANNELS_LAST][0], device="cpu")
    load_model(files[NCHW][0], device="cpu")  # an nchw file still decodes there


def test_an_unknown_layout_is_refused_before_training() -> None:
    with pytest.raises(ConfigError, match="decode layout 'nhwc'"):
        EncodeOptions(decode_layout="nhwc").validate()
