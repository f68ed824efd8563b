"""SVI: reaches CAVI's answer on large data; its ELBO estimate is unbiased, in full-data nats."""

import numpy as np
import pytest

from ppl_mixtures import ConvergenceWarning, MixtureSpec
from ppl_mixtures.analysis.relabel import align_permutations
from ppl_mixtures.inference.conjugate import cavi, driver, svi
from ppl_mixtures.inference.conjugate import meanfield as mf
from ppl_mixtures.inference.conjugate import stats as cs


def _points(n_samples, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.choice(3, size=n_samples, p=[0.5, 0.3, 0.2])
    centers = np.array([[0.0, 0.0], [3.0, 2.0], [-2.0, 4.0]])
    scales = np.array([[1.0, 0.5], [0.7, 1.0], [1.0, 1.0]])
    return centers[labels] + scales[labels] * rng.normal(size=(n_samples, 2))


@pytest.fixture(scope="module")
def large_points():
    return _points(100_000)


@pytest.mark.parametrize("obs_sd", [1.0, "learned"])
def test_reaches_cavi_on_100k_points(large_points, obs_sd):
    spec = MixtureSpec(n_components=3, mean_prior_sd=5.0, obs_sd=obs_sd)
    exact = cavi.fit(large_points, spec, random_seed=0, progressbar=False)
    approx = svi.fit(
        large_points, spec, random_seed=0, n_iter=600, batch_size=1000, progressbar=False
    )
    reference = exact.details.variational_params["mean_loc"]
    ours = approx.details.variational_params["mean_loc"]
    perm = align_permutations(ours[None, None], reference)[0, 0]
    # within CAVI's q: q(mu)'s sd is 1/sqrt(E[tau] N_k) <= 0.007 (N_k >= 20,000 points,
    # sd <= 1), so atol 0.02 is ~3 of them; the weights' q sd sqrt(p (1 - p) / N) <= 0.0016
    # makes atol 0.01 ~6 of them
    np.testing.assert_allclose(ours[perm], reference, atol=0.02)
    conc_ours = approx.details.variational_params["weight_conc"][perm]
    conc_ref = exact.details.variational_params["weight_conc"]
    np.testing.assert_allclose(conc_ours / conc_ours.sum(), conc_ref / conc_ref.sum(), atol=0.01)
    # the exact ELBO of SVI's q is a little below CAVI's optimum (both exact, full data)
    assert approx.elbo_estimate.value <= exact.elbo_estimate.value + 1e-6
    assert approx.elbo_estimate.value >= exact.elbo_estimate.value - 1e-4 * abs(exact.final_elbo)


def test_elbo_estimate_is_unbiased_in_full_data_nats():
    points = _points(2000, seed=1)
    spec = MixtureSpec(n_components=3, mean_prior_sd=5.0, obs_sd="learned")
    state = svi.init(points, spec, random_seed=0)
    exact = svi.exact_elbo(points, spec, state.params)
    # many steps from the same globals: each estimate is of the ELBO before its step
    estimates = np.array(
        [
            svi.step(points, spec, state._replace(n_iter=t), batch_size=50)[1].elbo_estimate
            for t in range(400)
        ]
    )
    se = estimates.std() / np.sqrt(estimates.size)
    assert abs(estimates.mean() - exact) < 4 * se
    assert se < 0.01 * abs(exact)


def test_step_size_one_jumps_to_the_batch_cavi_update():
    points = _points(500, seed=2)
    spec = MixtureSpec(n_components=3, mean_prior_sd=5.0, obs_sd="learned")
    state = svi.init(points, spec, random_seed=1)
    # tau = 0, t = 1, kappa = 1: rho_1 = 1, so the new q is lambda-hat itself
    new, info = svi.step(points, spec, state, batch_size=100, tau=0.0, kappa=1.0)
    assert info.step_size == 1.0
    rng = np.random.default_rng((state.batch_seed, 1))
    batch = points[np.sort(rng.integers(0, 500, size=100))]
    expect = mf.expectations(state.params, spec)
    stats = cs.numpy_pass(
        batch, mf.log_rho_constants(state.params, expect), state.params.mean_loc, expect.prec
    )
    target = mf.update_globals(cs.scaled(stats, 5.0), spec, expect.prec)
    # step used the numba pass, this the numpy one: they agree to ~1e-13 relative (the
    # round-off bound of test_conjugate_core for 100 points), which the O(KD) update keeps
    for a, b in zip(new.params, target, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10)


def test_fit_schema_reproducibility_and_options():
    points = _points(3000, seed=3)
    spec = MixtureSpec(n_components=3, mean_prior_sd=5.0, obs_sd="learned")
    a = svi.fit(
        points,
        spec,
        random_seed=4,
        n_iter=50,
        batch_size=100,
        n_draws=30,
        n_init=2,
        progressbar=False,
    )
    b = svi.fit(
        points,
        spec,
        random_seed=4,
        n_iter=50,
        batch_size=100,
        n_draws=30,
        n_init=2,
        progressbar=False,
    )
    np.testing.assert_array_equal(a.elbo, b.elbo)
    assert a.idata["posterior"]["obs_sd"].shape == (1, 30, 3, 2)
    assert a.elbo.shape == (50,)
    assert a.converged is None
    assert a.elbo_estimate.value == max(r.objective for r in a.restarts)
    np.testing.assert_allclose(a.details.step_sizes, (np.arange(1, 51) + 1.0) ** -0.7)
    with pytest.warns(ConvergenceWarning, match=r"svi: .*did not settle within n_iter=5"):
        svi.fit(points, spec, n_iter=5, batch_size=3000, tol=1e-12, progressbar=False)
    with pytest.raises(
        ValueError, match=r"kappa: expected a forgetting rate in \(0.5, 1\], got 0.4"
    ):
        svi.fit(points, spec, kappa=0.4, progressbar=False)
    for bad_tau in (-1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="tau: expected a finite number >= 0"):
            svi.fit(points, spec, tau=bad_tau, progressbar=False)


# --------------------------------------------------------------- restarts and option checks
def test_five_restarts_by_default_best_exact_elbo_kept():
    points = _points(400, seed=3)
    spec = MixtureSpec(n_components=2)
    a = svi.fit(
        points, spec, random_seed=8, n_iter=40, batch_size=50, n_draws=10, progressbar=False
    )
    restarts = a.restarts
    assert len(restarts) == 5 and a.options["n_init"] == 5
    assert [r.random_seed for r in restarts] == driver.restart_seeds(8, 6)[:5]
    assert a.elbo_estimate.value == max(r.objective for r in restarts)
    assert next(r for r in restarts if r.kept).objective == a.elbo_estimate.value
    b = svi.fit(
        points,
        spec,
        random_seed=np.uint16(8),
        n_iter=40,
        batch_size=50,
        n_draws=10,
        progressbar=False,
    )
    np.testing.assert_array_equal(a.draws("means"), b.draws("means"))


@pytest.mark.parametrize(
    "option, value, err, match",
    [
        ("random_seed", -3, ValueError, r"^random_seed: expected an integer >= 0, got -3"),
        ("random_seed", 1.5, TypeError, r"^random_seed: expected an integer, got 1\.5"),
        ("progressbar", "no", TypeError, r"^progressbar: expected True or False, got 'no'"),
        ("n_draws", 10**12, ValueError, r"^n_draws: expected at most \d+ draws here"),
    ],
)
def test_options_are_validated_naming_the_argument(option, value, err, match):
    with pytest.raises(err, match=match):
        svi.fit(_points(20), MixtureSpec(n_components=2), **{"progressbar": False, option: value})


def test_numpy_scalar_tau_and_kappa():
    points = _points(50)
    spec = MixtureSpec(n_components=2)
    a = svi.fit(
        points,
        spec,
        random_seed=1,
        n_iter=20,
        batch_size=10,
        n_init=1,
        n_draws=5,
        tau=np.int64(2),
        kappa=np.float64(0.8),
        progressbar=False,
    )
    b = svi.fit(
        points,
        spec,
        random_seed=1,
        n_iter=20,
        batch_size=10,
        n_init=1,
        n_draws=5,
        tau=2.0,
        kappa=0.8,
        progressbar=False,
    )
    np.testing.assert_array_equal(a.draws("means"), b.draws("means"))
