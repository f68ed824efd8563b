"""Who belongs with whom: :func:`responsibilities` (p(z_i = k | x), in the fit's labels) and
:func:`coclustering` (P(z_i = z_j | x), label-invariant, comparable with
:attr:`ppl_mixtures.model.evidence.ExactPosterior.coclustering`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ppl_mixtures.analysis.draws import (
    ParameterDraws,
    check_fit,
    check_fit_points,
    chunks,
    parameter_draws,
)
from ppl_mixtures.results import MixtureFit

__all__ = ["MAX_COCLUSTERING_POINTS", "coclustering", "responsibilities"]


def responsibilities(
    fit: MixtureFit, points: Any = None, *, return_sd: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Posterior mean of the assignment probabilities p(z_i = k | x_i, theta).

    For every draw theta_s = (weights, means, covariances) of the fit,

        r_ik(theta_s) = w_k N(x_i | mu_k, Sigma_k) / sum_j w_j N(x_i | mu_j, Sigma_j)       (1)

    (Sigma_k = diag(obs_sd_k^2) for diag and spherical specs, ``obs_cov`` for full and tied,
    learned or known) is computed in log space (``density.log_responsibilities``, or
    ``density_full.full_log_responsibilities``), exponentiated only after
    normalization, and averaged over the draws: E[r_ik | x] = (1/S) sum_s r_ik(theta_s),
    which is p(z_i = k | x) under the posterior. The components keep the fit's labels:
    relabel the fit first (``ppl_mixtures.relabel``) if its chains use different labels,
    otherwise the average mixes components.

    Parameters
    ----------
    fit : MixtureFit
        Any engine's fit (a point estimate is one draw).
    points : array-like of shape (n_samples, n_features), optional
        Where to evaluate; the fit's own data when None.
    return_sd : bool
        Also return the sd of (1) over the draws (0 for a single draw).

    Returns
    -------
    resp : ndarray of shape (n_samples, n_components)
        Rows sum to 1.
    resp_sd : ndarray of shape (n_samples, n_components)
        Only when ``return_sd=True``.

    Examples
    --------
    >>> resp = responsibilities(relabel(nuts_fit))  # doctest: +SKIP
    >>> hard = resp.argmax(1)  # hard assignments, (n_samples,)  # doctest: +SKIP
    """
    fit = check_fit(fit)
    data = check_fit_points(fit, points)
    draws = parameter_draws(fit)
    n_total, n_components = draws.n_total, draws.n_components
    total = np.zeros((data.shape[0], n_components))
    mean = np.zeros_like(total)
    m2 = np.zeros_like(total)
    count = 0
    for chunk in chunks(n_total, data.shape[0] * n_components):
        resp = np.exp(draws.log_responsibilities(data, chunk))  # (b, N, K)
        total += resp.sum(0)
        if return_sd:  # Chan et al.'s pairwise update of mean and sum of squares
            n_b = resp.shape[0]
            mean_b = resp.mean(0)
            m2_b = ((resp - mean_b) ** 2).sum(0)
            delta = mean_b - mean
            new_count = count + n_b
            mean = mean + delta * (n_b / new_count)
            m2 = m2 + m2_b + delta**2 * (count * n_b / new_count)
            count = new_count
    resp_mean = total / n_total
    if not return_sd:
        return resp_mean
    return resp_mean, np.sqrt(m2 / n_total)


#: Largest number of observations :func:`coclustering` accepts (an (N, N) float matrix).
MAX_COCLUSTERING_POINTS = 5_000


def _coclustering_sum(data: np.ndarray, draws: ParameterDraws) -> np.ndarray:
    """sum over draws of R_s R_s^T, R_s the (N, K) responsibilities of draw s: (N, N)."""
    n_samples, n_components = data.shape[0], draws.n_components
    total = np.zeros((n_samples, n_samples))
    for chunk in chunks(draws.n_total, n_samples * max(n_components, n_samples)):
        resp = np.exp(draws.log_responsibilities(data, chunk))  # (b, N, K)
        flat = resp.transpose(1, 0, 2).reshape(n_samples, -1)  # (N, b K)
        total += flat @ flat.T
    return total


def coclustering(fit: MixtureFit, points: Any = None) -> np.ndarray:
    """Posterior probability that two observations share a component, P(z_i = z_j | x).

    Given a draw theta_s the assignments are independent, so for i != j

        P(z_i = z_j | x, theta_s) = sum_k r_ik(theta_s) r_jk(theta_s)                    (1)

    with r the responsibilities of :func:`responsibilities`; the posterior probability is the
    mean of (1) over the draws, and the diagonal is 1. The sum over k makes it
    label-invariant: no relabeling is needed, and chains in different label modes agree.
    Compare it with :attr:`ppl_mixtures.model.evidence.ExactPosterior.coclustering` on tiny data.

    Parameters
    ----------
    fit : MixtureFit
        Any engine's fit (a point estimate gives its plug-in value).
    points : array-like of shape (n_samples, n_features), optional
        The fit's own data when None. At most :data:`MAX_COCLUSTERING_POINTS` rows.

    Returns
    -------
    ndarray of shape (n_samples, n_samples)
        Symmetric, entries in [0, 1], ones on the diagonal.
    """
    fit = check_fit(fit)
    data = check_fit_points(fit, points)
    if data.shape[0] > MAX_COCLUSTERING_POINTS:
        raise ValueError(
            f"points: expected at most {MAX_COCLUSTERING_POINTS} observations "
            f"(the result is an N x N matrix), got {data.shape[0]}. Pass a "
            f"subset, e.g. points[:{MAX_COCLUSTERING_POINTS}]."
        )
    draws = parameter_draws(fit)
    out = _coclustering_sum(data, draws) / draws.n_total
    np.fill_diagonal(out, 1.0)
    return np.clip(0.5 * (out + out.T), 0.0, 1.0)
