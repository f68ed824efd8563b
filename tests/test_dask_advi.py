"""Minibatch ADVI streaming from chunked (dask) data (#17).

The contract: ``fit(dask_array, spec, engine="advi", batch_size=B)`` never holds more than
one chunk of data (the buffer the minibatches are drawn from), draws chunks with
probability n_c / N (so every minibatch row is uniform over the N points: the objective
stays unbiased), reproduces itself from the seed, computes its full-data quantities (the
final ELBO, the convergence test's ELBO change) chunk by chunk to the in-memory value, and
converges to the in-memory posterior within the Monte Carlo error the two runs report.
Full-data ADVI on chunked data is refused with a message that says to set ``batch_size``.
"""

from __future__ import annotations

import warnings
from typing import Any

import dask.array as da  # the `dask` extra; the `dev` extra that `make test` installs has it
import numpy as np
import pytest
from bad_input import Bad, assert_teaches

from ppl_mixtures import MixtureSpec, fit
from ppl_mixtures.inference.pymc.advi_convergence import final_elbo
from ppl_mixtures.inference.pymc.advi_objective import get_objective
from ppl_mixtures.results import ConvergenceWarning
from ppl_mixtures.validation import check_points
from ppl_mixtures.validation.chunk_order import (
    CHUNK_ORDER_ALPHA,
    ChunkOrderWarning,
    chunk_order_test,
)
from ppl_mixtures.validation.chunked import in_memory_chunks

SPEC = MixtureSpec(n_components=2, mean_prior_sd=3.0, obs_sd=1.0)
N_SAMPLES = 2000
CHUNK = 500  # 4 chunks
BATCH = 100
N_ITER = 10_000  # the default here: max(10,000, 100 passes of N / B)


@pytest.fixture(scope="module")
def points() -> np.ndarray:
    """Two clusters at (-2, -2) and (2, 2), unit sd, in random order."""
    rng = np.random.default_rng(17)
    labels = rng.integers(0, 2, size=N_SAMPLES)
    return np.array([[-2.0, -2.0], [2.0, 2.0]])[labels] + rng.normal(size=(N_SAMPLES, 2))


def _advi(data: Any, **options: Any) -> Any:
    settings = {"batch_size": BATCH, "random_seed": 1, "progressbar": False, **options}
    return fit(data, SPEC, engine="advi", **settings)


@pytest.fixture(scope="module")
def fits(points: np.ndarray) -> dict[str, Any]:
    """In-memory and chunked ADVI, same seed, batch and iterations."""
    return {
        "memory": _advi(points, n_iter=N_ITER),
        "dask": _advi(da.from_array(points, chunks=(CHUNK, 2)), n_iter=N_ITER),
    }


def test_chunked_advi_converges_to_the_in_memory_posterior(fits: dict[str, Any]) -> None:
    """q's mean and sd agree within the Monte Carlo error of the two averaged runs.

    Each run's convergence test reports ``param_se``: the batch-means standard error of its
    Polyak average, in units of q's sd, the largest over q's means and sds. The two runs
    are independent (different minibatches), so the difference of one coordinate has an
    se of at most sqrt(se_memory^2 + se_dask^2) sds; 4 of those bound a normal difference
    with probability 1 - 6e-5 per coordinate (10 coordinates: < 1e-3 for the test).
    """
    memory, chunked = fits["memory"].details, fits["dask"].details
    assert fits["memory"].converged and fits["dask"].converged
    se = np.hypot(memory.convergence["param_se"], chunked.convergence["param_se"])
    sd = memory.unconstrained_sd
    mean_gap = np.abs(chunked.unconstrained_mean - memory.unconstrained_mean) / sd
    sd_gap = np.abs(chunked.unconstrained_sd - memory.unconstrained_sd) / sd
    assert mean_gap.max() <= 4 * se, (mean_gap, se)
    assert sd_gap.max() <= 4 * se, (sd_gap, se)
    # the clusters found: means near (-2, -2) and (2, 2) within 5 posterior sds (~0.03)
    found = fits["dask"].idata["posterior"]["means"].mean(("chain", "draw")).values
    assert np.allclose(found, [[-2.0, -2.0], [2.0, 2.0]], atol=0.2)


def test_chunked_advi_holds_one_chunk_and_reads_chunks_by_size(fits: dict[str, Any]) -> None:
    """The buffer holds the largest chunk (500 of 2000 rows); one chunk is read per block of
    100 iterations, in epochs of 4 reads that visit the 4 equal chunks once each (stratified
    by rows: chunk c with probability n_c / N = 1/4 per read), in random order."""
    details = fits["dask"].details
    assert details.buffer_rows == CHUNK < N_SAMPLES
    assert fits["memory"].details.buffer_rows is None
    loads = details.chunks_loaded
    assert loads.size == N_ITER // 100
    epochs = np.sort(loads.reshape(-1, 4), axis=1)
    assert np.array_equal(epochs, np.tile(np.arange(4), (loads.size // 4, 1)))
    assert len({tuple(e) for e in loads.reshape(-1, 4)}) > 1  # the order varies


def test_uneven_chunks_are_read_in_proportion_to_their_rows(points: np.ndarray) -> None:
    """Chunks of 1000, 500 and 500 rows: epochs of 3 reads at rows floor((j + U) N / 3)
    read chunk 0 (rows < 1000) once (j = 0) plus once more when U < 1/2 (j = 1): 1 or 2
    times per epoch, 1.5 on average (probability n_0 / N = 1/2 per read). Over 20 epochs
    the count is 20 + Binomial(20, 1/2): 30 +- 2.2; 4 sds either side. The buffer holds
    the 1000-row chunk."""
    uneven = da.from_array(points, chunks=((1000, 500, 500), (2,)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 6,000 iterations: short
        result = _advi(uneven, n_iter=6000, draws=10, elbo_draws=2)
    loads = result.details.chunks_loaded
    assert result.details.buffer_rows == 1000
    per_epoch = np.sum(loads.reshape(20, 3) == 0, axis=1)
    assert set(per_epoch) <= {1, 2}
    assert abs(int(per_epoch.sum()) - 30) <= 4 * np.sqrt(20 * 0.25)
    assert np.all(np.isin(loads, [0, 1, 2]))


def test_same_seed_same_numbers_and_chunk_order(points: np.ndarray) -> None:
    chunked = da.from_array(points, chunks=(CHUNK, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 2,000 iterations: short
        first, again = (_advi(chunked, n_iter=2000, draws=50) for _ in range(2))
        other = _advi(chunked, n_iter=2000, draws=50, random_seed=2)
    assert np.array_equal(first.details.chunks_loaded, again.details.chunks_loaded)
    assert np.array_equal(first.elbo, again.elbo)
    assert np.array_equal(first.details.unconstrained_mean, again.details.unconstrained_mean)
    assert first.elbo_estimate == again.elbo_estimate
    assert not np.array_equal(first.details.chunks_loaded, other.details.chunks_loaded)


def test_full_data_log_joint_and_elbo_summed_over_chunks_equal_in_memory(
    points: np.ndarray,
) -> None:
    """log p(x, theta) (log prior + log|J| once, the log-likelihood chunk by chunk) and the
    final ELBO from it equal the in-memory values to 1e-10 relative: the same terms, only
    the order of the float64 additions differs (error ~ N x 1e-16 relative)."""
    chunked = check_points(da.from_array(points, chunks=((700, 700, 600), (2,))))
    in_memory, _ = get_objective(points, SPEC, "advi", BATCH, "adagrad_window")
    streamed, _ = get_objective(chunked, SPEC, "advi", BATCH, "adagrad_window")
    start = np.zeros(in_memory.ndim)
    in_memory.reset(points, start, 0.01, 3)
    streamed.reset(chunked, start, 0.01, 3)
    assert streamed.buffer_rows == 700
    theta = np.random.default_rng(5).normal(scale=0.5, size=(4, in_memory.ndim))
    theta[:, 1:] += [-2.0, -2.0, 2.0, 2.0]  # near the posterior, and away from it
    expected = in_memory.log_joint(theta)
    assert np.allclose(streamed.log_joint(theta), expected, rtol=1e-10, atol=0.0)
    params = {"mean": theta[0], "chol": np.diag(np.full(in_memory.ndim, 0.05))}
    elbo_memory = final_elbo(in_memory, params, np.random.default_rng(7), 20)
    elbo_chunked = final_elbo(streamed, params, np.random.default_rng(7), 20)
    assert np.allclose(elbo_chunked, elbo_memory, rtol=1e-10, atol=0.0)


def test_a_chunked_fit_reports_the_full_data_elbo_of_its_q(
    fits: dict[str, Any], points: np.ndarray
) -> None:
    """``elbo_estimate`` of the chunked fit is the in-memory full-data ELBO of the q it
    returns, with the same draws (the fit's stream (restart seed, 2)), to 1e-10."""
    result = fits["dask"]
    objective, _ = get_objective(points, SPEC, "advi", BATCH, "adagrad_window")
    objective.reset(points, np.zeros(objective.ndim), 0.01, 0)
    seed = result.options["restart_seeds"][0]
    params = {"mean": result.details.unconstrained_mean, "chol": result.details.unconstrained_chol}
    value, se = final_elbo(
        objective, params, np.random.default_rng((seed, 2)), result.options["elbo_draws"]
    )
    assert np.isclose(result.elbo_estimate.value, value, rtol=1e-10, atol=0.0)
    assert np.isclose(result.elbo_estimate.se, se, rtol=1e-8, atol=0.0)


# ----------------------------------------------------------------- bad input


def _small() -> Any:
    return da.from_array(np.random.default_rng(0).normal(size=(400, 2)), chunks=(100, 2))


BAD = [
    Bad(
        "advi without batch_size",
        lambda: fit(_small(), SPEC, engine="advi", progressbar=False),
        ValueError,
        "batch_size",
        "expected a minibatch size for chunked data with advi",
        "got None",
        "Pass e.g. batch_size=200",
    ),
    Bad(
        "fullrank_advi without batch_size",
        lambda: fit(_small(), SPEC, engine="fullrank_advi", progressbar=False),
        ValueError,
        "batch_size",
        "expected a minibatch size for chunked data with fullrank_advi",
        "got None (full-data ADVI reads all 400 points of the 4 chunks",
        "Pass e.g. batch_size=200",
    ),
]


@pytest.mark.parametrize("case", BAD, ids=[case.id for case in BAD])
def test_bad_chunked_advi_input_gets_a_message_that_teaches(case: Bad) -> None:
    assert_teaches(case)


@pytest.mark.slow  # ~12 s: compiles two full-rank objectives of a larger model
def test_fullrank_advi_streams_a_full_covariance_dp_model(points: np.ndarray) -> None:
    """Full-rank ADVI on chunked data with every kind of prior term at once (learned full
    covariance by Bartlett factors, DP sticks with a learned alpha): log p(x, theta) summed
    over chunks equals the in-memory value to 1e-10 relative, and a short streamed fit
    reports the in-memory full-data ELBO of its q (same draws) while holding one chunk."""
    spec = MixtureSpec(
        n_components=3,
        mean_prior_sd=3.0,
        covariance="full",
        obs_cov="learned",
        weights="dp",
        dp_alpha_prior=(2.0, 1.0),
    )
    chunked = da.from_array(points, chunks=((700, 700, 600), (2,)))
    in_memory, _ = get_objective(points, spec, "fullrank_advi", BATCH, "adagrad_window")
    streamed, _ = get_objective(
        check_points(chunked), spec, "fullrank_advi", BATCH, "adagrad_window"
    )
    in_memory.reset(points, np.zeros(in_memory.ndim), 0.01, 3)
    streamed.reset(check_points(chunked), np.zeros(in_memory.ndim), 0.01, 3)
    theta = np.random.default_rng(5).normal(scale=0.3, size=(3, in_memory.ndim))
    expected = in_memory.log_joint(theta)
    assert np.allclose(streamed.log_joint(theta), expected, rtol=1e-10, atol=0.0)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 1,000 iterations: short
        result = fit(
            chunked,
            spec,
            engine="fullrank_advi",
            batch_size=BATCH,
            n_iter=1000,
            random_seed=4,
            draws=50,
            elbo_draws=20,
            progressbar=False,
        )
    assert result.details.buffer_rows == 700
    assert result.details.chunks_loaded.size == 10
    seed = result.options["restart_seeds"][0]
    params = {"mean": result.details.unconstrained_mean, "chol": result.details.unconstrained_chol}
    value, _ = final_elbo(in_memory, params, np.random.default_rng((seed, 2)), 20)
    assert np.isclose(result.elbo_estimate.value, value, rtol=1e-10, atol=0.0)


def test_streamed_advi_on_a_local_cluster_gives_the_same_numbers(points: np.ndarray) -> None:
    """With a dask.distributed Client active (2 worker processes, the chunks persisted on
    them), each chunk read is a task on the worker holding it and the chunk travels to the
    client: the same chunk order, ELBO trace, q and final ELBO as on dask's threads."""
    from distributed import Client, LocalCluster

    chunked = da.from_array(points, chunks=(CHUNK, 2))
    options = {"n_iter": 1000, "draws": 20, "elbo_draws": 10}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 1,000 iterations: short
        threads = _advi(chunked, **options)
        with (
            LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            Client(cluster),
        ):
            distributed = _advi(chunked.persist(), **options)
    assert np.array_equal(threads.details.chunks_loaded, distributed.details.chunks_loaded)
    assert np.array_equal(threads.elbo, distributed.elbo)
    assert np.array_equal(
        threads.details.unconstrained_mean, distributed.details.unconstrained_mean
    )
    assert threads.elbo_estimate == distributed.elbo_estimate


def test_chunks_sorted_by_cluster_are_flagged_not_silently_wrong(points: np.ndarray) -> None:
    """Rows sorted by cluster put each cluster in its own chunks, so each block of steps
    optimises a different problem (docs/scaling.md): a ChunkOrderWarning says so before the
    run, and the fit says it did not converge (a ConvergenceWarning, ``converged=False``)
    rather than return a q that looks fine."""
    by_cluster = points[np.argsort(points[:, 0] + points[:, 1], kind="stable")]
    chunked = da.from_array(by_cluster, chunks=(CHUNK, 2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = _advi(chunked, n_iter=N_ITER, draws=20)
    kinds = [w.category for w in caught]
    assert ChunkOrderWarning in kinds and ConvergenceWarning in kinds, kinds
    order = next(str(w.message) for w in caught if w.category is ChunkOrderWarning)
    assert order.startswith("points: advi draws each block of minibatches from one chunk")
    assert "Shuffle the rows before writing the chunks" in order
    assert not result.converged


def test_the_chunk_order_test_holds_its_level_on_randomly_ordered_rows(
    points: np.ndarray,
) -> None:
    """Under random row order the statistic is ~ chi2((C - 1) D): over 400 random
    permutations cut into 8 chunks, p < 0.05 about 20 times (Binomial(400, 0.05): sd 4.4)
    and p < 0.5 about 200 times (sd 10), each within 4 sds; sorted rows give p ~ 0; the
    fixture's random order stays far above the warning's level."""
    rng = np.random.default_rng(3)
    p_values = np.array(
        [
            chunk_order_test(in_memory_chunks(points[rng.permutation(N_SAMPLES)], 250)).p_value
            for _ in range(400)
        ]
    )
    assert abs(int(np.sum(p_values < 0.05)) - 20) <= 4 * np.sqrt(400 * 0.05 * 0.95)
    assert abs(int(np.sum(p_values < 0.5)) - 200) <= 4 * np.sqrt(400 * 0.25)
    by_cluster = points[np.argsort(points[:, 0] + points[:, 1], kind="stable")]
    assert chunk_order_test(in_memory_chunks(by_cluster, CHUNK)).p_value < CHUNK_ORDER_ALPHA
    assert chunk_order_test(in_memory_chunks(points, CHUNK)).p_value > 0.01
    assert chunk_order_test(in_memory_chunks(points, N_SAMPLES)) is None  # one chunk
