"""CAVI's and SVI's mean-field family for full and tied covariances: Gaussian-Wishart factors.

The model (``model/spec.py``, ``covariance="full"`` or ``"tied"``)::

    mu_k ~ N(m0, diag(s0^2))     w ~ Dirichlet(alpha) or w = 1/K     z_i ~ Cat(w)
    x_i | z_i = k ~ N(mu_k, Lambda_k^{-1})
    Lambda_k ~ Wishart(nu0, W0)        ("full", obs_cov="learned"; mean nu0 W0)
    Lambda_k = Sigma_k^{-1} known      ("full", a known obs_cov)
    Lambda_k = Lambda ~ Wishart(nu0, W0) for every k        ("tied")

The family (Bishop 2006, §10.2, with the semi-conjugate prior of ``meanfield.py``: the
means are independent of the precisions a priori, so q(mu) and q(Lambda) are two
coordinates, not Bishop's joint Gaussian-Wishart)::

    q = prod_i Cat(z_i | r_i) prod_k N(mu_k | m_k, C_k) x Dir(w | alpha_hat)
        x prod_k Wishart(Lambda_k | nu_k, W_k)          (one Wishart factor when tied)

Read in this order:

1. :func:`expectations`: E[log w_k], E[Lambda_k] = nu_k W_k (Bishop 2006, eq. 10.62 text /
   B.80) and E[log |Lambda_k|] = sum_i psi((nu_k + 1 - i)/2) + D log 2 + log |W_k|
   (eq. 10.65 / B.81);
2. :func:`log_rho_constants` and :func:`local_pass`: the local step
   ``log rho_ik = log_const_k - 1/2 (x_i - m_k)^T E[Lambda_k] (x_i - m_k)`` (eq. 10.46 with
   eq. 10.64), reduced by ``stats_full.full_pass`` to N_k, x̄_k and the full scatter S_k
   (eqs. 10.51-10.53);
3. :func:`update_means`, :func:`update_precisions`: the global factors (composed by
   :func:`update_globals`);
4. ``fullcov_elbo.py``: the objective as named terms.

``weights="dp"``: the stick factors q(v_k) = Beta (and q(alpha) = Gamma) replace the
Dirichlet, as in ``meanfield.py`` (fields ``stick_a``, ``stick_b``, ``alpha_shape``,
``alpha_rate``; the math in ``sticks.py``).

A tied model stores its one Wishart factor with a leading axis of length 1
(``wishart_dof`` (1,), ``wishart_scale`` (1, D, D)); arrays broadcast against K.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ppl_mixtures.inference.conjugate import sticks
from ppl_mixtures.inference.conjugate.stats_full import (
    FullStats,
    full_pass,
    hard_assignment_full_stats,
)
from ppl_mixtures.model.density import LOG_2PI
from ppl_mixtures.model.priors import wishart_mean_log_det
from ppl_mixtures.model.spec import MixtureSpec

__all__ = [
    "FULL_COVARIANCES",
    "DPFullParams",
    "FullExpectations",
    "FullParams",
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
    "update_weights",
    "values_per_draw",
]

#: The covariance types this family serves ("spherical" lives in ``meanfield.py``).
FULL_COVARIANCES = ("full", "tied")


class FullParams(NamedTuple):
    """The global factors of q for full or tied covariances.

    ``weights="dp"`` uses :class:`DPFullParams`: these fields and the stick factors.

    Attributes
    ----------
    mean_loc : ndarray of shape (n_components, n_features)
        m_k of q(mu_k) = N(m_k, C_k).
    mean_cov : ndarray of shape (n_components, n_features, n_features)
        C_k, the covariance of q(mu_k).
    weight_conc : ndarray of shape (n_components,) or None
        q(w) = Dirichlet(weight_conc); None when the spec fixes the weights at 1/K.
    wishart_dof, wishart_scale : ndarray of shape (n_components,) and (n_components, D, D)
        q(Lambda_k) = Wishart(nu_k, W_k) (mean nu_k W_k); shapes (1,) and (1, D, D) for a
        tied covariance (one factor); None for a known obs_cov.
    """

    mean_loc: np.ndarray
    mean_cov: np.ndarray
    weight_conc: np.ndarray | None
    wishart_dof: np.ndarray | None
    wishart_scale: np.ndarray | None


class DPFullParams(NamedTuple):
    """:class:`FullParams` for ``weights="dp"`` (``weight_conc`` None) and the stick factors
    q(v_k) = Beta(stick_a_k, stick_b_k), k < T, and q(alpha) = Gamma(alpha_shape,
    alpha_rate) (None when alpha is fixed), shaped as in ``meanfield.DPVariationalParams``.
    """

    mean_loc: np.ndarray
    mean_cov: np.ndarray
    weight_conc: np.ndarray | None
    wishart_dof: np.ndarray | None
    wishart_scale: np.ndarray | None
    stick_a: np.ndarray | None
    stick_b: np.ndarray | None
    alpha_shape: np.ndarray | None
    alpha_rate: np.ndarray | None


#: Either params record (Dirichlet or fixed weights; dp weights).
type AnyFullParams = FullParams | DPFullParams


# ----------------------------------------------------------------- 1. expectations under q
class FullExpectations(NamedTuple):
    """E[log w_k] (K,), E[Lambda_k] (K, D, D) and E[log |Lambda_k|] (K,) under q."""

    log_weights: np.ndarray
    prec: np.ndarray
    log_det: np.ndarray


def expectations(params: AnyFullParams, spec: MixtureSpec) -> FullExpectations:
    """E[log w], E[Lambda] = nu W (Bishop 2006, B.80) and E[log |Lambda|] (eq. 10.65, B.81).

    A known obs_cov gives Lambda_k = Sigma_k^{-1} and log |Lambda_k| = -log |Sigma_k|;
    a tied factor is broadcast to every component.
    """
    n_components, n_features = params.mean_loc.shape
    log_weights = sticks.log_weight_expectations(params, spec)
    if params.wishart_dof is None or params.wishart_scale is None:
        cov = spec.known_obs_cov(n_features)
        prec = _sym(np.linalg.inv(cov))
        log_det = -np.linalg.slogdet(cov)[1]
    else:
        prec = params.wishart_dof[:, None, None] * params.wishart_scale
        log_det = wishart_mean_log_det(params.wishart_dof, params.wishart_scale)
    shape = (n_components, n_features, n_features)
    return FullExpectations(
        log_weights, np.broadcast_to(prec, shape).copy(), np.broadcast_to(log_det, shape[:1]).copy()
    )


# ----------------------------------------------------------------- 2. the local step
def log_rho_constants(params: AnyFullParams, expect: FullExpectations) -> np.ndarray:
    """log_const_k of the local step, shape (n_components,).

    The optimal q(z_i) (Bishop 2006, eq. 10.46, with eq. 10.64 for a semi-conjugate q)::

        log rho_ik = E[log w_k] + 1/2 E[log |Lambda_k|] - D/2 log 2 pi
                     - 1/2 (x_i - m_k)^T E[Lambda_k] (x_i - m_k) - 1/2 tr(E[Lambda_k] C_k)

    since E_q[(x - mu)^T Lambda (x - mu)] = (x - m)^T E[Lambda] (x - m) + tr(E[Lambda] C)
    when q(mu) q(Lambda) factorize. The pass adds the quadratic form; the rest is this.
    """
    n_features = params.mean_loc.shape[1]
    trace = np.einsum("kij,kji->k", expect.prec, params.mean_cov)
    return expect.log_weights + 0.5 * expect.log_det - 0.5 * n_features * LOG_2PI - 0.5 * trace


def local_pass(
    backend: str, points: np.ndarray, params: AnyFullParams, expect: FullExpectations
) -> FullStats:
    """q(z) for every point, reduced to N_k, x̄_k, S_k (``stats_full.full_pass``).

    ``backend``: "numba_parallel", "numba" or "numpy", as for the diagonal pass.
    """
    return full_pass(
        points,
        log_rho_constants(params, expect),
        params.mean_loc,
        expect.prec,
        backend=backend,
    )


# ----------------------------------------------------------------- 3. the global updates
def update_weights(stats: FullStats, spec: MixtureSpec) -> np.ndarray | None:
    """q(w) = Dirichlet(alpha + N) (Bishop 2006, eq. 10.58); None for fixed weights and for
    dp weights (their sticks: ``sticks.update``)."""
    if spec.fixed_weights or spec.is_dp:
        return None
    return spec.alpha() + stats.counts


def update_means(
    stats: FullStats, prec: np.ndarray, spec: MixtureSpec
) -> tuple[np.ndarray, np.ndarray]:
    """q(mu_k) = N(m_k, C_k) given E[Lambda_k] = ``prec`` (K, D, D); returns (m, C).

    The posterior of a Gaussian mean with known precision (Bishop 2006, eqs. 2.113-2.117
    as in eq. 10.60), point i counted r_ik times and E[Lambda_k] for the precision::

        C_k^{-1} = diag(1 / s0^2) + N_k E[Lambda_k]
        m_k      = C_k (diag(1 / s0^2) m0 + N_k E[Lambda_k] x̄_k)
    """
    n_features = stats.means.shape[1]
    prior_prec = spec.prior_sd(n_features) ** -2.0
    post_prec = np.diag(prior_prec)[None] + stats.counts[:, None, None] * prec
    data_pull = stats.counts[:, None] * np.einsum("kij,kj->ki", prec, stats.means)
    cov = _sym(np.linalg.inv(post_prec))
    loc = np.einsum("kij,kj->ki", cov, spec.prior_mean(n_features) * prior_prec + data_pull)
    return loc, cov


def expected_scatter(stats: FullStats, mean_loc: np.ndarray, mean_cov: np.ndarray) -> np.ndarray:
    """sum_i r_ik E_q(mu)[(x_i - mu_k)(x_i - mu_k)^T] = N_k (S_k + d_k d_k^T + C_k), (K, D, D).

    d_k = x̄_k - m_k. The one place this matrix is formed (q(Lambda)'s update, the ELBO).
    """
    dev = stats.means - mean_loc
    outer = dev[:, :, None] * dev[:, None, :]
    return stats.counts[:, None, None] * (stats.scatter + outer + mean_cov)


def update_precisions(
    stats: FullStats, mean_loc: np.ndarray, mean_cov: np.ndarray, spec: MixtureSpec
) -> tuple[np.ndarray, np.ndarray]:
    """q(Lambda) = Wishart(nu, W) given q(mu); returns (nu, W) per factor.

    The posterior of a Gaussian precision with known mean (Bishop 2006, eqs. 10.62-10.63
    with the mean's uncertainty C_k added, as the semi-conjugate q(mu) requires)::

        nu_k     = nu0 + N_k
        W_k^{-1} = W0^{-1} + N_k (S_k + (x̄_k - m_k)(x̄_k - m_k)^T + C_k)

    Tied (one Lambda): nu = nu0 + sum_k N_k, W^{-1} = W0^{-1} + sum_k (the same matrices).
    """
    n_features = mean_loc.shape[1]
    prior_dof = spec.wishart_dof(n_features)
    prior_scale_inv = np.linalg.inv(spec.wishart_scale(n_features))
    scatter = expected_scatter(stats, mean_loc, mean_cov)
    counts = stats.counts
    if spec.covariance == "tied":
        scatter, counts = scatter.sum(axis=0, keepdims=True), counts.sum(keepdims=True)
    dof = prior_dof + counts
    scale = _sym(np.linalg.inv(prior_scale_inv[None] + scatter))
    return dof, scale


def update_globals(stats: FullStats, spec: MixtureSpec, prec: np.ndarray) -> AnyFullParams:
    """q(w) (dp: q(v) and q(alpha) jointly, ``sticks.update``), then q(mu) given E[Lambda] =
    ``prec`` (the current q(Lambda)), then q(Lambda)."""
    weight_conc = update_weights(stats, spec)
    factors = sticks.update(stats.counts, spec) if spec.is_dp and not spec.fixed_weights else None
    mean_loc, mean_cov = update_means(stats, prec, spec)
    dof = scale = None
    if spec.learned_covariance:
        dof, scale = update_precisions(stats, mean_loc, mean_cov, spec)
    if factors is None:
        return FullParams(mean_loc, mean_cov, weight_conc, dof, scale)
    return DPFullParams(mean_loc, mean_cov, None, dof, scale, *factors)


def initial_params(points: np.ndarray, spec: MixtureSpec, centers: np.ndarray) -> AnyFullParams:
    """The global factors after hard-assigning every point to its nearest center.

    As ``meanfield.initial_params``: q(mu)'s update needs E[Lambda], the prior mean
    nu0 W0 when learned, Sigma^{-1} when known; dp relabels the centers by decreasing hard
    count (``sticks.size_biased``).
    """
    n_components, n_features = centers.shape
    if spec.learned_covariance:
        start = spec.wishart_dof(n_features) * spec.wishart_scale(n_features)
    else:
        start = np.linalg.inv(spec.known_obs_cov(n_features))
    prec = np.broadcast_to(start, (n_components, n_features, n_features)).copy()
    hard = sticks.size_biased(hard_assignment_full_stats(points, centers), spec)
    return update_globals(hard, spec, prec)


# ----------------------------------------------------------------- SVI's pieces
def scaled(stats: FullStats, factor: float) -> FullStats:
    """The statistics of ``factor`` copies of the data (counts and sums scale; x̄, S do not)."""
    return FullStats(
        stats.counts * factor,
        stats.means,
        stats.scatter,
        stats.entropy * factor,
        stats.sum_log_norm * factor,
    )


def natural_step(old: AnyFullParams, target: AnyFullParams, rho: float) -> AnyFullParams:
    """(1 - rho) old + rho target in each factor's natural parameters (Hoffman et al. 2013).

    q(mu_k): the precision C^{-1} and C^{-1} m; q(w): conc (dp: ``sticks.natural_step``);
    q(Lambda): nu and W^{-1} (the
    Wishart's natural parameters are (nu - D - 1)/2 and -W^{-1}/2, linear in these).
    """
    old_prec, target_prec = np.linalg.inv(old.mean_cov), np.linalg.inv(target.mean_cov)
    prec = (1.0 - rho) * old_prec + rho * target_prec
    shift = (1.0 - rho) * np.einsum("kij,kj->ki", old_prec, old.mean_loc) + rho * np.einsum(
        "kij,kj->ki", target_prec, target.mean_loc
    )
    cov = _sym(np.linalg.inv(prec))
    loc = np.einsum("kij,kj->ki", cov, shift)

    def mix(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
        return None if a is None or b is None else (1.0 - rho) * a + rho * b

    scale = None
    if old.wishart_scale is not None and target.wishart_scale is not None:
        inv = (1.0 - rho) * np.linalg.inv(old.wishart_scale) + rho * np.linalg.inv(
            target.wishart_scale
        )
        scale = _sym(np.linalg.inv(inv))
    mixed = FullParams(
        loc,
        cov,
        mix(old.weight_conc, target.weight_conc),
        mix(old.wishart_dof, target.wishart_dof),
        scale,
    )
    factors = sticks.natural_step_of(old, target, rho)
    return mixed if factors is None else DPFullParams(*mixed, *factors)


# ----------------------------------------------------------------- draws and labels
def values_per_draw(spec: MixtureSpec, n_features: int) -> int:
    """Floats one stored draw holds: means, weights, and for learned covariances obs_cov,
    obs_corr (K, D, D each) and obs_sd (K, D)."""
    per_component = n_features + 1
    if spec.learned_covariance:
        per_component += 2 * n_features * n_features + n_features
    return spec.n_components * per_component + sticks.values_per_draw(spec)


def draws_from_q(
    params: AnyFullParams, spec: MixtureSpec, n_draws: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Draws of means (1, S, K, D), weights (1, S, K) and obs_cov (1, S, K, D, D) or None.

    obs_cov holds Sigma_k = Lambda_k^{-1} for Lambda_k drawn from q(Lambda_k) (Bartlett
    decomposition); tied: one draw per sample, the same matrix for every component.
    """
    return draws_with_extras(params, spec, n_draws, rng)[:3]


def draws_with_extras(
    params: AnyFullParams, spec: MixtureSpec, n_draws: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, dict[str, np.ndarray]]:
    """:func:`draws_from_q` and the dp draws ``dp_sticks`` / ``dp_alpha``
    (``sticks.weight_draws``; an empty dict for other weights)."""
    n_components, n_features = params.mean_loc.shape
    chol = np.linalg.cholesky(params.mean_cov)
    noise = rng.normal(size=(n_draws, n_components, n_features))
    means = (params.mean_loc + np.einsum("kij,skj->ski", chol, noise))[None]
    weights, extras = sticks.weight_draws(params, spec, n_draws, rng)
    if params.wishart_dof is None or params.wishart_scale is None:
        return means, weights, None, extras
    prec = _wishart_draws(params.wishart_dof, params.wishart_scale, n_draws, rng)  # (S, F, D, D)
    cov = _sym(np.linalg.inv(prec))
    cov = np.broadcast_to(cov, (n_draws, n_components, n_features, n_features))
    return means, weights, cov[None].copy(), extras


def _wishart_draws(
    dof: np.ndarray, scale: np.ndarray, n_draws: int, rng: np.random.Generator
) -> np.ndarray:
    """Lambda ~ Wishart(dof_f, scale_f) for each factor f: Bartlett, shape (S, F, D, D).

    Lambda = L A A^T L^T with L L^T = scale, A lower triangular, A_ii^2 ~ chi2(dof - i + 1)
    (i = 1..D), A_ij ~ N(0, 1) below the diagonal (Bartlett 1933; Smith & Hocking 1972).
    """
    n_factors, n_features = dof.shape[0], scale.shape[-1]
    lower = np.tril(rng.normal(size=(n_draws, n_factors, n_features, n_features)), -1)
    chi2 = rng.chisquare(
        dof[None, :, None] - np.arange(n_features), size=(n_draws, n_factors, n_features)
    )
    factor = lower + np.sqrt(chi2)[..., None] * np.eye(n_features)
    root = np.einsum("fij,sfjk->sfik", np.linalg.cholesky(scale), factor)
    return root @ np.swapaxes(root, -1, -2)


def sorted_by_first_feature(params: AnyFullParams) -> AnyFullParams:
    """The same q with components relabelled so that mean_loc[:, 0] increases (a tied
    factor, shared by all, is left as it is)."""
    n_components = params.mean_loc.shape[0]
    order = np.argsort(params.mean_loc[:, 0], kind="stable")

    def sort(values: Any) -> Any:  # (the dp fields are never sorted: dp refuses ordered)
        if values is None or values.shape[0] != n_components:
            return values
        return values[order]

    return type(params)(*(sort(values) for values in params))


def _sym(matrices: np.ndarray) -> np.ndarray:
    """(A + A^T) / 2 over the last two axes: inverses symmetric to the last bit."""
    return 0.5 * (matrices + np.swapaxes(matrices, -1, -2))
