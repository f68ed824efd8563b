"""exact_log_evidence and exact_posterior against independent oracles: itertools.product over
assignments with scipy multivariate normals on the collapsed marginal, and quadrature."""

import itertools

import numpy as np
import pytest
from scipy.special import gammaln, logsumexp
from scipy.stats import multivariate_normal, norm

from ppl_mixtures.model.evidence import (
    MAX_ASSIGNMENTS,
    exact_feasible,
    exact_log_evidence,
    exact_posterior,
)
from ppl_mixtures.model.spec import MixtureSpec


def _oracle_by_covariance(points, spec):
    """Sum over z of p(z) N(x_d | m0_d 1, obs_sd_d^2 I + prior_sd_d^2 [z_i == z_j]), per feature.

    Given z, the means integrate out into a Gaussian on each feature column whose covariance
    couples the points that share a component: an independent route to the same number.
    """
    return logsumexp([log_joint for _, log_joint in _brute_force(points, spec)])


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


# ------------------------------------------------------------------ exact_posterior
def _brute_force(points, spec):
    """Every assignment z with its log p(x, z), by itertools.product and scipy's collapsed
    marginal (see :func:`_oracle_by_covariance`): list of (z, log p(x, z))."""
    n, d = points.shape
    k = spec.n_components
    alpha = spec.alpha()
    obs_sd = spec.known_obs_sd(d)
    out = []
    for z in itertools.product(range(k), repeat=n):
        z = np.array(z)
        counts = np.bincount(z, minlength=k)
        if spec.fixed_weights:
            log_pz = -n * np.log(k)
        else:
            log_pz = (gammaln(alpha.sum()) - gammaln(alpha.sum() + n)
                      + np.sum(gammaln(alpha + counts) - gammaln(alpha)))
        same = (z[:, None] == z[None, :]).astype(float)
        log_px = sum(multivariate_normal(np.full(n, spec.prior_mean(d)[f]),
                                         np.diag(obs_sd[z, f] ** 2)
                                         + spec.prior_sd(d)[f] ** 2 * same).logpdf(points[:, f])
                     for f in range(d))
        out.append((z, log_pz + log_px))
    return out


CASES = [  # (n_samples, n_components, n_features, weights)
    (8, 2, 1, "dirichlet"),
    (7, 2, 2, "fixed"),
    (6, 3, 1, "fixed"),
    (5, 3, 2, "dirichlet"),
]


def _case(n, k, d, weights, seed=7):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=2.0, size=(k, d))
    points = centers[rng.integers(k, size=n)] + rng.normal(scale=0.7, size=(n, d))
    spec = MixtureSpec(n_components=k, mean_prior_mean=0.2, mean_prior_sd=1.8,
                       weights=weights, dirichlet_alpha=tuple(np.linspace(0.5, 2.0, k)),
                       obs_sd=tuple(np.linspace(0.6, 1.1, d)))
    return points, spec


@pytest.mark.parametrize("n, k, d, weights", CASES)
def test_exact_posterior_matches_brute_force(n, k, d, weights):
    points, spec = _case(n, k, d, weights)
    post = exact_posterior(points, spec)
    terms = _brute_force(points, spec)
    log_z = logsumexp([lp for _, lp in terms])
    assert post.log_evidence == pytest.approx(log_z, rel=1e-11)
    assert post.log_evidence == exact_log_evidence(points, spec)
    expected = sum(np.exp(lp - log_z) * (z[:, None] == z[None, :]) for z, lp in terms)
    np.testing.assert_allclose(post.coclustering, expected, rtol=0, atol=1e-12)
    assert post.n_assignments == k**n and post.coclustering.shape == (n, n)


@pytest.mark.parametrize("n, k, d, weights", CASES[:3])
def test_predictive_is_the_evidence_ratio(n, k, d, weights):
    # p(x_new | x) = p(x, x_new) / p(x): the brute-force evidence of N + 1 points over N's
    points, spec = _case(n, k, d, weights)
    post = exact_posterior(points, spec)
    new = np.random.default_rng(1).normal(scale=2.5, size=(3, d))
    log_z = logsumexp([lp for _, lp in _brute_force(points, spec)])
    expected = [logsumexp([lp for _, lp in _brute_force(np.vstack([points, row]), spec)]) - log_z
                for row in new]
    got = post.predictive_logpdf(new)
    assert got.shape == (3,)
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_coclustering_is_a_probability_matrix():
    points, spec = _case(9, 2, 2, "dirichlet", seed=3)
    c = exact_posterior(points, spec).coclustering
    assert np.all((c >= 0) & (c <= 1))
    np.testing.assert_array_equal(np.diag(c), 1.0)
    np.testing.assert_array_equal(c, c.T)
    assert not c.flags.writeable
    # two far-apart pairs: together with their partner, apart from the others
    far = np.array([-6.0, -5.8, 6.1, 5.9])
    c = exact_posterior(far, MixtureSpec(n_components=2, mean_prior_sd=5.0, obs_sd=0.5)).coclustering
    assert c[0, 1] > 0.99 and c[2, 3] > 0.99 and c[0, 2] < 0.01


def test_predictive_integrates_to_one_in_1d():
    points, spec = _case(8, 2, 1, "dirichlet")
    grid = np.linspace(-30.0, 30.0, 12_001)  # step 0.005; the predictive sd is ~0.9 to 2
    density = np.exp(exact_posterior(points, spec).predictive_logpdf(grid))
    # the trapezoid rule on a smooth, Gaussian-tailed density: error far below 1e-8
    assert np.trapezoid(density, grid) == pytest.approx(1.0, abs=1e-8)


def test_exact_feasible_states_the_limit():
    for k in (2, 3, 4, 5):
        n = int(np.floor(np.log(MAX_ASSIGNMENTS) / np.log(k) + 1e-12))
        assert k**n <= MAX_ASSIGNMENTS < k ** (n + 1)
        assert exact_feasible(n, k) and not exact_feasible(n + 1, k)
    assert exact_feasible(10**6, 1)
    with pytest.raises(ValueError, match=r"^n_samples: expected an integer >= 1, got 0"):
        exact_feasible(0, 2)
    with pytest.raises(TypeError, match=r"^n_components: expected an integer, got"):
        exact_feasible(5, 2.5)


def test_exact_posterior_refuses_what_it_cannot_do():
    with pytest.raises(NotImplementedError, match="exact_posterior needs a known obs_sd"):
        exact_posterior([0.0, 1.0], MixtureSpec(n_components=2, obs_sd="learned"))
    with pytest.raises(ValueError, match=r"got 2\*\*21"):
        exact_posterior(np.zeros(21), MixtureSpec(n_components=2))
    post = exact_posterior([0.0, 1.0, 3.0], MixtureSpec(n_components=2))
    with pytest.raises(ValueError, match=r"^new_points: expected 1 features .* got 2"):
        post.predictive_logpdf(np.zeros((4, 2)))
    with pytest.raises(TypeError, match=r"^spec: expected a MixtureSpec"):
        exact_posterior([0.0, 1.0], {"n_components": 2})
