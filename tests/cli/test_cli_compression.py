"""The encode command's compression options and `nvc info`'s per-group report."""

from __future__ import annotations

from click.testing import CliRunner

from cli.main import main


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_encode_help_lists_compression_options():
    result = run("encode", "--help")
    assert result.exit_code == 0
    for option in (
        "--bpp",
        "--preset",
        "--prune",
        "--prune-epochs",
        "--qat-epochs",
        "--code-bits",
        "--bits",
    ):
        assert option in result.output


def test_size_and_bpp_are_mutually_exclusive(tmp_path, chaplin):
    result = run(
        "encode", str(chaplin), "-o", str(tmp_path / "x.nvc"), "--size", "10k", "--bpp", "0.5"
    )
    assert result.exit_code != 0
    assert "mutually exclusive" in result.output
    assert not (tmp_path / "x.nvc").exists()


def test_bad_compression_options(tmp_path, chaplin):
    for args, needle in (
        (["--prune", "0.99"], "prune"),
        (["--code-bits", "1"], "code bits"),
        (["--bpp", "-1"], "bpp"),
        (["--qat-epochs", "-2"], "QAT"),
    ):
        result = run("encode", str(chaplin), "-o", str(tmp_path / "x.nvc"), "--epochs", "1", *args)
        assert result.exit_code == 1, args
        assert needle in result.output, (args, result.output)


def test_encode_bpp_and_info_groups(tmp_path, chaplin):
    out = tmp_path / "b.nvc"
    result = run(
        "encode",
        str(chaplin),
        "-o",
        str(out),
        "--bpp",
        "1.5",
        "--epochs",
        "2",
        "--frames",
        "0:8",
        "--device",
        "cpu",
        "-q",
    )
    assert result.exit_code == 0, result.output
    assert "target 1.5 bpp" in result.output
    assert "compression:" in result.output
    info = run("info", str(out), "--no-tensors")
    assert info.exit_code == 0, info.output
    assert "tensor groups" in info.output
    for group in ("codes", "blocks", "head", "all"):
        assert f"\n  {group} " in info.output
    assert "vs ideal" in info.output
