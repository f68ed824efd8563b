"""Boundary checks, in one place.

Every public entry point (``MixtureSpec``, ``fit``, ``load_points``, the CLI) validates its
input here, once. Messages follow one pattern so users can act on them::

    <argument>: expected <what>, got <what came>. <what to try>.

Library code raises ``ValueError`` for a value of the right kind that is wrong, and
``TypeError`` for a value of the wrong kind. Nothing here uses ``assert``.
"""

from __future__ import annotations

import dataclasses
import datetime
import inspect
import numbers
import re
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

__all__ = [
    "DATA_LOCATION_FACTOR",
    "DATA_SPREAD_FACTOR",
    "MAX_STORED_VALUES",
    "PRIOR_LOCATION_MAX",
    "PRIOR_SCALE_RANGE",
    "DataScaleWarning",
    "EvidenceWarning",
    "NumericalError",
    "build_options",
    "check_bool",
    "check_choice",
    "check_data_scale",
    "check_draws",
    "check_engine_options",
    "check_fraction",
    "check_int",
    "check_points",
    "check_positive",
    "check_positive_vector",
    "check_real",
    "check_seed",
    "check_vector",
    "describe",
    "parse_float_text",
]


class NumericalError(RuntimeError):
    """An engine produced non-finite numbers (NaN/inf means, weights, obs_sd or ELBO).

    Raised by :func:`ppl_mixtures.fit` instead of returning such a fit. The usual cause is
    data far from the priors' scale or extreme priors: standardize the data
    (``ppl_mixtures.datasets.standardize``) and use priors on the unit scale.
    """


class DataScaleWarning(UserWarning):
    """The data sit far from the scale the spec's priors assume (see :func:`check_data_scale`)."""


class EvidenceWarning(UserWarning):
    """SMC's log-evidence estimate is not trustworthy (below an ELBO, or runs disagree)."""


#: Bounds on every prior scale (mean_prior_sd, known obs_sd, dirichlet_alpha and the Gamma
#: shape/rate) and on |mean_prior_mean|. Why these: the engines evaluate log-densities such
#: as -log(s) - (x - m)^2 / (2 s^2) and precisions 1/s^2 in float64. With s in [1e-6, 1e6]
#: the precision stays in [1e-12, 1e12] and, for |x - m| up to ~1e6 (both prior locations
#: and data within the bounds), the quadratic term stays below ~1e24, far from overflow
#: (1.8e308); beyond that (s = 1e-170: 1/s^2 overflows to inf; s = 1e200: s^2 overflows)
#: the densities are inf or 0 and fits come back NaN. The interval is also six orders of
#: magnitude around the unit scale the defaults assume: data that need priors outside it
#: should be rescaled (``datasets.standardize``), which loses nothing.
PRIOR_SCALE_RANGE = (1e-6, 1e6)
#: Largest |mean_prior_mean| accepted (see :data:`PRIOR_SCALE_RANGE`).
PRIOR_LOCATION_MAX = 1e6
#: Largest number of float64 values an engine may allocate for stored draws (0.8 GB).
MAX_STORED_VALUES = 10**8


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


def check_seed(random_seed: Any, name: str = "random_seed") -> int | None:
    """``random_seed`` must be None or a non-negative integer (numpy integers accepted).

    Booleans, floats and negative numbers are rejected with a message naming the argument.
    """
    if random_seed is None:
        return None
    return check_int(name, random_seed, minimum=0,
                     hint="Pass a non-negative integer such as 1, or None")


def check_bool(name: str, value: Any) -> bool:
    """``value`` must be True or False (``numpy.bool_`` accepted); returned as a bool."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name}: expected True or False, got {describe(value)}. "
                        f"Pass {name}=True or {name}=False.")
    return bool(value)


def check_real(name: str, value: Any, *, minimum: float | None = None,
               maximum: float | None = None, hint: str = "") -> float:
    """Return ``value`` as a finite Python float (numpy scalars accepted), or raise.

    ``minimum`` / ``maximum`` are inclusive bounds.
    """
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a number, got {describe(value)}. "
                        f"{hint or 'Pass a float such as 1.0'}.")
    value = float(value)
    low = -np.inf if minimum is None else minimum
    high = np.inf if maximum is None else maximum
    if not (np.isfinite(value) and low <= value <= high):
        bounds = (f"a finite number in [{low:g}, {high:g}]" if minimum is not None and
                  maximum is not None else f"a finite number >= {low:g}" if minimum is not None
                  else f"a finite number <= {high:g}" if maximum is not None
                  else "a finite number")
        raise ValueError(f"{name}: expected {bounds}, got {value!r}. "
                         f"{hint or 'Pass a finite value in range'}.")
    return value


def check_draws(name: str, value: Any, *, values_per_draw: int, hint: str = "") -> int:
    """A draw count >= 1 whose stored draws fit in :data:`MAX_STORED_VALUES` float64 values.

    ``values_per_draw`` is the number of floats one draw stores (e.g. K * D + K + K * D);
    the check runs before anything is allocated, so ``n_draws=10**12`` is a clear error,
    not a MemoryError.
    """
    value = check_int(name, value, minimum=1, hint=hint)
    limit = max(1, MAX_STORED_VALUES // max(int(values_per_draw), 1))
    if value > limit:
        raise ValueError(f"{name}: expected at most {limit} draws here ({values_per_draw} "
                         f"values per draw, at most {MAX_STORED_VALUES:.0e} stored values), "
                         f"got {value}. {hint or 'Use fewer draws, e.g. 1000'}.")
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


def check_vector(name: str, value: Any, *, hint: str = "",
                 max_abs: float | None = None) -> float | tuple[float, ...]:
    """A finite scalar or 1-D vector, returned as a float or a tuple of floats (hashable).

    ``max_abs``: when given, every entry must satisfy |value| <= max_abs.
    """
    if isinstance(value, str | bytes):
        raise TypeError(f"{name}: expected a number or a 1-D sequence of numbers, got "
                        f"{describe(value)}. {hint or 'Pass e.g. 0.0 or [0.0, 1.0]'}.")
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as err:  # ragged nested sequences
        raise ValueError(f"{name}: expected a number or a 1-D sequence of numbers, got a ragged "
                         f"nested sequence ({describe(value)}). "
                         f"{hint or 'Pass e.g. 0.0 or [0.0, 1.0]'}.") from err
    if (arr.dtype == bool or arr.dtype.kind in "mM"
            or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr)):
        raise TypeError(f"{name}: expected a number or a 1-D sequence of numbers, got "
                        f"{describe(value)}. {hint or 'Pass e.g. 0.0 or [0.0, 1.0]'}.")
    arr = arr.astype(float)
    if arr.ndim > 1 or arr.size == 0:
        raise ValueError(f"{name}: expected a scalar or a non-empty 1-D sequence, got shape "
                         f"{arr.shape}. {hint or 'Pass one value per feature (or component)'}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: expected finite values, got {arr.tolist()}. "
                         f"{hint or 'Remove NaN/inf'}.")
    if max_abs is not None and np.any(np.abs(arr) > max_abs):
        raise ValueError(f"{name}: expected values with |value| <= {max_abs:g} (float64 "
                         f"log-densities lose all precision beyond), got {arr.tolist()}. "
                         f"Standardize the data (ppl_mixtures.datasets.standardize) and use a "
                         f"prior on that scale.")
    return float(arr) if arr.ndim == 0 else tuple(float(v) for v in arr)


def check_positive_vector(name: str, value: Any, *, hint: str = "",
                          bounds: tuple[float, float] | None = None,
                          ) -> float | tuple[float, ...]:
    """Like :func:`check_vector`, and every entry must be > 0 (and within ``bounds``)."""
    out = check_vector(name, value, hint=hint)
    arr = np.atleast_1d(out)
    if np.any(arr <= 0):
        raise ValueError(f"{name}: expected values > 0, got {np.asarray(out).tolist()}. "
                         f"{hint or 'Scales and concentrations must be positive'}.")
    if bounds is not None and np.any((arr < bounds[0]) | (arr > bounds[1])):
        raise ValueError(f"{name}: expected values in [{bounds[0]:g}, {bounds[1]:g}] (outside "
                         f"it float64 log-densities overflow or lose all precision), got "
                         f"{np.asarray(out).tolist()}. Standardize the data "
                         f"(ppl_mixtures.datasets.standardize) and use priors on that scale.")
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
    if _looks_like_points_and_labels(points):
        raise TypeError(f"{name}: expected a numeric array of shape (n_samples, n_features), got "
                        f"what looks like a (points, labels) tuple (two arrays of "
                        f"{len(points[0])} rows, the second of integer labels), as "
                        f"datasets.three_clusters_1d() and make_mixture() return. Pass the "
                        f"points only, e.g. datasets.three_clusters_1d()[0].")
    if hasattr(points, "to_numpy") and callable(points.to_numpy):  # pandas objects
        points = points.to_numpy()
    if np.ma.isMaskedArray(points):  # masked entries are missing values, never silently used
        points = np.ma.asarray(points, dtype=np.float64).filled(np.nan)
    try:
        arr = np.asarray(points)
    except (ValueError, TypeError) as err:  # ragged nested lists
        raise ValueError(f"{name}: expected a rectangular numeric array, got a ragged sequence "
                         f"({err}). Make every row the same length.") from err
    if arr.dtype.kind in "mM" or (arr.dtype == object and any(
            isinstance(x, _TIME_TYPES) for x in arr.ravel()[:10_000])):
        raise TypeError(f"{name}: expected numbers, got {describe(arr)} holding dates or time "
                        f"spans. Convert them to numbers in a unit you choose, e.g. "
                        f"durations / np.timedelta64(1, 's').")
    if arr.dtype == object or arr.dtype.kind in "USV":
        try:
            arr = _to_float_array(arr)
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


_TIME_TYPES = (np.datetime64, np.timedelta64, datetime.date, datetime.timedelta,
               datetime.time)
#: Plain ASCII float syntax: what we accept as a number in text (CSV cells, string arrays).
#: Python's float() also takes "1_000", full-width digits and surrounding whitespace; we do
#: not, so that a typo or a foreign locale never becomes a silently different number.
_FLOAT_TEXT = re.compile(
    r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)",
    re.IGNORECASE | re.ASCII)


def parse_float_text(text: str) -> float | None:
    """``text`` as a float if it is plain ASCII float syntax (e.g. "-1.5e3", "inf"), else None.

    Rejected, although Python's ``float`` accepts them: digit separators ("1_000"),
    non-ASCII digits (full-width "１２"), inner whitespace.
    """
    text = text.strip()
    if not _FLOAT_TEXT.fullmatch(text):
        return None
    return float(text)


def _to_float_array(arr: np.ndarray) -> np.ndarray:
    """An object/str/bytes array as float64; text must be plain ASCII float syntax.

    Non-text entries convert as numpy converts them (pandas' NA and None become NaN, which
    the finiteness check then reports).
    """
    flat_in = arr.ravel()
    if not any(isinstance(x, str | bytes) for x in flat_in):
        return arr.astype(np.float64)
    out = np.empty(flat_in.shape, dtype=np.float64)
    for i, x in enumerate(flat_in):
        if isinstance(x, bytes):
            x = x.decode("ascii", errors="replace")
        if isinstance(x, str):
            value = parse_float_text(x)
            if value is None:
                raise ValueError(f"{x!r} is not a plain number")
            out[i] = value
        else:
            out[i] = np.asarray(x).astype(np.float64)
    return out.reshape(arr.shape)


def _looks_like_points_and_labels(points: Any) -> bool:
    """True for a 2-tuple (points, labels): labels 1-D integers as long as points."""
    if not (isinstance(points, tuple) and len(points) == 2):
        return False
    first, second = points
    return (isinstance(first, np.ndarray) and isinstance(second, np.ndarray)
            and first.ndim in (1, 2) and second.ndim == 1 and second.dtype.kind in "iu"
            and first.shape[0] == second.shape[0])


#: The data-scale rule of :func:`check_data_scale` (factors of the prior's scale).
DATA_LOCATION_FACTOR = 10.0
DATA_SPREAD_FACTOR = 100.0


def check_data_scale(points: np.ndarray, spec: Any) -> str | None:
    """Describe how the data sit far from the scale the spec's priors assume, or None.

    Parameters
    ----------
    points : ndarray of shape (n_samples, n_features)
        Validated data.
    spec : MixtureSpec

    Returns
    -------
    str or None
        A message naming the first offending feature, or None when every feature is fine.

    Notes
    -----
    Under the prior, one observation's feature d has mean m0_d and sd
    ``scale_d = sqrt(s0_d^2 + sigma_d^2)`` (s0 = mean_prior_sd; sigma = the known obs_sd,
    or for a learned one sqrt(rate / shape), the sd at the prior mean of the precision).
    Feature d is flagged when

    - its mean is more than 10 scale_d from m0_d (a 10-sigma event under the prior), or
    - its sd exceeds 100 scale_d (no component the prior expects can cover the data), or
    - its sd is below sigma_d / 100 (the data vary 100x less than the noise the model
      assumes; a constant feature, sd 0, is not flagged).

    The factors are loose on purpose. Every shipped demo passes with room to spare
    (largest ratio: seed 000's 1-D clusters at -10, 0.25 and 5 with mean_prior_sd = sqrt(10)
    and obs_sd 1 have sd 6.3 = 1.9 scale_d and mean -1.6 = 0.5 scale_d; seed 001's points
    and standardized Old Faithful are within 1 scale_d), while data off by the factors the
    issue measured (x1e8, +1e9) are flagged by orders of magnitude. Old Faithful in
    minutes (waiting-time mean 71, sd 13.6) with unit priors is flagged on its location.
    """
    n_features = points.shape[1]
    prior_mean = spec.prior_mean(n_features)
    prior_sd = spec.prior_sd(n_features)
    if getattr(spec, "learned_obs_sd", False):
        sigma = np.full(n_features, np.sqrt(spec.precision_prior_rate / spec.precision_prior_shape))
    else:
        sigma = spec.known_obs_sd(n_features).max(axis=0)
    scale = np.sqrt(prior_sd**2 + sigma**2)
    with np.errstate(over="ignore", invalid="ignore"):
        centre = points.mean(axis=0)
        spread = points.std(axis=0)
    for d in range(n_features):
        label = f"feature {d}" if n_features > 1 else "the data"
        if not (abs(centre[d] - prior_mean[d]) <= DATA_LOCATION_FACTOR * scale[d]):
            why = (f"{label} has mean {centre[d]:.4g}, more than {DATA_LOCATION_FACTOR:g} prior "
                   f"sds ({scale[d]:.3g} = sqrt(mean_prior_sd^2 + obs_sd^2)) from "
                   f"mean_prior_mean={prior_mean[d]:.4g}")
        elif not spread[d] <= DATA_SPREAD_FACTOR * scale[d]:
            why = (f"{label} has sd {spread[d]:.4g}, more than {DATA_SPREAD_FACTOR:g} times the "
                   f"prior's scale {scale[d]:.3g} = sqrt(mean_prior_sd^2 + obs_sd^2)")
        elif 0 < spread[d] < sigma[d] / DATA_SPREAD_FACTOR:
            why = (f"{label} has sd {spread[d]:.4g}, less than 1/{DATA_SPREAD_FACTOR:g} of the "
                   f"observation sd {sigma[d]:.3g} the spec assumes")
        else:
            continue
        return (f"points: {why}. The priors assume data on roughly that scale, so the fit "
                f"may be dominated by the prior or numerically poor. Standardize first: "
                f"z, center, scale = ppl_mixtures.datasets.standardize(points), fit z, and map "
                f"means back with means * scale + center (obs_sd * scale); or set priors on "
                f"the data's scale.")
    return None


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
        raise TypeError(f"options: engine {engine!r} got unknown option(s) "
                        f"{', '.join(repr(u) for u in unknown)}. Valid options for {engine!r}: "
                        f"{listed}.")


def build_options[T](engine: str, options_class: type[T], options: Mapping[str, Any]) -> T:
    """``options_class(**options)`` after :func:`check_engine_options` (so an unknown name
    gets our message, not Python's); the dataclass's ``__post_init__`` checks the values."""
    check_engine_options(engine, options_class, options)
    return options_class(**options)
