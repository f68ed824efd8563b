"""What the command prints: progress lines on stderr (rich), results on stdout.

Only the standard library is imported at module level (``--help`` stays instant).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["PROG", "UI", "one_line"]

PROG = "ppl-mixtures"


def one_line(err: BaseException | Warning | str) -> str:
    """An error or warning message on one line (its type name when it has no text)."""
    text = " ".join(str(err).split())
    if isinstance(err, KeyError | FileNotFoundError) and not text:
        text = type(err).__name__
    return text or type(err).__name__


class UI:
    """Progress lines on stderr (rich), silenced by ``--quiet``; results always go to stdout."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self._console: Any = None
        if not quiet:
            from rich.console import Console

            # soft_wrap: one note, one line (benchmarks read the progress lines)
            self._console = Console(stderr=True, highlight=False, soft_wrap=True)

    @contextmanager
    def status(self, message: str) -> Iterator[None]:
        """A spinner with ``message`` while the block runs (nothing with ``--quiet``)."""
        if self._console is None:
            yield
            return
        with self._console.status(message, spinner="dots"):
            yield

    def note(self, message: str) -> None:
        """One progress line on stderr."""
        if self._console is not None:
            self._console.print(message, markup=False)

    def result(self, text: str) -> None:
        """The answer itself, on stdout, even with ``--quiet``."""
        print(text)
