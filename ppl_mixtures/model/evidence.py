"""Exact posterior quantities of a :class:`MixtureSpec` by enumerating every assignment.

For tiny data sets (K^N up to :data:`MAX_ASSIGNMENTS` assignments) the model's posterior is
computable exactly, which makes it the oracle for every engine in the package:

- the log evidence log p(x): the CAVI and ADVI ELBOs must lie below it, SMC's estimate must
  scatter around it;
- the co-clustering matrix P(z_i = z_j | x) and the posterior predictive density
  p(x_new | x): both are label-invariant, so they grade any engine's draws without
  relabeling (see :mod:`ppl_mixtures.analysis.diagnostics`).

With the component means integrated out analytically (conjugate Normal prior, known
observation sd) and the weights integrated out analytically (Dirichlet-multinomial), or
p(z) = K^-N for fixed weights, each assignment z has a closed-form joint::

    log p(x, z) = log p(z) + sum_k sum_d log p(x_{z=k, d})                            (1)
    log p(x)    = logsumexp_z log p(x, z)                                             (2)
    p(z | x)    = exp(log p(x, z) - log p(x))                                         (3)

The limit: :func:`exact_feasible` says whether K^N <= :data:`MAX_ASSIGNMENTS`
(2,000,000: N <= 20 for K = 2, N <= 13 for K = 3, N <= 10 for K = 4).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import gammaln, logsumexp

from ppl_mixtures.model.spec import MixtureSpec
from ppl_mixtures.validation import check_int, check_points

__all__ = [
    "MAX_ASSIGNMENTS",
    "ExactPosterior",
    "exact_feasible",
    "exact_log_evidence",
    "exact_posterior",
]

#: Largest number of assignments K^N that the exact functions enumerate.
MAX_ASSIGNMENTS = 2_000_000

_LOG_2PI = float(np.log(2.0 * np.pi))
_CHUNK = 65_536  # assignments per vectorized block (bounds memory to a few MB)
_CHUNK_ELEMENTS = 2**22  # floats of the largest (assignments, new points, K) block


# ------------------------------------------------------------------ conjugate pieces
def _log_marginal_normal(
    n: np.ndarray,
    s1: np.ndarray,
    s2: np.ndarray,
    prior_mean: ArrayLike,
    prior_var: ArrayLike,
    obs_var: ArrayLike,
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
        -0.5 * n * (_LOG_2PI + np.log(obs_var))
        - 0.5 * np.log1p(n * prior_var / obs_var)
        - 0.5 * sum_c2 / obs_var
        + 0.5 * prior_var * sum_c**2 / (obs_var * (obs_var + n * prior_var))
    )


def _assignments(start: int, stop: int, n_samples: int, n_components: int) -> np.ndarray:
    """Assignments number start..stop-1 written in base K, shape (stop - start, n_samples)."""
    codes = np.arange(start, stop, dtype=np.int64)
    powers = n_components ** np.arange(n_samples - 1, -1, -1, dtype=np.int64)
    return (codes[:, None] // powers[None, :]) % n_components


def _one_hot(z: np.ndarray, n_components: int) -> np.ndarray:
    """(A, N) labels -> (A, N, K) float indicators."""
    return (z[:, :, None] == np.arange(n_components)).astype(np.float64)


def _block_stats(
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


def _log_joint_from_stats(
    counts: np.ndarray,
    s1: np.ndarray,
    s2: np.ndarray,
    n_samples: int,
    spec: MixtureSpec,
    n_features: int,
) -> np.ndarray:
    """Eq. (1): log p(z) + log p(x | z), means (and weights) integrated, shape (A,)."""
    obs_var = spec.known_obs_sd(n_features) ** 2  # (K, D)
    log_lik = _log_marginal_normal(
        counts[:, :, None],
        s1,
        s2,
        spec.prior_mean(n_features),
        spec.prior_sd(n_features) ** 2,
        obs_var,
    ).sum(axis=(1, 2))
    return _log_prior_z(counts, n_samples, spec) + log_lik


def _log_joint_block(z: np.ndarray, points: np.ndarray, spec: MixtureSpec) -> np.ndarray:
    """log p(z) + log p(x | z) with means (and weights) integrated, shape (n_assign,)."""
    n_samples, n_features = points.shape
    counts, s1, s2 = _block_stats(_one_hot(z, spec.n_components), points)
    return _log_joint_from_stats(counts, s1, s2, n_samples, spec, n_features)


def _blocks(n_samples: int, n_components: int, chunk: int = _CHUNK) -> Iterator[np.ndarray]:
    """Consecutive assignment blocks (A, N) covering all K^N assignments."""
    total = n_components**n_samples
    for start in range(0, total, chunk):
        yield _assignments(start, min(start + chunk, total), n_samples, n_components)


# ------------------------------------------------------------------ checks
def _max_n(n_components: int) -> int:
    """Largest N with K^N <= MAX_ASSIGNMENTS."""
    if n_components == 1:
        return 10**9
    return int(np.floor(np.log(MAX_ASSIGNMENTS) / np.log(n_components) + 1e-12))


def exact_feasible(n_samples: int, n_components: int) -> bool:
    """Whether the exact functions can enumerate this problem: K^N <= MAX_ASSIGNMENTS.

    Parameters
    ----------
    n_samples, n_components : int
        N >= 1 and K >= 1.

    Returns
    -------
    bool
        True for N <= 20 at K = 2, N <= 13 at K = 3, N <= 10 at K = 4, any N at K = 1.
        (The exact functions also need a known ``obs_sd``.)

    Examples
    --------
    >>> exact_feasible(20, 2), exact_feasible(21, 2), exact_feasible(13, 3)
    (True, False, True)
    """
    n_samples = check_int("n_samples", n_samples, minimum=1)
    n_components = check_int("n_components", n_components, minimum=1)
    return n_samples <= _max_n(n_components)


def _check(points: Any, spec: Any, who: str) -> np.ndarray:
    if not isinstance(spec, MixtureSpec):
        raise TypeError(
            f"spec: expected a MixtureSpec, got {type(spec).__name__}. "
            f"Build one with MixtureSpec(n_components=...)."
        )
    if spec.learned_obs_sd:
        raise NotImplementedError(
            f"spec.obs_sd: {who} needs a known obs_sd, got "
            f"'learned'. Use a known obs_sd, or an estimate of the "
            f"evidence (the 'smc' engine, or the 'cavi' ELBO as a bound)."
        )
    points = check_points(points)
    spec.check_features(points.shape[1])
    n_samples = points.shape[0]
    n_components = spec.n_components
    if not exact_feasible(n_samples, n_components):
        raise ValueError(
            f"points: expected at most {MAX_ASSIGNMENTS} assignments "
            f"(n_components ** n_samples), got {n_components}**{n_samples}. "
            f"Enumerate fewer points (e.g. points[:{_max_n(n_components)}])."
        )
    return points


# ------------------------------------------------------------------ log evidence
def exact_log_evidence(points: ArrayLike, spec: MixtureSpec) -> float:
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
    :func:`exact_posterior` gives the same number plus co-clustering and predictive.

    Examples
    --------
    >>> spec = MixtureSpec(n_components=1, mean_prior_sd=1.0, obs_sd=1.0)
    >>> round(exact_log_evidence([0.0], spec), 6)  # x ~ N(0, 1 + 1)
    -1.265512
    """
    points = _check(points, spec, "exact_log_evidence")
    n_samples = points.shape[0]
    blocks = [
        logsumexp(_log_joint_block(z, points, spec)) for z in _blocks(n_samples, spec.n_components)
    ]
    return float(logsumexp(blocks))


# ------------------------------------------------------------------ exact posterior
@dataclass(frozen=True, eq=False)
class ExactPosterior:
    """The exact posterior of a tiny problem (see :func:`exact_posterior`).

    Attributes
    ----------
    log_evidence : float
        log p(x) in nats, every constant kept.
    coclustering : ndarray of shape (n_samples, n_samples)
        P(z_i = z_j | x): symmetric, entries in [0, 1], ones on the diagonal. Read-only.
    n_assignments : int
        K^N, the assignments enumerated.
    points : ndarray of shape (n_samples, n_features)
        The data (a read-only copy).
    spec : MixtureSpec
    """

    log_evidence: float
    coclustering: np.ndarray
    n_assignments: int
    points: np.ndarray
    spec: MixtureSpec

    def predictive_logpdf(self, new_points: ArrayLike) -> np.ndarray:
        """The posterior predictive log density log p(x_new | x) at each new point, exactly.

        Parameters
        ----------
        new_points : array-like of shape (n_new,) or (n_new, n_features)
            Points with the data's features (1-D input is one feature).

        Returns
        -------
        ndarray of shape (n_new,)
            Each entry is log p(x_new | x) for that point alone (not a joint density).

        Notes
        -----
        Given an assignment z of the data, the next point joins component k with
        probability (alpha_k + n_k) / (sum(alpha) + N) (1/K for fixed weights), and its
        features are independent Normals around the conjugate posterior of that
        component's mean::

            lam_kd = 1/s0_d^2 + n_k / sd_d^2      m_kd = (m0_d / s0_d^2 + S_kd / sd_d^2) / lam_kd
            x_new_d | z, x, k ~ N(m_kd, 1/lam_kd + sd_d^2)

        (Bishop 2006, eqs. 2.141-2.142 and 3.58 with one regressor). The predictive is the
        mixture of these over k, then over z with the weights p(z | x) of eq. (3);
        everything is summed in log space, over all K^N assignments (no truncation).
        """
        new = check_points(new_points, name="new_points")
        n_samples, n_features = self.points.shape
        if new.shape[1] != n_features:
            raise ValueError(
                f"new_points: expected {n_features} features (the data's), got "
                f"{new.shape[1]}. Pass points with the columns of the data."
            )
        spec = self.spec
        n_components = spec.n_components
        chunk = max(1, _CHUNK_ELEMENTS // (new.shape[0] * n_components * n_features))
        out = np.full(new.shape[0], -np.inf)
        for z in _blocks(n_samples, n_components, min(chunk, _CHUNK)):
            counts, s1, s2 = _block_stats(_one_hot(z, n_components), self.points)
            log_post = (
                _log_joint_from_stats(counts, s1, s2, n_samples, spec, n_features)
                - self.log_evidence
            )  # (A,) eq. (3)
            log_pred = _log_predictive_given_z(new, counts, s1, n_samples, spec)  # (A, M)
            out = np.logaddexp(out, logsumexp(log_post[:, None] + log_pred, axis=0))
        return out


def _log_predictive_given_z(
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


def exact_posterior(points: ArrayLike, spec: MixtureSpec) -> ExactPosterior:
    """Log evidence, co-clustering and posterior predictive of ``spec``, by enumeration.

    Parameters
    ----------
    points : array-like of shape (n_samples,) or (n_samples, n_features)
        K^N must be at most :data:`MAX_ASSIGNMENTS` (:func:`exact_feasible`).
    spec : MixtureSpec
        Known ``obs_sd``; Dirichlet or fixed weights; any number of features.
        ``spec.ordered`` is ignored (the quantities are label-invariant).

    Returns
    -------
    ExactPosterior
        ``log_evidence`` (float, nats), ``coclustering`` (N, N) and
        ``predictive_logpdf(new_points)`` -> (M,).

    Raises
    ------
    NotImplementedError
        For ``obs_sd="learned"``.
    ValueError
        When K^N exceeds :data:`MAX_ASSIGNMENTS`.

    Notes
    -----
    One pass over all assignments (blocks of :data:`_CHUNK`) gives eq. (2) and, with the
    posterior weights of eq. (3), P(z_i = z_j | x) = sum_z p(z | x) [z_i = z_j]. The sum is
    accumulated against a running maximum of the log weights, so nothing under- or
    overflows. The time is O(K^N N^2 K); N = 20, K = 2 takes seconds.

    Examples
    --------
    >>> post = exact_posterior([-2.0, -1.8, 2.1], MixtureSpec(n_components=2, obs_sd=0.5))
    >>> post.coclustering.round(2)                                        # doctest: +SKIP
    >>> post.predictive_logpdf([[0.0], [2.0]])                            # shape (2,)
    """
    points = _check(points, spec, "exact_posterior")
    n_samples, n_features = points.shape
    n_components = spec.n_components
    scale = -np.inf  # log of the factor the accumulators are divided by
    total = 0.0  # sum_z exp(log p(x, z) - scale)
    pairs = np.zeros((n_samples, n_samples))
    for z in _blocks(n_samples, n_components):
        one_hot = _one_hot(z, n_components)
        log_joint = _log_joint_from_stats(
            *_block_stats(one_hot, points), n_samples, spec, n_features
        )
        new_scale = max(scale, float(log_joint.max()))
        shrink = np.exp(scale - new_scale) if np.isfinite(scale) else 0.0
        weight = np.exp(log_joint - new_scale)  # (A,)
        total = total * shrink + weight.sum()
        pairs = pairs * shrink + sum(
            (one_hot[:, :, k] * weight[:, None]).T @ one_hot[:, :, k] for k in range(n_components)
        )  # (N, N)
        scale = new_scale
    coclustering = pairs / total
    coclustering = 0.5 * (coclustering + coclustering.T)  # exact symmetry against round-off
    np.fill_diagonal(coclustering, 1.0)
    coclustering = np.clip(coclustering, 0.0, 1.0)
    coclustering.setflags(write=False)
    data = points.copy()
    data.setflags(write=False)
    return ExactPosterior(
        log_evidence=float(scale + np.log(total)),
        coclustering=coclustering,
        n_assignments=int(n_components**n_samples),
        points=data,
        spec=spec,
    )
