"""CAVI: the ELBO's invariants and constants, its bound on the exact evidence, the fit's results.

The pass and the core's pieces are tested in test_conjugate_core.py."""

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import xlogy
from scipy.stats import dirichlet, gamma, norm

import ppl_mixtures
from ppl_mixtures import ConvergenceWarning, MixtureSpec, datasets
from ppl_mixtures.inference.conjugate import cavi, driver
from ppl_mixtures.inference.conjugate import meanfield as mf
from ppl_mixtures.inference.conjugate import stats as cs
from ppl_mixtures.model.evidence import exact_log_evidence


def _problem(seed, n_samples, n_features, n_components, dirichlet_weights, learned):
    """Random clustered data and a random spec of the requested kind."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0.0, 4.0, size=(n_components, n_features))
    labels = rng.integers(n_components, size=n_samples)
    points = centers[labels] + rng.gamma(2.0, 0.5, size=n_features) * rng.normal(
        size=(n_samples, n_features)
    )
    spec = MixtureSpec(
        n_components=n_components,
        mean_prior_mean=tuple(rng.normal(0.0, 1.0, n_features)),
        mean_prior_sd=tuple(rng.uniform(0.5, 5.0, n_features)),
        weights="dirichlet" if dirichlet_weights else "fixed",
        dirichlet_alpha=tuple(rng.uniform(0.3, 3.0, n_components)),
        obs_sd="learned" if learned else tuple(rng.uniform(0.5, 2.0, n_features)),
        precision_prior_shape=float(rng.uniform(1.0, 4.0)),
        precision_prior_rate=float(rng.uniform(0.5, 4.0)),
    )
    return points, spec


@given(
    seed=st.integers(0, 2**32 - 1),
    n_features=st.integers(1, 3),
    n_components=st.integers(1, 4),
    dirichlet_weights=st.booleans(),
    learned=st.booleans(),
)
def test_elbo_never_decreases(seed, n_features, n_components, dirichlet_weights, learned):
    points, spec = _problem(seed, 40, n_features, n_components, dirichlet_weights, learned)
    state = cavi.init(points, spec, random_seed=seed, init="random_points")
    trace = []
    for _ in range(15):
        state, info = cavi.step(points, spec, state)
        trace.append(info.elbo)
    trace = np.array(trace)
    assert np.all(np.isfinite(trace))
    # 40 points: each ELBO carries ~1e-14 relative round-off; a real decrease (a wrong
    # update) is > 1e-6 relative, so 1e-9 separates the two
    assert np.all(np.diff(trace) >= -1e-9 * np.abs(trace[1:]))


def _responsibilities(points, spec, params):
    expect = mf.expectations(params, spec)
    log_rho = cs.log_rho(points, mf.log_rho_constants(params, expect), params.mean_loc, expect.prec)
    return cs.responsibilities(log_rho)[0]


def _monte_carlo_elbo(points, spec, resp, params, n_draws, rng):
    """E_q[log p(x, z, mu, w, tau) - log q(z, mu, w, tau)] with scipy densities: z summed
    exactly, the global variables by Monte Carlo. Returns (estimate, standard error)."""
    n_components, n_features = params.mean_loc.shape
    mu = rng.normal(
        params.mean_loc, np.sqrt(params.mean_var), size=(n_draws, n_components, n_features)
    )
    log_ratio = (
        norm.logpdf(mu, spec.prior_mean(n_features), spec.prior_sd(n_features))
        - norm.logpdf(mu, params.mean_loc, np.sqrt(params.mean_var))
    ).sum(axis=(1, 2))
    if params.weight_conc is not None:
        w = rng.dirichlet(params.weight_conc, size=n_draws)
        log_ratio += dirichlet.logpdf(w.T, spec.alpha()) - dirichlet.logpdf(w.T, params.weight_conc)
    else:
        w = np.full((n_draws, n_components), 1.0 / n_components)
    if params.prec_shape is not None:
        tau = rng.gamma(
            params.prec_shape, 1.0 / params.prec_rate, size=(n_draws, n_components, n_features)
        )
        log_ratio += (
            gamma.logpdf(tau, spec.precision_prior_shape, scale=1.0 / spec.precision_prior_rate)
            - gamma.logpdf(tau, params.prec_shape, scale=1.0 / params.prec_rate)
        ).sum(axis=(1, 2))
    else:
        tau = np.broadcast_to(spec.known_obs_sd(n_features) ** -2.0, mu.shape)
    comp = norm.logpdf(points[None, :, None, :], mu[:, None], tau[:, None] ** -0.5).sum(-1)
    log_lik = np.einsum("nk,snk->s", resp, comp + np.log(w)[:, None, :])
    values = log_lik + log_ratio - xlogy(resp, resp).sum()
    return values.mean(), values.std() / np.sqrt(n_draws)


@pytest.mark.parametrize(
    "dirichlet_weights,learned", [(False, False), (True, False), (True, True), (False, True)]
)
def test_elbo_keeps_every_constant(dirichlet_weights, learned):
    # the closed-form ELBO equals a Monte Carlo average of log p - log q built from scipy
    # densities: a dropped 1/2 log 2 pi per point would shift it by 14 nats (SE < 0.2)
    points, spec = _problem(11, 15, 2, 3, dirichlet_weights, learned)
    state = cavi.init(points, spec, random_seed=2)
    for _ in range(3):
        previous = state
        state, _ = cavi.step(points, spec, state)
    resp = _responsibilities(points, spec, previous.params)  # the q(z) of the last step
    estimate, se = _monte_carlo_elbo(
        points, spec, resp, state.params, 20_000, np.random.default_rng(0)
    )
    assert abs(estimate - state.elbo) < 4 * se + 1e-9
    assert se < 0.2


@pytest.mark.parametrize(
    "spec",
    [
        MixtureSpec(n_components=3, mean_prior_sd=10.0, weights="fixed"),
        MixtureSpec(n_components=2, mean_prior_sd=5.0, dirichlet_alpha=1.0),
        MixtureSpec(
            n_components=2,
            mean_prior_mean=1.0,
            mean_prior_sd=(3.0, 1.0),
            weights="fixed",
            dirichlet_alpha=0.5,
            obs_sd=(1.0, 0.5),
        ),
    ],
)
def test_elbo_is_below_the_exact_evidence_and_close_when_separated(spec):
    rng = np.random.default_rng(4)
    n_features = len(spec.mean_prior_sd) if isinstance(spec.mean_prior_sd, tuple) else 1
    centers = np.array([-8.0, 0.0, 8.0])[: spec.n_components, None] * np.ones(n_features)
    points = centers[np.arange(9) % spec.n_components] + 0.5 * rng.normal(size=(9, n_features))
    log_evidence = exact_log_evidence(points, spec)
    fitted = cavi.fit(points, spec, random_seed=0, n_init=4, progressbar=False)
    # CAVI's q covers one of the K! label-permuted modes: the bound sits log K! below.
    # With clusters 16 sds apart the posterior inside one mode is nearly a product of
    # independent factors, so mean-field loses little more: 0.1 nats is that allowance
    # (a dropped constant or a wrong update would move the ELBO by nats)
    log_k_factorial = np.sum(np.log(np.arange(1, spec.n_components + 1)))
    assert fitted.final_elbo <= log_evidence
    assert fitted.final_elbo >= log_evidence - log_k_factorial - 0.1
    assert all(r.objective <= log_evidence for r in fitted.restarts)


def test_recovers_seed_000_means():
    points, _ = datasets.three_clusters_1d(random_seed=0)
    spec = MixtureSpec(n_components=3, mean_prior_sd=10.0, weights="fixed")  # seed 000's model
    fitted = ppl_mixtures.fit(
        points, spec, engine="cavi", random_seed=1, n_init=2, progressbar=False
    )
    means = np.sort(fitted.details.variational_params["mean_loc"][:, 0])
    # q's mean is close to a cluster's sample mean, which is within 1/sqrt(333) = 0.055 (one
    # sd, the clusters have sd 1 and ~333 points) of the true mean: atol 0.15 is 2.7 sd
    np.testing.assert_allclose(means, [-10.0, 0.25, 5.0], atol=0.15)
    assert fitted.converged
    # q(mu) variance is 1/(1/s0^2 + N_k) with N_k within 5% of 333 for separated clusters
    np.testing.assert_allclose(fitted.details.variational_params["mean_var"], 1 / 333, rtol=0.05)


def test_backends_give_the_same_fit():
    points, spec = _problem(3, 300, 2, 3, True, True)
    fits = [
        cavi.fit(points, spec, random_seed=5, backend=b, progressbar=False)
        for b in ("numba", "numpy")
    ]
    # the passes agree to their round-off bound (~1e-13 relative for 300 points, see
    # test_conjugate_core) and CAVI's fixed-point map contracts a perturbation rather than
    # amplifying it, so the traces agree to ~1e-12; rtol 1e-10 leaves a factor 100
    np.testing.assert_allclose(fits[0].elbo, fits[1].elbo, rtol=1e-10)


def test_fit_result_schema_and_reproducibility():
    points, spec = _problem(8, 200, 2, 3, True, True)
    a = cavi.fit(points, spec, random_seed=3, n_init=3, n_draws=50, progressbar=False)
    b = cavi.fit(points, spec, random_seed=3, n_init=3, n_draws=50, progressbar=False)
    post = a.idata["posterior"]
    assert post["means"].shape == (1, 50, 3, 2)
    assert post["weights"].shape == (1, 50, 3)
    assert post["obs_sd"].shape == (1, 50, 3, 2)
    np.testing.assert_array_equal(a.draws("means"), b.draws("means"))
    # the kept restart is the best one, and the trace ends at its ELBO (exact: se 0)
    assert a.elbo_estimate.value == a.elbo[-1] == max(r.objective for r in a.restarts)
    assert a.elbo_estimate.se == 0.0
    assert [r.kept for r in a.restarts].count(True) == 1 and len(a.restarts) == 3
    kept = next(r for r in a.restarts if r.kept)
    assert kept.objective == a.elbo_estimate.value and kept.n_iter == a.n_iter
    assert set(a.details.variational_params) == {
        "mean_loc",
        "mean_var",
        "weight_conc",
        "prec_shape",
        "prec_rate",
    }
    # the 50 draws from q have q's weight means: the Dirichlet's sd per weight is
    # sqrt(p (1 - p) / (sum conc + 1)), so 4 Monte Carlo standard errors are 4 sd / sqrt(50)
    conc = a.details.variational_params["weight_conc"]
    p = conc / conc.sum()
    mcse = np.sqrt(p * (1 - p) / (conc.sum() + 1) / 50)
    assert np.all(np.abs(a.posterior_mean("weights") - p) <= 4 * mcse)


def test_ordered_spec_sorts_components():
    points, _ = datasets.three_clusters_1d(random_seed=2)
    spec = MixtureSpec(n_components=3, mean_prior_sd=10.0, ordered=True)
    fitted = cavi.fit(points[:, None], spec, random_seed=0, progressbar=False)
    assert np.all(np.diff(fitted.details.variational_params["mean_loc"][:, 0]) > 0)


def test_convergence_warning_says_what_to_try():
    points, spec = _problem(1, 100, 1, 2, True, False)
    with pytest.warns(
        ConvergenceWarning,
        match=r"cavi: the ELBO did not converge in "
        r"max_iter=2 sweeps.*Increase max_iter",
    ):
        fitted = cavi.fit(points, spec, max_iter=2, random_seed=0, progressbar=False)
    assert not fitted.converged


def test_degenerate_data_give_no_nan():
    # far-out points, duplicates, and more components than clusters (some empty)
    points = np.concatenate([np.full((30, 2), 3.0), [[1e6, -1e6]], np.zeros((30, 2))])
    for obs_sd in (1.0, "learned"):
        spec = MixtureSpec(n_components=5, mean_prior_sd=2.0, obs_sd=obs_sd)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            fitted = cavi.fit(
                points, spec, random_seed=0, max_iter=50, n_draws=20, progressbar=False
            )
        assert np.all(np.isfinite(fitted.elbo))
        for value in fitted.details.variational_params.values():
            assert np.all(np.isfinite(value))


def test_bad_options_are_named():
    points, spec = _problem(1, 20, 1, 2, True, False)
    with pytest.raises(
        ValueError, match="backend: expected one of 'numba', 'numba_parallel', 'numpy', got 'gpu'"
    ):
        cavi.fit(points, spec, backend="gpu", progressbar=False)
    with pytest.raises(ValueError, match="init: expected one of 'random_points', 'kmeans\\+\\+'"):
        cavi.fit(points, spec, init="kmeans", progressbar=False)
    with pytest.raises(TypeError, match=r"unknown option.*'batch_size'"):
        ppl_mixtures.fit(points, spec, engine="cavi", batch_size=10)


def test_progress_bar_does_not_change_the_numbers():
    points, spec = _problem(2, 100, 2, 2, True, False)
    quiet = cavi.fit(points, spec, random_seed=0, n_draws=10, progressbar=False)
    shown = cavi.fit(points, spec, random_seed=0, n_draws=10, progressbar=True)
    np.testing.assert_array_equal(quiet.elbo, shown.elbo)


# --------------------------------------------------------------- restarts and option checks
def test_five_restarts_by_default_best_elbo_kept_and_reproducible():
    points, _ = datasets.three_clusters_2d(random_seed=3)
    spec = MixtureSpec(n_components=3, obs_sd="learned")
    a = cavi.fit(points, spec, random_seed=11, n_draws=20, progressbar=False)
    b = cavi.fit(points, spec, random_seed=np.int64(11), n_draws=20, progressbar=False)
    restarts = a.restarts
    assert len(restarts) == 5 and a.options["n_init"] == 5
    assert [r.random_seed for r in restarts] == driver.restart_seeds(11, 6)[:5]
    assert all(r.objective_name == "elbo" for r in restarts)
    assert a.elbo_estimate.value == max(r.objective for r in restarts)
    np.testing.assert_array_equal(a.draws("means"), b.draws("means"))
    single = cavi.fit(points, spec, random_seed=11, n_init=1, n_draws=20, progressbar=False)
    assert single.elbo_estimate.value == restarts[0].objective <= a.elbo_estimate.value


@pytest.mark.parametrize(
    "option, value, err, match",
    [
        ("random_seed", -1, ValueError, r"^random_seed: expected an integer >= 0, got -1"),
        ("random_seed", 0.3, TypeError, r"^random_seed: expected an integer, got 0\.3"),
        ("random_seed", False, TypeError, r"^random_seed: expected an integer, got False"),
        ("progressbar", "yes", TypeError, r"^progressbar: expected True or False, got 'yes'"),
        ("progressbar", 1, TypeError, r"^progressbar: expected True or False, got 1"),
        ("n_draws", 10**12, ValueError, r"^n_draws: expected at most \d+ draws here"),
    ],
)
def test_options_are_validated_naming_the_argument(option, value, err, match):
    points = np.random.default_rng(0).normal(size=(10, 2))
    with pytest.raises(err, match=match):
        cavi.fit(points, MixtureSpec(n_components=2), **{"progressbar": False, option: value})
    if option == "random_seed":
        with pytest.raises(err, match=match):
            cavi.init(points, MixtureSpec(n_components=2), random_seed=value)


def test_numpy_scalar_options_are_numbers():
    points = np.random.default_rng(0).normal(size=(10, 2))
    spec = MixtureSpec(n_components=2)
    a = cavi.fit(
        points,
        spec,
        random_seed=np.int64(2),
        max_iter=np.int32(50),
        tol=np.float64(1e-6),
        n_init=np.int64(2),
        n_draws=np.int64(5),
        progressbar=np.bool_(False),
    )
    b = cavi.fit(
        points, spec, random_seed=2, max_iter=50, tol=1e-6, n_init=2, n_draws=5, progressbar=False
    )
    np.testing.assert_array_equal(a.draws("means"), b.draws("means"))
