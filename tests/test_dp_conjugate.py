"""Truncated Dirichlet-process weights in CAVI and SVI, and the exact evidence of the
truncated model (issue #15, conjugate side).

Oracles: the exact evidence by enumeration (an ELBO must lie below it), a Monte Carlo ELBO
built from scipy densities (the closed-form ELBO must equal it), numerical integration of
the stick-breaking prior (p(z) must match it and sum to one), and the coordinate-optimum
invariant of the stick update."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import integrate
from scipy.stats import beta, gamma, multivariate_normal, norm, wishart

from ppl_mixtures import MixtureSpec, datasets, fit
from ppl_mixtures.inference.conjugate import cavi, driver, merge
from ppl_mixtures.inference.conjugate import fullcov_meanfield as fm
from ppl_mixtures.inference.conjugate import meanfield as mf
from ppl_mixtures.inference.conjugate.family import q_family, q_posterior_draws
from ppl_mixtures.inference.conjugate.stats import log_rho, responsibilities, sufficient_stats
from ppl_mixtures.inference.conjugate.stats_full import full_stats, log_rho_full
from ppl_mixtures.inference.conjugate.sticks import expected_counts, size_biased
from ppl_mixtures.model.enumeration import dp_log_prior_z, one_hot
from ppl_mixtures.model.evidence import exact_log_evidence, exact_posterior
from ppl_mixtures.model.transforms import stick_weights

GAMMA_PRIOR = (2.0, 1.0)  # alpha ~ Gamma(shape 2, rate 1): mean 2


def _three_clusters() -> np.ndarray:
    """N = 600 points from three well-separated 2-D clusters (sd 0.5, centres 3 apart)."""
    points, _ = datasets.make_mixture(
        600, [[-3.0, 0.0], [0.0, 3.0], [3.0, 0.0]], [0.5, 0.3, 0.2], 0.5, random_seed=0
    )
    return points


def _dp_spec(covariance: str, n_components: int = 10, **extra) -> MixtureSpec:
    learned = {"diag": {"obs_sd": "learned"}, "full": {"obs_cov": "learned"}}.get(covariance, {})
    return MixtureSpec(
        n_components=n_components,
        weights="dp",
        mean_prior_sd=3.0,
        covariance=covariance,
        **(learned | extra),
    )


# ------------------------------------------------------------- the number of components
@pytest.mark.parametrize("covariance", ["diag", "full"])
@pytest.mark.parametrize("alpha_prior", [None, GAMMA_PRIOR])
def test_cavi_dp_ends_with_the_three_clusters(covariance, alpha_prior):
    spec = _dp_spec(covariance, dp_alpha_prior=alpha_prior)
    result = fit(_three_clusters(), spec, engine="cavi", random_seed=0, n_draws=100)
    counts = expected_counts(result.details.variational_params, spec)
    assert counts.sum() == pytest.approx(600.0, rel=1e-12)  # E[N_k] of one q(z): sum N
    assert np.count_nonzero(counts >= 1.0) == 3, counts
    # each found component holds one cluster: 274, 191 and 135 points in this draw
    assert sorted(np.round(counts[counts >= 1.0])) == [135.0, 191.0, 274.0]


@pytest.mark.slow  # ~10 s: SVI merges a split cluster slowly (see below)
@pytest.mark.parametrize("alpha_prior", [None, GAMMA_PRIOR])
def test_svi_dp_ends_with_the_three_clusters(alpha_prior):
    spec = _dp_spec("diag", dp_alpha_prior=alpha_prior)
    # full-data batches (600 points), slowly decaying steps rho_t = (t + 1)^-0.55: the steps
    # are damped CAVI sweeps, and a cluster split between two components at the start
    # empties only over ~10^3 steps (at 500 steps most seeds still hold a 4th component
    # with 10-40 points); 2000 steps ended with 3 for 10 of 10 data/fit seeds tried
    result = fit(
        _three_clusters(),
        spec,
        engine="svi",
        random_seed=0,
        kappa=0.55,
        n_iter=2000,
        n_init=3,
        n_draws=100,
    )
    counts = expected_counts(result.details.variational_params, spec)
    assert np.count_nonzero(counts >= 1.0) == 3, counts


# ------------------------------------------------------------------ monotone ELBO
@pytest.mark.parametrize("covariance", ["diag", "spherical", "full", "tied"])
@pytest.mark.parametrize("alpha_prior", [None, GAMMA_PRIOR])
def test_cavi_dp_elbo_never_decreases(covariance, alpha_prior):
    spec = _dp_spec(covariance, n_components=6, dp_alpha_prior=alpha_prior)
    result = fit(_three_clusters()[:300], spec, engine="cavi", random_seed=1, n_init=1)
    trace = np.asarray(result.elbo)
    assert trace.size > 10
    # every sweep takes each block's exact optimum; rounding of sums of ~300 terms of
    # size ~10 is ~1e-12 relative, far below the 1e-9 allowed
    assert np.all(np.diff(trace) >= -1e-9 * np.abs(trace[1:])), np.diff(trace).min()


# ------------------------------------------------------------------ merge moves
def _split_prone(n_samples: int) -> np.ndarray:
    """Three well-separated clusters of unequal size and shape (benchmarks/bench_select_k.py's
    data): k-means++ with T = 10 centres splits each cluster among several components."""
    rng = np.random.default_rng(0)
    labels = rng.choice(3, size=n_samples, p=[0.5, 0.3, 0.2])
    centers = np.array([[0.0, 0.0], [4.0, 3.0], [-3.0, 5.0]])
    scales = np.array([[1.0, 0.5], [0.7, 1.0], [1.0, 1.2]])
    return centers[labels] + scales[labels] * rng.normal(size=(n_samples, 2))


@pytest.mark.parametrize("covariance", ["diag", "full"])
def test_merged_statistics_are_those_of_the_union(covariance):
    # oracle: the statistics of hard responsibilities in which the two labels are one
    points = _split_prone(500)
    labels = np.random.default_rng(1).integers(0, 5, size=500)
    spec = _dp_spec(covariance, n_components=5)
    stats_of = sufficient_stats if covariance == "diag" else full_stats
    merged = merge.merged_stats(stats_of(points, np.eye(5)[labels]), 3, 1, spec)
    union = size_biased(stats_of(points, np.eye(5)[np.where(labels == 3, 1, labels)]), spec)
    assert merged.counts.sum() == 500.0
    np.testing.assert_allclose(merged.counts, union.counts, rtol=0, atol=1e-12)
    np.testing.assert_allclose(merged.means, union.means, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(merged.scatter, union.scatter, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("covariance", ["diag", "spherical", "full", "tied"])
def test_cavi_dp_merge_moves_keep_the_elbo_monotone(covariance):
    spec = _dp_spec(covariance, dp_alpha_prior=GAMMA_PRIOR)
    result = fit(_split_prone(2000), spec, engine="cavi", random_seed=0, n_init=1, n_draws=10)
    assert result.details.merges_accepted >= 1  # this run does merge
    assert result.details.merges_proposed >= result.details.merges_accepted
    trace = np.asarray(result.elbo)
    assert trace.size == result.n_iter
    # every value is the ELBO of a full sweep, an accepted merge's included; the 1e-9
    # relative rounding allowance as in test_cavi_dp_elbo_never_decreases
    assert np.all(np.diff(trace) >= -1e-9 * np.abs(trace[1:])), np.diff(trace).min()


@pytest.mark.parametrize("covariance", ["diag", "full"])
def test_cavi_dp_merges_the_split_clusters_of_a_kmeans_start(covariance):
    # 2,000 points, T = 10: plain coordinate ascent from the same k-means++ start still
    # holds >= 5 components after as many sweeps as the merging fit used; the merges end
    # with the 3 clusters at a higher ELBO (the last value of each trace is an exact ELBO)
    points = _split_prone(2000)
    spec = _dp_spec(covariance)
    result = fit(points, spec, engine="cavi", random_seed=0, n_init=1, n_draws=10)
    counts = expected_counts(result.details.variational_params, spec)
    assert result.converged
    assert np.count_nonzero(counts >= 1.0) == 3, counts
    state = cavi.init(points, spec, random_seed=driver.restart_seeds(0, 2)[0])
    assert result.elbo[0] == pytest.approx(cavi.step(points, spec, state)[1].elbo, rel=1e-12)
    for _ in range(result.n_iter):
        state, _info = cavi.step(points, spec, state)
    plain = expected_counts(state.params, spec)
    assert np.count_nonzero(plain >= 1.0) > 3, plain
    assert result.elbo[-1] > state.elbo


# ------------------------------------------------------------------ the ELBO's terms
def _log_q_z_draws(points, spec, params, rng, n_draws):
    """r from one pass of ``params``; z ~ q(z) draws (S, N) with log q(z) of each (S,)."""
    family, _ = q_family(spec)
    expect = family.expectations(params, spec)
    if family is fm:
        rho = log_rho_full(
            points, fm.log_rho_constants(params, expect), params.mean_loc, expect.prec
        )
    else:
        rho = log_rho(points, mf.log_rho_constants(params, expect), params.mean_loc, expect.prec)
    resp, log_resp, _ = responsibilities(rho)
    cum = np.cumsum(resp, axis=1)
    u = rng.uniform(size=(n_draws, points.shape[0], 1))
    z = np.minimum((u > cum[None]).sum(axis=2), spec.n_components - 1)
    return z, log_resp[np.arange(points.shape[0]), z].sum(axis=1)


def _monte_carlo_elbo(points, spec, params, n_draws, seed):
    """Mean and standard error of log p(x, z, theta) - log q(z, theta) over draws from q,
    every density from scipy."""
    rng = np.random.default_rng(seed)
    family, _ = q_family(spec)
    n_features = points.shape[1]
    z, log_q = _log_q_z_draws(points, spec, params, rng, n_draws)
    means, weights, obs, extras = family.draws_with_extras(params, spec, n_draws, rng)
    means, weights, sticks = means[0], weights[0], extras["dp_sticks"][0]
    log_p = np.log(np.take_along_axis(weights, z, axis=1)).sum(axis=1)
    # sticks and alpha
    if spec.dp_alpha_prior is None:
        alpha = np.full(n_draws, spec.dp_alpha)
    else:
        alpha = extras["dp_alpha"][0]
        log_q += gamma.logpdf(alpha, params.alpha_shape[0], scale=1 / params.alpha_rate[0])
        shape0, rate0 = spec.dp_alpha_prior
        log_p += gamma.logpdf(alpha, shape0, scale=1 / rate0)
    log_q += beta.logpdf(sticks, params.stick_a, params.stick_b).sum(axis=1)
    log_p += beta.logpdf(sticks, 1.0, alpha[:, None]).sum(axis=1)
    # means
    prior_sd = spec.prior_sd(n_features)
    log_p += norm.logpdf(means, spec.prior_mean(n_features), prior_sd).sum(axis=(1, 2))
    if family is fm:
        for k in range(spec.n_components):
            log_q += multivariate_normal(params.mean_loc[k], params.mean_cov[k]).logpdf(means[:, k])
        cov = obs[0]  # (S, K, D, D)
        n_factors = params.wishart_dof.shape[0]
        for f in range(n_factors):  # tied: one factor, the same matrix for every k
            prec = np.linalg.inv(cov[:, f])
            log_q += wishart.logpdf(
                np.moveaxis(prec, 0, -1), params.wishart_dof[f], params.wishart_scale[f]
            )
            log_p += wishart.logpdf(
                np.moveaxis(prec, 0, -1),
                spec.wishart_dof(n_features),
                spec.wishart_scale(n_features),
            )
        for s in range(n_draws):
            for k in range(spec.n_components):
                mine = points[z[s] == k]
                if mine.shape[0]:
                    log_p[s] += multivariate_normal(means[s, k], cov[s, k]).logpdf(mine).sum()
    else:
        log_q += norm.logpdf(means, params.mean_loc, np.sqrt(params.mean_var)).sum(axis=(1, 2))
        sd = obs[0]  # (S, K, D)
        tau = sd[..., 0] ** -2.0 if params.prec_shape.ndim == 1 else sd**-2.0
        shape0, rate0 = spec.precision_prior_shape, spec.precision_prior_rate
        axes = tuple(range(1, tau.ndim))
        log_q += gamma.logpdf(tau, params.prec_shape, scale=1 / params.prec_rate).sum(axis=axes)
        log_p += gamma.logpdf(tau, shape0, scale=1 / rate0).sum(axis=axes)
        rows = np.arange(n_draws)[:, None]
        log_p += norm.logpdf(points[None], means[rows, z], sd[rows, z]).sum(axis=(1, 2))
    values = log_p - log_q
    return values.mean(), values.std(ddof=1) / np.sqrt(n_draws)


@pytest.mark.parametrize("covariance", ["diag", "spherical", "full", "tied"])
@pytest.mark.parametrize("alpha_prior", [None, GAMMA_PRIOR])
def test_elbo_equals_a_monte_carlo_elbo(covariance, alpha_prior):
    points = _three_clusters()[::15]  # 40 points
    spec = _dp_spec(covariance, n_components=4, dp_alpha_prior=alpha_prior)
    state = cavi.init(points, spec, random_seed=0)
    for _ in range(4):  # any q will do; a few sweeps make it a typical one
        state, _ = cavi.step(points, spec, state, backend="numpy")
    family, family_elbo = q_family(spec)
    params = state.params
    expect = family.expectations(params, spec)
    exact = family_elbo(family.local_pass("numpy", points, params, expect), params, spec)
    # the MC mean of S iid values f_s = log p - log q has standard error sd(f) / sqrt(S)
    # (central limit theorem); 4 se leaves a 6e-5 chance of a false alarm per case
    mean, se = _monte_carlo_elbo(points, spec, params, n_draws=1000, seed=3)
    assert se < 0.25  # the check is sharp: a term wrong by 1 nat would show
    assert abs(mean - exact) < 4 * se, (mean, exact, se)


@pytest.mark.parametrize("alpha_prior", [None, GAMMA_PRIOR])
@pytest.mark.parametrize("covariance", ["diag", "tied"])
def test_stick_update_is_the_coordinate_optimum(covariance, alpha_prior):
    """Given q(z), q(v) (with q(alpha), jointly) maximizes the ELBO: nudging any stick or
    alpha parameter up or down lowers it."""
    points = _three_clusters()[::5]
    spec = _dp_spec(covariance, n_components=5, dp_alpha_prior=alpha_prior)
    state = cavi.init(points, spec, random_seed=0)
    state, _ = cavi.step(points, spec, state, backend="numpy")
    family, family_elbo = q_family(spec)
    expect = family.expectations(state.params, spec)
    stats = family.local_pass("numpy", points, state.params, expect)
    best = family.update_globals(stats, spec, expect.prec)
    base = family_elbo(stats, best, spec)
    names = ["stick_a", "stick_b"] + (["alpha_shape", "alpha_rate"] if alpha_prior else [])
    for name in names:
        values = getattr(best, name)
        for j in range(values.size):
            for factor in (0.99, 1.01):
                nudged = values.copy()
                nudged[j] *= factor
                changed = family_elbo(stats, best._replace(**{name: nudged}), spec)
                # a second-order drop of >= ~1e-8 nats against rounding of ~1e-12
                assert changed < base, (name, j, factor, base - changed)


# ------------------------------------------------------------------ draws from q
def test_posterior_draws_break_the_sticks_and_carry_alpha():
    points = _three_clusters()[::10]
    spec = _dp_spec("diag", n_components=5, dp_alpha_prior=GAMMA_PRIOR)
    state = cavi.init(points, spec, random_seed=0)
    for _ in range(3):
        state, _ = cavi.step(points, spec, state, backend="numpy")
    params = state.params
    n_draws = 20_000
    means, weights, obs_sd, obs_cov, extra = q_posterior_draws(
        params, spec, n_draws, np.random.default_rng(0)
    )
    assert extra is not None and set(extra.data_vars) == {"dp_sticks", "dp_alpha"}
    assert extra["dp_sticks"].dims == ("chain", "draw", "component_stick")
    sticks = extra["dp_sticks"].values
    np.testing.assert_allclose(weights, stick_weights(sticks), rtol=1e-12)
    # E[w_k] = E[v_k] prod_{j<k} E[1 - v_j] under independent Beta sticks; 5 se of the mean
    a, b = params.stick_a, params.stick_b
    mean_v = np.append(a / (a + b), 1.0)
    mean_left = np.concatenate([[1.0], np.cumprod(b / (a + b))])
    expected = mean_v * mean_left
    se = weights[0].std(axis=0) / np.sqrt(n_draws)
    assert np.all(np.abs(weights[0].mean(axis=0) - expected) < 5 * se + 1e-15)
    alpha = extra["dp_alpha"].values[0]
    alpha_mean = params.alpha_shape[0] / params.alpha_rate[0]
    assert abs(alpha.mean() - alpha_mean) < 5 * alpha.std() / np.sqrt(n_draws)
    # the draws of means and obs_sd are those of q_family's module, from the same stream
    assert means.shape == (1, n_draws, 5, 2) and obs_sd.shape == (1, n_draws, 5, 2)
    assert obs_cov is None


@pytest.mark.parametrize("engine", ["cavi", "svi"])
def test_a_dp_fit_stores_its_sticks_and_alpha_in_the_posterior(engine):
    """fit() puts q's draws of the sticks and of alpha beside the stick-broken weights."""
    points = _three_clusters()[::10]
    spec = _dp_spec("diag", n_components=5, dp_alpha_prior=GAMMA_PRIOR)
    options = {"n_iter": 200} if engine == "svi" else {}
    result = fit(points, spec, engine=engine, n_init=1, progressbar=False, **options)
    posterior = result.idata["posterior"]
    assert posterior["dp_sticks"].shape[-1] == 4 and posterior["dp_alpha"].ndim == 2
    np.testing.assert_allclose(
        posterior["weights"].values, stick_weights(posterior["dp_sticks"].values), rtol=1e-12
    )
    assert np.all(posterior["dp_alpha"].values > 0)


# ------------------------------------------------------------------ exact evidence
@pytest.mark.parametrize("alpha_prior", [None, GAMMA_PRIOR])
@pytest.mark.parametrize(("n_samples", "n_components"), [(6, 3), (4, 4)])
def test_stick_breaking_prior_of_z_sums_to_one(alpha_prior, n_samples, n_components):
    spec = MixtureSpec(
        n_components=n_components, weights="dp", dp_alpha=0.7, dp_alpha_prior=alpha_prior
    )
    z = np.array(list(itertools.product(range(n_components), repeat=n_samples)))
    log_p = dp_log_prior_z(one_hot(z, n_components).sum(axis=1), spec)
    assert np.exp(log_p).sum() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("counts", [(2, 0, 3), (1, 2, 1), (0, 0, 2)])
def test_prior_of_z_is_the_integral_over_the_sticks(counts):
    """p(z | alpha) of a labelled sequence, (D1), against 2-D numerical integration of
    prod_i w_{z_i} over v_1, v_2 ~ Beta(1, alpha) (T = 3)."""
    alpha = 1.3
    spec = MixtureSpec(n_components=3, weights="dp", dp_alpha=alpha)
    n1, n2, n3 = counts

    def integrand(v2: float, v1: float) -> float:
        w = (v1, (1 - v1) * v2, (1 - v1) * (1 - v2))
        return (
            w[0] ** n1 * w[1] ** n2 * w[2] ** n3 * beta.pdf(v1, 1, alpha) * beta.pdf(v2, 1, alpha)
        )

    value, error = integrate.dblquad(integrand, 0, 1, 0, 1, epsabs=1e-12, epsrel=1e-9)
    ours = float(np.exp(dp_log_prior_z(np.array([counts], float), spec))[0])
    assert error < 1e-8 * value
    assert ours == pytest.approx(value, rel=1e-7)


def test_evidence_with_a_gamma_prior_is_the_integral_over_alpha():
    """log p(x) with alpha ~ Gamma integrates p(x | alpha) (the fixed-alpha evidence) over
    the prior: the other order of integration, by scipy's quad over alpha itself."""
    points = np.array([-2.1, -1.7, 0.2, 2.0, 2.4])
    base = dict(n_components=3, weights="dp", mean_prior_sd=2.0, obs_sd=0.6)
    shape, rate = GAMMA_PRIOR
    ours = exact_log_evidence(points, MixtureSpec(**base, dp_alpha_prior=(shape, rate)))
    scale = exact_log_evidence(points, MixtureSpec(**base, dp_alpha=shape / rate))

    def integrand(alpha: float) -> float:
        fixed = MixtureSpec(**base, dp_alpha=min(max(alpha, 1e-6), 1e6))
        return np.exp(exact_log_evidence(points, fixed) - scale) * gamma.pdf(
            alpha, shape, scale=1 / rate
        )

    value, error = integrate.quad(integrand, 0.0, np.inf, epsabs=0.0, epsrel=1e-10, limit=200)
    assert error < 1e-8 * value
    assert ours == pytest.approx(scale + np.log(value), abs=1e-8)


@pytest.mark.parametrize("alpha_prior", [None, GAMMA_PRIOR])
def test_dp_predictive_integrates_to_one_in_1d(alpha_prior):
    points = np.array([-2.0, -1.6, 0.3, 1.9, 2.2, 2.5])
    spec = MixtureSpec(
        n_components=3, weights="dp", mean_prior_sd=2.0, obs_sd=0.7, dp_alpha_prior=alpha_prior
    )
    grid = np.linspace(-30.0, 30.0, 3_001)  # step 0.02; the predictive sds are ~0.7 to 2
    density = np.exp(exact_posterior(points, spec).predictive_logpdf(grid))
    # the trapezoid rule on a smooth density with Gaussian tails: its error decays like
    # exp(-2 pi^2 sd^2 / h^2) (Trefethen & Weideman 2014), far below 1e-8 at sd/h >= 35
    assert np.trapezoid(density, grid) == pytest.approx(1.0, abs=1e-8)


def _tiny(covariance: str, alpha_prior) -> tuple[np.ndarray, MixtureSpec]:
    points, _ = datasets.make_mixture(7, [[-2.0, 0.0], [2.0, 1.0]], [0.6, 0.4], 0.6, random_seed=4)
    known = {"obs_sd": 0.6} if covariance == "diag" else {"obs_cov": [[0.4, 0.1], [0.1, 0.3]]}
    spec = MixtureSpec(
        n_components=3,
        weights="dp",
        mean_prior_sd=2.0,
        covariance=covariance,
        dp_alpha_prior=alpha_prior,
        **known,
    )
    return points, spec


@pytest.mark.parametrize("covariance", ["diag", "full"])
@pytest.mark.parametrize("alpha_prior", [None, GAMMA_PRIOR])
def test_cavi_dp_elbo_is_below_the_exact_evidence(covariance, alpha_prior):
    points, spec = _tiny(covariance, alpha_prior)
    log_evidence = exact_log_evidence(points, spec)
    result = fit(points, spec, engine="cavi", random_seed=0, n_draws=10)
    elbo = result.elbo_estimate.value
    # a lower bound (Blei et al. 2017, eq. 13), up to rounding of a 7-point sum
    assert elbo <= log_evidence + 1e-10 * abs(log_evidence)
    # and not a trivially loose one: mean-field on 7 points loses a few nats at most
    assert log_evidence - elbo < 5.0, (elbo, log_evidence)


# ------------------------------------------------------------- models that coincide
@pytest.mark.parametrize("covariance", ["diag", "tied"])
def test_two_sticks_are_a_dirichlet_one_alpha(covariance):
    """T = 2: w = (v, 1 - v) with v ~ Beta(1, alpha) is Dirichlet(1, alpha), and q(v) =
    Beta(a, b) is q(w) = Dirichlet(a, b); CAVI must give the same ELBO trace."""
    points = _three_clusters()[::6]
    alpha = 0.6
    dp = _dp_spec(covariance, n_components=2, dp_alpha=alpha)
    dirichlet = dp.to_dict() | {"weights": "dirichlet", "dirichlet_alpha": (1.0, alpha)}
    dirichlet.pop("dp_alpha")
    dirichlet.pop("dp_alpha_prior")
    options = dict(engine="cavi", random_seed=2, n_init=1, n_draws=10, backend="numpy")
    ours = fit(points, dp, **options)
    theirs = fit(points, MixtureSpec(**dirichlet), **options)
    assert ours.n_iter == theirs.n_iter
    # the same sums in a different order (digamma of a sum vs of its parts): ~1e-13
    np.testing.assert_allclose(ours.elbo, theirs.elbo, rtol=1e-10)
    counts = expected_counts(ours.details.variational_params, dp)
    conc = theirs.details.variational_params["weight_conc"]
    np.testing.assert_allclose(counts, conc - (1.0, alpha), rtol=1e-9, atol=1e-9)


def test_two_sticks_have_the_dirichlet_evidence():
    points = np.array([-1.9, -2.2, 0.4, 2.1, 1.7, 2.6, -0.3])
    common = dict(n_components=2, mean_prior_sd=2.0, obs_sd=0.7)
    dp = exact_log_evidence(points, MixtureSpec(**common, weights="dp", dp_alpha=2.5))
    dirichlet = exact_log_evidence(points, MixtureSpec(**common, dirichlet_alpha=(1.0, 2.5)))
    assert dp == pytest.approx(dirichlet, abs=1e-12)


def test_one_stick_level_is_the_one_component_model():
    """T = 1: the weight is 1 whatever alpha, so the fit is the K = 1 model's."""
    points = _three_clusters()[::10]
    dp = MixtureSpec(n_components=1, weights="dp", dp_alpha_prior=GAMMA_PRIOR, mean_prior_sd=3.0)
    ours = fit(points, dp, engine="cavi", random_seed=0, n_init=1, n_draws=10)
    theirs = fit(
        points,
        MixtureSpec(n_components=1, mean_prior_sd=3.0),
        engine="cavi",
        random_seed=0,
        n_init=1,
        n_draws=10,
    )
    np.testing.assert_allclose(ours.elbo, theirs.elbo, rtol=1e-12)
    assert np.all(ours.idata["posterior"]["weights"].values == 1.0)
    with pytest.raises(ValueError, match="variational_params: expected the stick factors"):
        expected_counts(ours.details.variational_params, dp)
