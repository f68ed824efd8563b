"""Diagnostics: responsibilities, log-likelihood and LOO, MCMC summaries, posterior predictive."""

import numpy as np
import pytest
from scipy import stats

from ppl_mixtures import MixtureFit, MixtureSpec
from ppl_mixtures.analysis import diagnostics
from ppl_mixtures.model.density import mixture_logp
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

    from ppl_mixtures.inference.pymc import models

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


# ---------------------------------------------------------------- co-clustering, predictive
def _per_draw_coclustering(fit, points):
    """sum_k r_ik r_jk for every draw, by scipy.stats.norm (no log space), (C, S, N, N)."""
    w, mu = fit.draws("weights"), fit.draws("means")
    sd = fit.spec.known_obs_sd(points.shape[1])
    dens = np.stack([w[..., k, None] * stats.norm(mu[..., k, None, :], sd[k]).pdf(points).prod(-1)
                     for k in range(w.shape[-1])], axis=-1)              # (C, S, N, K)
    resp = dens / dens.sum(-1, keepdims=True)
    return np.einsum("csik,csjk->csij", resp, resp)


def test_coclustering_and_predictive_of_numpy_draws():
    fit = _numpy_fit(n_chains=2, n_draws=9)
    points = POINTS[:12]
    per_draw = _per_draw_coclustering(fit, points)
    expected = per_draw.mean((0, 1))
    np.fill_diagonal(expected, 1.0)
    got = diagnostics.coclustering(fit, points)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-13)
    assert got.shape == (12, 12) and np.all((got >= 0) & (got <= 1))
    np.testing.assert_array_equal(got, got.T)
    # label-invariant: swapping the component labels of every draw changes nothing
    swapped = MixtureFit(engine="test", spec=fit.spec, idata=make_idata(
        fit.draws("means")[..., ::-1, :], fit.draws("weights")[..., ::-1], POINTS))
    np.testing.assert_allclose(diagnostics.coclustering(swapped, points), got, rtol=1e-12)
    # predictive: log of the mean over the 18 draws of the mixture density (scipy oracle)
    new = np.array([[0.0, 0.0], [3.0, -2.0], [-1.0, -1.5]])
    dens = np.stack([stats.multivariate_normal(m[k], np.diag([1.0, 0.25])).pdf(new) * w[k]
                     for m, w in zip(fit.draws("means").reshape(-1, 2, 2),
                                     fit.draws("weights").reshape(-1, 2), strict=True)
                     for k in range(2)]).reshape(18, 2, 3).sum(1)
    np.testing.assert_allclose(diagnostics.predictive_logpdf(fit, new), np.log(dens.mean(0)),
                               rtol=1e-10)
    with pytest.raises(ValueError, match=r"^points: expected at most 5000 observations"):
        diagnostics.coclustering(fit, np.zeros((5001, 2)))


TINY = np.array([-2.1, -1.7, -1.2, -0.3, 0.4, 1.5, 1.9, 2.6])
TINY_SPEC = MixtureSpec(n_components=2, mean_prior_sd=2.0, dirichlet_alpha=1.0, obs_sd=0.8)


@pytest.fixture(scope="module")
def tiny_nuts():
    import ppl_mixtures as pmx

    return pmx.fit(TINY, TINY_SPEC, engine="nuts", draws=1000, tune=1000, chains=4, cores=1,
                   random_seed=3, progressbar=False)


def test_nuts_coclustering_within_mcse_of_exact(tiny_nuts):
    import arviz as az

    from ppl_mixtures.model.evidence import exact_posterior

    exact = exact_posterior(TINY, TINY_SPEC).coclustering
    got = diagnostics.coclustering(tiny_nuts)
    per_draw = _per_draw_coclustering(tiny_nuts, TINY[:, None])
    rows, cols = np.triu_indices(TINY.size, 1)
    for i, j in zip(rows, cols, strict=True):
        values = per_draw[:, :, i, j]
        # MCSE of the mean of (1): its sd over the draws / sqrt(ESS) (ESS from ArviZ, which
        # counts the autocorrelation of the chains); 5 MCSE: a miss of the 28 pairs by chance
        # has probability < 28 * 6e-7 if the sampler is right
        mcse = values.std() / np.sqrt(az.ess(values))
        assert abs(got[i, j] - exact[i, j]) < 5 * mcse + 1e-9, (i, j, got[i, j], exact[i, j], mcse)
    assert np.abs(got - exact).max() > 0  # a real comparison, not two copies


def test_nuts_predictive_within_mc_error_of_exact(tiny_nuts):
    import arviz as az

    from ppl_mixtures.model.evidence import exact_posterior

    new = np.array([-3.0, -1.0, 0.0, 1.0, 2.2, 4.0])
    exact = exact_posterior(TINY, TINY_SPEC).predictive_logpdf(new)
    got = diagnostics.predictive_logpdf(tiny_nuts, new[:, None])
    dens = np.exp(diagnostics.log_likelihood(tiny_nuts, new[:, None]))       # (C, S, M)
    for m in range(new.size):
        # delta method: se(log mean p) = MCSE(mean p) / mean p, MCSE = sd / sqrt(ESS); 5 se
        se = dens[..., m].std() / np.sqrt(az.ess(dens[..., m])) / dens[..., m].mean()
        assert abs(got[m] - exact[m]) < 5 * se, (new[m], got[m], exact[m], se)


# ---------------------------------------------------------------- VI: Pareto k-hat
def test_pareto_khat_reads_arviz_the_right_way_round():
    # ratios w = U^(-k) have a Pareto tail of shape k exactly; with S = 20 000 the tail fit
    # uses 3 sqrt(S) = 424 ratios, sd(k-hat) ~ (1 + k) / sqrt(424) <= 0.09: 0.3 = 3+ sd
    rng = np.random.default_rng(0)
    for k in (0.3, 0.9):
        log_ratios = -k * np.log(rng.random(20_000)) + 5.0
        assert abs(diagnostics.pareto_khat(log_ratios) - k) < 0.3
    assert diagnostics.pareto_khat(np.zeros(500)) == -np.inf            # q = p exactly
    with pytest.raises(ValueError, match=r"^log_ratios: expected finite"):
        diagnostics.pareto_khat([0.0, np.nan, 1.0])


@pytest.fixture(scope="module")
def one_component_cavi():
    import ppl_mixtures as pmx

    # K = 1 with known sd: the posterior of the mean is Normal and mean-field is exact
    points = np.random.default_rng(4).normal(size=(30, 2)) + np.array([1.0, -0.5])
    spec = MixtureSpec(n_components=1, mean_prior_sd=2.0, obs_sd=(1.0, 0.7))
    return pmx.fit(points, spec, engine="cavi", random_seed=1, progressbar=False)


def _scaled_q(fit, factor):
    params = dict(fit.extras["variational_params"])
    params["mean_var"] = params["mean_var"] * factor**2
    return fit.replace(extras={**fit.extras, "variational_params": params})


def test_vi_khat_of_exact_and_too_narrow_q(one_component_cavi):
    fit = one_component_cavi
    # q = the exact posterior: constant ratios, no tail
    assert diagnostics.vi_khat(fit) < 0.5
    # q 1.2x wider than p (Gaussians): bounded ratios, k < 0
    assert diagnostics.vi_khat(_scaled_q(fit, 1.2)) < 0.5
    # q with 0.2x p's sd: log w = (1/sd_q^2 - 1/sd_p^2) x^2 / 2 + c gives a Pareto tail of
    # shape k = 1 - (sd_q/sd_p)^2 = 0.96 per coordinate (Yao et al. 2018, §2)
    assert diagnostics.vi_khat(_scaled_q(fit, 0.2)) > 0.7
    assert diagnostics.vi_khat(fit, random_seed=3) == diagnostics.vi_khat(fit, random_seed=3)


@pytest.mark.parametrize("spec", [
    MixtureSpec(n_components=2, mean_prior_sd=1.5, dirichlet_alpha=0.5, obs_sd=1.0),
    MixtureSpec(n_components=3, obs_sd="learned", weights_transform="simplex"),
    MixtureSpec(n_components=3, mean_prior_sd=2.0, ordered=True, obs_sd="learned"),
    MixtureSpec(n_components=2, weights="fixed", ordered=True, obs_sd=0.5),
])
def test_unconstrained_log_joint_matches_pymc(spec):
    """The numpy log p(x, theta) + log|J| behind ADVI's k-hat equals PyMC's model logp."""
    from ppl_mixtures.inference.pymc import models

    points = POINTS[:15]
    model = models.build_marginal_model(points, spec)
    logp = model.compile_logp(jacobian=True, mode="FAST_COMPILE")
    labels, names, sizes = [], [], []
    for value in model.value_vars:
        size = int(np.prod(model.initial_point()[value.name].shape))
        names.append(value.name)
        sizes.append(size)
        shape = model.initial_point()[value.name].shape
        labels += [f"{value.name}[{','.join(map(str, idx))}]" for idx in np.ndindex(*shape)]
    theta = 0.5 * np.random.default_rng(2).standard_normal((4, len(labels)))
    ours = diagnostics.unconstrained_log_joint(theta, labels, spec, points)
    shapes = [model.initial_point()[n].shape for n in names]
    for row, value in zip(theta, ours, strict=True):
        pieces = np.split(row, np.cumsum(sizes)[:-1])
        point = {n: p.reshape(s) for n, p, s in zip(names, pieces, shapes, strict=True)}
        # rel 1e-8: the two sides round differently (the model's fused density Op expands
        # (x - mu)^2; 4e-10 seen); a wrong transform or Jacobian is off by >= 0.01 nats
        assert value == pytest.approx(float(logp(point)), rel=1e-8)


def test_vi_khat_of_an_advi_fit_and_a_too_narrow_copy():
    import ppl_mixtures as pmx
    from ppl_mixtures import datasets

    points = datasets.advi_notebook_points(100)
    spec = MixtureSpec(n_components=2, mean_prior_sd=1.0, dirichlet_alpha=0.1, obs_sd=1.0)
    advi = pmx.fit(points, spec, engine="advi", random_seed=1, progressbar=False)
    khat = diagnostics.vi_khat(advi)
    assert np.isfinite(khat)
    sd = np.asarray(advi.extras["unconstrained_sd"]) * 0.2
    extras = {k: v for k, v in advi.extras.items() if k != "covariance"}
    narrow = advi.replace(extras={**extras, "unconstrained_sd": sd})
    # sd x 0.2 on every coordinate: k ~ 1 - 0.2^2 per coordinate (see the CAVI test)
    narrow_khat = diagnostics.vi_khat(narrow)
    assert narrow_khat > 0.7 and narrow_khat > khat


def test_vi_khat_refuses_fits_without_q():
    fit = _numpy_fit()
    with pytest.raises(ValueError, match=r"^fit: expected a variational fit .* got engine 'test'"):
        diagnostics.vi_khat(fit)
    cavi_like = fit.replace(engine="cavi")
    with pytest.raises(ValueError, match=r"^fit: expected extras\['variational_params'\]"):
        diagnostics.vi_khat(cavi_like)
