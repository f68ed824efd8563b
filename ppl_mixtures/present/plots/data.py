"""The data with each fit's components: :func:`plot_data` (a comparison, one panel per
engine) and :func:`plot_fit_data` (one fit), drawn by one code path.

Truncated Dirichlet-process fits carry T components of which only a few hold data; an
unoccupied one has its prior as posterior (mean ellipses as wide as the prior), which
would cover the panel and say nothing. Their 2-D panels draw only the components that
expect at least one of the N points (N w_k >= 1) in at least half of the draws
(``common.DP_DRAWN_FRACTION``), and say so in the panel title."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ppl_mixtures.present.plots.common import (
    DP_DRAWN_FRACTION,
    FeatureAxes,
    component_cov,
    component_sd,
    dataset_title,
    drawn_components,
    engine_colors,
    is_point_estimate,
    new_figure,
    outside_legend,
    thin,
)
from ppl_mixtures.present.plots.data_1d import plot_data_1d
from ppl_mixtures.results import MixtureFit

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ppl_mixtures.analysis.compare import Comparison

__all__ = ["plot_data", "plot_fit_data"]

_drawn = drawn_components


def plot_data(
    comparison: Comparison,
    *,
    max_points: int = 5000,
    feature_names: Sequence[str] | None = None,
    units: str | Sequence[str] | None = None,
    data_transform: tuple[Any, Any] | None = None,
    ncols: int = 3,
) -> Figure:
    """The data with each engine's components, one panel per engine (equal aspect).

    Each panel is the single-fit panel of :func:`plot_fit_data`: the data (grey), each
    component's posterior-mean mean (engine colour), a filled 2-sd ellipse of that mean's
    posterior (from the draws' covariance: how uncertain the engine is about where the
    component is; absent for point estimates), and a dashed 2-sd ellipse of the component
    density (``obs_sd``, posterior mean when learned: how wide the engine thinks the
    cluster is; the same for every engine when ``obs_sd`` is known). With a full or tied
    covariance the density is drawn from the covariance itself (the posterior mean of
    ``obs_cov`` when learned, else the known ``obs_cov``) as its 1-sd (dotted) and 2-sd
    (dashed) contours, tilted by the correlation. The reference
    engine's means are drawn as black "+" in the other panels. Axes have equal aspect
    (with ``data_transform``: equal in standardized units, one sd of each feature the same
    length, labelled in data units) and the same limits in every panel. Features 0 and 1
    are drawn when there are more than two. For 1-D data: a histogram with each engine's
    fitted density, and below it, per engine, each component mean with its 2-sd posterior
    interval (thick) and +-2 obs_sd (thin).

    Parameters
    ----------
    comparison : Comparison or MixtureFit
        A MixtureFit is drawn alone, on its own data (``plot_fit_data(fit)``).
    max_points : int
        Points drawn at most (a fixed random subset of larger data).
    feature_names, units, data_transform
        Axis names, units and the map to data units (see the module docstring).
    ncols : int
        Panels per row (2-D data).

    Returns
    -------
    matplotlib.figure.Figure
    """
    if isinstance(comparison, MixtureFit):
        return plot_fit_data(
            comparison,
            max_points=max_points,
            feature_names=feature_names,
            units=units,
            data_transform=data_transform,
        )
    points = comparison.points
    features = FeatureAxes.resolve(
        points.shape[1], feature_names, units, data_transform, comparison
    )
    fits = dict(comparison.fits)
    colors = engine_colors(list(fits))
    if points.shape[1] == 1:
        return plot_data_1d(
            points,
            fits,
            colors,
            features,
            dataset_title(comparison, "Data and each engine's mixture"),
        )
    what = f"Data and each engine's components{_features_shown(points)}"
    # one panel: the single-fit figure's size and 2 legend columns (3 do not fit its width)
    one_panel = len(fits) == 1
    return _plot_data_2d(
        points,
        fits,
        colors,
        features,
        max_points=max_points,
        ncols=ncols,
        reference=comparison.reference,
        title=dataset_title(comparison, what),
        figsize=(5.6, 6.2) if one_panel else None,
        legend_ncols=2 if one_panel else 3,
    )


def plot_fit_data(
    fit: MixtureFit,
    points: Any = None,
    *,
    max_points: int = 5000,
    title: str | None = None,
    feature_names: Sequence[str] | None = None,
    units: str | Sequence[str] | None = None,
    data_transform: tuple[Any, Any] | None = None,
) -> Figure:
    """The data with one fit's components: the panel :func:`plot_data` draws per engine.

    2-D data (features 0 and 1 when there are more): the points (grey), each component's
    posterior-mean mean, the filled 2-sd ellipse of that mean's posterior (absent for a
    point estimate) and the dashed 2-sd ellipse of the component density (``obs_sd``; with a
    full or tied covariance its 1-sd and 2-sd contours from the posterior-mean or known
    ``obs_cov``), equal aspect. 1-D data: a histogram with the fitted density and, below it, each
    component mean with its 2-sd posterior interval (thick) and +-2 obs_sd (thin).

    Parameters
    ----------
    fit : MixtureFit
    points : array-like of shape (n_samples, n_features) or (n_samples,), optional
        The data to draw (e.g. held-out points); default ``fit.points``, the data the
        engine saw. In the fit's own units (standardized when ``data_transform`` is given).
    max_points : int
        Points drawn at most (a fixed random subset of larger data).
    title : str, optional
        The figure title; default "Data and the <engine> fit's components".
    feature_names, units, data_transform
        Axis names, units and the map to data units (see the module docstring).

    Returns
    -------
    matplotlib.figure.Figure
    """
    points = fit.points if points is None else _check_fit_points(fit, points)
    features = FeatureAxes.resolve(fit.n_features, feature_names, units, data_transform)
    fits = {fit.engine: fit}
    colors = engine_colors([fit.engine])
    if fit.n_features == 1:
        return plot_data_1d(
            points, fits, colors, features, title or f"Data and the {fit.engine} fit's mixture"
        )
    what = f"Data and the {fit.engine} fit's components{_features_shown(points)}"
    return _plot_data_2d(
        points,
        fits,
        colors,
        features,
        max_points=max_points,
        ncols=1,
        reference=None,
        title=title or what,
        figsize=(5.6, 6.2),
        legend_ncols=2,
    )


def _check_fit_points(fit: MixtureFit, points: Any) -> np.ndarray:
    """``points`` as float64 (n_samples, fit.n_features); a ValueError naming the mismatch."""
    from ppl_mixtures.validation import check_points

    arr = check_points(points, name="points")
    if arr.shape[1] != fit.n_features:
        raise ValueError(
            f"points: expected shape (n_samples, {fit.n_features}) like the data "
            f"the {fit.engine} fit saw, got {np.shape(points)}. Pass points with "
            f"the fit's {fit.n_features} feature(s), or leave points out to draw "
            f"fit.points."
        )
    return arr


def _features_shown(points: np.ndarray) -> str:
    return f", features 0 and 1 of {points.shape[1]}" if points.shape[1] > 2 else ""


def _plot_data_2d(
    points: np.ndarray,
    fits: Mapping[str, MixtureFit],
    colors: Mapping[str, Any],
    features: FeatureAxes,
    *,
    max_points: int,
    ncols: int,
    reference: str | None,
    title: str,
    figsize: tuple[float, float] | None = None,
    legend_ncols: int = 3,
) -> Figure:
    """One :func:`_draw_data_panel` per fit, same limits everywhere, legend below."""
    names = list(fits)
    ncols = max(1, min(ncols, len(names)))
    nrows = -(-len(names) // ncols)
    fig, axes = new_figure(figsize or (3.4 * ncols + 0.4, 3.4 * nrows + 1.3), nrows, ncols)
    shown = features.values(thin(points, max_points))[:, :2]
    ref_means = (
        None
        if reference is None
        else features.values(fits[reference].posterior_mean("means"))[
            _drawn(fits[reference], points.shape[0]), :2
        ]
    )
    lows, highs = [shown.min(axis=0)], [shown.max(axis=0)]
    hidden = False
    for ax, name in zip(axes.ravel(), names, strict=False):
        panel_lows, panel_highs = _draw_data_panel(
            ax,
            fits[name],
            shown,
            features,
            colors[name],
            None if name == reference else ref_means,
            _drawn(fits[name], points.shape[0]),
        )
        lows += panel_lows
        highs += panel_highs
        point = " (point estimate)" if is_point_estimate(fits[name]) else ""
        drawn = _drawn(fits[name], points.shape[0])
        if not drawn.all():
            hidden = True
            point += f"\n{int(drawn.sum())} of {drawn.size} DP components drawn"
        ax.set_title(f"{name}{point}", fontsize="medium")
    low, high = np.min(lows, axis=0), np.max(highs, axis=0)
    pad = 0.04 * (high - low)
    for ax in axes.ravel()[: len(names)]:
        ax.set_xlim(low[0] - pad[0], high[0] + pad[0])
        ax.set_ylim(low[1] - pad[1], high[1] + pad[1])
        ax.set_aspect(features.scale[0] / features.scale[1], adjustable="box")
    for ax in axes.ravel()[len(names) :]:
        ax.set_visible(False)
    full = any(component_cov(fit) is not None for fit in fits.values())
    outside_legend(fig, _data_legend_2d(points.shape[0], reference, full), ncols=legend_ncols)
    if hidden:
        sep = " " if len(names) > 1 else "\n"  # one panel: too narrow for one line
        title += (
            f"\n(DP: a component is drawn when it expects{sep}>= 1 of the {points.shape[0]} "
            f"points in >= {DP_DRAWN_FRACTION:.0%} of the draws)"
        )
    if not np.allclose(features.scale[:2], features.scale[0]):
        sep = " " if len(names) > 1 or figsize is None else "\n"  # one narrow panel: 2 lines
        title += f"\n(equal aspect in standardized units:{sep}one sd of each feature is one length)"
    fig.suptitle(title)
    return fig


def _draw_data_panel(
    ax: Any,
    fit: MixtureFit,
    shown: np.ndarray,
    features: FeatureAxes,
    color: Any,
    ref_means: np.ndarray | None,
    drawn: np.ndarray,
) -> tuple[list, list]:
    """Draw one fit's components ``drawn`` ((K,) bool) over the data ``shown`` (n, 2) (data
    units) on ``ax``.

    Returns the lower and upper corners (arrays of shape (2,)) of each component's 2-sd
    box, so the caller can give every panel limits that hold all of them.
    """
    means = features.values(fit.posterior_mean("means"))[drawn, :2]
    sds = features.spreads(component_sd(fit))[drawn, :2]
    covs = _mean_cov(fit, features, (0, 1))[drawn]
    density_covs = _density_cov(fit, features)
    if density_covs is not None:
        density_covs = density_covs[drawn]
    ax.scatter(
        shown[:, 0], shown[:, 1], s=5, c="0.6", alpha=min(1.0, 300 / len(shown)), linewidths=0
    )
    lows, highs = [], []
    for k, (mean, sd, cov) in enumerate(zip(means, sds, covs, strict=True)):
        if density_covs is None:
            ax.add_patch(
                _cov_ellipse(mean, np.diag(sd**2), 2.0, fill=False, ls="--", lw=1.1, color=color)
            )
            box = 2 * sd
        else:
            for n_sd, style in ((1.0, ":"), (2.0, "--")):
                ax.add_patch(
                    _cov_ellipse(
                        mean, density_covs[k], n_sd, fill=False, ls=style, lw=1.1, color=color
                    )
                )
            box = 2 * np.sqrt(np.diagonal(density_covs[k]))  # the 2-sd contour's bounding box
        if np.any(cov > 0):
            ax.add_patch(
                _cov_ellipse(
                    mean,
                    cov,
                    2.0,
                    fill=True,
                    alpha=0.45,
                    lw=0.8,
                    facecolor=color,
                    edgecolor="black",
                )
            )
        lows.append(mean - box)
        highs.append(mean + box)
    ax.scatter(
        means[:, 0],
        means[:, 1],
        s=14,
        marker="o",
        color=color,
        edgecolors="black",
        linewidths=0.5,
        zorder=3,
    )
    if ref_means is not None:
        ax.scatter(
            ref_means[:, 0],
            ref_means[:, 1],
            s=40,
            marker="+",
            color="black",
            linewidths=1.0,
            zorder=4,
        )
    ax.set_xlabel(features.label(0), fontsize="small")
    ax.set_ylabel(features.label(1), fontsize="small")
    return lows, highs


def _data_legend_2d(n_points: int, reference: str | None, full: bool = False) -> list[Any]:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [
        Line2D([], [], ls="", marker="o", ms=4, color="0.6", label=f"data ({n_points} points)"),
        Line2D(
            [],
            [],
            ls="",
            marker="o",
            ms=5,
            color="0.3",
            markeredgecolor="black",
            label="component mean (posterior mean)",
        ),
        Patch(
            facecolor="0.3",
            alpha=0.45,
            edgecolor="black",
            label="2-sd ellipse of the mean's posterior",
        ),
    ]
    if full:
        handles += [
            Line2D([], [], ls=":", color="0.3", label="component density, 1 sd"),
            Line2D([], [], ls="--", color="0.3", label="component density, 2 sd"),
        ]
    else:
        handles.append(
            Line2D([], [], ls="--", color="0.3", label="2 obs_sd: the component density")
        )
    if reference is not None:
        handles.append(
            Line2D(
                [],
                [],
                ls="",
                marker="+",
                ms=8,
                color="black",
                label=f"{reference} (reference) means",
            )
        )
    return handles


def _mean_cov(fit: MixtureFit, features: FeatureAxes, dims: tuple[int, int]) -> np.ndarray:
    """Posterior covariance of each component mean over two features, (K, 2, 2), data units."""
    draws = fit.draws("means")
    flat = draws.reshape(-1, draws.shape[2], draws.shape[3])[:, :, list(dims)]
    flat = flat * features.scale[list(dims)]
    if flat.shape[0] < 2:
        return np.zeros((draws.shape[2], 2, 2))
    centered = flat - flat.mean(axis=0)
    return np.einsum("skd,ske->kde", centered, centered) / (flat.shape[0] - 1)


def _density_cov(fit: MixtureFit, features: FeatureAxes) -> np.ndarray | None:
    """Each component's density covariance over features 0 and 1 in data units, (K, 2, 2)
    (scale_i scale_j Sigma_ij), or None for a diagonal or spherical fit."""
    cov = component_cov(fit)
    if cov is None:
        return None
    scale = features.scale
    return (cov * scale[:, None] * scale[None, :])[:, :2, :2]


def _cov_ellipse(center: np.ndarray, cov: np.ndarray, n_sd: float, **kwargs: Any) -> Any:
    """An Ellipse patch of the n_sd contour of N(center, cov) (cov of shape (2, 2))."""
    from matplotlib.patches import Ellipse

    vals, vecs = np.linalg.eigh(cov)
    vals = np.clip(vals, 0.0, None)
    angle = float(np.degrees(np.arctan2(vecs[1, 1], vecs[0, 1])))
    return Ellipse(
        tuple(center),
        2 * n_sd * np.sqrt(vals[1]),
        2 * n_sd * np.sqrt(vals[0]),
        angle=angle,
        **kwargs,
    )
