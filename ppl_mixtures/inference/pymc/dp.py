"""Truncated Dirichlet-process weights (stick-breaking) for the PyMC models.

For ``MixtureSpec(n_components=T, weights="dp", dp_alpha=alpha)`` the weights are the
truncated stick-breaking construction of Ishwaran & James (2001), eqs. (2)-(3)::

    v_k ~ Beta(1, alpha)                      k = 1..T-1,   v_T = 1                    (1)
    w_k = v_k prod_{j<k} (1 - v_j)                                                    (2)

so ``w_T = prod_{j<T} (1 - v_j)`` is the stick left over after T-1 breaks. With
``spec.dp_alpha_prior = (shape, rate)`` the concentration is learned,
``alpha ~ Gamma(shape, rate)`` (Escobar & West 1995).

Parameterization. ``pm.Beta`` with its logit transform has a NaN gradient once a stick
rounds to 1 (v = logistic(y) is exactly 1.0 in float64 from y ~ 37 on, measured with PyMC
6.4), and with a small alpha the posterior of an unused stick reaches there: under
Beta(1, 0.01), P(1 - v < 1e-16) = (1e-16)^0.01 = 0.69. The model therefore samples the
equivalent variable

    e_k = -log(1 - v_k) ~ Exponential(alpha)                                          (3)

(1 - v ~ Beta(alpha, 1), so P(e > t) = P(1 - v < e^-t) = e^(-alpha t)), with PyMC's log
transform, and computes the weights in log space without ever forming v:

    log(1 - v_k) = -e_k,   log v_k = log(1 - exp(-e_k))   (``log1mexp``)
    log w_k = log v_k - sum_{j<k} e_j,   log w_T = -sum_{j<T} e_j                     (4)

The sticks ``dp_sticks`` = 1 - exp(-e) = v are kept as a Deterministic for the reader; the
prior on them is exactly (1). The weights are exponentiated once; PyTensor rewrites the
density's log(exp(.)) away, so a weight below float64's range (exp(-745)) still has a finite
gradient. The assignments z are summed out by the same density as for Dirichlet weights (it
reads ``weights``), so everything downstream of ``weights`` serves the DP unchanged.

Variables (added by :func:`add_dp_weights`; the rest of the model as in
:mod:`ppl_mixtures.inference.pymc.models`):

===================  ===================  ==============================================
name                 dims                 what
===================  ===================  ==============================================
``dp_neg_log_rest``  (component_stick,)   e_1..e_{T-1} ~ Exponential(alpha), eq. (3); free
``dp_sticks``        (component_stick,)   Deterministic v_k = 1 - exp(-e_k) ~ Beta(1, alpha)
``dp_alpha``         ()                   alpha ~ Gamma(shape, rate), when learned; free
``weights``          (component,)         Deterministic, eqs. (2) and (4)
===================  ===================  ==============================================
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ppl_mixtures.model.spec import MixtureSpec

__all__ = [
    "ALPHA_NAME",
    "REST_NAME",
    "STICKS_NAME",
    "STICK_DIM",
    "add_dp_weights",
    "dp_coords",
    "dp_start",
    "is_dp",
    "log_weights_of_rest_pt",
    "neg_log_rest_of_weights",
    "sticks_of_weights",
]

#: The dimension of the T-1 free sticks.
STICK_DIM = "component_stick"
#: The free variable e_k = -log(1 - v_k) of eq. (3).
REST_NAME = "dp_neg_log_rest"
#: Name of the sticks (posterior ``dp_sticks`` (chain, draw, component_stick)).
STICKS_NAME = "dp_sticks"
#: Name of the learned concentration (posterior ``dp_alpha`` (chain, draw)).
ALPHA_NAME = "dp_alpha"


def is_dp(spec: MixtureSpec) -> bool:
    """True when ``spec`` has DP weights with sticks to sample (T >= 2; with T = 1 the one
    weight is 1 and the spec's ``fixed_weights`` is True)."""
    return bool(spec.is_dp) and not spec.fixed_weights


def dp_coords(spec: MixtureSpec) -> dict[str, np.ndarray]:
    """The ``component_stick`` coordinate (0..T-2) of a DP spec; empty otherwise."""
    if not is_dp(spec):
        return {}
    return {STICK_DIM: np.arange(spec.n_components - 1)}


def log_weights_of_rest_pt(neg_log_rest: Any) -> Any:
    """Eq. (4) as a PyTensor graph: log weights (..., T) from e = -log(1 - v) (..., T-1)."""
    import pytensor.tensor as pt

    left = -pt.cumsum(neg_log_rest, axis=-1)  # log of the stick left after break k
    zero = pt.zeros_like(left[..., :1])
    before = pt.concatenate([zero, left[..., :-1]], axis=-1)  # sum_{j<k} log(1 - v_j)
    log_v = pt.log1mexp(-neg_log_rest)  # log(1 - exp(-e)) = log v
    return pt.concatenate([log_v + before, left[..., -1:]], axis=-1)


def add_dp_weights(spec: MixtureSpec) -> Any:
    """Add the DP variables to the model in context; return ``weights`` (T,).

    Call inside ``with pm.Model(coords=...)`` whose coords include :func:`dp_coords`.
    """
    import pymc as pm
    import pytensor.tensor as pt

    if spec.dp_alpha_prior is None:
        alpha: Any = float(spec.dp_alpha)
    else:
        shape, rate = spec.dp_alpha_prior
        alpha = pm.Gamma(ALPHA_NAME, alpha=float(shape), beta=float(rate))
    rest = pm.Exponential(REST_NAME, lam=alpha, dims=STICK_DIM)  # eq. (3)
    pm.Deterministic(STICKS_NAME, -pt.expm1(-rest), dims=STICK_DIM)
    return pm.Deterministic("weights", pt.exp(log_weights_of_rest_pt(rest)), dims="component")


def _tails(weights: ArrayLike) -> np.ndarray:
    """sum_{j>=k} w_j, shape (..., T)."""
    w = np.asarray(weights, dtype=np.float64)
    return np.cumsum(w[..., ::-1], axis=-1)[..., ::-1]


def sticks_of_weights(weights: ArrayLike) -> np.ndarray:
    """The sticks that give ``weights``: v_k = w_k / sum_{j>=k} w_j, k = 1..T-1 (the inverse
    of eq. (2)).

    Parameters
    ----------
    weights : array-like of shape (..., T)
        Positive weights summing to 1 along the last axis.

    Returns
    -------
    ndarray of shape (..., T-1)
        In (0, 1) when every weight is positive.
    """
    w = np.asarray(weights, dtype=np.float64)
    return w[..., :-1] / _tails(w)[..., :-1]


def neg_log_rest_of_weights(weights: ArrayLike) -> np.ndarray:
    """e_k = -log(1 - v_k) = log(sum_{j>=k} w_j) - log(sum_{j>k} w_j) of ``weights``
    (..., T) -> (..., T-1); positive when every weight is."""
    log_tails = np.log(_tails(weights))
    return log_tails[..., :-1] - log_tails[..., 1:]


def dp_start(
    spec: MixtureSpec, weights: ArrayLike, rng: np.random.Generator | None = None
) -> dict[str, np.ndarray]:
    """Constrained start values of the DP's free variables, by variable name.

    ``dp_neg_log_rest``: e of the sticks that give ``weights``
    (:func:`neg_log_rest_of_weights`); ``dp_alpha`` (when learned): the prior mean
    shape / rate clipped to [1e-3, 1e3], times exp(u), u ~ Uniform(-1, 1), when ``rng`` is
    given (an overdispersed start per chain).
    """
    start = {REST_NAME: neg_log_rest_of_weights(weights)}
    if spec.dp_alpha_prior is not None:
        shape, rate = spec.dp_alpha_prior
        alpha = float(np.clip(shape / rate, 1e-3, 1e3))
        if rng is not None:
            alpha *= float(np.exp(rng.uniform(-1.0, 1.0)))
        start[ALPHA_NAME] = np.asarray(alpha)
    return start
