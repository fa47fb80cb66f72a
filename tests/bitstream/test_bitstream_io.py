"""read_file / write_file: round trip, atomicity, overwrite control, file-system errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import bitstream as bs
from bitstream import SectionType as T

SECTIONS = [bs.Section(T.METADATA, b"m" * 10), bs.Section(T.TENSOR_DATA, b"d" * 100)]


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "clip.nvc"
    n = bs.write_file(path, SECTIONS)
    assert n == path.stat().st_size
    c = bs.read_file(path)
    assert c.sections == tuple(SECTIONS)
    assert c.size == n
    assert os.listdir(tmp_path) == ["clip.nvc"]
    assert bs.read_file(str(path)).sections == tuple(SECTIONS)


def test_overwrite_replaces(tmp_path: Path) -> None:
    path = tmp_path / "clip.nvc"
    bs.write_file(path, SECTIONS)
    bs.write_file(path, [bs.Section(T.METADATA, b"new")])
    assert bs.read_file(path).get(T.METADATA).data == b"new"
    assert os.listdir(tmp_path) == ["clip.nvc"]


def test_overwrite_false_refuses_and_keeps_old_file(tmp_path: Path) -> None:
    path = tmp_path / "clip.nvc"
    bs.write_file(path, SECTIONS)
    before = path.read_bytes()
    with pytest.raises(bs.NvcFileExistsError, match="already exists") as info:
        bs.write_file(path, [bs.Section(T.METADATA, b"new")], overwrite=False)
    assert isinstance(info.value, FileExistsError)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["clip.nvc"]


def test_overwrite_false_writes_new_file(tmp_path: Path) -> None:
    path = tmp_path / "new.nvc"
    bs.write_file(path, SECTIONS, overwrite=False)
    assert bs.read_file(path).sections == tuple(SECTIONS)
    assert os.listdir(tmp_path) == ["new.nvc"]


def test_missing_directory(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "clip.nvc"
    with pytest.raises(bs.NvcFileNotFoundError, match="does not exist"):
        bs.write_file(path, SECTIONS)
    assert os.listdir(tmp_path) == []


def test_invalid_sections_touch_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="duplicate"):
        bs.write_file(tmp_path / "x.nvc", [SECTIONS[0], SECTIONS[0]])
    assert os.listdir(tmp_path) == []


def test_failure_during_write_removes_temp_and_keeps_old(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "clip.nvc"
    bs.write_file(path, SECTIONS)
    before = path.read_bytes()

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(bs.NvcIOError, match="No space left on device"):
        bs.write_file(path, [bs.Section(T.METADATA, b"new")])
    assert os.listdir(tmp_path) == ["clip.nvc"]
    assert path.read_bytes() == before


def test_interrupt_during_write_removes_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(src: str, dst: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        bs.write_file(tmp_path / "clip.nvc", SECTIONS)
    assert os.listdir(tmp_path) == []


def test_write_onto_directory(tmp_path: Path) -> None:
    (tmp_path / "d.nvc").mkdir()
    with pytest.raises(bs.NvcIsADirectoryError):
        bs.write_file(tmp_path / "d.nvc", SECTIONS)
    assert os.listdir(tmp_path) == ["d.nvc"]


def test_written_file_has_normal_permissions(tmp_path: Path) -> None:
    path = tmp_path / "clip.nvc"
    bs.write_file(path, SECTIONS)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_read_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.nvc"
    with pytest.raises(bs.NvcFileNotFoundError) as info:
        bs.read_file(path)
    assert str(info.value) == f"{path}: no such file"
    assert isinstance(info.value, FileNotFoundError)


def test_read_directory(tmp_path: Path) -> None:
    with pytest.raises(bs.NvcIsADirectoryError, match="is a directory"):
        bs.read_file(tmp_path)


def test_read_not_regular_file() -> None:
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    with pytest.raises(bs.NvcIOError, match="not a regular file"):
        bs.read_file("/dev/zero")


def test_read_too_large_checks_size_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.nvc"
    with open(path, "wb") as f:
        f.truncate(bs.MAX_FILE_BYTES + 1)  # sparse: costs no disk space
    with pytest.raises(bs.MalformedFileError, match="more than the limit"):
        bs.read_file(path)


def test_read_bad_file_names_it(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"hello world, this is not a video")
    with pytest.raises(bs.NotAnNvcFileError, match=r"notes\.txt: not an \.nvc file"):
        bs.read_file(path)


def test_a_fifo_or_device_is_written_into_not_replaced(tmp_path: Path) -> None:
    import threading

    fifo = tmp_path / "pipe.nvc"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    n = bs.write_file(fifo, SECTIONS, overwrite=False)  # nothing exists to be overwritten
    reader.join(timeout=10)
    assert len(received[0]) == n
    assert not fifo.is_file()
    assert bs.write_file(os.devnull, SECTIONS) == n
    assert not os.path.isfile(os.devnull)
