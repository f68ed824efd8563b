"""The full-covariance E-step pass: numba against the numpy reference, scipy, invariants."""

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from ppl_mixtures.inference.conjugate.stats_full import (
    full_pass,
    full_stats,
    hard_assignment_full_stats,
    log_rho_full,
)
from ppl_mixtures.kernels.estep import PARALLEL_MIN_SAMPLES, feature_major

EPS = np.finfo(np.float64).eps
FIELDS = ("counts", "means", "scatter", "entropy", "sum_log_norm")


def _problem(seed, n_samples, n_features, n_components, offset=0.0):
    """Clustered points, centers near them, SPD precisions with condition number <= ~10."""
    rng = np.random.default_rng(seed)
    centers = offset + rng.normal(0.0, 2.0, size=(n_components, n_features))
    labels = rng.integers(n_components, size=n_samples)
    points = centers[labels] + rng.normal(size=(n_samples, n_features))
    factor = rng.normal(size=(n_components, n_features, n_features)) / np.sqrt(n_features)
    precisions = factor @ np.swapaxes(factor, 1, 2) + np.eye(n_features)
    log_const = rng.normal(size=n_components)
    return points, log_const, centers + rng.normal(0.0, 0.3, size=centers.shape), precisions


def _assert_close_to_reference(points, log_const, centers, precisions, got):
    """Compare ``got`` with the numpy pass using bounds derived from the round-off.

    Derivation. Each log rho_nk is a sum of O(D^2) terms of size at most L = max |log rho|
    (the form is a sum of squares, so its terms are bounded by it; the precisions are
    well conditioned), evaluated in a different order: |error| <= c1 D^2 eps L. The
    exp2/log polynomials add <= 2 ulp each. So every responsibility is off by a relative
    delta <= eps_r = 8 D^2 eps (L + 1) (c1 = 8 covers the 2 ulp terms and the softmax).
    Summing N such terms in two orders adds <= N eps relative (worst case). Hence, with
    tol = (eps_r + N eps):
      N_k:       |d| <= tol * N
      x̄_k:       |d| <= 2 tol * N * R / N_k        R = max |x - c| (numerator and divisor)
      S_k:       |d| <= 4 tol * N * R^2 / N_k
      entropy:   |d| <= tol * N * (L + 1) (each -r log r term carries log rho)
      log norm:  |d| <= tol * N * (L + 1)
    x̄ and S are compared where N_k >= 1 (below, they are ill-determined ratios of tiny sums
    in both passes).
    """
    want = full_pass(points, log_const, centers, precisions, backend="numpy")
    n_samples, n_features = points.shape
    big_l = np.abs(log_rho_full(points, log_const, centers, precisions)).max()
    tol = 8 * n_features**2 * EPS * (big_l + 1.0) + n_samples * EPS
    reach = np.abs(points[:, None, :] - centers[None]).max() + 1.0
    np.testing.assert_allclose(got.counts, want.counts, rtol=0, atol=tol * n_samples)
    full = want.counts >= 1.0
    per = (tol * n_samples / np.maximum(want.counts, 1.0))[full]
    assert np.all(np.abs(got.means - want.means)[full].max(axis=1) <= 2 * per * reach)
    assert np.all(np.abs(got.scatter - want.scatter)[full].max(axis=(1, 2)) <= 4 * per * reach**2)
    assert abs(got.entropy - want.entropy) <= tol * n_samples * (big_l + 1.0)
    assert abs(got.sum_log_norm - want.sum_log_norm) <= tol * n_samples * (big_l + 1.0)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_samples=st.integers(1, 700),
    n_features=st.integers(1, 5),
    n_components=st.integers(1, 4),
    offset=st.sampled_from([0.0, 1e4]),
    fortran=st.booleans(),
)
def test_numba_pass_matches_the_numpy_reference(
    seed, n_samples, n_features, n_components, offset, fortran
):
    points, log_const, centers, precisions = _problem(
        seed, n_samples, n_features, n_components, offset
    )
    data = feature_major(points) if fortran else points
    got = full_pass(data, log_const, centers, precisions, backend="numba")
    _assert_close_to_reference(points, log_const, centers, precisions, got)


def test_log_norm_is_the_scipy_mixture_log_likelihood():
    points, _, means, precisions = _problem(3, 400, 3, 3)
    weights = np.array([0.2, 0.5, 0.3])
    covariances = np.linalg.inv(precisions)
    log_const = np.log(weights) - 0.5 * np.linalg.slogdet(2 * np.pi * covariances)[1]
    log_dens = np.stack(
        [multivariate_normal(m, c).logpdf(points) for m, c in zip(means, covariances, strict=True)],
        axis=1,
    )
    expected = logsumexp(np.log(weights) + log_dens, axis=1).sum()
    resp = np.exp(
        np.log(weights) + log_dens - logsumexp(np.log(weights) + log_dens, axis=1)[:, None]
    )
    for backend in ("numpy", "numba"):
        stats = full_pass(points, log_const, means, precisions, backend=backend)
        # 400 terms of size <= ~30 summed in different orders: <= 400 * 30 * 8 eps ~ 2e-11
        assert stats.sum_log_norm == pytest.approx(expected, rel=0, abs=1e-10)
        # N_k: 400 responsibilities, each within ~1e-14 relative of scipy's
        np.testing.assert_allclose(stats.counts, resp.sum(axis=0), rtol=1e-12)
        entropy = -np.sum(resp * np.log(resp))
        assert stats.entropy == pytest.approx(entropy, rel=1e-12)


def test_statistics_are_bishop_10_51_to_10_53_and_scatter_is_psd():
    points, log_const, centers, precisions = _problem(5, 300, 4, 3)
    stats = full_pass(points, log_const, centers, precisions, backend="numba")
    resp = np.exp(
        log_rho_full(points, log_const, centers, precisions)
        - logsumexp(log_rho_full(points, log_const, centers, precisions), axis=1)[:, None]
    )
    assert stats.counts.sum() == pytest.approx(points.shape[0], rel=1e-13)
    for k in range(3):
        xbar = resp[:, k] @ points / resp[:, k].sum()
        dev = points - xbar
        scatter = (resp[:, k, None] * dev).T @ dev / resp[:, k].sum()
        np.testing.assert_allclose(stats.means[k], xbar, atol=1e-12)
        np.testing.assert_allclose(stats.scatter[k], scatter, atol=1e-12)
        np.testing.assert_array_equal(stats.scatter[k], stats.scatter[k].T)
        assert np.linalg.eigvalsh(stats.scatter[k]).min() > 0.0


def test_permuting_components_permutes_the_statistics():
    points, log_const, centers, precisions = _problem(6, 500, 3, 4)
    order = np.array([2, 0, 3, 1])
    base = full_pass(points, log_const, centers, precisions)
    perm = full_pass(points, log_const[order], centers[order], precisions[order])
    # the per-point sums over k run in another order: r changes by a few ulp
    np.testing.assert_allclose(perm.counts, base.counts[order], rtol=1e-12)
    np.testing.assert_allclose(perm.scatter, base.scatter[order], rtol=1e-11, atol=1e-14)
    assert perm.sum_log_norm == pytest.approx(base.sum_log_norm, rel=1e-13)


def test_threads_and_layouts_give_identical_numbers():
    points, log_const, centers, precisions = _problem(7, PARALLEL_MIN_SAMPLES + 1234, 3, 3)
    fortran = feature_major(points)
    one = full_pass(fortran, log_const, centers, precisions, backend="numba")
    runs = [full_pass(points, log_const, centers, precisions, backend="numba")]
    threads = numba.get_num_threads()
    try:
        for n in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(n)
            runs.append(
                full_pass(fortran, log_const, centers, precisions, backend="numba_parallel")
            )
    finally:
        numba.set_num_threads(threads)
    for run in runs:  # chunks reduced in one fixed order: bit for bit
        for name in FIELDS:
            np.testing.assert_array_equal(getattr(run, name), getattr(one, name))


def test_far_out_data_keep_their_digits():
    # x ~ 1e8 + N(0, 1): sums about zero would lose all digits of S (1e16 * eps ~ 2)
    rng = np.random.default_rng(8)
    points = 1e8 + rng.normal(size=(2000, 2)) @ np.array([[1.0, 0.6], [0.0, 0.8]])
    centers = np.full((1, 2), 1e8)
    stats = full_pass(points, np.zeros(1), centers, np.eye(2)[None], backend="numba")
    dev = points - points.mean(axis=0)
    # relative to S ~ 1: the reference's own two-pass error is ~ N eps |x| / |x| ~ 1e-12
    np.testing.assert_allclose(stats.scatter[0], dev.T @ dev / 2000, atol=1e-9)


def test_far_from_every_center_stays_finite():
    points, log_const, centers, precisions = _problem(9, 50, 2, 2)
    points = points + 1e5  # log rho ~ -1e10: exp underflows for all but the best k
    stats = full_pass(points, log_const, centers, precisions, backend="numba")
    assert np.all(np.isfinite(stats.counts)) and np.isfinite(stats.sum_log_norm)
    assert stats.counts.sum() == pytest.approx(50, rel=1e-13)


def test_hard_assignment_stats_are_the_cluster_moments():
    points, _, centers, _ = _problem(10, 200, 3, 2)
    stats = hard_assignment_full_stats(points, centers)
    labels = ((points[:, None] - centers[None]) ** 2).sum(axis=2).argmin(axis=1)
    for k in range(2):
        group = points[labels == k]
        assert stats.counts[k] == len(group)
        np.testing.assert_allclose(stats.scatter[k], np.cov(group.T, bias=True), atol=1e-13)
    assert stats.entropy == 0.0


def test_empty_component_gets_zero_scatter():
    points = np.random.default_rng(11).normal(size=(40, 2))
    resp = np.zeros((40, 2))
    resp[:, 0] = 1.0
    stats = full_stats(points, resp)
    assert stats.counts[1] == 0.0
    np.testing.assert_array_equal(stats.scatter[1], np.zeros((2, 2)))


def test_bad_precisions_and_backend_are_refused():
    points, log_const, centers, precisions = _problem(12, 20, 2, 2)
    bad = precisions.copy()
    bad[1] = -np.eye(2)
    for backend in ("numpy", "numba"):
        with pytest.raises(ValueError, match="precisions: expected symmetric positive definite"):
            full_pass(points, log_const, centers, bad, backend=backend)
    with pytest.raises(ValueError, match="backend: expected one of"):
        full_pass(points, log_const, centers, precisions, backend="cuda")
