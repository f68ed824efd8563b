"""What every figure shares: the figure and legend helpers, colours, and feature axes.

:class:`FeatureAxes` turns ``feature_names``, ``units`` and ``data_transform`` into axis
labels and data units (see :mod:`ppl_mixtures.present.plots`). It and :func:`engine_colors`
are re-exported by the package; the other helpers are the figure modules' own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ppl_mixtures.analysis.features import check_feature_names, check_transform, check_units
from ppl_mixtures.analysis.summaries import table_entries, table_parameters
from ppl_mixtures.results import MixtureFit

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ppl_mixtures.analysis.compare import Comparison

__all__ = [
    "DP_DRAWN_FRACTION",
    "FeatureAxes",
    "component_colors",
    "component_cov",
    "component_sd",
    "dataset_title",
    "drawn_components",
    "engine_colors",
    "is_point_estimate",
    "labelled_chain_draws",
    "labelled_draws",
    "new_figure",
    "outside_legend",
    "thin",
]


def new_figure(
    figsize: tuple[float, float], nrows: int = 1, ncols: int = 1, **kwargs: Any
) -> tuple[Figure, np.ndarray]:
    """A constrained-layout Figure (no pyplot) and its axes as an (nrows, ncols) array."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kwargs)
    return fig, axes


def engine_colors(names: Sequence[str]) -> dict[str, Any]:
    """One colour per engine (tab10, in the given order)."""
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return {name: cmap(i % 10) for i, name in enumerate(names)}


def component_colors(n_components: int) -> np.ndarray:
    """RGB colours of the components, shape (n_components, 3)."""
    from matplotlib import colormaps

    cmap = colormaps["Set1" if n_components <= 9 else "tab20"]
    return np.array([cmap(k % cmap.N)[:3] for k in range(n_components)])


def thin(points: np.ndarray, max_points: int, seed: int = 0) -> np.ndarray:
    """At most ``max_points`` rows (a fixed random subset), so 1e5 points plot fast."""
    if points.shape[0] <= max_points:
        return points
    idx = np.random.default_rng(seed).choice(points.shape[0], max_points, replace=False)
    return points[np.sort(idx)]


def component_sd(fit: MixtureFit) -> np.ndarray:
    """Posterior-mean obs_sd of each component, shape (n_components, n_features) (for a
    known full covariance: the square roots of its diagonal)."""
    if "obs_sd" in fit.parameter_names():
        return fit.posterior_mean("obs_sd")
    if fit.spec.covariance == "full":
        return np.sqrt(np.diagonal(fit.spec.known_obs_cov(fit.n_features), axis1=1, axis2=2))
    return fit.spec.known_obs_sd(fit.n_features)


def component_cov(fit: MixtureFit) -> np.ndarray | None:
    """The full covariance of each component's density, shape (n_components, D, D): the
    posterior mean of ``obs_cov`` when the fit learned one (full or tied), the known
    ``obs_cov`` of a full spec; None for diagonal and spherical fits (``component_sd``)."""
    if "obs_cov" in fit.idata["posterior"].data_vars:
        return fit.posterior_mean("obs_cov")
    if fit.spec.covariance == "full" and not fit.spec.learned_covariance:
        return fit.spec.known_obs_cov(fit.n_features)
    return None


def dataset_title(comparison: Comparison, what: str) -> str:
    return f"{what}: {comparison.name}" if comparison.name else what


def is_point_estimate(fit: MixtureFit) -> bool:
    return fit.n_chains * fit.n_draws <= 1


def outside_legend(
    fig: Figure, handles: list[Any], *, where: str = "lower center", ncols: int | None = None
) -> Any:
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
    def resolve(
        cls,
        n_features: int,
        feature_names: Sequence[str] | None = None,
        units: str | Sequence[str] | None = None,
        data_transform: tuple[Any, Any] | None = None,
        source: Any = None,
    ) -> FeatureAxes:
        """Check the arguments (falling back to attributes of ``source``) and build one.

        The checks are :mod:`ppl_mixtures.analysis.features`' (a comparison checks the same
        arguments with the same messages).
        """
        feature_names = (
            feature_names if feature_names is not None else getattr(source, "feature_names", None)
        )
        units = units if units is not None else getattr(source, "units", None)
        data_transform = (
            data_transform
            if data_transform is not None
            else getattr(source, "data_transform", None)
        )
        names = check_feature_names(n_features, feature_names)
        unit_list = check_units(n_features, units)
        center, scale = check_transform(n_features, data_transform)
        return cls(names, unit_list, center, scale)

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
        if name == "obs_corr":
            return "correlation (unitless)"
        if name == "dp_alpha":
            return "DP concentration alpha (unitless)"
        if name == "weights" or d is None:
            return "weight (probability)"
        return self.label(d, "mean" if name == "means" else "sd")


#: A DP fit's component is drawn when N w_k >= 1 (it expects one of the N points) in at
#: least this fraction of the draws, i.e. when its posterior median weight is >= 1/N.
DP_DRAWN_FRACTION = 0.5


def drawn_components(fit: MixtureFit, n_samples: int) -> np.ndarray:
    """Which components a data figure draws, (K,) bool: all, except a truncated DP fit's
    components that expect less than one of the ``n_samples`` points in most draws
    (:data:`DP_DRAWN_FRACTION`): their posterior is their prior, and their mean (a prior
    draw) and its ellipse would say nothing about the data."""
    if not fit.spec.is_dp:
        return np.ones(fit.n_components, dtype=bool)
    weights = fit.draws("weights").reshape(-1, fit.n_components)
    return (n_samples * weights >= 1.0).mean(axis=0) >= DP_DRAWN_FRACTION


def labelled_chain_draws(fit: MixtureFit) -> dict[str, np.ndarray]:
    """``{"means[0,1]": draws of shape (n_chains, n_draws)}`` for every entry of the
    comparison tables (with a learned full covariance also ``obs_corr[k,i,j]``, i < j)."""
    out = {}
    for name in table_parameters(fit):
        draws = fit.draws(name)
        flat = draws.reshape(draws.shape[0], draws.shape[1], -1)
        labels, entries = table_entries(name, draws.shape[2:])
        for label, j in zip(labels, entries, strict=True):
            out[label] = flat[:, :, j]
    return out


def labelled_draws(fit: MixtureFit) -> dict[str, np.ndarray]:
    """``{"means[0,1]": draws of shape (n_chains * n_draws,)}`` for every parameter entry."""
    return {label: x.reshape(-1) for label, x in labelled_chain_draws(fit).items()}
