"""Every command through click's CliRunner (and a real subprocess where the pipe matters)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import main
from nvcodec.io import read_video

NVC = [sys.executable, "-m", "cli.main"]
ROOT = Path(__file__).parent.parent.parent


def run(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.mark.parametrize("cmd", [[], ["encode"], ["decode"], ["info"], ["models"]])
def test_help(cmd):
    result = run(*cmd, "--help")
    assert result.exit_code == 0
    assert "Usage:" in result.output


def test_help_does_not_import_torch():
    code = "import sys; from cli.main import main; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_models_lists_both_models():
    result = run("models")
    assert result.exit_code == 0
    assert "nerv " in result.output
    assert "ds-nerv" in result.output


def test_encode_prints_a_summary_computed_from_the_file(tmp_path, chaplin):
    out = tmp_path / "c.nvc"
    result = run(
        "encode",
        str(chaplin),
        "-o",
        str(out),
        "--size",
        "10k",
        "--epochs",
        "2",
        "--frames",
        "2:6",
        "--device",
        "cpu",
        "--seed",
        "1",
        "-q",
    )
    assert result.exit_code == 0, result.output
    assert out.exists()
    size = out.stat().st_size
    assert f"{size:,} bytes" in result.stdout
    assert f"{8 * size / (96 * 72 * 4):.4f} bpp" in result.stdout
    for word in ("PSNR-YUV 6:1:1", "PSNR-RGB", "MS-SSIM", "train", "decode"):
        assert word in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lambda", "lots"], "expected a number or 'auto'"),
        (["--lambda", "-1"], "lambda must be"),
        (["--lambda", "0.01", "--bits", "6"], "--bits sets the fixed-depth QAT pipeline"),
        (["--rd-epochs", "3", "--pipeline", "qat"], "--rd-epochs applies to RD training"),
    ],
)
def test_bad_rd_options_fail_before_anything_runs(tmp_path, chaplin, args, message):
    out = tmp_path / "c.nvc"
    result = run("encode", str(chaplin), "-o", str(out), "-q", *args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


def test_info(small_encode):
    path, report = small_encode
    result = run("info", str(path))
    assert result.exit_code == 0
    for word in (
        "nvc format 1.3 (needs reader ≥ 1.3)",  # the channels-last decode layout
        "decode layout channels-last",
        "nerv",
        f"{report.parameters:,} parameters",
        "tensor_data",
        "static_codes",
        "dynamic_codes",
        "ds-nerv",
        "bpp",
    ):
        assert word in result.output


@pytest.mark.parametrize("name", ["out.y4m", "out.mp4", "frames/%03d.png"])
def test_decode_outputs(small_encode, tmp_path, name):
    path, _ = small_encode
    (tmp_path / "frames").mkdir()
    out = tmp_path / name
    result = run("decode", str(path), "-o", str(out), "--frames", "2:5", "-q")
    assert result.exit_code == 0, result.output
    if "%" in name:
        assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == [
            "002.png",
            "003.png",
            "004.png",
        ]
    else:
        frames, info = read_video(out)
        assert (frames.count, info.width, info.height) == (3, 96, 72)


def test_decode_to_stdout_pipes_y4m(small_encode, tmp_path):
    path, _ = small_encode
    y4m = tmp_path / "ref.y4m"
    assert run("decode", str(path), "-o", str(y4m), "-q").exit_code == 0
    # Same thread count as this process (the suite runs torch on one thread): CPU convolutions
    # may round differently with another thread count (see README, "Determinism").
    piped = subprocess.run(
        [*NVC, "decode", str(path), "-o", "-", "-q"],
        capture_output=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert piped.stdout == y4m.read_bytes()
    assert piped.stdout.startswith(b"YUV4MPEG2 W96 H72 F25:1")


def test_frame_range_equals_slice_of_full_decode(small_encode, tmp_path):
    path, _ = small_encode
    run("decode", str(path), "-o", str(tmp_path / "all.y4m"), "-q")
    run("decode", str(path), "-o", str(tmp_path / "part.y4m"), "--frames", "5:8", "-q")
    full, _ = read_video(tmp_path / "all.y4m")
    part, _ = read_video(tmp_path / "part.y4m")
    assert np.array_equal(part.y, full.y[5:8])


# --- bad input: one line on stderr, non-zero exit, no traceback, no output left behind ---


def _zero_frame_video(path: Path) -> None:
    # A valid Y4M stream header with no FRAME: a real video file that holds zero frames.
    path.write_bytes(b"YUV4MPEG2 W32 H16 F25:1 Ip A1:1 C420jpeg\n")


def _assert_clean_failure(result, *outputs: Path) -> None:
    assert result.exit_code != 0
    assert result.stderr.startswith("Error: ")
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.output
    for out in outputs:
        assert not out.exists(), out
    leftovers = (
        [p for p in outputs[0].parent.glob("*") if p.name.startswith(".")] if outputs else []
    )
    assert not leftovers, leftovers


def test_encode_missing_input(tmp_path):
    out = tmp_path / "x.nvc"
    result = run("encode", str(tmp_path / "nope.mp4"), "-o", str(out))
    _assert_clean_failure(result, out)
    assert "nope.mp4" in result.stderr


def test_encode_non_video(tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_bytes(b"this is not a video at all\n" * 50)
    out = tmp_path / "x.nvc"
    _assert_clean_failure(run("encode", str(bad), "-o", str(out)), out)


def test_encode_zero_frames(tmp_path):
    empty = tmp_path / "empty.y4m"
    _zero_frame_video(empty)
    out = tmp_path / "x.nvc"
    result = run("encode", str(empty), "-o", str(out))
    _assert_clean_failure(result, out)
    assert "no such file" not in result.stderr
    assert "frames" in result.stderr


def test_encode_output_folder_missing(tmp_path, chaplin):
    out = tmp_path / "no" / "x.nvc"
    _assert_clean_failure(run("encode", str(chaplin), "-o", str(out)), out)


def test_encode_refuses_to_overwrite_without_y(tmp_path, chaplin):
    out = tmp_path / "x.nvc"
    out.write_bytes(b"precious")
    result = run("encode", str(chaplin), "-o", str(out), "--epochs", "1")
    assert result.exit_code != 0
    assert "-y" in result.stderr
    assert out.read_bytes() == b"precious"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--size", "lots"], "size"),
        (["--frames", "9:3"], "frame range"),
        (["--model", "nope"], "unknown model"),
        (["--device", "tpu"], "device"),
        (["--frames", "10:99"], "16 frames"),
        (["--size", "500M"], "largest model the decoder rebuilds"),
        (["--seed", str(2**70)], "seed"),
        (["--bpp", "0.5", "--bits", "3"], "--bits 3 leaves it none"),
        (["--patch", "64"], "cannot train on patches"),
    ],
)
def test_encode_bad_options(tmp_path, chaplin, args, needle):
    out = tmp_path / "x.nvc"
    result = run("encode", str(chaplin), "-o", str(out), "--epochs", "1", *args)
    _assert_clean_failure(result, out)
    assert needle in result.stderr


@pytest.mark.parametrize("damage", ["truncate", "flip", "future", "empty", "not-nvc"])
def test_decode_damaged_file(small_encode, tmp_path, damage):
    path, _ = small_encode
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        data[len(data) // 3] ^= 0x04
    elif damage == "future":
        data[12:14] = (3).to_bytes(2, "little")
    elif damage == "empty":
        data = bytearray()
    else:
        data = bytearray(b"RIFF....WAVEfmt " + bytes(100))
    bad = tmp_path / "bad.nvc"
    bad.write_bytes(bytes(data))
    out = tmp_path / "out.y4m"
    result = run("decode", str(bad), "-o", str(out))
    _assert_clean_failure(result, out)
    assert "bad.nvc" in result.stderr


def test_decode_missing_file_and_folder(small_encode, tmp_path):
    path, _ = small_encode
    out = tmp_path / "out.y4m"
    _assert_clean_failure(run("decode", str(tmp_path / "none.nvc"), "-o", str(out)), out)
    out2 = tmp_path / "missing" / "out.y4m"
    _assert_clean_failure(run("decode", str(path), "-o", str(out2)), out2)
    _assert_clean_failure(run("decode", str(path), "-o", str(tmp_path / "out.avi2")))
    _assert_clean_failure(run("info", str(tmp_path / "none.nvc")))


def test_real_process_reports_one_line(tmp_path):
    bad = tmp_path / "bad.nvc"
    bad.write_bytes(b"\x89NVC\r\n\x1a\n" + bytes(10))
    proc = subprocess.run(
        [*NVC, "decode", str(bad), "-o", str(tmp_path / "o.y4m")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("Error: ")
    assert proc.stderr.count("\n") == 1
    assert not (tmp_path / "o.y4m").exists()


def test_encode_progress_counts_steps_per_phase(tmp_path, chaplin):
    result = run(
        "encode",
        str(chaplin),
        "-o",
        str(tmp_path / "x.nvc"),
        "--size",
        "6k",
        "--epochs",
        "2",
        "--rd-epochs",
        "1",
        "--frames",
        "0:4",
    )
    assert result.exit_code == 0, result.stderr
    assert "training" in result.stderr
    assert "step" in result.stderr  # the bars count optimiser steps, not only epochs
    first = result.stderr.splitlines()[0]  # the plan comes before any training
    assert first.startswith("plan: ds-nerv, ")
    assert "training 2, RD training 1 (4 steps each)" in first
    assert "ms per step, measured" in first  # the estimate, from timed steps


@pytest.mark.parametrize(
    "extra", [[], ["--model", "hinerv", "--patch", "32"], ["--model", "hnerv"]]
)
def test_encode_dry_run_prints_the_plan_and_writes_nothing(tmp_path, chaplin, extra):
    out = tmp_path / "x.nvc"
    result = run("encode", str(chaplin), "-o", str(out), "--size", "8k", "--dry-run", *extra)
    assert result.exit_code == 0, result.stderr
    assert not out.exists()
    lines = result.stdout.splitlines()
    assert lines[0].startswith("plan: ")
    parameters = int(lines[0].split(", ")[1].split()[0].replace(",", ""))
    assert parameters <= 8_000
    shares = [line for line in lines if line.strip().endswith("%")]
    assert sum(int(line.split()[-2].replace(",", "")) for line in shares) == parameters
    assert any(line.startswith("estimate: ") for line in lines)
    assert "RD training" in result.stdout


@pytest.mark.parametrize(
    ("amx", "extra", "arithmetic"),
    [
        (True, [], "(bf16 autocast)"),
        (True, ["--precision", "fp32"], "(fp32)"),
        (False, [], "(fp32)"),
    ],
)
def test_encode_plan_names_the_training_arithmetic(
    tmp_path, chaplin, monkeypatch, amx, extra, arithmetic
):
    import torch

    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    out = tmp_path / "x.nvc"
    args = ("encode", str(chaplin), "-o", str(out), "--size", "8k", "--device", "cpu")
    result = run(*args, "--dry-run", *extra)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0].endswith(f"on cpu {arithmetic}")


def test_encode_options_refuse_an_unknown_precision():
    from nvcodec import EncodeOptions
    from nvcodec.errors import ConfigError

    assert EncodeOptions(precision="fp32").train_config().amp is False
    assert EncodeOptions().train_config().amp is True
    with pytest.raises(ConfigError, match="precision 'fp16': expected one of auto, fp32"):
        EncodeOptions(precision="fp16").validate()


def test_encode_dry_run_checks_options_first(tmp_path, chaplin):
    out = tmp_path / "x.nvc"
    result = run("encode", str(chaplin), "-o", str(out), "--dry-run", "--size", "500M")
    _assert_clean_failure(result, out)


def test_encode_refuses_an_unwritable_folder_before_training(tmp_path, chaplin, monkeypatch):
    import nvcodec.encoder as encoder

    def unwritable(*args, **kwargs):  # as a read-only folder answers (root ignores mode bits)
        raise PermissionError(13, "Permission denied")

    def no_training(*args, **kwargs):
        raise AssertionError("trained before checking the output folder")

    monkeypatch.setattr(encoder.tempfile, "NamedTemporaryFile", unwritable)
    monkeypatch.setattr(encoder, "train", no_training)
    out = tmp_path / "x.nvc"
    result = run("encode", str(chaplin), "-o", str(out), "--epochs", "1")
    _assert_clean_failure(result, out)
    assert "cannot write" in result.stderr
    assert "Permission denied" in result.stderr


def test_dry_run_splits_the_budget_by_stage(tmp_path, chaplin):
    out = tmp_path / "x.nvc"
    result = run(
        "encode", str(chaplin), "-o", str(out), "--size", "30k", "--model", "nerv++", "--dry-run"
    )
    assert result.exit_code == 0, result.stderr
    parts = [line.split()[0] for line in result.stdout.splitlines() if line.strip().endswith("%")]
    assert parts[:2] == ["stem", "blocks.0"]
    assert parts[-1] == "head"
    assert len([p for p in parts if p.startswith("blocks.")]) >= 3


# --- outputs that are not regular files, readers that leave, signals ------------------------------


def test_decode_into_a_device_leaves_it_a_device(small_encode):
    path, _ = small_encode
    result = run("decode", str(path), "-o", os.devnull)  # nothing is replaced: no -y needed
    assert result.exit_code == 0, result.output
    assert not os.path.isfile(os.devnull)


def test_a_reader_that_leaves_early_is_a_failure(small_encode):
    """`nvc decode -o - | head -c 100`: the short write is not success (exit status ≠ 0)."""
    path, _ = small_encode
    proc = subprocess.Popen(
        [*NVC, "decode", str(path), "-o", "-", "--fps", "4x", "--device", "cpu"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stdout.read(100).startswith(b"YUV4MPEG2")
    proc.stdout.close()  # 32 frames of 96×72 (330 kB) do not fit in the pipe
    assert proc.wait(timeout=120) != 0
    assert b"decoded" not in proc.stderr.read()


def test_sigterm_cleans_up_and_exits_with_128_plus_the_signal(tmp_path):
    import signal
    from fractions import Fraction

    from cli.errors import friendly_errors
    from nvcodec.io import ColourSpec, Yuv420Frames, open_writer

    chroma = np.zeros((2, 3, 4), np.uint8)
    frames = Yuv420Frames(np.zeros((2, 6, 8), np.uint8), chroma, chroma)

    @friendly_errors
    def job() -> None:
        out = str(tmp_path / "x.y4m")
        with open_writer(out, width=8, height=6, fps=Fraction(25), colour=ColourSpec()) as w:
            w.write(frames)
            os.kill(os.getpid(), signal.SIGTERM)
            w.write(frames)

    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)
    try:
        with pytest.raises(SystemExit) as exited:
            job()
    finally:
        signal.signal(signal.SIGTERM, before[0])
        signal.signal(signal.SIGHUP, before[1])
    assert exited.value.code == 128 + signal.SIGTERM
    assert list(tmp_path.iterdir()) == []  # the .part file is gone


def test_encode_into_a_device_verifies_then_streams(chaplin):
    result = run(
        "encode", str(chaplin), "-o", os.devnull, "--model", "nerv", "--size", "10k",
        "--epochs", "1", "--frames", "0:3", "-q",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "quality, decoded from the file" in result.output
    assert not os.path.isfile(os.devnull)


def test_progress_shows_the_whole_encodes_eta(monkeypatch):
    """Phase weights from the plan turn the pace so far into the time left for every phase."""
    from types import SimpleNamespace

    import cli.render as render

    clock = iter([100.0, 100.0, 110.0, 130.0])
    monkeypatch.setattr(render, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    progress = render.TrainingProgress()
    progress.set_plan({"train": 100.0, "rd": 240.0, "rd-ste": 60.0})
    with progress:
        progress.step("train", 1, 100)  # starts the clock at 100 s
        progress.step("train", 50, 100)  # 10 s for 50 of 400 steps' work: 70 s left
        assert progress._postfix["encode ETA"] == "1:10"
        progress.step("rd", 60, 240)  # 30 s for 160 of 400: 45 s left
        assert progress._postfix["encode ETA"] == "0:45"


def test_progress_counts_undone_epochs():
    """A diverged epoch that training undid shows as a count; ordinary epochs add nothing."""
    import cli.render as render
    from nvcodec.training import EpochStats

    progress = render.TrainingProgress()
    with progress:
        progress.update(EpochStats(1, 4, 0.01, 20.0, 1e-3, 1.0))
        assert "undone (diverged)" not in progress._postfix
        progress.update(EpochStats(2, 4, 0.05, 13.0, 5e-4, 2.0, undone=True))
        progress.update(EpochStats(3, 4, 0.01, 20.0, 5e-4, 3.0, phase="rd", undone=True))
        assert progress._postfix["undone (diverged)"] == "2"
    # and the encode's summary says so, only when it happened
    assert render._undone(0) == ""
    assert render._undone(1) == "; 1 diverged epoch undone"
    assert render._undone(3) == "; 3 diverged epochs undone"


def test_input_warnings_are_one_plain_line(tmp_path):
    import av

    source = tmp_path / "rotated.mp4"
    with av.open(str(source), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 16, "yuv420p"
        stream.set_display_rotation(90)
        for i in range(2):
            rgb = np.full((16, 32, 3), 40 * i, np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode(None))
    result = run("encode", str(source), "-o", str(tmp_path / "x.nvc"), "--size", "5k", "--dry-run")
    assert result.exit_code == 0, result.stderr
    warning = [line for line in result.stderr.splitlines() if "rotate" in line]
    assert warning == [warning[0]]
    assert warning[0].startswith(f"Warning: {source}: the source asks players to rotate")
    assert "VideoInputWarning" not in result.stderr
    assert ".py:" not in result.stderr


def test_mp4_output_is_deterministic(small_encode, tmp_path):
    """x264's output depends only on the frames (no thread-timing effects): byte-identical."""
    path, _ = small_encode
    outputs = []
    for name in ("a.mp4", "b.mp4"):
        assert run("decode", str(path), "-o", str(tmp_path / name), "-q").exit_code == 0
        outputs.append((tmp_path / name).read_bytes())
    assert outputs[0] == outputs[1]
