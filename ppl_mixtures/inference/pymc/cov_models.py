"""The covariance parameters of the PyMC models for ``covariance="full" | "tied" | "spherical"``.

:mod:`ppl_mixtures.inference.pymc.models` calls these for every covariance type but "diag";
they add the covariance's random variables to the model under construction and return what
the observed ``CustomDist`` needs.

Full and tied: the Wishart prior by the Bartlett decomposition
-----------------------------------------------------------------
Lambda ~ Wishart(nu, S) (mean nu S) is sampled as (Bartlett 1933; Smith & Hocking 1972)::

    Lambda = L L^T,   L = chol(S) A,   A lower-triangular (D, D),
    A_ii = sqrt(c_i),  c_i ~ ChiSquared(nu - i)   (i = 0..D-1),   A_ij ~ Normal(0, 1)  (i > j)

so L is already the lower Cholesky factor of Lambda (positive diagonal): the density reads
``prec_chol = L`` directly, with no Cholesky decomposition in the graph, and every free
variable has a simple prior (a chi-square, with PyMC's log transform, or a standard normal),
which NUTS and ADVI handle well. c_i ~ ChiSquared(nu - i) is written as its Gamma form
Gamma(shape (nu - i)/2, rate 1/2).

Variables (besides the means and weights of :mod:`models`):

=======================  ==============================  =========================================
name                     dims                            when
=======================  ==============================  =========================================
``obs_bartlett_chi2``    (component, feature)            full learned: c_i per component
                         (feature,)                      tied: one shared
``obs_bartlett_normal``  (component, feature_pair)       full learned, D > 1: A_ij, i > j (row-major
                         (feature_pair,)                 tied, D > 1             lower triangle)
``obs_cov``              (component, feature, feature_b) full learned and tied: Lambda_k^-1
                                                         (tied: the same matrix for every k)
``obs_precision``        (component,)                    spherical: tau_k ~ Gamma(shape, rate)
``obs_sd``               (component, feature)            spherical: tau_k^-1/2 for every feature
=======================  ==============================  =========================================

A known full covariance adds no variable: ``prec_chol`` is the constant chol(obs_cov^-1).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ppl_mixtures.model.density_full import full_mixture_logp_pt
from ppl_mixtures.model.spec import MixtureSpec

__all__ = [
    "COVARIANCES",
    "FULL_SIGNATURE",
    "add_covariance",
    "bartlett_chol",
    "covariance_coords",
    "covariance_start",
    "full_logp",
    "full_random",
    "precision_chol_of_cov",
]

#: The covariance types the marginal model (and so nuts, metropolis, smc, advi and
#: fullrank_advi) serves; tests/test_pymc_covariance.py fits each engine on them.
COVARIANCES = ("diag", "full", "tied", "spherical")
#: gufunc signature of the observed CustomDist with full covariance: weights (K),
#: means (K, D), prec_chol (K, D, D).
FULL_SIGNATURE = "(k),(k,d),(k,d,d)->(d)"
#: Types whose density is the full-covariance one (spherical uses the diagonal density).
FULL_TYPES = ("full", "tied")


def covariance_coords(spec: MixtureSpec, n_features: int) -> dict[str, np.ndarray]:
    """The extra model coordinates for ``spec.covariance`` (``feature_b``, ``feature_pair``)."""
    if spec.covariance not in FULL_TYPES:
        return {}
    coords = {"feature_b": np.arange(n_features)}
    if spec.learned_covariance and n_features > 1:
        rows, cols = np.tril_indices(n_features, -1)
        coords["feature_pair"] = np.array([f"{i},{j}" for i, j in zip(rows, cols, strict=True)])
    return coords


def precision_chol_of_cov(cov: ArrayLike) -> np.ndarray:
    """Lower Cholesky factors of the precisions, chol(cov^-1), for covariances (..., D, D)."""
    cov = np.asarray(cov, dtype=np.float64)
    return np.linalg.cholesky(np.linalg.inv(cov))


def bartlett_chol(chi2: Any, normal: Any, scale_chol: np.ndarray) -> Any:
    """L = chol(S) A from the Bartlett variables (PyTensor), shape (..., D, D).

    Parameters
    ----------
    chi2 : TensorVariable of shape (..., D)
        c_i, the squared diagonal of A.
    normal : TensorVariable of shape (..., D (D - 1) / 2) or None (D = 1)
        The strictly lower entries of A in ``np.tril_indices(D, -1)`` order.
    scale_chol : ndarray of shape (D, D)
        chol(S), S the Wishart scale.
    """
    import pytensor.tensor as pt

    n_features = scale_chol.shape[0]
    diag = pt.sqrt(chi2)[..., :, None] * np.eye(n_features)  # (..., D, D)
    a = diag
    if n_features > 1:
        rows, cols = np.tril_indices(n_features, -1)
        # scatter the normals into the strict lower triangle through a constant 0/1 tensor
        # (P, D, D): differentiable and vectorizable, no advanced set_subtensor
        place = np.zeros((rows.size, n_features, n_features))
        place[np.arange(rows.size), rows, cols] = 1.0
        a = a + pt.tensordot(normal, place, axes=[[-1], [0]])
    return pt.as_tensor(scale_chol) @ a


def _bartlett(spec: MixtureSpec, n_features: int, tied: bool) -> Any:
    """Add the Bartlett variables; return L, shape (K, D, D) (tied: (D, D))."""
    import pymc as pm

    dof = spec.wishart_dof(n_features)
    scale_chol = np.linalg.cholesky(spec.wishart_scale(n_features))
    lead = () if tied else ("component",)
    # c_i ~ ChiSquared(dof - i) = Gamma(shape (dof - i)/2, rate 1/2)
    chi2 = pm.Gamma(
        "obs_bartlett_chi2",
        alpha=(dof - np.arange(n_features)) / 2.0,
        beta=0.5,
        dims=(*lead, "feature"),
    )
    normal = None
    if n_features > 1:
        normal = pm.Normal("obs_bartlett_normal", 0.0, 1.0, dims=(*lead, "feature_pair"))
    return bartlett_chol(chi2, normal, scale_chol)


def _cov_of_chol(prec_chol: Any, n_features: int) -> Any:
    """Lambda^-1 = L^-T L^-1 from L (PyTensor), shape (..., D, D)."""
    import pytensor.tensor as pt

    inv = pt.linalg.solve_triangular(prec_chol, pt.eye(n_features), lower=True, b_ndim=2)
    return pt.swapaxes(inv, -1, -2) @ inv


def add_covariance(spec: MixtureSpec, n_features: int) -> Any:
    """Add the covariance variables of a non-diagonal spec to the model in context.

    Returns
    -------
    TensorVariable
        "full"/"tied": ``prec_chol`` (K, D, D), the lower Cholesky factors of the
        precisions; "spherical": ``obs_sd`` (K, D) (the diagonal density's parameter).
    """
    import pymc as pm
    import pytensor.tensor as pt

    K = spec.n_components
    if spec.covariance == "spherical":
        precision = pm.Gamma(
            "obs_precision",
            alpha=spec.precision_prior_shape,
            beta=spec.precision_prior_rate,
            dims="component",
        )
        sd = pt.broadcast_to((1.0 / pt.sqrt(precision))[:, None], (K, n_features))
        return pm.Deterministic("obs_sd", sd, dims=("component", "feature"))
    if spec.covariance == "full" and not spec.learned_covariance:
        return pt.as_tensor(precision_chol_of_cov(spec.known_obs_cov(n_features)))
    tied = spec.covariance == "tied"
    prec_chol = _bartlett(spec, n_features, tied)
    if tied:
        prec_chol = pt.broadcast_to(prec_chol, (K, n_features, n_features))
    pm.Deterministic(
        "obs_cov", _cov_of_chol(prec_chol, n_features), dims=("component", "feature", "feature_b")
    )
    return prec_chol


def full_logp(value: Any, weights: Any, means: Any, prec_chol: Any) -> Any:
    """The logp of the full-covariance ``CustomDist`` (signature :data:`FULL_SIGNATURE`):
    :func:`ppl_mixtures.model.density_full.full_mixture_logp_pt` after dropping the length-1
    leading batch dimensions PyMC adds to the parameters; shape (n_samples,)."""
    import pytensor.tensor as pt

    weights, means, prec_chol = (pt.as_tensor_variable(a) for a in (weights, means, prec_chol))
    weights = weights[(0,) * (weights.ndim - 1)]
    means = means[(0,) * (means.ndim - 2)]
    prec_chol = prec_chol[(0,) * (prec_chol.ndim - 3)]
    return full_mixture_logp_pt(value, pt.log(weights), means, prec_chol)


def full_random(
    weights: ArrayLike,
    means: ArrayLike,
    prec_chol: ArrayLike,
    rng: np.random.Generator | int | None = None,
    size: int | tuple[int, ...] | None = None,
) -> np.ndarray:
    """Draw observations from the full-covariance mixture (the CustomDist's ``random``).

    x = mu_z + L_z^-T eps, eps ~ Normal(0, I), has covariance L^-T L^-1 = Lambda^-1.

    Parameters
    ----------
    weights : ndarray of shape (..., K)
    means : ndarray of shape (..., K, D)
    prec_chol : ndarray of shape (..., K, D, D)
    rng : numpy.random.Generator or int, optional
    size : tuple of int, optional
        Batch shape of the draws (``(n_samples,)`` for the observed variable).

    Returns
    -------
    ndarray of shape size + (D,)
    """
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    weights, means, prec_chol = (
        np.asarray(a, dtype=np.float64) for a in (weights, means, prec_chol)
    )
    if size is None:
        size = np.broadcast_shapes(weights.shape[:-1], means.shape[:-2], prec_chol.shape[:-3])
    size = tuple(int(s) for s in np.atleast_1d(size))
    K, D = means.shape[-2:]
    weights = np.broadcast_to(weights, (*size, K))
    means = np.broadcast_to(means, (*size, K, D))
    prec_chol = np.broadcast_to(np.tril(prec_chol), (*size, K, D, D))
    z = np.minimum((rng.random(size)[..., None] > np.cumsum(weights, -1)).sum(-1), K - 1)
    loc = np.take_along_axis(means, z[..., None, None], axis=-2)[..., 0, :]
    chol = np.take_along_axis(prec_chol, z[..., None, None, None], axis=-3)[..., 0, :, :]
    eps = rng.standard_normal((*size, D))
    # solve L^T y = eps for y (batched; L lower so L^T upper)
    step = np.linalg.solve(np.swapaxes(chol, -1, -2), eps[..., None])[..., 0]
    return loc + step


def covariance_start(
    spec: MixtureSpec, points: np.ndarray, rng: np.random.Generator | None = None
) -> dict[str, np.ndarray]:
    """Constrained start values of the covariance variables, by free-variable name.

    The precisions start at the inverse of the data's covariance (a ridge of 1e-6 times its
    trace keeps it positive definite), the same for every component; with ``rng`` each
    component's precision is multiplied by exp(u), u ~ Uniform(-1, 1) (spherical: per
    component; full: per component, the whole matrix), like the diagonal model's overdispersed
    starts. Empty for a known covariance and for "diag" (whose start values
    :func:`ppl_mixtures.inference.pymc.models.initial_point` sets).
    """
    n_samples, n_features = points.shape
    K = spec.n_components
    if spec.covariance == "diag" or not spec.learned_covariance:  # diag: models.py's own
        return {}
    cov = np.cov(points, rowvar=False).reshape(n_features, n_features) if n_samples > 1 else None
    if cov is None or not np.all(np.isfinite(cov)):
        cov = np.eye(n_features)
    cov = cov + 1e-6 * max(float(np.trace(cov)) / n_features, 1e-6) * np.eye(n_features)
    n_mats = 1 if spec.covariance == "tied" else K
    factor = np.exp(rng.uniform(-1.0, 1.0, size=n_mats)) if rng is not None else np.ones(n_mats)
    if spec.covariance == "spherical":
        var = float(np.clip(np.trace(cov) / n_features, 1e-6, 1e6))
        return {"obs_precision": factor / var}
    # A = chol(S)^-1 chol(factor * cov^-1): the Bartlett variables of that precision
    scale_chol = np.linalg.cholesky(spec.wishart_scale(n_features))
    chol = np.sqrt(factor)[:, None, None] * precision_chol_of_cov(cov)  # (M, D, D)
    a = np.linalg.solve(scale_chol, chol)  # lower-triangular, positive diagonal
    rows, cols = np.tril_indices(n_features, -1)
    start = {"obs_bartlett_chi2": np.diagonal(a, axis1=-2, axis2=-1) ** 2}
    if n_features > 1:
        start["obs_bartlett_normal"] = a[:, rows, cols]
    if spec.covariance == "tied":
        start = {name: value[0] for name, value in start.items()}
    return start
