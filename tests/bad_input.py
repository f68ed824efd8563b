"""The house pattern for bad input, shared by every table of bad-input rows.

A row is (id, call, exception type, and four fragments the message must hold in this
order): the argument's name (the message starts with ``name: ``), what was expected, what
came, and what to try. :func:`assert_teaches` runs the call and checks the rule of the
house: exactly that exception type (a ValueError for a value of the right kind that is
wrong, a TypeError for a value of the wrong kind), a one-line message naming the argument,
saying what was expected and what came, and suggesting a fix.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import pytest


class Bad(NamedTuple):
    id: str
    call: Callable[..., Any]  # () or (tmp_path) -> raises
    error: type[Exception]
    name: str  # the argument the message names first
    expected: str  # what was expected
    got: str  # what came
    advice: str  # what to try


def assert_teaches(case: Bad, *args: Any) -> None:
    """Call ``case.call(*args)`` and check its message against the house pattern."""
    with pytest.raises(case.error) as info:
        case.call(*args)
    assert type(info.value) is case.error  # not a subclass (e.g. no bare numpy error)
    message = str(info.value)
    assert "\n" not in message, message
    assert message.startswith(f"{case.name}: "), message
    # the parts appear in the order the house pattern writes them:
    # "<argument>: expected <what>, got <what came>. <what to try>."
    position = len(case.name) + 1
    for part in (case.expected, case.got, case.advice):
        found = message.find(part, position)
        assert found >= 0, f"{part!r} missing (in this order) from {message!r}"
        position = found + len(part)
