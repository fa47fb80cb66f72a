"""Writers: exact Y4M round trips, stdout, PNG sequences, H.264, up-front checks, atomicity."""

from __future__ import annotations

import io
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from nvcodec.errors import OutputError
from nvcodec.io import (
    ColourSpec,
    Yuv420Frames,
    check_output,
    compute_metrics,
    open_writer,
    read_video,
    yuv420_to_rgb,
)

CHAPLIN = Path(__file__).resolve().parents[1] / "data" / "clips" / "chaplin_96x72_16f.mkv"


def _random(t: int, h: int, w: int, seed: int = 0) -> Yuv420Frames:
    rng = np.random.default_rng(seed)
    c = (t, (h + 1) // 2, (w + 1) // 2)
    return Yuv420Frames(
        rng.integers(16, 236, (t, h, w), dtype=np.uint8),
        rng.integers(16, 241, c, dtype=np.uint8),
        rng.integers(16, 241, c, dtype=np.uint8),
    )


def _same(a: Yuv420Frames, b: Yuv420Frames) -> None:
    for p, q in zip((a.y, a.u, a.v), (b.y, b.u, b.v), strict=True):
        np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize(("w", "h"), [(32, 18), (33, 17), (1, 1)])
@pytest.mark.parametrize("colour", [ColourSpec(), ColourSpec("bt601", "full")])
def test_y4m_round_trip_exact(tmp_path: Path, w: int, h: int, colour: ColourSpec) -> None:
    frames = _random(3, h, w)
    out = str(tmp_path / "out.y4m")
    fps = Fraction(30000, 1001)
    with open_writer(out, width=w, height=h, fps=fps, colour=colour) as writer:
        writer.write(frames[:1])
        writer.write(frames[1:])
    back, info = read_video(out)
    _same(back, frames)
    assert info.fps == fps
    assert info.colour.range == colour.range
    assert [n for n in os.listdir(tmp_path)] == ["out.y4m"]  # no temp files left


def test_y4m_header(tmp_path: Path) -> None:
    out = tmp_path / "h.y4m"
    colour = ColourSpec(range="full")
    with open_writer(str(out), width=5, height=3, fps=Fraction(24), colour=colour) as writer:
        writer.write(_random(1, 3, 5))
    data = out.read_bytes()
    header = b"YUV4MPEG2 W5 H3 F24:1 Ip A1:1 C420jpeg XYSCSS=420JPEG XCOLORRANGE=FULL\n"
    assert data.startswith(header + b"FRAME\n")
    assert len(data) == len(header) + 6 + 15 + 2 * 6


def test_stdout(tmp_path: Path) -> None:
    frames = _random(2, 17, 33)
    buf = io.BytesIO()
    with open_writer(
        "-", width=33, height=17, fps=Fraction(25), colour=ColourSpec(), stdout=buf
    ) as writer:
        writer.write(frames)
    path = tmp_path / "s.y4m"
    path.write_bytes(buf.getvalue())
    assert buf.getvalue().startswith(b"YUV4MPEG2 W33 H17 F25:1")
    back, _ = read_video(path)
    _same(back, frames)


def test_png_sequence(tmp_path: Path) -> None:
    frames = _random(3, 17, 33)
    colour = ColourSpec("bt709", "limited")
    pattern = str(tmp_path / "%05d.png")
    with open_writer(
        pattern, width=33, height=17, fps=Fraction(25), colour=colour, first_number=10
    ) as writer:
        writer.write(frames)
    assert sorted(os.listdir(tmp_path)) == ["00010.png", "00011.png", "00012.png"]
    expected = np.round(yuv420_to_rgb(frames.y, frames.u, frames.v, colour) * 255)
    for i in range(3):
        with av.open(str(tmp_path / f"{10 + i:05d}.png")) as c:
            frame = next(c.decode(video=0))
            assert frame.format.name == "rgb24"
            np.testing.assert_array_equal(frame.to_ndarray(), expected[i].astype(np.uint8))


@pytest.mark.parametrize("suffix", ["mp4", "mkv"])
def test_h264_decodes_back(tmp_path: Path, suffix: str) -> None:
    frames, info = read_video(CHAPLIN, (0, 6))
    out = str(tmp_path / f"out.{suffix}")
    with open_writer(out, width=96, height=72, fps=Fraction(25), colour=info.colour) as writer:
        writer.write(frames)
    back, back_info = read_video(out)
    assert back.count == 6
    assert back_info.fps == 25
    assert back_info.colour == info.colour
    assert compute_metrics(frames, back, info.colour).psnr_y > 40
    assert os.listdir(tmp_path) == [f"out.{suffix}"]


@pytest.mark.parametrize(
    "colour",
    [ColourSpec("bt601", "full"), ColourSpec("bt2020"), ColourSpec("smpte240m"), ColourSpec("fcc")],
)
def test_h264_carries_the_matrix_and_range(tmp_path: Path, colour: ColourSpec) -> None:
    frames = _random(2, 16, 16)
    out = str(tmp_path / "full.mp4")
    with open_writer(out, width=16, height=16, fps=Fraction(25), colour=colour) as writer:
        writer.write(frames)
    _, info = read_video(out)
    assert info.colour == colour


def test_h264_odd_size_refused(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="even width and height"):
        open_writer(
            str(tmp_path / "odd.mp4"), width=33, height=17, fps=Fraction(25), colour=ColourSpec()
        )
    assert os.listdir(tmp_path) == []


def _write_then_fail(out: str, frames: Yuv420Frames, *, overwrite: bool) -> None:
    """Write some frames, then fail inside the ``with`` block."""
    with open_writer(
        out,
        width=frames.width,
        height=frames.height,
        fps=Fraction(25),
        colour=ColourSpec(),
        overwrite=overwrite,
    ) as writer:
        writer.write(frames)
        raise RuntimeError("boom")


@pytest.mark.parametrize("name", ["out.y4m", "out.mp4", "%03d.png"])
def test_exception_leaves_nothing(tmp_path: Path, name: str) -> None:
    out = str(tmp_path / name)
    frames = _random(2, 16, 16)
    with pytest.raises(RuntimeError, match="boom"):
        _write_then_fail(out, frames, overwrite=False)
    assert os.listdir(tmp_path) == []


def test_exception_keeps_existing_file(tmp_path: Path) -> None:
    out = tmp_path / "keep.y4m"
    out.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"):
        _write_then_fail(str(out), _random(1, 4, 4), overwrite=True)
    assert out.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["keep.y4m"]


def test_wrong_frame_size(tmp_path: Path) -> None:
    with (
        pytest.raises(ValueError, match="writer expects 4x4"),
        open_writer(
            str(tmp_path / "x.y4m"), width=4, height=4, fps=Fraction(25), colour=ColourSpec()
        ) as writer,
    ):
        writer.write(_random(1, 6, 6))
    assert os.listdir(tmp_path) == []


def test_check_output(tmp_path: Path) -> None:
    check_output("-", overwrite=False)
    check_output(str(tmp_path / "a.y4m"), overwrite=False)
    check_output(str(tmp_path / "f_%d.png"), overwrite=False)
    with pytest.raises(OutputError, match=r"folder '.*missing' does not exist"):
        check_output(str(tmp_path / "missing" / "x.y4m"), overwrite=False)
    with pytest.raises(OutputError, match=r"folder '.*missing' does not exist"):
        check_output(str(tmp_path / "missing" / "%05d.png"), overwrite=False)
    (tmp_path / "a.mp4").write_bytes(b"")
    with pytest.raises(OutputError, match=r"a\.mp4: exists \(use -y to overwrite\)"):
        check_output(str(tmp_path / "a.mp4"), overwrite=False)
    check_output(str(tmp_path / "a.mp4"), overwrite=True)
    (tmp_path / "00007.png").write_bytes(b"")
    with pytest.raises(OutputError, match="use -y to overwrite"):
        check_output(str(tmp_path / "%05d.png"), overwrite=False)
    check_output(str(tmp_path / "%05d.png"), overwrite=True)
    check_output(str(tmp_path / "other_%05d.png"), overwrite=False)


@pytest.mark.parametrize("bad", ["f.png", "f_%d_%d.png", "f_%s.png", "f%.png", "%05x.png"])
def test_bad_png_patterns(tmp_path: Path, bad: str) -> None:
    with pytest.raises(OutputError, match="pattern"):
        check_output(str(tmp_path / bad), overwrite=False)


def test_percent_literal_in_pattern(tmp_path: Path) -> None:
    pattern = str(tmp_path / "100%%_%02d.png")
    check_output(pattern, overwrite=False)
    with open_writer(pattern, width=2, height=2, fps=Fraction(1), colour=ColourSpec()) as w:
        w.write(_random(1, 2, 2))
    assert os.listdir(tmp_path) == ["100%_00.png"]


@pytest.mark.parametrize("bad", ["out.avi", "out", "out.yuv", "out.webm"])
def test_unknown_kind(tmp_path: Path, bad: str) -> None:
    with pytest.raises(OutputError, match=r"unknown output kind; use '-'"):
        check_output(str(tmp_path / bad), overwrite=False)


def test_output_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "d.y4m").mkdir()
    with pytest.raises(OutputError, match="directory"):
        check_output(str(tmp_path / "d.y4m"), overwrite=True)


# --- special targets, races, short writes ---------------------------------------------------------


def _open(output: str, overwrite: bool = False):
    return open_writer(
        output, width=8, height=6, fps=Fraction(25), colour=ColourSpec(), overwrite=overwrite
    )


@pytest.mark.parametrize("name", ["out.y4m", "out.mp4"])
def test_an_output_that_appears_meanwhile_is_not_replaced(tmp_path: Path, name: str) -> None:
    """The no-overwrite check is atomic: a file created after the writer opened survives."""
    output = tmp_path / name
    writer = _open(str(output))
    writer.write(_random(2, 6, 8))
    output.write_bytes(b"the other decode")
    with pytest.raises(OutputError, match="exists"):
        writer.__exit__(None, None, None)
    assert output.read_bytes() == b"the other decode"
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary file left


def test_a_png_that_appears_after_its_check_is_not_replaced(tmp_path, monkeypatch) -> None:
    output = tmp_path / "%03d.png"
    with _open(str(output)) as writer:
        (tmp_path / "000.png").write_bytes(b"the other decode")
        monkeypatch.setattr(os.path, "lexists", lambda _: False)  # as if it came after the check
        with pytest.raises(OutputError, match="exists"):
            writer.write(_random(1, 6, 8))
    assert (tmp_path / "000.png").read_bytes() == b"the other decode"
    assert [p.name for p in tmp_path.iterdir()] == ["000.png"]


def test_fifo_is_written_into_not_replaced(tmp_path: Path) -> None:
    import threading

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    frames = _random(3, 6, 8)
    with _open(str(fifo)) as writer:  # no -y needed: nothing is replaced
        writer.write(frames)
    reader.join(timeout=10)
    assert received[0].startswith(b"YUV4MPEG2 W8 H6")
    assert received[0].count(b"FRAME\n") == 3
    assert os.path.exists(fifo)
    assert not os.path.isfile(fifo)


def test_device_is_written_into_not_replaced() -> None:
    with _open(os.devnull, overwrite=True) as writer:
        writer.write(_random(2, 6, 8))
    assert not os.path.isfile(os.devnull)


def test_a_pipe_takes_only_y4m(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.mkv"
    os.mkfifo(fifo)
    with pytest.raises(OutputError, match="only Y4M"):
        check_output(str(fifo), overwrite=True)


class _ShortWrites(io.RawIOBase):
    """A pipe whose reader has gone: the first write is short, the next ones fail."""

    def __init__(self) -> None:
        self.calls = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]
        self.calls += 1
        if self.calls == 1:
            return min(len(data), 10)
        raise BrokenPipeError(32, "Broken pipe")


def test_a_short_write_to_a_stream_is_an_error() -> None:
    stream = io.BufferedWriter(_ShortWrites(), buffer_size=16)
    with (
        pytest.raises(BrokenPipeError),
        open_writer(
            "-", width=8, height=6, fps=Fraction(25), colour=ColourSpec(), stdout=stream
        ) as writer,
    ):
        writer.write(_random(4, 6, 8))


def test_errors_name_the_output_not_its_temporary_file(tmp_path: Path, monkeypatch) -> None:
    import builtins

    real_open = builtins.open

    def failing_open(file, mode="r", *args, **kwargs):
        if ".part" in str(file) and "w" in mode:
            raise OSError(28, "No space left on device", str(file))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", failing_open)
    with pytest.raises(OutputError) as caught:
        _open(str(tmp_path / "out.y4m"))
    assert str(caught.value) == f"{tmp_path / 'out.y4m'}: cannot write (No space left on device)"
    assert ".part" not in str(caught.value)
