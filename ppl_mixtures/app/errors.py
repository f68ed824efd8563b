"""Exit codes: which failures are the user's input (2), which are ours (1), and signals.

An error counts as "our input check" when it is raised while the CLI reads and checks the
input (arguments, data file, model, options, ``--out``: :func:`input_checks`), or when a
ValueError, TypeError, OSError or NotImplementedError is raised by a ``raise`` statement
in a ``ppl_mixtures`` module during a fit (an engine checking its options). An error
raised inside PyMC, numpy or elsewhere is internal, and so is anything raised under
:func:`internal` (the demo's built-in data and settings). SIGTERM/SIGINT unwind the
command (:func:`signals_unwind`) and exit 128 + the signal's number.

Only the standard library is imported at module level.
"""

from __future__ import annotations

import linecache
import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ppl_mixtures.app.ui import PROG, one_line

__all__ = [
    "Signalled",
    "UsageError",
    "exit_code",
    "input_checks",
    "internal",
    "is_input_error",
    "quiet_library_logs",
    "signals_unwind",
]

_INPUT_KINDS = (ValueError, TypeError, OSError, NotImplementedError)
_KIND = "_ppl_mixtures_kind"


class UsageError(ValueError):
    """Bad command-line input detected by the CLI itself (exit code 2)."""


class Signalled(BaseException):
    """SIGTERM/SIGINT arrived: unwind (context managers clean up), then exit 128 + signum.

    A BaseException, so ``except Exception`` (ours, PyMC's) does not swallow it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _mark(err: BaseException, kind: str) -> None:
    """Tag ``err`` as "input" (exit 2) or "internal" (exit 1); the first tag wins."""
    try:
        if not hasattr(err, _KIND):
            setattr(err, _KIND, kind)
    except AttributeError:  # an exception type without a __dict__
        pass


@contextmanager
def input_checks() -> Iterator[None]:
    """Reading and checking the user's input: a ValueError, TypeError, OSError or
    NotImplementedError raised here is the input refused (exit 2)."""
    try:
        yield
    except _INPUT_KINDS as err:
        _mark(err, "input")
        raise


@contextmanager
def internal() -> Iterator[None]:
    """Work on our own settings (the demo): anything raised here is internal (exit 1)."""
    try:
        yield
    except Exception as err:
        _mark(err, "internal")
        raise


def _raised_by_our_checks(err: BaseException) -> bool:
    """True when ``err`` comes from a ``raise`` statement in a ppl_mixtures module.

    The last traceback entry is where the exception started; an error that numpy or PyMC
    raised (even when called from our code) ends in their frame or in a line of ours that
    is not a ``raise``.
    """
    tb = err.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    module = str(tb.tb_frame.f_globals.get("__name__", ""))
    if module != "ppl_mixtures" and not module.startswith("ppl_mixtures."):
        return False
    line = linecache.getline(tb.tb_frame.f_code.co_filename, tb.tb_lineno).strip()
    return line.startswith("raise ") or line == "raise"


def is_input_error(err: BaseException) -> bool:
    """Exit 2 (our input check refused something) or 1 (anything else)?"""
    from ppl_mixtures.present.report import ReportConflictError

    if isinstance(err, UsageError | ReportConflictError):
        return True
    kind = getattr(err, _KIND, None)
    if kind is not None:
        return kind == "input"
    return isinstance(err, _INPUT_KINDS) and _raised_by_our_checks(err)


def exit_code(err: BaseException, debug: bool) -> int:
    """Print one line for a command's failure (and the traceback with ``debug``); return
    the exit code: 128 + signum for a signal, 130 for Ctrl-C, 2 for input, 1 otherwise."""
    if isinstance(err, Signalled):
        print(
            f"{PROG}: stopped by {signal.Signals(err.signum).name} (temporary folders "
            f"removed, worker processes ended)",
            file=sys.stderr,
        )
        return 128 + err.signum
    if isinstance(err, KeyboardInterrupt):
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    if debug:
        traceback.print_exception(err)
    if is_input_error(err):
        print(f"{PROG}: error: {one_line(err)}", file=sys.stderr)
        return 2
    print(
        f"{PROG}: internal error: {type(err).__name__}: {one_line(err)} (run with --debug "
        f"for the traceback)",
        file=sys.stderr,
    )
    return 1


@contextmanager
def quiet_library_logs(debug: bool) -> Iterator[None]:
    """Library log records up to WARNING off (PyMC's chatter; its advice is in the report).

    ``logging.disable`` rather than logger levels: PyMC resets its logger's level when it
    is imported, which happens lazily inside the command. Kept with ``--debug``.
    """
    import logging

    if debug:
        yield
        return
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


@contextmanager
def signals_unwind() -> Iterator[None]:
    """SIGTERM and SIGINT raise :class:`Signalled` in the main thread, so every context
    manager on the way out runs (temporary folders removed, worker processes ended).

    One signal is enough: later ones are ignored while the command cleans up. The
    previous handlers come back at the end (``main`` also runs in-process, in tests).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    kinds = (signal.SIGTERM, signal.SIGINT)
    previous = {kind: signal.getsignal(kind) for kind in kinds}

    def handler(signum: int, frame: Any) -> None:
        for kind in kinds:
            signal.signal(kind, signal.SIG_IGN)
        raise Signalled(signum)

    for kind in kinds:
        signal.signal(kind, handler)
    try:
        yield
    finally:
        for kind, old in previous.items():
            signal.signal(kind, old)
