"""ADVI at scale: does the default minibatch fit converge, and does it say so?

Seed 001's large data (N = 100,000 points, K = 2, D = 2; ``--quick``: 20,000), spec
``MixtureSpec(n_components=2, mean_prior_sd=sqrt(10), dirichlet_alpha=0.1, obs_sd=1)``:

- a NUTS reference (4 chains x 1000 draws, 1000 tune), cached with its R-hat and ESS in
  ``reports/benchmarks/advi_reference.json`` under a hash of data + spec + options;
- the mean-field family's best ELBO: long full-data runs (no minibatch noise; decayed
  step, averaged iterates, 2000 draws for the ELBO), two seeds, cached likewise;
- the default minibatch fit (``batch_size=200``, every other option at its default) for
  three seeds: the largest shift of the means from NUTS in NUTS posterior sds, the ELBO
  gap to the family's best, ``converged``, and the wall time with the compiled objective
  cached ("warm");
- runs that must report ``converged=False``: ``n_iter=300``, ``n_iter=3000``, and the old
  constant-step recipe (adagrad_window(0.01), 10,000 iterations, last iterate);
- full-rank vs mean-field final ELBO on every demo dataset (``app.demo.demo_datasets()``, with
  seed 000's prior sd set to sqrt(10));
- speed: steady-state iterations per second, seed 001's own 1500-iteration recipe repeated
  vs PyMC's ``pm.fit`` on the same model (which recompiles on every call).

Run: ``python benchmarks/bench_advi.py [--quick]`` (writes reports/benchmarks/advi.md).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

NAME = "advi"
REFERENCE_CACHE = (
    Path(__file__).resolve().parents[1] / "reports" / "benchmarks" / ("advi_reference.json")
)

NUTS_OPTIONS = {"draws": 1000, "tune": 1000, "chains": 4, "random_seed": 20261130}
#: The family's best: full data, many iterations, the default decay + averaging.
BEST_OPTIONS = {"batch_size": None, "n_iter": 20_000, "elbo_draws": 2000, "draws": 200}
BEST_SEEDS = (101, 102)
SEEDS = (1, 2, 3)

GOAL_SHIFT_SD = 0.5  # means within 0.5 NUTS posterior sd of NUTS
GOAL_ELBO_GAP = 2.0  # nats below the mean-field family's best
GOAL_WARM_SECONDS = 3.0  # the default 100k minibatch fit, compiled objective cached
GOAL_FULLRANK_SLACK = 1.0  # full-rank's ELBO >= mean-field's - 1 nat

SEED_RECIPE = {
    "batch_size": 200,
    "n_iter": 1500,
    "optimizer": "adagrad",
    "learning_rate": 0.1,
    "schedule": "constant",
    "average": 0,
    "elbo_draws": 100,
}
OLD_DEFAULTS = {
    "batch_size": 200,
    "n_iter": 10_000,
    "optimizer": "adagrad_window",
    "learning_rate": 0.01,
    "schedule": "constant",
    "average": 0,
}


def _spec():
    from ppl_mixtures import MixtureSpec

    # seed 001's large model: means ~ MvNormal(0, tau=0.1 I) (sd sqrt(10)), Dirichlet(0.1)
    return MixtureSpec(
        n_components=2, mean_prior_sd=float(np.sqrt(10.0)), dirichlet_alpha=0.1, obs_sd=1.0
    )


def _key(kind: str, points: np.ndarray, spec, options: dict) -> str:
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(points, dtype=np.float64).tobytes())
    digest.update(repr(spec).encode())
    digest.update(json.dumps(options, sort_keys=True, default=str).encode())
    return f"{kind}-{digest.hexdigest()[:16]}"


def _cached(kind: str, points: np.ndarray, spec, options: dict, compute) -> dict:
    """``compute()`` once per (kind, data, spec, options); the JSON keeps the result."""
    key = _key(kind, points, spec, options)
    store = json.loads(REFERENCE_CACHE.read_text()) if REFERENCE_CACHE.exists() else {}
    if key not in store:
        store[key] = compute()
        REFERENCE_CACHE.parent.mkdir(parents=True, exist_ok=True)
        REFERENCE_CACHE.write_text(json.dumps(store, indent=1, sort_keys=True) + "\n")
    return store[key]


def nuts_reference(points: np.ndarray, spec) -> dict:
    """NUTS posterior means and sds of the means (components sorted by feature 0)."""

    def compute():
        import arviz as az

        from ppl_mixtures import fit, relabel

        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nuts = fit(
                points, spec, engine="nuts", progressbar=False, log_likelihood=False, **NUTS_OPTIONS
            )
        aligned = relabel(nuts)
        means = aligned.draws("means").reshape(-1, *aligned.posterior_mean("means").shape)
        order = np.argsort(means.mean(0)[:, 0])
        rhat = az.rhat(aligned.idata)
        ess = az.ess(aligned.idata, method="bulk")
        return {
            "means": means.mean(0)[order].tolist(),
            "sd": means.std(0, ddof=1)[order].tolist(),
            "rhat_max": float(max(np.nanmax(rhat[v].values) for v in ("means", "weights"))),
            "ess_bulk_min": float(min(np.nanmin(ess[v].values) for v in ("means", "weights"))),
            "options": NUTS_OPTIONS,
            "seconds": time.perf_counter() - start,
        }

    return _cached("nuts", points, spec, NUTS_OPTIONS, compute)


def family_best(points: np.ndarray, spec, method: str = "advi") -> dict:
    """Long full-data runs of ``method``; their final ELBOs and means (sorted)."""

    def compute():
        from ppl_mixtures import fit

        runs = []
        for seed in BEST_SEEDS:
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = fit(
                    points, spec, engine=method, random_seed=seed, progressbar=False, **BEST_OPTIONS
                )
            means = result.posterior_mean("means")
            runs.append(
                {
                    "random_seed": seed,
                    "elbo": result.elbo_estimate.value,
                    "elbo_se": result.elbo_estimate.se,
                    "converged": bool(result.converged),
                    "param_se": result.details.convergence["param_se"],
                    "means": means[np.argsort(means[:, 0])].tolist(),
                    "seconds": time.perf_counter() - start,
                }
            )
        return {"runs": runs, "options": BEST_OPTIONS}

    return _cached(f"best-{method}", points, spec, BEST_OPTIONS, compute)


def _shift(result, nuts: dict) -> float:
    """Largest |mean - NUTS mean| / NUTS sd over the means, after relabeling to NUTS."""
    from ppl_mixtures import relabel

    ref = np.asarray(nuts["means"])
    aligned = relabel(result, reference=ref)
    return float(np.max(np.abs(aligned.posterior_mean("means") - ref) / np.asarray(nuts["sd"])))


def _width(result, nuts: dict) -> str:
    """Range of q's sd of the means over NUTS's posterior sd, after relabeling."""
    from ppl_mixtures import relabel

    ref = np.asarray(nuts["means"])
    draws = relabel(result, reference=ref).draws("means")
    ratio = draws.reshape(-1, *ref.shape).std(0) / np.asarray(nuts["sd"])
    return f"{ratio.min():.2f}-{ratio.max():.2f}"


def _fit(points, spec, engine: str = "advi", **options):
    """(fit, wall seconds, ConvergenceWarning messages); CPU seconds in ``_LAST_CPU``."""
    from ppl_mixtures import fit
    from ppl_mixtures.results import ConvergenceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start, cpu = time.perf_counter(), time.process_time()
        result = fit(points, spec, engine=engine, progressbar=False, **options)
        seconds = time.perf_counter() - start
        _LAST_CPU[0] = time.process_time() - cpu
    messages = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    return result, seconds, messages


_LAST_CPU = [0.0]


def _pymc_fit(points, spec, seed: int) -> float:
    """Seed 001's call in PyMC 6.4 (adagrad(0.1), 1500 iterations, batch 200); seconds."""
    import pymc as pm

    from ppl_mixtures.inference.pymc.models import build_marginal_model

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build_marginal_model(points, spec, batch_size=200)
        with model:
            approx = pm.fit(
                1500,
                method="advi",
                obj_optimizer=pm.adagrad(learning_rate=0.1),
                random_seed=seed,
                progressbar=False,
            )
        approx.sample(1000, random_seed=seed)
    return time.perf_counter() - start


def _demo_rows() -> list[str]:
    from ppl_mixtures.app.demo import demo_datasets

    rows = []
    for data in demo_datasets():
        spec = data.spec
        if data.name == "three_clusters_1d" and spec.mean_prior_sd != np.sqrt(10.0):
            spec = dataclasses.replace(spec, mean_prior_sd=float(np.sqrt(10.0)))
        options = {"batch_size": 200} if data.large else {}
        fits = {
            engine: _fit(data.points, spec, engine, random_seed=1, **options)[0]
            for engine in ("advi", "fullrank_advi")
        }
        mf, fr = fits["advi"].elbo_estimate, fits["fullrank_advi"].elbo_estimate
        diff = fr.value - mf.value
        ok = diff >= -GOAL_FULLRANK_SLACK
        rows.append(
            f"| {data.name} (N = {len(data.points):,}"
            f"{', batch 200' if data.large else ''}) | "
            f"{mf.value:,.2f} ± {mf.se:.2f} | "
            f"{fr.value:,.2f} ± {fr.se:.2f} | {diff:+.2f} | "
            f"{fits['advi'].converged} / {fits['fullrank_advi'].converged} | "
            f"{'**met**' if ok else '**not met**'} |"
        )
    return rows


def run(quick: bool = False) -> str:
    from ppl_mixtures.datasets import advi_notebook_large_points
    from ppl_mixtures.inference.pymc import advi

    load_before = os.getloadavg()[0]
    n_samples = 20_000 if quick else 100_000
    points = advi_notebook_large_points(n_samples=n_samples)
    spec = _spec()
    nuts = nuts_reference(points, spec)
    best = family_best(points, spec)
    best_elbo = max(r["elbo"] for r in best["runs"])
    best_se = max(r["elbo_se"] for r in best["runs"])
    best_shift = max(
        float(
            np.max(
                np.abs(np.asarray(r["means"]) - np.asarray(nuts["means"])) / np.asarray(nuts["sd"])
            )
        )
        for r in best["runs"]
    )

    # warm-up: compile the default objective once (not timed), then the timed seeds
    first, first_s, _ = _fit(points, spec, random_seed=0, batch_size=200)
    seed_rows, shifts, gaps, flags, walls, cpus = [], [], [], [], [], []
    for seed in SEEDS:
        # timed twice (same seed: same numbers); the faster is the fit's cost, the other
        # absorbed the other jobs' load (timeit's rule)
        result, seconds, messages = _fit(points, spec, random_seed=seed, batch_size=200)
        cpu = _LAST_CPU[0]
        again, seconds_again, _ = _fit(points, spec, random_seed=seed, batch_size=200)
        assert again.elbo_estimate.value == result.elbo_estimate.value
        if seconds_again < seconds:
            result, seconds, cpu = again, seconds_again, _LAST_CPU[0]
        _LAST_CPU[0] = cpu
        test = result.details.convergence
        shift, gap = _shift(result, nuts), best_elbo - result.elbo_estimate.value
        shifts.append(shift), gaps.append(gap), flags.append(result.converged)
        walls.append(seconds), cpus.append(_LAST_CPU[0])
        seed_rows.append(
            f"| {seed} | {shift:.2f} | {_width(result, nuts)} | {gap:+.2f} ± "
            f"{np.hypot(result.elbo_estimate.se, best_se):.2f} | {result.converged} "
            f"({'no warning' if not messages else 'warned'}) | {test['param_se']:.3f} | "
            f"{test['param_change']:.3f} (allowed {test['param_change_allowed']:.3f}) | "
            f"{test['elbo_change']:+.2f} ± {test['elbo_change_se']:.2f} | {seconds:.2f} "
            f"({result.details.optimize_seconds:.2f} optimising) | {_LAST_CPU[0]:.2f} |"
        )
    its = float(np.median([first.details.iterations_per_second]))

    fail_rows, fail_flags = [], []
    for label, options in [
        ("n_iter=300", {"n_iter": 300}),
        ("n_iter=3000", {"n_iter": 3000}),
        ("old constant step: adagrad_window(0.01), 10,000 iterations, last iterate", OLD_DEFAULTS),
    ]:
        result, seconds, messages = _fit(
            points, spec, random_seed=1, **{"batch_size": 200, **options}
        )
        fail_flags.append((label, result.converged, bool(messages)))
        gap = best_elbo - result.elbo_estimate.value
        fail_rows.append(
            f"| {label} | {_shift(result, nuts):.2f} | {gap:+,.1f} | "
            f"{result.converged} | {'yes' if messages else 'no'}: "
            f"{result.details.convergence['reason']} |"
        )

    _fit(points, spec, "fullrank_advi", random_seed=1, batch_size=200)  # compiles
    fullrank, fr_s, _ = _fit(points, spec, "fullrank_advi", random_seed=2, batch_size=200)
    fr_row = (
        f"| full-rank, default, batch 200 (seed 2, warm) | {_shift(fullrank, nuts):.2f} | "
        f"{_width(fullrank, nuts)} | "
        f"{best_elbo - fullrank.elbo_estimate.value:+.2f} | {fullrank.converged} | "
        f"{fr_s:.2f} s |"
    )

    demo_rows = _demo_rows()

    # speed: seed 001's recipe, ours repeated vs pm.fit's second call
    _fit(points, spec, random_seed=1, **SEED_RECIPE)
    recipe = [_fit(points, spec, random_seed=s, **SEED_RECIPE)[1] for s in (2, 3, 4)]
    _pymc_fit(points, spec, 1)
    peer_s = _pymc_fit(points, spec, 2)
    load_after = os.getloadavg()[0]

    def met(ok: bool) -> str:
        return "**met**" if ok else "**not met**"

    failing_ok = all(not conv and warned for _, conv, warned in fail_flags)
    fr_ok = all("**met**" in r for r in demo_rows)
    rows = [
        f"Data: seed 001's large set, N = {n_samples:,}, K = 2, D = 2 "
        f"(`advi_notebook_large_points`); spec {spec.describe().replace(chr(10), '; ')}. "
        f"ADVI engine defaults: {advi.describe_defaults()}.",
        "",
        "## References",
        "",
        f"- NUTS: {NUTS_OPTIONS['chains']} chains x {NUTS_OPTIONS['draws']} draws "
        f"({NUTS_OPTIONS['tune']} tune), max R-hat {nuts['rhat_max']:.4f}, min bulk ESS "
        f"{nuts['ess_bulk_min']:,.0f}; posterior means of the means "
        f"{np.round(nuts['means'], 4).tolist()}, sds {np.round(nuts['sd'], 4).tolist()} "
        f"(cached in `reports/benchmarks/{REFERENCE_CACHE.name}`; {nuts['seconds']:.0f} s "
        f"when computed).",
        f"- The mean-field family's best: {len(BEST_SEEDS)} full-data runs (no minibatch "
        f"noise; {BEST_OPTIONS['n_iter']:,} iterations of the default decayed step, the last "
        f"{advi.AVERAGE:.0%} averaged; ELBO from {BEST_OPTIONS['elbo_draws']} draws): "
        + ", ".join(
            f"seed {r['random_seed']}: {r['elbo']:,.2f} ± {r['elbo_se']:.2f} "
            f"(converged {r['converged']}, param se {r['param_se']:.3f} sd)"
            for r in best["runs"]
        )
        + f". Best: **{best_elbo:,.2f}**. Its means sit {best_shift:.2f} NUTS sd from NUTS "
        f"at most (the mean-field family's own bias).",
        "",
        "## The default minibatch fit (batch 200, every other option at its default)",
        "",
        "| seed | means: max shift from NUTS (NUTS sd) | q sd / NUTS sd of the means | "
        "ELBO gap to the family's best (nats) | converged | param se (q sd) | param change (q sd) | ELBO change of the "
        "averaged q (nats) | wall time, warm, best of 2 (s) | CPU time (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *seed_rows,
        "",
        f"First fit in this process (compiles the objective): {first_s:.1f} s; steady state "
        f"{its:,.0f} iterations/s.",
        "",
        "## Runs that must say they did not converge",
        "",
        "| run (batch 200, seed 1) | means: max shift (NUTS sd) | ELBO gap to best (nats) | "
        "converged | ConvergenceWarning: reason |",
        "|---|---|---|---|---|",
        *fail_rows,
        "",
        "## Full rank",
        "",
        "| run | means: max shift (NUTS sd) | q sd / NUTS sd of the means | ELBO gap to the "
        "mean-field best (nats) | converged | wall time |",
        "|---|---|---|---|---|---|",
        fr_row,
        "",
        "Full-rank vs mean-field final ELBO on every demo dataset (defaults, seed 1; the "
        "large set with batch 200; seed 000's 1-D set with prior sd sqrt(10)):",
        "",
        "| dataset | mean-field ELBO | full-rank ELBO | full - mean | converged (mf / fr) | "
        f">= -{GOAL_FULLRANK_SLACK:g} nat |",
        "|---|---|---|---|---|---|",
        *demo_rows,
        "",
        "## Speed",
        "",
        f"Seed 001's own recipe (1500 iterations of adagrad(0.1), batch 200, constant step), "
        f"repeated with the objective cached: {np.median(recipe):.2f} s (median of 3); "
        f"PyMC's `pm.fit` on the same model, 2nd call (it recompiles): {peer_s:.2f} s "
        f"(**{peer_s / np.median(recipe):.0f}x**).",
        "",
        "## Goals",
        "",
        "| goal | measured | |",
        "|---|---|---|",
        f"| means within {GOAL_SHIFT_SD} NUTS sd of NUTS, {len(SEEDS)} seeds | "
        f"{', '.join(f'{s:.2f}' for s in shifts)} | {met(max(shifts) <= GOAL_SHIFT_SD)} |",
        f"| ELBO within {GOAL_ELBO_GAP:g} nats of the family's best | "
        f"{', '.join(f'{g:+.2f}' for g in gaps)} | {met(max(gaps) <= GOAL_ELBO_GAP)} |",
        f"| converged=True | {flags} | {met(all(flags))} |",
        f"| n_iter=300 (and 3000, and the old constant step) report converged=False with a "
        f"ConvergenceWarning | {[(lab.split(':')[0], c) for lab, c, _ in fail_flags]} | "
        f"{met(failing_ok)} |",
        f"| full-rank ELBO >= mean-field's - {GOAL_FULLRANK_SLACK:g} nat on every demo "
        f"dataset | see the table | {met(fr_ok)} |",
        f"| 100k minibatch fit <= {GOAL_WARM_SECONDS:g} s warm (wall time, best of 2) | "
        f"{', '.join(f'{w:.2f}' for w in walls)} s (CPU time of the process: "
        f"{', '.join(f'{c:.2f}' for c in cpus)} s) | {met(max(walls) <= GOAL_WARM_SECONDS)} |",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores shared "
        f"with other jobs; load average {load_before:.1f} before and {load_after:.1f} after "
        f"the run, so wall times are inflated by the other jobs; the CPU time of this "
        f"process is what the fit costs on a core of its own (one step of batch 200 "
        f"costs ~40 us on an idle core). "
        f"{'Quick run (N = 20,000).' if quick else ''}",
    ]
    return "\n".join(rows)


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    body = run(quick=quick)
    out = Path(__file__).resolve().parents[1] / "reports" / "benchmarks" / f"{NAME}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(f"# Benchmark: {NAME}\n\n{body}\n")
    print(body)
