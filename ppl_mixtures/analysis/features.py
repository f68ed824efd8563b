"""The feature fields a comparison carries: names, units, and the map to data units.

The figures (:class:`ppl_mixtures.present.plots.FeatureAxes`) and
:class:`~ppl_mixtures.analysis.comparison.Comparison` accept the same three arguments with
the same messages; the ``check_*`` functions are the one place they are checked. The
others show a comparison's parameters in the data's own names and units.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ppl_mixtures.analysis.summaries import split_parameter

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "check_feature_names",
    "check_transform",
    "check_units",
    "in_data_units",
    "parameter_label",
    "units_note",
]


def check_feature_names(n_features: int, feature_names: Sequence[str] | None) -> tuple[str, ...]:
    """One name per feature ("feature d" when None); ValueError for the wrong count."""
    if feature_names is None:
        return tuple(f"feature {d}" for d in range(n_features))
    if isinstance(feature_names, str) or len(feature_names) != n_features:
        raise ValueError(
            f"feature_names: expected a sequence of {n_features} names (one per "
            f"feature), got {feature_names!r}. Pass e.g. "
            f"{[f'feature {d}' for d in range(n_features)]}."
        )
    return tuple(str(n) for n in feature_names)


def check_units(n_features: int, units: str | Sequence[str] | None) -> tuple[str, ...]:
    """One unit per feature ("data units" when None; one string serves every feature)."""
    if units is None:
        return ("data units",) * n_features
    if isinstance(units, str):
        return (units,) * n_features
    if len(units) != n_features:
        raise ValueError(
            f"units: expected one string or {n_features} strings (one per "
            f"feature), got {units!r}. Pass e.g. units='min'."
        )
    return tuple(str(u) for u in units)


def check_transform(
    n_features: int, data_transform: tuple[Any, Any] | None
) -> tuple[np.ndarray, np.ndarray]:
    """(center, scale) as float64 arrays of shape (n_features,) (0 and 1 when None).

    A fitted value v is ``center + scale * v`` in data units; scales must be positive.
    """
    if data_transform is None:
        return np.zeros(n_features), np.ones(n_features)
    try:
        center, scale = data_transform
        center = np.broadcast_to(np.asarray(center, dtype=float), (n_features,)).copy()
        scale = np.broadcast_to(np.asarray(scale, dtype=float), (n_features,)).copy()
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"data_transform: expected (center, scale), each a number or "
            f"{n_features} numbers, got {data_transform!r}. Pass the center "
            f"and scale returned by datasets.standardize."
        ) from err
    if not (np.all(np.isfinite(center)) and np.all(np.isfinite(scale)) and np.all(scale > 0)):
        raise ValueError(
            f"data_transform: expected finite centers and positive scales, got "
            f"center={center}, scale={scale}."
        )
    return center, scale


def parameter_label(
    parameter: str,
    feature_names: Sequence[str] | None,
    units: str | Sequence[str] | None,
    *,
    with_unit: bool = True,
) -> str:
    """ "means[0,1]" -> "means[0, waiting time] (min)" (the unit left out with
    ``with_unit=False``); unchanged when neither names nor units are known, and for
    parameters without a feature index (weights)."""
    name, d = split_parameter(parameter)
    if d is None or (feature_names is None and units is None):
        return parameter
    component = parameter[len(name) + 1 :].split(",")[0]
    feature = feature_names[d] if feature_names is not None else str(d)
    unit = None if units is None else (units if isinstance(units, str) else units[d])
    return f"{name}[{component}, {feature}]" + (f" ({unit})" if unit and with_unit else "")


def in_data_units(
    parameters: pd.DataFrame, data_transform: tuple[np.ndarray, np.ndarray] | None
) -> pd.DataFrame:
    """A copy of a ``Comparison.parameters`` table with ``mean``, ``sd``, ``mcse`` and
    ``wasserstein`` in data units: means[k, d] at ``center[d] + scale[d] * v``, their
    spreads and obs_sd[k, d] times ``scale[d]``, weights unchanged."""
    table = parameters.copy()
    if data_transform is None:
        return table
    center, scale = data_transform
    split = [split_parameter(p) for p in table["parameter"]]
    d = np.array([-1 if f is None else f for _, f in split])
    has_feature = d >= 0
    factor = np.where(has_feature, scale[np.maximum(d, 0)], 1.0)
    offset = np.where(
        has_feature & (table["group"].to_numpy() == "means"), center[np.maximum(d, 0)], 0.0
    )
    table["mean"] = offset + factor * table["mean"].to_numpy(dtype=float)
    for column in ("sd", "mcse", "wasserstein"):
        if column in table:
            table[column] = factor * table[column].to_numpy(dtype=float)
    return table


def _fmt_vector(values: np.ndarray) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in np.asarray(values, dtype=float)) + ")"


def units_note(
    units: str | tuple[str, ...] | None, data_transform: tuple[np.ndarray, np.ndarray] | None
) -> str | None:
    """One sentence on the units of the parameter tables (None without a transform)."""
    if data_transform is None:
        return None
    unit = (
        f" ({', '.join(dict.fromkeys(units))})"
        if isinstance(units, tuple)
        else (f" ({units})" if units else "")
    )
    return (
        f"The fit ran on standardized data (x - center) / scale; the parameter "
        f"tables are in the data's own units{unit}: means as center + scale * v, sds "
        f"of means and obs_sd as scale * v, weights unchanged (center = "
        f"{_fmt_vector(data_transform[0])}, scale = "
        f"{_fmt_vector(data_transform[1])})."
    )
