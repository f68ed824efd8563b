"""ADVI at scale: seed 001's minibatch fit, its fixed cost, and its accuracy.

One run, on seed 001's large data (N = 100,000 points, K = 2, D = 2; ``--quick``: 20,000):

- our ``advi`` engine, batch 200, 1500 iterations of adagrad(0.1), as the seed ran it:
  wall time end to end (model + compile + optimise + final ELBO + draws) for the first fit
  in this process (compiled objective not cached yet; PyTensor's on-disk numba cache as
  it is) and for repeated fits (cached objective, new seeds), and the steady-state
  iterations per second of the optimisation loop;
- the peer: PyMC's own ``pm.fit`` on the same model (``build_marginal_model``), the way
  seed 001 called it, twice (it rebuilds its step function on every call);
- references on the same data: full-data ADVI (no minibatch) and NUTS (few draws);
- accuracy: the q means of the component means against the generating means, and the
  posterior sd of the means (pm.fit's default cost scaling for 2-D minibatches leaves
  its sds far too wide; ours match full-data ADVI).

Run: ``python benchmarks/bench_advi.py [--quick]`` (writes reports/benchmarks/advi.md).
"""

from __future__ import annotations

import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

NAME = "advi"

GOAL_ITS_PER_SECOND = 8000.0   # steady state, batch 200
GOAL_WARM_SECONDS = 2.0        # the seed's 1500-iteration minibatch fit end to end, cached
GOAL_MEAN_ERROR = 0.05         # q means of the component means vs the generating means

SEED_OPTIONS = {"batch_size": 200, "n_iter": 1500, "optimizer": "adagrad",
                "learning_rate": 0.1, "progressbar": False, "draws": 1000, "elbo_draws": 100}


def _spec():
    from ppl_mixtures import MixtureSpec

    # seed 001's large model: means ~ MvNormal(0, tau=0.1 I) (sd sqrt(10)), Dirichlet(0.1)
    return MixtureSpec(n_components=2, mean_prior_sd=float(np.sqrt(10.0)),
                       dirichlet_alpha=0.1, obs_sd=1.0)


def _aligned_error(means: np.ndarray, truth: np.ndarray) -> float:
    """max |means - truth| over the better of the two labelings (K = 2)."""
    return float(min(np.abs(means - truth).max(), np.abs(means[::-1] - truth).max()))


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _pymc_fit(points, spec, n_iter: int, seed: int, optimizer: str = "adagrad",
              learning_rate: float = 0.1):
    """Seed 001's call in PyMC 6.4: build the model, pm.fit, sample q."""
    import pymc as pm

    from ppl_mixtures.models import build_marginal_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build_marginal_model(points, spec, batch_size=200)
        with model:
            opt = getattr(pm, optimizer)(learning_rate=learning_rate)
            approx = pm.fit(n_iter, method="advi", obj_optimizer=opt, random_seed=seed,
                            progressbar=False)
        idata = approx.sample(1000, random_seed=seed)
    means = idata["posterior"]["means"].values[0]          # (draw, K, D)
    slc = approx.ordering["means"][1]
    return means.mean(0), approx.std.eval()[slc].reshape(2, 2)


def _sd_means(result) -> np.ndarray:
    return result.draws("means").reshape(-1, 2, 2).std(0)


def run(quick: bool = False) -> str:
    from ppl_mixtures import fit
    from ppl_mixtures.datasets import ADVI_NOTEBOOK_MEANS, advi_notebook_large_points
    from ppl_mixtures.engines import advi, available_engines

    load_before = os.getloadavg()[0]
    n_samples = 20_000 if quick else 100_000
    points = advi_notebook_large_points(n_samples=n_samples)
    truth = np.asarray(ADVI_NOTEBOOK_MEANS, dtype=float)
    spec = _spec()
    n_repeat = 2 if quick else 3

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        advi.clear_cache()
        first, first_s = _timed(lambda: fit(points, spec, engine="advi", random_seed=1,
                                            **SEED_OPTIONS))
        repeats = [_timed(lambda s=s: fit(points, spec, engine="advi", random_seed=s,
                                          **SEED_OPTIONS)) for s in range(2, 2 + n_repeat)]
        warm_s = float(np.median([t for _, t in repeats]))
        its = float(np.median([r.extras["iterations_per_second"] for r, _ in repeats]))
        large_options = {**available_engines()["advi"].large_data_options,
                         "progressbar": False}
        large, large_s = _timed(lambda: fit(points, spec, engine="advi", random_seed=1,
                                            **large_options))
        restarts, restarts_s = _timed(lambda: fit(points, spec, engine="advi", random_seed=9,
                                                  n_init=4, **SEED_OPTIONS))
        full, full_s = _timed(lambda: fit(points, spec, engine="advi", random_seed=1,
                                          **{**SEED_OPTIONS, "batch_size": None}))
    (peer1_means, peer1_sd), peer1_s = _timed(lambda: _pymc_fit(points, spec, 1500, 1))
    (peer2_means, peer2_sd), peer2_s = _timed(lambda: _pymc_fit(points, spec, 1500, 2))
    large_opts = available_engines()["advi"].large_data_options
    (peer3_means, peer3_sd), peer3_s = _timed(lambda: _pymc_fit(
        points, spec, large_opts["n_iter"], 1, large_opts["optimizer"],
        large_opts["learning_rate"]))

    nuts_row = "| NUTS | not registered | | | |"
    nuts = None
    if "nuts" in available_engines():
        draws = 100 if quick else 200
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nuts, nuts_s = _timed(lambda: fit(points, spec, engine="nuts", draws=draws,
                                              tune=draws, chains=2, cores=1, random_seed=1,
                                              progressbar=False, log_likelihood=False))
        nuts_row = (f"| NUTS (2 chains x {draws} draws, {draws} tune) | {nuts_s:.1f} | "
                    f"{_aligned_error(nuts.posterior_mean('means'), truth):.4f} | "
                    f"{np.round(_sd_means(nuts).ravel(), 4).tolist()} | - |")
    load_after = os.getloadavg()[0]

    ours = repeats[0][0]
    err_ours = max(_aligned_error(r.posterior_mean("means"), truth) for r, _ in repeats)
    err_peer = _aligned_error(peer2_means, truth)
    sd_ours, sd_full = _sd_means(ours), _sd_means(full)

    def met(ok: bool) -> str:
        return "**met**" if ok else "**not met**"

    rows = [
        f"Data: seed 001's large set, N = {n_samples:,}, K = 2, D = 2 "
        f"(`advi_notebook_large_points`); spec {spec.describe().replace(chr(10), '; ')}. "
        f"Minibatch runs: batch 200, 1500 iterations, adagrad(learning_rate=0.1), as in the "
        f"seed.",
        "",
        "| run | wall time end to end (s) | max abs error of the means | sd of the means "
        "(q draws) | final ELBO (nats, full data) |",
        "|---|---|---|---|---|",
        f"| ours, first fit in this process (compiles; numba disk cache as found) | "
        f"{first_s:.2f} | {_aligned_error(first.posterior_mean('means'), truth):.4f} | "
        f"{np.round(_sd_means(first).ravel(), 4).tolist()} | "
        f"{first.extras['elbo_final']:,.1f} ± {first.extras['elbo_final_se']:.1f} |",
        f"| ours, repeated fit (cached objective, new seed; median of {n_repeat}) | "
        f"{warm_s:.2f} | {err_ours:.4f} (worst) | {np.round(sd_ours.ravel(), 4).tolist()} | "
        f"{ours.extras['elbo_final']:,.1f} ± {ours.extras['elbo_final_se']:.1f} |",
        f"| ours, the engine's `large_data_options` ({large_options['n_iter']} iterations of "
        f"{large_options['optimizer']}({large_options['learning_rate']}), batch "
        f"{large_options['batch_size']}; first fit with this optimizer, "
        f"{large.timings.build:.1f} s of it compiling) | {large_s:.2f} | "
        f"{_aligned_error(large.posterior_mean('means'), truth):.4f} | "
        f"{np.round(_sd_means(large).ravel(), 4).tolist()} | "
        f"{large.extras['elbo_final']:,.1f} ± {large.extras['elbo_final_se']:.1f} |",
        f"| ours, 4 restarts (n_init=4, cached) | {restarts_s:.2f} | "
        f"{_aligned_error(restarts.posterior_mean('means'), truth):.4f} | | "
        f"{restarts.extras['elbo_final']:,.1f} (best of "
        f"{[round(r['elbo_final'], 1) for r in restarts.extras['restarts']]}) |",
        f"| peer: `pm.fit` on the same model, 1st call | {peer1_s:.2f} | "
        f"{_aligned_error(peer1_means, truth):.4f} | {np.round(peer1_sd.ravel(), 4).tolist()} "
        f"(unconstrained sd of q) | - |",
        f"| peer: `pm.fit`, 2nd call (rebuilds its step function) | {peer2_s:.2f} | "
        f"{err_peer:.4f} | {np.round(peer2_sd.ravel(), 4).tolist()} (unconstrained sd of q) | - |",
        f"| peer: `pm.fit` with our `large_data_options` ({large_opts['n_iter']} iterations of "
        f"{large_opts['optimizer']}({large_opts['learning_rate']})) | {peer3_s:.2f} | "
        f"{_aligned_error(peer3_means, truth):.4f} | {np.round(peer3_sd.ravel(), 4).tolist()} "
        f"(unconstrained sd of q) | - |",
        f"| reference: our full-data ADVI (no minibatch, 1500 iterations) | {full_s:.2f} | "
        f"{_aligned_error(full.posterior_mean('means'), truth):.4f} | "
        f"{np.round(sd_full.ravel(), 4).tolist()} | {full.extras['elbo_final']:,.1f} ± "
        f"{full.extras['elbo_final_se']:.1f} |",
        nuts_row,
        "",
        f"Steady state (the optimisation loop only, batch 200): **{its:,.0f} iterations/s** "
        f"(ours); the first fit spent {first.timings.build:.2f} s building and compiling, "
        f"repeated fits {np.median([r.timings.build for r, _ in repeats]):.3f} s. "
        f"Cached repeat vs `pm.fit` 2nd call: **{peer2_s / warm_s:.1f}x** faster end to end.",
        "",
        "| goal | measured | |",
        "|---|---|---|",
        f"| >= {GOAL_ITS_PER_SECOND:,.0f} iterations/s at steady state | {its:,.0f} | "
        f"{met(its >= GOAL_ITS_PER_SECOND)} |",
        f"| seed's 1500-iteration minibatch fit end to end <= {GOAL_WARM_SECONDS} s with a "
        f"warm cache | {warm_s:.2f} s | {met(warm_s <= GOAL_WARM_SECONDS)} |",
        f"| means within {GOAL_MEAN_ERROR} of the generating means | {err_ours:.4f} | "
        f"{met(err_ours <= GOAL_MEAN_ERROR)} |",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores shared "
        f"with other jobs; load average {load_before:.1f} before and {load_after:.1f} after "
        f"the run, so absolute times are noisy; ratios are measured in the same run. "
        f"Seed 001's adagrad(0.1) for 1500 iterations finds the means but not q's scale, for "
        f"every method (its sds are 10-20x NUTS's). With `large_data_options` our minibatch "
        f"q gets both; `pm.fit` with the same optimiser does not move q's scale, because it "
        f"divides the 2-D minibatch loss by N/B * N/D instead of N/B and the gradients "
        f"vanish under the optimiser's epsilon. `pm.fit` embeds the data in its step "
        f"function, so numba cannot cache it on disk and every call compiles again. "
        f"{'Quick run (N = 20,000, fewer repeats and NUTS draws).' if quick else ''}",
    ]
    return "\n".join(rows)


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    body = run(quick=quick)
    out = Path(__file__).resolve().parents[1] / "reports" / "benchmarks" / f"{NAME}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(f"# Benchmark: {NAME}\n\n{body}\n")
    print(body)
