"""The one error path of every ``gankern`` command: expected failures are one line on stderr.

A command either succeeds or ends with ``gankern <command>: error: <what went wrong>`` on
stderr and a non-zero exit status, never a traceback, when the failure is one the user can
act on. Those are:

* the library's documented errors: ``ValueError`` and ``TypeError`` *raised by gankern's own
  checks* (a bad option, a corrupt file, a checkpoint that does not fit), and the classes
  derived from them (``CheckpointError``, ``CorruptImageError``);
* ``OSError`` of any kind (a missing file, a read-only folder, a full disk), named with its
  path where the system gives one;
* :class:`~gankern.ops.BackendUnavailableError` (an ``impl`` that cannot run here),
  :class:`~gankern.train.run.NonFiniteTrainingError` and
  :class:`~gankern.train.preemption.TrainingInterrupted` (the run stopped on a signal, after
  writing a snapshot);
* ``KeyboardInterrupt`` (Ctrl-C), exit status 130;
* argument errors of the parsers (:class:`CommandParser` prints them on one line).

How a bug is told apart: a ``ValueError``/``TypeError`` whose innermost frame is not a
``raise`` statement in the gankern package (raised inside torch, numpy, Pillow or Python
itself, or a call with wrong arguments) means gankern failed to check something before
passing it on; it, and every other exception type (``RuntimeError``, ``KeyError``,
``AttributeError``, ...), is a bug: its traceback is printed, followed by a line saying so.
``GANKERN_DEBUG=1`` prints the traceback of handled errors as well.

Exit status: 2 for bad input (``ValueError``, ``TypeError``, a missing file, argument
errors), 1 for other failures (I/O, unavailable backend, non-finite training, bugs),
130 for Ctrl-C, 128 + the signal number for a run stopped by a signal.
"""

from __future__ import annotations

import argparse
import linecache
import os
import signal
import sys
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

from gankern.fileio import describe_os_error

DEBUG_ENV = "GANKERN_DEBUG"
_PACKAGE_DIR = str(Path(__file__).resolve().parent.parent) + os.sep


class CommandParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line: ``gankern X: error: ...`` plus a hint
    to ``--help`` on the same line (argparse's default prints the whole usage first)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def debug_enabled() -> bool:
    """True when ``GANKERN_DEBUG`` asks for the tracebacks of handled errors."""
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def raised_by_gankern(exc: BaseException) -> bool:
    """True when ``exc`` comes from a ``raise`` statement in the gankern package (its own
    checks), False when it was raised inside another library or by Python itself."""
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    filename = os.path.abspath(tb.tb_frame.f_code.co_filename)
    if not filename.startswith(_PACKAGE_DIR):
        return False
    return linecache.getline(filename, tb.tb_lineno).lstrip().startswith("raise")


def _expected_classes() -> tuple[type[BaseException], ...]:
    """Exception classes that are always the user's to fix (imported lazily: the CLI must
    start fast and these modules import torch)."""
    from gankern.ops import BackendUnavailableError
    from gankern.train.preemption import TrainingInterrupted
    from gankern.train.run import NonFiniteTrainingError

    return BackendUnavailableError, NonFiniteTrainingError, TrainingInterrupted


def user_message(exc: BaseException) -> tuple[str, int] | None:
    """``(one-line message, exit status)`` for an expected failure, None for a bug."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", 130
    if isinstance(exc, OSError):
        status = 2 if isinstance(exc, FileNotFoundError) else 1
        return describe_os_error(exc), status
    if isinstance(exc, (ValueError, TypeError)):
        if raised_by_gankern(exc):
            return str(exc) or type(exc).__name__, 2
        return None
    if "torch" in sys.modules and isinstance(exc, _expected_classes()):
        signum = getattr(exc, "signum", None)
        return str(exc), (128 + signum if signum else 1)
    return None


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in text.strip().splitlines() if part.strip())


def report_failure(command: str, exc: BaseException) -> int:
    """Print ``exc`` as the command's error line (or, for a bug, its traceback and a line
    saying so); returns the exit status."""
    expected = user_message(exc)
    if expected is None:
        traceback.print_exception(exc, file=sys.stderr)
        print(
            f"gankern {command}: internal error ({type(exc).__name__}): this is a bug in "
            "gankern; please report it with the traceback above",
            file=sys.stderr,
        )
        return 1
    message, status = expected
    if debug_enabled():
        traceback.print_exception(exc, file=sys.stderr)
    # A run stopped on request (SIGTERM, Ctrl-C) is not an error: it says how to go on.
    kind = "" if getattr(exc, "signum", None) else "error: "
    print(f"gankern {command}: {kind}{_one_line(message)}", file=sys.stderr, flush=True)
    return status


def _show_warning(command: str):
    def show(message, category, filename, lineno, file=None, line=None):
        print(
            f"gankern {command}: warning: {_one_line(str(message))}",
            file=file or sys.stderr,
            flush=True,
        )

    return show


def run_command(command: str, func: Callable, args) -> int:
    """Run a subcommand's ``func(args)``; every failure is reported by :func:`report_failure`,
    and warnings are shown as one line each (``gankern X: warning: ...``)."""
    try:
        with warnings.catch_warnings():
            if not debug_enabled():
                warnings.showwarning = _show_warning(command)
            return int(func(args) or 0)
    except SystemExit:
        raise
    except BrokenPipeError:  # `gankern ... | head`: the reader left; nothing to report
        _silence_stdout()
        return 128 + signal.SIGPIPE
    except BaseException as exc:  # noqa: BLE001 - the one place where every failure ends
        return report_failure(command, exc)


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
