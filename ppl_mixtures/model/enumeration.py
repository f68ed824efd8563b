"""Every assignment of N points to K components, and its collapsed joint log p(x, z).

The pieces :mod:`ppl_mixtures.model.evidence` sums over all K^N assignments: given z, each
component's mean integrates out against its Normal prior (:func:`log_marginal_normal`),
the weights against their Dirichlet (:func:`log_joint_from_stats`, eq. (1) there), and a
new point's predictive follows in closed form (:func:`log_predictive_given_z`). The
assignments come in blocks of :data:`CHUNK` (:func:`assignment_blocks`) so memory stays at
a few MB whatever K^N.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from scipy.special import gammaln, logsumexp

from ppl_mixtures.model.density import LOG_2PI
from ppl_mixtures.model.spec import MixtureSpec

__all__ = [
    "CHUNK",
    "assignment_blocks",
    "block_stats",
    "log_joint_block",
    "log_joint_from_stats",
    "log_marginal_normal",
    "log_predictive_given_z",
    "one_hot",
]

#: Assignments per vectorized block (bounds memory to a few MB).
CHUNK = 65_536


def log_marginal_normal(
    n: np.ndarray,
    s1: np.ndarray,
    s2: np.ndarray,
    prior_mean: np.ndarray | float,
    prior_var: np.ndarray | float,
    obs_var: np.ndarray | float,
) -> np.ndarray:
    """log p(y_1..y_n) for y_j ~ N(mu, obs_var), mu ~ N(prior_mean, prior_var), mu integrated.

    Parameters
    ----------
    n, s1, s2 : ndarray of shape (...,)
        Count, sum and sum of squares of the y_j (any broadcastable shape).
    prior_mean, prior_var, obs_var : float or ndarray broadcastable to ``n``

    Returns
    -------
    ndarray of shape (...,)

    Notes
    -----
    With c_j = y_j - prior_mean and posterior precision lam = 1/prior_var + n/obs_var,
    completing the square in mu (the posterior of mu is Bishop 2006, eqs. 2.141-2.142)
    gives::

        log p = -n/2 log(2 pi obs_var) - 1/2 log(1 + n prior_var/obs_var)
                - sum c_j^2 / (2 obs_var) + prior_var (sum c_j)^2 / (2 obs_var (obs_var + n prior_var))

    An empty set (n = 0) has log p = 0.
    """
    sum_c = s1 - n * prior_mean
    sum_c2 = s2 - 2.0 * prior_mean * s1 + n * prior_mean**2
    return (
        -0.5 * n * (LOG_2PI + np.log(obs_var))
        - 0.5 * np.log1p(n * prior_var / obs_var)
        - 0.5 * sum_c2 / obs_var
        + 0.5 * prior_var * sum_c**2 / (obs_var * (obs_var + n * prior_var))
    )


def _assignments(start: int, stop: int, n_samples: int, n_components: int) -> np.ndarray:
    """Assignments number start..stop-1 written in base K, shape (stop - start, n_samples)."""
    codes = np.arange(start, stop, dtype=np.int64)
    powers = n_components ** np.arange(n_samples - 1, -1, -1, dtype=np.int64)
    return (codes[:, None] // powers[None, :]) % n_components


def one_hot(z: np.ndarray, n_components: int) -> np.ndarray:
    """(A, N) labels -> (A, N, K) float indicators."""
    return (z[:, :, None] == np.arange(n_components)).astype(np.float64)


def block_stats(
    one_hot: np.ndarray, points: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """counts (A, K), sums s1 (A, K, D) and sums of squares s2 (A, K, D) per assignment."""
    n_assign, n_samples, n_components = one_hot.shape
    rows = one_hot.transpose(0, 2, 1).reshape(n_assign * n_components, n_samples)  # one GEMM
    sums = (rows @ np.hstack([points, points**2])).reshape(n_assign, n_components, -1)
    n_features = points.shape[1]
    return one_hot.sum(axis=1), sums[..., :n_features], sums[..., n_features:]


def _log_prior_z(counts: np.ndarray, n_samples: int, spec: MixtureSpec) -> np.ndarray:
    """log p(z) of one labelled sequence z, shape (A,) (or a scalar for fixed weights)."""
    if spec.fixed_weights:
        return -n_samples * np.log(spec.n_components)
    alpha = spec.alpha()  # Dirichlet-multinomial: B(alpha + n(z)) / B(alpha)
    return (
        gammaln(alpha.sum())
        - gammaln(alpha.sum() + n_samples)
        + (gammaln(alpha + counts) - gammaln(alpha)).sum(axis=1)
    )


def log_joint_from_stats(
    counts: np.ndarray,
    s1: np.ndarray,
    s2: np.ndarray,
    n_samples: int,
    spec: MixtureSpec,
    n_features: int,
) -> np.ndarray:
    """Eq. (1): log p(z) + log p(x | z), means (and weights) integrated, shape (A,)."""
    obs_var = spec.known_obs_sd(n_features) ** 2  # (K, D)
    log_lik = log_marginal_normal(
        counts[:, :, None],
        s1,
        s2,
        spec.prior_mean(n_features),
        spec.prior_sd(n_features) ** 2,
        obs_var,
    ).sum(axis=(1, 2))
    return _log_prior_z(counts, n_samples, spec) + log_lik


def log_joint_block(z: np.ndarray, points: np.ndarray, spec: MixtureSpec) -> np.ndarray:
    """log p(z) + log p(x | z) with means (and weights) integrated, shape (n_assign,)."""
    n_samples, n_features = points.shape
    counts, s1, s2 = block_stats(one_hot(z, spec.n_components), points)
    return log_joint_from_stats(counts, s1, s2, n_samples, spec, n_features)


def assignment_blocks(
    n_samples: int, n_components: int, chunk: int = CHUNK
) -> Iterator[np.ndarray]:
    """Consecutive assignment blocks (A, N) covering all K^N assignments."""
    total = n_components**n_samples
    for start in range(0, total, chunk):
        yield _assignments(start, min(start + chunk, total), n_samples, n_components)


def log_predictive_given_z(
    new: np.ndarray, counts: np.ndarray, s1: np.ndarray, n_samples: int, spec: MixtureSpec
) -> np.ndarray:
    """log p(x_new | z, x) for every assignment and new point, shape (A, M)."""
    n_features = new.shape[1]
    prior_prec = spec.prior_sd(n_features) ** -2.0  # (D,)
    obs_var = spec.known_obs_sd(n_features) ** 2  # (K, D)
    lam = prior_prec + counts[:, :, None] / obs_var  # (A, K, D)
    mean = (spec.prior_mean(n_features) * prior_prec + s1 / obs_var) / lam
    var = 1.0 / lam + obs_var
    if spec.fixed_weights:
        log_w = np.full(counts.shape, -np.log(spec.n_components))
    else:
        alpha = spec.alpha()
        log_w = np.log(alpha + counts) - np.log(alpha.sum() + n_samples)  # (A, K)
    diff = new[None, :, None, :] - mean[:, None, :, :]  # (A, M, K, D)
    log_norm = -0.5 * (np.log(2.0 * np.pi * var)[:, None] + diff**2 / var[:, None]).sum(-1)
    return logsumexp(log_w[:, None, :] + log_norm, axis=-1)
