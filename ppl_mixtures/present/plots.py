"""Figures for one :class:`~ppl_mixtures.results.MixtureFit` or a
:class:`~ppl_mixtures.analysis.compare.Comparison` (matplotlib, headless).

Every function returns a ``matplotlib.figure.Figure`` with a title, labelled axes (with
units) and a legend placed outside the axes, so it covers no data; nothing is shown (no
``plt.show()``), so the functions work under the Agg backend in tests, reports and CI.
Engines keep one colour across all figures.

- :func:`plot_data`: one panel per engine (equal aspect): the data, each component's
  posterior-mean mean, the 2-sd ellipse of that mean's posterior (its uncertainty) and the
  2-sd ellipse of the component density (``obs_sd``); for 1-D data a histogram with each
  engine's fitted density and, below it, intervals per engine;
- :func:`plot_elbo`: ELBO traces of the variational engines, in nats, with log p(x) (an
  estimate with its se unless exact) and each engine's exact final ELBO;
- :func:`plot_marginals`: each parameter's posterior marginal, one outline per engine;
- :func:`plot_forest`: 50 % and 89 % intervals, one panel per parameter group and feature;
- :func:`plot_trace`: per-chain densities and traces of one fit, with a chain colour key;
- :func:`plot_responsibilities`: points coloured by their component responsibilities.

One fit needs no comparison: :func:`plot_fit_data`, :func:`plot_fit_marginals`,
:func:`plot_trace` and :func:`plot_responsibilities` take a ``MixtureFit`` (also as the
methods ``fit.plot_data()``, ``fit.plot_marginals()``, ``fit.plot_trace()``). The
comparison's :func:`plot_data` and :func:`plot_marginals` draw the same single-fit panel
for each engine (one drawing code path).

Feature names and units: every function takes ``feature_names`` (one name per feature),
``units`` (one string, or one per feature) and ``data_transform=(center, scale)``. With
``data_transform`` the fit is taken to be on standardized data ``(x - center) / scale``
(as from :func:`ppl_mixtures.datasets.standardize`) and everything is drawn in data units:
points and means as ``center + scale * value``, sds as ``scale * value``. When an argument
is not given, an attribute of the same name on the comparison is used if it has one
(``feature_names``, ``units``, ``data_transform``); otherwise "feature d (data units)".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ppl_mixtures.analysis.compare import _split_parameter as _split_label
from ppl_mixtures.results import MixtureFit

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ppl_mixtures.analysis.compare import Comparison

__all__ = [
    "FeatureAxes",
    "engine_colors",
    "plot_data",
    "plot_elbo",
    "plot_fit_data",
    "plot_fit_marginals",
    "plot_forest",
    "plot_marginals",
    "plot_responsibilities",
    "plot_trace",
]

#: Central intervals drawn by the forest plot (ArviZ's default width is the 89 % one).
INTERVAL_PROBS = (0.5, 0.89)


# --------------------------------------------------------------------------- helpers
def _new_figure(figsize: tuple[float, float], nrows: int = 1, ncols: int = 1, **kwargs: Any):
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kwargs)
    return fig, axes


def engine_colors(names: Sequence[str]) -> dict[str, Any]:
    """One colour per engine (tab10, in the given order)."""
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return {name: cmap(i % 10) for i, name in enumerate(names)}


def _component_colors(n_components: int) -> np.ndarray:
    """RGB colours of the components, shape (n_components, 3)."""
    from matplotlib import colormaps

    cmap = colormaps["Set1" if n_components <= 9 else "tab20"]
    return np.array([cmap(k % cmap.N)[:3] for k in range(n_components)])


def _thin(points: np.ndarray, max_points: int, seed: int = 0) -> np.ndarray:
    """At most ``max_points`` rows (a fixed random subset), so 1e5 points plot fast."""
    if points.shape[0] <= max_points:
        return points
    idx = np.random.default_rng(seed).choice(points.shape[0], max_points, replace=False)
    return points[np.sort(idx)]


def _component_sd(fit: MixtureFit) -> np.ndarray:
    """Posterior-mean obs_sd of each component, shape (n_components, n_features)."""
    if "obs_sd" in fit.parameter_names():
        return fit.posterior_mean("obs_sd")
    return fit.spec.known_obs_sd(fit.n_features)


def _dataset_title(comparison: Comparison, what: str) -> str:
    return f"{what}: {comparison.name}" if comparison.name else what


def _is_point_estimate(fit: MixtureFit) -> bool:
    return fit.n_chains * fit.n_draws <= 1


def _outside_legend(fig: Figure, handles: list[Any], *, where: str = "lower center",
                    ncols: int | None = None) -> Any:
    """A figure legend outside every axes (constrained layout makes room for it)."""
    ncols = ncols or min(len(handles), 3)
    return fig.legend(handles=handles, loc=f"outside {where}", ncols=ncols, fontsize="small")


@dataclass(frozen=True)
class FeatureAxes:
    """Names, units and the map to data units of the features, for axis labels.

    Attributes
    ----------
    names : tuple of str
        One name per feature.
    units : tuple of str
        One unit per feature (e.g. "min"); "data units" when not given.
    center, scale : ndarray of shape (n_features,)
        A fitted value v is drawn at ``center + scale * v`` (sds at ``scale * v``);
        0 and 1 when the fit is in data units already.
    """

    names: tuple[str, ...]
    units: tuple[str, ...]
    center: np.ndarray
    scale: np.ndarray

    @classmethod
    def resolve(cls, n_features: int, feature_names: Sequence[str] | None = None,
                units: str | Sequence[str] | None = None,
                data_transform: tuple[Any, Any] | None = None,
                source: Any = None) -> FeatureAxes:
        """Check the arguments (falling back to attributes of ``source``) and build one."""
        feature_names = feature_names if feature_names is not None else getattr(
            source, "feature_names", None)
        units = units if units is not None else getattr(source, "units", None)
        data_transform = data_transform if data_transform is not None else getattr(
            source, "data_transform", None)
        names = cls._names(n_features, feature_names)
        unit_list = cls._units(n_features, units)
        center, scale = cls._transform(n_features, data_transform)
        return cls(names, unit_list, center, scale)

    @staticmethod
    def _names(n_features: int, feature_names: Sequence[str] | None) -> tuple[str, ...]:
        if feature_names is None:
            return tuple(f"feature {d}" for d in range(n_features))
        if isinstance(feature_names, str) or len(feature_names) != n_features:
            raise ValueError(f"feature_names: expected a sequence of {n_features} names (one per "
                             f"feature), got {feature_names!r}. Pass e.g. "
                             f"{[f'feature {d}' for d in range(n_features)]}.")
        return tuple(str(n) for n in feature_names)

    @staticmethod
    def _units(n_features: int, units: str | Sequence[str] | None) -> tuple[str, ...]:
        if units is None:
            return ("data units",) * n_features
        if isinstance(units, str):
            return (units,) * n_features
        if len(units) != n_features:
            raise ValueError(f"units: expected one string or {n_features} strings (one per "
                             f"feature), got {units!r}. Pass e.g. units='min'.")
        return tuple(str(u) for u in units)

    @staticmethod
    def _transform(n_features: int, data_transform: tuple[Any, Any] | None):
        if data_transform is None:
            return np.zeros(n_features), np.ones(n_features)
        try:
            center, scale = data_transform
            center = np.broadcast_to(np.asarray(center, dtype=float), (n_features,)).copy()
            scale = np.broadcast_to(np.asarray(scale, dtype=float), (n_features,)).copy()
        except (TypeError, ValueError) as err:
            raise ValueError(f"data_transform: expected (center, scale), each a number or "
                             f"{n_features} numbers, got {data_transform!r}. Pass the center "
                             f"and scale returned by datasets.standardize.") from err
        if not (np.all(np.isfinite(center)) and np.all(np.isfinite(scale)) and np.all(scale > 0)):
            raise ValueError(f"data_transform: expected finite centers and positive scales, got "
                             f"center={center}, scale={scale}.")
        return center, scale

    def label(self, d: int, what: str | None = None) -> str:
        """Axis label of feature d, e.g. "waiting time (min)" or "sd of waiting time (min)"."""
        name = self.names[d] if what is None else f"{what} of {self.names[d]}"
        return f"{name} ({self.units[d]})"

    def values(self, x: np.ndarray) -> np.ndarray:
        """Positions (..., n_features) in data units."""
        return self.center + self.scale * np.asarray(x, dtype=float)

    def spreads(self, sd: np.ndarray) -> np.ndarray:
        """Sds (..., n_features) in data units."""
        return self.scale * np.asarray(sd, dtype=float)

    def of_parameter(self, name: str, d: int | None, x: np.ndarray) -> np.ndarray:
        """A parameter's values in data units: means shift and scale, obs_sd scales."""
        if name == "means" and d is not None:
            return self.center[d] + self.scale[d] * x
        if name == "obs_sd" and d is not None:
            return self.scale[d] * x
        return x

    def parameter_label(self, name: str, d: int | None) -> str:
        if name == "weights" or d is None:
            return "weight (probability)"
        return self.label(d, "mean" if name == "means" else "sd")


def _mean_cov(fit: MixtureFit, features: FeatureAxes, dims: tuple[int, int]) -> np.ndarray:
    """Posterior covariance of each component mean over two features, (K, 2, 2), data units."""
    draws = fit.draws("means")
    flat = draws.reshape(-1, draws.shape[2], draws.shape[3])[:, :, list(dims)]
    flat = flat * features.scale[list(dims)]
    if flat.shape[0] < 2:
        return np.zeros((draws.shape[2], 2, 2))
    centered = flat - flat.mean(axis=0)
    return np.einsum("skd,ske->kde", centered, centered) / (flat.shape[0] - 1)


def _cov_ellipse(center: np.ndarray, cov: np.ndarray, n_sd: float, **kwargs: Any) -> Any:
    """An Ellipse patch of the n_sd contour of N(center, cov) (cov of shape (2, 2))."""
    from matplotlib.patches import Ellipse

    vals, vecs = np.linalg.eigh(cov)
    vals = np.clip(vals, 0.0, None)
    angle = float(np.degrees(np.arctan2(vecs[1, 1], vecs[0, 1])))
    return Ellipse(tuple(center), 2 * n_sd * np.sqrt(vals[1]), 2 * n_sd * np.sqrt(vals[0]),
                   angle=angle, **kwargs)


# --------------------------------------------------------------------------- data
def plot_data(comparison: Comparison, *, max_points: int = 5000,
              feature_names: Sequence[str] | None = None, units: str | Sequence[str] | None = None,
              data_transform: tuple[Any, Any] | None = None, ncols: int = 3) -> Figure:
    """The data with each engine's components, one panel per engine (equal aspect).

    Each panel is the single-fit panel of :func:`plot_fit_data`: the data (grey), each
    component's posterior-mean mean (engine colour), a filled 2-sd ellipse of that mean's
    posterior (from the draws' covariance: how uncertain the engine is about where the
    component is; absent for point estimates), and a dashed 2-sd ellipse of the component
    density (``obs_sd``, posterior mean when learned: how wide the engine thinks the
    cluster is; the same for every engine when ``obs_sd`` is known). The reference
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
        return plot_fit_data(comparison, max_points=max_points, feature_names=feature_names,
                             units=units, data_transform=data_transform)
    points = comparison.points
    features = FeatureAxes.resolve(points.shape[1], feature_names, units, data_transform,
                                   comparison)
    fits = dict(comparison.fits)
    colors = engine_colors(list(fits))
    if points.shape[1] == 1:
        return _plot_data_1d(points, fits, colors, features,
                             _dataset_title(comparison, "Data and each engine's mixture"))
    what = f"Data and each engine's components{_features_shown(points)}"
    return _plot_data_2d(points, fits, colors, features, max_points=max_points, ncols=ncols,
                         reference=comparison.reference,
                         title=_dataset_title(comparison, what))


def plot_fit_data(fit: MixtureFit, points: Any = None, *, max_points: int = 5000,
                  title: str | None = None, feature_names: Sequence[str] | None = None,
                  units: str | Sequence[str] | None = None,
                  data_transform: tuple[Any, Any] | None = None) -> Figure:
    """The data with one fit's components: the panel :func:`plot_data` draws per engine.

    2-D data (features 0 and 1 when there are more): the points (grey), each component's
    posterior-mean mean, the filled 2-sd ellipse of that mean's posterior (absent for a
    point estimate) and the dashed 2-sd ellipse of the component density (``obs_sd``),
    equal aspect. 1-D data: a histogram with the fitted density and, below it, each
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
        return _plot_data_1d(points, fits, colors, features,
                             title or f"Data and the {fit.engine} fit's mixture")
    what = f"Data and the {fit.engine} fit's components{_features_shown(points)}"
    return _plot_data_2d(points, fits, colors, features, max_points=max_points, ncols=1,
                         reference=None, title=title or what, figsize=(5.6, 6.2),
                         legend_ncols=2)


def _check_fit_points(fit: MixtureFit, points: Any) -> np.ndarray:
    """``points`` as float64 (n_samples, fit.n_features); a ValueError naming the mismatch."""
    from ppl_mixtures.validation import check_points

    arr = check_points(points, name="points")
    if arr.shape[1] != fit.n_features:
        raise ValueError(f"points: expected shape (n_samples, {fit.n_features}) like the data "
                         f"the {fit.engine} fit saw, got {np.shape(points)}. Pass points with "
                         f"the fit's {fit.n_features} feature(s), or leave points out to draw "
                         f"fit.points.")
    return arr


def _features_shown(points: np.ndarray) -> str:
    return f", features 0 and 1 of {points.shape[1]}" if points.shape[1] > 2 else ""


def _plot_data_2d(points: np.ndarray, fits: Mapping[str, MixtureFit],
                  colors: Mapping[str, Any], features: FeatureAxes, *, max_points: int,
                  ncols: int, reference: str | None, title: str,
                  figsize: tuple[float, float] | None = None, legend_ncols: int = 3) -> Figure:
    """One :func:`_draw_data_panel` per fit, same limits everywhere, legend below."""
    names = list(fits)
    ncols = max(1, min(ncols, len(names)))
    nrows = -(-len(names) // ncols)
    fig, axes = _new_figure(figsize or (3.4 * ncols + 0.4, 3.4 * nrows + 1.3), nrows, ncols)
    shown = features.values(_thin(points, max_points))[:, :2]
    ref_means = (None if reference is None
                 else features.values(fits[reference].posterior_mean("means"))[:, :2])
    lows, highs = [shown.min(axis=0)], [shown.max(axis=0)]
    for ax, name in zip(axes.ravel(), names, strict=False):
        low, high = _draw_data_panel(ax, fits[name], shown, features, colors[name],
                                     None if name == reference else ref_means)
        lows += low
        highs += high
        point = " (point estimate)" if _is_point_estimate(fits[name]) else ""
        ax.set_title(f"{name}{point}", fontsize="medium")
    low, high = np.min(lows, axis=0), np.max(highs, axis=0)
    pad = 0.04 * (high - low)
    for ax in axes.ravel()[:len(names)]:
        ax.set_xlim(low[0] - pad[0], high[0] + pad[0])
        ax.set_ylim(low[1] - pad[1], high[1] + pad[1])
        ax.set_aspect(features.scale[0] / features.scale[1], adjustable="box")
    for ax in axes.ravel()[len(names):]:
        ax.set_visible(False)
    _outside_legend(fig, _data_legend_2d(points.shape[0], reference), ncols=legend_ncols)
    if not np.allclose(features.scale[:2], features.scale[0]):
        sep = " " if len(names) > 1 or figsize is None else "\n"  # one narrow panel: 2 lines
        title += f"\n(equal aspect in standardized units:{sep}one sd of each feature is one length)"
    fig.suptitle(title)
    return fig


def _draw_data_panel(ax: Any, fit: MixtureFit, shown: np.ndarray, features: FeatureAxes,
                     color: Any, ref_means: np.ndarray | None) -> tuple[list, list]:
    """Draw one fit over the data ``shown`` (n, 2) (data units) on ``ax``.

    Returns the lower and upper corners (arrays of shape (2,)) of each component's 2-obs_sd
    box, so the caller can give every panel limits that hold all of them.
    """
    means = features.values(fit.posterior_mean("means"))[:, :2]
    sds = features.spreads(_component_sd(fit))[:, :2]
    covs = _mean_cov(fit, features, (0, 1))
    ax.scatter(shown[:, 0], shown[:, 1], s=5, c="0.6", alpha=min(1.0, 300 / len(shown)),
               linewidths=0)
    lows, highs = [], []
    for mean, sd, cov in zip(means, sds, covs, strict=True):
        ax.add_patch(_cov_ellipse(mean, np.diag(sd**2), 2.0, fill=False, ls="--", lw=1.1,
                                  color=color))
        if np.any(cov > 0):
            ax.add_patch(_cov_ellipse(mean, cov, 2.0, fill=True, alpha=0.45, lw=0.8,
                                      facecolor=color, edgecolor="black"))
        lows.append(mean - 2 * sd)
        highs.append(mean + 2 * sd)
    ax.scatter(means[:, 0], means[:, 1], s=14, marker="o", color=color,
               edgecolors="black", linewidths=0.5, zorder=3)
    if ref_means is not None:
        ax.scatter(ref_means[:, 0], ref_means[:, 1], s=40, marker="+", color="black",
                   linewidths=1.0, zorder=4)
    ax.set_xlabel(features.label(0), fontsize="small")
    ax.set_ylabel(features.label(1), fontsize="small")
    return lows, highs


def _data_legend_2d(n_points: int, reference: str | None) -> list[Any]:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Line2D([], [], ls="", marker="o", ms=4, color="0.6",
                      label=f"data ({n_points} points)"),
               Line2D([], [], ls="", marker="o", ms=5, color="0.3", markeredgecolor="black",
                      label="component mean (posterior mean)"),
               Patch(facecolor="0.3", alpha=0.45, edgecolor="black",
                     label="2-sd ellipse of the mean's posterior"),
               Line2D([], [], ls="--", color="0.3", label="2 obs_sd: the component density")]
    if reference is not None:
        handles.append(Line2D([], [], ls="", marker="+", ms=8, color="black",
                              label=f"{reference} (reference) means"))
    return handles


def _posterior_sd(fit: MixtureFit, name: str) -> np.ndarray:
    draws = fit.draws(name)
    flat = draws.reshape(-1, *draws.shape[2:])
    return flat.std(axis=0) if flat.shape[0] > 1 else np.zeros(flat.shape[1:])


def _plot_data_1d(points: np.ndarray, fits: Mapping[str, MixtureFit],
                  colors: Mapping[str, Any], features: FeatureAxes, title: str) -> Figure:
    """A histogram of ``points`` (n, 1) with one :func:`_draw_fit_1d` row per fit."""
    from matplotlib.lines import Line2D

    names = list(fits)
    x = features.values(points)[:, 0]
    fig, axes = _new_figure((7.0, 4.2 + 0.28 * len(names)), 2, 1, sharex=True,
                            height_ratios=[3.0, 0.6 + 0.3 * len(names)])
    ax, bars = axes[0, 0], axes[1, 0]
    ax.hist(x, bins=min(60, max(10, len(x) // 10)), density=True, color="0.8")
    grid = np.linspace(x.min() - 0.1 * np.ptp(x) - features.scale[0],
                       x.max() + 0.1 * np.ptp(x) + features.scale[0], 400)
    for i, name in enumerate(names):
        _draw_fit_1d(ax, bars, i, fits[name], grid, features, colors[name])
    ax.set_ylabel(f"density (1 / {features.units[0]})")
    bars.set_yticks(range(len(names)), names, fontsize="small")
    bars.set_ylim(len(names) - 0.4, -0.6)
    bars.set_xlabel(features.label(0))
    fig.suptitle(title)
    handles = [Line2D([], [], color="0.8", lw=6, label=f"data ({len(x)} points)")]
    handles += [Line2D([], [], color=colors[n], lw=1.5, label=f"{n} density") for n in names]
    handles += [Line2D([], [], color="0.3", lw=5, label="mean ± 2 posterior sd (thick)"),
                Line2D([], [], color="0.3", lw=1, label="mean ± 2 obs_sd (thin)")]
    _outside_legend(fig, handles, ncols=3)
    return fig


def _draw_fit_1d(ax: Any, bars: Any, row: int, fit: MixtureFit, grid: np.ndarray,
                 features: FeatureAxes, color: Any) -> None:
    """One fit's density over ``grid`` (data units) on ``ax``, its intervals on row ``row``."""
    from ppl_mixtures.model.density import mixture_logp

    z = (grid - features.center[0]) / features.scale[0]  # the fit's own units
    weights, sds = fit.posterior_mean("weights"), _component_sd(fit)
    density = np.exp(mixture_logp(z[:, None], weights, fit.posterior_mean("means"), sds))
    ax.plot(grid, density / features.scale[0], color=color, lw=1.5)
    means = features.values(fit.posterior_mean("means"))[:, 0]
    spread = features.spreads(sds)[:, 0]
    post = features.spreads(_posterior_sd(fit, "means"))[:, 0]
    for mean, sd, psd in zip(means, spread, post, strict=True):
        bars.plot([mean - 2 * sd, mean + 2 * sd], [row, row], color=color, lw=1)
        bars.plot([mean - 2 * psd, mean + 2 * psd], [row, row], color=color, lw=5,
                  solid_capstyle="butt")
        bars.plot([mean], [row], marker="|", ms=12, color="black")


# --------------------------------------------------------------------------- ELBO
def _running_mean(trace: np.ndarray) -> tuple[np.ndarray, bool]:
    """Smooth a noisy (minibatch / Monte Carlo) trace; returns (trace, smoothed?)."""
    if trace.size < 20:
        return trace, False
    decreases = np.mean(np.diff(trace) < 0)
    if decreases < 0.2:  # a coordinate-ascent trace: monotone, show as is
        return trace, False
    window = max(10, trace.size // 30)
    kernel = np.ones(window) / window
    smooth = np.convolve(trace, kernel, mode="valid")
    return np.concatenate([np.full(window - 1, np.nan), smooth]), True


def plot_elbo(comparison: Comparison, *, feature_names: Sequence[str] | None = None,
              units: str | Sequence[str] | None = None,
              data_transform: tuple[Any, Any] | None = None) -> Figure:
    """ELBO traces of every fit that has one, on one axis, in nats.

    Noisy traces (stochastic engines: more than 20 % of steps go down) are Monte Carlo or
    minibatch *estimates* of the ELBO and are shown as a running mean over 1/30 of the
    run (at least 10 steps); each engine's exact (or precise) final ELBO,
    ``extras["elbo_final"]``, is a dot at its last step. The log evidence log p(x)
    (``comparison.log_evidence``; labelled an estimate with its se, e.g. SMC's, unless it
    is exact or given) is a horizontal line: every true ELBO lies below it (the
    gap is KL(q || posterior)), but a noisy estimate, and its running mean, can stray
    above it (the legend says so when one does). The x axis is logarithmic, so a 30-step
    CAVI run and a 20,000-step ADVI run can be read together; the y range covers the last
    80 % of every engine's trace, so each engine stays in view.

    ``feature_names``, ``units`` and ``data_transform`` are checked like everywhere else
    (so one set of options can be passed to every figure) but the ELBO has no feature axis.

    Raises
    ------
    ValueError
        When no fit has an ELBO trace.
    """
    FeatureAxes.resolve(comparison.points.shape[1], feature_names, units, data_transform,
                        comparison)
    traces = {name: fit.elbo for name, fit in comparison.fits.items()
              if fit.elbo is not None and fit.elbo.size}
    if not traces:
        raise ValueError(f"comparison: expected at least one fit with an ELBO trace, got "
                         f"none among {', '.join(comparison.fits)}. Add a VI engine "
                         f"(e.g. 'cavi' or 'advi').")
    from matplotlib.lines import Line2D

    colors = engine_colors(list(comparison.fits))
    fig, axes = _new_figure((8.0, 4.5))
    ax = axes[0, 0]
    lows, highs, handles, above = [], [], [], False
    evidence = comparison.log_evidence
    for name, trace in traces.items():
        shown, smoothed = _running_mean(np.asarray(trace, dtype=float))
        steps = np.arange(1, shown.size + 1)
        ax.plot(steps, shown, color=colors[name], lw=1.3)
        label = f"{name} (running mean of noisy estimates)" if smoothed else name
        handles.append(Line2D([], [], color=colors[name], lw=1.3, label=label))
        final = comparison.fits[name].extras.get("elbo_final")
        if final is not None and np.isfinite(final):
            ax.plot([shown.size], [final], marker="o", ms=6, color=colors[name],
                    markeredgecolor="black", ls="")
            lows.append(final)
            highs.append(final)
        tail = shown[shown.size // 5:]
        tail = tail[np.isfinite(tail)]
        if tail.size:
            lows.append(np.percentile(tail, 2))
            highs.append(tail.max())
            above |= smoothed and evidence is not None and bool(tail.max() > evidence)
    handles.append(Line2D([], [], ls="", marker="o", color="0.5", markeredgecolor="black",
                          label="final ELBO of the returned q"))
    if evidence is not None:
        ax.axhline(evidence, color="black", ls="--", lw=1.2)
        handles.append(Line2D([], [], color="black", ls="--",
                              label=_evidence_label(comparison)))
        highs.append(evidence)
    if above:
        handles.append(Line2D([], [], ls="", label="a running mean above log p(x) is estimate\n"
                                                    "noise: the ELBO itself is below it"))
    if lows:
        low, high = min(lows), max(highs)
        pad = max(1.0, 0.05 * (high - low))
        ax.set_ylim(low - pad, high + pad)
    ax.set_xscale("log")
    ax.set_xlabel("iteration (log scale)")
    ax.set_ylabel("ELBO (nats, higher is better)")
    ax.set_title(_dataset_title(comparison, "ELBO traces"))
    _outside_legend(fig, handles, where="right upper", ncols=1)
    return fig


def _evidence_label(comparison: Comparison) -> str:
    """The log p(x) line's legend entry: exact, given, or an estimate with its se."""
    from ppl_mixtures.analysis.compare import _fmt_est

    evidence, source = comparison.log_evidence, comparison.log_evidence_source
    if source == "exact":
        return f"log p(x) = {evidence:.2f} (exact, enumeration)"
    if source == "given":
        return f"log p(x) = {evidence:.1f} (given)"
    se = comparison.log_evidence_se
    estimate = _fmt_est(evidence, se) if se is not None and np.isfinite(se) else (
        f"{evidence:.1f} (no se)")
    origin = f", {source}" if source else ""
    flags = getattr(comparison, "log_evidence_flags", ())
    flagged = f"; flags: {', '.join(flags)}" if flags else ""
    return f"log p(x) estimate {estimate}{origin}{flagged}"


# --------------------------------------------------------------------------- marginals


def plot_marginals(comparison: Comparison, *, parameters: Sequence[str] | None = None,
                   max_panels: int = 16, bins: int = 20,
                   feature_names: Sequence[str] | None = None,
                   units: str | Sequence[str] | None = None,
                   data_transform: tuple[Any, Any] | None = None) -> Figure:
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
        return plot_fit_marginals(comparison, parameters=parameters, max_panels=max_panels,
                                  bins=bins, feature_names=feature_names, units=units,
                                  data_transform=data_transform)
    features = FeatureAxes.resolve(comparison.points.shape[1], feature_names, units,
                                   data_transform, comparison)
    table = comparison.parameters
    ref = table[table["engine"] == comparison.reference].set_index("parameter")
    if parameters is None:
        parameters = [p for p in ref.index if ref.loc[p, "sd"] > 0]
    parameters = list(parameters)[:max_panels]
    if not parameters:
        raise ValueError("parameters: expected at least one parameter with posterior spread, "
                         "got none. The reference fit has no uncertainty to compare.")
    fig = _plot_marginals(dict(comparison.fits), parameters, features, bins,
                          fallback=lambda label: ref.loc[label, "mean"])
    fig.suptitle(_dataset_title(comparison, "Posterior marginals (components aligned to "
                                            f"{comparison.reference})"))
    return fig


def plot_fit_marginals(fit: MixtureFit, *, parameters: Sequence[str] | None = None,
                       max_panels: int = 16, bins: int = 20, title: str | None = None,
                       feature_names: Sequence[str] | None = None,
                       units: str | Sequence[str] | None = None,
                       data_transform: tuple[Any, Any] | None = None) -> Figure:
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
    flat = _labelled_draws(fit)
    if parameters is None:
        parameters = [label for label, x in flat.items() if np.ptp(x) > 0]
        if not parameters and _is_point_estimate(fit):
            parameters = [label for label in flat
                          if not (fit.spec.fixed_weights and label.startswith("weights["))]
    parameters = list(parameters)[:max_panels]
    unknown = [p for p in parameters if p not in flat]
    if unknown:
        raise ValueError(f"parameters: expected labels of this fit's parameters such as "
                         f"{list(flat)[:3]}, got {unknown}. Leave parameters out to draw "
                         f"every one that varies.")
    if not parameters:
        raise ValueError(f"parameters: expected at least one parameter with posterior spread, "
                         f"got none in the {fit.engine} fit ({fit.n_chains * fit.n_draws} "
                         f"constant draws). Name the parameters to draw them as lines.")
    fig = _plot_marginals({fit.engine: fit}, parameters, features, bins,
                          fallback=lambda label: float(flat[label].mean()))
    what = "Point estimates" if _is_point_estimate(fit) else "Posterior marginals"
    fig.suptitle(title or f"{what}: {fit.engine}")
    return fig


def _plot_marginals(fits: Mapping[str, MixtureFit], parameters: Sequence[str],
                    features: FeatureAxes, bins: int, fallback: Any) -> Figure:
    """One panel per parameter label, one outline per fit; ``fallback(label)`` places the
    axis (in the fit's units) when no fit has spread in that label. No suptitle."""
    from matplotlib.lines import Line2D

    colors = engine_colors(list(fits))
    ncols = min(3, len(parameters))
    nrows = -(-len(parameters) // ncols)
    fig, axes = _new_figure((3.3 * ncols, 2.6 * nrows + 0.9), nrows, ncols)
    flat = {name: _labelled_draws(fit) for name, fit in fits.items()}
    for ax, label in zip(axes.ravel(), parameters, strict=False):
        pname, d = _split_label(label)
        draws_of = {name: features.of_parameter(pname, d, draws[label])
                    for name, draws in flat.items() if label in draws}
        spread = [x for x in draws_of.values() if x.size > 1]
        values = (np.concatenate(spread) if spread
                  else features.of_parameter(pname, d, np.array([fallback(label)])))
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
    for ax in axes.ravel()[len(parameters):]:
        ax.set_visible(False)
    handles = [Line2D([], [], color=colors[name], ls=":" if _is_point_estimate(fit) else "-",
                      label=f"{name}{' (point estimate)' if _is_point_estimate(fit) else ''}")
               for name, fit in fits.items()]
    _outside_legend(fig, handles, ncols=min(len(handles), 5))
    return fig


def _label_point_estimates(ax: Any, draws_of: Mapping[str, np.ndarray],
                           limits: tuple[float, float]) -> None:
    """A panel of point-estimate lines only: x range around them, no density axis, values written."""
    ax.set_xlim(*limits)
    ax.set_yticks([])
    ax.set_ylabel("point estimate", fontsize="small")
    for i, x in enumerate(draws_of.values()):
        ax.text(x[0], 0.95 - 0.1 * i, f" {x[0]:.4g}", transform=ax.get_xaxis_transform(),
                ha="left", va="top", fontsize="small")


def _draw_marginal(ax: Any, x: np.ndarray, grid: np.ndarray, limits: tuple[float, float],
                   bins: int, color: Any) -> None:
    """One fit's draws ``x`` (n,) of one parameter: a KDE, a histogram (< 20 draws) or a line."""
    from scipy.stats import gaussian_kde

    if x.size <= 1 or np.ptp(x) == 0:
        ax.axvline(x[0], color=color, lw=1.5, ls=":")
    elif x.size < 20:  # too few draws for a density estimate
        ax.hist(x, bins=np.linspace(*limits, bins + 1), density=True, histtype="step",
                color=color, lw=1.4)
    else:
        ax.plot(grid, gaussian_kde(x)(grid), color=color, lw=1.4)


def _labelled_draws(fit: MixtureFit) -> dict[str, np.ndarray]:
    """``{"means[0,1]": draws of shape (n_chains * n_draws,)}`` for every parameter entry."""
    return {label: x.reshape(-1) for label, x in _labelled_chain_draws(fit).items()}


# --------------------------------------------------------------------------- forest
def _forest_groups(comparison: Comparison) -> list[tuple[str, int | None]]:
    """(parameter, feature) panels: means per feature, weights unless fixed, obs_sd per feature."""
    ref = comparison.reference_fit
    groups: list[tuple[str, int | None]] = [("means", d) for d in range(ref.n_features)]
    if not ref.spec.fixed_weights and np.ptp(ref.draws("weights")) > 0:
        groups.append(("weights", None))
    if "obs_sd" in ref.parameter_names():
        groups += [("obs_sd", d) for d in range(ref.n_features)]
    return groups


def _component_draws(fit: MixtureFit, name: str, d: int | None) -> np.ndarray:
    """Draws of one group, shape (n_chains * n_draws, n_components)."""
    draws = fit.draws(name)
    flat = draws.reshape(-1, *draws.shape[2:])
    return flat if d is None else flat[:, :, d]


def plot_forest(comparison: Comparison, *, feature_names: Sequence[str] | None = None,
                units: str | Sequence[str] | None = None,
                data_transform: tuple[Any, Any] | None = None,
                n_draws: int | None = None) -> Figure:
    """Forest plot: every engine's posterior mean, 50 % and 89 % central intervals.

    One panel per parameter group and feature (means of feature d, weights, obs_sd of
    feature d), each with its own x axis, so a weight interval of width 0.05 is readable
    beside means spread over -10..5. One row per component, engines stacked within it.
    Fixed weights are not parameters and are not drawn; a point estimate is a dot
    without interval. ``n_draws``: use at most this many draws per engine (evenly spaced
    over the pooled chains); default all.
    """
    if n_draws is not None and (isinstance(n_draws, bool) or not isinstance(n_draws, int)
                                or n_draws < 1):
        raise ValueError(f"n_draws: expected a positive int or None, got {n_draws!r}. "
                         f"Leave it out to use every draw.")
    from matplotlib.lines import Line2D

    features = FeatureAxes.resolve(comparison.points.shape[1], feature_names, units,
                                   data_transform, comparison)
    names = list(comparison.fits)
    colors = engine_colors(names)
    groups = _forest_groups(comparison)
    n_components = comparison.reference_fit.n_components
    ncols = min(3, len(groups))
    nrows = -(-len(groups) // ncols)
    row_height = 0.25 + 0.16 * len(names) * n_components
    fig, axes = _new_figure((max(7.0, 3.6 * ncols + 0.3), row_height * nrows + 1.6), nrows, ncols)
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
            ax.plot(x.mean(axis=0), y, "o", ms=4, color=colors[name], markeredgecolor="black",
                    markeredgewidth=0.5)
        ax.set_yticks(range(n_components), [f"component {k}" for k in range(n_components)],
                      fontsize="small")
        ax.set_ylim(n_components - 0.5, -0.5)
        ax.set_title(pname if d is None else f"{pname}: {features.names[d]}", fontsize="medium")
        ax.set_xlabel(features.parameter_label(pname, d), fontsize="small")
    for ax in axes.ravel()[len(groups):]:
        ax.set_visible(False)
    handles = [Line2D([], [], color=colors[n], lw=3.5, marker="o", markeredgecolor="black",
                      label=n) for n in names]
    handles += [Line2D([], [], color="0.3", lw=3.5, label=f"{INTERVAL_PROBS[0]:.0%} interval"),
                Line2D([], [], color="0.3", lw=1.2, label=f"{INTERVAL_PROBS[1]:.0%} interval"),
                Line2D([], [], ls="", marker="o", color="0.3", label="posterior mean")]
    _outside_legend(fig, handles, ncols=min(len(handles), 4))
    fig.suptitle(_dataset_title(comparison, "Forest plot: posterior mean, 50 % and 89 % "
                                            "central intervals per engine"), fontsize="medium")
    return fig


# --------------------------------------------------------------------------- trace
def plot_trace(fit: MixtureFit, *, title: str | None = None, max_parameters: int = 12,
               feature_names: Sequence[str] | None = None,
               units: str | Sequence[str] | None = None,
               data_transform: tuple[Any, Any] | None = None) -> Figure:
    """Trace plot of one fit: per parameter entry, each chain's density (left) and trace (right).

    Chains have one colour each (the key is below the panels). Fixed parameters (constant
    draws) are left out; at most ``max_parameters`` entries are drawn (the title says how
    many of how many).
    """
    from matplotlib.lines import Line2D
    from scipy.stats import gaussian_kde

    features = FeatureAxes.resolve(fit.n_features, feature_names, units, data_transform)
    draws = {k: v for k, v in _labelled_chain_draws(fit).items() if np.ptp(v) > 0}
    if not draws:
        raise ValueError(f"fit: expected draws that vary, got a fit of {fit.engine!r} with "
                         f"{fit.n_chains * fit.n_draws} constant draw(s). A trace plot needs "
                         f"a sampler's or VI engine's draws.")
    labels = list(draws)[:max_parameters]
    fig, axes = _new_figure((9.0, 1.25 * len(labels) + 1.6), len(labels), 2,
                            width_ratios=[1.0, 2.2])
    chain_colors = engine_colors([f"chain {c}" for c in range(fit.n_chains)])
    for row, label in zip(axes, labels, strict=True):
        pname, d = _split_label(label)
        x = features.of_parameter(pname, d, draws[label])  # (n_chains, n_draws)
        grid = np.linspace(x.min(), x.max(), 150)
        for c in range(fit.n_chains):
            color = chain_colors[f"chain {c}"]
            if np.ptp(x[c]) > 0 and x.shape[1] > 2:
                row[0].plot(grid, gaussian_kde(x[c])(grid), color=color, lw=1)
            row[1].plot(np.arange(x.shape[1]), x[c], color=color, lw=0.6, alpha=0.8)
        row[0].set_ylabel(label, fontsize="small")
        row[0].set_yticks([])
        row[1].tick_params(labelsize="small")
        row[0].tick_params(labelsize="small")
    axes[-1, 0].set_xlabel("value (the parameter's units)", fontsize="small")
    axes[-1, 1].set_xlabel("draw", fontsize="small")
    axes[0, 0].set_title("density per chain", fontsize="small")
    axes[0, 1].set_title("trace per chain", fontsize="small")
    handles = [Line2D([], [], color=chain_colors[f"chain {c}"], lw=1.5, label=f"chain {c}")
               for c in range(fit.n_chains)]
    _outside_legend(fig, handles, ncols=min(len(handles), 8))
    shown = "" if len(labels) == len(draws) else f"; first {len(labels)} of {len(draws)} parameters"
    chains = f"{fit.n_chains} chain{'' if fit.n_chains == 1 else 's'}"
    fig.suptitle(title or f"Trace plot: {fit.engine} ({chains} x {fit.n_draws} draws{shown})",
                 fontsize="medium")
    return fig


def _labelled_chain_draws(fit: MixtureFit) -> dict[str, np.ndarray]:
    """``{"means[0,1]": draws of shape (n_chains, n_draws)}`` for every parameter entry."""
    out = {}
    for name in fit.parameter_names():
        draws = fit.draws(name)
        flat = draws.reshape(draws.shape[0], draws.shape[1], -1)
        for j, idx in enumerate(np.ndindex(*draws.shape[2:])):
            out[f"{name}[{','.join(str(i) for i in idx)}]"] = flat[:, :, j]
    return out


# --------------------------------------------------------------------------- responsibilities
def _responsibilities(fit: MixtureFit, points: np.ndarray) -> np.ndarray:
    """p(z_i = k | x_i) averaged over the fit's draws, shape (n_points, n_components)."""
    from ppl_mixtures.analysis.diagnostics import responsibilities

    return np.asarray(responsibilities(fit, points))


def plot_responsibilities(fit: MixtureFit, *, max_points: int = 5000,
                          title: str | None = None,
                          feature_names: Sequence[str] | None = None,
                          units: str | Sequence[str] | None = None,
                          data_transform: tuple[Any, Any] | None = None) -> Figure:
    """The data coloured by each point's responsibilities under one fit.

    A point's colour mixes the component colours in proportion to p(z_i = k | x): pure
    colours are confident assignments, blends are points the model is unsure about
    (equal aspect). For 1-D data, each component's responsibility is plotted against x.
    """
    from matplotlib.patches import Patch

    features = FeatureAxes.resolve(fit.n_features, feature_names, units, data_transform)
    points = _thin(fit.points, max_points)  # computed only where drawn
    resp = _responsibilities(fit, points)
    shown = features.values(points)
    colors = _component_colors(fit.n_components)
    fig, axes = _new_figure((6.5, 5.6) if points.shape[1] > 1 else (7.5, 4.0))
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
        ax.scatter(means[:, 0], means[:, 1], s=90, marker="X", c=colors, edgecolors="black",
                   zorder=3)
        handles.append(Patch(facecolor="white", edgecolor="black", label="X: component mean"))
        ax.set_xlabel(features.label(0))
        ax.set_ylabel(features.label(1))
        ax.set_aspect(features.scale[0] / features.scale[1], adjustable="datalim")
        where = "lower center"
    _outside_legend(fig, handles, where=where, ncols=1 if where == "right upper" else 3)
    default = (f"Responsibilities under {fit.engine}" if points.shape[1] == 1
               else f"Responsibilities under {fit.engine} (colour mix = uncertainty)")
    ax.set_title(title or default, fontsize="medium")
    return fig
