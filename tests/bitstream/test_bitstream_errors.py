"""The error hierarchy: every class is an NvcError and the matching builtin, str() is the line."""

from __future__ import annotations

import pytest

import bitstream as bs

CLASSES = [
    (bs.NvcFileNotFoundError, FileNotFoundError),
    (bs.NvcFileExistsError, FileExistsError),
    (bs.NvcIsADirectoryError, IsADirectoryError),
    (bs.NvcIOError, OSError),
    (bs.NotAnNvcFileError, ValueError),
    (bs.TruncatedFileError, ValueError),
    (bs.ChecksumError, ValueError),
    (bs.UnsupportedVersionError, ValueError),
    (bs.MalformedFileError, ValueError),
    (bs.UnknownSectionError, ValueError),
    (bs.MissingSectionError, ValueError),
]


@pytest.mark.parametrize(("cls", "builtin"), CLASSES)
def test_hierarchy_and_message(cls: type[Exception], builtin: type[Exception]) -> None:
    message = "clip.nvc: something is wrong (expected 1, got 2)"
    err = cls(message)
    assert isinstance(err, bs.NvcError)
    assert isinstance(err, builtin)
    assert str(err) == message
    assert err.args == (message,)
    with pytest.raises(bs.NvcError, match=r"^clip\.nvc: something"):
        raise err


def test_oserror_subclass_keeps_plain_message() -> None:
    err = bs.NvcFileNotFoundError("x.nvc: no such file")
    assert isinstance(err, OSError)
    assert err.errno is None
    assert str(err) == "x.nvc: no such file"
