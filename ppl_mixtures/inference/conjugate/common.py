"""The conjugate mean-field family shared by CAVI and SVI: q's expectations, the optimal
global factors given statistics of q(z), the exact ELBO, and draws from q.

Private helper module of ``engines/cavi.py`` and ``engines/svi.py`` (engines never import
each other). The math is documented where it is used; ``cavi.py`` has the overview.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.special import digamma, gammaln

from ppl_mixtures.kernels import estep as kernels
from ppl_mixtures.model.spec import MixtureSpec

__all__ = ["VariationalParams", "draws_from_q", "elbo", "expectations", "initial_params",
           "log_rho_constants", "sorted_by_first_feature", "update_globals"]

LOG_2PI = float(np.log(2.0 * np.pi))


class VariationalParams(NamedTuple):
    """The parameters of the global factors of q (the local q(z_i) are implied, see step).

    Attributes
    ----------
    mean_loc, mean_var : ndarray of shape (n_components, n_features)
        q(mu_kd) = N(mean_loc_kd, mean_var_kd).
    weight_conc : ndarray of shape (n_components,) or None
        q(w) = Dirichlet(weight_conc); None when the spec fixes the weights at 1/K.
    prec_shape, prec_rate : ndarray of shape (n_components, n_features) or None
        q(tau_kd) = Gamma(shape, rate) on the precisions; None when obs_sd is known.
    """

    mean_loc: np.ndarray
    mean_var: np.ndarray
    weight_conc: np.ndarray | None
    prec_shape: np.ndarray | None
    prec_rate: np.ndarray | None


# ----------------------------------------------------------------- expectations under q
class _Expectations(NamedTuple):
    log_weights: np.ndarray   # (K,)   E[log w_k]
    prec: np.ndarray          # (K, D) E[tau_kd]
    log_prec: np.ndarray      # (K, D) E[log tau_kd]


def expectations(params: VariationalParams, spec: MixtureSpec) -> _Expectations:
    """E[log w], E[tau], E[log tau] under q (Bishop 2006, eqs. 10.66 and B.30)."""
    n_features = params.mean_loc.shape[1]
    if params.weight_conc is None:
        log_weights = np.log(spec.fixed_weight_values())
    else:
        log_weights = digamma(params.weight_conc) - digamma(params.weight_conc.sum())
    if params.prec_shape is None:
        prec = spec.known_obs_sd(n_features) ** -2.0
        log_prec = np.log(prec)
    else:
        prec = params.prec_shape / params.prec_rate
        log_prec = digamma(params.prec_shape) - np.log(params.prec_rate)
    return _Expectations(log_weights, prec, log_prec)


def log_rho_constants(params: VariationalParams, expect: _Expectations) -> np.ndarray:
    """log_const_k of the local update, shape (n_components,).

    Notes
    -----
    The optimal q(z_i) (Bishop 2006, eq. 10.46, with a diagonal Gaussian; Blei et al. 2017,
    §3 for fixed weights and unit variance) is r_ik ∝ rho_ik with::

        log rho_ik = E[log w_k] + sum_d ( 1/2 E[log tau_kd] - 1/2 log 2 pi
                                          - 1/2 E[tau_kd] ((x_id - m_kd)^2 + s2_kd) )

    The constant -1/2 log 2 pi cancels in r but is kept so that the kernel's
    sum_i logsumexp_k log rho_ik is a proper log-density term. Everything but
    -1/2 E[tau] (x - m)^2 goes into log_const; the kernel adds the rest.
    """
    per_feature = 0.5 * expect.log_prec - 0.5 * LOG_2PI - 0.5 * expect.prec * params.mean_var
    return expect.log_weights + per_feature.sum(axis=1)


# ----------------------------------------------------------------- global updates
def update_globals(stats: kernels.PassStats, centers: np.ndarray, spec: MixtureSpec,
                    old_prec: np.ndarray, learned: bool, dirichlet: bool,
                    ) -> VariationalParams:
    """The optimal q(w), q(mu), then q(tau), given the statistics of q(z).

    Parameters
    ----------
    stats : PassStats
        Sums of r about ``centers`` (counts (K,), sum_dev (K, D), sum_sq_dev (K, D)).
    centers : ndarray of shape (n_components, n_features)
    old_prec : ndarray of shape (n_components, n_features)
        E[tau] under the current q(tau) (the q(mu) update needs it).

    Notes
    -----
    With N_k = sum_i r_ik and S_kd = sum_i r_ik x_id (Bishop 2006, eqs. 10.51-10.52):

    - q(w) = Dir(alpha + N)                                           (Bishop eq. 10.58)
    - q(mu_kd): precision 1/s0^2 + E[tau_kd] N_k, mean
      (m0/s0^2 + E[tau_kd] S_kd) / precision. This is Blei et al. 2017's m_k, s_k^2 update
      (§3) with a general prior and E[tau] in place of 1. We compute the mean as
      center + ((m0 - center)/s0^2 + E[tau] sum_dev) / precision, the same number with the
      large terms cancelled analytically.
    - q(tau_kd) = Gamma(a0 + N_k/2, b0 + 1/2 sum_i r_ik E[(x_id - mu_kd)^2]), with
      E[(x - mu)^2] = (x - m)^2 + s2 under the *new* q(mu).
      Deviation from Bishop §10.2: his conjugate Gaussian-Wishart prior ties mu to the
      precision and q(mu, Lambda) stays jointly conjugate; our prior is independent
      (semi-conjugate), so the mean-field q(mu) q(tau) is updated as two coordinates.
    """
    n_features = centers.shape[1]
    counts = stats.counts
    prior_mean = spec.prior_mean(n_features)
    prior_prec = spec.prior_sd(n_features) ** -2.0
    weight_conc = spec.alpha() + counts if dirichlet else None
    post_prec = prior_prec + old_prec * counts[:, None]                      # (K, D)
    shift = ((prior_mean - centers) * prior_prec + old_prec * stats.sum_dev) / post_prec
    mean_loc = centers + shift
    mean_var = 1.0 / post_prec
    if not learned:
        return VariationalParams(mean_loc, mean_var, weight_conc, None, None)
    # sum_i r_ik (x_id - m_new)^2 from sums about the old center (shift = m_new - center)
    sq_dev_new = np.maximum(stats.sum_sq_dev - 2.0 * shift * stats.sum_dev
                            + counts[:, None] * shift**2, 0.0)
    prec_shape = spec.precision_prior_shape + 0.5 * counts[:, None] * np.ones(n_features)
    prec_rate = spec.precision_prior_rate + 0.5 * (sq_dev_new + counts[:, None] * mean_var)
    return VariationalParams(mean_loc, mean_var, weight_conc, prec_shape, prec_rate)


def initial_params(points: np.ndarray, spec: MixtureSpec,
                   centers: np.ndarray) -> VariationalParams:
    """The global factors after hard-assigning every point to its nearest center.

    Parameters
    ----------
    points : ndarray of shape (n_samples, n_features)
    centers : ndarray of shape (n_components, n_features)

    Notes
    -----
    r_ik = [k is the nearest center] plays the role of sklearn's k-means responsibilities;
    one global update turns it into a q that respects the priors. The q(mu) update needs
    E[tau]: the prior mean a0/b0 when learned, the known precision otherwise.
    """
    stats = kernels.hard_assignment_stats(points, centers)
    if spec.learned_obs_sd:
        start_prec = np.full_like(centers, spec.precision_prior_shape / spec.precision_prior_rate)
    else:
        start_prec = spec.known_obs_sd(points.shape[1]) ** -2.0
    return update_globals(stats, centers, spec, start_prec, spec.learned_obs_sd,
                          not spec.fixed_weights)


# ----------------------------------------------------------------- the ELBO
def _dirichlet_log_norm(conc: np.ndarray) -> float:
    """log B(conc)^-1 = log Gamma(sum conc) - sum log Gamma(conc)."""
    return float(gammaln(conc.sum()) - gammaln(conc).sum())


def elbo(stats: kernels.PassStats, centers: np.ndarray, params: VariationalParams,
         spec: MixtureSpec) -> float:
    """ELBO(q) = E_q[log p(x, z, mu, w, tau)] - E_q[log q(z, mu, w, tau)], every constant kept.

    Parameters
    ----------
    stats : PassStats
        Statistics of q(z) (sums about ``centers``), from the pass that set q(z).
    centers : ndarray of shape (n_components, n_features)
    params : VariationalParams
        The global factors (usually just updated from ``stats``).

    Returns
    -------
    float
        Nats, higher is better; <= log p(x) (by Jensen's inequality; Blei et al. 2017, §2.2).

    Notes
    -----
    The terms (Bishop 2006, eqs. 10.70-10.77, for our diagonal semi-conjugate model), with
    Q_kd = sum_i r_ik (x_id - m_kd)^2:

    - E[log p(x | z, mu, tau)] = sum_kd N_k (1/2 E[log tau] - 1/2 log 2 pi)
      - 1/2 E[tau] (Q_kd + N_k s2_kd)
    - E[log p(z | w)] = sum_k N_k E[log w_k]   (N log(1/K) for fixed weights)
    - E[log p(mu)] = sum_kd -1/2 log(2 pi s0^2) - ((m - m0)^2 + s2) / (2 s0^2)
    - E[log p(w)] = log Gamma(sum alpha) - sum log Gamma(alpha) + sum (alpha - 1) E[log w]
    - E[log p(tau)] = a0 log b0 - log Gamma(a0) + (a0 - 1) E[log tau] - b0 E[tau]
    - entropies: -sum r log r; sum_kd 1/2 log(2 pi e s2); Dirichlet and Gamma entropies.

    Relation to ADVI's ELBO for the same spec: ADVI sums z out exactly,
    E_q[log sum_k w_k N(x | mu_k, ...)], while CAVI bounds it by q(z). For any q(mu, w, tau),
    the best q(z) closes that gap only inside the expectation, so both are lower bounds
    on the same log p(x), in the same units, and directly comparable.
    """
    n_features = centers.shape[1]
    expect = expectations(params, spec)
    counts = stats.counts
    shift = params.mean_loc - centers
    sq_dev = np.maximum(stats.sum_sq_dev - 2.0 * shift * stats.sum_dev
                        + counts[:, None] * shift**2, 0.0)                     # Q (K, D)
    log_lik = np.sum(counts[:, None] * (0.5 * expect.log_prec - 0.5 * LOG_2PI)
                     - 0.5 * expect.prec * (sq_dev + counts[:, None] * params.mean_var))
    log_p_z = float(counts @ expect.log_weights)
    entropy_z = -stats.sum_r_log_r
    prior_mean = spec.prior_mean(n_features)
    prior_var = spec.prior_sd(n_features) ** 2
    log_p_mu = np.sum(-0.5 * np.log(2.0 * np.pi * prior_var)
                      - ((params.mean_loc - prior_mean) ** 2 + params.mean_var) / (2 * prior_var))
    entropy_mu = np.sum(0.5 * np.log(2.0 * np.pi * np.e * params.mean_var))
    total = log_lik + log_p_z + entropy_z + log_p_mu + entropy_mu
    if params.weight_conc is not None:
        alpha, conc = spec.alpha(), params.weight_conc
        log_p_w = _dirichlet_log_norm(alpha) + float((alpha - 1.0) @ expect.log_weights)
        entropy_w = -_dirichlet_log_norm(conc) - float((conc - 1.0) @ expect.log_weights)
        total += log_p_w + entropy_w
    if params.prec_shape is not None:
        a0, b0 = spec.precision_prior_shape, spec.precision_prior_rate
        shape, rate = params.prec_shape, params.prec_rate
        log_p_tau = np.sum(a0 * np.log(b0) - gammaln(a0) + (a0 - 1.0) * expect.log_prec
                           - b0 * expect.prec)
        entropy_tau = np.sum(shape - np.log(rate) + gammaln(shape)
                             + (1.0 - shape) * digamma(shape))
        total += log_p_tau + entropy_tau
    return float(total)


def draws_from_q(params: VariationalParams, spec: MixtureSpec, n_draws: int,
                  rng: np.random.Generator):
    """Draws of means (1, S, K, D), weights (1, S, K) and obs_sd (1, S, K, D) or None."""
    n_components, n_features = params.mean_loc.shape
    means = rng.normal(params.mean_loc, np.sqrt(params.mean_var),
                       size=(1, n_draws, n_components, n_features))
    if params.weight_conc is None:
        weights = np.broadcast_to(spec.fixed_weight_values(), (1, n_draws, n_components)).copy()
    else:
        weights = rng.dirichlet(params.weight_conc, size=(1, n_draws))
    obs_sd = None
    if params.prec_shape is not None:
        tau = rng.gamma(params.prec_shape, 1.0 / params.prec_rate,
                        size=(1, n_draws, n_components, n_features))
        obs_sd = tau**-0.5
    return means, weights, obs_sd


def sorted_by_first_feature(params: VariationalParams) -> VariationalParams:
    """The same q with components relabelled so that mean_loc[:, 0] increases."""
    order = np.argsort(params.mean_loc[:, 0], kind="stable")
    return VariationalParams(*(None if p is None else p[order] for p in params))
