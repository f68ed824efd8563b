"""CAVI, EM and SVI on chunked data (#17): the same numbers in memory, on dask, distributed.

The contract: for one chunking, an in-memory fit with ``chunk_size=c``, the fit of a dask
array with row chunks of c (dask's threads) and the same fit on a ``LocalCluster`` of two
worker processes give identical ELBO traces and parameters (``np.array_equal``, not a
tolerance): the per-chunk statistics are combined in a fixed tree on the client, so
neither the scheduler nor the order in which chunks finish can change a bit. The default
in-memory fit (one numba pass over all points) differs from the chunked one only by the
order of floating-point additions; its tolerance is derived below.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import dask
import dask.array as da  # the `dask` extra; the `dev` extra that `make test` installs has it
import numpy as np
import pytest
from distributed import Client, LocalCluster, get_task_stream

from ppl_mixtures import MixtureSpec, fit
from ppl_mixtures.results import ConvergenceWarning

N_SAMPLES = 100_000
CHUNK = 25_000  # 4 chunks
SPECS = {
    "diag": MixtureSpec(n_components=3, mean_prior_sd=3.0, obs_sd="learned"),
    "full": MixtureSpec(n_components=3, mean_prior_sd=3.0, covariance="full", obs_cov="learned"),
}
# enough iterations that the trace moves through the interesting part (CAVI/EM on these
# well-separated clusters settle within ~10 sweeps; SVI takes 40 minibatch steps)
ENGINE_OPTIONS = {
    "cavi": {"max_iter": 12, "tol": 1e-14, "n_draws": 50},
    "em": {"max_iter": 12, "tol": 1e-14},
    "svi": {"n_iter": 40, "batch_size": 500, "n_draws": 50},
}


@pytest.fixture(scope="module")
def points() -> np.ndarray:
    rng = np.random.default_rng(17)
    centers = np.array([[-3.0, 0.0], [0.0, 2.0], [3.0, -1.0]])
    labels = rng.integers(0, 3, size=N_SAMPLES)
    return centers[labels] + rng.normal(scale=[0.6, 0.9], size=(N_SAMPLES, 2))


@pytest.fixture(scope="module")
def cluster_client() -> Any:
    """One LocalCluster of 2 worker processes (1 thread each) for the module (start-up ~4 s)."""
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    client = Client(cluster, set_as_default=False)
    yield client
    client.close()
    cluster.close()


def _fit(data: Any, engine: str, covariance: str, **extra: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # small max_iter on purpose
        return fit(
            data,
            SPECS[covariance],
            engine=engine,
            random_seed=3,
            n_init=1,
            progressbar=False,
            **ENGINE_OPTIONS[engine],
            **extra,
        )


def _trace(result: Any) -> np.ndarray:
    return result.elbo if result.elbo is not None else result.details.log_lik


def _parameters(result: Any) -> dict[str, np.ndarray]:
    post = result.idata["posterior"]
    return {name: post[name].values for name in ("means", "weights", "obs_sd") if name in post}


def _assert_identical(a: Any, b: Any) -> None:
    assert np.array_equal(_trace(a), _trace(b))
    pa, pb = _parameters(a), _parameters(b)
    assert pa.keys() == pb.keys()
    for name in pa:
        assert np.array_equal(pa[name], pb[name]), name
    assert a.final_elbo == b.final_elbo or (a.final_elbo is None and b.final_elbo is None)


@pytest.mark.parametrize("covariance", ["diag", "full"])
@pytest.mark.parametrize("engine", ["cavi", "em", "svi"])
def test_in_memory_dask_threads_and_local_cluster_give_identical_numbers(
    points: np.ndarray, cluster_client: Any, engine: str, covariance: str
) -> None:
    in_memory = _fit(points, engine, covariance, chunk_size=CHUNK)
    with dask.config.set(scheduler="threads"):
        threaded = _fit(da.from_array(points, chunks=(CHUNK, 2)), engine, covariance)
    with dask.config.set(scheduler=cluster_client), get_task_stream(client=cluster_client) as ts:
        persisted = cluster_client.persist(da.from_array(points, chunks=(CHUNK, 2)))
        distributed = _fit(persisted, engine, covariance)
    # the fit ran on both worker processes, not on the client
    assert len({task["worker"] for task in ts.data}) == 2
    assert _trace(in_memory).size >= 5  # several iterations, each one a full chunked pass
    _assert_identical(in_memory, threaded)
    _assert_identical(in_memory, distributed)
    assert "observed_data" not in distributed.idata.children  # 1e8 points are never pulled in
    assert distributed.data_fingerprint == threaded.data_fingerprint


@pytest.mark.parametrize("engine", ["cavi", "em"])
def test_default_in_memory_fit_differs_from_the_chunked_one_by_round_off_only(
    points: np.ndarray, engine: str
) -> None:
    """One numba pass vs four chunk passes combined in a tree: the same sums added in another
    order. Each statistic is a sum of N = 1e5 terms; reordering changes it by at most about
    N * eps relative (a worst-case bound; 1e5 * 2.2e-16 = 2.2e-11), and the ELBO of CAVI/EM
    inherits that relative error, so 1e-10 is a safe bound and far below any real change
    (one iteration changes the trace by > 1e-6 relative here)."""
    chunked = _fit(points, engine, "diag", chunk_size=CHUNK)
    default = _fit(points, engine, "diag")
    trace_c, trace_d = _trace(chunked), _trace(default)
    np.testing.assert_allclose(trace_c, trace_d, rtol=1e-10, atol=0)
    assert np.max(np.abs(np.diff(trace_d[:5])) / np.abs(trace_d[1:5])) > 1e-6


def test_chunk_size_of_the_whole_data_starts_where_the_default_fit_starts(
    points: np.ndarray,
) -> None:
    """N <= 100,000: the k-means++ start reads every point, so the chunked fit's first ELBO
    equals the default fit's to round-off (same centers, same hard assignments)."""
    chunked = _fit(points, "cavi", "diag", chunk_size=CHUNK)
    default = _fit(points, "cavi", "diag")
    np.testing.assert_allclose(_trace(chunked)[0], _trace(default)[0], rtol=1e-12)


def test_em_refuses_dirichlet_process_weights(points: np.ndarray) -> None:
    spec = MixtureSpec(n_components=3, weights="dp")
    with pytest.raises(NotImplementedError, match="em"):
        fit(points[:200], spec, engine="em", progressbar=False)


# ----------------------------------------------------------------------------- memory
def _rss_bytes() -> int:
    with open(f"/proc/{os.getpid()}/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _PeakRss:
    """The highest resident set size of this process, sampled every 5 ms in a thread."""

    def __enter__(self) -> _PeakRss:
        self.baseline = self.peak = _rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes())
            time.sleep(0.005)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())


def test_a_zarr_store_larger_than_the_memory_cap_is_fitted_chunk_by_chunk(
    tmp_path: Path,
) -> None:
    """A 96 MB store (6e6 x 2 float64, 24 chunks of 4 MB) is fitted by CAVI under a cap of
    half the store on the growth of this process's resident memory during the fit (sampled
    every 5 ms; what is measured: RSS of the process running dask's threads, not a hard
    limit). Reading the store into memory would need 96 MB plus a Fortran copy; the chunked
    fit holds a few chunks at a time (2 threads x (chunk + its float64 Fortran copy)).
    The store is written chunk by chunk from dask's generator, never whole in memory."""
    n_samples, chunk = 6_000_000, 250_000
    store = str(tmp_path / "points.zarr")
    rng = da.random.default_rng(5)
    shift = da.from_array(np.array([[-2.0, 0.0], [2.0, 1.0]]))
    labels = rng.integers(0, 2, size=n_samples, chunks=chunk)
    data = shift[labels] + rng.normal(size=(n_samples, 2), chunks=(chunk, 2))
    data.rechunk((chunk, 2)).to_zarr(store)
    store_bytes = n_samples * 2 * 8
    cap = store_bytes // 2
    lazy = da.from_zarr(store)
    spec = MixtureSpec(n_components=2, mean_prior_sd=3.0, obs_sd="learned")
    _fit_lazy = lambda: fit(  # noqa: E731
        lazy, spec, engine="cavi", random_seed=1, n_init=1, max_iter=3, progressbar=False
    )
    with dask.config.set(scheduler="threads", num_workers=2), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        _fit_lazy()  # numba's compile/cache load and dask's imports outside the measurement
        with _PeakRss() as rss:
            result = _fit_lazy()
    growth = rss.peak - rss.baseline
    print(f"RSS growth during the fit: {growth / 1e6:.1f} MB (store {store_bytes / 1e6:.0f} MB)")
    assert growth < cap, f"RSS grew by {growth / 1e6:.0f} MB, cap {cap / 1e6:.0f} MB"
    assert result.n_iter == 3 and np.all(np.isfinite(result.elbo))
    # the store's answer is the in-memory answer with the same chunking, bit for bit
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        in_memory = fit(
            np.asarray(lazy),
            spec,
            engine="cavi",
            random_seed=1,
            n_init=1,
            max_iter=3,
            progressbar=False,
            chunk_size=chunk,
        )
    assert np.array_equal(result.elbo, in_memory.elbo)


@pytest.mark.parametrize("engine", ["em", "svi"])
def test_uneven_chunks_and_rechunking_give_the_in_memory_numbers(
    points: np.ndarray, engine: str
) -> None:
    """Chunks of 30,000 rows (the last one 10,000): dask's own chunks, and a dask array of
    other chunks re-chunked by ``chunk_size=30_000``, match ``chunk_size=30_000`` in memory.
    SVI's minibatches then come from chunks of unequal size (chosen with probability n_c/N)."""
    in_memory = _fit(points, engine, "diag", chunk_size=30_000)
    with dask.config.set(scheduler="threads"):
        own = _fit(da.from_array(points, chunks=(30_000, 2)), engine, "diag")
        rechunked = _fit(
            da.from_array(points, chunks=(7_000, 1)), engine, "diag", chunk_size=30_000
        )
    _assert_identical(in_memory, own)
    _assert_identical(in_memory, rechunked)
    assert in_memory.options["chunk_size"] == 30_000
