"""Value types of the command line's flags: each turns the text into the value or raises
``argparse.ArgumentTypeError`` (argparse then prints one line naming the flag, exit 2)."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["columns", "key_value", "ks_list", "obs_sd", "seed"]


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


#: The largest K ``--ks`` accepts (each K is one fit per criterion; the DP adds 4).
MAX_K = 50


def ks_list(text: str) -> list[int]:
    """``--ks``: K values as ``1-6`` (a range, both ends included), ``2,3,5`` or both
    (``1-3,5``); each a whole number in 1..MAX_K, listed once."""
    hint = "e.g. --ks 1-6 or --ks 2,3,5"
    values: list[int] = []
    parts = [p.strip() for p in text.split(",")]
    for part in parts:
        low, dash, high = part.partition("-")
        try:
            ends = [int(low)] if not dash else [int(low), int(high)]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected whole numbers >= 1 as a range A-B or a list A,B,C ({hint}), got {text!r}"
            ) from None
        if min(ends) < 1 or max(ends) > MAX_K:
            raise argparse.ArgumentTypeError(
                f"expected values between 1 and {MAX_K} ({hint}), got {text!r}"
            )
        if dash and ends[1] < ends[0]:
            raise argparse.ArgumentTypeError(
                f"expected a range A-B with A <= B ({hint}), got {part!r} in {text!r}"
            )
        values += list(range(ends[0], ends[-1] + 1))
    repeated = sorted({k for k in values if values.count(k) > 1})
    if repeated:
        raise argparse.ArgumentTypeError(
            f"expected each K once ({hint}), got {repeated[0]} twice in {text!r}"
        )
    return sorted(values)
