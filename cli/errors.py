"""Turning library errors into one line on stderr and a non-zero exit (only at the CLI edge)."""

from __future__ import annotations

import functools
import signal
import sys
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

EXIT_INTERRUPTED = 130


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised like Ctrl-C so every ``with`` block cleans up (temporary
    ``.part`` files, the checkpoint hint) before the process exits with 128 + the signal."""

    def __init__(self, signum: int) -> None:
        super().__init__()
        self.signum = signum


def _raise_terminated(signum: int, _frame: object) -> None:
    raise Terminated(signum)


def _plain_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """nvcodec's warnings as one plain line (``Warning: …``), not Python's file:line form."""
    if category.__module__.split(".")[0] in ("nvcodec", "bitstream"):
        click.echo(f"Warning: {message}", err=True)
    else:
        _python_showwarning(message, category, filename, lineno, file, line)


_python_showwarning = warnings.showwarning


def _catch_termination() -> None:
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _raise_terminated)


def friendly_errors(func: F) -> F:
    """Run a command; expected failures become ``Error: <one line>`` with exit status 1.

    Expected failures are nvcodec's and bitstream's own errors and file-system errors; anything
    else is a bug and keeps its traceback.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from bitstream import NvcError
        from nvcodec.errors import NvcodecError

        _catch_termination()
        try:
            with warnings.catch_warnings():  # restores the caller's warning display after
                warnings.showwarning = _plain_warning
                return func(*args, **kwargs)
        except (NvcodecError, NvcError) as exc:
            raise click.ClickException(str(exc)) from None
        except BrokenPipeError:
            # The reader of our stdout went away (e.g. `| head`): not an error worth a message.
            sys.stderr.close()
            sys.exit(1)
        except OSError as exc:
            where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
            raise click.ClickException(f"{where}{exc.strerror or exc}") from None
        except KeyboardInterrupt as exc:
            # A command may say how to continue (encode with --checkpoint-dir) in the message.
            click.echo(f"Interrupted; {str(exc) or 'no output was written.'}", err=True)
            sys.exit(128 + exc.signum if isinstance(exc, Terminated) else EXIT_INTERRUPTED)

    return wrapper  # type: ignore[return-value]
