"""The conjugate mean-field family of CAVI and SVI: q's expectations and its coordinate updates.

The model (``model/spec.py``), diagonal Gaussian components::

    mu_kd ~ N(m0_d, s0_d^2)     w ~ Dirichlet(alpha) or w = 1/K     tau_kd ~ Gamma(a0, b0) or known
    z_i ~ Cat(w)                x_id | z_i = k ~ N(mu_kd, 1/tau_kd)

The family (Blei et al. 2017, §2.3 and the Gaussian-mixture example of §3; Bishop 2006,
§10.2)::

    q(z, mu, w, tau) = prod_i Cat(z_i | r_i) prod_kd N(mu_kd | m_kd, s2_kd)
                       x Dir(w | alpha_hat) x prod_kd Gamma(tau_kd | a_kd, b_kd)

Each factor's optimum given the others is q_j* ∝ exp E_{-j}[log p(x, all)] (Bishop 2006,
eq. 10.9). Read in this order:

1. :func:`expectations`: E[log w], E[tau], E[log tau] under q;
2. :func:`log_rho_constants`: the local step's constants; ``stats.py`` turns them into r
   and the :class:`~ppl_mixtures.kernels.estep.SufficientStats` N_k, x̄_k, S_k;
3. :func:`update_weights`, :func:`update_means`, :func:`update_precisions`: the global
   factors from those statistics (composed by :func:`update_globals`);
4. ``elbo.py``: the objective as named terms.

``covariance="spherical"`` (Sigma_k = I / tau_k) lives here too: q(tau_k) has shape and
rate of shape (K,), :func:`expectations` repeats them over the features, so the diagonal
pass and q(mu)'s update serve it unchanged, and :func:`update_spherical_precisions`
replaces :func:`update_precisions`. Full and tied covariances: ``fullcov_meanfield.py``.

``weights="dp"`` (truncated Dirichlet-process weights) replaces Dir(w | alpha_hat) by
prod_{k<T} Beta(v_k | gamma1_k, gamma2_k) (and Gamma(alpha | w1, w2) when alpha is learned),
held in the optional fields ``stick_a``, ``stick_b``, ``alpha_shape``, ``alpha_rate``; the
updates, expectations, KL and draws are in ``sticks.py`` (Blei & Jordan 2006).

Deviation from Bishop §10.2: his Gaussian-Wishart prior ties mu to the precision, so
q(mu, Lambda) stays jointly conjugate. Our prior on mu is independent of tau
(semi-conjugate), so q(mu) q(tau) are two coordinates, each the textbook conjugate update
(Bishop 2006, §2.3.6, eqs. 2.141-2.142 and 2.150-2.151) with the data counted r_ik times
and the other factor's expectation in place of its value.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.special import digamma

from ppl_mixtures.inference.conjugate import sticks
from ppl_mixtures.inference.conjugate.stats import (
    SufficientStats,
    hard_assignment_stats,
    one_pass,
    scaled,
    weighted_sq_dev,
)
from ppl_mixtures.model.density import LOG_2PI
from ppl_mixtures.model.spec import MixtureSpec

__all__ = [
    "DPVariationalParams",
    "Expectations",
    "VariationalParams",
    "draws_from_q",
    "draws_with_extras",
    "expectations",
    "initial_params",
    "local_pass",
    "log_rho_constants",
    "natural_step",
    "scaled",
    "sorted_by_first_feature",
    "update_globals",
    "update_means",
    "update_precisions",
    "update_spherical_precisions",
    "update_weights",
    "values_per_draw",
]


class VariationalParams(NamedTuple):
    """The parameters of the global factors of q (the local q(z_i) are implied by them).

    ``weights="dp"`` uses :class:`DPVariationalParams`: these fields and the stick factors.

    Attributes
    ----------
    mean_loc, mean_var : ndarray of shape (n_components, n_features)
        q(mu_kd) = N(mean_loc_kd, mean_var_kd).
    weight_conc : ndarray of shape (n_components,) or None
        q(w) = Dirichlet(weight_conc); None when the spec fixes the weights at 1/K.
    prec_shape, prec_rate : ndarray of shape (n_components, n_features) or None
        q(tau_kd) = Gamma(shape, rate) on the precisions; None when obs_sd is known. For
        ``covariance="spherical"`` shape (n_components,): q(tau_k), Sigma_k = I / tau_k.
    """

    mean_loc: np.ndarray
    mean_var: np.ndarray
    weight_conc: np.ndarray | None
    prec_shape: np.ndarray | None
    prec_rate: np.ndarray | None


class DPVariationalParams(NamedTuple):
    """:class:`VariationalParams` for ``weights="dp"`` (``weight_conc`` is None there), and
    the stick factors of ``sticks.py`` (Blei & Jordan 2006).

    Attributes
    ----------
    mean_loc, mean_var, weight_conc, prec_shape, prec_rate
        As in :class:`VariationalParams`.
    stick_a, stick_b : ndarray of shape (n_components - 1,)
        q(v_k) = Beta(stick_a_k, stick_b_k), k < T.
    alpha_shape, alpha_rate : ndarray of shape (1,) or None
        q(alpha) = Gamma(shape, rate) when ``dp_alpha_prior`` is given; None otherwise.
    """

    mean_loc: np.ndarray
    mean_var: np.ndarray
    weight_conc: np.ndarray | None
    prec_shape: np.ndarray | None
    prec_rate: np.ndarray | None
    stick_a: np.ndarray | None
    stick_b: np.ndarray | None
    alpha_shape: np.ndarray | None
    alpha_rate: np.ndarray | None


#: Either params record (Dirichlet or fixed weights; dp weights).
type Params = VariationalParams | DPVariationalParams


# ----------------------------------------------------------------- 1. expectations under q
class Expectations(NamedTuple):
    """E[log w_k] (n_components,), E[tau_kd] and E[log tau_kd] (n_components, n_features)."""

    log_weights: np.ndarray
    prec: np.ndarray
    log_prec: np.ndarray


def expectations(params: Params, spec: MixtureSpec) -> Expectations:
    """E[log w], E[tau], E[log tau] under q (Bishop 2006, eqs. 10.66 and B.27, B.30).

    E[log w_k] = psi(alpha_hat_k) - psi(sum_j alpha_hat_j) (dp: the sticks' E[log w_k] of
    ``sticks.expected_log_weights``); for Gamma(a, b): E[tau] = a / b, E[log tau] =
    psi(a) - log b. Fixed weights and a known obs_sd give their plain values.
    Spherical (``prec_shape`` of shape (K,)): tau_k repeated over the features, (K, D).
    """
    n_features = params.mean_loc.shape[1]
    log_weights = sticks.log_weight_expectations(params, spec)
    if params.prec_shape is None or params.prec_rate is None:
        prec = spec.known_obs_sd(n_features) ** -2.0
        log_prec = np.log(prec)
    else:
        prec = params.prec_shape / params.prec_rate
        log_prec = digamma(params.prec_shape) - np.log(params.prec_rate)
        if prec.ndim == 1:  # spherical: one tau_k shared by the features
            prec = np.repeat(prec[:, None], n_features, axis=1)
            log_prec = np.repeat(log_prec[:, None], n_features, axis=1)
    return Expectations(log_weights, prec, log_prec)


# ----------------------------------------------------------------- 2. the local step
def log_rho_constants(params: Params, expect: Expectations) -> np.ndarray:
    """log_const_k of the local step (*) of ``stats.py``, shape (n_components,).

    The optimal q(z_i) (Bishop 2006, eq. 10.46 with a diagonal Gaussian) is r_ik ∝ rho_ik::

        log rho_ik = E[log w_k] + sum_d ( 1/2 E[log tau_kd] - 1/2 log 2 pi
                                          - 1/2 E[tau_kd] ((x_id - m_kd)^2 + s2_kd) )

    (E_q(mu)[(x - mu)^2] = (x - m)^2 + s2). The pass adds -1/2 E[tau] (x - m)^2 with
    center = m and prec = E[tau]; everything else is this constant. -1/2 log 2 pi cancels
    in r but is kept so that sum_i logsumexp_k log rho_ik is a proper log-density term.
    """
    per_feature = 0.5 * expect.log_prec - 0.5 * LOG_2PI - 0.5 * expect.prec * params.mean_var
    return expect.log_weights + per_feature.sum(axis=1)


def local_pass(
    backend: str, points: np.ndarray, params: Params, expect: Expectations
) -> SufficientStats:
    """q(z) for every point, reduced to N_k, x̄_k, S_k (``stats.one_pass`` on ``backend``)."""
    return one_pass(
        backend, points, log_rho_constants(params, expect), params.mean_loc, expect.prec
    )


# ----------------------------------------------------------------- 3. the global updates
def update_weights(stats: SufficientStats, spec: MixtureSpec) -> np.ndarray | None:
    """q(w) = Dirichlet(alpha + N) (Bishop 2006, eq. 10.58); None for fixed weights and for
    dp weights (their sticks: ``sticks.update``)."""
    if spec.fixed_weights or spec.is_dp:
        return None
    return spec.alpha() + stats.counts


def update_means(
    stats: SufficientStats, prec: np.ndarray, spec: MixtureSpec
) -> tuple[np.ndarray, np.ndarray]:
    """q(mu_kd) = N(m_kd, s2_kd) given E[tau] = ``prec``; returns (m, s2), each (K, D).

    The posterior of a Gaussian mean with known precision (Bishop 2006, eqs. 2.141-2.142)
    with point i counted r_ik times and E[tau] for the precision::

        1 / s2_kd = 1 / s0_d^2 + E[tau_kd] N_k
        m_kd      = s2_kd (m0_d / s0_d^2 + E[tau_kd] N_k x̄_kd)

    (Blei et al. 2017, §3: the same update with s0 = sigma, m0 = 0 and E[tau] = 1). EM's
    MAP step uses it too, with the point estimate of tau (``pointmass.m_step``).
    """
    n_features = stats.means.shape[1]
    prior_prec = spec.prior_sd(n_features) ** -2.0
    post_prec = prior_prec + prec * stats.counts[:, None]
    data_pull = prec * stats.counts[:, None] * stats.means
    return (spec.prior_mean(n_features) * prior_prec + data_pull) / post_prec, 1.0 / post_prec


def update_precisions(
    stats: SufficientStats, mean_loc: np.ndarray, mean_var: np.ndarray, spec: MixtureSpec
) -> tuple[np.ndarray, np.ndarray]:
    """q(tau_kd) = Gamma(a_kd, b_kd) given q(mu) = N(mean_loc, mean_var); returns (a, b).

    The posterior of a Gaussian precision with known mean (Bishop 2006, eqs. 2.150-2.151),
    point i counted r_ik times and (x - mu)^2 replaced by its expectation under q(mu)::

        a_kd = a0 + N_k / 2
        b_kd = b0 + 1/2 sum_i r_ik E[(x_id - mu_kd)^2]
             = b0 + 1/2 N_k (S_kd + (x̄_kd - m_kd)^2 + s2_kd)

    Called with the *new* q(mu), so one sweep updates q(mu) then q(tau).
    """
    counts = stats.counts[:, None]
    shape = spec.precision_prior_shape + 0.5 * counts * np.ones_like(mean_loc)
    rate = spec.precision_prior_rate + 0.5 * (weighted_sq_dev(stats, mean_loc) + counts * mean_var)
    return shape, rate


def update_spherical_precisions(
    stats: SufficientStats, mean_loc: np.ndarray, mean_var: np.ndarray, spec: MixtureSpec
) -> tuple[np.ndarray, np.ndarray]:
    """q(tau_k) = Gamma(a_k, b_k) for ``covariance="spherical"`` (Sigma_k = I / tau_k).

    As :func:`update_precisions` with the D features of a point sharing one tau_k, so
    each point brings D squared deviations (Bishop 2006, eqs. 2.150-2.151)::

        a_k = a0 + D N_k / 2
        b_k = b0 + 1/2 sum_d N_k (S_kd + (x̄_kd - m_kd)^2 + s2_kd)

    Returns (a, b), each of shape (n_components,).
    """
    n_features = mean_loc.shape[1]
    shape = spec.precision_prior_shape + 0.5 * n_features * stats.counts
    sq_dev = weighted_sq_dev(stats, mean_loc) + stats.counts[:, None] * mean_var
    return shape, spec.precision_prior_rate + 0.5 * sq_dev.sum(axis=1)


def update_globals(stats: SufficientStats, spec: MixtureSpec, prec: np.ndarray) -> Params:
    """q(w) (dp: q(v) and q(alpha), jointly; ``sticks.update``), then q(mu) given E[tau] =
    ``prec`` (the current q(tau)), then q(tau) given q(mu)."""
    weight_conc = update_weights(stats, spec)
    factors = sticks.update(stats.counts, spec) if spec.is_dp and not spec.fixed_weights else None
    mean_loc, mean_var = update_means(stats, prec, spec)
    prec_shape = prec_rate = None
    if spec.covariance == "spherical":
        prec_shape, prec_rate = update_spherical_precisions(stats, mean_loc, mean_var, spec)
    elif spec.learned_obs_sd:
        prec_shape, prec_rate = update_precisions(stats, mean_loc, mean_var, spec)
    if factors is None:
        return VariationalParams(mean_loc, mean_var, weight_conc, prec_shape, prec_rate)
    return DPVariationalParams(mean_loc, mean_var, None, prec_shape, prec_rate, *factors)


def initial_params(points: np.ndarray, spec: MixtureSpec, centers: np.ndarray) -> Params:
    """The global factors after hard-assigning every point to its nearest center.

    Parameters
    ----------
    points : ndarray of shape (n_samples, n_features)
    centers : ndarray of shape (n_components, n_features)

    Notes
    -----
    r_ik = [k is the nearest center] plays the role of sklearn's k-means responsibilities;
    one global update turns it into a q that respects the priors. The q(mu) update needs
    E[tau]: the prior mean a0/b0 when learned, the known precision otherwise. For dp weights
    the centers are relabelled by decreasing hard count first (``sticks.size_biased``), the
    order the stick-breaking prior favours.
    """
    if spec.learned_obs_sd or spec.covariance == "spherical":
        start_prec = np.full_like(centers, spec.precision_prior_shape / spec.precision_prior_rate)
    else:
        start_prec = spec.known_obs_sd(points.shape[1]) ** -2.0
    hard = sticks.size_biased(hard_assignment_stats(points, centers), spec)
    return update_globals(hard, spec, start_prec)


# ----------------------------------------------------------------- SVI's step
def natural_step(old: Params, target: Params, rho: float) -> Params:
    """(1 - rho) old + rho target in each factor's natural parameters (Hoffman et al. 2013).

    q(mu_kd): 1/s2 and m/s2; q(w): conc (dp: ``sticks.natural_step``); q(tau): shape and
    rate. (``stats.scaled`` makes the minibatch statistics that ``target`` is computed from.)
    """
    old_prec, target_prec = 1.0 / old.mean_var, 1.0 / target.mean_var
    prec = (1.0 - rho) * old_prec + rho * target_prec
    loc = ((1.0 - rho) * old_prec * old.mean_loc + rho * target_prec * target.mean_loc) / prec

    def mix(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
        return None if a is None or b is None else (1.0 - rho) * a + rho * b

    mixed = VariationalParams(
        loc,
        1.0 / prec,
        mix(old.weight_conc, target.weight_conc),
        mix(old.prec_shape, target.prec_shape),
        mix(old.prec_rate, target.prec_rate),
    )
    factors = sticks.natural_step_of(old, target, rho)
    return mixed if factors is None else DPVariationalParams(*mixed, *factors)


# ----------------------------------------------------------------- draws and labels
def values_per_draw(spec: MixtureSpec, n_features: int) -> int:
    """Floats one stored draw from q holds: means (K, D), weights (K), obs_sd (K, D), and for
    dp the T - 1 sticks (and alpha when learned)."""
    return spec.n_components * (2 * n_features + 1) + sticks.values_per_draw(spec)


def draws_from_q(
    params: Params, spec: MixtureSpec, n_draws: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Draws of means (1, S, K, D), weights (1, S, K) and obs_sd (1, S, K, D) or None."""
    return draws_with_extras(params, spec, n_draws, rng)[:3]


def draws_with_extras(
    params: Params, spec: MixtureSpec, n_draws: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, dict[str, np.ndarray]]:
    """:func:`draws_from_q` and the dp draws ``dp_sticks`` (1, S, T - 1) and ``dp_alpha``
    (1, S) (``sticks.weight_draws``; an empty dict for other weights)."""
    n_components, n_features = params.mean_loc.shape
    means = rng.normal(
        params.mean_loc, np.sqrt(params.mean_var), size=(1, n_draws, n_components, n_features)
    )
    weights, extras = sticks.weight_draws(params, spec, n_draws, rng)
    obs_sd = None
    if params.prec_shape is not None and params.prec_rate is not None:
        if params.prec_shape.ndim == 1:  # spherical: one sd per component, equal across D
            tau = rng.gamma(
                params.prec_shape, 1.0 / params.prec_rate, size=(1, n_draws, n_components)
            )
            obs_sd = np.repeat(tau[..., None] ** -0.5, n_features, axis=3)
        else:
            tau = rng.gamma(
                params.prec_shape,
                1.0 / params.prec_rate,
                size=(1, n_draws, n_components, n_features),
            )
            obs_sd = tau**-0.5
    return means, weights, obs_sd, extras


def sorted_by_first_feature(params: Params) -> Params:
    """The same q with components relabelled so that mean_loc[:, 0] increases."""
    order = np.argsort(params.mean_loc[:, 0], kind="stable")

    def sort(values: np.ndarray | None) -> np.ndarray | None:
        return None if values is None else values[order]

    return params._replace(
        mean_loc=params.mean_loc[order],
        mean_var=params.mean_var[order],
        weight_conc=sort(params.weight_conc),
        prec_shape=sort(params.prec_shape),
        prec_rate=sort(params.prec_rate),
    )
