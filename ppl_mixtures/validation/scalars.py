"""Checks of scalar and small-vector arguments (counts, seeds, flags, scales, choices).

Each returns the value normalized (a Python int, float, bool, or a tuple of floats) or
raises naming the argument; numpy scalars are accepted, booleans are never numbers.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np

from ppl_mixtures.validation.errors import describe

__all__ = [
    "MAX_STORED_VALUES",
    "PRIOR_LOCATION_MAX",
    "PRIOR_SCALE_RANGE",
    "check_bool",
    "check_choice",
    "check_draws",
    "check_fraction",
    "check_int",
    "check_positive",
    "check_positive_vector",
    "check_real",
    "check_seed",
    "check_vector",
]

#: Bounds on every prior scale (mean_prior_sd, known obs_sd, dirichlet_alpha and the Gamma
#: shape/rate) and on ``abs(mean_prior_mean)``. Why these: the engines evaluate log-densities such
#: as -log(s) - (x - m)^2 / (2 s^2) and precisions 1/s^2 in float64. With s in [1e-6, 1e6]
#: the precision stays in [1e-12, 1e12] and, for ``abs(x - m)`` up to ~1e6 (both prior locations
#: and data within the bounds), the quadratic term stays below ~1e24, far from overflow
#: (1.8e308); beyond that (s = 1e-170: 1/s^2 overflows to inf; s = 1e200: s^2 overflows)
#: the densities are inf or 0 and fits come back NaN. The interval is also six orders of
#: magnitude around the unit scale the defaults assume: data that need priors outside it
#: should be rescaled (``datasets.standardize``), which loses nothing.
PRIOR_SCALE_RANGE = (1e-6, 1e6)
#: Largest ``abs(mean_prior_mean)`` accepted (see :data:`PRIOR_SCALE_RANGE`).
PRIOR_LOCATION_MAX = 1e6
#: Largest number of float64 values an engine may allocate for stored draws (0.8 GB).
MAX_STORED_VALUES = 10**8


def check_int(
    name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None, hint: str = ""
) -> int:
    """Return ``value`` as a Python int, or raise naming ``name``.

    Booleans are rejected (``True`` is an int in Python, but never what a user meant).
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{name}: expected an integer, got {describe(value)}. "
            f"{hint or 'Pass a whole number, e.g. 3'}."
        )
    number = int(value)
    if minimum is not None and number < minimum:
        raise ValueError(
            f"{name}: expected an integer >= {minimum}, got {number}. "
            f"{hint or f'Use {minimum} or more'}."
        )
    if maximum is not None and number > maximum:
        raise ValueError(
            f"{name}: expected an integer <= {maximum}, got {number}. "
            f"{hint or f'Use {maximum} or fewer'}."
        )
    return number


def check_seed(random_seed: Any, name: str = "random_seed") -> int | None:
    """``random_seed`` must be None or a non-negative integer (numpy integers accepted).

    Booleans, floats and negative numbers are rejected with a message naming the argument.
    """
    if random_seed is None:
        return None
    return check_int(
        name, random_seed, minimum=0, hint="Pass a non-negative integer such as 1, or None"
    )


def check_bool(name: str, value: Any) -> bool:
    """``value`` must be True or False (``numpy.bool_`` accepted); returned as a bool."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(
            f"{name}: expected True or False, got {describe(value)}. "
            f"Pass {name}=True or {name}=False."
        )
    return bool(value)


def check_real(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    hint: str = "",
) -> float:
    """Return ``value`` as a finite Python float (numpy scalars accepted), or raise.

    ``minimum`` / ``maximum`` are inclusive bounds.
    """
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{name}: expected a number, got {describe(value)}. "
            f"{hint or 'Pass a float such as 1.0'}."
        )
    number = float(value)
    low = -np.inf if minimum is None else minimum
    high = np.inf if maximum is None else maximum
    if not (np.isfinite(number) and low <= number <= high):
        bounds = (
            f"a finite number in [{low:g}, {high:g}]"
            if minimum is not None and maximum is not None
            else f"a finite number >= {low:g}"
            if minimum is not None
            else f"a finite number <= {high:g}"
            if maximum is not None
            else "a finite number"
        )
        raise ValueError(
            f"{name}: expected {bounds}, got {number!r}. {hint or 'Pass a finite value in range'}."
        )
    return number


def check_draws(name: str, value: Any, *, values_per_draw: int, hint: str = "") -> int:
    """A draw count >= 1 whose stored draws fit in :data:`MAX_STORED_VALUES` float64 values.

    ``values_per_draw`` is the number of floats one draw stores (e.g. K * D + K + K * D);
    the check runs before anything is allocated, so ``n_draws=10**12`` is a clear error,
    not a MemoryError.
    """
    count = check_int(name, value, minimum=1, hint=hint)
    limit = max(1, MAX_STORED_VALUES // max(int(values_per_draw), 1))
    if count > limit:
        raise ValueError(
            f"{name}: expected at most {limit} draws here ({values_per_draw} "
            f"values per draw, at most {MAX_STORED_VALUES:.0e} stored values), "
            f"got {count}. {hint or 'Use fewer draws, e.g. 1000'}."
        )
    return count


def check_positive(name: str, value: Any, *, hint: str = "") -> float:
    """Return ``value`` as a finite float > 0, or raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{name}: expected a positive number, got {describe(value)}. "
            f"{hint or 'Pass a float such as 1.0'}."
        )
    number = float(value)
    if not np.isfinite(number) or number <= 0:
        raise ValueError(
            f"{name}: expected a finite number > 0, got {number!r}. "
            f"{hint or 'Scales, rates and concentrations must be positive'}."
        )
    return number


def check_fraction(name: str, value: Any, *, example: str, hint: str = "") -> float:
    """Return ``value`` as a float strictly between 0 and 1, or raise naming ``name``.

    ``example`` is a good value to suggest (e.g. ``"0.9"``); ``hint`` adds advice to the
    message of an out-of-range value.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{name}: expected a number in (0, 1), got {describe(value)}. "
            f"Use e.g. {name}={example}."
        )
    if not 0.0 < float(value) < 1.0:
        extra = f" ({hint})" if hint else ""
        raise ValueError(
            f"{name}: expected a number in (0, 1), got {value!r}. Use e.g. {name}={example}{extra}."
        )
    return float(value)


def check_vector(
    name: str, value: Any, *, hint: str = "", max_abs: float | None = None
) -> float | tuple[float, ...]:
    """A finite scalar or 1-D vector, returned as a float or a tuple of floats (hashable).

    ``max_abs``: when given, every entry must satisfy ``abs(value) <= max_abs``.
    """
    if isinstance(value, str | bytes):
        raise TypeError(
            f"{name}: expected a number or a 1-D sequence of numbers, got "
            f"{describe(value)}. {hint or 'Pass e.g. 0.0 or [0.0, 1.0]'}."
        )
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as err:  # ragged nested sequences
        raise ValueError(
            f"{name}: expected a number or a 1-D sequence of numbers, got a ragged "
            f"nested sequence ({describe(value)}). "
            f"{hint or 'Pass e.g. 0.0 or [0.0, 1.0]'}."
        ) from err
    if (
        arr.dtype == bool
        or arr.dtype.kind in "mM"
        or not np.issubdtype(arr.dtype, np.number)
        or np.iscomplexobj(arr)
    ):
        raise TypeError(
            f"{name}: expected a number or a 1-D sequence of numbers, got "
            f"{describe(value)}. {hint or 'Pass e.g. 0.0 or [0.0, 1.0]'}."
        )
    arr = arr.astype(float)
    if arr.ndim > 1 or arr.size == 0:
        raise ValueError(
            f"{name}: expected a scalar or a non-empty 1-D sequence, got shape "
            f"{arr.shape}. {hint or 'Pass one value per feature (or component)'}."
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(
            f"{name}: expected finite values, got {arr.tolist()}. {hint or 'Remove NaN/inf'}."
        )
    if max_abs is not None and np.any(np.abs(arr) > max_abs):
        raise ValueError(
            f"{name}: expected values with |value| <= {max_abs:g} (float64 "
            f"log-densities lose all precision beyond), got {arr.tolist()}. "
            f"Standardize the data (ppl_mixtures.datasets.standardize) and use a "
            f"prior on that scale."
        )
    return float(arr) if arr.ndim == 0 else tuple(float(v) for v in arr)


def check_positive_vector(
    name: str,
    value: Any,
    *,
    hint: str = "",
    bounds: tuple[float, float] | None = None,
) -> float | tuple[float, ...]:
    """Like :func:`check_vector`, and every entry must be > 0 (and within ``bounds``)."""
    out = check_vector(name, value, hint=hint)
    arr = np.atleast_1d(out)
    if np.any(arr <= 0):
        raise ValueError(
            f"{name}: expected values > 0, got {np.asarray(out).tolist()}. "
            f"{hint or 'Scales and concentrations must be positive'}."
        )
    if bounds is not None and np.any((arr < bounds[0]) | (arr > bounds[1])):
        raise ValueError(
            f"{name}: expected values in [{bounds[0]:g}, {bounds[1]:g}] (outside "
            f"it float64 log-densities overflow or lose all precision), got "
            f"{np.asarray(out).tolist()}. Standardize the data "
            f"(ppl_mixtures.datasets.standardize) and use priors on that scale."
        )
    return out


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """``value`` must be one of ``choices`` (strings)."""
    choices = tuple(choices)
    if not isinstance(value, str) or value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(
            f"{name}: expected one of {listed}, got {describe(value)}. Pick one of those."
        )
    return value
