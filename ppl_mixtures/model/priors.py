"""The priors' log-densities, written once: Normal means, Gamma precisions, Dirichlet weights,
Beta sticks of the truncated Dirichlet process.

Each takes expectations under a factor of q, so CAVI's ELBO uses them as they are; a point
mass (variance 0, E[log tau] = log tau, E[log w] = log w) gives the plain log-density, which
is what EM's MAP objective and the log joint of the diagnostics use. All are elementwise or
batched over leading axes.
"""

from __future__ import annotations

import numpy as np
from scipy.special import digamma, gammaln

__all__ = [
    "beta_log_prior",
    "dirichlet_log_prior",
    "gamma_log_prior",
    "multigammaln_array",
    "normal_log_prior",
    "stick_log_prior",
    "wishart_entropy",
    "wishart_log_normalizer",
    "wishart_log_prior",
    "wishart_mean_log_det",
]


def normal_log_prior(
    loc: np.ndarray, var: np.ndarray | float, prior_mean: np.ndarray, prior_var: np.ndarray
) -> np.ndarray:
    """E[log N(mu | m0, s0^2)] for mu ~ N(loc, var), elementwise; var = 0: log N(loc | m0, s0^2).

    = -1/2 log(2 pi s0^2) - ((loc - m0)^2 + var) / (2 s0^2)      (Bishop 2006, eq. 10.74 terms)
    """
    return -0.5 * np.log(2.0 * np.pi * prior_var) - ((loc - prior_mean) ** 2 + var) / (
        2 * prior_var
    )


def gamma_log_prior(
    mean_prec: np.ndarray,
    mean_log_prec: np.ndarray,
    shape: np.ndarray | float,
    rate: np.ndarray | float,
) -> np.ndarray:
    """E[log Gamma(tau | a0, b0)] given E[tau] and E[log tau], elementwise (point: the density).

    = a0 log b0 - log Gamma(a0) + (a0 - 1) E[log tau] - b0 E[tau]     (Bishop 2006, eq. B.26)
    """
    return shape * np.log(rate) - gammaln(shape) + (shape - 1.0) * mean_log_prec - rate * mean_prec


def dirichlet_log_prior(mean_log_weights: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """E[log Dir(w | alpha)] given E[log w] of shape (..., K) (Bishop 2006, eqs. 10.73, B.16).

    = log Gamma(sum alpha) - sum log Gamma(alpha) + sum (alpha - 1) E[log w], summed over the
    last axis (a float for one w); a term with alpha_k = 1 is 0 even where log w_k = -inf
    (EM's emptied components). The density is w.r.t. Lebesgue measure on w_1..w_{K-1}.
    """
    mean_log_weights = np.asarray(mean_log_weights, dtype=float)
    shape = np.broadcast_shapes(np.shape(alpha), mean_log_weights.shape)
    weighted = np.multiply(alpha - 1.0, mean_log_weights, out=np.zeros(shape), where=alpha != 1.0)
    return gammaln(alpha.sum()) - gammaln(alpha).sum() + weighted.sum(axis=-1)


def beta_log_prior(
    mean_log_v: np.ndarray, mean_log_1mv: np.ndarray, a: np.ndarray | float, b: np.ndarray | float
) -> np.ndarray:
    """E[log Beta(v | a, b)] given E[log v] and E[log(1 - v)], elementwise (point: the density).

    = log Gamma(a + b) - log Gamma(a) - log Gamma(b) + (a - 1) E[log v] + (b - 1) E[log(1 - v)]

    For q(v) = Beta(a, b) itself (E[log v] = psi(a) - psi(a + b), E[log(1 - v)] =
    psi(b) - psi(a + b)) it is minus the Beta's entropy. A term with a = 1 (or b = 1) is 0
    even where log v = -inf, as in :func:`dirichlet_log_prior`.
    """
    mean_log_v, mean_log_1mv = np.asarray(mean_log_v, float), np.asarray(mean_log_1mv, float)
    a, b = np.asarray(a, float), np.asarray(b, float)
    shape = np.broadcast_shapes(a.shape, b.shape, mean_log_v.shape, mean_log_1mv.shape)
    term_v = np.multiply(a - 1.0, mean_log_v, out=np.zeros(shape), where=a != 1.0)
    term_1mv = np.multiply(b - 1.0, mean_log_1mv, out=np.zeros(shape), where=b != 1.0)
    return gammaln(a + b) - gammaln(a) - gammaln(b) + term_v + term_1mv


def stick_log_prior(mean_log_1mv: np.ndarray, mean_alpha: float, mean_log_alpha: float) -> float:
    """E[log p(v | alpha)] of the truncated DP's sticks v_k ~ Beta(1, alpha), k < T, summed.

    log Beta(v | 1, alpha) = log alpha + (alpha - 1) log(1 - v), so under independent q(v)
    and q(alpha) (Blei & Jordan 2006, §3)::

        sum_{k<T} E[log alpha] + (E[alpha] - 1) E[log(1 - v_k)]

    With alpha fixed, pass (alpha, log alpha): it is :func:`beta_log_prior` with a = 1.
    """
    mean_log_1mv = np.asarray(mean_log_1mv, dtype=float)
    return float(mean_log_1mv.size * mean_log_alpha + (mean_alpha - 1.0) * mean_log_1mv.sum())


def wishart_mean_log_det(dof: np.ndarray | float, scale: np.ndarray) -> np.ndarray:
    """E[log |Lambda|] for Lambda ~ Wishart(dof, scale), scale of shape (..., D, D).

    = sum_{i=1..D} psi((dof + 1 - i) / 2) + D log 2 + log |scale|      (Bishop 2006, eq. B.81)
    """
    n_features = np.shape(scale)[-1]
    dof = np.asarray(dof, dtype=float)
    halves = (dof[..., None] + 1.0 - np.arange(1, n_features + 1)) / 2.0
    return digamma(halves).sum(axis=-1) + n_features * np.log(2.0) + np.linalg.slogdet(scale)[1]


def wishart_log_normalizer(dof: np.ndarray | float, scale: np.ndarray) -> np.ndarray:
    """log B(scale, dof) of the Wishart density (Bishop 2006, eq. B.79), shape (...).

    = -dof/2 log |scale| - dof D/2 log 2 - log Gamma_D(dof / 2)
    """
    n_features = np.shape(scale)[-1]
    dof = np.asarray(dof, dtype=float)
    return (
        -0.5 * dof * np.linalg.slogdet(scale)[1]
        - 0.5 * dof * n_features * np.log(2.0)
        - multigammaln_array(0.5 * dof, n_features)
    )


def multigammaln_array(a: np.ndarray, n_features: int) -> np.ndarray:
    """log Gamma_D(a) elementwise (scipy's multigammaln takes a scalar only)."""
    a = np.asarray(a, dtype=float)
    steps = (1.0 - np.arange(1, n_features + 1)) / 2.0
    return 0.25 * n_features * (n_features - 1) * np.log(np.pi) + gammaln(a[..., None] + steps).sum(
        axis=-1
    )


def wishart_log_prior(
    mean_prec: np.ndarray, mean_log_det: np.ndarray | float, dof: float, scale: np.ndarray
) -> np.ndarray:
    """E[log Wishart(Lambda | dof, scale)] given E[Lambda] (..., D, D) and E[log |Lambda|] (...).

    = log B(scale, dof) + (dof - D - 1)/2 E[log |Lambda|] - 1/2 tr(scale^{-1} E[Lambda])
    (Bishop 2006, eq. B.78; the terms of eq. 10.74). A point mass (E[Lambda] = Lambda,
    E[log |Lambda|] = log |Lambda|) gives the plain log-density, which is scipy's
    ``wishart.logpdf(Lambda, dof, scale)``.
    """
    n_features = np.shape(scale)[-1]
    trace = np.einsum("ij,...ji->...", np.linalg.inv(scale), mean_prec)
    return (
        wishart_log_normalizer(dof, scale)
        + 0.5 * (dof - n_features - 1.0) * np.asarray(mean_log_det)
        - 0.5 * trace
    )


def wishart_entropy(dof: np.ndarray | float, scale: np.ndarray) -> np.ndarray:
    """H[Wishart(dof, scale)], batched over leading axes (Bishop 2006, eq. B.82).

    = -log B(scale, dof) - (dof - D - 1)/2 E[log |Lambda|] + dof D / 2
    """
    n_features = np.shape(scale)[-1]
    dof = np.asarray(dof, dtype=float)
    return (
        -wishart_log_normalizer(dof, scale)
        - 0.5 * (dof - n_features - 1.0) * wishart_mean_log_det(dof, scale)
        + 0.5 * dof * n_features
    )
