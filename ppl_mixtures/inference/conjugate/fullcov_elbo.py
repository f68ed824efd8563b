"""The ELBO of the full/tied-covariance mean-field family (``fullcov_meanfield.py``), every
constant kept::

    ELBO(q) = E_q[log p(x | z, mu, Lambda)] + E_q[log p(z | w)] + H[q(z)]
              - KL(q(w) || p(w)) - KL(q(mu) || p(mu)) - KL(q(Lambda) || p(Lambda))

Bishop (2006), eqs. 10.70-10.77, for our semi-conjugate prior (mu independent of Lambda).
The terms are :class:`~ppl_mixtures.inference.conjugate.elbo.ElboTerms`, the same record
as the diagonal model's, so the two ELBOs print and compare alike.
"""

from __future__ import annotations

import math

import numpy as np

from ppl_mixtures.inference.conjugate.elbo import ElboTerms, weights_kl
from ppl_mixtures.inference.conjugate.fullcov_meanfield import (
    FullParams,
    expectations,
    expected_scatter,
)
from ppl_mixtures.inference.conjugate.stats_full import FullStats
from ppl_mixtures.model.density import LOG_2PI
from ppl_mixtures.model.priors import (
    normal_log_prior,
    wishart_entropy,
    wishart_log_prior,
    wishart_mean_log_det,
)
from ppl_mixtures.model.spec import MixtureSpec

__all__ = ["elbo", "elbo_terms"]


def elbo_terms(stats: FullStats, params: FullParams, spec: MixtureSpec) -> ElboTerms:
    """The ELBO of (q(z) with statistics ``stats``, global factors ``params``), term by term.

    Notes
    -----
    With sum_i r_ik E[(x_i - mu_k)(x_i - mu_k)^T] = N_k (S_k + d_k d_k^T + C_k) =: T_k
    (``expected_scatter``; d_k = x̄_k - m_k)::

        E[log p(x | z, mu, Lambda)] = sum_k N_k (1/2 E[log |Lambda_k|] - D/2 log 2 pi)
                                      - 1/2 tr(E[Lambda_k] T_k)                  (10.71)
        KL(q(mu_k) || p(mu_k)) = -E[log N(mu_k | m0, diag s0^2)] - 1/2 log |2 pi e C_k|
        KL(q(Lambda) || p(Lambda)) = -E[log W(Lambda | nu0, W0)] - H[W(nu, W)]  (10.74, 10.77)

    with E[log W(.)] and H[W] from ``model.priors`` (eqs. B.78-B.82). A tied model has one
    Wishart KL; a known covariance none.
    """
    n_features = params.mean_loc.shape[1]
    expect = expectations(params, spec)
    scatter = expected_scatter(stats, params.mean_loc, params.mean_cov)
    expected_log_lik = np.sum(
        stats.counts * (0.5 * expect.log_det - 0.5 * n_features * LOG_2PI)
    ) - 0.5 * np.einsum("kij,kji->", expect.prec, scatter)
    expected_log_p_z = float(stats.counts @ expect.log_weights)
    mean_var = np.diagonal(params.mean_cov, axis1=1, axis2=2)
    mean_entropy = 0.5 * (
        n_features * np.log(2.0 * np.pi * math.e) + np.linalg.slogdet(params.mean_cov)[1]
    )
    kl_means = -np.sum(
        normal_log_prior(
            params.mean_loc, mean_var, spec.prior_mean(n_features), spec.prior_sd(n_features) ** 2
        )
    ) - np.sum(mean_entropy)
    kl_weights = weights_kl(params, spec, expect.log_weights)
    kl_precisions = 0.0
    if params.wishart_dof is not None and params.wishart_scale is not None:
        dof, scale = params.wishart_dof, params.wishart_scale  # one row per factor
        mean_prec = dof[:, None, None] * scale
        kl_precisions = -np.sum(
            wishart_log_prior(
                mean_prec,
                wishart_mean_log_det(dof, scale),
                spec.wishart_dof(n_features),
                spec.wishart_scale(n_features),
            )
            + wishart_entropy(dof, scale)
        )
    return ElboTerms(
        float(expected_log_lik),
        expected_log_p_z,
        float(stats.entropy),
        float(kl_weights),
        float(kl_means),
        float(kl_precisions),
    )


def elbo(stats: FullStats, params: FullParams, spec: MixtureSpec) -> float:
    """ELBO(q) in nats (higher is better; <= log p(x)): the sum of :func:`elbo_terms`."""
    return elbo_terms(stats, params, spec).total
