"""Checks of data: :func:`check_points` (arrays, text, pandas) and :func:`check_data_scale`."""

from __future__ import annotations

import datetime
import re
from typing import Any, Protocol

import numpy as np

from ppl_mixtures.validation.chunked import (
    ChunkedPoints,
    check_chunked_points,
    check_enough_rows,
    check_table_shape,
    is_dask_array,
)
from ppl_mixtures.validation.errors import describe

__all__ = [
    "DATA_LOCATION_FACTOR",
    "DATA_SPREAD_FACTOR",
    "check_data_scale",
    "check_points",
    "parse_float_text",
]


def check_points(points: Any, *, n_components: int | None = None, name: str = "points") -> Any:
    """Validate data and return it as a float64 array of shape (n_samples, n_features).

    Parameters
    ----------
    points : array-like of shape (n_samples,) or (n_samples, n_features)
        Numeric, finite observations. 1-D input is one feature. A ``dask.array.Array`` gets
        the same checks (``validation.chunked.check_chunked_points``: one pass over the
        chunks for NaN/inf, naming the chunk; unknown chunk sizes refused).
    n_components : int, optional
        When given, ``n_samples`` must be at least this.

    Returns
    -------
    ndarray of shape (n_samples, n_features), float64, C-contiguous. A new array: the
    caller's data is never modified. For a dask array: a ``ChunkedPoints`` (the data stay
    where they are; only the engines "cavi", "em" and "svi" read it).
    """
    if is_dask_array(points):
        return check_chunked_points(points, n_components=n_components, name=name)
    if isinstance(points, ChunkedPoints):
        raise points.in_memory_error()
    if isinstance(points, str | bytes):
        raise TypeError(
            f"{name}: expected a numeric array of shape (n_samples, n_features), got "
            f"the string {describe(points)}. To read a file use "
            f"ppl_mixtures.datasets.load_points(path)."
        )
    if points is None:
        raise TypeError(
            f"{name}: expected a numeric array of shape (n_samples, n_features), got "
            f"None. Pass the data, e.g. datasets.advi_notebook_points()."
        )
    if _looks_like_points_and_labels(points):
        raise TypeError(
            f"{name}: expected a numeric array of shape (n_samples, n_features), got "
            f"what looks like a (points, labels) tuple (two arrays of "
            f"{len(points[0])} rows, the second of integer labels), as "
            f"datasets.three_clusters_1d() and make_mixture() return. Pass the "
            f"points only, e.g. datasets.three_clusters_1d()[0]."
        )
    if hasattr(points, "to_numpy") and callable(points.to_numpy):  # pandas objects
        points = points.to_numpy()
    if np.ma.isMaskedArray(points):  # masked entries are missing values, never silently used
        points = np.ma.asarray(points, dtype=np.float64).filled(np.nan)
    try:
        arr = np.asarray(points)
    except (ValueError, TypeError) as err:  # ragged nested lists
        raise ValueError(
            f"{name}: expected a rectangular numeric array, got a ragged sequence "
            f"({err}). Make every row the same length."
        ) from err
    if arr.dtype.kind in "mM" or (
        arr.dtype == object and any(isinstance(x, _TIME_TYPES) for x in arr.ravel()[:10_000])
    ):
        raise TypeError(
            f"{name}: expected numbers, got {describe(arr)} holding dates or time "
            f"spans. Convert them to numbers in a unit you choose, e.g. "
            f"durations / np.timedelta64(1, 's')."
        )
    if arr.dtype == object or arr.dtype.kind in "USV":
        try:
            arr = _to_float_array(arr)
        except (ValueError, TypeError) as err:
            raise TypeError(
                f"{name}: expected numbers, got {describe(arr)} with non-numeric "
                f"entries. Convert text columns to numbers or drop them."
            ) from err
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.number)):
        raise TypeError(
            f"{name}: expected numbers, got {describe(arr)}. "
            f"Convert the data to float, e.g. np.asarray(points, dtype=float)."
        )
    if np.iscomplexobj(arr):
        raise TypeError(
            f"{name}: expected real numbers, got {describe(arr)}. "
            f"Pass the real part, or split real and imaginary into features."
        )
    if arr.ndim == 1:
        arr = arr[:, None]
    check_table_shape(name, arr.shape, "{ndim}-D shape {shape}")
    arr = np.array(arr, dtype=np.float64, order="C", copy=True)
    bad = ~np.isfinite(arr)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        shown = ", ".join(str(r) for r in rows[:5]) + (", ..." if rows.size > 5 else "")
        rows_word, index_word = ("rows", "indices") if rows.size > 1 else ("row", "index")
        raise ValueError(
            f"{name}: expected finite values, got {int(bad.sum())} NaN/inf "
            f"entries in {rows.size} {rows_word} (0-based row {index_word} "
            f"{shown}). Drop or impute them (the CLI has --dropna)."
        )
    check_enough_rows(arr.shape[0], n_components)
    return arr


_TIME_TYPES = (np.datetime64, np.timedelta64, datetime.date, datetime.timedelta, datetime.time)
#: Plain ASCII float syntax: what we accept as a number in text (CSV cells, string arrays).
#: Python's float() also takes "1_000", full-width digits and surrounding whitespace; we do
#: not, so that a typo or a foreign locale never becomes a silently different number.
_FLOAT_TEXT = re.compile(
    r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)",
    re.IGNORECASE | re.ASCII,
)


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
    return (
        isinstance(first, np.ndarray)
        and isinstance(second, np.ndarray)
        and first.ndim in (1, 2)
        and second.ndim == 1
        and second.dtype.kind in "iu"
        and first.shape[0] == second.shape[0]
    )


class PriorScales(Protocol):
    """What :func:`check_data_scale` reads of a spec (``MixtureSpec`` lives a layer above)."""

    def prior_mean(self, n_features: int) -> np.ndarray: ...

    def prior_sd(self, n_features: int) -> np.ndarray: ...

    def typical_obs_sd(self, n_features: int) -> np.ndarray: ...


#: The data-scale rule of :func:`check_data_scale` (factors of the prior's scale).
DATA_LOCATION_FACTOR = 10.0
DATA_SPREAD_FACTOR = 100.0


def check_data_scale(points: np.ndarray | ChunkedPoints, spec: PriorScales) -> str | None:
    """Describe how the data sit far from the scale the spec's priors assume, or None.

    Parameters
    ----------
    points : ndarray of shape (n_samples, n_features), or ChunkedPoints
        Validated data (chunked data: the moments of their validating pass).
    spec : MixtureSpec (or any object with its prior methods, see PriorScales)

    Returns
    -------
    str or None
        A message naming the first offending feature, or None when every feature is fine.

    Notes
    -----
    Under the prior, one observation's feature d has mean m0_d and sd
    ``scale_d = sqrt(s0_d^2 + sigma_d^2)`` (s0 = mean_prior_sd; sigma =
    ``spec.typical_obs_sd``: the known obs_sd, or for a learned one the sd at the prior
    mean of the precision, sqrt(rate / shape) for the diagonal model).
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
    sigma = spec.typical_obs_sd(n_features)
    scale = np.sqrt(prior_sd**2 + sigma**2)
    if isinstance(points, ChunkedPoints):
        if points.moments is None:  # not validated here: nothing to check against
            return None
        centre = points.moments.mean
        spread = np.sqrt(points.moments.variance)
    else:
        with np.errstate(over="ignore", invalid="ignore"):
            centre = points.mean(axis=0)
            spread = points.std(axis=0)
    for d in range(n_features):
        label = f"feature {d}" if n_features > 1 else "the data"
        if not (abs(centre[d] - prior_mean[d]) <= DATA_LOCATION_FACTOR * scale[d]):
            why = (
                f"{label} has mean {centre[d]:.4g}, more than {DATA_LOCATION_FACTOR:g} prior "
                f"sds ({scale[d]:.3g} = sqrt(mean_prior_sd^2 + obs_sd^2)) from "
                f"mean_prior_mean={prior_mean[d]:.4g}"
            )
        elif not spread[d] <= DATA_SPREAD_FACTOR * scale[d]:
            why = (
                f"{label} has sd {spread[d]:.4g}, more than {DATA_SPREAD_FACTOR:g} times the "
                f"prior's scale {scale[d]:.3g} = sqrt(mean_prior_sd^2 + obs_sd^2)"
            )
        elif 0 < spread[d] < sigma[d] / DATA_SPREAD_FACTOR:
            why = (
                f"{label} has sd {spread[d]:.4g}, less than 1/{DATA_SPREAD_FACTOR:g} of the "
                f"observation sd {sigma[d]:.3g} the spec assumes"
            )
        else:
            continue
        return (
            f"points: {why}. The priors assume data on roughly that scale, so the fit "
            f"may be dominated by the prior or numerically poor. Standardize first: "
            f"z, center, scale = ppl_mixtures.datasets.standardize(points), fit z, and map "
            f"means back with means * scale + center (obs_sd * scale); or set priors on "
            f"the data's scale."
        )
    return None
