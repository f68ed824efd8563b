"""Datasets: the seeds' examples, synthetic mixtures, Old Faithful, and reading user files.

Built-in data (nothing is downloaded)::

    advi_notebook_points()        seed 001's 100 2-D points, bit for bit (np.random.RandomState(123))
    advi_notebook_large_points()  seed 001's 100,000-point set (the same RandomState, continued)
    three_clusters_1d()           seed 000's 1000 points around -10, 0.25 and 5
    three_clusters_2d()           seed 002's kind of data: three 2-D clusters, unequal spreads
    old_faithful()                272 eruptions of Old Faithful (duration, waiting time)

Helpers::

    make_mixture(n_samples, means, weights, obs_sd, random_seed)   points and true labels
    standardize(points)                                           (z, center, scale)
    load_points(path, columns=None, dropna=False)                 CSV (header optional) or .npy
"""

from __future__ import annotations

import csv
import logging
import os
import re
import warnings
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ppl_mixtures import validation as v

__all__ = [
    "ADVI_NOTEBOOK_MEANS",
    "ADVI_NOTEBOOK_OBS_SD",
    "ADVI_NOTEBOOK_WEIGHTS",
    "OLD_FAITHFUL_COLUMNS",
    "OLD_FAITHFUL_FEATURES",
    "OLD_FAITHFUL_UNITS",
    "THREE_CLUSTERS_1D_MEANS",
    "THREE_CLUSTERS_2D_MEANS",
    "THREE_CLUSTERS_2D_OBS_SD",
    "THREE_CLUSTERS_2D_SIZES",
    "advi_notebook_large_points",
    "advi_notebook_points",
    "load_points",
    "load_table",
    "make_mixture",
    "old_faithful",
    "standardize",
    "three_clusters_1d",
    "three_clusters_2d",
]

logger = logging.getLogger(__name__)


def _frozen(values: Any) -> np.ndarray:
    arr = np.array(values, dtype=np.float64)
    arr.setflags(write=False)
    return arr


#: Seed 001's true component means, shape (2, 2); component 0 is the small lower-left one.
ADVI_NOTEBOOK_MEANS = _frozen([[-1.0, -1.5], [1.0, 1.0]])
#: Seed 001's true weights, shape (2,).
ADVI_NOTEBOOK_WEIGHTS = _frozen([0.2, 0.8])
#: Seed 001's observation sd (identity covariance).
ADVI_NOTEBOOK_OBS_SD = 1.0

#: Seed 000's cluster centres (sd 1 each), shape (3,).
THREE_CLUSTERS_1D_MEANS = _frozen([-10.0, 0.25, 5.0])
_THREE_CLUSTERS_1D_SIZES = (333, 333, 334)

#: Our seed-002-style clusters: means (3, 2), per-feature sds (3, 2), cluster sizes.
THREE_CLUSTERS_2D_MEANS = _frozen([[1.5, 2.5], [7.5, 7.5], [8.0, 1.5]])
THREE_CLUSTERS_2D_OBS_SD = _frozen(np.sqrt([[1.2, 0.8], [0.75, 0.5], [0.6, 0.8]]))
THREE_CLUSTERS_2D_SIZES = (150, 50, 100)

#: Column names of :func:`old_faithful`: eruption duration (minutes), waiting time (minutes).
OLD_FAITHFUL_COLUMNS = ("eruptions", "waiting")
#: What the columns of :func:`old_faithful` measure, for axis labels and tables.
OLD_FAITHFUL_FEATURES = ("eruption duration", "waiting time")
#: The unit of both columns of :func:`old_faithful`: minutes.
OLD_FAITHFUL_UNITS = "min"


# --------------------------------------------------------------------------- seed 001
def _advi_notebook_draw(
    rng: np.random.RandomState, n_samples: int
) -> tuple[np.ndarray, np.ndarray]:
    """Seed 001's generator, call for call (the order of RandomState calls is the data).

    Returns
    -------
    data : ndarray of shape (n_samples, 2)
    labels : ndarray of int, shape (n_samples,)
    """
    ms = np.array(ADVI_NOTEBOOK_MEANS)
    ps = np.array(ADVI_NOTEBOOK_WEIGHTS)
    zs = np.array([rng.multinomial(1, ps) for _ in range(n_samples)]).T  # (K, N) one-hot
    xs = [
        z[:, np.newaxis] * rng.multivariate_normal(m, np.eye(2), size=n_samples)
        for z, m in zip(zs, ms, strict=True)
    ]  # K x (N, 2)
    data = np.sum(np.dstack(xs), axis=2)
    return data, np.argmax(zs, axis=0)


def advi_notebook_points(
    n_samples: int = 100, random_seed: int = 123, *, return_labels: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Seed 001's data (the PyMC3 ADVI mixture notebook), reproduced bit for bit.

    Two 2-D Gaussians with identity covariance, means :data:`ADVI_NOTEBOOK_MEANS`
    ((-1, -1.5) and (1, 1)) and weights :data:`ADVI_NOTEBOOK_WEIGHTS` (0.2, 0.8). With the
    defaults the drawn proportions are (0.13, 0.87), as printed in the notebook.

    Parameters
    ----------
    n_samples : int
        Number of points.
    random_seed : int
        Seed of the ``np.random.RandomState`` (the notebook's 123).
    return_labels : bool
        Also return the true component of each point.

    Returns
    -------
    points : ndarray of shape (n_samples, 2)
    labels : ndarray of int, shape (n_samples,)
        Only with ``return_labels=True``; 0 is the component at (-1, -1.5).

    Examples
    --------
    >>> points, labels = advi_notebook_points(return_labels=True)
    >>> points.shape, float(labels.mean())
    ((100, 2), 0.87)
    """
    n_samples = v.check_int("n_samples", n_samples, minimum=1)
    random_seed = v.check_int("random_seed", random_seed, minimum=0)
    data, labels = _advi_notebook_draw(np.random.RandomState(random_seed), n_samples)
    return (data, labels) if return_labels else data


def advi_notebook_large_points(
    n_samples: int = 100_000,
    random_seed: int = 123,
    *,
    return_labels: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Seed 001's large (minibatch) dataset: the same RandomState, continued.

    The notebook draws its 100,000 points from the generator that already drew the 100-point
    set, so this draws the 100 points first (and discards them), then ``n_samples`` more.

    Parameters
    ----------
    n_samples : int
        Number of points (the notebook's 100,000).
    random_seed : int
        Seed of the ``np.random.RandomState``.
    return_labels : bool
        Also return the true component of each point.

    Returns
    -------
    points : ndarray of shape (n_samples, 2)
    labels : ndarray of int, shape (n_samples,)
        Only with ``return_labels=True``.
    """
    n_samples = v.check_int("n_samples", n_samples, minimum=1)
    random_seed = v.check_int("random_seed", random_seed, minimum=0)
    rng = np.random.RandomState(random_seed)
    _advi_notebook_draw(rng, 100)
    data, labels = _advi_notebook_draw(rng, n_samples)
    return (data, labels) if return_labels else data


# --------------------------------------------------------------------------- synthetic
def make_mixture(
    n_samples: int, means: Any, weights: Any, obs_sd: Any = 1.0, random_seed: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Draw points from a Gaussian mixture with diagonal covariances, with their labels.

    Parameters
    ----------
    n_samples : int
        Number of points, >= 1.
    means : array-like of shape (n_components, n_features) or (n_components,)
        Component means; 1-D means give 1-D data.
    weights : array-like of shape (n_components,)
        Mixture weights, >= 0, summing to 1.
    obs_sd : float, array-like of shape (n_features,) or (n_components, n_features)
        Per-feature standard deviations, > 0. With 1-D ``means`` an array of shape
        (n_components,) gives each component its own sd.
    random_seed : int, optional
        Seed of ``np.random.default_rng``.

    Returns
    -------
    points : ndarray of shape (n_samples, n_features), or (n_samples,) for 1-D ``means``
    labels : ndarray of int, shape (n_samples,)
        The component each point was drawn from.

    Examples
    --------
    >>> points, labels = make_mixture(500, [[-2.0, 0.0], [2.0, 0.0]], [0.3, 0.7], 0.5,
    ...                               random_seed=0)
    >>> points.shape, labels.shape
    ((500, 2), (500,))
    """
    n_samples = v.check_int("n_samples", n_samples, minimum=1)
    means_arr = _check_means(means)
    one_d = means_arr.ndim == 1
    means_arr = means_arr[:, None] if one_d else means_arr
    n_components, n_features = means_arr.shape
    weights_arr = _check_weights(weights, n_components)
    sd = _check_obs_sd(obs_sd, n_components, n_features, one_d)
    rng = np.random.default_rng(v.check_seed(random_seed))
    labels = rng.choice(n_components, size=n_samples, p=weights_arr)
    noise = rng.standard_normal((n_samples, n_features))
    points = means_arr[labels] + sd[labels] * noise
    return (points[:, 0] if one_d else points), labels


def _as_array(name: str, value: Any) -> np.ndarray:
    """np.asarray(value), with our message for ragged nested sequences."""
    try:
        return np.asarray(value)
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"{name}: expected a rectangular array of numbers, got a ragged nested "
            f"sequence ({v.describe(value)}). Make every row the same length."
        ) from err


def _check_means(means: Any) -> np.ndarray:
    """Means as float64 of shape (K, D) or (K,)."""
    arr = _as_array("means", means)
    if arr.dtype == bool or arr.dtype.kind in "mMc" or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(
            f"means: expected numbers of shape (n_components, n_features), got "
            f"{v.describe(means)}. Pass e.g. [[-1.0, 0.0], [1.0, 0.0]]."
        )
    arr = arr.astype(np.float64)
    if arr.ndim not in (1, 2) or arr.size == 0:
        raise ValueError(
            f"means: expected shape (n_components, n_features) or (n_components,), "
            f"got shape {arr.shape}. Pass one row per component."
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"means: expected finite values, got {arr.tolist()}. Remove NaN/inf.")
    return arr


def _check_weights(weights: Any, n_components: int) -> np.ndarray:
    """Weights as float64 of shape (K,), >= 0, summing to 1."""
    arr = _as_array("weights", weights)
    if arr.dtype == bool or arr.dtype.kind in "mMc" or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(
            f"weights: expected {n_components} numbers summing to 1, got "
            f"{v.describe(weights)}. Pass e.g. {[round(1 / n_components, 3)] * n_components}."
        )
    arr = arr.astype(np.float64)
    if arr.shape != (n_components,):
        raise ValueError(
            f"weights: expected shape ({n_components},) (one per row of means), got "
            f"shape {arr.shape}. Pass one weight per component."
        )
    if not np.all(np.isfinite(arr)) or np.any(arr < 0) or not np.isclose(arr.sum(), 1.0):
        raise ValueError(
            f"weights: expected non-negative values summing to 1, got "
            f"{arr.tolist()} (sum {arr.sum():.6g}). Divide by their sum."
        )
    return arr / arr.sum()


def _check_obs_sd(obs_sd: Any, n_components: int, n_features: int, one_d: bool) -> np.ndarray:
    """obs_sd broadcast to (K, D), every entry finite and > 0."""
    arr = _as_array("obs_sd", obs_sd)
    if arr.dtype == bool or arr.dtype.kind in "mMc" or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(
            f"obs_sd: expected a positive number or array, got {v.describe(obs_sd)}. "
            f"Pass e.g. obs_sd=1.0."
        )
    arr = arr.astype(np.float64)
    if one_d and arr.shape == (n_components,):
        arr = arr[:, None]
    if arr.shape not in ((), (n_features,), (n_components, n_features)):
        raise ValueError(
            f"obs_sd: expected a scalar, shape ({n_features},) or "
            f"({n_components}, {n_features}), got shape {arr.shape}. Pass one sd, "
            f"one per feature, or one per component and feature."
        )
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(
            f"obs_sd: expected finite values > 0, got {arr.tolist()}. "
            f"Standard deviations must be positive."
        )
    return np.broadcast_to(arr, (n_components, n_features)).copy()


def three_clusters_1d(random_seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seed 000's 1-D data: 333, 333 and 334 points from N(-10, 1), N(0.25, 1), N(5, 1).

    The seed drew them with torch; we use ``np.random.default_rng(random_seed)``, so the
    numbers differ from the blog's but the distribution is the same. The points are in
    cluster order, as in the seed.

    Returns
    -------
    points : ndarray of shape (1000,)
    labels : ndarray of int, shape (1000,)
        0, 1, 2 for the clusters at -10, 0.25 and 5 (:data:`THREE_CLUSTERS_1D_MEANS`).
    """
    random_seed = v.check_int("random_seed", random_seed, minimum=0)
    rng = np.random.default_rng(random_seed)
    points = np.concatenate(
        [
            rng.normal(mean, 1.0, size=size)
            for mean, size in zip(THREE_CLUSTERS_1D_MEANS, _THREE_CLUSTERS_1D_SIZES, strict=True)
        ]
    )
    labels = np.repeat(np.arange(3), _THREE_CLUSTERS_1D_SIZES)
    return points, labels


def three_clusters_2d(random_seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seed 002's kind of data: three 2-D Gaussian clusters with different diagonal spreads.

    150, 50 and 100 points around :data:`THREE_CLUSTERS_2D_MEANS` ((1.5, 2.5), (7.5, 7.5),
    (8, 1.5)) with per-feature variances (1.2, 0.8), (0.75, 0.5) and (0.6, 0.8) (sds in
    :data:`THREE_CLUSTERS_2D_OBS_SD`), drawn with ``np.random.default_rng(random_seed)``, in
    cluster order. The clusters differ in size and in spread, so a model with one known
    ``obs_sd`` is misspecified here: use ``obs_sd="learned"``.

    Returns
    -------
    points : ndarray of shape (300, 2)
    labels : ndarray of int, shape (300,)
    """
    random_seed = v.check_int("random_seed", random_seed, minimum=0)
    rng = np.random.default_rng(random_seed)
    points = np.concatenate(
        [
            mean + sd * rng.standard_normal((size, 2))
            for mean, sd, size in zip(
                THREE_CLUSTERS_2D_MEANS,
                THREE_CLUSTERS_2D_OBS_SD,
                THREE_CLUSTERS_2D_SIZES,
                strict=True,
            )
        ]
    )
    labels = np.repeat(np.arange(3), THREE_CLUSTERS_2D_SIZES)
    return points, labels


# --------------------------------------------------------------------------- real data
def old_faithful() -> np.ndarray:
    """The Old Faithful geyser data: 272 eruptions, shipped with the package.

    Returns
    -------
    ndarray of shape (272, 2)
        Columns :data:`OLD_FAITHFUL_COLUMNS`: eruption duration and waiting time to the
        next eruption, both in minutes. The scales differ by ~20x: :func:`standardize`
        before using priors such as ``mean_prior_sd=1``.
    """
    source = resources.files("ppl_mixtures").joinpath("data", "old_faithful.csv")
    with resources.as_file(source) as path:
        return load_points(path)


def standardize(points: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Center each feature at 0 and scale it to sd 1.

    Parameters
    ----------
    points : array-like of shape (n_samples, n_features) or (n_samples,)

    Returns
    -------
    z : ndarray of shape (n_samples, n_features)
        ``(points - center) / scale``; 1-D input becomes one column.
    center : ndarray of shape (n_features,)
        Feature means.
    scale : ndarray of shape (n_features,)
        Feature sds (ddof=0); 1.0 for a constant feature, so nothing is divided by zero.
        Map results back with ``means * scale + center`` and ``obs_sd * scale``.
    """
    arr = v.check_points(points)
    center = arr.mean(axis=0)
    scale = arr.std(axis=0)
    scale[scale == 0] = 1.0
    return (arr - center) / scale, center, scale


# --------------------------------------------------------------------------- files
_MISSING = frozenset({"", "na", "nan", "n/a", "null", "none"})
_SHOWN = 5  # row numbers quoted in messages


class _Table(NamedTuple):
    """A file read into memory, before columns are chosen.

    values : ndarray of shape (n_rows, n_columns), NaN for missing and for text cells
    names : list of str or None (header)
    rows : ndarray of int, shape (n_rows,), 1-based file line (CSV) or row (.npy) numbers
    text : dict column -> (row number, cell), the first text cell of each column
    unit : "line" (CSV) or "row" (.npy), the word used for ``rows`` in messages
    """

    values: np.ndarray
    names: list[str] | None
    rows: np.ndarray
    text: dict[int, tuple[int, str]]
    unit: str


def load_points(
    path: str | os.PathLike,
    *,
    columns: Sequence[str | int] | str | int | None = None,
    dropna: bool = False,
) -> np.ndarray:
    """Read numeric data from a CSV (header optional) or a NumPy ``.npy`` file.

    Parameters
    ----------
    path : str or path-like
        A ``.csv`` file (comma-separated; the first row is a header when none of its cells is
        a number) or a ``.npy`` array of shape (n_samples,) or (n_samples, n_features).
    columns : str, int or sequence of them, optional
        Columns to keep, by header name or 0-based index. Default: every column (they must
        all be numeric).
    dropna : bool
        Drop rows with a missing value (an empty cell, NA or NaN) in the chosen columns, with
        a logged warning. By default such rows are an error that says where they are.

    Returns
    -------
    ndarray of shape (n_samples, n_features), float64

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    TypeError
        ``path``, ``columns`` or ``dropna`` of the wrong kind.
    ValueError
        Unknown extension, empty file, header only, unknown column, text or inf in a chosen
        column, ragged rows, or missing values without ``dropna``. Messages name the column
        and the file line (1-based, as an editor shows it).

    Examples
    --------
    >>> points = load_points("faithful.csv", columns=["eruptions", "waiting"])  # doctest: +SKIP
    """
    return load_table(path, columns=columns, dropna=dropna)[0]


def load_table(
    path: str | os.PathLike,
    *,
    columns: Sequence[str | int] | str | int | None = None,
    dropna: bool = False,
) -> tuple[np.ndarray, tuple[str, ...]]:
    """:func:`load_points` plus the names of the columns it kept.

    Returns
    -------
    points : ndarray of shape (n_samples, n_features), float64
        As :func:`load_points` returns them.
    names : tuple of str, length n_features
        The header's names of the chosen columns, or ``"column j"`` (0-based index in the
        file) for a column without one: no header row, an empty header cell, or a ``.npy``
        file.

    Raises
    ------
    As :func:`load_points`.
    """
    path = _check_path(path)
    if not isinstance(dropna, bool | np.bool_):
        raise TypeError(
            f"dropna: expected True or False, got {v.describe(dropna)}. "
            f"Pass dropna=True to drop rows with missing values."
        )
    table = _read_npy(path) if path.suffix.lower() == ".npy" else _read_csv(path)
    selected = _select_columns(columns, table, path)
    for j in selected:
        if j in table.text:
            row, cell = table.text[j]
            hint = (
                "Fix the value, or choose numeric columns with columns=[...] (CLI: --columns)"
                if columns is None
                else "Fix the value or choose another column"
            )
            separator = next(
                (name for sep, name in ((";", "semicolon"), ("\t", "tab")) if sep in cell), None
            )
            if separator:
                hint = f"The file looks {separator}-separated: save it comma-separated"
            raise ValueError(
                f"path: expected numbers in column {_column_label(j, table.names)} "
                f"of {path.name!r}, got {cell!r} on {table.unit} {row}. {hint}."
            )
    values = table.values[:, selected]
    infinite = np.isinf(values)
    if infinite.any():
        i, j = np.argwhere(infinite)[0]
        raise ValueError(
            f"path: expected finite numbers in column "
            f"{_column_label(selected[j], table.names)} of {path.name!r}, got "
            f"{float(values[i, j])!r} on {table.unit} {table.rows[i]}. Replace it, or "
            f"leave the cell empty and use dropna=True."
        )
    names = tuple(
        table.names[j].strip()
        if table.names is not None and table.names[j].strip()
        else f"column {j}"
        for j in selected
    )
    return _handle_missing(values, table, dropna, path), names


def _check_path(path: Any) -> Path:
    if not isinstance(path, str | os.PathLike):
        raise TypeError(
            f"path: expected a file path (str or pathlib.Path), got "
            f"{v.describe(path)}. For arrays in memory call fit() directly."
        )
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"path: expected an existing file, got {str(path)!r} (no such "
            f"file). Check the path and the working directory."
        )
    if path.is_dir():
        raise ValueError(
            f"path: expected a file, got the directory {str(path)!r}. "
            f"Name a .csv or .npy file inside it."
        )
    if path.suffix.lower() not in (".csv", ".npy"):
        raise ValueError(
            f"path: expected a .csv or .npy file, got {path.name!r}. Save the data "
            f"as CSV (comma-separated, header optional) or as a NumPy .npy array."
        )
    return path


def _npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) from a .npy header, checked against the file size before any read.

    Raises ValueError naming the path for anything np.load would choke on or allocate too
    much for: a bad magic string, an unparsable header (``tokenize`` and ``SyntaxError``
    come from numpy's literal parser), object dtypes, and a claimed size larger than the
    bytes the file holds (a truncated file, or a corrupt header claiming 10^10 elements).
    """
    from numpy.lib import format as npy_format

    try:
        with path.open("rb") as handle:
            version = npy_format.read_magic(handle)
            reader = (
                npy_format.read_array_header_1_0
                if version == (1, 0)
                else npy_format.read_array_header_2_0
            )
            shape, _fortran, dtype = reader(handle)
            offset = handle.tell()
    except Exception as err:  # tokenize.TokenError, SyntaxError, ValueError, EOFError, ...
        raise ValueError(
            f"path: expected a NumPy .npy file, got {str(path)!r} whose header "
            f"cannot be read ({type(err).__name__}: {err}). The file is corrupt or "
            f"not a .npy file: save the array again with np.save(path, array)."
        ) from err
    if dtype.hasobject:
        raise ValueError(
            f"path: expected a numeric NumPy array in {str(path)!r}, got an array "
            f"of Python objects (dtype {dtype}), which we never unpickle. Save a "
            f"float array."
        )
    if any(int(size) < 0 for size in shape):
        raise ValueError(
            f"path: expected a NumPy .npy file, got {str(path)!r} whose header "
            f"claims the negative shape {shape}. The file is corrupt: save the "
            f"array again with np.save(path, array)."
        )
    n_values = 1
    for size in shape:
        n_values *= int(size)
    claimed = n_values * dtype.itemsize
    available = path.stat().st_size - offset
    if claimed > available:
        raise ValueError(
            f"path: expected {claimed} bytes of data after the header of "
            f"{str(path)!r} (shape {shape}, dtype {dtype}), got {available}. The "
            f"file is truncated or its header is corrupt: save the array again "
            f"with np.save(path, array)."
        )
    return shape, dtype


def _read_npy(path: Path) -> _Table:
    """A .npy file as a table of shape (n_samples, n_features); NaN kept for _handle_missing."""
    _npy_header(path)  # before np.load allocates anything
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as err:  # ValueError, OSError, EOFError, and parse errors of the header
        raise ValueError(
            f"path: expected a numeric NumPy array in {str(path)!r}, got a file "
            f"np.load cannot read ({type(err).__name__}: {err}). Save it with "
            f"np.save(path, array)."
        ) from err
    if (
        arr.dtype == bool
        or arr.dtype.kind in "mM"
        or not np.issubdtype(arr.dtype, np.number)
        or np.iscomplexobj(arr)
    ):
        raise ValueError(
            f"path: expected a real numeric array in {path.name!r}, got "
            f"{v.describe(arr)}. Save a float array (dates and time spans: "
            f"convert to numbers in a unit you choose)."
        )
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(
            f"path: expected a non-empty array of shape (n_samples,) or (n_samples, "
            f"n_features) in {path.name!r}, got shape {arr.shape}. Reshape it "
            f"before saving."
        )
    return _Table(arr.astype(np.float64), None, np.arange(1, arr.shape[0] + 1), {}, "row")


def _parse_cell(cell: str) -> float | None:
    """A number, NaN for a missing cell, None for text.

    Numbers are plain ASCII float syntax only (``validation.parse_float_text``): "1_000",
    full-width digits and the like are text, not numbers.
    """
    if cell.lower() in _MISSING:
        return np.nan
    return v.parse_float_text(cell)


_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+", re.ASCII)


def _numeric_header_reason(first: list[str], body: np.ndarray) -> str | None:
    """Why an all-numeric first row looks like a header of numeric names, or None.

    first : the first row's cells; body : ndarray of shape (n_rows, n_columns), the rest.
    Only with >= 2 columns, when every cell of the first row is written as an integer and
    some value below it is not a whole number (the first row is formatted unlike the data):
    (a) the cells count 0, 1, 2, ... or 1, 2, 3, ... (what pandas writes for unnamed
    columns), or (b) every value lies outside its column's range in the other rows (e.g.
    years 2019, 2020 over small measurements). Anything else is read as data, silently.
    """
    if len(first) < 2 or not all(_INTEGER_TEXT.fullmatch(c) for c in first):
        return None
    finite = body[np.isfinite(body)]
    if finite.size == 0 or np.all(finite == np.round(finite)):
        return None
    values = [int(c) for c in first]
    if values in (list(range(len(first))), list(range(1, len(first) + 1))):
        return "its cells count the columns"
    if body.shape[0] >= 2:
        with np.errstate(invalid="ignore"):
            low, high = np.nanmin(body, axis=0), np.nanmax(body, axis=0)
        outside = [(x < lo or x > hi) for x, lo, hi in zip(values, low, high, strict=True)]
        if all(outside):
            return "every cell lies outside its column's range in the other rows"
    return None


def _read_rows(path: Path) -> list[tuple[int, list[str]]]:
    """Non-blank CSV rows with their 1-based file line numbers; cells stripped."""
    rows = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            for row in reader:
                cells = [cell.strip() for cell in row]
                if any(cells):
                    rows.append((reader.line_num, cells))
    except UnicodeDecodeError as err:
        raise ValueError(
            f"path: expected a UTF-8 text CSV file, got undecodable bytes in "
            f"{path.name!r} ({err.reason}). Export the data as CSV (UTF-8)."
        ) from err
    except csv.Error as err:
        raise ValueError(
            f"path: expected a readable CSV file, got a malformed one, "
            f"{path.name!r} ({err}). Check the quoting."
        ) from err
    return rows


def _read_csv(path: Path) -> _Table:
    """Parse a CSV. Text cells become NaN here and are remembered per column, so a text column
    the user does not select (e.g. an id column) is no error."""
    rows = _read_rows(path)
    if not rows:
        raise ValueError(
            f"path: expected a CSV file with rows of numbers, got an empty file "
            f"{path.name!r}. Check that the file was written completely."
        )
    first = rows[0][1]
    parsed_first = [_parse_cell(c) for c in first]
    # A header has no number in it and at least one text cell (an empty corner cell is fine).
    has_header = any(p is None for p in parsed_first) and all(
        p is None or np.isnan(p) for p in parsed_first
    )
    body = rows[1:] if has_header else rows
    if not body:
        raise ValueError(
            f"path: expected data rows after the header in {path.name!r}, got only "
            f"the header ({', '.join(first)}). Add rows of numbers."
        )
    n_columns = len(first)
    values = np.empty((len(body), n_columns))
    text: dict[int, tuple[int, str]] = {}
    for i, (line, cells) in enumerate(body):
        if len(cells) != n_columns:
            raise ValueError(
                f"path: expected {n_columns} comma-separated values on every row "
                f"of {path.name!r}, got {len(cells)} on line {line}. Make every "
                f"row the same length (leave a cell empty for a missing value)."
            )
        for j, cell in enumerate(cells):
            value = _parse_cell(cell)
            if value is None:
                text.setdefault(j, (line, cell))
                value = np.nan
            values[i, j] = value
    lines = np.array([line for line, _ in body])
    if not has_header:
        reason = _numeric_header_reason(first, values[1:])
        if reason:
            warnings.warn(
                f"path: the first line of {path.name!r} ({', '.join(first)}) is all "
                f"numbers, so it was read as data, but it looks like a header of "
                f"numeric column names ({reason}). If it is a header, delete it or "
                f"give the columns text names.",
                UserWarning,
                stacklevel=4,
            )
    return _Table(values, first if has_header else None, lines, text, "line")


def _column_label(j: int, names: list[str] | None) -> str:
    return f"{names[j]!r}" if names is not None else str(j)


def _select_columns(columns: Any, table: _Table, path: Path) -> list[int]:
    """0-based indices of the chosen columns (all of them by default)."""
    n_columns, names = table.values.shape[1], table.names
    if columns is None:
        return list(range(n_columns))
    if isinstance(columns, str | int | np.integer) and not isinstance(columns, bool):
        columns = [columns]
    if not isinstance(columns, Sequence) or isinstance(columns, str) or len(columns) == 0:
        raise TypeError(
            f"columns: expected a non-empty list of column names or 0-based "
            f"indices, got {v.describe(columns)}. Pass e.g. columns=[0, 1]."
        )
    available = (
        ", ".join(repr(n) for n in names)
        if names is not None
        else f"indices 0 to {n_columns - 1} (the file has no header)"
    )
    selected = []
    for col in columns:
        if isinstance(col, bool) or not isinstance(col, str | int | np.integer):
            raise TypeError(
                f"columns: expected column names or 0-based indices, got "
                f"{v.describe(col)}. Available: {available}."
            )
        if isinstance(col, str):
            if names is None or col not in names:
                raise ValueError(
                    f"columns: expected a column of {path.name!r}, got {col!r}. "
                    f"Available: {available}."
                )
            selected.append(names.index(col))
        elif not 0 <= int(col) < n_columns:
            raise ValueError(
                f"columns: expected an index from 0 to {n_columns - 1}, got "
                f"{int(col)}. Available: {available}."
            )
        else:
            selected.append(int(col))
    return selected


def _handle_missing(values: np.ndarray, table: _Table, dropna: bool, path: Path) -> np.ndarray:
    """Raise on rows with NaN, or drop them (dropna) with a logged warning.

    values : ndarray of shape (n_rows, n_selected)
    """
    missing = np.isnan(values).any(axis=1)
    if not missing.any():
        return np.ascontiguousarray(values)
    where = table.rows[missing]
    shown = ", ".join(str(r) for r in where[:_SHOWN]) + (", ..." if where.size > _SHOWN else "")
    plural = "s" if where.size > 1 else ""
    if not dropna:
        raise ValueError(
            f"path: expected no missing values in {path.name!r}, got {where.size} "
            f"row{plural} with missing values ({table.unit}{plural} {shown}). "
            f"Pass dropna=True (CLI: --dropna) to drop them, or fill them in."
        )
    logger.warning(
        "%s: dropped %d row%s with missing values (%s%s %s)",
        path.name,
        where.size,
        plural,
        table.unit,
        plural,
        shown,
    )
    kept = values[~missing]
    if kept.shape[0] == 0:
        raise ValueError(
            f"path: expected at least one complete row in {path.name!r}, got none "
            f"({where.size} rows, all with missing values). Choose other columns "
            f"or fill in the values."
        )
    return np.ascontiguousarray(kept)
