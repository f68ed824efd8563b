"""exact_log_evidence and exact_posterior against independent oracles: itertools.product over
assignments with scipy multivariate normals on the collapsed marginal, and quadrature.

Tolerances: both sides compute the same exact number in float64 by different routes, so
they differ by round-off only: ~1e-16 relative per operation, grown by sums of up to 1e5
terms and by scipy's Cholesky factorizations to ~1e-13; rel 1e-12 (1e-11 through the
N x N covariances) leaves room for that and still fails on any wrong term (a missing
constant or a wrong count moves log p(x) by > 1e-3 nats of ~20).

(Over 400 lines: two independent brute forces, one per covariance form, with their cases.)
"""

import dataclasses
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
    spec = MixtureSpec(
        n_components=3,
        mean_prior_mean=(0.5, -1.0),
        mean_prior_sd=(2.0, 0.7),
        dirichlet_alpha=(1.0, 2.0, 0.5),
        obs_sd=(1.5, 0.3),
    )
    x = np.array([[0.3, -2.0]])
    scale = np.sqrt(np.array([2.0, 0.7]) ** 2 + np.array([1.5, 0.3]) ** 2)
    per_component = norm(loc=[0.5, -1.0], scale=scale).logpdf(x).sum()
    # every component has the same prior predictive; weights' prior mean sums to 1
    assert exact_log_evidence(x, spec) == pytest.approx(per_component, rel=1e-12)


def test_one_component_is_the_conjugate_marginal_likelihood():
    rng = np.random.default_rng(3)
    points = rng.normal(size=(7, 2)) * [1.0, 3.0] + [2.0, -1.0]
    spec = MixtureSpec(
        n_components=1, mean_prior_mean=(1.0, 0.0), mean_prior_sd=(2.0, 0.5), obs_sd=(0.8, 2.5)
    )
    expected = 0.0
    for f, (m0, s0, sd) in enumerate([(1.0, 2.0, 0.8), (0.0, 0.5, 2.5)]):
        cov = s0**2 * np.ones((7, 7)) + sd**2 * np.eye(7)
        expected += multivariate_normal(np.full(7, m0), cov).logpdf(points[:, f])
    assert exact_log_evidence(points, spec) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("weights", ["dirichlet", "fixed"])
def test_matches_the_covariance_oracle(weights):
    rng = np.random.default_rng(5)
    points = rng.normal(size=(5, 2)) * 2.0
    spec = MixtureSpec(
        n_components=3,
        mean_prior_mean=0.3,
        mean_prior_sd=(1.5, 2.5),
        weights=weights,
        dirichlet_alpha=(0.5, 1.0, 3.0),
        obs_sd=(1.0, 0.6),
    )
    assert exact_log_evidence(points, spec) == pytest.approx(
        _oracle_by_covariance(points, spec), rel=1e-11
    )


def _one_pass(points, spec):
    """log p(x, z) for all K^N assignments at once, (K^N,), and the assignments (K^N, N).

    Each component's mean integrates out by Bayes' identity p(y) = p(y | m) p(m) / p(m | y)
    at m = the posterior mean (an independent route to the closed form: no completing of the
    square), per component and feature; p(z) is the Dirichlet-multinomial of one labelled
    sequence.
    """
    n, d = points.shape
    k = spec.n_components
    z = np.stack(np.meshgrid(*[np.arange(k)] * n, indexing="ij"), axis=-1).reshape(-1, n)
    one_hot = (z[..., None] == np.arange(k)).astype(float)  # (A, N, K)
    counts = one_hot.sum(1)[..., None]  # (A, K, 1)
    s1 = np.einsum("ank,nd->akd", one_hot, points)
    s2 = np.einsum("ank,nd->akd", one_hot, points**2)
    m0, tau2 = spec.prior_mean(d), spec.prior_sd(d) ** 2
    sigma2 = spec.known_obs_sd(d) ** 2  # (K, D)
    post_var = 1.0 / (1.0 / tau2 + counts / sigma2)
    post_mean = post_var * (m0 / tau2 + s1 / sigma2)
    log_lik = -0.5 * counts * np.log(2 * np.pi * sigma2) - (
        s2 - 2 * post_mean * s1 + counts * post_mean**2
    ) / (2 * sigma2)
    log_prior = norm.logpdf(post_mean, m0, np.sqrt(tau2))
    log_post = -0.5 * np.log(2 * np.pi * post_var)  # at its mean
    alpha = spec.alpha()
    log_pz = (
        gammaln(alpha.sum())
        - gammaln(alpha.sum() + n)
        + (gammaln(alpha + counts[..., 0]) - gammaln(alpha)).sum(-1)
    )
    return log_pz + (log_lik + log_prior - log_post).sum((1, 2)), z


def test_blocks_agree_with_one_pass():
    # K^N = 3^11 = 177 147 assignments, more than one block of 65 536: the blockwise
    # logsumexp (exact_log_evidence) and the running-max accumulation (exact_posterior) must
    # give the one-pass answer over every assignment at once
    rng = np.random.default_rng(0)
    points = rng.normal(size=(11, 1)) * 2.0
    spec = MixtureSpec(n_components=3, mean_prior_sd=2.0, dirichlet_alpha=0.7, obs_sd=1.0)
    log_joint, z = _one_pass(points, spec)
    log_z = logsumexp(log_joint)
    # rel 1e-12: float64 sums of 1.8e5 terms of size ~20 nats round to ~1e-14 relative
    assert exact_log_evidence(points, spec) == pytest.approx(log_z, rel=1e-12)
    post = exact_posterior(points, spec)
    assert post.log_evidence == pytest.approx(log_z, rel=1e-12)
    weight = np.exp(log_joint - log_z)  # p(z | x)
    same = z[:, :, None] == z[:, None, :]  # (A, N, N)
    expected = np.einsum("a,aij->ij", weight, same)
    np.testing.assert_allclose(post.coclustering, expected, rtol=0, atol=1e-12)


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
            log_pz = (
                gammaln(alpha.sum())
                - gammaln(alpha.sum() + n)
                + np.sum(gammaln(alpha + counts) - gammaln(alpha))
            )
        same = (z[:, None] == z[None, :]).astype(float)
        log_px = sum(
            multivariate_normal(
                np.full(n, spec.prior_mean(d)[f]),
                np.diag(obs_sd[z, f] ** 2) + spec.prior_sd(d)[f] ** 2 * same,
            ).logpdf(points[:, f])
            for f in range(d)
        )
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
    spec = MixtureSpec(
        n_components=k,
        mean_prior_mean=0.2,
        mean_prior_sd=1.8,
        weights=weights,
        dirichlet_alpha=tuple(np.linspace(0.5, 2.0, k)),
        obs_sd=tuple(np.linspace(0.6, 1.1, d)),
    )
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
    expected = [
        logsumexp([lp for _, lp in _brute_force(np.vstack([points, row]), spec)]) - log_z
        for row in new
    ]
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
    c = exact_posterior(
        far, MixtureSpec(n_components=2, mean_prior_sd=5.0, obs_sd=0.5)
    ).coclustering
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


BAD_INPUT = [  # (call, error, pinned message)
    (
        lambda: exact_log_evidence([0.0, 1.0], MixtureSpec(n_components=2, obs_sd="learned")),
        NotImplementedError,
        "exact_log_evidence needs a known obs_sd",
    ),
    (
        lambda: exact_posterior([0.0, 1.0], MixtureSpec(n_components=2, obs_sd="learned")),
        NotImplementedError,
        "exact_posterior needs a known obs_sd",
    ),
    # 3**14 = 4 782 969 > MAX_ASSIGNMENTS = 2 000 000 >= 3**13
    (
        lambda: exact_log_evidence(np.zeros(14), MixtureSpec(n_components=3)),
        ValueError,
        r"expected at most 2000000 assignments .* got 3\*\*14.*points\[:13\]",
    ),
    (
        lambda: exact_posterior(np.zeros(21), MixtureSpec(n_components=2)),
        ValueError,
        r"got 2\*\*21.*points\[:20\]",
    ),
    (
        lambda: exact_posterior([0.0, 1.0, 3.0], MixtureSpec(n_components=2)).predictive_logpdf(
            np.zeros((4, 2))
        ),
        ValueError,
        r"^new_points: expected 1 features .* got 2",
    ),
    (
        lambda: exact_posterior([0.0, 1.0], {"n_components": 2}),
        TypeError,
        r"^spec: expected a MixtureSpec",
    ),
    (lambda: exact_feasible(0, 2), ValueError, r"^n_samples: expected an integer >= 1, got 0"),
    (lambda: exact_feasible(5, 2.5), TypeError, r"^n_components: expected an integer, got"),
]


@pytest.mark.parametrize("call, error, message", BAD_INPUT)
def test_bad_input_is_refused_with_a_message_that_teaches(call, error, message):
    with pytest.raises(error, match=message):
        call()


# ------------------------------------------------------------------ known full covariance
def _brute_force_full(points, spec):
    """log p(x, z) for every z, with all N*D coordinates stacked into one Gaussian.

    Given z the means integrate out and x (flattened point-major) is Gaussian with mean
    m0 repeated and covariance [i == j] Sigma_{z_i} + [z_i == z_j] diag(prior_sd^2): the
    definition, built entry by entry and evaluated by scipy (no information form, no
    per-component split): list of (z, log p(x, z)).
    """
    n, d = points.shape
    k = spec.n_components
    cov = spec.known_obs_cov(d)
    prior_cov = np.diag(spec.prior_sd(d) ** 2)
    alpha = spec.alpha()
    out = []
    for z in itertools.product(range(k), repeat=n):
        z = np.array(z)
        counts = np.bincount(z, minlength=k)
        log_pz = (
            -n * np.log(k)
            if spec.fixed_weights
            else gammaln(alpha.sum())
            - gammaln(alpha.sum() + n)
            + np.sum(gammaln(alpha + counts) - gammaln(alpha))
        )
        stacked = np.zeros((n * d, n * d))
        for i in range(n):
            for j in range(n):
                block = (i == j) * cov[z[i]] + (z[i] == z[j]) * prior_cov
                stacked[i * d : (i + 1) * d, j * d : (j + 1) * d] = block
        mean = np.tile(spec.prior_mean(d), n)
        out.append((z, log_pz + multivariate_normal(mean, stacked).logpdf(points.ravel())))
    return out


def _full_case(n, k, d, weights, per_component, seed=11):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=2.0, size=(k, d))
    points = centers[rng.integers(k, size=n)] + rng.normal(scale=0.7, size=(n, d))
    # random SPD matrices with correlations up to ~0.8: A A^T + 0.3 I
    factors = rng.normal(size=(k if per_component else 1, d, d))
    cov = factors @ np.swapaxes(factors, 1, 2) + 0.3 * np.eye(d)
    spec = MixtureSpec(
        n_components=k,
        mean_prior_mean=tuple(np.linspace(-0.5, 0.5, d)),
        mean_prior_sd=tuple(np.linspace(1.2, 2.2, d)),
        weights=weights,
        dirichlet_alpha=tuple(np.linspace(0.5, 2.0, k)),
        covariance="full",
        obs_cov=cov if per_component else cov[0],
    )
    return points, spec


FULL_CASES = [  # (n_samples, n_components, n_features, weights, one covariance per component)
    (6, 2, 2, "dirichlet", True),
    (5, 2, 3, "fixed", False),
    (5, 3, 2, "dirichlet", True),
    (4, 3, 3, "dirichlet", False),
    (5, 1, 2, "dirichlet", True),  # one component: the conjugate marginal likelihood alone
]


@pytest.mark.parametrize("n, k, d, weights, per_component", FULL_CASES)
def test_known_full_covariance_matches_the_stacked_gaussian(n, k, d, weights, per_component):
    points, spec = _full_case(n, k, d, weights, per_component)
    terms = _brute_force_full(points, spec)
    log_z = logsumexp([lp for _, lp in terms])
    post = exact_posterior(points, spec)
    # rel 1e-11: the N*D x N*D Cholesky of the oracle (see the module docstring)
    assert post.log_evidence == pytest.approx(log_z, rel=1e-11)
    assert exact_log_evidence(points, spec) == pytest.approx(post.log_evidence, rel=1e-13)
    expected = sum(np.exp(lp - log_z) * (z[:, None] == z[None, :]) for z, lp in terms)
    np.testing.assert_allclose(post.coclustering, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("n, k, d, weights, per_component", FULL_CASES[:3])
def test_known_full_covariance_predictive_is_the_evidence_ratio(n, k, d, weights, per_component):
    points, spec = _full_case(n, k, d, weights, per_component)
    post = exact_posterior(points, spec)
    new = np.random.default_rng(2).normal(scale=2.5, size=(3, d))
    log_z = logsumexp([lp for _, lp in _brute_force_full(points, spec)])
    expected = [
        logsumexp([lp for _, lp in _brute_force_full(np.vstack([points, row]), spec)]) - log_z
        for row in new
    ]
    np.testing.assert_allclose(post.predictive_logpdf(new), expected, rtol=1e-10)


@pytest.mark.parametrize("weights", ["dirichlet", "fixed"])
def test_a_diagonal_full_covariance_is_the_diag_model(weights):
    # obs_cov = diag(obs_sd^2) is the same model as obs_sd: the multivariate route (F1)
    # must give the per-feature route's numbers up to round-off (~1e-15 relative)
    points, diag_spec = _case(7, 3, 2, weights)
    obs_sd = np.array(diag_spec.obs_sd)
    full_spec = dataclasses.replace(
        diag_spec, obs_sd=None, covariance="full", obs_cov=np.diag(obs_sd**2)
    )
    diag, full = exact_posterior(points, diag_spec), exact_posterior(points, full_spec)
    assert full.log_evidence == pytest.approx(diag.log_evidence, rel=1e-13)
    np.testing.assert_allclose(full.coclustering, diag.coclustering, rtol=0, atol=1e-13)
    new = np.random.default_rng(4).normal(scale=2.0, size=(5, 2))
    np.testing.assert_allclose(full.predictive_logpdf(new), diag.predictive_logpdf(new), rtol=1e-13)


def test_correlation_changes_the_evidence_in_the_right_direction():
    # points on the line y = x: a covariance with correlation +0.9 explains them far better
    # than one with -0.9 (same variances), so its evidence is larger
    t = np.linspace(-1.5, 1.5, 6)
    points = np.column_stack([t, t + 0.05 * np.sin(7 * t)])

    def log_z(rho):
        cov = [[1.0, rho], [rho, 1.0]]
        spec = MixtureSpec(n_components=2, covariance="full", obs_cov=cov)
        return exact_log_evidence(points, spec)

    assert log_z(0.9) > log_z(0.0) > log_z(-0.9)


LEARNED_COVARIANCE = [  # (spec, the field the message names, what it says came)
    (MixtureSpec(n_components=2, covariance="full", obs_cov="learned"), "obs_cov", "learned"),
    (MixtureSpec(n_components=2, covariance="tied"), "covariance", "'tied'"),
    (MixtureSpec(n_components=2, covariance="spherical"), "covariance", "'spherical'"),
]


@pytest.mark.parametrize("spec, field, got", LEARNED_COVARIANCE)
@pytest.mark.parametrize("function", [exact_log_evidence, exact_posterior])
def test_a_learned_covariance_is_refused_and_smc_is_suggested(spec, field, got, function):
    points = np.array([[0.0, 1.0], [1.0, 0.5]])
    message = (
        rf"^spec\.{field}: {function.__name__} needs a known covariance .* got .*{got}.*"
        r"'smc' engine estimates"
    )
    with pytest.raises(NotImplementedError, match=message):
        function(points, spec)
