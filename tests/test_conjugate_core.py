"""The conjugate core: the numba pass meets the numpy statistics; updates, ELBO terms and EM's
prior against independent closed forms; the restart driver.

Every tolerance below is a round-off bound derived in a comment (float64, eps = 2^-52), or
an exact identity. (A little over 400 lines: the derivations take the space.)
"""

import dataclasses
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import digamma, gammaln
from scipy.stats import dirichlet, gamma, norm

from ppl_mixtures import ConvergenceWarning, MixtureSpec
from ppl_mixtures.inference.conjugate import cavi, driver, em, svi
from ppl_mixtures.inference.conjugate import meanfield as mf
from ppl_mixtures.inference.conjugate import stats as cs
from ppl_mixtures.inference.conjugate.elbo import elbo, elbo_terms
from ppl_mixtures.kernels.estep import PARALLEL_MIN_SAMPLES, pass_numba
from ppl_mixtures.validation import NumericalError

EPS = np.finfo(np.float64).eps
#: numba's exp2 flushes 2^t to 0 below t = -1021, so a responsibility it drops is < 2^-1021
FLUSH = 2.0**-1021


# ----------------------------------------------------------------- the pass: numba vs numpy
def _pass_inputs(seed, n_samples, n_features, n_components, offset, const_spread, far):
    rng = np.random.default_rng(seed)
    points = offset + 3.0 * rng.normal(size=(n_samples, n_features))
    if far and n_samples > 2:
        points[0] = offset + 1e6  # a far-out point
        points[1:3] = points[-1]  # duplicates
    centers = offset + rng.normal(size=(n_components, n_features))
    log_const = const_spread * rng.normal(size=n_components)
    precisions = rng.uniform(0.1, 3.0, size=(n_components, n_features))
    return points, log_const, centers, precisions


def _round_off_bounds(points, log_const, centers, precisions):
    """Bounds on |numba - numpy| for each statistic, from the numpy reference's quantities.

    Derivation. log rho_ik = log_const_k - 1/2 sum_d prec_kd (x_id - c_kd)^2 is a sum of
    D + 1 terms whose magnitudes add up to L_ik; each implementation forms it with <= D + 4
    roundings (numba also scales by log2 e), so its absolute error is <= (D + 4) eps L_i,
    with L_i = max_k L_ik. A shift of the log rho's changes r_ik by at most
    r_ik (1 - r_ik) 2 max_k |error| (the softmax derivative), and exp2, the normalizer's K
    terms and the division add <= (K + 4) eps relative; numba also drops r < 2^-1021:

        |dr_ik| <= r_ik [4 (1 - r_ik) (D + 4) eps L_i + (K + 4) eps] + 2^-1021

    A statistic sum_i r_ik f_i then differs by sum_i |dr_ik| |f_i| plus the summation
    round-off (N + 4) eps sum_i r_ik |f_i| (Higham 2002, eq. 4.4), for each of the two
    implementations: the bound is twice the sum.
    """
    n_samples, n_features = points.shape
    n_components = centers.shape[0]
    sq = (points[:, None, :] - centers[None]) ** 2  # (N, K, D)
    log_rho = log_const - 0.5 * np.einsum("nkd,kd->nk", sq, precisions)
    magnitude = (np.abs(log_const) + 0.5 * np.einsum("nkd,kd->nk", sq, precisions)).max(axis=1)
    resp, log_resp, log_norm = cs.responsibilities(log_rho)
    d_resp = (
        resp
        * (4 * (1 - resp) * (n_features + 4) * EPS * magnitude[:, None] + (n_components + 4) * EPS)
        + FLUSH
    )
    summation = (n_samples + 4) * EPS

    def bound(f_abs):  # f_abs: |f_i| per point and component, (N, K) or (N, K, D)
        extra = (slice(None), slice(None)) + (None,) * (f_abs.ndim - 2)
        return 2 * ((d_resp[extra] + summation * resp[extra]) * f_abs).sum(axis=0)

    ref = cs.numpy_pass(points, log_const, centers, precisions)
    abs_x = np.abs(points)[:, None, :] + np.abs(centers)[None] + np.abs(ref.means)[None]
    scatter_terms = sq + (points[:, None, :] - ref.means[None]) ** 2
    safe_log_r = np.where(resp > 0, -log_resp, 0.0)
    # entropy: d(r log r) = (log r + 1) dr; numba sums N K terms r (log rho - max) and N
    # logs of normalizers in [1, K], so its summation round-off is over N K terms
    gap = np.abs(log_rho - log_rho.max(axis=1, keepdims=True))
    entropy = 2 * float(
        (
            d_resp * (safe_log_r + 1.0)
            + (n_samples * n_components + 4) * EPS * resp * (safe_log_r + gap + 1.0)
        ).sum()
    )
    return {
        "counts": bound(np.ones((n_samples, n_components))),
        "first_moment": bound(abs_x),  # N_k x̄_k
        # numba forms N S = sum r (x - c)^2 - N (x̄ - c)^2: the shift's error enters twice
        "second_moment": bound(scatter_terms) + 2 * np.abs(ref.means - centers) * bound(abs_x),
        "entropy": entropy,
        # log_norm_i = max_k log rho_ik + log(normalizer): the max's error, K terms, the sum
        "sum_log_norm": 2
        * float(
            (
                (n_features + 4) * EPS * magnitude
                + (n_components + 4) * EPS
                + summation * np.abs(log_norm)
            ).sum()
        ),
    }


@settings(max_examples=60)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_samples=st.integers(1, 700),
    n_features=st.integers(1, 4),
    n_components=st.integers(1, 5),
    offset=st.sampled_from([0.0, 1e3, -1e6]),
    const_spread=st.sampled_from([0.0, 5.0, 800.0]),
    far=st.booleans(),
    fortran=st.booleans(),
)
def test_numba_pass_meets_the_numpy_statistics(
    seed, n_samples, n_features, n_components, offset, const_spread, far, fortran
):
    # 700 points cross the 256-point blocks and the 16-lane products; const_spread = 800
    # makes responsibilities underflow; offset 1e6 tests the sums about the center.
    points, log_const, centers, precisions = _pass_inputs(
        seed, n_samples, n_features, n_components, offset, const_spread, far
    )
    data = np.asfortranarray(points) if fortran else points
    fast = pass_numba(data, log_const, centers, precisions)
    ref = cs.numpy_pass(points, log_const, centers, precisions)
    tol = _round_off_bounds(points, log_const, centers, precisions)
    assert np.all(np.abs(fast.counts - ref.counts) <= tol["counts"])
    n = ref.counts[:, None]
    assert np.all(np.abs(fast.counts[:, None] * fast.means - n * ref.means) <= tol["first_moment"])
    assert np.all(
        np.abs(fast.counts[:, None] * fast.scatter - n * ref.scatter) <= tol["second_moment"]
    )
    assert abs(fast.entropy - ref.entropy) <= tol["entropy"]
    assert abs(fast.sum_log_norm - ref.sum_log_norm) <= tol["sum_log_norm"]
    assert np.all(fast.scatter >= 0) and fast.entropy >= 0


@given(
    seed=st.integers(0, 2**32 - 1),
    n_samples=st.integers(1, 300),
    n_features=st.integers(1, 3),
    n_components=st.integers(1, 4),
)
def test_statistics_pool_back_to_the_data(seed, n_samples, n_features, n_components):
    # For any responsibilities whose rows sum to 1: sum_k N_k = N, sum_k N_k x̄_k = sum_i x_i,
    # and the pooled scatter sum_k N_k (S_k + (x̄_k - x̄)^2) = sum_i (x_i - x̄)^2 (law of total
    # variance). Round-off: sums of N K terms of size <= max|x| (or its square), so
    # (N K + 8) eps times the sum of magnitudes.
    points, log_const, centers, precisions = _pass_inputs(
        seed, n_samples, n_features, n_components, 0.0, 5.0, False
    )
    grand_mean = points.mean(axis=0)
    for result in (
        cs.numpy_pass(points, log_const, centers, precisions),
        pass_numba(points, log_const, centers, precisions),
    ):
        slack = (n_samples * n_components + 8) * EPS
        assert abs(result.counts.sum() - n_samples) <= slack * n_samples
        magnitudes = np.abs(points).sum(axis=0) + n_samples * np.abs(centers).max(axis=0)
        assert np.all(
            np.abs(result.counts @ result.means - points.sum(axis=0)) <= 2 * slack * magnitudes
        )
        pooled = result.counts @ (result.scatter + (result.means - grand_mean) ** 2)
        total = ((points - grand_mean) ** 2).sum(axis=0)
        # numba forms S by subtraction about its center: add eps times its sums about c
        about_center = ((points[:, None, :] - centers) ** 2).sum(axis=(0, 1))
        assert np.all(np.abs(pooled - total) <= 4 * slack * (total + about_center) + 1e-300)


@pytest.mark.parametrize("order", ["C", "F"])
def test_parallel_and_serial_passes_are_identical(order):
    # chunks are reduced in one fixed order whatever the thread count: bit for bit
    rng = np.random.default_rng(0)
    points = np.asarray(rng.normal(size=(PARALLEL_MIN_SAMPLES + 1000, 2)), order=order)
    args = (points, np.zeros(3), rng.normal(size=(3, 2)), np.ones((3, 2)))
    serial = cs.one_pass("numba", *args)
    parallel = cs.one_pass("numba_parallel", *args)
    for name in ("counts", "means", "scatter", "entropy", "sum_log_norm"):
        np.testing.assert_array_equal(getattr(serial, name), getattr(parallel, name), name)


def test_weighted_sq_dev_scaled_and_hard_assignments_against_brute_force():
    rng = np.random.default_rng(3)
    points = rng.normal(size=(50, 2)) + 4.0
    resp = rng.dirichlet(np.ones(3), size=50)
    stats = cs.sufficient_stats(points, resp)
    loc = rng.normal(size=(3, 2))
    brute = np.einsum("nk,nkd->kd", resp, (points[:, None, :] - loc) ** 2)
    # sums of 50 non-negative terms, a few roundings each: each side within (50 + 8) eps
    # of the exact value, relative (Higham 2002, eq. 4.4)
    np.testing.assert_allclose(cs.weighted_sq_dev(stats, loc), brute, rtol=2 * (50 + 8) * EPS)
    # three copies of the data = the statistics scaled by 3 (x̄ and S unchanged); the
    # copies' sums have 150 terms (the data sit near +4, so the sums do not cancel)
    tripled = cs.sufficient_stats(np.tile(points, (3, 1)), np.tile(resp, (3, 1)))
    scaled = cs.scaled(stats, 3.0)
    for name in ("counts", "means", "scatter"):
        np.testing.assert_allclose(
            getattr(scaled, name), getattr(tripled, name), rtol=2 * (150 + 8) * EPS
        )
    # k-means responsibilities: one-hot on the nearest center
    centers = points[[0, 10, 20]]
    nearest = ((points[:, None, :] - centers) ** 2).sum(-1).argmin(1)
    hard = cs.hard_assignment_stats(points, centers)
    one_hot = cs.sufficient_stats(points, np.eye(3)[nearest])
    for name in ("counts", "means", "scatter"):
        np.testing.assert_allclose(
            getattr(hard, name), getattr(one_hot, name), rtol=2 * (50 + 8) * EPS
        )


# ----------------------------------------------------------------- updates: closed forms
def test_updates_are_the_textbook_conjugate_posteriors_for_one_component():
    # K = 1, every r = 1: q(mu) is the posterior of a Normal mean with known precision
    # (Bishop 2006, eqs. 2.141-2.142) and q(tau) with a point q(mu) the posterior of a
    # precision with known mean (eqs. 2.150-2.151), computed here from the raw points.
    rng = np.random.default_rng(1)
    points = rng.normal(2.0, 0.5, size=(40, 2))
    spec = MixtureSpec(
        n_components=1,
        mean_prior_mean=(1.0, -1.0),
        mean_prior_sd=(0.3, 2.0),
        obs_sd="learned",
        precision_prior_shape=3.0,
        precision_prior_rate=1.5,
    )
    stats = cs.sufficient_stats(points, np.ones((40, 1)))
    tau = np.array([[4.0, 0.25]])
    loc, var = mf.update_means(stats, tau, spec)
    prior_prec = np.array([0.3, 2.0]) ** -2.0
    post_prec = prior_prec + 40 * tau[0]
    np.testing.assert_allclose(var[0], 1 / post_prec, rtol=4 * EPS)
    np.testing.assert_allclose(
        loc[0],
        (prior_prec * np.array([1.0, -1.0]) + tau[0] * points.sum(0)) / post_prec,
        rtol=100 * EPS,
    )
    mu = np.array([[1.9, 2.1]])
    shape, rate = mf.update_precisions(stats, mu, np.zeros_like(mu), spec)
    np.testing.assert_allclose(shape, 3.0 + 20.0, rtol=EPS)
    np.testing.assert_allclose(rate[0], 1.5 + 0.5 * ((points - mu) ** 2).sum(0), rtol=100 * EPS)
    # with a spread q(mu), E[(x - mu)^2] adds s2 per point: two rates below 10 differ by
    # 0.2, so the difference carries < 2 * 10 eps / 0.2 = 100 eps of relative round-off
    shape, rate_spread = mf.update_precisions(stats, mu, np.full_like(mu, 0.01), spec)
    np.testing.assert_allclose(rate_spread - rate, 0.5 * 40 * 0.01, rtol=100 * EPS)
    assert mf.update_weights(stats, MixtureSpec(n_components=1)) is None  # K = 1: fixed
    three = cs.sufficient_stats(points, rng.dirichlet(np.ones(3), size=40))
    spec3 = MixtureSpec(n_components=3, dirichlet_alpha=(0.5, 1.0, 2.0))
    np.testing.assert_allclose(
        mf.update_weights(three, spec3), np.array([0.5, 1.0, 2.0]) + three.counts, rtol=EPS
    )


def _kl_normal(m, s2, m0, s02):
    return 0.5 * (np.log(s02 / s2) + (s2 + (m - m0) ** 2) / s02 - 1.0)


def _kl_gamma(a, b, a0, b0):
    return (
        (a - a0) * digamma(a)
        - gammaln(a)
        + gammaln(a0)
        + a0 * (np.log(b) - np.log(b0))
        + a * (b0 - b) / b
    )


def _kl_dirichlet(c, c0):
    return (
        gammaln(c.sum())
        - gammaln(c0.sum())
        - gammaln(c).sum()
        + gammaln(c0).sum()
        + ((c - c0) * (digamma(c) - digamma(c.sum()))).sum()
    )


def test_elbo_terms_against_closed_form_kls_and_their_sum():
    # KL of Normal, Gamma and Dirichlet factors from the textbook closed forms (independent
    # of elbo.py's prior/entropy split). Each KL (here 2-10 nats) is what is left of terms up
    # to ~100 in size (log Gamma of the counts): about 20 roundings of 100 eps each, i.e.
    # <= 2e-13 relative; rtol 1e-12.
    rng = np.random.default_rng(5)
    points = rng.normal(size=(30, 2)) + np.array([[0.0, 3.0]])
    spec = MixtureSpec(
        n_components=3,
        mean_prior_mean=0.5,
        mean_prior_sd=2.0,
        dirichlet_alpha=0.7,
        obs_sd="learned",
    )
    params = mf.initial_params(points, spec, points[[0, 1, 2]])
    expect = mf.expectations(params, spec)
    stats = cs.numpy_pass(
        points, mf.log_rho_constants(params, expect), params.mean_loc, expect.prec
    )
    terms = elbo_terms(stats, params, spec)
    np.testing.assert_allclose(
        terms.kl_means, _kl_normal(params.mean_loc, params.mean_var, 0.5, 4.0).sum(), rtol=1e-12
    )
    np.testing.assert_allclose(
        terms.kl_precisions,
        _kl_gamma(params.prec_shape, params.prec_rate, 2.0, 2.0).sum(),
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        terms.kl_weights, _kl_dirichlet(params.weight_conc, np.full(3, 0.7)), rtol=1e-12
    )
    assert min(terms.kl_means, terms.kl_precisions, terms.kl_weights) > 0
    assert terms.entropy_z == stats.entropy > 0
    assert elbo(stats, params, spec) == terms.total
    # fixed weights and a known sd: no KL for them
    fixed = MixtureSpec(n_components=3, weights="fixed", obs_sd=1.0)
    fixed_params = mf.initial_params(points, fixed, points[[0, 1, 2]])
    fixed_terms = elbo_terms(stats, fixed_params, fixed)
    assert fixed_terms.kl_weights == 0.0 and fixed_terms.kl_precisions == 0.0
    # E[log p(z | w)] = sum_k N_k log(1/3) exactly
    np.testing.assert_allclose(fixed_terms.expected_log_p_z, -30 * np.log(3.0), rtol=1e-14)


# ----------------------------------------------------------------- EM: the point-mass case
def test_em_log_prior_is_the_scipy_log_density():
    rng = np.random.default_rng(2)
    spec = MixtureSpec(
        n_components=3,
        mean_prior_mean=(1.0, 0.0),
        mean_prior_sd=(2.0, 0.5),
        dirichlet_alpha=(1.5, 3.0, 2.0),
        obs_sd="learned",
        precision_prior_shape=2.5,
        precision_prior_rate=0.7,
    )
    state = em.EmState(
        rng.dirichlet(np.ones(3)),
        rng.normal(size=(3, 2)),
        rng.uniform(0.2, 2.0, size=(3, 2)),
        -np.inf,
        0,
    )
    expected = (
        norm.logpdf(state.means, [1.0, 0.0], [2.0, 0.5]).sum()
        + dirichlet.logpdf(state.weights, [1.5, 3.0, 2.0])
        + gamma.logpdf(1 / state.variances, 2.5, scale=1 / 0.7).sum()
    )
    # ~20 terms of size <= 5 summed in different orders: <= 2 * 20 * 5 eps (2e-14) absolute
    # on a total of about -25, so rtol 1e-13 holds with room
    np.testing.assert_allclose(em.log_prior(state, spec), expected, rtol=1e-13)


def test_em_m_step_is_bishop_on_the_statistics_and_keeps_an_empty_component():
    rng = np.random.default_rng(4)
    points = rng.normal(size=(60, 2))
    resp = np.zeros((60, 3))
    resp[:, :2] = rng.dirichlet(np.ones(2), size=60)  # component 2 gets nothing
    stats = cs.sufficient_stats(points, resp)
    spec = MixtureSpec(n_components=3, obs_sd="learned")
    previous = em.EmState(
        np.full(3, 1 / 3),
        np.array([[0.0, 0.0], [1.0, 1.0], [7.0, -7.0]]),
        np.ones((3, 2)),
        -np.inf,
        0,
    )
    weights, means, variances = em.m_step(stats, previous, spec, "none", 1e-6)
    # Bishop eqs. 9.24-9.26: the guard (10 eps phantom points) changes N_k >= 1 by a
    # relative 10 eps / N_k, so the comparison holds to 1e-13
    np.testing.assert_allclose(means[:2], stats.means[:2], rtol=1e-13)
    np.testing.assert_allclose(variances[:2], stats.scatter[:2] + 1e-6, rtol=1e-13)
    np.testing.assert_allclose(weights[:2], stats.counts[:2] / 60, rtol=1e-13)
    np.testing.assert_array_equal(means[2], [7.0, -7.0])  # the empty one stays put
    np.testing.assert_array_equal(variances[2], [1e-6, 1e-6])
    assert 0 < weights[2] < 1e-15


# ----------------------------------------------------------------- the restart driver
def _toy_runs(objectives, converged):
    def run_one(seed, report):
        report(objectives[seed])
        return driver.Run(
            seed,
            {"x": np.array([objectives[seed]])},
            np.array([objectives[seed]]),
            converged[seed],
            objectives[seed],
        )

    return run_one


def _fit(objectives, converged):
    return driver.fit_restarts(
        "toy",
        range(len(objectives)),
        _toy_runs(objectives, converged),
        total=1,
        progressbar=False,
        objective_name="elbo",
        arrays=lambda state: state,
        not_converged=lambda r: "toy: slow",
    )


def test_driver_keeps_the_best_finite_restart_first_among_ties():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kept, restarts = _fit([1.0, np.nan, 3.0, 3.0], [True] * 4)
    assert kept.seed == 2
    assert [r.kept for r in restarts] == [False, False, True, False]
    assert [r.random_seed for r in restarts] == [0, 1, 2, 3]
    assert all(r.objective_name == "elbo" and r.n_iter == 1 for r in restarts)


def test_driver_warns_for_an_unconverged_kept_run_and_refuses_nan():
    with pytest.warns(ConvergenceWarning, match="^toy: slow$"):
        _fit([1.0, 2.0], [True, False])
    with warnings.catch_warnings():  # a discarded restart may be unconverged
        warnings.simplefilter("error")
        _fit([1.0, 2.0], [False, True])
        _fit([1.0], [None])  # no test asked for: no warning
    with pytest.raises(NumericalError, match=r"engine 'toy' produced non-finite .* elbo"):
        _fit([np.nan], [True])


def test_restart_seeds_are_reproducible_and_distinct():
    assert driver.restart_seeds(7, 5) == driver.restart_seeds(np.int64(7), 5)
    assert len(set(driver.restart_seeds(7, 50))) == 50


# ----------------------------------------------------------------- options and reproduction
@pytest.mark.parametrize("engine", [cavi, svi, em], ids=["cavi", "svi", "em"])
def test_options_document_themselves_and_fit_options_reproduce_the_fit(engine):
    # the CLI's help comes from the Options fields: each needs a line of help
    for option in dataclasses.fields(engine.Options):
        assert option.metadata.get("help"), option.name
    assert engine.ENGINES[0].options is engine.Options
    points = np.random.default_rng(0).normal(size=(60, 2)) + np.array([[0.0], [4.0]]).repeat(
        30, axis=0
    )
    spec = MixtureSpec(n_components=2, obs_sd="learned")
    small = {
        "cavi": {"max_iter": 50, "n_draws": 20},
        "svi": {"n_iter": 30, "n_draws": 20},
        "em": {"max_iter": 50},
    }[engine.__name__.rsplit(".", 1)[1]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        first = engine.fit(points, spec, random_seed=3, n_init=2, progressbar=False, **small)
        again = engine.fit(points, spec, progressbar=False, **first.options)
    np.testing.assert_array_equal(first.draws("means"), again.draws("means"))
    assert [r.objective for r in first.restarts] == [r.objective for r in again.restarts]
