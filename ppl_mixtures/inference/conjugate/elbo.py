"""The ELBO of the conjugate mean-field family, as named terms; the priors' log-densities.

    ELBO(q) = E_q[log p(x | z, mu, tau)] + E_q[log p(z | w)] + H[q(z)]
              - KL(q(w) || p(w)) - KL(q(mu) || p(mu)) - KL(q(tau) || p(tau))

Every constant is kept (Bishop 2006, eqs. 10.70-10.77, for our diagonal semi-conjugate
model), so the value is a lower bound on log p(x) in nats, comparable with ADVI's ELBO for
the same spec and with an exact log evidence (sklearn's BayesianGaussianMixture drops
constants; we do not).

The prior log-densities are written once, in :mod:`ppl_mixtures.model.priors`, as
expectations under a factor of q (:func:`normal_log_prior`, :func:`gamma_log_prior`,
:func:`dirichlet_log_prior`); a point mass gives the plain log-density, which is what EM's
MAP objective adds (``pointmass.log_prior``) and what the diagnostics' log joint uses.

``covariance="spherical"`` is this ELBO with E[tau_k] shared by the features and one
Gamma KL per component; full and tied covariances are in ``fullcov_elbo.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import digamma, gammaln

from ppl_mixtures.inference.conjugate import sticks
from ppl_mixtures.inference.conjugate.meanfield import VariationalParams, expectations
from ppl_mixtures.inference.conjugate.stats import SufficientStats, weighted_sq_dev
from ppl_mixtures.model.density import LOG_2PI
from ppl_mixtures.model.priors import dirichlet_log_prior, gamma_log_prior, normal_log_prior
from ppl_mixtures.model.spec import MixtureSpec

__all__ = [
    "ElboTerms",
    "elbo",
    "elbo_terms",
    "weights_kl",
]


# ----------------------------------------------------------------- the terms
@dataclass(frozen=True)
class ElboTerms:
    """The ELBO's terms in nats; :attr:`total` is the ELBO (higher is better).

    Attributes
    ----------
    expected_log_lik : float
        E_q[log p(x | z, mu, tau)] (Bishop 2006, eq. 10.71).
    expected_log_p_z : float
        E_q[log p(z | w)] = sum_k N_k E[log w_k] (eq. 10.72).
    entropy_z : float
        H[q(z)] = -sum_ik r_ik log r_ik (eq. 10.75).
    kl_weights, kl_means, kl_precisions : float
        KL(q || p) of each global factor (eqs. 10.73-10.74, 10.76-10.77 as differences);
        0 for fixed weights and for a known obs_sd. For dp weights ``kl_weights`` is the
        sticks' KL plus, when alpha is learned, q(alpha)'s (:func:`weights_kl`).
    """

    expected_log_lik: float
    expected_log_p_z: float
    entropy_z: float
    kl_weights: float
    kl_means: float
    kl_precisions: float

    @property
    def total(self) -> float:
        return (
            self.expected_log_lik
            + self.expected_log_p_z
            + self.entropy_z
            - self.kl_weights
            - self.kl_means
            - self.kl_precisions
        )


def elbo_terms(stats: SufficientStats, params: VariationalParams, spec: MixtureSpec) -> ElboTerms:
    """The ELBO of (q(z) with statistics ``stats``, global factors ``params``), term by term.

    Parameters
    ----------
    stats : SufficientStats
        Statistics of the q(z) being scored (from the pass that set it).
    params : VariationalParams
        The global factors (usually just updated from ``stats``).

    Returns
    -------
    ElboTerms

    Notes
    -----
    With sum_i r_ik E[(x_id - mu_kd)^2] = N_k (S_kd + (x̄_kd - m_kd)^2 + s2_kd)::

        E[log p(x | z, mu, tau)] = sum_kd N_k (1/2 E[log tau_kd] - 1/2 log 2 pi)
                                   - 1/2 E[tau_kd] N_k (S_kd + (x̄_kd - m_kd)^2 + s2_kd)

    and each KL is E_q[log q] - E_q[log p] = -(entropy of the factor) - (its prior term).
    Relation to ADVI's ELBO for the same spec: ADVI sums z out exactly,
    E_q[log sum_k w_k N(x | mu_k, ...)], while CAVI bounds it by q(z); both are lower
    bounds on the same log p(x), in the same units, and directly comparable.
    """
    n_features = params.mean_loc.shape[1]
    expect = expectations(params, spec)
    counts = stats.counts[:, None]
    expected_sq_dev = weighted_sq_dev(stats, params.mean_loc) + counts * params.mean_var
    expected_log_lik = np.sum(
        counts * (0.5 * expect.log_prec - 0.5 * LOG_2PI) - 0.5 * expect.prec * expected_sq_dev
    )
    expected_log_p_z = float(stats.counts @ expect.log_weights)
    mean_entropy = 0.5 * np.log(2.0 * np.pi * math.e * params.mean_var)
    kl_means = -np.sum(
        normal_log_prior(
            params.mean_loc,
            params.mean_var,
            spec.prior_mean(n_features),
            spec.prior_sd(n_features) ** 2,
        )
        + mean_entropy
    )
    kl_weights = weights_kl(params, spec, expect.log_weights)
    kl_precisions = 0.0
    if params.prec_shape is not None and params.prec_rate is not None:
        # one factor per (k, d), or per k when spherical: E[tau], E[log tau] of each factor
        shape, rate = params.prec_shape, params.prec_rate
        entropy_tau = shape - np.log(rate) + gammaln(shape) + (1.0 - shape) * digamma(shape)
        kl_precisions = -np.sum(
            gamma_log_prior(
                shape / rate,
                digamma(shape) - np.log(rate),
                spec.precision_prior_shape,
                spec.precision_prior_rate,
            )
            + entropy_tau
        )
    return ElboTerms(
        float(expected_log_lik),
        expected_log_p_z,
        float(stats.entropy),
        float(kl_weights),
        float(kl_means),
        float(kl_precisions),
    )


def weights_kl(params: Any, spec: MixtureSpec, mean_log_weights: np.ndarray) -> float:
    """KL of q's weight factor from its prior, nats: Dirichlet (``weight_conc``), the DP's
    sticks and concentration (``sticks.kl``: KL(q(v) || p(v | alpha)) averaged over q(alpha)
    plus KL(q(alpha) || p(alpha)); Blei & Jordan 2006, §3), or 0 for fixed weights."""
    factors = sticks.factors_of(params)
    if factors is not None:
        return sticks.kl(factors, spec)
    if params.weight_conc is None:
        return 0.0
    # H[Dir(conc)] = -E[log Dir(w | conc)], the same formula with conc for alpha
    entropy_w = -dirichlet_log_prior(mean_log_weights, params.weight_conc)
    return float(-(dirichlet_log_prior(mean_log_weights, spec.alpha()) + entropy_w))


def elbo(stats: SufficientStats, params: VariationalParams, spec: MixtureSpec) -> float:
    """ELBO(q) in nats (higher is better; <= log p(x), Blei et al. 2017, §2.2): the sum of
    :func:`elbo_terms`."""
    return elbo_terms(stats, params, spec).total
