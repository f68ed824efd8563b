"""The data coloured by each point's responsibilities under one fit: :func:`plot_responsibilities`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ppl_mixtures.analysis.diagnostics import responsibilities
from ppl_mixtures.present.plots.common import (
    FeatureAxes,
    component_colors,
    new_figure,
    outside_legend,
    thin,
)
from ppl_mixtures.results import MixtureFit

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_responsibilities"]


def _responsibilities(fit: MixtureFit, points: np.ndarray) -> np.ndarray:
    """p(z_i = k | x_i) averaged over the fit's draws, shape (n_points, n_components)."""
    return np.asarray(responsibilities(fit, points))


def plot_responsibilities(
    fit: MixtureFit,
    *,
    max_points: int = 5000,
    title: str | None = None,
    feature_names: Sequence[str] | None = None,
    units: str | Sequence[str] | None = None,
    data_transform: tuple[Any, Any] | None = None,
) -> Figure:
    """The data coloured by each point's responsibilities under one fit.

    A point's colour mixes the component colours in proportion to p(z_i = k | x): pure
    colours are confident assignments, blends are points the model is unsure about
    (equal aspect). For 1-D data, each component's responsibility is plotted against x.
    """
    from matplotlib.patches import Patch

    features = FeatureAxes.resolve(fit.n_features, feature_names, units, data_transform)
    points = thin(fit.points, max_points)  # computed only where drawn
    resp = _responsibilities(fit, points)
    shown = features.values(points)
    colors = component_colors(fit.n_components)
    fig, axes = new_figure((6.5, 5.6) if points.shape[1] > 1 else (7.5, 4.0))
    ax = axes[0, 0]
    handles = [Patch(color=colors[k], label=f"component {k}") for k in range(fit.n_components)]
    if points.shape[1] == 1:
        for k in range(fit.n_components):
            ax.scatter(shown[:, 0], resp[:, k], s=8, color=colors[k], alpha=0.6)
        ax.set_xlabel(features.label(0))
        ax.set_ylabel("responsibility p(z = k | x)")
        ax.set_ylim(-0.05, 1.05)
        where = "right upper"
    else:
        mixed = np.clip(resp @ colors, 0.0, 1.0)
        ax.scatter(shown[:, 0], shown[:, 1], s=12, c=mixed, linewidths=0)
        means = features.values(fit.posterior_mean("means"))
        ax.scatter(
            means[:, 0], means[:, 1], s=90, marker="X", c=colors, edgecolors="black", zorder=3
        )
        handles.append(Patch(facecolor="white", edgecolor="black", label="X: component mean"))
        ax.set_xlabel(features.label(0))
        ax.set_ylabel(features.label(1))
        ax.set_aspect(features.scale[0] / features.scale[1], adjustable="datalim")
        where = "lower center"
    outside_legend(fig, handles, where=where, ncols=1 if where == "right upper" else 3)
    default = (
        f"Responsibilities under {fit.engine}"
        if points.shape[1] == 1
        else f"Responsibilities under {fit.engine} (colour mix = uncertainty)"
    )
    ax.set_title(title or default, fontsize="medium")
    return fig
