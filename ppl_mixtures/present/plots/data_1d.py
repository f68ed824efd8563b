"""1-D data with each fit's mixture: a histogram with every fit's density and, below it, each
component mean with its posterior and obs_sd intervals (the 1-D case of :func:`plot_data`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ppl_mixtures.present.plots.common import (
    FeatureAxes,
    component_sd,
    new_figure,
    outside_legend,
)
from ppl_mixtures.results import MixtureFit

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_data_1d"]


def _posterior_sd(fit: MixtureFit, name: str) -> np.ndarray:
    draws = fit.draws(name)
    flat = draws.reshape(-1, *draws.shape[2:])
    return flat.std(axis=0) if flat.shape[0] > 1 else np.zeros(flat.shape[1:])


def plot_data_1d(
    points: np.ndarray,
    fits: Mapping[str, MixtureFit],
    colors: Mapping[str, Any],
    features: FeatureAxes,
    title: str,
) -> Figure:
    """A histogram of ``points`` (n, 1) with one :func:`_draw_fit_1d` row per fit."""
    from matplotlib.lines import Line2D

    names = list(fits)
    x = features.values(points)[:, 0]
    fig, axes = new_figure(
        (7.0, 4.2 + 0.28 * len(names)),
        2,
        1,
        sharex=True,
        height_ratios=[3.0, 0.6 + 0.3 * len(names)],
    )
    ax, bars = axes[0, 0], axes[1, 0]
    ax.hist(x, bins=min(60, max(10, len(x) // 10)), density=True, color="0.8")
    grid = np.linspace(
        x.min() - 0.1 * np.ptp(x) - features.scale[0],
        x.max() + 0.1 * np.ptp(x) + features.scale[0],
        400,
    )
    for i, name in enumerate(names):
        _draw_fit_1d(ax, bars, i, fits[name], grid, features, colors[name])
    ax.set_ylabel(f"density (1 / {features.units[0]})")
    bars.set_yticks(range(len(names)), names, fontsize="small")
    bars.set_ylim(len(names) - 0.4, -0.6)
    bars.set_xlabel(features.label(0))
    fig.suptitle(title)
    handles = [Line2D([], [], color="0.8", lw=6, label=f"data ({len(x)} points)")]
    handles += [Line2D([], [], color=colors[n], lw=1.5, label=f"{n} density") for n in names]
    handles += [
        Line2D([], [], color="0.3", lw=5, label="mean ± 2 posterior sd (thick)"),
        Line2D([], [], color="0.3", lw=1, label="mean ± 2 obs_sd (thin)"),
    ]
    outside_legend(fig, handles, ncols=3)
    return fig


def _draw_fit_1d(
    ax: Any,
    bars: Any,
    row: int,
    fit: MixtureFit,
    grid: np.ndarray,
    features: FeatureAxes,
    color: Any,
) -> None:
    """One fit's density over ``grid`` (data units) on ``ax``, its intervals on row ``row``."""
    from ppl_mixtures.model.density import mixture_logp

    z = (grid - features.center[0]) / features.scale[0]  # the fit's own units
    weights, sds = fit.posterior_mean("weights"), component_sd(fit)
    density = np.exp(mixture_logp(z[:, None], weights, fit.posterior_mean("means"), sds))
    ax.plot(grid, density / features.scale[0], color=color, lw=1.5)
    means = features.values(fit.posterior_mean("means"))[:, 0]
    spread = features.spreads(sds)[:, 0]
    post = features.spreads(_posterior_sd(fit, "means"))[:, 0]
    for mean, sd, psd in zip(means, spread, post, strict=True):
        bars.plot([mean - 2 * sd, mean + 2 * sd], [row, row], color=color, lw=1)
        bars.plot(
            [mean - 2 * psd, mean + 2 * psd], [row, row], color=color, lw=5, solid_capstyle="butt"
        )
        bars.plot([mean], [row], marker="|", ms=12, color="black")
