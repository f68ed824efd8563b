"""Checks of engine options: unknown names get a message listing the valid ones."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping
from typing import Any

__all__ = ["build_options", "check_engine_options"]


def check_engine_options(engine: str, accepted: Any, options: Mapping[str, Any]) -> None:
    """Reject options the engine does not accept, listing the ones it does.

    ``accepted`` is the engine's options dataclass (its fields are the valid options) or,
    for an engine without one, its ``fit`` function (its keyword-only parameters are).
    """
    if dataclasses.is_dataclass(accepted):
        valid = [f.name for f in dataclasses.fields(accepted) if f.init]
    else:
        params = inspect.signature(accepted).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            return
        valid = [n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        listed = ", ".join(valid) if valid else "(none)"
        raise TypeError(
            f"options: engine {engine!r} got unknown option(s) "
            f"{', '.join(repr(u) for u in unknown)}. Valid options for {engine!r}: "
            f"{listed}."
        )


def build_options[T](engine: str, options_class: type[T], options: Mapping[str, Any]) -> T:
    """``options_class(**options)`` after :func:`check_engine_options` (so an unknown name
    gets our message, not Python's); the dataclass's ``__post_init__`` checks the values."""
    check_engine_options(engine, options_class, options)
    return options_class(**options)
