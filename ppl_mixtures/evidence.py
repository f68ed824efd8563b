"""Exact log evidence log p(x) of a :class:`MixtureSpec` by enumerating every assignment.

For tiny data sets (K^N up to about two million assignments) the marginal likelihood of the
spec's model is computable exactly, which makes it the oracle for every evidence bound and
estimate in the package: the CAVI and ADVI ELBOs must lie below it, SMC's log-evidence
estimate must scatter around it.

    log p(x) = logsumexp_z [ log p(z) + sum_k sum_d log p(x_{z=k, d}) ]

with the component means integrated out analytically (conjugate Normal prior, known
observation sd) and the weights integrated out analytically (Dirichlet-multinomial), or
p(z) = K^-N for fixed weights.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln, logsumexp

from .spec import MixtureSpec
from .validation import check_points

__all__ = ["MAX_ASSIGNMENTS", "exact_log_evidence"]

#: Largest number of assignments K^N that :func:`exact_log_evidence` enumerates.
MAX_ASSIGNMENTS = 2_000_000

_LOG_2PI = float(np.log(2.0 * np.pi))
_CHUNK = 65_536  # assignments per vectorized block (bounds memory to a few MB)


def _log_marginal_normal(n, s1, s2, prior_mean, prior_var, obs_var):
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
    return (-0.5 * n * (_LOG_2PI + np.log(obs_var))
            - 0.5 * np.log1p(n * prior_var / obs_var)
            - 0.5 * sum_c2 / obs_var
            + 0.5 * prior_var * sum_c**2 / (obs_var * (obs_var + n * prior_var)))


def _assignments(start: int, stop: int, n_samples: int, n_components: int) -> np.ndarray:
    """Assignments number start..stop-1 written in base K, shape (stop - start, n_samples)."""
    codes = np.arange(start, stop, dtype=np.int64)
    powers = n_components ** np.arange(n_samples - 1, -1, -1, dtype=np.int64)
    return (codes[:, None] // powers[None, :]) % n_components


def _log_joint_block(z, points, spec):
    """log p(z) + log p(x | z) with means (and weights) integrated, shape (n_assign,)."""
    n_samples, n_features = points.shape
    n_components = spec.n_components
    one_hot = (z[:, :, None] == np.arange(n_components)).astype(np.float64)  # (A, N, K)
    counts = one_hot.sum(axis=1)                                             # (A, K)
    s1 = np.einsum("ank,nd->akd", one_hot, points)                           # (A, K, D)
    s2 = np.einsum("ank,nd->akd", one_hot, points**2)
    obs_var = spec.known_obs_sd(n_features) ** 2                             # (K, D)
    log_lik = _log_marginal_normal(counts[:, :, None], s1, s2, spec.prior_mean(n_features),
                                   spec.prior_sd(n_features) ** 2, obs_var).sum(axis=(1, 2))
    if spec.fixed_weights:
        log_prior_z = -n_samples * np.log(n_components)
    else:  # Dirichlet-multinomial probability of one labelled sequence z
        alpha = spec.alpha()
        log_prior_z = (gammaln(alpha.sum()) - gammaln(alpha.sum() + n_samples)
                       + (gammaln(alpha + counts) - gammaln(alpha)).sum(axis=1))
    return log_prior_z + log_lik


def exact_log_evidence(points, spec: MixtureSpec) -> float:
    """The exact log marginal likelihood log p(x) of ``spec``, by enumeration.

    Parameters
    ----------
    points : array-like of shape (n_samples,) or (n_samples, n_features)
        A handful of observations: ``n_components ** n_samples`` must be at most
        :data:`MAX_ASSIGNMENTS` (e.g. N <= 13 for K = 3, N <= 20 for K = 2).
    spec : MixtureSpec
        Known ``obs_sd`` only; Dirichlet or fixed weights.

    Returns
    -------
    float
        log p(x) in nats, with every constant (comparable with any ELBO of the same spec).

    Raises
    ------
    NotImplementedError
        For ``obs_sd="learned"`` (the per-component precisions do not integrate out in
        closed form under the semi-conjugate prior).
    ValueError
        When K^N exceeds :data:`MAX_ASSIGNMENTS`.

    Notes
    -----
    Every assignment z in {1..K}^N is enumerated (in blocks, to bound memory). Given z the
    components are independent and, with known sd, so are the features; each component mean
    is integrated against its Normal prior (:func:`_log_marginal_normal`). With Dirichlet
    weights, p(z) = B(alpha + n(z)) / B(alpha) (Dirichlet-multinomial for one labelled
    sequence); with fixed weights p(z) = K^-N. The result is the logsumexp over all z.
    ``spec.ordered`` is ignored: it is the unconstrained model's evidence.

    Examples
    --------
    >>> spec = MixtureSpec(n_components=1, mean_prior_sd=1.0, obs_sd=1.0)
    >>> round(exact_log_evidence([0.0], spec), 6)  # x ~ N(0, 1 + 1)
    -1.265512
    """
    if not isinstance(spec, MixtureSpec):
        raise TypeError(f"spec: expected a MixtureSpec, got {type(spec).__name__}. "
                        f"Build one with MixtureSpec(n_components=...).")
    if spec.learned_obs_sd:
        raise NotImplementedError("spec.obs_sd: exact_log_evidence needs a known obs_sd, got "
                                  "'learned'. Use a known obs_sd, or an estimate of the "
                                  "evidence (the 'smc' engine, or the 'cavi' ELBO as a bound).")
    points = check_points(points)
    spec.check_features(points.shape[1])
    n_samples = points.shape[0]
    n_components = spec.n_components
    if n_samples * np.log(n_components) > np.log(MAX_ASSIGNMENTS):
        raise ValueError(f"points: expected at most {MAX_ASSIGNMENTS} assignments "
                         f"(n_components ** n_samples), got {n_components}**{n_samples}. "
                         f"Enumerate fewer points (e.g. points[:{_max_n(n_components)}]).")
    total = n_components**n_samples
    blocks = [logsumexp(_log_joint_block(_assignments(start, min(start + _CHUNK, total),
                                                      n_samples, n_components), points, spec))
              for start in range(0, total, _CHUNK)]
    return float(logsumexp(blocks))


def _max_n(n_components: int) -> int:
    """Largest N with K^N <= MAX_ASSIGNMENTS."""
    if n_components == 1:
        return 10**9
    return int(np.floor(np.log(MAX_ASSIGNMENTS) / np.log(n_components) + 1e-12))
