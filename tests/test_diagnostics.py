"""Diagnostics: responsibilities, log-likelihood and LOO, MCMC summaries, posterior predictive."""

import dataclasses
from dataclasses import dataclass

import numpy as np
import pytest
from scipy import stats

from ppl_mixtures import MixtureFit, MixtureSpec
from ppl_mixtures.analysis import diagnostics
from ppl_mixtures.model.density import mixture_logp
from ppl_mixtures.results import make_idata

POINTS = np.random.default_rng(0).normal(size=(40, 2)) * 1.5


@dataclass(frozen=True)
class QDetails:
    """``fit.details`` of a synthetic CAVI/SVI fit: q's parameters, as the engines store them."""

    variational_params: dict


def _numpy_fit(n_chains=2, n_draws=30, learned=False, seed=1, stats_=None):
    rng = np.random.default_rng(seed)
    means = np.array([[-1.0, -1.5], [1.0, 1.0]]) + 0.3 * rng.standard_normal(
        (n_chains, n_draws, 2, 2)
    )
    weights = rng.dirichlet([20.0, 80.0], size=(n_chains, n_draws))
    obs_sd = np.exp(0.2 * rng.standard_normal((n_chains, n_draws, 2, 2))) if learned else None
    spec = MixtureSpec(
        n_components=2, dirichlet_alpha=0.1, obs_sd="learned" if learned else (1.0, 0.5)
    )
    idata = make_idata(means, weights, POINTS, obs_sd=obs_sd, sample_stats=stats_)
    return MixtureFit(engine="test", spec=spec, idata=idata)


def _scipy_responsibilities(points, weights, means, sd):
    """Direct computation with scipy.stats, no log space: the oracle for small data."""
    dens = np.stack(
        [
            weights[k] * stats.multivariate_normal(means[k], np.diag(sd[k] ** 2)).pdf(points)
            for k in range(len(weights))
        ],
        axis=1,
    )
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
    expected = _scipy_responsibilities(
        POINTS, fit.draws("weights")[0, 0], fit.draws("means")[0, 0], sd
    )
    resp, resp_sd = diagnostics.responsibilities(fit, return_sd=True)
    np.testing.assert_allclose(resp, expected, rtol=1e-10, atol=1e-14)
    np.testing.assert_array_equal(resp_sd, 0.0)


def test_responsibilities_average_and_sd_over_draws_in_blocks():
    # 600 draws x 5000 points x 2 components = 6e6 floats, more than the 2**22 (4.2e6) that
    # are built at once: the mean and sd are combined over two blocks of draws
    rng = np.random.default_rng(2)
    points = rng.normal(size=(5000, 2)) * 1.5
    means = np.array([[-1.0, -1.5], [1.0, 1.0]]) + 0.3 * rng.standard_normal((2, 300, 2, 2))
    weights = rng.dirichlet([20.0, 80.0], size=(2, 300))
    obs_sd = np.exp(0.2 * rng.standard_normal((2, 300, 2, 2)))
    spec = MixtureSpec(n_components=2, obs_sd="learned")
    fit = MixtureFit(
        engine="test", spec=spec, idata=make_idata(means, weights, points, obs_sd=obs_sd)
    )
    # oracle: every draw at once, densities without log space (well inside float range here)
    dens = weights[..., None, :] * np.prod(
        stats.norm.pdf(points[None, None, :, None, :], means[:, :, None], obs_sd[:, :, None]),
        axis=-1,
    )  # (C, S, N, K)
    per_draw = (dens / dens.sum(-1, keepdims=True)).reshape(-1, 5000, 2)
    resp, sd = diagnostics.responsibilities(fit, return_sd=True)
    np.testing.assert_allclose(resp, per_draw.mean(0), rtol=1e-10, atol=1e-14)
    # the pairwise (Chan et al.) combination of block variances vs numpy's two-pass sd
    np.testing.assert_allclose(sd, per_draw.std(0), rtol=1e-8, atol=1e-12)


def test_responsibilities_on_new_points():
    fit = _numpy_fit()
    new = np.array([[-1.0, -1.5], [1.0, 1.0]])  # at the two components' centres
    resp = diagnostics.responsibilities(fit, new)
    assert resp.shape == (2, 2) and resp[0, 0] > 0.5 and resp[1, 1] > 0.5


@pytest.mark.filterwarnings("ignore:Estimated shape parameter of Pareto:UserWarning")  # 60 draws
def test_log_likelihood_matches_density_and_enables_loo():
    fit = _numpy_fit(learned=True)
    values = diagnostics.log_likelihood(fit)
    assert values.shape == (2, 30, 40)
    expected = mixture_logp(
        POINTS, fit.draws("weights")[1, 3], fit.draws("means")[1, 3], fit.draws("obs_sd")[1, 3]
    )
    np.testing.assert_allclose(values[1, 3], expected, rtol=1e-12)
    with_ll = diagnostics.add_log_likelihood(fit)
    assert "log_likelihood" not in fit.idata.children  # input untouched
    result = diagnostics.loo(with_ll)
    np.testing.assert_allclose(np.asarray(result.elpd_i).ravel().sum(), result.elpd)
    assert result.n_data_points == 40


def test_mcmc_summary_reads_sampler_stats():
    rng = np.random.default_rng(4)
    sample_stats = {
        "diverging": rng.random((2, 30)) < 0.1,
        "tree_depth": rng.integers(1, 5, (2, 30)),
        "reached_max_treedepth": np.zeros((2, 30), bool),
        "acceptance_rate": rng.uniform(0.7, 1.0, (2, 30)),
    }
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
    big = MixtureFit(
        engine="test", spec=spec, idata=make_idata(means, weights, np.zeros((5000, 2)))
    )
    draws = diagnostics.posterior_predictive(big, random_seed=0).reshape(-1, 2)
    n = draws.shape[0]  # 4 draws x 5000 = 20 000
    w, mu = np.array([0.3, 0.7]), np.array([[-2.0, 0.0], [3.0, 1.0]])
    mean = w @ mu  # (1.5, 0.7)
    var = w @ (0.5**2 + mu**2) - mean**2  # the mixture's variance
    # every tolerance is 4 standard errors of the statistic over n independent replicates
    np.testing.assert_array_less(np.abs(draws.mean(0) - mean), 4 * np.sqrt(var / n))
    # x_0 < 0.5 picks component 0 (both components are 5 sds away from 0.5): a Bernoulli(0.3)
    np.testing.assert_allclose((draws[:, 0] < 0.5).mean(), 0.3, atol=4 * np.sqrt(0.3 * 0.7 / n))
    near = draws[draws[:, 0] > 0.5]  # component 1 alone
    # the sd of a normal sample of size m has se sd / sqrt(2 m)
    np.testing.assert_allclose(near.std(0), [0.5, 0.5], atol=4 * 0.5 / np.sqrt(2 * len(near)))


# ---------------------------------------------------------------- on a real NUTS fit
@pytest.fixture(scope="module")
def nuts_fit():
    import ppl_mixtures as pmx
    from ppl_mixtures import datasets, relabel

    points = datasets.advi_notebook_points(100)
    spec = MixtureSpec(n_components=2, mean_prior_sd=1.0, dirichlet_alpha=0.1, obs_sd=1.0)
    fit = pmx.fit(
        points,
        spec,
        engine="nuts",
        draws=200,
        tune=300,
        chains=2,
        cores=1,
        random_seed=5,
        progressbar=False,
    )
    return relabel(fit, reference=np.array([[-0.8, -1.5], [0.8, 1.0]]))


def test_loo_on_a_nuts_fit(nuts_fit):
    result = diagnostics.loo(nuts_fit)
    assert result.n_data_points == 100
    # elpd_loo = lppd - p_loo, lppd the in-sample log predictive density: our
    # predictive_logpdf of the fit's own points, computed from the draws (not from the stored
    # group that ArviZ read); leaving a point out costs predictive density: p_loo > 0
    lppd = diagnostics.predictive_logpdf(nuts_fit).sum()
    assert result.p == pytest.approx(lppd - result.elpd, rel=1e-8)
    assert result.p > 0 and result.se > 0
    assert (np.asarray(result.pareto_k) < 0.7).all()
    # the stored log-likelihood is the marginal density of each point
    ll = nuts_fit.idata["log_likelihood"]["x"].values
    np.testing.assert_allclose(ll, diagnostics.log_likelihood(nuts_fit), rtol=1e-10)


def test_responsibilities_of_a_nuts_fit_find_the_true_components(nuts_fit):
    from ppl_mixtures import datasets

    _, labels = datasets.advi_notebook_points(100, return_labels=True)
    resp, sd = diagnostics.responsibilities(nuts_fit, return_sd=True)
    np.testing.assert_allclose(resp.sum(1), 1.0, atol=1e-12)
    # label 1 of the data is the component at (1, 1), our component 1 after relabeling.
    # Oracle: the Bayes rule with the true parameters on the same points; the posterior's
    # hard assignments may miss it by at most 3 binomial se (sqrt(p (1 - p) / N))
    truth = np.log(datasets.ADVI_NOTEBOOK_WEIGHTS) + stats.norm.logpdf(
        nuts_fit.points[:, None, :], datasets.ADVI_NOTEBOOK_MEANS
    ).sum(-1)
    bayes = (truth.argmax(1) == labels).mean()
    accuracy = (resp.argmax(1) == labels).mean()
    assert accuracy >= bayes - 3 * np.sqrt(bayes * (1 - bayes) / labels.size)
    # r in [0, 1] has Var(r) <= E[r] (1 - E[r]) (Bhatia-Davis); the posterior is uncertain
    # about the assignment of the most ambiguous point, sure about the clearest one
    assert np.all(sd <= np.sqrt(resp * (1 - resp)) + 1e-12)
    ambiguous, clear = np.argmin(np.abs(resp[:, 0] - 0.5)), np.argmax(np.abs(resp[:, 0] - 0.5))
    assert sd[ambiguous, 0] > sd[clear, 0]


def test_pymc_posterior_predictive_on_a_nuts_fit_matches_numpy(nuts_fit):
    import pymc as pm

    from ppl_mixtures.inference.pymc import models

    model = models.build_marginal_model(nuts_fit.points, nuts_fit.spec)
    pp = pm.sample_posterior_predictive(
        nuts_fit.idata, model=model, random_seed=1, progressbar=False
    )
    pymc_rep = np.asarray(pp["posterior_predictive"]["x"].values)
    numpy_rep = diagnostics.posterior_predictive(nuts_fit, random_seed=1)
    assert pymc_rep.shape == numpy_rep.shape == (2, 200, 100, 2)
    # two samplers of the same predictive distribution, given the same 400 draws: their
    # n = 40 000 replicates per feature are independent of each other, so a difference of
    # means has se sqrt(var_a / n + var_b / n) and one of variances sqrt(Var(s2_a) +
    # Var(s2_b)) with Var(s2) = (m4 - s2^2) / n (the draws' spread makes the replicates
    # within one set dependent, which this se leaves out: it is the within-draw noise; a
    # different sampler would differ by far more). Tolerance: 4 se.
    a, b = pymc_rep.reshape(-1, 2), numpy_rep.reshape(-1, 2)
    n = a.shape[0]
    se_mean = np.sqrt(a.var(0) / n + b.var(0) / n)
    np.testing.assert_array_less(np.abs(a.mean(0) - b.mean(0)), 4 * se_mean)

    def var_of_var(x):
        return (((x - x.mean(0)) ** 4).mean(0) - x.var(0) ** 2) / n

    se_var = np.sqrt(var_of_var(a) + var_of_var(b))
    np.testing.assert_array_less(np.abs(a.var(0) - b.var(0)), 4 * se_var)
    # the predictive mean is the posterior mean of sum_k w_k mu_k, which sits within a few
    # of its posterior sds (~ the data's sd / sqrt(N)) of the data mean: 3 of them
    tol = 3 * nuts_fit.points.std(0) / np.sqrt(nuts_fit.points.shape[0])
    np.testing.assert_array_less(np.abs(b.mean(0) - nuts_fit.points.mean(0)), tol)


# ---------------------------------------------------------------- co-clustering, predictive
def _per_draw_coclustering(fit, points):
    """sum_k r_ik r_jk for every draw, by scipy.stats.norm (no log space), (C, S, N, N)."""
    w, mu = fit.draws("weights"), fit.draws("means")
    sd = fit.spec.known_obs_sd(points.shape[1])
    dens = np.stack(
        [
            w[..., k, None] * stats.norm(mu[..., k, None, :], sd[k]).pdf(points).prod(-1)
            for k in range(w.shape[-1])
        ],
        axis=-1,
    )  # (C, S, N, K)
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
    swapped = MixtureFit(
        engine="test",
        spec=fit.spec,
        idata=make_idata(fit.draws("means")[..., ::-1, :], fit.draws("weights")[..., ::-1], POINTS),
    )
    np.testing.assert_allclose(diagnostics.coclustering(swapped, points), got, rtol=1e-12)
    # predictive: log of the mean over the 18 draws of the mixture density (scipy oracle)
    new = np.array([[0.0, 0.0], [3.0, -2.0], [-1.0, -1.5]])
    dens = (
        np.stack(
            [
                stats.multivariate_normal(m[k], np.diag([1.0, 0.25])).pdf(new) * w[k]
                for m, w in zip(
                    fit.draws("means").reshape(-1, 2, 2),
                    fit.draws("weights").reshape(-1, 2),
                    strict=True,
                )
                for k in range(2)
            ]
        )
        .reshape(18, 2, 3)
        .sum(1)
    )
    np.testing.assert_allclose(
        diagnostics.predictive_logpdf(fit, new), np.log(dens.mean(0)), rtol=1e-10
    )


TINY = np.array([-2.1, -1.7, -1.2, -0.3, 0.4, 1.5, 1.9, 2.6])
TINY_SPEC = MixtureSpec(n_components=2, mean_prior_sd=2.0, dirichlet_alpha=1.0, obs_sd=0.8)


@pytest.fixture(scope="module")
def tiny_nuts():
    import ppl_mixtures as pmx

    return pmx.fit(
        TINY,
        TINY_SPEC,
        engine="nuts",
        draws=1000,
        tune=1000,
        chains=4,
        cores=1,
        random_seed=3,
        progressbar=False,
    )


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
    dens = np.exp(diagnostics.log_likelihood(tiny_nuts, new[:, None]))  # (C, S, M)
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
    assert diagnostics.pareto_khat(np.zeros(500)) == -np.inf  # q = p exactly


ONE_POINTS = np.random.default_rng(4).normal(size=(30, 2)) + np.array([1.0, -0.5])
ONE_SPEC = MixtureSpec(n_components=1, mean_prior_sd=2.0, obs_sd=(1.0, 0.7))


def _exact_q(sd_factor=1.0):
    """A CAVI-like fit of K = 1, known sd, whose q is the exact posterior (sd times sd_factor).

    mu_d | x ~ Normal(m_d, 1 / lam_d), lam_d = 1/s0^2 + N/sd_d^2, m_d = (m0/s0^2 + sum x_d /
    sd_d^2) / lam_d (Bishop 2006, eqs. 2.141-2.142); the weight of one component is 1.
    """
    n, d = ONE_POINTS.shape
    prior_prec = ONE_SPEC.prior_sd(d) ** -2.0
    obs_var = ONE_SPEC.known_obs_sd(d)[0] ** 2
    lam = prior_prec + n / obs_var
    loc = (ONE_SPEC.prior_mean(d) * prior_prec + ONE_POINTS.sum(0) / obs_var) / lam
    params = {
        "mean_loc": loc[None],
        "mean_var": (sd_factor**2 / lam)[None],
        "weight_conc": ONE_SPEC.alpha() + n,
    }
    idata = make_idata(loc[None, None, None], np.ones((1, 1, 1)), ONE_POINTS)
    return MixtureFit(
        engine="cavi", spec=ONE_SPEC, idata=idata, details=QDetails(variational_params=params)
    )


def test_vi_khat_of_exact_too_wide_and_too_narrow_q():
    # q = p exactly: log p(x, theta) - log q(theta) = log p(x) for every theta, constant
    # ratios (spread ~1e-13 nats of round-off), no tail at all
    assert diagnostics.vi_khat(_exact_q()) == -np.inf
    # q 1.2x wider than p (Gaussians): the ratios are bounded, k < 0 in theory; the estimate
    # stays below Yao et al.'s "usable" limit 0.5
    assert diagnostics.vi_khat(_exact_q(1.2)) < 0.5
    # q with 0.2x p's sd: log w = (1/sd_q^2 - 1/sd_p^2) x^2 / 2 + c gives a Pareto tail of
    # shape k = 1 - (sd_q/sd_p)^2 = 0.96 per coordinate (Yao et al. 2018, §2). With 20 000
    # draws the tail fit uses 3 sqrt(S) = 424 ratios: sd(k-hat) ~ (1 + k) / sqrt(424) = 0.095,
    # so the "unreliable" limit 0.7 is 2.7 sd below the truth
    narrow = _exact_q(0.2)
    khat = diagnostics.vi_khat(narrow, n_draws=20_000, random_seed=3)
    assert khat > 0.7
    # same seed, same k-hat; another seed, other draws from q
    assert diagnostics.vi_khat(narrow, n_draws=20_000, random_seed=3) == khat
    assert diagnostics.vi_khat(narrow, n_draws=20_000, random_seed=4) != khat


def test_vi_khat_reads_a_real_cavi_fit():
    import ppl_mixtures as pmx

    # K = 1 with known sd: mean-field is exact, and CAVI's q is the exact posterior
    cavi = pmx.fit(ONE_POINTS, ONE_SPEC, engine="cavi", random_seed=1, progressbar=False)
    exact = _exact_q().details.variational_params
    params = cavi.details.variational_params
    np.testing.assert_allclose(params["mean_loc"], exact["mean_loc"], rtol=1e-10)
    np.testing.assert_allclose(params["mean_var"], exact["mean_var"], rtol=1e-10)
    # ratios equal to within round-off of the q parameters' last digits: a bounded tail
    assert diagnostics.vi_khat(cavi) < 0.5


@pytest.mark.parametrize(
    "spec",
    [
        MixtureSpec(n_components=2, mean_prior_sd=1.5, dirichlet_alpha=0.5, obs_sd=1.0),
        MixtureSpec(n_components=3, obs_sd="learned", weights_transform="simplex"),
        MixtureSpec(n_components=3, mean_prior_sd=2.0, ordered=True, obs_sd="learned"),
        MixtureSpec(n_components=2, weights="fixed", ordered=True, obs_sd=0.5),
    ],
)
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
    # q's sd x 0.2 on every coordinate (L scaled): k ~ 1 - 0.2^2 per coordinate (see above)
    chol = np.asarray(advi.details.unconstrained_chol)
    narrow = advi.replace(details=dataclasses.replace(advi.details, unconstrained_chol=0.2 * chol))
    narrow_khat = diagnostics.vi_khat(narrow)
    assert narrow_khat > 0.7 and narrow_khat > khat


BAD_INPUT = [  # (function, arguments, error, pinned message)
    (
        "responsibilities",
        lambda: (_numpy_fit(), np.zeros((3, 3))),
        ValueError,
        r"^points: expected 2 features \(the fit's data\), got 3",
    ),
    (
        "responsibilities",
        lambda: (np.zeros(3),),
        TypeError,
        r"^fit: expected a MixtureFit, got ndarray",
    ),
    (
        "loo",
        lambda: (_numpy_fit(),),
        ValueError,
        r"^fit: expected a fit with a log_likelihood group, got engine 'test'",
    ),
    (
        "posterior_predictive",
        lambda: (_numpy_fit(), None, 31),
        ValueError,
        r"n_draws: expected an integer <= 30, got 31",
    ),
    (
        "coclustering",
        lambda: (_numpy_fit(), np.zeros((5001, 2))),
        ValueError,
        r"^points: expected at most 5000 observations",
    ),
    ("pareto_khat", lambda: ([0.0, np.nan, 1.0],), ValueError, r"^log_ratios: expected finite"),
    (
        "vi_khat",
        lambda: (_numpy_fit(),),
        ValueError,
        r"^fit: expected a variational fit .* got engine 'test'",
    ),
    (
        "vi_khat",
        lambda: (_numpy_fit().replace(engine="cavi"),),
        ValueError,
        r"^fit: expected fit\.details\.variational_params \(q's parameters\) in a 'cavi' fit",
    ),
    (
        "vi_khat",
        lambda: (_numpy_fit().replace(engine="advi"),),
        ValueError,
        r"^fit: expected q's parameters in fit\.details \(unconstrained_mean, "
        r"unconstrained_chol, unconstrained_labels\) of an 'advi' fit",
    ),
]


@pytest.mark.parametrize("name, arguments, error, message", BAD_INPUT)
def test_bad_input_is_refused_with_a_message_that_teaches(name, arguments, error, message):
    with pytest.raises(error, match=message):
        getattr(diagnostics, name)(*arguments())
