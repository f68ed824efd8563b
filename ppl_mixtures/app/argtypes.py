"""Value types of the command line's flags: each turns the text into the value or raises
``argparse.ArgumentTypeError`` (argparse then prints one line naming the flag, exit 2)."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["columns", "key_value", "obs_sd", "seed"]


def _option_value(text: str) -> Any:
    """``--option key=value`` values: JSON numbers/booleans/null, else the string."""
    lowered = {"true": True, "false": False, "none": None, "null": None}
    if text.lower() in lowered:
        return lowered[text.lower()]
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def key_value(text: str) -> tuple[str, Any]:
    """``--option KEY=VALUE``: (key with dashes as underscores, value read as JSON)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    return key.strip().replace("-", "_"), _option_value(value.strip())


def obs_sd(text: str) -> float | str:
    """``--obs-sd``: a positive number, or ``learned``."""
    if text == "learned":
        return text
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number or 'learned', got {text!r}")
    return value


def seed(text: str) -> int:
    """``--random-seed``: a whole number >= 0."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def columns(text: str) -> list[str | int]:
    """``--columns A,B``: header names, or 0-based indices where a part is all digits."""
    return [int(c) if c.strip().isdigit() else c.strip() for c in text.split(",") if c.strip()]
