"""EM's M-step: the point-mass case of the conjugate core, from the same SufficientStats.

Where CAVI keeps distributions q(w), q(mu), q(tau), EM keeps one value of each (an
:class:`EmState`). Its E-step is CAVI's pass with the values in place of expectations
(:func:`log_const`), and its M-step (:func:`m_step`) reads the same N_k, x̄_k, S_k:

- maximum likelihood: Bishop (2006), eqs. 9.24-9.26 with diagonal covariances;
- MAP: CAVI's updates (``meanfield.update_means``, ``update_precisions``) with q(mu) a point
  mass, taking the mode of the Gamma instead of the distribution;

and MAP's objective adds the ELBO's prior terms at a point mass (:func:`log_prior`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ppl_mixtures.inference.conjugate.meanfield import update_means, update_precisions
from ppl_mixtures.inference.conjugate.stats import SufficientStats
from ppl_mixtures.model.density import LOG_2PI
from ppl_mixtures.model.priors import dirichlet_log_prior, gamma_log_prior, normal_log_prior
from ppl_mixtures.model.spec import MixtureSpec

__all__ = ["PRIORS", "EmState", "log_const", "log_prior", "m_step"]

#: ``"none"``: maximum likelihood; ``"map"``: maximum a posteriori under the spec's priors.
PRIORS = ("none", "map")
# scikit-learn's guard against empty components (GaussianMixture._estimate_gaussian_parameters)
_EMPTY_GUARD = 10.0 * np.finfo(np.float64).eps


class EmState(NamedTuple):
    """Loop state of EM (the current point estimate).

    Attributes
    ----------
    weights : ndarray of shape (n_components,)
    means : ndarray of shape (n_components, n_features)
    variances : ndarray of shape (n_components, n_features)
        Observation variances sd^2 (fixed at the spec's value when obs_sd is known).
    objective : float
        The objective (log-likelihood, or log joint for MAP) of the *previous* state,
        computed in the E-step of the step that produced this one; -inf after init.
    n_iter : int
    """

    weights: np.ndarray
    means: np.ndarray
    variances: np.ndarray
    objective: float
    n_iter: int


# ----------------------------------------------------------------- objective
def log_prior(state: EmState, spec: MixtureSpec) -> float:
    """log p(w, mu, tau) of the spec's priors at a point estimate (MAP's extra term).

    The ELBO's prior terms (``elbo.py``) at a point mass: means Normal(m0, s0^2); weights
    Dirichlet(max(alpha, 1)) (see :func:`_map_weights`); precisions tau = 1/variance
    Gamma(a0, b0) (a density on tau), only when learned.
    """
    n_features = state.means.shape[1]
    total = np.sum(
        normal_log_prior(
            state.means, 0.0, spec.prior_mean(n_features), spec.prior_sd(n_features) ** 2
        )
    )
    if not spec.fixed_weights:
        with np.errstate(divide="ignore"):
            log_w = np.log(state.weights)
        total += dirichlet_log_prior(log_w, np.maximum(spec.alpha(), 1.0))
    if spec.learned_obs_sd:
        tau = 1.0 / state.variances
        total += np.sum(
            gamma_log_prior(tau, np.log(tau), spec.precision_prior_shape, spec.precision_prior_rate)
        )
    return float(total)


def log_const(state: EmState) -> np.ndarray:
    """log w_k + sum_d log N-normalizer, shape (n_components,) (the pass adds the rest)."""
    with np.errstate(divide="ignore"):
        log_w = np.log(state.weights)
    return log_w - 0.5 * np.sum(LOG_2PI + np.log(state.variances), axis=1)


# ----------------------------------------------------------------- M-step
def _map_weights(counts: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """argmax_w sum_k (N_k + alpha_k - 1) log w_k on the simplex, with alpha -> max(alpha, 1).

    For alpha_k < 1 the posterior density of w is unbounded at w_k = 0, so no MAP exists;
    raising those alpha_k to 1 (flat in that direction) keeps the MAP defined and EM
    monotone. In the interior the mode is w_k ∝ N_k + alpha_k - 1.
    """
    numer = counts + np.maximum(alpha, 1.0) - 1.0
    return numer / numer.sum()


def _guarded(stats: SufficientStats, previous_means: np.ndarray) -> SufficientStats:
    """``stats`` plus 10 eps phantom points at each component's previous mean.

    scikit-learn adds 10 eps to every N_k so that an empty component divides by a positive
    number; adding those 10 eps as points at the previous mean is the same guard written
    as data: N_k, x̄_k and S_k pool the two groups (Chan, Golub & LeVeque 1983), an empty
    component stays where it was, and for any component with real points nothing changes
    at float64 precision.
    """
    counts = stats.counts + _EMPTY_GUARD
    share = (_EMPTY_GUARD / counts)[:, None]  # the phantoms' share of N_k
    gap = previous_means - stats.means
    means = stats.means + share * gap
    scatter = (1.0 - share) * (stats.scatter + share * gap**2)
    return SufficientStats(counts, means, scatter, stats.entropy, stats.sum_log_norm)


def m_step(
    stats: SufficientStats, state: EmState, spec: MixtureSpec, prior: str, reg_covar: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """New (weights, means, variances) from the E-step's statistics.

    Notes
    -----
    With N_k, x̄_k, S_k of the responsibilities (guarded as in :func:`_guarded`):

    - ML (Bishop 2006, eqs. 9.24-9.26, diagonal): mu_k = x̄_k, var_kd = S_kd + reg_covar,
      w_k = N_k / N.
    - MAP: an ECM step (Meng & Rubin 1993), since the independent Normal prior on mu couples
      mu and tau: first mu from CAVI's q(mu) update at the old tau
      (``meanfield.update_means``), then tau at the mode (a - 1) / b of CAVI's q(tau)
      update with q(mu) a point mass at the new mu (``meanfield.update_precisions`` with
      variance 0), and w from :func:`_map_weights`. reg_covar is not added in MAP mode:
      the Gamma prior already keeps variances away from zero.
    """
    guarded = _guarded(stats, state.means)
    counts = guarded.counts
    if prior == "none":
        means = guarded.means
    else:
        means = update_means(guarded, 1.0 / state.variances, spec)[0]
    if not spec.learned_obs_sd:
        variances = state.variances
    elif prior == "none":
        variances = guarded.scatter + reg_covar
    else:
        shape, rate = update_precisions(guarded, means, np.zeros_like(means), spec)
        variances = rate / np.maximum(shape - 1.0, np.finfo(float).tiny)
    if spec.fixed_weights:
        weights = state.weights
    elif prior == "none":
        weights = counts / counts.sum()
    else:
        weights = _map_weights(stats.counts, spec.alpha())
    return weights, means, variances
