"""exact_log_evidence against independent oracles (scipy multivariate normals)."""

import itertools

import numpy as np
import pytest
from scipy.special import gammaln, logsumexp
from scipy.stats import multivariate_normal, norm

from ppl_mixtures.evidence import MAX_ASSIGNMENTS, exact_log_evidence
from ppl_mixtures.spec import MixtureSpec


def _oracle_by_covariance(points, spec):
    """Sum over z of p(z) N(x_d | m0_d 1, obs_sd_d^2 I + prior_sd_d^2 [z_i == z_j]), per feature.

    Given z, the means integrate out into a Gaussian on each feature column whose covariance
    couples the points that share a component: an independent route to the same number.
    """
    n, d = points.shape
    k = spec.n_components
    alpha = spec.alpha()
    obs_sd = spec.known_obs_sd(d)
    terms = []
    for z in itertools.product(range(k), repeat=n):
        z = np.array(z)
        counts = np.bincount(z, minlength=k)
        if spec.fixed_weights:
            log_pz = -n * np.log(k)
        else:
            log_pz = (gammaln(alpha.sum()) - gammaln(alpha.sum() + n)
                      + np.sum(gammaln(alpha + counts) - gammaln(alpha)))
        same = (z[:, None] == z[None, :]).astype(float)
        log_px = 0.0
        for f in range(d):
            cov = np.diag(obs_sd[z, f] ** 2) + spec.prior_sd(d)[f] ** 2 * same
            log_px += multivariate_normal(np.full(n, spec.prior_mean(d)[f]), cov).logpdf(points[:, f])
        terms.append(log_pz + log_px)
    return logsumexp(terms)


def test_single_point_is_the_prior_predictive_mixture():
    spec = MixtureSpec(n_components=3, mean_prior_mean=(0.5, -1.0), mean_prior_sd=(2.0, 0.7),
                       dirichlet_alpha=(1.0, 2.0, 0.5), obs_sd=(1.5, 0.3))
    x = np.array([[0.3, -2.0]])
    scale = np.sqrt(np.array([2.0, 0.7]) ** 2 + np.array([1.5, 0.3]) ** 2)
    per_component = norm(loc=[0.5, -1.0], scale=scale).logpdf(x).sum()
    # every component has the same prior predictive; weights' prior mean sums to 1
    assert exact_log_evidence(x, spec) == pytest.approx(per_component, rel=1e-12)


def test_one_component_is_the_conjugate_marginal_likelihood():
    rng = np.random.default_rng(3)
    points = rng.normal(size=(7, 2)) * [1.0, 3.0] + [2.0, -1.0]
    spec = MixtureSpec(n_components=1, mean_prior_mean=(1.0, 0.0), mean_prior_sd=(2.0, 0.5),
                       obs_sd=(0.8, 2.5))
    expected = 0.0
    for f, (m0, s0, sd) in enumerate([(1.0, 2.0, 0.8), (0.0, 0.5, 2.5)]):
        cov = s0**2 * np.ones((7, 7)) + sd**2 * np.eye(7)
        expected += multivariate_normal(np.full(7, m0), cov).logpdf(points[:, f])
    assert exact_log_evidence(points, spec) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("weights", ["dirichlet", "fixed"])
def test_matches_the_covariance_oracle(weights):
    rng = np.random.default_rng(5)
    points = rng.normal(size=(5, 2)) * 2.0
    spec = MixtureSpec(n_components=3, mean_prior_mean=0.3, mean_prior_sd=(1.5, 2.5),
                       weights=weights, dirichlet_alpha=(0.5, 1.0, 3.0), obs_sd=(1.0, 0.6))
    assert exact_log_evidence(points, spec) == pytest.approx(_oracle_by_covariance(points, spec),
                                                             rel=1e-11)


def test_blocks_agree_with_one_pass():
    # K^N = 3^11 = 177147 > the 65536-assignment block: exercises the blockwise logsumexp
    rng = np.random.default_rng(0)
    points = rng.normal(size=11)
    spec = MixtureSpec(n_components=3, mean_prior_sd=2.0, dirichlet_alpha=0.7, obs_sd=1.0)
    whole = exact_log_evidence(points, spec)
    # permuting the points leaves the evidence unchanged (exchangeability)
    assert exact_log_evidence(points[::-1], spec) == pytest.approx(whole, rel=1e-12)
    assert np.isfinite(whole)


def test_refuses_learned_obs_sd():
    spec = MixtureSpec(n_components=2, obs_sd="learned")
    with pytest.raises(NotImplementedError, match="exact_log_evidence needs a known obs_sd"):
        exact_log_evidence([0.0, 1.0], spec)


def test_refuses_too_many_assignments():
    spec = MixtureSpec(n_components=3)
    assert 3**14 > MAX_ASSIGNMENTS
    with pytest.raises(ValueError, match=r"expected at most 2000000 assignments .* got 3\*\*14.*"
                                         r"points\[:13\]"):
        exact_log_evidence(np.zeros(14), spec)
