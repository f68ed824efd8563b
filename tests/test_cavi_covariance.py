"""CAVI and SVI with full, tied and spherical covariances (issue #14, conjugate side).

The ELBO keeps every constant (equal to a Monte Carlo ELBO built from scipy densities,
below the exact log evidence), never decreases, and reduces to the diagonal model where
the two models coincide; the fits store Sigma draws from q; SVI steps on the same factors.

Over 400 lines: the ELBO's Monte Carlo oracle (scipy densities for every factor) and the
random problems are shared by all the covariance types' tests, so they stay in one file."""

import numpy as np
import pytest
from scipy.special import xlogy
from scipy.stats import dirichlet, multivariate_normal, norm, wishart

import ppl_mixtures
from ppl_mixtures import MixtureSpec
from ppl_mixtures.inference.conjugate import cavi, svi
from ppl_mixtures.inference.conjugate import fullcov_meanfield as fm
from ppl_mixtures.inference.conjugate import meanfield as mf
from ppl_mixtures.inference.conjugate.fullcov_elbo import elbo as full_elbo
from ppl_mixtures.inference.conjugate.stats import log_rho, responsibilities
from ppl_mixtures.inference.conjugate.stats_full import log_rho_full
from ppl_mixtures.model.evidence import exact_log_evidence
from ppl_mixtures.model.priors import wishart_entropy, wishart_log_prior, wishart_mean_log_det

COVARIANCES = ("full", "known", "tied", "spherical")


def _points(seed, n_samples, n_features, n_components, spread=4.0):
    """Clusters with random correlated covariances."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0.0, spread, size=(n_components, n_features))
    roots = rng.normal(0.0, 0.6, size=(n_components, n_features, n_features))
    roots += 0.5 * np.eye(n_features)
    labels = rng.integers(n_components, size=n_samples)
    noise = rng.normal(size=(n_samples, n_features))
    return centers[labels] + np.einsum("nij,nj->ni", roots[labels], noise)


def _spec(kind, n_features, n_components, seed=0, dirichlet_weights=True):
    """A random spec of covariance type ``kind`` ("known" = full with a known obs_cov)."""
    rng = np.random.default_rng(seed)
    common = dict(
        n_components=n_components,
        mean_prior_mean=tuple(rng.normal(0.0, 1.0, n_features)),
        mean_prior_sd=tuple(rng.uniform(1.0, 5.0, n_features)),
        weights="dirichlet" if dirichlet_weights else "fixed",
        dirichlet_alpha=tuple(rng.uniform(0.5, 3.0, n_components)),
    )
    root = rng.normal(0.0, 0.3, size=(n_features, n_features)) + np.eye(n_features)
    if kind == "known":
        covs = [root @ root.T * s for s in rng.uniform(0.5, 2.0, n_components)]
        return MixtureSpec(**common, covariance="full", obs_cov=np.array(covs))
    if kind == "spherical":
        return MixtureSpec(
            **common, covariance="spherical", precision_prior_shape=2.5, precision_prior_rate=1.5
        )
    return MixtureSpec(
        **common,
        covariance=kind,
        obs_cov="learned" if kind == "full" else None,
        precision_prior_dof=n_features + 1.5,
        precision_prior_scale=root @ root.T / 2.0,
    )


def _run(points, spec, n_steps, seed=0):
    """(previous state, last state, ELBO trace) of n_steps CAVI sweeps on the numpy pass."""
    state = cavi.init(points, spec, random_seed=seed, init="random_points")
    trace, previous = [], state
    for _ in range(n_steps):
        previous = state
        state, info = cavi.step(points, spec, state, backend="numpy")
        trace.append(info.elbo)
    return previous, state, np.array(trace)


# ----------------------------------------------------------------- the Wishart helpers
@pytest.mark.parametrize("n_features", [1, 2, 4])
def test_wishart_helpers_match_scipy(n_features):
    rng = np.random.default_rng(n_features)
    root = rng.normal(size=(n_features, n_features))
    scale = root @ root.T + n_features * np.eye(n_features)
    dof = n_features + 0.7
    draws = wishart.rvs(dof, scale, size=40_000, random_state=1).reshape(-1, n_features, n_features)
    log_dets = np.linalg.slogdet(draws)[1]
    # a point mass gives the plain density; the entropy is scipy's
    np.testing.assert_allclose(
        wishart_log_prior(draws[:5], log_dets[:5], dof, scale),
        wishart.logpdf(np.moveaxis(draws[:5], 0, -1), dof, scale),
        rtol=1e-10,
    )
    np.testing.assert_allclose(wishart_entropy(dof, scale), wishart.entropy(dof, scale), rtol=1e-10)
    # E[log |Lambda|] against the mean of 40,000 draws: 4 standard errors (CLT, ~1e-4 of
    # false alarms); a dropped D log 2 would be off by >= 0.69
    se = log_dets.std() / np.sqrt(log_dets.size)
    assert abs(wishart_mean_log_det(dof, scale) - log_dets.mean()) < 4 * se
    assert se < 0.02


# ----------------------------------------------------------------- the ELBO
@pytest.mark.parametrize(
    "kind,n_features,n_components,dirichlet_weights,seed",
    [
        (kind, d, k, w, seed)
        for seed, kind in enumerate(COVARIANCES)
        for d, k, w in [(1, 2, True), (2, 3, False), (3, 2, True)]
    ],
)
def test_elbo_never_decreases(kind, n_features, n_components, dirichlet_weights, seed):
    points = _points(seed, 40, n_features, n_components)
    spec = _spec(kind, n_features, n_components, seed, dirichlet_weights)
    _, _, trace = _run(points, spec, 20, seed)
    assert np.all(np.isfinite(trace))
    # 40 points: each ELBO carries ~1e-14 relative round-off; a wrong update decreases it
    # by > 1e-6 relative, so 1e-9 separates the two (as in test_cavi)
    assert np.all(np.diff(trace) >= -1e-9 * np.abs(trace[1:]))


def _log_ratio_means(mu, params, spec):
    """log p(mu) - log q(mu) per draw, with scipy densities; mu (S, K, D)."""
    n_components, n_features = params.mean_loc.shape
    prior = norm.logpdf(mu, spec.prior_mean(n_features), spec.prior_sd(n_features)).sum((1, 2))
    cov = params.mean_cov if isinstance(params, fm.FullParams) else None
    if cov is None:  # spherical: q(mu_kd) independent normals
        return prior - norm.logpdf(mu, params.mean_loc, np.sqrt(params.mean_var)).sum((1, 2))
    return prior - sum(
        multivariate_normal.logpdf(mu[:, k], params.mean_loc[k], cov[k])
        for k in range(n_components)
    )


def _draw_precisions(params, spec, n_draws, rng):
    """Lambda draws (S, K, D, D) from q and log p(Lambda) - log q(Lambda) (S,), by scipy."""
    n_components, n_features = params.mean_loc.shape
    if isinstance(params, fm.FullParams) and params.wishart_dof is None:
        prec = np.linalg.inv(spec.known_obs_cov(n_features))
        return np.broadcast_to(prec, (n_draws, *prec.shape)), np.zeros(n_draws)
    if not isinstance(params, fm.FullParams):  # spherical: tau_k ~ Gamma
        shape, rate = params.prec_shape, params.prec_rate
        tau = rng.gamma(shape, 1.0 / rate, size=(n_draws, n_components))
        prior = (spec.precision_prior_shape, 1.0 / spec.precision_prior_rate)
        ratio = (gamma_logpdf(tau, *prior) - gamma_logpdf(tau, shape, 1.0 / rate)).sum(axis=1)
        return tau[..., None, None] * np.eye(n_features), ratio
    dof0, scale0 = spec.wishart_dof(n_features), spec.wishart_scale(n_features)
    factors = []
    ratio = np.zeros(n_draws)
    for dof, scale in zip(params.wishart_dof, params.wishart_scale, strict=True):
        lam = wishart.rvs(dof, scale, size=n_draws, random_state=rng)
        lam = lam.reshape(n_draws, n_features, n_features)
        stacked = np.moveaxis(lam, 0, -1)
        ratio += wishart.logpdf(stacked, dof0, scale0) - wishart.logpdf(stacked, dof, scale)
        factors.append(lam)
    lam = np.stack(factors, axis=1)  # (S, F, D, D): F = K, or 1 when tied
    return np.broadcast_to(lam, (n_draws, n_components, n_features, n_features)), ratio


def gamma_logpdf(x, shape, scale):
    from scipy.stats import gamma

    return gamma.logpdf(x, shape, scale=scale)


def _monte_carlo_elbo(points, spec, resp, params, n_draws, rng):
    """E_q[log p(x, z, mu, w, Lambda) - log q(z, mu, w, Lambda)] with z summed exactly and
    the global variables drawn from q. Returns (estimate, standard error)."""
    n_components, n_features = params.mean_loc.shape
    if isinstance(params, fm.FullParams):
        chol = np.linalg.cholesky(params.mean_cov)
        mu = params.mean_loc + np.einsum(
            "kij,skj->ski", chol, rng.normal(size=(n_draws, n_components, n_features))
        )
    else:
        mu = rng.normal(
            params.mean_loc, np.sqrt(params.mean_var), (n_draws, n_components, n_features)
        )
    log_ratio = _log_ratio_means(mu, params, spec)
    if params.weight_conc is not None:
        w = rng.dirichlet(params.weight_conc, size=n_draws)
        log_ratio += dirichlet.logpdf(w.T, spec.alpha()) - dirichlet.logpdf(w.T, params.weight_conc)
    else:
        w = np.full((n_draws, n_components), 1.0 / n_components)
    lam, ratio = _draw_precisions(params, spec, n_draws, rng)
    log_ratio += ratio
    # log N(x_n | mu_k, Lambda_k^{-1}) for every draw (the density written out; checked
    # against scipy's multivariate_normal on the first draw just below)
    dev = points[None, :, None, :] - mu[:, None]  # (S, N, K, D)
    quad = np.einsum("snki,skij,snkj->snk", dev, lam, dev)
    log_det = np.linalg.slogdet(lam)[1]  # (S, K)
    comp = 0.5 * log_det[:, None] - 0.5 * n_features * np.log(2 * np.pi) - 0.5 * quad
    first = multivariate_normal.logpdf(points, mu[0, 0], np.linalg.inv(lam[0, 0]))
    np.testing.assert_allclose(comp[0, :, 0], first, rtol=1e-10)
    log_lik = np.einsum("nk,snk->s", resp, comp + np.log(w)[:, None, :])
    values = log_lik + log_ratio - xlogy(resp, resp).sum()
    return values.mean(), values.std() / np.sqrt(n_draws)


def _responsibilities(points, spec, params):
    """q(z) of a pass under ``params`` (the public local steps)."""
    if isinstance(params, fm.FullParams):
        expect = fm.expectations(params, spec)
        lr = log_rho_full(
            points, fm.log_rho_constants(params, expect), params.mean_loc, expect.prec
        )
    else:
        expect = mf.expectations(params, spec)
        lr = log_rho(points, mf.log_rho_constants(params, expect), params.mean_loc, expect.prec)
    return responsibilities(lr)[0]


@pytest.mark.parametrize("kind", COVARIANCES)
@pytest.mark.parametrize("dirichlet_weights", [True, False])
def test_elbo_keeps_every_constant(kind, dirichlet_weights):
    # the closed-form ELBO equals a Monte Carlo average of log p - log q built from scipy
    # densities. The average of 20,000 iid values is within 4 standard errors of its mean
    # but for ~6e-5 of seeds (CLT); a dropped constant (D/2 log 2 pi per point: 14 nats
    # here, or the Wishart's log Gamma_D) moves it by far more than 4 se < 1
    points = _points(11, 15, 2, 3)
    spec = _spec(kind, 2, 3, seed=5, dirichlet_weights=dirichlet_weights)
    previous, state, _ = _run(points, spec, 3, seed=2)
    resp = _responsibilities(points, spec, previous.params)  # the q(z) of the last step
    estimate, se = _monte_carlo_elbo(
        points, spec, resp, state.params, 20_000, np.random.default_rng(0)
    )
    assert abs(estimate - state.elbo) < 4 * se + 1e-9
    assert se < 0.25


@pytest.mark.parametrize("dirichlet_weights", [True, False])
@pytest.mark.parametrize("n_components", [2, 3])
def test_elbo_is_below_the_exact_evidence_and_close_when_separated(n_components, dirichlet_weights):
    rng = np.random.default_rng(4)
    centers = np.array([[-8.0, 0.0], [0.0, 8.0], [8.0, 0.0]])[:n_components]
    cov = np.array([[1.0, 0.6], [0.6, 0.8]])
    points = centers[np.arange(7) % n_components] + rng.multivariate_normal([0, 0], cov, 7)
    spec = MixtureSpec(
        n_components=n_components,
        mean_prior_sd=(6.0, 5.0),
        weights="dirichlet" if dirichlet_weights else "fixed",
        dirichlet_alpha=1.5,
        covariance="full",
        obs_cov=cov,
    )
    log_evidence = exact_log_evidence(points, spec)  # enumeration, means integrated out
    fitted = cavi.fit(points, spec, random_seed=0, n_init=4, progressbar=False, backend="numpy")
    # as in test_cavi: q covers one of the K! label-permuted modes, so the bound sits log K!
    # below; with clusters ~10 sds apart mean-field loses little more within a mode, and 0.1
    # nats is that allowance (a dropped constant or a wrong update moves the ELBO by nats)
    log_k_factorial = np.sum(np.log(np.arange(1, n_components + 1)))
    assert fitted.final_elbo <= log_evidence
    assert fitted.final_elbo >= log_evidence - log_k_factorial - 0.1
    assert all(r.objective <= log_evidence for r in fitted.restarts)


@pytest.mark.parametrize("kind", ["full", "tied", "known"])
def test_converged_q_is_a_maximum_in_every_factor(kind):
    # at CAVI's fixed point each factor is the argmax of the ELBO given the others (Bishop
    # 2006, eq. 10.9), so moving any one parameter a little lowers the ELBO (by ~curvature
    # x step^2 >= 1e-7 nats here; the round-off of a 60-point ELBO is ~1e-11)
    points = _points(12, 60, 2, 2)
    spec = _spec(kind, 2, 2, seed=6)
    _, state, _ = _run(points, spec, 300, seed=1)
    params = state.params
    stats = fm.local_pass("numpy", points, params, fm.expectations(params, spec))
    best = full_elbo(stats, params, spec)
    assert best == pytest.approx(state.elbo, rel=1e-10, abs=1e-8)  # the fixed point
    moves = {"mean_loc": 0.01, "mean_cov": 0.01, "weight_conc": 0.01}
    if kind != "known":
        moves.update(wishart_dof=0.01, wishart_scale=0.01)
    for name, size in moves.items():
        value = getattr(params, name)
        for sign in (-1.0, 1.0):
            moved = params._replace(**{name: value * (1.0 + sign * size)})
            assert full_elbo(stats, moved, spec) < best - 1e-9, (name, sign)


# ----------------------------------------------------------------- where models coincide
def _same_q(points, spec_a, spec_b):
    """Run both specs from the same start; the ELBO traces agree (~1e-14 relative round-off
    per sweep over 10 sweeps; a wrong constant or update differs by > 1e-6)."""
    _, _, trace_a = _run(points, spec_a, 10, seed=3)
    _, _, trace_b = _run(points, spec_b, 10, seed=3)
    np.testing.assert_allclose(trace_a, trace_b, rtol=1e-9)


def test_one_feature_full_and_spherical_are_the_diagonal_model():
    # D = 1: Wishart(2 a, 1/(2 b)) is Gamma(a, b), a learned full or spherical covariance is
    # a learned sd; the default Wishart prior is built to reduce to the Gamma prior
    points = _points(7, 60, 1, 2)
    common = dict(
        n_components=2, mean_prior_sd=4.0, precision_prior_shape=2.0, precision_prior_rate=3.0
    )
    diag = MixtureSpec(**common, obs_sd="learned")
    for other in (
        MixtureSpec(**common, covariance="full", obs_cov="learned"),
        MixtureSpec(**common, covariance="spherical"),
    ):
        _same_q(points, diag, other)


def test_known_diagonal_covariance_is_the_known_sd_model():
    points = _points(8, 50, 2, 3)
    sd = np.array([0.8, 1.7])
    common = dict(n_components=3, mean_prior_sd=(4.0, 2.0), dirichlet_alpha=0.7)
    _same_q(
        points,
        MixtureSpec(**common, obs_sd=tuple(sd)),
        MixtureSpec(**common, covariance="full", obs_cov=np.diag(sd**2)),
    )


def test_one_component_tied_is_full():
    points = _points(9, 50, 3, 1)
    common = dict(
        n_components=1, mean_prior_sd=4.0, precision_prior_dof=5.0, precision_prior_scale=0.3
    )
    _same_q(
        points,
        MixtureSpec(**common, covariance="tied"),
        MixtureSpec(**common, covariance="full", obs_cov="learned"),
    )


# ----------------------------------------------------------------- the fit's results
@pytest.mark.parametrize("engine", ["cavi", "svi"])
@pytest.mark.parametrize("kind", ["full", "tied"])
def test_fit_stores_sigma_draws_from_q(engine, kind):
    points = _points(13, 400, 2, 2)
    spec = _spec(kind, 2, 2, seed=7)
    n_draws = 4000
    fitted = ppl_mixtures.fit(
        points, spec, engine=engine, random_seed=0, n_init=1, n_draws=n_draws, progressbar=False
    )
    post = fitted.idata.posterior
    cov = post["obs_cov"].values
    assert cov.shape == (1, n_draws, 2, 2, 2)
    np.testing.assert_allclose(post["obs_sd"].values, np.sqrt(np.diagonal(cov, 0, 3, 4)))
    q = fitted.details.variational_params
    dof, scale = q["wishart_dof"], q["wishart_scale"]
    assert set(q) == {"mean_loc", "mean_cov", "weight_conc", "wishart_dof", "wishart_scale"}
    if kind == "tied":  # one factor, the same Sigma for every component
        assert dof.shape == (1,) and scale.shape == (1, 2, 2)
        np.testing.assert_array_equal(cov[:, :, 0], cov[:, :, 1])
    # Lambda = Sigma^{-1} drawn from q(Lambda) = Wishart(nu, W): its mean nu W, each entry
    # within 4 standard errors sqrt(nu (W_ij^2 + W_ii W_jj) / S) (Wishart variance; CLT,
    # ~6e-5 false alarms per entry)
    prec = np.linalg.inv(cov[0])  # (S, K, D, D)
    factors = prec[:, :1] if kind == "tied" else prec
    diag = np.diagonal(scale, 0, 1, 2)
    var = dof[:, None, None] * (scale**2 + diag[:, :, None] * diag[:, None, :])
    se = np.sqrt(var / n_draws)
    assert np.all(np.abs(factors.mean(axis=0) - dof[:, None, None] * scale) < 4 * se)
    # the means' draws have q(mu)'s mean: 4 se per coordinate
    means = post["means"].values[0]
    mean_se = np.sqrt(np.diagonal(q["mean_cov"], 0, 1, 2) / n_draws)
    assert np.all(np.abs(means.mean(axis=0) - q["mean_loc"]) < 4 * mean_se)


def test_spherical_and_known_fit_results():
    points = _points(14, 300, 3, 2)
    n_draws = 4000
    spherical = cavi.fit(
        points, _spec("spherical", 3, 2), random_seed=0, n_draws=n_draws, progressbar=False
    )
    obs_sd = spherical.idata.posterior["obs_sd"].values[0]  # (S, K, D), equal across D
    np.testing.assert_array_equal(obs_sd, obs_sd[..., :1] * np.ones(3))
    q = spherical.details.variational_params
    assert q["prec_shape"].shape == (2,) and q["prec_rate"].shape == (2,)
    # tau_k = obs_sd^-2 ~ Gamma(a_k, b_k): mean a/b within 4 se sqrt(a / b^2 / S)
    tau = obs_sd[:, :, 0] ** -2.0
    se = np.sqrt(q["prec_shape"] / q["prec_rate"] ** 2 / n_draws)
    assert np.all(np.abs(tau.mean(axis=0) - q["prec_shape"] / q["prec_rate"]) < 4 * se)
    known = svi.fit(points, _spec("known", 3, 2), random_seed=0, n_init=1, progressbar=False)
    assert set(known.idata.posterior.data_vars) == {"means", "weights"}
    assert set(known.details.variational_params) == {"mean_loc", "mean_cov", "weight_conc"}


def test_cavi_recovers_correlated_covariances():
    rng = np.random.default_rng(15)
    truth = np.array([[[1.0, 0.8], [0.8, 1.0]], [[0.5, -0.3], [-0.3, 0.4]]])
    labels = rng.integers(2, size=4000)
    centers = np.array([[-4.0, 0.0], [4.0, 1.0]])
    points = centers[labels] + np.einsum(
        "nij,nj->ni", np.linalg.cholesky(truth)[labels], rng.normal(size=(4000, 2))
    )
    spec = MixtureSpec(n_components=2, mean_prior_sd=10.0, covariance="full", obs_cov="learned")
    q = cavi.fit(points, spec, random_seed=0, n_init=1, progressbar=False).details
    order = np.argsort(q.variational_params["mean_loc"][:, 0])
    dof = q.variational_params["wishart_dof"][order]
    scale = q.variational_params["wishart_scale"][order]
    mean_sigma = np.linalg.inv(scale) / (dof[:, None, None] - 3.0)  # E_q[Sigma] (D = 2)
    # clusters 8 sds apart: the labels are known in effect, so E_q[Sigma_k] is the sample
    # covariance up to the prior's weight ~1/N_k; the sample covariance is within
    # sqrt((S_ii S_jj + S_ij^2) / N_k) <= 0.03 of the truth (N_k ~ 2000): 4 of those
    for k in range(2):
        n_k = np.sum(labels == k)
        se = np.sqrt((np.outer(np.diag(truth[k]), np.diag(truth[k])) + truth[k] ** 2) / n_k)
        assert np.all(np.abs(mean_sigma[k] - truth[k]) < 4 * se)
        sample = np.cov(points[labels == k].T, bias=True)
        np.testing.assert_allclose(mean_sigma[k], sample, atol=10.0 / n_k)


# ----------------------------------------------------------------- SVI
@pytest.mark.parametrize("kind", ["full", "tied", "spherical"])
def test_svi_step_size_one_jumps_to_the_batch_cavi_update(kind):
    points = _points(16, 500, 2, 3)
    spec = _spec(kind, 2, 3, seed=8)
    state = svi.init(points, spec, random_seed=1)
    new, info = svi.step(points, spec, state, batch_size=100, tau=0.0, kappa=1.0)
    assert info.step_size == 1.0  # tau = 0, t = 1, kappa = 1: rho_1 = 1
    rng = np.random.default_rng((state.batch_seed, 1))
    batch = points[np.sort(rng.integers(0, 500, size=100))]
    family = fm if kind != "spherical" else mf
    expect = family.expectations(state.params, spec)
    stats = family.scaled(family.local_pass("numpy", batch, state.params, expect), 5.0)
    target = family.update_globals(stats, spec, expect.prec)
    # numba pass in step, numpy here: ~1e-13 relative (test_estep_full's bound), kept by
    # the O(K D^3) update; natural_step's inversions at rho = 1 add ~1e-15 per entry
    for a, b in zip(new.params, target, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9)


def test_svi_reaches_cavi_with_full_covariance():
    points = _points(17, 30_000, 2, 3, spread=5.0)
    spec = _spec("full", 2, 3, seed=9)
    exact = cavi.fit(points, spec, random_seed=0, n_init=2, progressbar=False)
    approx = svi.fit(
        points, spec, random_seed=0, n_init=2, n_iter=600, batch_size=1000, progressbar=False
    )
    ref, ours = exact.details.variational_params, approx.details.variational_params
    order_ref, order_ours = np.argsort(ref["mean_loc"][:, 0]), np.argsort(ours["mean_loc"][:, 0])
    # q(mu)'s sd at N_k ~ 10,000 points is <= 0.02 (cluster sds <= 2): SVI's iterate
    # fluctuates around CAVI's optimum by less than that; atol 0.05 is ~2.5 of them
    np.testing.assert_allclose(ours["mean_loc"][order_ours], ref["mean_loc"][order_ref], atol=0.05)

    def sigma(q, order):  # E_q[Sigma_k] = W_k^{-1} / (nu_k - D - 1), D = 2
        return np.linalg.inv(q["wishart_scale"][order]) / (q["wishart_dof"][order, None, None] - 3)

    # E_q[Sigma]: its sampling scale ~ |Sigma| sqrt(2 / N_k) ~ 0.03 at |Sigma| <= 2
    np.testing.assert_allclose(sigma(ours, order_ours), sigma(ref, order_ref), atol=0.06)
    # both exact full-data ELBOs; SVI's q is a little below CAVI's optimum
    assert approx.elbo_estimate.value <= exact.elbo_estimate.value + 1e-6
    assert approx.elbo_estimate.value >= exact.elbo_estimate.value - 1e-4 * abs(exact.final_elbo)


@pytest.mark.parametrize("kind", ["full", "spherical"])
def test_svi_elbo_estimate_is_unbiased_in_full_data_nats(kind):
    points = _points(18, 2000, 2, 3)
    spec = _spec(kind, 2, 3, seed=10)
    state = svi.init(points, spec, random_seed=0)
    exact = svi.exact_elbo(points, spec, state.params)
    estimates = np.array(
        [
            svi.step(points, spec, state._replace(n_iter=t), batch_size=50)[1].elbo_estimate
            for t in range(400)
        ]
    )
    # 400 iid minibatch estimates: the mean is within 4 se of the exact value (CLT)
    se = estimates.std() / np.sqrt(estimates.size)
    assert abs(estimates.mean() - exact) < 4 * se
    assert se < 0.01 * abs(exact)


@pytest.mark.parametrize("kind", ["full", "tied"])
def test_ordered_spec_sorts_components_and_their_factors(kind):
    points = _points(19, 200, 2, 3, spread=6.0)
    base = _spec(kind, 2, 3, seed=11)
    ordered = MixtureSpec(**{**base.to_dict(), "ordered": True})
    plain = cavi.fit(points, base, random_seed=0, n_init=1, n_draws=10, progressbar=False)
    fitted = cavi.fit(points, ordered, random_seed=0, n_init=1, n_draws=10, progressbar=False)
    q, q0 = fitted.details.variational_params, plain.details.variational_params
    order = np.argsort(q0["mean_loc"][:, 0])
    assert np.all(np.diff(q["mean_loc"][:, 0]) > 0)
    np.testing.assert_array_equal(q["mean_cov"], q0["mean_cov"][order])
    if kind == "full":  # each component keeps its own Wishart factor
        np.testing.assert_array_equal(q["wishart_scale"], q0["wishart_scale"][order])
    else:  # the one shared factor is unchanged
        np.testing.assert_array_equal(q["wishart_scale"], q0["wishart_scale"])


def test_known_covariance_of_the_wrong_size_is_named():
    spec = MixtureSpec(n_components=2, covariance="full", obs_cov=np.eye(3))
    with pytest.raises(ValueError, match=r"obs_cov: expected \(2, 2\) matrices"):
        ppl_mixtures.fit(_points(20, 30, 2, 2), spec, engine="cavi", progressbar=False)
