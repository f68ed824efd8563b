"""EM's M-step: the point-mass case of the conjugate core, from the same SufficientStats.

(Slightly over ~400 lines: one M-step per covariance type, read side by side.)

Where CAVI keeps distributions q(w), q(mu), q(tau), EM keeps one value of each (an
:class:`EmState`). Its E-step is CAVI's pass with the values in place of expectations
(:func:`log_const`), and its M-step (:func:`m_step`) reads the same N_k, x̄_k, S_k:

- maximum likelihood: Bishop (2006), eqs. 9.24-9.26 with diagonal covariances;
- MAP: CAVI's updates (``meanfield.update_means``, ``update_precisions``) with q(mu) a point
  mass, taking the mode of the Gamma instead of the distribution;

and MAP's objective adds the ELBO's prior terms at a point mass (:func:`log_prior`).

The covariance types (``spec.covariance``), one M-step each, chosen through
:data:`M_STEPS` (Bishop 2006, eqs. 9.24-9.26; scikit-learn's ``GaussianMixture``):

- ``"diag"``: variances (K, D) from the diagonal statistics of ``stats.one_pass``;
- ``"spherical"``: one variance per component, the mean over features of the diagonal
  scatter (the same diagonal pass; the state keeps it repeated over D);
- ``"full"``: Sigma_k = S_k + reg I from ``stats_full.full_pass``, or a known ``obs_cov``;
- ``"tied"``: Sigma = sum_k N_k S_k / N + reg I, one matrix for every component.

MAP replaces each ML covariance by the mode of its conditional posterior: Gamma on
tau = 1/variance (diag, spherical), Wishart on Lambda = Sigma^-1 (full, tied).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from ppl_mixtures.inference.conjugate import chunked
from ppl_mixtures.inference.conjugate.meanfield import update_means, update_precisions
from ppl_mixtures.inference.conjugate.stats import SufficientStats, weighted_sq_dev
from ppl_mixtures.inference.conjugate.stats_full import FullStats
from ppl_mixtures.model.density import LOG_2PI
from ppl_mixtures.model.priors import (
    dirichlet_log_prior,
    gamma_log_prior,
    normal_log_prior,
    wishart_log_prior,
)
from ppl_mixtures.model.spec import MixtureSpec

__all__ = [
    "M_STEPS",
    "PRIORS",
    "EmState",
    "full_state",
    "log_const",
    "log_prior",
    "m_step",
    "precisions",
    "start_state",
]

#: ``"none"``: maximum likelihood; ``"map"``: maximum a posteriori under the spec's priors.
PRIORS = ("none", "map")
#: (weights, means, variances (K, D) or covariances (K, D, D)): what an M-step returns.
_Update = tuple[np.ndarray, np.ndarray, np.ndarray]
# scikit-learn's guard against empty components (GaussianMixture._estimate_gaussian_parameters)
_EMPTY_GUARD = 10.0 * np.finfo(np.float64).eps


class EmState(NamedTuple):
    """Loop state of EM (the current point estimate).

    Attributes
    ----------
    weights : ndarray of shape (n_components,)
    means : ndarray of shape (n_components, n_features)
    variances : ndarray of shape (n_components, n_features)
        Observation variances sd^2 (fixed at the spec's value when obs_sd is known); for
        ``"spherical"`` one value per component repeated over the features; for ``"full"``
        and ``"tied"`` the diagonal of ``covariances`` (read-only, for display).
    objective : float
        The objective (log-likelihood, or log joint for MAP) of the *previous* state,
        computed in the E-step of the step that produced this one; -inf after init.
    n_iter : int
    covariances : ndarray of shape (n_components, n_features, n_features) or None
        ``"full"`` and ``"tied"`` (the same matrix K times): the covariances, which the
        E-step reads; None for ``"diag"`` and ``"spherical"``. Build such a state with
        :func:`full_state`.
    """

    weights: np.ndarray
    means: np.ndarray
    variances: np.ndarray
    objective: float
    n_iter: int
    covariances: np.ndarray | None = None


def full_state(
    weights: np.ndarray,
    means: np.ndarray,
    covariances: np.ndarray,
    objective: float = -np.inf,
    n_iter: int = 0,
) -> EmState:
    """An :class:`EmState` with full covariances (K, D, D); ``variances`` is their diagonal."""
    covariances = np.asarray(covariances, dtype=np.float64)
    variances = np.diagonal(covariances, axis1=1, axis2=2).copy()
    return EmState(weights, means, variances, objective, n_iter, covariances)


def precisions(state: EmState) -> np.ndarray:
    """The E-step's precisions: Sigma_k^-1 (K, D, D) for full/tied states, else 1/variances."""
    if state.covariances is None:
        return 1.0 / state.variances
    inverse = np.linalg.inv(state.covariances)
    return 0.5 * (inverse + np.swapaxes(inverse, 1, 2))  # symmetric to the last bit


# ----------------------------------------------------------------- objective
def log_prior(state: EmState, spec: MixtureSpec) -> float:
    """log p(w, mu, tau) of the spec's priors at a point estimate (MAP's extra term).

    The ELBO's prior terms (``elbo.py``) at a point mass: means Normal(m0, s0^2); weights
    Dirichlet(max(alpha, 1)) (see :func:`_map_weights`); precisions tau = 1/variance
    Gamma(a0, b0) (a density on tau), only when learned; for ``"spherical"`` one tau_k per
    component; for learned ``"full"`` Lambda_k = Sigma_k^-1 ~ Wishart(dof, scale) per
    component, for ``"tied"`` one Lambda (densities on Lambda).
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
    if spec.learned_obs_sd or spec.covariance == "spherical":
        tau = 1.0 / (state.variances if spec.learned_obs_sd else state.variances[:, 0])
        total += np.sum(
            gamma_log_prior(tau, np.log(tau), spec.precision_prior_shape, spec.precision_prior_rate)
        )
    elif spec.covariance in ("full", "tied") and spec.learned_covariance:
        prec = precisions(state)[: 1 if spec.covariance == "tied" else None]
        total += np.sum(
            wishart_log_prior(
                prec,
                np.linalg.slogdet(prec)[1],
                spec.wishart_dof(n_features),
                spec.wishart_scale(n_features),
            )
        )
    return float(total)


def log_const(state: EmState) -> np.ndarray:
    """log w_k + log N-normalizer, shape (n_components,) (the pass adds the rest).

    Diagonal: log w_k - 1/2 sum_d log(2 pi var_kd); full: log w_k - 1/2 log|2 pi Sigma_k|.
    """
    with np.errstate(divide="ignore"):
        log_w = np.log(state.weights)
    if state.covariances is None:
        return log_w - 0.5 * np.sum(LOG_2PI + np.log(state.variances), axis=1)
    n_features = state.means.shape[1]
    return log_w - 0.5 * (n_features * LOG_2PI + np.linalg.slogdet(state.covariances)[1])


# ----------------------------------------------------------------- start
def _start_diag(
    points: np.ndarray, spec: MixtureSpec, centers: np.ndarray, reg_covar: float
) -> EmState:
    """Known variances, or the data's variance per feature (+ reg) for every component."""
    if spec.learned_obs_sd:
        variances = np.broadcast_to(_variance(points) + reg_covar, centers.shape).copy()
    else:
        variances = spec.known_obs_sd(points.shape[1]) ** 2
    return EmState(spec.fixed_weight_values(), centers, variances, -np.inf, 0)


def _start_spherical(
    points: np.ndarray, spec: MixtureSpec, centers: np.ndarray, reg_covar: float
) -> EmState:
    """The data's variance averaged over features (+ reg), for every component."""
    variances = np.full(centers.shape, _variance(points).mean() + reg_covar)
    return EmState(spec.fixed_weight_values(), centers, variances, -np.inf, 0)


def _start_full(
    points: np.ndarray, spec: MixtureSpec, centers: np.ndarray, reg_covar: float
) -> EmState:
    """Known covariances, or the data's covariance (+ reg I) for every component."""
    n_components, n_features = centers.shape
    if spec.covariance == "full" and not spec.learned_covariance:
        covariances = spec.known_obs_cov(n_features)
    elif isinstance(points, chunked.ChunkedPoints):
        data_cov = chunked.data_moments(points).covariance + reg_covar * np.eye(n_features)
        covariances = np.broadcast_to(data_cov, (n_components, n_features, n_features))
    else:
        dev = points - points.mean(axis=0)
        data_cov = dev.T @ dev / points.shape[0] + reg_covar * np.eye(n_features)
        covariances = np.broadcast_to(data_cov, (n_components, n_features, n_features))
    return full_state(spec.fixed_weight_values(), centers, covariances)


def _variance(points: np.ndarray) -> np.ndarray:
    """The data's variance per feature (chunked data: from ``chunked.data_moments``)."""
    if isinstance(points, chunked.ChunkedPoints):
        return chunked.data_moments(points).variance
    return points.var(axis=0)


_STARTS = {
    "diag": _start_diag,
    "spherical": _start_spherical,
    "full": _start_full,
    "tied": _start_full,
}


def start_state(
    points: np.ndarray, spec: MixtureSpec, centers: np.ndarray, reg_covar: float
) -> EmState:
    """The state init's first M-step starts from: ``centers``, fixed or 1/K weights, and the
    known covariance or the data's (+ reg) for every component.

    Its means are the "previous" ones of the empty-component guard, its covariances the old
    precision of MAP's mean update.
    """
    return _STARTS[spec.covariance](points, spec, centers, reg_covar)


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


def _guarded_full(stats: FullStats, previous_means: np.ndarray) -> FullStats:
    """:func:`_guarded` for full scatter: the phantoms add share (1 - share) gap gap^T."""
    counts = stats.counts + _EMPTY_GUARD
    share = (_EMPTY_GUARD / counts)[:, None]
    gap = previous_means - stats.means
    means = stats.means + share * gap
    outer = gap[:, :, None] * gap[:, None, :]
    scatter = (1.0 - share)[:, :, None] * (stats.scatter + share[:, :, None] * outer)
    return FullStats(counts, means, scatter, stats.entropy, stats.sum_log_norm)


def _weights(
    guarded_counts: np.ndarray, counts: np.ndarray, state: EmState, spec: MixtureSpec, prior: str
) -> np.ndarray:
    """w_k = N_k / N (ML, eq. 9.26), the Dirichlet mode (MAP), or the fixed 1/K."""
    if spec.fixed_weights:
        return state.weights
    if prior == "none":
        return guarded_counts / guarded_counts.sum()
    return _map_weights(counts, spec.alpha())


def _m_diag(
    stats: SufficientStats, state: EmState, spec: MixtureSpec, prior: str, reg: float
) -> _Update:
    """Diagonal covariances (see :func:`m_step`)."""
    guarded = _guarded(stats, state.means)
    if prior == "none":
        means = guarded.means
    else:
        means = update_means(guarded, 1.0 / state.variances, spec)[0]
    if not spec.learned_obs_sd:
        variances = state.variances
    elif prior == "none":
        variances = guarded.scatter + reg
    else:
        shape, rate = update_precisions(guarded, means, np.zeros_like(means), spec)
        variances = rate / np.maximum(shape - 1.0, np.finfo(float).tiny)
    return _weights(guarded.counts, stats.counts, state, spec, prior), means, variances


def _m_spherical(
    stats: SufficientStats, state: EmState, spec: MixtureSpec, prior: str, reg: float
) -> _Update:
    """One variance per component from the diagonal statistics.

    ML: sigma_k^2 = mean_d S_kd + reg (scikit-learn's "spherical"). MAP: mu at the old tau
    (``update_means``), then the mode (a - 1) / b of tau_k's conditional posterior
    Gamma(a0 + N_k D / 2, b0 + 1/2 sum_d N_k (S_kd + (x̄_kd - mu_kd)^2)).
    """
    guarded = _guarded(stats, state.means)
    n_features = stats.means.shape[1]
    if prior == "none":
        means = guarded.means
        variance = guarded.scatter.mean(axis=1) + reg
    else:
        means = update_means(guarded, 1.0 / state.variances, spec)[0]
        shape = spec.precision_prior_shape + 0.5 * n_features * guarded.counts
        rate = spec.precision_prior_rate + 0.5 * weighted_sq_dev(guarded, means).sum(axis=1)
        variance = rate / np.maximum(shape - 1.0, np.finfo(float).tiny)
    variances = np.repeat(variance[:, None], n_features, axis=1)
    return _weights(guarded.counts, stats.counts, state, spec, prior), means, variances


def _map_means_full(stats: FullStats, prec: np.ndarray, spec: MixtureSpec) -> np.ndarray:
    """argmax_mu of N(mu | m0, diag(s0^2)) prod_i N(x_i | mu, P^-1)^r_ik, per component.

    (diag(1/s0^2) + N_k P_k) mu_k = m0 / s0^2 + N_k P_k x̄_k      (Bishop 2006, eq. 2.116)
    """
    n_features = stats.means.shape[1]
    prior_prec = spec.prior_sd(n_features) ** -2.0
    data_prec = stats.counts[:, None, None] * prec
    system = data_prec + np.diag(prior_prec)[None]
    rhs = spec.prior_mean(n_features) * prior_prec + np.einsum("kde,ke->kd", data_prec, stats.means)
    return np.linalg.solve(system, rhs[:, :, None])[:, :, 0]


def _spread(stats: FullStats, means: np.ndarray) -> np.ndarray:
    """sum_i r_ik (x_i - mu_k)(x_i - mu_k)^T = N_k (S_k + d_k d_k^T), d = x̄ - mu; (K, D, D)."""
    gap = stats.means - means
    return stats.counts[:, None, None] * (stats.scatter + gap[:, :, None] * gap[:, None, :])


def _wishart_mode_cov(spread: np.ndarray, count: np.ndarray, spec: MixtureSpec) -> np.ndarray:
    """Sigma = Lambda_mode^-1 of Lambda | mu ~ Wishart(dof + N, (scale^-1 + spread)^-1).

    The mode of Wishart(nu, W) is (nu - D - 1) W (Bishop 2006, eq. B.78 ff.), so
    Sigma = (scale^-1 + spread) / (dof + N - D - 1), the denominator kept > 0 as for the Gamma.
    """
    n_features = spread.shape[-1]
    inv_scale = np.linalg.inv(spec.wishart_scale(n_features))
    denom = spec.wishart_dof(n_features) + count - n_features - 1.0
    return (inv_scale + spread) / np.maximum(denom, np.finfo(float).tiny)[..., None, None]


def _m_full(stats: FullStats, state: EmState, spec: MixtureSpec, prior: str, reg: float) -> _Update:
    """Full covariances: Sigma_k = S_k + reg I (ML, eq. 9.25), the Wishart mode (MAP), or known."""
    guarded = _guarded_full(stats, state.means)
    n_features = stats.means.shape[1]
    if prior == "none":
        means = guarded.means
    else:
        means = _map_means_full(guarded, precisions(state), spec)
    if not spec.learned_covariance:
        assert state.covariances is not None  # a known full obs_cov: full_state set it
        covariances = state.covariances
    elif prior == "none":
        covariances = guarded.scatter + reg * np.eye(n_features)
    else:
        covariances = _wishart_mode_cov(_spread(guarded, means), guarded.counts, spec)
    return _weights(guarded.counts, stats.counts, state, spec, prior), means, covariances


def _m_tied(stats: FullStats, state: EmState, spec: MixtureSpec, prior: str, reg: float) -> _Update:
    """One covariance: sum_k N_k S_k / N + reg I (ML), or the Wishart mode of the pooled spread."""
    guarded = _guarded_full(stats, state.means)
    n_components, n_features = stats.means.shape
    if prior == "none":
        means = guarded.means
        pooled = np.einsum("k,kde->de", guarded.counts, guarded.scatter) / guarded.counts.sum()
        shared = pooled + reg * np.eye(n_features)
    else:
        means = _map_means_full(guarded, precisions(state), spec)
        shared = _wishart_mode_cov(_spread(guarded, means).sum(axis=0), guarded.counts.sum(), spec)
    covariances = np.broadcast_to(shared, (n_components, n_features, n_features)).copy()
    return _weights(guarded.counts, stats.counts, state, spec, prior), means, covariances


#: One M-step per covariance type: (stats, state, spec, prior, reg_covar) ->
#: (weights, means, variances (K, D) or covariances (K, D, D)).
M_STEPS: dict[str, Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray]]] = {
    "diag": _m_diag,
    "spherical": _m_spherical,
    "full": _m_full,
    "tied": _m_tied,
}


def m_step(
    stats: SufficientStats | FullStats,
    state: EmState,
    spec: MixtureSpec,
    prior: str,
    reg_covar: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """New (weights, means, covariance parameter) from the E-step's statistics.

    The third item is the variances (n_components, n_features) for ``"diag"`` and
    ``"spherical"`` (a :class:`SufficientStats` in), the covariances (n_components,
    n_features, n_features) for ``"full"`` and ``"tied"`` (a :class:`FullStats` in).

    Notes
    -----
    With N_k, x̄_k, S_k of the responsibilities (guarded as in :func:`_guarded`):

    - ML (Bishop 2006, eqs. 9.24-9.26): mu_k = x̄_k, w_k = N_k / N, and the covariance as
      scikit-learn's ``GaussianMixture`` with ``reg_covar``: diag var_kd = S_kd + reg;
      spherical sigma_k^2 = mean_d S_kd + reg; full Sigma_k = S_k + reg I; tied
      Sigma = sum_k N_k S_k / N + reg I.
    - MAP: an ECM step (Meng & Rubin 1993), since the independent Normal prior on mu couples
      mu and the precision: first mu given the old precision (``meanfield.update_means``;
      for full and tied the same Gaussian update with a matrix precision), then the
      precision at the mode of its conditional posterior given the new mu (Gamma (a - 1)/b
      for diag and spherical; Wishart (nu - D - 1) W for full and tied), and w from
      :func:`_map_weights`. reg_covar is not added in MAP mode: the prior already keeps
      the covariances away from singular.
    - Known covariances (diag obs_sd, full obs_cov) stay as they are.
    """
    return M_STEPS[spec.covariance](stats, state, spec, prior, reg_covar)
