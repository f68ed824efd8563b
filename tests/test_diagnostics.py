"""Diagnostics: responsibilities, log-likelihood and LOO, MCMC summaries, posterior predictive."""

import numpy as np
import pytest
from scipy import stats

from ppl_mixtures import MixtureFit, MixtureSpec, diagnostics
from ppl_mixtures.density import mixture_logp
from ppl_mixtures.results import make_idata

POINTS = np.random.default_rng(0).normal(size=(40, 2)) * 1.5


def _numpy_fit(n_chains=2, n_draws=30, learned=False, seed=1, stats_=None):
    rng = np.random.default_rng(seed)
    means = np.array([[-1.0, -1.5], [1.0, 1.0]]) + 0.3 * rng.standard_normal((n_chains, n_draws, 2, 2))
    weights = rng.dirichlet([20.0, 80.0], size=(n_chains, n_draws))
    obs_sd = np.exp(0.2 * rng.standard_normal((n_chains, n_draws, 2, 2))) if learned else None
    spec = MixtureSpec(n_components=2, dirichlet_alpha=0.1,
                       obs_sd="learned" if learned else (1.0, 0.5))
    idata = make_idata(means, weights, POINTS, obs_sd=obs_sd, sample_stats=stats_)
    return MixtureFit(engine="test", spec=spec, idata=idata)


def _scipy_responsibilities(points, weights, means, sd):
    """Direct computation with scipy.stats, no log space: the oracle for small data."""
    dens = np.stack([weights[k] * stats.multivariate_normal(means[k], np.diag(sd[k] ** 2)).pdf(points)
                     for k in range(len(weights))], axis=1)
    return dens / dens.sum(1, keepdims=True)


@pytest.mark.parametrize("learned", [False, True])
def test_responsibilities_rows_sum_to_one(learned):
    resp, sd = diagnostics.responsibilities(_numpy_fit(learned=learned), return_sd=True)
    assert resp.shape == sd.shape == (40, 2)
    np.testing.assert_allclose(resp.sum(1), 1.0, rtol=0, atol=1e-12)
    assert (sd >= 0).all() and (sd > 0).any()


@pytest.mark.parametrize("learned", [False, True])
def test_responsibilities_match_scipy_on_one_draw(learned):
    fit = _numpy_fit(n_chains=1, n_draws=1, learned=learned)
    sd = fit.draws("obs_sd")[0, 0] if learned else fit.spec.known_obs_sd(2)
    expected = _scipy_responsibilities(POINTS, fit.draws("weights")[0, 0],
                                       fit.draws("means")[0, 0], sd)
    resp, resp_sd = diagnostics.responsibilities(fit, return_sd=True)
    np.testing.assert_allclose(resp, expected, rtol=1e-10, atol=1e-14)
    np.testing.assert_array_equal(resp_sd, 0.0)


def test_responsibilities_average_and_sd_over_draws_in_chunks(monkeypatch):
    fit = _numpy_fit(n_chains=3, n_draws=7, learned=True)
    per_draw = np.stack([
        _scipy_responsibilities(POINTS, fit.draws("weights")[c, s], fit.draws("means")[c, s],
                                fit.draws("obs_sd")[c, s])
        for c in range(3) for s in range(7)])
    monkeypatch.setattr(diagnostics, "_CHUNK_ELEMENTS", 2 * 40 * 2)  # 2 draws per chunk
    resp, sd = diagnostics.responsibilities(fit, return_sd=True)
    np.testing.assert_allclose(resp, per_draw.mean(0), rtol=1e-10)
    np.testing.assert_allclose(sd, per_draw.std(0), rtol=1e-8, atol=1e-12)


def test_responsibilities_on_new_points_and_bad_points():
    fit = _numpy_fit()
    new = np.array([[-1.0, -1.5], [1.0, 1.0]])
    resp = diagnostics.responsibilities(fit, new)
    assert resp.shape == (2, 2) and resp[0, 0] > 0.5 and resp[1, 1] > 0.5
    with pytest.raises(ValueError, match="points: expected 2 features"):
        diagnostics.responsibilities(fit, np.zeros((3, 3)))
    with pytest.raises(TypeError, match="fit: expected a MixtureFit, got ndarray"):
        diagnostics.responsibilities(np.zeros(3))


@pytest.mark.filterwarnings("ignore:Estimated shape parameter of Pareto:UserWarning")  # 60 draws
def test_log_likelihood_matches_density_and_enables_loo():
    fit = _numpy_fit(learned=True)
    values = diagnostics.log_likelihood(fit)
    assert values.shape == (2, 30, 40)
    expected = mixture_logp(POINTS, fit.draws("weights")[1, 3], fit.draws("means")[1, 3],
                            fit.draws("obs_sd")[1, 3])
    np.testing.assert_allclose(values[1, 3], expected, rtol=1e-12)
    with pytest.raises(ValueError, match="fit: expected a fit with a log_likelihood group"):
        diagnostics.loo(fit)
    with_ll = diagnostics.add_log_likelihood(fit)
    assert "log_likelihood" not in fit.idata.children          # input untouched
    result = diagnostics.loo(with_ll)
    np.testing.assert_allclose(np.asarray(result.elpd_i).ravel().sum(), result.elpd)
    assert result.n_data_points == 40


def test_mcmc_summary_reads_sampler_stats():
    rng = np.random.default_rng(4)
    sample_stats = {"diverging": rng.random((2, 30)) < 0.1,
                    "tree_depth": rng.integers(1, 5, (2, 30)),
                    "reached_max_treedepth": np.zeros((2, 30), bool),
                    "acceptance_rate": rng.uniform(0.7, 1.0, (2, 30))}
    fit = _numpy_fit(stats_=sample_stats)
    summary = diagnostics.mcmc_summary(fit)
    assert summary.divergences == int(sample_stats["diverging"].sum())
    assert summary.max_tree_depth == int(sample_stats["tree_depth"].max())
    assert summary.reached_max_treedepth == 0
    assert summary.acceptance == pytest.approx(sample_stats["acceptance_rate"].mean())
    assert {"r_hat", "ess_bulk", "ess_tail", "mcse_mean"} <= set(summary.table.columns)
    assert summary.rhat_max == pytest.approx(summary.table["r_hat"].max())
    assert summary.ess_bulk_min == pytest.approx(summary.table["ess_bulk"].min())
    assert "divergences" in str(summary)


def test_mcmc_summary_metropolis_accept_and_no_stats():
    accept = np.array([[0.5, 3.0, 1.0], [0.0, 0.2, 2.0]])
    fit = _numpy_fit(n_draws=3, stats_={"accept": accept})
    summary = diagnostics.mcmc_summary(fit)
    assert summary.acceptance == pytest.approx(np.minimum(accept, 1).mean())
    assert summary.divergences is None and summary.max_tree_depth is None
    accepted = np.array([[0.25, 0.5, 1.0], [0.0, 0.75, 0.5]])
    fit = _numpy_fit(n_draws=3, stats_={"accept": accept, "accepted": accepted})
    assert diagnostics.mcmc_summary(fit).acceptance == pytest.approx(accepted.mean())
    point = diagnostics.mcmc_summary(_numpy_fit(n_chains=1, n_draws=1))
    assert point.acceptance is None and np.isnan(point.rhat_max)


def test_posterior_predictive_shape_seed_and_moments():
    fit = _numpy_fit(learned=True)
    x_rep = diagnostics.posterior_predictive(fit, random_seed=3)
    assert x_rep.shape == (2, 30, *POINTS.shape)
    np.testing.assert_array_equal(x_rep, diagnostics.posterior_predictive(fit, random_seed=3))
    thinned = diagnostics.posterior_predictive(fit, random_seed=3, n_draws=5)
    assert thinned.shape == (2, 5, *POINTS.shape)
    # moments: E[x_rep] = E[sum_k w_k mu_k]; checked on a tight posterior with many replicates
    spec = MixtureSpec(n_components=2, obs_sd=0.5)
    means = np.broadcast_to([[-2.0, 0.0], [3.0, 1.0]], (1, 4, 2, 2))
    weights = np.broadcast_to([0.3, 0.7], (1, 4, 2))
    big = MixtureFit(engine="test", spec=spec,
                     idata=make_idata(means, weights, np.zeros((5000, 2))))
    draws = diagnostics.posterior_predictive(big, random_seed=0).reshape(-1, 2)
    np.testing.assert_allclose(draws.mean(0), [1.5, 0.7], atol=0.05)
    np.testing.assert_allclose((draws[:, 0] < 0.5).mean(), 0.3, atol=0.01)
    near = draws[draws[:, 0] > 0.5]
    np.testing.assert_allclose(near.std(0), [0.5, 0.5], atol=0.02)


def test_posterior_predictive_rejects_bad_n_draws():
    with pytest.raises(ValueError, match=r"n_draws: expected an integer <= 30, got 31"):
        diagnostics.posterior_predictive(_numpy_fit(), n_draws=31)


# ---------------------------------------------------------------- on a real NUTS fit
@pytest.fixture(scope="module")
def nuts_fit():
    import ppl_mixtures as pmx
    from ppl_mixtures import datasets, relabel

    points = datasets.advi_notebook_points(100)
    spec = MixtureSpec(n_components=2, mean_prior_sd=1.0, dirichlet_alpha=0.1, obs_sd=1.0)
    fit = pmx.fit(points, spec, engine="nuts", draws=200, tune=300, chains=2, cores=1,
                  random_seed=5, progressbar=False)
    return relabel(fit, reference=np.array([[-0.8, -1.5], [0.8, 1.0]]))


def test_loo_on_a_nuts_fit(nuts_fit):
    result = diagnostics.loo(nuts_fit)
    assert result.n_data_points == 100
    assert np.isfinite(result.elpd) and result.se > 0
    assert (np.asarray(result.pareto_k) < 0.7).all()
    # the stored log-likelihood is the marginal density of each point
    ll = nuts_fit.idata["log_likelihood"]["x"].values
    np.testing.assert_allclose(ll, diagnostics.log_likelihood(nuts_fit), rtol=1e-10)


def test_responsibilities_of_a_nuts_fit_find_the_true_components(nuts_fit):
    from ppl_mixtures import datasets

    _, labels = datasets.advi_notebook_points(100, return_labels=True)
    resp, sd = diagnostics.responsibilities(nuts_fit, return_sd=True)
    np.testing.assert_allclose(resp.sum(1), 1.0, atol=1e-12)
    # label 1 of the data is the component at (1, 1), our component 1 after relabeling
    assert (resp.argmax(1) == labels).mean() > 0.9
    assert sd.max() > 0.01   # points between the clusters are uncertain


def test_pymc_posterior_predictive_on_a_nuts_fit_matches_numpy(nuts_fit):
    import pymc as pm

    from ppl_mixtures import models

    model = models.build_marginal_model(nuts_fit.points, nuts_fit.spec)
    pp = pm.sample_posterior_predictive(nuts_fit.idata, model=model, random_seed=1,
                                        progressbar=False)
    pymc_rep = np.asarray(pp["posterior_predictive"]["x"].values)
    numpy_rep = diagnostics.posterior_predictive(nuts_fit, random_seed=1)
    assert pymc_rep.shape == numpy_rep.shape == (2, 200, 100, 2)
    # two samplers of the same predictive distribution: equal moments within MC error
    np.testing.assert_allclose(pymc_rep.mean((0, 1, 2)), numpy_rep.mean((0, 1, 2)), atol=0.03)
    np.testing.assert_allclose(pymc_rep.std((0, 1, 2)), numpy_rep.std((0, 1, 2)), atol=0.03)
    np.testing.assert_allclose(numpy_rep.mean((0, 1, 2)), nuts_fit.points.mean(0), atol=0.2)
