"""The data coloured by each point's responsibilities under one fit: :func:`plot_responsibilities`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ppl_mixtures.analysis.diagnostics import responsibilities
from ppl_mixtures.present.plots.common import (
    FeatureAxes,
    component_colors,
    drawn_components,
    new_figure,
    outside_legend,
    thin,
)
from ppl_mixtures.results import MixtureFit

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_responsibilities"]


#: Draws per vectorized block of :func:`_responsibilities_any_covariance`.
_DRAW_CHUNK = 64


def _responsibilities(fit: MixtureFit, points: np.ndarray) -> np.ndarray:
    """p(z_i = k | x_i) averaged over the fit's draws, shape (n_points, n_components)."""
    if fit.spec.covariance == "diag":
        return np.asarray(responsibilities(fit, points))
    return _responsibilities_any_covariance(fit, points)


def _density_cov_draws(fit: MixtureFit) -> np.ndarray:
    """Each draw's component covariances, (n_draws_total, K, D, D), or (1, K, D, D) when
    they are known: learned ``obs_cov`` (full, tied), the known ``obs_cov``, or
    diag(obs_sd^2) (spherical)."""
    n_components, n_features = fit.n_components, fit.n_features
    post = fit.idata["posterior"]
    if "obs_cov" in post.data_vars:
        return fit.draws("obs_cov").reshape(-1, n_components, n_features, n_features)
    if fit.spec.covariance == "full" and not fit.spec.learned_covariance:
        return fit.spec.known_obs_cov(n_features)[None]
    sd = fit.draws("obs_sd").reshape(-1, n_components, n_features)
    return sd[..., :, None] * np.eye(n_features) * sd[..., None, :]


def _responsibilities_any_covariance(fit: MixtureFit, points: np.ndarray) -> np.ndarray:
    """p(z_i = k | x_i, theta_s) averaged over the draws theta_s, for full, tied and
    spherical covariances (``analysis.diagnostics.responsibilities`` serves diag fits).

    Per draw, log w_k + log N(x_i | mu_k, Sigma_k) with Sigma_k = L L^T: the Mahalanobis
    term from the triangular solve L^-1 (x - mu), the log-determinant from diag(L);
    normalized over k in log space. Shape (n_points, n_components).
    """
    from scipy.special import logsumexp

    n_components, n_features = fit.n_components, fit.n_features
    weights = fit.draws("weights").reshape(-1, n_components)
    means = fit.draws("means").reshape(-1, n_components, n_features)
    chol = np.linalg.cholesky(_density_cov_draws(fit))  # (S or 1, K, D, D)
    log_det = np.log(np.diagonal(chol, axis1=-2, axis2=-1)).sum(-1)  # (S or 1, K)
    total = np.zeros((points.shape[0], n_components))
    for start in range(0, weights.shape[0], _DRAW_CHUNK):
        block = slice(start, start + _DRAW_CHUNK)
        chol_b = chol if chol.shape[0] == 1 else chol[block]
        log_det_b = log_det if log_det.shape[0] == 1 else log_det[block]
        diff = points[None, :, None, :] - means[block][:, None]  # (s, N, K, D)
        white = np.linalg.solve(chol_b[:, None], diff[..., None])[..., 0]
        log_norm = -0.5 * (n_features * np.log(2 * np.pi) + (white**2).sum(-1))
        log_rho = np.log(weights[block])[:, None, :] + log_norm - log_det_b[:, None, :]
        total += np.exp(log_rho - logsumexp(log_rho, axis=-1, keepdims=True)).sum(0)
    return total / weights.shape[0]


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
    A truncated DP fit's unoccupied components (``common.drawn_components``) get no
    marker and no legend entry of their own.
    """
    from matplotlib.patches import Patch

    features = FeatureAxes.resolve(fit.n_features, feature_names, units, data_transform)
    points = thin(fit.points, max_points)  # computed only where drawn
    resp = _responsibilities(fit, points)
    shown = features.values(points)
    colors = component_colors(fit.n_components)
    fig, axes = new_figure((6.5, 5.6) if points.shape[1] > 1 else (7.5, 4.0))
    ax = axes[0, 0]
    drawn = drawn_components(fit, fit.points.shape[0])
    handles = [Patch(color=colors[k], label=f"component {k}") for k in np.flatnonzero(drawn)]
    if not drawn.all():  # a truncated DP's unoccupied components
        n_hidden = int((~drawn).sum())
        plural = "s" if n_hidden > 1 else ""
        handles.append(
            Patch(
                facecolor="white",
                edgecolor="0.6",
                label=f"{n_hidden} unoccupied DP component{plural} not shown",
            )
        )
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
        means = features.values(fit.posterior_mean("means"))[drawn]
        ax.scatter(
            means[:, 0],
            means[:, 1],
            s=90,
            marker="X",
            c=colors[drawn],
            edgecolors="black",
            zorder=3,
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
