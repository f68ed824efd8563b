"""Boundary checks, in one place.

Every public entry point (``MixtureSpec``, ``fit``, ``load_points``, the CLI) validates its
input here, once. Messages follow one pattern so users can act on them::

    <argument>: expected <what>, got <what came>. <what to try>.

Library code raises ``ValueError`` for a value of the right kind that is wrong, and
``TypeError`` for a value of the wrong kind. Nothing here uses ``assert``.
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

__all__ = [
    "check_choice",
    "check_engine_options",
    "check_fraction",
    "check_int",
    "check_points",
    "check_positive",
    "check_positive_vector",
    "check_vector",
    "describe",
]


def describe(value: Any) -> str:
    """A short description of ``value`` for error messages (type, shape, a few entries)."""
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    if isinstance(value, str):
        return repr(value) if len(value) <= 40 else repr(value[:37] + "...")
    if isinstance(value, list | tuple) and len(value) > 6:
        return f"{type(value).__name__} of length {len(value)}"
    return repr(value)


def check_int(name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None,
              hint: str = "") -> int:
    """Return ``value`` as a Python int, or raise naming ``name``.

    Booleans are rejected (``True`` is an int in Python, but never what a user meant).
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer, got {describe(value)}. "
                        f"{hint or 'Pass a whole number, e.g. 3'}.")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value}. "
                         f"{hint or f'Use {minimum} or more'}.")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name}: expected an integer <= {maximum}, got {value}. "
                         f"{hint or f'Use {maximum} or fewer'}.")
    return value


def check_positive(name: str, value: Any, *, hint: str = "") -> float:
    """Return ``value`` as a finite float > 0, or raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a positive number, got {describe(value)}. "
                        f"{hint or 'Pass a float such as 1.0'}.")
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name}: expected a finite number > 0, got {value!r}. "
                         f"{hint or 'Scales, rates and concentrations must be positive'}.")
    return value


def check_fraction(name: str, value: Any, *, example: str, hint: str = "") -> float:
    """Return ``value`` as a float strictly between 0 and 1, or raise naming ``name``.

    ``example`` is a good value to suggest (e.g. ``"0.9"``); ``hint`` adds advice to the
    message of an out-of-range value.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a number in (0, 1), got {describe(value)}. "
                        f"Use e.g. {name}={example}.")
    if not 0.0 < float(value) < 1.0:
        extra = f" ({hint})" if hint else ""
        raise ValueError(f"{name}: expected a number in (0, 1), got {value!r}. "
                         f"Use e.g. {name}={example}{extra}.")
    return float(value)


def check_vector(name: str, value: Any, *, hint: str = "") -> float | tuple[float, ...]:
    """A finite scalar or 1-D vector, returned as a float or a tuple of floats (hashable)."""
    if isinstance(value, str | bytes):
        raise TypeError(f"{name}: expected a number or a 1-D sequence of numbers, got "
                        f"{describe(value)}. {hint or 'Pass e.g. 0.0 or [0.0, 1.0]'}.")
    arr = np.asarray(value)
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.number)):
        raise TypeError(f"{name}: expected a number or a 1-D sequence of numbers, got "
                        f"{describe(value)}. {hint or 'Pass e.g. 0.0 or [0.0, 1.0]'}.")
    arr = arr.astype(float)
    if arr.ndim > 1 or arr.size == 0:
        raise ValueError(f"{name}: expected a scalar or a non-empty 1-D sequence, got shape "
                         f"{arr.shape}. {hint or 'Pass one value per feature (or component)'}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: expected finite values, got {arr.tolist()}. "
                         f"{hint or 'Remove NaN/inf'}.")
    return float(arr) if arr.ndim == 0 else tuple(float(v) for v in arr)


def check_positive_vector(name: str, value: Any, *, hint: str = "") -> float | tuple[float, ...]:
    """Like :func:`check_vector`, and every entry must be > 0."""
    out = check_vector(name, value, hint=hint)
    arr = np.atleast_1d(out)
    if np.any(arr <= 0):
        raise ValueError(f"{name}: expected values > 0, got {np.asarray(out).tolist()}. "
                         f"{hint or 'Scales and concentrations must be positive'}.")
    return out


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """``value`` must be one of ``choices`` (strings)."""
    choices = tuple(choices)
    if not isinstance(value, str) or value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name}: expected one of {listed}, got {describe(value)}. "
                         f"Pick one of those.")
    return value


def check_points(points: Any, *, n_components: int | None = None, name: str = "points") -> np.ndarray:
    """Validate data and return it as a float64 array of shape (n_samples, n_features).

    Parameters
    ----------
    points : array-like of shape (n_samples,) or (n_samples, n_features)
        Numeric, finite observations. 1-D input is one feature.
    n_components : int, optional
        When given, ``n_samples`` must be at least this.

    Returns
    -------
    ndarray of shape (n_samples, n_features), float64, C-contiguous. A new array: the
    caller's data is never modified.
    """
    if isinstance(points, str | bytes):
        raise TypeError(f"{name}: expected a numeric array of shape (n_samples, n_features), got "
                        f"the string {describe(points)}. To read a file use "
                        f"ppl_mixtures.datasets.load_points(path).")
    if points is None:
        raise TypeError(f"{name}: expected a numeric array of shape (n_samples, n_features), got "
                        f"None. Pass the data, e.g. datasets.advi_notebook_points().")
    if hasattr(points, "to_numpy") and callable(points.to_numpy):  # pandas objects
        points = points.to_numpy()
    if np.ma.isMaskedArray(points):  # masked entries are missing values, never silently used
        points = np.ma.asarray(points, dtype=np.float64).filled(np.nan)
    try:
        arr = np.asarray(points)
    except (ValueError, TypeError) as err:  # ragged nested lists
        raise ValueError(f"{name}: expected a rectangular numeric array, got a ragged sequence "
                         f"({err}). Make every row the same length.") from err
    if arr.dtype == object or arr.dtype.kind in "USV":
        try:
            arr = arr.astype(np.float64)
        except (ValueError, TypeError) as err:
            raise TypeError(f"{name}: expected numbers, got {describe(arr)} with non-numeric "
                            f"entries. Convert text columns to numbers or drop them.") from err
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.number)):
        raise TypeError(f"{name}: expected numbers, got {describe(arr)}. "
                        f"Convert the data to float, e.g. np.asarray(points, dtype=float).")
    if np.iscomplexobj(arr):
        raise TypeError(f"{name}: expected real numbers, got {describe(arr)}. "
                        f"Pass the real part, or split real and imaginary into features.")
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 1-D or 2-D array (n_samples, n_features), got "
                         f"{arr.ndim}-D shape {arr.shape}. Reshape to (n_samples, n_features).")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name}: expected at least one sample and one feature, got shape "
                         f"{arr.shape}. Pass non-empty data.")
    arr = np.array(arr, dtype=np.float64, order="C", copy=True)
    bad = ~np.isfinite(arr)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        shown = ", ".join(str(r) for r in rows[:5]) + (", ..." if rows.size > 5 else "")
        rows_word, index_word = ("rows", "indices") if rows.size > 1 else ("row", "index")
        raise ValueError(f"{name}: expected finite values, got {int(bad.sum())} NaN/inf "
                         f"entries in {rows.size} {rows_word} (0-based row {index_word} "
                         f"{shown}). Drop or impute them (the CLI has --dropna).")
    if n_components is not None and arr.shape[0] < n_components:
        raise ValueError(f"n_components: expected at most n_samples={arr.shape[0]} components, "
                         f"got {n_components}. Use fewer components or more data.")
    return arr


def check_engine_options(engine: str, fit_function: Callable[..., Any],
                         options: Mapping[str, Any]) -> None:
    """Reject options the engine's ``fit`` does not accept, listing the ones it does."""
    params = inspect.signature(fit_function).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    valid = [n for n, p in params.items()
             if p.kind is inspect.Parameter.KEYWORD_ONLY]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        listed = ", ".join(valid) if valid else "(none)"
        raise TypeError(f"options: engine {engine!r} got unknown option(s) "
                        f"{', '.join(repr(u) for u in unknown)}. Valid options for {engine!r}: "
                        f"{listed}.")
