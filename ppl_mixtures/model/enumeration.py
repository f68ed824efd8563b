"""Every assignment of N points to K components, and its collapsed joint log p(x, z).

(A little over ~400 lines: the three weight priors' p(z) sit beside the collapsed terms that
use them.)

The pieces :mod:`ppl_mixtures.model.evidence` sums over all K^N assignments: given z, each
component's mean integrates out against its Normal prior (:func:`log_marginal_normal`),
the weights against their Dirichlet (:func:`log_joint_from_stats`, eq. (1) there), and a
new point's predictive follows in closed form (:func:`log_predictive_given_z`). The
assignments come in blocks of :data:`CHUNK` (:func:`assignment_blocks`) so memory stays at
a few MB whatever K^N.

With a known full covariance (``covariance="full"``) the same three pieces have a
multivariate form (:class:`FullCovarianceTerms`): given z, component k's points share one
mean, so their stacked marginal is Gaussian with covariance I (x) Sigma_k + 11^T (x) S0
(S0 = diag(mean_prior_sd^2)); it is evaluated in information form, through the posterior
precision of the mean, which depends on z only through the count n_k, so its Cholesky
factors are computed once per (k, n) rather than per assignment. :func:`collapsed_terms`
picks the diagonal or the full form from the spec.

Truncated Dirichlet-process weights (``weights="dp"``, T = K): given alpha the sticks are
independent Beta(1, alpha) variables (Ishwaran & James 2001) and prod_i w_{z_i} =
prod_{k<T} v_k^n_k (1 - v_k)^m_k, so each stick integrates out on its own and a
labelled sequence z with counts n_k and m_k = sum_{j>k} n_j has::

    p(z | alpha) = prod_{k<T} B(1 + n_k, alpha + m_k) / B(1, alpha)                      (D1)

and with alpha ~ Gamma(s1, s2), p(z) = int p(z | alpha) Gamma(alpha | s1, s2) d alpha,
computed per distinct count vector by adaptive quadrature in log alpha
(:func:`dp_log_prior_z`). For any weights the next point's label follows from the prior of
the extended sequence: p(z_new = k | z) = p(z, k) / p(z).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy.integrate import quad
from scipy.special import gammaln, logsumexp

from ppl_mixtures.model.density import LOG_2PI
from ppl_mixtures.model.spec import MixtureSpec

__all__ = [
    "CHUNK",
    "DiagonalTerms",
    "FullCovarianceTerms",
    "assignment_blocks",
    "block_stats",
    "collapsed_terms",
    "dp_log_prior_z",
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
    if spec.is_dp:
        return dp_log_prior_z(counts, spec)
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
    log_w = _log_component_weights(counts, n_samples, spec)  # (A, K)
    diff = new[None, :, None, :] - mean[:, None, :, :]  # (A, M, K, D)
    log_norm = -0.5 * (np.log(2.0 * np.pi * var)[:, None] + diff**2 / var[:, None]).sum(-1)
    return logsumexp(log_w[:, None, :] + log_norm, axis=-1)


def _log_component_weights(counts: np.ndarray, n_samples: int, spec: MixtureSpec) -> np.ndarray:
    """log p(z_new = k | z): (alpha_k + n_k) / (sum(alpha) + N), or 1/K, or for dp
    p(z, k) / p(z) by (D1); shape (A, K)."""
    if spec.fixed_weights:
        return np.full(counts.shape, -np.log(spec.n_components))
    if spec.is_dp:
        extended = counts[:, None, :] + np.eye(spec.n_components)  # (A, K, K): z then k
        flat = dp_log_prior_z(extended.reshape(-1, spec.n_components), spec)
        return flat.reshape(counts.shape) - dp_log_prior_z(counts, spec)[:, None]
    alpha = spec.alpha()
    return np.log(alpha + counts) - np.log(alpha.sum() + n_samples)


def _dp_log_prior_given_alpha(counts: np.ndarray, alpha: np.ndarray | float) -> np.ndarray:
    """log p(z | alpha) of (D1) for counts (..., T) and alpha broadcast against (...)."""
    alpha = np.asarray(alpha, dtype=float)[..., None]
    n = counts[..., :-1]
    after = np.cumsum(counts[..., ::-1], axis=-1)[..., ::-1][..., 1:]  # m_k, k < T
    # log B(1 + n, alpha + m) - log B(1, alpha), with log B(1, alpha) = -log alpha
    terms = gammaln(1.0 + n) + gammaln(alpha + after) - gammaln(1.0 + n + alpha + after)
    return (terms + np.log(alpha)).sum(axis=-1)


def dp_log_prior_z(counts: np.ndarray, spec: MixtureSpec) -> np.ndarray:
    """log p(z) of labelled sequences with counts (A, T) under truncated DP weights, (A,).

    Alpha fixed: (D1). Alpha ~ Gamma(s1, s2): for each distinct count vector,
    log int exp(h(u)) du with u = log alpha and
    h(u) = log p(z | e^u) + log Gamma(e^u | s1, s2) + u, by ``scipy.integrate.quad``
    (relative tolerance 1e-12) over the interval where h is within 60 nats of its maximum
    on a grid of u in [-35, 35] (alpha from 6e-16 to 1.6e15; outside it the Gamma prior
    in [1e-6, 1e6] leaves no mass that matters at that tolerance).
    """
    counts = np.asarray(counts, dtype=float)
    if spec.dp_alpha_prior is None:
        return _dp_log_prior_given_alpha(counts, spec.dp_alpha)
    unique, inverse = np.unique(counts, axis=0, return_inverse=True)
    shape, rate = spec.dp_alpha_prior
    out = np.array([_integrate_alpha(tuple(n), shape, rate) for n in unique.tolist()])
    return out[inverse.ravel()]


@functools.lru_cache(maxsize=65_536)
def _integrate_alpha(count_tuple: tuple[float, ...], shape: float, rate: float) -> float:
    """log int p(z | alpha) Gamma(alpha | shape, rate) d alpha for one count vector (T,)
    (cached: the blocks of an enumeration and the predictive meet the same vectors)."""
    counts = np.array(count_tuple)
    log_norm = shape * np.log(rate) - gammaln(shape)

    def h(u: np.ndarray | float) -> np.ndarray:  # the log integrand in u = log alpha
        alpha = np.exp(u)
        return _dp_log_prior_given_alpha(counts, alpha) + log_norm + shape * u - rate * alpha

    grid = np.linspace(-35.0, 35.0, 1401)
    values = h(grid)
    peak = int(np.argmax(values))
    top = float(values[peak])
    inside = np.flatnonzero(values > top - 60.0)
    low, high = grid[max(inside[0] - 1, 0)], grid[min(inside[-1] + 1, grid.size - 1)]
    area, _ = quad(
        lambda u: float(np.exp(h(u) - top)),
        low,
        high,
        points=[grid[peak]],
        epsabs=0.0,
        epsrel=1e-12,
        limit=200,
    )
    return top + float(np.log(area))


# ------------------------------------------------------------------ the two collapsed forms
@dataclass(frozen=True)
class DiagonalTerms:
    """The collapsed joint and predictive of a diagonal spec (known ``obs_sd``): the
    functions above, bound to one data set."""

    points: np.ndarray
    spec: MixtureSpec

    def log_joint(self, indicators: np.ndarray) -> np.ndarray:
        """log p(z) + log p(x | z) for (A, N, K) indicators, shape (A,)."""
        n_samples, n_features = self.points.shape
        counts, s1, s2 = block_stats(indicators, self.points)
        return log_joint_from_stats(counts, s1, s2, n_samples, self.spec, n_features)

    def log_predictive(self, new: np.ndarray, indicators: np.ndarray) -> np.ndarray:
        """log p(x_new | z, x) for (A, N, K) indicators and (M, D) new points, shape (A, M)."""
        counts, s1, _ = block_stats(indicators, self.points)
        return log_predictive_given_z(new, counts, s1, self.points.shape[0], self.spec)


@dataclass(frozen=True)
class FullCovarianceTerms:
    """The collapsed joint and predictive of a known full covariance, per (component, count).

    With P_k = Sigma_k^-1, S0 = diag(mean_prior_sd^2), c_j = x_j - m0 and, for the n points
    of component k, their sum c and the posterior precision of the mean
    L_n = S0^-1 + n P_k (Bishop 2006, eq. 2.116 with n observations)::

        log p(x_k) = -n D/2 log(2 pi) - n/2 log|Sigma_k| - 1/2 (log|S0| + log|L_n|)
                     - 1/2 sum_j c_j^T P_k c_j + 1/2 c^T P_k L_n^-1 P_k c             (F1)

    (completing the square in the mean; n = 0 gives 0). Given z the next point of
    component k is N(m0 + L_n^-1 P_k c, L_n^-1 + Sigma_k) (Bishop 2006, eq. 2.115). Every
    matrix depends on z only through n, so its Cholesky factor is computed once for
    n = 0..N. A diagonal Sigma_k gives :func:`log_marginal_normal` summed over features.

    Attributes
    ----------
    points : ndarray of shape (n_samples, n_features)
    spec : MixtureSpec
    log_norm : ndarray of shape (n_components, n_samples + 1)
        The count-only terms of (F1).
    quad_gain : ndarray of shape (n_components, n_samples + 1, D, D)
        P_k L_n^-1 P_k.
    point_quad : ndarray of shape (n_samples, n_components)
        c_j^T P_k c_j.
    post_gain : ndarray of shape (n_components, n_samples + 1, D, D)
        L_n^-1 P_k: the posterior mean of component k is m0 + post_gain @ c.
    pred_whiten : ndarray of shape (n_components, n_samples + 1, D, D)
        The inverse Cholesky factor of the predictive covariance L_n^-1 + Sigma_k.
    pred_logdet : ndarray of shape (n_components, n_samples + 1)
        log|L_n^-1 + Sigma_k|.
    """

    points: np.ndarray
    spec: MixtureSpec
    log_norm: np.ndarray
    quad_gain: np.ndarray
    point_quad: np.ndarray
    post_gain: np.ndarray
    pred_whiten: np.ndarray
    pred_logdet: np.ndarray

    @classmethod
    def build(cls, points: np.ndarray, spec: MixtureSpec) -> FullCovarianceTerms:
        """Factor every (component, count) matrix of (F1) once."""
        n_samples, n_features = points.shape
        cov = spec.known_obs_cov(n_features)  # (K, D, D)
        chol = np.linalg.cholesky(cov)
        eye = np.eye(n_features)
        inv_chol = np.linalg.solve(chol, eye)  # (K, D, D): L^-1, so P = L^-T L^-1
        precision = np.einsum("kji,kjl->kil", inv_chol, inv_chol)
        logdet_cov = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(-1)  # (K,)
        prior_var = spec.prior_sd(n_features) ** 2
        counts = np.arange(n_samples + 1, dtype=float)
        post_prec = (
            np.diag(1.0 / prior_var)[None, None] + counts[None, :, None, None] * precision[:, None]
        )  # (K, N+1, D, D): L_n
        post_chol = np.linalg.cholesky(post_prec)
        logdet_post = 2.0 * np.log(np.diagonal(post_chol, axis1=2, axis2=3)).sum(-1)
        post_cov = np.linalg.inv(post_prec)
        post_cov = 0.5 * (post_cov + np.swapaxes(post_cov, -1, -2))
        post_gain = post_cov @ precision[:, None]  # L_n^-1 P_k
        quad_gain = precision[:, None] @ post_gain  # P_k L_n^-1 P_k
        log_norm = -0.5 * (
            counts * n_features * LOG_2PI
            + counts * logdet_cov[:, None]
            + np.log(prior_var).sum()
            + logdet_post
        )  # (K, N+1)
        pred_chol = np.linalg.cholesky(post_cov + cov[:, None])
        pred_whiten = np.linalg.solve(pred_chol, np.broadcast_to(eye, pred_chol.shape))
        pred_logdet = 2.0 * np.log(np.diagonal(pred_chol, axis1=2, axis2=3)).sum(-1)
        centered = points - spec.prior_mean(n_features)
        white = np.einsum("kde,ne->nkd", inv_chol, centered)  # L_k^-1 c_j
        return cls(
            points=points,
            spec=spec,
            log_norm=log_norm,
            quad_gain=quad_gain,
            point_quad=(white**2).sum(-1),
            post_gain=post_gain,
            pred_whiten=pred_whiten,
            pred_logdet=pred_logdet,
        )

    def _stats(self, indicators: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Counts (A, K) as indices, centered sums c (A, K, D), sum of c_j^T P_k c_j (A, K)."""
        counts = indicators.sum(axis=1)
        centered = self.points - self.spec.prior_mean(self.points.shape[1])
        sums = np.einsum("ank,nd->akd", indicators, centered)
        quad = np.einsum("ank,nk->ak", indicators, self.point_quad)
        return np.rint(counts).astype(np.intp), sums, quad

    def log_joint(self, indicators: np.ndarray) -> np.ndarray:
        """log p(z) + log p(x | z) for (A, N, K) indicators, shape (A,): eq. (F1) per k."""
        n_samples = self.points.shape[0]
        counts, sums, quad = self._stats(indicators)
        comp = np.arange(self.spec.n_components)
        gain = self.quad_gain[comp, counts]  # (A, K, D, D)
        log_lik = (
            self.log_norm[comp, counts]
            - 0.5 * quad
            + 0.5 * np.einsum("akd,akde,ake->ak", sums, gain, sums)
        ).sum(axis=1)
        return _log_prior_z(counts.astype(float), n_samples, self.spec) + log_lik

    def log_predictive(self, new: np.ndarray, indicators: np.ndarray) -> np.ndarray:
        """log p(x_new | z, x) for (A, N, K) indicators and (M, D) new points, shape (A, M)."""
        n_samples, n_features = self.points.shape
        counts, sums, _ = self._stats(indicators)
        comp = np.arange(self.spec.n_components)
        mean = self.spec.prior_mean(n_features) + np.einsum(
            "akde,ake->akd", self.post_gain[comp, counts], sums
        )  # (A, K, D)
        white = np.einsum(
            "akde,amke->amkd",
            self.pred_whiten[comp, counts],
            new[None, :, None, :] - mean[:, None],
        )  # (A, M, K, D)
        log_norm = -0.5 * (
            n_features * LOG_2PI + self.pred_logdet[comp, counts][:, None] + (white**2).sum(-1)
        )
        log_w = _log_component_weights(counts.astype(float), n_samples, self.spec)
        return logsumexp(log_w[:, None, :] + log_norm, axis=-1)


def collapsed_terms(points: np.ndarray, spec: MixtureSpec) -> DiagonalTerms | FullCovarianceTerms:
    """The collapsed joint and predictive of a spec with known covariances, for ``points``.

    A known diagonal ``obs_sd`` gives :class:`DiagonalTerms`, a known full ``obs_cov``
    :class:`FullCovarianceTerms`; a learned covariance has no closed form (ValueError, from
    the spec's accessors).
    """
    if spec.covariance == "full":
        return FullCovarianceTerms.build(points, spec)
    return DiagonalTerms(points, spec)
