"""Each parameter's marginal: :func:`plot_marginals` (one outline per engine) and
:func:`plot_fit_marginals` (one fit), drawn by one code path."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ppl_mixtures.analysis.summaries import split_parameter
from ppl_mixtures.present.plots.common import (
    FeatureAxes,
    dataset_title,
    engine_colors,
    is_point_estimate,
    labelled_draws,
    new_figure,
    outside_legend,
)
from ppl_mixtures.results import MixtureFit

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ppl_mixtures.analysis.compare import Comparison

__all__ = ["plot_fit_marginals", "plot_marginals"]


def plot_marginals(
    comparison: Comparison,
    *,
    parameters: Sequence[str] | None = None,
    max_panels: int = 16,
    bins: int = 20,
    feature_names: Sequence[str] | None = None,
    units: str | Sequence[str] | None = None,
    data_transform: tuple[Any, Any] | None = None,
) -> Figure:
    """Each parameter's marginal: one density per engine (Gaussian KDE), a line for point estimates.

    Parameters the reference does not vary (fixed weights) are left out. Components are
    the aligned ones (``comparison.fits``), so panel ``means[0,1]`` is the same component
    in every engine. Each panel is the one :func:`plot_fit_marginals` draws for one fit,
    with every engine's outline on one axis.

    Parameters
    ----------
    comparison : Comparison or MixtureFit
        A MixtureFit is drawn alone (``plot_fit_marginals(fit)``).
    parameters : sequence of str, optional
        Labels such as ``"means[0,1]"``; default: every varying parameter.
    max_panels : int
        At most this many panels (the first ones in table order).
    bins : int
        Histogram bins for engines with fewer than 20 draws (too few for a KDE).
    feature_names, units, data_transform
        Axis names, units and the map to data units (see the module docstring).
    """
    if isinstance(comparison, MixtureFit):
        return plot_fit_marginals(
            comparison,
            parameters=parameters,
            max_panels=max_panels,
            bins=bins,
            feature_names=feature_names,
            units=units,
            data_transform=data_transform,
        )
    features = FeatureAxes.resolve(
        comparison.points.shape[1], feature_names, units, data_transform, comparison
    )
    table = comparison.parameters
    ref = table[table["engine"] == comparison.reference].set_index("parameter")
    if parameters is None:
        parameters = [p for p in ref.index if ref.loc[p, "sd"] > 0]
    parameters = list(parameters)[:max_panels]
    if not parameters:
        raise ValueError(
            "parameters: expected at least one parameter with posterior spread, "
            "got none. The reference fit has no uncertainty to compare."
        )
    fig = _plot_marginals(
        dict(comparison.fits),
        parameters,
        features,
        bins,
        fallback=lambda label: ref.loc[label, "mean"],
    )
    fig.suptitle(
        dataset_title(
            comparison, f"Posterior marginals (components aligned to {comparison.reference})"
        )
    )
    return fig


def plot_fit_marginals(
    fit: MixtureFit,
    *,
    parameters: Sequence[str] | None = None,
    max_panels: int = 16,
    bins: int = 20,
    title: str | None = None,
    feature_names: Sequence[str] | None = None,
    units: str | Sequence[str] | None = None,
    data_transform: tuple[Any, Any] | None = None,
) -> Figure:
    """Each parameter's marginal under one fit: the panels :func:`plot_marginals` draws.

    A Gaussian KDE of the pooled draws (a step histogram with ``bins`` bins below 20
    draws); a point estimate (EM: one draw) is a dotted line at its value. Fixed
    parameters (constant draws of a fit that has several, e.g. fixed weights) are left
    out; a point estimate shows every parameter it estimated (fixed weights left out).

    Parameters
    ----------
    fit : MixtureFit
    parameters : sequence of str, optional
        Labels such as ``"means[0,1]"``; default: every parameter entry described above.
    max_panels : int
        At most this many panels (the first ones in table order).
    bins : int
        Histogram bins when the fit has fewer than 20 draws (too few for a KDE).
    title : str, optional
        The figure title; default "Posterior marginals: <engine>" ("Point estimates" for
        a point estimate).
    feature_names, units, data_transform
        Axis names, units and the map to data units (see the module docstring).

    Returns
    -------
    matplotlib.figure.Figure
    """
    features = FeatureAxes.resolve(fit.n_features, feature_names, units, data_transform)
    flat = labelled_draws(fit)
    if parameters is None:
        parameters = [label for label, x in flat.items() if np.ptp(x) > 0]
        if not parameters and is_point_estimate(fit):
            parameters = [
                label
                for label in flat
                if not (fit.spec.fixed_weights and label.startswith("weights["))
            ]
    parameters = list(parameters)[:max_panels]
    unknown = [p for p in parameters if p not in flat]
    if unknown:
        raise ValueError(
            f"parameters: expected labels of this fit's parameters such as "
            f"{list(flat)[:3]}, got {unknown}. Leave parameters out to draw "
            f"every one that varies."
        )
    if not parameters:
        raise ValueError(
            f"parameters: expected at least one parameter with posterior spread, "
            f"got none in the {fit.engine} fit ({fit.n_chains * fit.n_draws} "
            f"constant draws). Name the parameters to draw them as lines."
        )
    fig = _plot_marginals(
        {fit.engine: fit},
        parameters,
        features,
        bins,
        fallback=lambda label: float(flat[label].mean()),
    )
    what = "Point estimates" if is_point_estimate(fit) else "Posterior marginals"
    fig.suptitle(title or f"{what}: {fit.engine}")
    return fig


def _plot_marginals(
    fits: Mapping[str, MixtureFit],
    parameters: Sequence[str],
    features: FeatureAxes,
    bins: int,
    fallback: Any,
) -> Figure:
    """One panel per parameter label, one outline per fit; ``fallback(label)`` places the
    axis (in the fit's units) when no fit has spread in that label. No suptitle."""
    from matplotlib.lines import Line2D

    colors = engine_colors(list(fits))
    ncols = min(3, len(parameters))
    nrows = -(-len(parameters) // ncols)
    fig, axes = new_figure((3.3 * ncols, 2.6 * nrows + 0.9), nrows, ncols)
    flat = {name: labelled_draws(fit) for name, fit in fits.items()}
    for ax, label in zip(axes.ravel(), parameters, strict=False):
        pname, d = split_parameter(label)
        draws_of = {
            name: features.of_parameter(pname, d, draws[label])
            for name, draws in flat.items()
            if label in draws
        }
        spread = [x for x in draws_of.values() if x.size > 1]
        values = (
            np.concatenate(spread)
            if spread
            else features.of_parameter(pname, d, np.array([fallback(label)]))
        )
        lo, hi = np.percentile(values, [0.5, 99.5])
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        pad = 0.1 * (hi - lo)
        grid = np.linspace(lo - pad, hi + pad, 200)
        for name, x in draws_of.items():
            _draw_marginal(ax, x, grid, (lo, hi), bins, colors[name])
        ax.set_title(label, fontsize="medium")
        ax.set_xlabel(features.parameter_label(pname, d), fontsize="small")
        if spread:
            ax.set_ylabel("density")
        else:  # point estimates only: no density to show, the value is the information
            _label_point_estimates(ax, draws_of, (grid[0], grid[-1]))
    for ax in axes.ravel()[len(parameters) :]:
        ax.set_visible(False)
    handles = [
        Line2D(
            [],
            [],
            color=colors[name],
            ls=":" if is_point_estimate(fit) else "-",
            label=f"{name}{' (point estimate)' if is_point_estimate(fit) else ''}",
        )
        for name, fit in fits.items()
    ]
    outside_legend(fig, handles, ncols=min(len(handles), 5))
    return fig


def _label_point_estimates(
    ax: Any, draws_of: Mapping[str, np.ndarray], limits: tuple[float, float]
) -> None:
    """A panel of point-estimate lines only: x range around them, no density axis, values written."""
    ax.set_xlim(*limits)
    ax.set_yticks([])
    ax.set_ylabel("point estimate", fontsize="small")
    for i, x in enumerate(draws_of.values()):
        ax.text(
            x[0],
            0.95 - 0.1 * i,
            f" {x[0]:.4g}",
            transform=ax.get_xaxis_transform(),
            ha="left",
            va="top",
            fontsize="small",
        )


def _draw_marginal(
    ax: Any, x: np.ndarray, grid: np.ndarray, limits: tuple[float, float], bins: int, color: Any
) -> None:
    """One fit's draws ``x`` (n,) of one parameter: a KDE, a histogram (< 20 draws) or a line."""
    from scipy.stats import gaussian_kde

    if x.size <= 1 or np.ptp(x) == 0:
        ax.axvline(x[0], color=color, lw=1.5, ls=":")
    elif x.size < 20:  # too few draws for a density estimate
        ax.hist(
            x,
            bins=np.linspace(*limits, bins + 1),
            density=True,
            histtype="step",
            color=color,
            lw=1.4,
        )
    else:
        ax.plot(grid, gaussian_kde(x)(grid), color=color, lw=1.4)
