"""Forest plot: every engine's posterior mean and central intervals, :func:`plot_forest`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ppl_mixtures.analysis.summaries import table_parameters
from ppl_mixtures.present.plots.common import (
    FeatureAxes,
    dataset_title,
    engine_colors,
    new_figure,
    outside_legend,
)
from ppl_mixtures.results import MixtureFit

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ppl_mixtures.analysis.compare import Comparison

__all__ = ["INTERVAL_PROBS", "plot_forest"]


#: Central intervals drawn by the forest plot (ArviZ's default width is the 89 % one).
INTERVAL_PROBS = (0.5, 0.89)


def _forest_groups(comparison: Comparison) -> list[tuple[str, int | None]]:
    """(parameter, feature) panels: means per feature, weights unless fixed, obs_sd per
    feature, and for learned correlations one panel per feature pair i < j (its index
    i * D + j in place of the feature)."""
    ref = comparison.reference_fit
    groups: list[tuple[str, int | None]] = [("means", d) for d in range(ref.n_features)]
    if not ref.spec.fixed_weights and np.ptp(ref.draws("weights")) > 0:
        groups.append(("weights", None))
    if "obs_sd" in ref.parameter_names():
        groups += [("obs_sd", d) for d in range(ref.n_features)]
    if "obs_corr" in table_parameters(ref):
        n = ref.n_features
        groups += [("obs_corr", i * n + j) for i in range(n) for j in range(i + 1, n)]
    return groups


def _component_draws(fit: MixtureFit, name: str, d: int | None) -> np.ndarray:
    """Draws of one group, shape (n_chains * n_draws, n_components)."""
    draws = fit.draws(name)
    flat = draws.reshape(-1, *draws.shape[2:])
    if name == "obs_corr" and d is not None:  # d = i * D + j: the (i, j) correlation
        i, j = divmod(d, flat.shape[-1])
        return flat[:, :, i, j]
    return flat if d is None else flat[:, :, d]


def _panel_title(name: str, d: int | None, features: FeatureAxes) -> str:
    if d is None:
        return name
    if name == "obs_corr":
        i, j = divmod(d, len(features.names))
        return f"correlation: {features.names[i]}, {features.names[j]}"
    return f"{name}: {features.names[d]}"


def plot_forest(
    comparison: Comparison,
    *,
    feature_names: Sequence[str] | None = None,
    units: str | Sequence[str] | None = None,
    data_transform: tuple[Any, Any] | None = None,
    n_draws: int | None = None,
) -> Figure:
    """Forest plot: every engine's posterior mean, 50 % and 89 % central intervals.

    One panel per parameter group and feature (means of feature d, weights, obs_sd of
    feature d, and with a learned full or tied covariance the correlation of each feature
    pair), each with its own x axis, so a weight interval of width 0.05 is readable
    beside means spread over -10..5. One row per component, engines stacked within it.
    Fixed weights are not parameters and are not drawn; a point estimate is a dot
    without interval. ``n_draws``: use at most this many draws per engine (evenly spaced
    over the pooled chains); default all.
    """
    if n_draws is not None and (
        isinstance(n_draws, bool) or not isinstance(n_draws, int) or n_draws < 1
    ):
        raise ValueError(
            f"n_draws: expected a positive int or None, got {n_draws!r}. "
            f"Leave it out to use every draw."
        )
    from matplotlib.lines import Line2D

    features = FeatureAxes.resolve(
        comparison.points.shape[1], feature_names, units, data_transform, comparison
    )
    names = list(comparison.fits)
    colors = engine_colors(names)
    groups = _forest_groups(comparison)
    n_components = comparison.reference_fit.n_components
    ncols = min(3, len(groups))
    nrows = -(-len(groups) // ncols)
    row_height = 0.25 + 0.16 * len(names) * n_components
    fig, axes = new_figure((max(7.0, 3.6 * ncols + 0.3), row_height * nrows + 1.6), nrows, ncols)
    offsets = np.linspace(-0.3, 0.3, len(names)) if len(names) > 1 else np.zeros(1)
    lo_q = [(1 - p) / 2 for p in INTERVAL_PROBS]
    for ax, (pname, d) in zip(axes.ravel(), groups, strict=False):
        for off, name in zip(offsets, names, strict=True):
            x = features.of_parameter(pname, d, _component_draws(comparison.fits[name], pname, d))
            if n_draws is not None and x.shape[0] > n_draws:
                x = x[np.linspace(0, x.shape[0] - 1, n_draws).round().astype(int)]
            y = np.arange(x.shape[1]) + off
            for q, lw in zip(lo_q, (3.5, 1.2), strict=True):
                lo, hi = np.quantile(x, [q, 1 - q], axis=0)
                ax.hlines(y, lo, hi, color=colors[name], lw=lw)
            ax.plot(
                x.mean(axis=0),
                y,
                "o",
                ms=4,
                color=colors[name],
                markeredgecolor="black",
                markeredgewidth=0.5,
            )
        ax.set_yticks(
            range(n_components), [f"component {k}" for k in range(n_components)], fontsize="small"
        )
        ax.set_ylim(n_components - 0.5, -0.5)
        ax.set_title(_panel_title(pname, d, features), fontsize="medium")
        ax.set_xlabel(features.parameter_label(pname, d), fontsize="small")
    for ax in axes.ravel()[len(groups) :]:
        ax.set_visible(False)
    handles = [
        Line2D([], [], color=colors[n], lw=3.5, marker="o", markeredgecolor="black", label=n)
        for n in names
    ]
    handles += [
        Line2D([], [], color="0.3", lw=3.5, label=f"{INTERVAL_PROBS[0]:.0%} interval"),
        Line2D([], [], color="0.3", lw=1.2, label=f"{INTERVAL_PROBS[1]:.0%} interval"),
        Line2D([], [], ls="", marker="o", color="0.3", label="posterior mean"),
    ]
    outside_legend(fig, handles, ncols=min(len(handles), 4))
    fig.suptitle(
        dataset_title(
            comparison, "Forest plot: posterior mean, 50 % and 89 % central intervals per engine"
        ),
        fontsize="medium",
    )
    return fig
