"""`nvc encode --checkpoint-dir/--resume`: a real ``kill -9`` mid-encode, then a resume that
writes the very file an uninterrupted encode writes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import main

ROOT = Path(__file__).resolve().parents[2]
KILL_AFTER_EPOCH = 8
ARGS = [
    "--size",
    "20k",
    "--epochs",
    "40",
    "--frames",
    "0:4",
    "--device",
    "cpu",
    "--seed",
    "1",
    "-q",
]


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255.0**2 / mse) if mse > 0 else float("inf")


def test_kill_9_then_resume_writes_the_uninterrupted_file(tmp_path: Path, chaplin: Path) -> None:
    from nvcodec import decode_frames
    from nvcodec.io import read_video
    from nvcodec.training.checkpoint import CHECKPOINT_NAME, load_checkpoint

    out, ckdir = tmp_path / "out.nvc", tmp_path / "ck"
    ckpt = ckdir / CHECKPOINT_NAME
    command = [sys.executable, "-m", "cli.main", "encode", str(chaplin), "-o", str(out), *ARGS]
    command += ["--checkpoint-dir", str(ckdir), "--checkpoint-every", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    killed_at = None
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if ckpt.exists():
                try:
                    saved = load_checkpoint(ckpt)
                except OSError:  # replaced between exists() and open(): try again
                    continue
                if saved.phase != "train" or saved.state.epoch >= KILL_AFTER_EPOCH:
                    proc.send_signal(signal.SIGKILL)
                    killed_at = (saved.phase, saved.state.epoch)
                    break
            time.sleep(0.002)
    finally:
        if proc.poll() is None and killed_at is None:
            proc.kill()
        output = proc.communicate(timeout=60)[0].decode(errors="replace")
    assert killed_at is not None, f"the encode ended before it could be killed:\n{output}"
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists(), "a killed encode must not leave an output file"
    assert ckpt.exists()
    at_kill = load_checkpoint(ckpt)  # the last checkpoint is intact after kill -9

    # Resume (in this process) and an uninterrupted encode with the same seed.
    resumed = run("encode", str(chaplin), "-o", str(out), *ARGS, "--checkpoint-dir", str(ckdir))
    assert resumed.exit_code != 0  # a fresh start must not silently discard the checkpoint
    assert "--resume" in resumed.output
    resumed = run(
        "encode", str(chaplin), "-o", str(out), *ARGS, "--checkpoint-dir", str(ckdir), "--resume"
    )
    assert resumed.exit_code == 0, resumed.output
    assert not ckpt.exists()
    assert [p.name for p in ckdir.iterdir()] == []  # no stale temporary files either
    straight = tmp_path / "straight.nvc"
    result = run("encode", str(chaplin), "-o", str(straight), *ARGS)
    assert result.exit_code == 0, result.output

    # Bit-exact on the CPU: the same bytes, hence the same decoded frames.
    a, b = out.read_bytes(), straight.read_bytes()
    reference, _ = read_video(chaplin, (0, 4))
    frames_a, frames_b = decode_frames(out, device="cpu"), decode_frames(straight, device="cpu")
    psnr_a, psnr_b = _psnr(frames_a.y, reference.y), _psnr(frames_b.y, reference.y)
    print(
        f"\nkilled at {killed_at[0]} epoch {killed_at[1]} (checkpoint {at_kill.phase} "
        f"{at_kill.state.epoch}/{at_kill.state.epochs}); resumed {len(a)} B, "
        f"uninterrupted {len(b)} B; PSNR-Y {psnr_a:.4f} vs {psnr_b:.4f} dB"
    )
    assert a == b
    assert np.array_equal(frames_a.y, frames_b.y)
    assert psnr_a == pytest.approx(psnr_b, abs=0.05)


def test_ctrl_c_names_the_resume_command(tmp_path: Path, chaplin: Path, monkeypatch) -> None:
    import nvcodec

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(nvcodec, "encode", interrupted)
    ckdir = tmp_path / "ck"
    out = str(tmp_path / "o.nvc")
    result = run("encode", str(chaplin), "-o", out, "--checkpoint-dir", str(ckdir))
    assert result.exit_code == 130
    assert f"resume with --resume --checkpoint-dir {ckdir}" in result.output
    result = run("encode", str(chaplin), "-o", out)
    assert result.exit_code == 130
    assert "Interrupted; no output was written." in result.output


def test_resume_errors(tmp_path: Path, chaplin: Path) -> None:
    out = str(tmp_path / "o.nvc")
    result = run("encode", str(chaplin), "-o", out, "--resume")
    assert result.exit_code == 1
    assert "--resume needs --checkpoint-dir" in result.output
    result = run("encode", str(chaplin), "-o", out, "--checkpoint-dir", str(tmp_path), "--resume")
    assert result.exit_code == 1
    assert "no checkpoint to resume from" in result.output
    missing = tmp_path / "no" / "ck"
    result = run("encode", str(chaplin), "-o", out, "--checkpoint-dir", str(missing))
    assert result.exit_code == 1
    assert "does not exist" in result.output
    help_text = run("encode", "--help").output
    assert "--checkpoint-dir" in help_text
    assert "--resume" in help_text
