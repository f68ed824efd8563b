"""Exact posterior quantities of a :class:`MixtureSpec` by enumerating every assignment.

For tiny data sets (K^N up to :data:`MAX_ASSIGNMENTS` assignments) the model's posterior is
computable exactly, which makes it the oracle for every engine in the package:

- the log evidence log p(x): the CAVI and ADVI ELBOs must lie below it, SMC's estimate must
  scatter around it;
- the co-clustering matrix P(z_i = z_j | x) and the posterior predictive density
  p(x_new | x): both are label-invariant, so they grade any engine's draws without
  relabeling (see :mod:`ppl_mixtures.analysis.diagnostics`).

With the component means integrated out analytically (conjugate Normal prior, known
observation sd, or a known full covariance ``obs_cov``: see
:class:`~ppl_mixtures.model.enumeration.FullCovarianceTerms`) and the weights integrated out analytically (Dirichlet-multinomial), or
p(z) = K^-N for fixed weights, or the stick-breaking p(z) of truncated Dirichlet-process
weights (``weights="dp"``: a product of Beta functions given alpha, eq. (D1) of
:mod:`~ppl_mixtures.model.enumeration`; with a Gamma prior on alpha, a 1-D quadrature per
distinct count vector), each assignment z has a closed-form joint::

    log p(x, z) = log p(z) + sum_k log p(x_{z=k})                                      (1)
    log p(x)    = logsumexp_z log p(x, z)                                             (2)
    p(z | x)    = exp(log p(x, z) - log p(x))                                         (3)

The limit: :func:`exact_feasible` says whether K^N <= :data:`MAX_ASSIGNMENTS`
(2,000,000: N <= 20 for K = 2, N <= 13 for K = 3, N <= 10 for K = 4).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import logsumexp

from ppl_mixtures.model.enumeration import (
    CHUNK,
    assignment_blocks,
    collapsed_terms,
    one_hot,
)
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

_CHUNK_ELEMENTS = 2**22  # floats of the largest (assignments, new points, K) block


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
        (The exact functions also need a known ``obs_sd`` or ``obs_cov``.)

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
    if spec.learned_covariance:
        field, got = (
            ("obs_cov", "obs_cov='learned'")
            if spec.covariance == "full"
            else ("covariance", f"covariance={spec.covariance!r} (always learned)")
        )
        raise NotImplementedError(
            f"spec.{field}: {who} needs a known covariance (a learned one does not "
            f"integrate out in closed form), got {got}. Use covariance='full' with a "
            f"known obs_cov matrix, or estimate the evidence (the 'smc' engine estimates "
            f"it; an ELBO is a lower bound)."
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
        Known covariances only: a known ``obs_sd`` (``covariance="diag"``) or a known
        ``obs_cov`` matrix (``covariance="full"``); Dirichlet, fixed or truncated-DP
        weights (``weights="dp"``, alpha fixed or with its Gamma prior).

    Returns
    -------
    float
        log p(x) in nats, with every constant (comparable with any ELBO of the same spec).

    Raises
    ------
    NotImplementedError
        For a learned covariance: ``obs_sd="learned"``, ``obs_cov="learned"``, "tied" or
        "spherical" (the precisions do not integrate out in closed form under the
        semi-conjugate prior; the 'smc' engine estimates the evidence).
    ValueError
        When K^N exceeds :data:`MAX_ASSIGNMENTS`.

    Notes
    -----
    Every assignment z in {1..K}^N is enumerated (in blocks, to bound memory). Given z the
    components are independent and, with known sd, so are the features; each component mean
    is integrated against its Normal prior (:func:`~ppl_mixtures.model.enumeration.log_marginal_normal`;
    with a known full covariance the points of a component are jointly Gaussian with
    covariance I (x) Sigma_k + 11^T (x) diag(mean_prior_sd^2), evaluated in information form
    by :class:`~ppl_mixtures.model.enumeration.FullCovarianceTerms`). With Dirichlet
    weights, p(z) = B(alpha + n(z)) / B(alpha) (Dirichlet-multinomial for one labelled
    sequence); with fixed weights p(z) = K^-N; with truncated DP weights
    p(z) = prod_{k<T} B(1 + n_k, alpha + m_k) / B(1, alpha), m_k = sum_{j>k} n_j
    (integrated against alpha's Gamma prior when it has one). The result is the logsumexp
    over all z.
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
    terms = collapsed_terms(points, spec)
    blocks = [
        logsumexp(terms.log_joint(one_hot(z, spec.n_components)))
        for z in assignment_blocks(n_samples, spec.n_components)
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
        probability (alpha_k + n_k) / (sum(alpha) + N) (1/K for fixed weights; for DP
        weights p(z, k) / p(z) with the stick-breaking p(z)), and its
        features are independent Normals around the conjugate posterior of that
        component's mean (with a known full covariance: multivariate Normal, see
        :class:`~ppl_mixtures.model.enumeration.FullCovarianceTerms`)::

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
        terms = collapsed_terms(self.points, spec)
        for z in assignment_blocks(n_samples, n_components, min(chunk, CHUNK)):
            indicators = one_hot(z, n_components)
            log_post = terms.log_joint(indicators) - self.log_evidence  # (A,) eq. (3)
            log_pred = terms.log_predictive(new, indicators)  # (A, M)
            out = np.logaddexp(out, logsumexp(log_post[:, None] + log_pred, axis=0))
        return out


def exact_posterior(points: ArrayLike, spec: MixtureSpec) -> ExactPosterior:
    """Log evidence, co-clustering and posterior predictive of ``spec``, by enumeration.

    Parameters
    ----------
    points : array-like of shape (n_samples,) or (n_samples, n_features)
        K^N must be at most :data:`MAX_ASSIGNMENTS` (:func:`exact_feasible`).
    spec : MixtureSpec
        Known ``obs_sd`` or known full ``obs_cov``; Dirichlet, fixed or truncated-DP
        weights; any number of features.
        ``spec.ordered`` is ignored (the quantities are label-invariant).

    Returns
    -------
    ExactPosterior
        ``log_evidence`` (float, nats), ``coclustering`` (N, N) and
        ``predictive_logpdf(new_points)`` -> (M,).

    Raises
    ------
    NotImplementedError
        For a learned covariance (as :func:`exact_log_evidence`).
    ValueError
        When K^N exceeds :data:`MAX_ASSIGNMENTS`.

    Notes
    -----
    One pass over all assignments (blocks of :data:`CHUNK`) gives eq. (2) and, with the
    posterior weights of eq. (3), P(z_i = z_j | x) = sum_z p(z | x) [z_i = z_j]. The sum is
    accumulated against a running maximum of the log weights, so nothing under- or
    overflows. The time is O(K^N N^2 K); N = 20, K = 2 takes seconds.

    Examples
    --------
    >>> post = exact_posterior([-2.0, -1.8, 2.1], MixtureSpec(n_components=2, obs_sd=0.5))
    >>> post.coclustering.round(2)                                        # doctest: +SKIP
    >>> post.predictive_logpdf([[0.0], [2.0]]).shape
    (2,)
    """
    points = _check(points, spec, "exact_posterior")
    n_samples = points.shape[0]
    n_components = spec.n_components
    scale = -np.inf  # log of the factor the accumulators are divided by
    total = 0.0  # sum_z exp(log p(x, z) - scale)
    pairs = np.zeros((n_samples, n_samples))
    terms = collapsed_terms(points, spec)
    for z in assignment_blocks(n_samples, n_components):
        indicators = one_hot(z, n_components)  # (A, N, K)
        log_joint = terms.log_joint(indicators)
        new_scale = max(scale, float(log_joint.max()))
        shrink = np.exp(scale - new_scale) if np.isfinite(scale) else 0.0
        weight = np.exp(log_joint - new_scale)  # (A,)
        total = total * shrink + weight.sum()
        pairs = pairs * shrink + sum(
            (indicators[:, :, k] * weight[:, None]).T @ indicators[:, :, k]
            for k in range(n_components)
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
