"""EM with full, tied and spherical covariance: scikit-learn step by step, MAP, known obs_cov."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp
from scipy.stats import dirichlet, gamma, multivariate_normal, norm, wishart
from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning
from sklearn.mixture import GaussianMixture

from ppl_mixtures import MixtureSpec, datasets, fit
from ppl_mixtures.inference.conjugate import em

#: Relative slack for "never decreases" (as in test_em.py): <= 100 points' terms carry
#: ~1e-13 relative round-off; a wrong M-step loses far more than 1e-9.
ROUND_OFF = 1e-9
TYPES = ("full", "tied", "spherical", "diag")


def _old_faithful():
    points = datasets.old_faithful()
    return (points - points.mean(axis=0)) / points.std(axis=0)


def _generated(seed=0, n_samples=400):
    """Three correlated clusters in D = 3."""
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 0.0, 0.0], [3.0, 1.0, -1.0], [-2.0, 3.0, 1.0]])
    mixing = rng.normal(size=(3, 3, 3)) * 0.6 + np.eye(3)
    labels = rng.integers(3, size=n_samples)
    noise = np.einsum("nd,nde->ne", rng.normal(size=(n_samples, 3)), mixing[labels])
    return centers[labels] + noise


def _spec(covariance, n_components, **kw):
    if covariance == "full":
        return MixtureSpec(n_components=n_components, covariance="full", obs_cov="learned", **kw)
    if covariance == "diag":
        return MixtureSpec(n_components=n_components, obs_sd="learned", **kw)
    return MixtureSpec(n_components=n_components, covariance=covariance, **kw)


def _start(points, covariance, n_components, seed):
    """The same start for both: our EmState and sklearn's (weights, means, precisions)_init."""
    rng = np.random.default_rng(seed)
    n_features = points.shape[1]
    weights = rng.dirichlet(np.full(n_components, 5.0))
    means = points[rng.choice(len(points), n_components, replace=False)]
    factor = rng.normal(size=(n_components, n_features, n_features)) * 0.3
    covs = factor @ np.swapaxes(factor, 1, 2) + np.eye(n_features)
    if covariance == "full":
        return em.full_state(weights, means, covs), np.linalg.inv(covs)
    if covariance == "tied":
        tied = np.broadcast_to(covs[0], covs.shape)
        return em.full_state(weights, means, tied), np.linalg.inv(covs[0])
    if covariance == "spherical":
        var = np.diagonal(covs, axis1=1, axis2=2).mean(axis=1)
        variances = np.repeat(var[:, None], n_features, axis=1)
        return em.EmState(weights, means, variances, -np.inf, 0), 1.0 / var
    variances = np.diagonal(covs, axis1=1, axis2=2).copy()
    return em.EmState(weights, means, variances, -np.inf, 0), 1.0 / variances


def _sklearn_covariances(gm, covariance):
    """sklearn's covariances_ in our state's form (K, D, D) or (K, D)."""
    if covariance == "tied":
        return np.broadcast_to(gm.covariances_, (len(gm.weights_), *gm.covariances_.shape))
    if covariance == "spherical":
        return np.repeat(gm.covariances_[:, None], gm.means_.shape[1], axis=1)
    return gm.covariances_


def _ours(state, covariance):
    return state.covariances if covariance in ("full", "tied") else state.variances


@pytest.mark.parametrize("covariance", TYPES)
@pytest.mark.parametrize("data", ["old_faithful", "generated"])
def test_each_step_equals_scikit_learn(covariance, data):
    points = _old_faithful() if data == "old_faithful" else _generated()
    n_components = 2 if data == "old_faithful" else 3
    spec = _spec(covariance, n_components)
    state, precisions_init = _start(points, covariance, n_components, seed=1)
    gm = GaussianMixture(
        n_components,
        covariance_type=covariance,
        reg_covar=1e-6,
        weights_init=state.weights,
        means_init=state.means,
        precisions_init=precisions_init,
        max_iter=1,
        tol=0.0,
        warm_start=True,  # each fit() runs one more EM iteration from where it stopped
    )
    for _ in range(8):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SklearnConvergenceWarning)
            gm.fit(points)
        state, info = em.step(points, spec, state, reg_covar=1e-6, backend="numba")
        # the same formulas summed in other orders: each step adds ~N eps ~ 1e-13 relative
        # to parameters of size ~1; 8 steps of a contraction stay far below 1e-10
        np.testing.assert_allclose(state.weights, gm.weights_, rtol=0, atol=1e-10)
        np.testing.assert_allclose(state.means, gm.means_, rtol=0, atol=1e-10)
        np.testing.assert_allclose(
            _ours(state, covariance), _sklearn_covariances(gm, covariance), rtol=0, atol=1e-10
        )
        # sklearn's lower_bound_ is the mean log-likelihood of the state entering the step
        assert info.log_lik / len(points) == pytest.approx(gm.lower_bound_, rel=0, abs=1e-12)


@pytest.mark.parametrize("covariance", TYPES)
def test_final_log_likelihood_equals_scikit_learn(covariance):
    points = _generated(seed=2)
    spec = _spec(covariance, 3)
    state, precisions_init = _start(points, covariance, 3, seed=3)
    gm = GaussianMixture(
        3,
        covariance_type=covariance,
        weights_init=state.weights,
        means_init=state.means,
        precisions_init=precisions_init,
        max_iter=2000,
        tol=1e-13,
    ).fit(points)
    for _ in range(2000):
        state, info = em.step(points, spec, state)
        if abs(info.objective_change) <= 1e-13 * len(points):
            break
    final = em.step(points, spec, state)[1].log_lik
    # both converged to the same fixed point: equal to the stopping tolerance 1e-13 per point
    assert final / len(points) == pytest.approx(gm.score(points), rel=0, abs=1e-10)


@pytest.mark.parametrize("covariance", ["full", "tied", "spherical"])
def test_fit_reaches_scikit_learns_optimum_on_old_faithful(covariance):
    points = _old_faithful()
    result = fit(
        points, _spec(covariance, 2), engine="em", random_seed=0, n_init=3, progressbar=False
    )
    gm = GaussianMixture(2, covariance_type=covariance, n_init=5, tol=1e-12, random_state=0)
    gm.fit(points)
    assert result.converged
    # one optimum (both start from k-means seeds); the objectives stop at relative 1e-10
    assert result.details.log_lik_final / len(points) == pytest.approx(
        gm.score(points), rel=0, abs=1e-8
    )


@pytest.mark.parametrize("covariance", ["full", "tied", "spherical"])
def test_fit_stores_the_covariances_in_the_posterior(covariance):
    points = _generated(seed=4, n_samples=200)
    result = fit(points, _spec(covariance, 3), engine="em", random_seed=1, progressbar=False)
    post = result.idata.posterior
    covs = result.details.covariances
    assert covs.shape == (3, 3, 3)
    np.testing.assert_allclose(
        post["obs_sd"].values[0, 0], np.sqrt(np.diagonal(covs, axis1=1, axis2=2)), rtol=1e-14
    )
    if covariance == "spherical":
        assert "obs_cov" not in post
        sd = post["obs_sd"].values[0, 0]
        np.testing.assert_array_equal(sd, np.repeat(sd[:, :1], 3, axis=1))
    else:
        np.testing.assert_array_equal(post["obs_cov"].values[0, 0], covs)
        if covariance == "tied":
            np.testing.assert_array_equal(covs, np.broadcast_to(covs[0], covs.shape))


def test_known_full_covariance_moves_only_means_and_weights():
    points = _old_faithful()
    known = np.array([[0.2, 0.12], [0.12, 0.25]])
    spec = MixtureSpec(n_components=2, covariance="full", obs_cov=known)
    result = fit(points, spec, engine="em", random_seed=0, tol=1e-13, progressbar=False)
    np.testing.assert_array_equal(result.details.covariances, np.broadcast_to(known, (2, 2, 2)))
    assert "obs_cov" not in result.idata.posterior and "obs_sd" not in result.idata.posterior
    # a fixed point of EM: means are the responsibility-weighted means under scipy's density
    means = result.idata.posterior["means"].values[0, 0]
    weights = result.idata.posterior["weights"].values[0, 0]
    log_joint = np.log(weights) + np.stack(
        [multivariate_normal(m, known).logpdf(points) for m in means], axis=1
    )
    resp = np.exp(log_joint - logsumexp(log_joint, axis=1)[:, None])
    # converged to relative change 1e-13 of the objective: parameters within ~sqrt(1e-13)
    np.testing.assert_allclose(means, resp.T @ points / resp.sum(axis=0)[:, None], atol=1e-5)
    np.testing.assert_allclose(weights, resp.mean(axis=0), atol=1e-5)
    assert result.details.log_lik_final == pytest.approx(logsumexp(log_joint, axis=1).sum())


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    covariance=st.sampled_from(["full", "tied", "spherical"]),
    prior=st.sampled_from(["none", "map"]),
    n_components=st.integers(1, 3),
    n_features=st.integers(1, 3),
)
def test_objective_never_decreases(seed, covariance, prior, n_components, n_features):
    points = _generated(seed % 1000, 60)[:, :n_features]
    spec = _spec(covariance, n_components, mean_prior_sd=2.0, dirichlet_alpha=0.7)
    state = em.init(points, spec, random_seed=seed, init="random_points", prior=prior)
    trace = []
    for _ in range(12):
        state, info = em.step(points, spec, state, prior=prior)
        trace.append(info.objective)
    trace = np.array(trace)
    assert np.all(np.isfinite(trace))
    assert np.all(np.diff(trace) >= -ROUND_OFF * np.abs(trace[1:]))


def _map_spec(covariance):
    return _spec(
        covariance,
        3,
        mean_prior_mean=(1.0, 0.0),
        mean_prior_sd=(2.0, 0.5),
        dirichlet_alpha=(1.5, 3.0, 2.0),
        precision_prior_shape=2.5,
        precision_prior_rate=0.7,
    )


@pytest.mark.parametrize("covariance", ["full", "tied", "spherical"])
def test_map_log_prior_is_the_scipy_log_density(covariance):
    rng = np.random.default_rng(2)
    spec = _map_spec(covariance)
    weights = rng.dirichlet(np.ones(3))
    means = rng.normal(size=(3, 2))
    factor = rng.normal(size=(3, 2, 2)) * 0.5
    covs = factor @ np.swapaxes(factor, 1, 2) + 0.5 * np.eye(2)
    expected = norm.logpdf(means, [1.0, 0.0], [2.0, 0.5]).sum() + dirichlet.logpdf(
        weights, [1.5, 3.0, 2.0]
    )
    dof, scale = spec.wishart_dof(2), spec.wishart_scale(2)
    if covariance == "full":
        state = em.full_state(weights, means, covs)
        expected += sum(wishart.logpdf(np.linalg.inv(c), dof, scale) for c in covs)
    elif covariance == "tied":
        state = em.full_state(weights, means, np.broadcast_to(covs[0], covs.shape))
        expected += wishart.logpdf(np.linalg.inv(covs[0]), dof, scale)
    else:
        var = np.array([0.4, 1.1, 2.0])
        state = em.EmState(weights, means, np.repeat(var[:, None], 2, axis=1), -np.inf, 0)
        expected += gamma.logpdf(1 / var, 2.5, scale=1 / 0.7).sum()
    # ~20 terms of size <= 10 in other orders: <= 2 * 20 * 10 eps ~ 1e-13 absolute
    assert em.log_prior(state, spec) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("covariance", ["full", "tied", "spherical"])
def test_map_fixed_point_is_a_local_maximum_of_the_log_joint(covariance):
    points = _old_faithful()[:80, :]
    spec = _map_spec(covariance)
    result = fit(points, spec, engine="em", prior="map", random_seed=0, progressbar=False)
    assert result.converged
    post = result.idata.posterior
    weights = post["weights"].values[0, 0]
    means = post["means"].values[0, 0]
    covs = result.details.covariances

    def log_joint(means, covs):
        if covariance == "spherical":
            state = em.EmState(weights, means, np.diagonal(covs, axis1=1, axis2=2), -np.inf, 0)
        else:
            state = em.full_state(weights, means, covs)
        dens = np.stack(
            [multivariate_normal(m, c).logpdf(points) for m, c in zip(means, covs, strict=True)],
            axis=1,
        )
        return logsumexp(np.log(weights) + dens, axis=1).sum() + em.log_prior(state, spec)

    best = log_joint(means, covs)
    assert best == pytest.approx(result.details.objective_final, rel=1e-12)
    rng = np.random.default_rng(0)
    for _ in range(20):  # small moves of means and covariances (kept in the model's family)
        step = 1e-3 * rng.normal(size=means.shape)
        if covariance == "spherical":
            bump = 1e-3 * rng.normal(size=3)[:, None, None] * np.eye(2)
        else:
            sym = 1e-3 * rng.normal(size=(1 if covariance == "tied" else 3, 2, 2))
            bump = np.broadcast_to(sym + np.swapaxes(sym, 1, 2), covs.shape)
        # a maximum loses ~1e-6 (quadratic in the 1e-3 move); converged to 1e-10 relative
        assert log_joint(means + step, covs + bump) <= best + 1e-10 * abs(best)


def test_bad_precision_in_a_hand_built_state_is_refused():
    points = _old_faithful()
    spec = _spec("full", 2)
    state = em.full_state(np.array([0.5, 0.5]), points[:2], -np.eye(2)[None].repeat(2, 0))
    with pytest.raises(ValueError, match="precisions: expected symmetric positive definite"):
        em.step(points, spec, state)


def test_a_state_of_the_wrong_covariance_type_is_refused():
    points = _old_faithful()
    diag_state = em.EmState(np.array([0.5, 0.5]), points[:2], np.ones((2, 2)), -np.inf, 0)
    with pytest.raises(ValueError, match="state: expected an EmState with covariance matrices"):
        em.step(points, _spec("full", 2), diag_state)
    full_state = em.full_state(np.array([0.5, 0.5]), points[:2], np.eye(2)[None].repeat(2, 0))
    with pytest.raises(ValueError, match="state: expected an EmState without covariance"):
        em.step(points, _spec("spherical", 2), full_state)
