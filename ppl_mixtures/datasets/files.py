""":func:`load_points` and :func:`load_table`: a user's CSV or .npy file as checked float64 data."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ppl_mixtures import validation as v
from ppl_mixtures.datasets.readers import Table, read_csv, read_npy

__all__ = ["load_points", "load_table"]

#: Log records keep the package's logger name (users filter on "ppl_mixtures.datasets").
logger = logging.getLogger("ppl_mixtures.datasets")
_SHOWN = 5  # row numbers quoted in messages


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
    table = read_npy(path) if path.suffix.lower() == ".npy" else read_csv(path)
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


def _column_label(j: int, names: list[str] | None) -> str:
    return f"{names[j]!r}" if names is not None else str(j)


def _select_columns(columns: Any, table: Table, path: Path) -> list[int]:
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


def _handle_missing(values: np.ndarray, table: Table, dropna: bool, path: Path) -> np.ndarray:
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
