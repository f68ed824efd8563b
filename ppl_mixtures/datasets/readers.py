"""Reading a ``.csv`` or ``.npy`` file into a :class:`Table` (before columns are chosen),
and opening a ``.zarr`` store lazily as a dask array (:func:`open_zarr`).

CSV: a header is optional (a first row with no number), cells are plain ASCII numbers
(:func:`ppl_mixtures.validation.parse_float_text`), missing values are empty/NA/NaN.
.npy: the header is parsed without ``np.load`` first, so a corrupt or truncated file is a
ValueError naming the path, never a MemoryError or an unpickled object."""

from __future__ import annotations

import csv
import re
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ppl_mixtures import validation as v

__all__ = ["Table", "open_zarr", "read_csv", "read_npy"]

_MISSING = frozenset({"", "na", "nan", "n/a", "null", "none"})


class Table(NamedTuple):
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


def read_npy(path: Path) -> Table:
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
    return Table(arr.astype(np.float64), None, np.arange(1, arr.shape[0] + 1), {}, "row")


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


def read_csv(path: Path) -> Table:
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
    return Table(values, first if has_header else None, lines, text, "line")


def open_zarr(path: str | Path, columns: list[int] | None = None) -> tuple[object, tuple[str, ...]]:
    """A ``.zarr`` array store opened lazily (``dask.array.from_zarr``): nothing is read.

    Parameters
    ----------
    path : str or Path
        A zarr array store (a directory written by ``dask.array.to_zarr`` or
        ``zarr.save``) of shape (n_samples,) or (n_samples, n_features); its chunks along
        rows become the dask chunks (``fit`` merges column chunks).
    columns : list of int, optional
        0-based columns to keep (a store has no column names).

    Returns
    -------
    (dask.array.Array, tuple of str)
        The lazy array, and ``"column j"`` for each kept column.

    Raises
    ------
    ImportError
        dask or zarr missing, naming ``pip install 'ppl-mixtures[dask]'``.
    FileNotFoundError, ValueError
        No such store, or not a zarr array (a group, or not zarr at all).
    """
    try:
        import dask.array as da
        import zarr
    except ImportError as err:
        raise ImportError(
            f"path: reading a .zarr store needs dask and zarr ({err}). Install them with "
            f"pip install 'ppl-mixtures[dask]'."
        ) from err
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"path: expected an existing .zarr store, got {str(path)!r} (no such file or "
            f"directory). Check the path and the working directory."
        )
    try:
        store = zarr.open(str(path), mode="r")
    except Exception as err:  # zarr raises several kinds for a folder that is not a store
        raise ValueError(
            f"path: expected a zarr array store, got {str(path)!r}, which zarr cannot open "
            f"({type(err).__name__}: {err}). Write one with dask.array.to_zarr(points, path)."
        ) from err
    if not hasattr(store, "chunks") or not hasattr(store, "dtype"):
        raise ValueError(
            f"path: expected a zarr array, got a zarr group at {str(path)!r} (arrays: "
            f"{', '.join(sorted(store.array_keys())) or 'none'}). Name the array's own "
            f"folder, e.g. {str(path / 'points')!r}."
        )
    points = da.from_zarr(str(path))
    if points.ndim == 1:
        points = points[:, None]
    n_columns = int(points.shape[1]) if points.ndim == 2 else 0
    if columns is not None:
        bad = [j for j in columns if not 0 <= j < n_columns]
        if bad:
            raise ValueError(
                f"columns: expected 0-based column indices below {n_columns} for "
                f"{path.name!r}, got {bad}. A .zarr store has no column names; use indices."
            )
        points = points[:, list(columns)]
    kept = list(range(n_columns)) if columns is None else list(columns)
    return points, tuple(f"column {j}" for j in kept)
