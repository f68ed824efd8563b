"""MCMC benchmark: NUTS with our marginal density vs NUTS with pm.Mixture, and Metropolis vs NUTS.

Seed 001's data generator (two 2-D Gaussians, weights 0.2/0.8, identity covariance) at
N = 100 and N = 100,000 (quick: 10,000), K = 2, D = 2, the seed's priors (means ~ N(0, 1)
per coordinate, Dirichlet(0.1), obs_sd = 1). Measured in one run, so ratios are fair on a
shared machine:

1. gradient time: one logp + gradient evaluation of the compiled model (best of repeats);
2. NUTS on each model: wall time (build + sampling), ESS_bulk per second of sampling (the
   minimum over parameters, after relabeling to the true means), max R-hat;
3. seed 001's recipe (find_MAP start, per-variable Metropolis) against NUTS on our model,
   ESS/s and R-hat on the same data; at N = 100 also the latent-z model (Gibbs for z).

Goals (issue 3): our ESS/s >= 3x pm.Mixture's at N = 100k; 4 chains x 1000 draws with
R-hat <= 1.01 in under 60 s (build + sampling) on 2 cores.

Run ``python benchmarks/bench_mcmc.py [--quick]`` to write reports/benchmarks/mcmc.md.
"""

from __future__ import annotations

import logging
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

NAME = "mcmc"

SEED = 20261122


def _spec():
    from ppl_mixtures import MixtureSpec

    return MixtureSpec(n_components=2, mean_prior_sd=1.0, dirichlet_alpha=0.1, obs_sd=1.0)


def _points(n_samples: int) -> np.ndarray:
    from ppl_mixtures import datasets

    if n_samples == 100:
        return datasets.advi_notebook_points(100)
    return datasets.advi_notebook_large_points(n_samples)


# ------------------------------------------------------------------ measurements
def gradient_ms(model, min_seconds: float = 0.3, repeats: int = 3) -> float:
    """Best mean time (ms) of one logp + gradient call of ``model`` at its initial point."""
    from pymc.blocking import DictToArrayBijection

    func = model.logp_dlogp_function(ravel_inputs=True)
    func.set_extra_values({})
    point = model.initial_point()
    flat = DictToArrayBijection.map({v.name: point[v.name] for v in func._grad_vars}).data
    func(flat)  # warm up (numba JIT, caches)
    start, calls = time.perf_counter(), 0
    while time.perf_counter() - start < min_seconds / repeats:
        func(flat)
        calls += 1
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            func(flat)
        best = min(best, (time.perf_counter() - start) / calls)
    return 1e3 * best


def _row(label: str, fit) -> dict:
    """ESS/s, R-hat and times of one fit, relabeled to the true means."""
    from ppl_mixtures import datasets, relabel
    from ppl_mixtures.analysis.diagnostics import mcmc_summary

    aligned = relabel(fit, reference=np.asarray(datasets.ADVI_NOTEBOOK_MEANS))
    summary = mcmc_summary(aligned)
    run = fit.timings.run
    return {
        "label": label,
        "chains": fit.n_chains,
        "draws": fit.n_draws,
        "build": fit.timings.build,
        "run": run,
        "wall": fit.timings.total,
        "ess": summary.ess_bulk_min,
        "ess_per_s": summary.ess_bulk_min / run,
        "rhat": summary.rhat_max,
        "divergences": summary.divergences,
        "relabeled": aligned.relabeling.draws_relabeled,
        "means": aligned.posterior_mean("means"),
    }


def _fit(points, engine: str, **options):
    import ppl_mixtures as pmx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pmx.fit(
            points, _spec(), engine=engine, progressbar=False, log_likelihood=False, **options
        )


def _measure(n_samples: int, quick: bool) -> dict:
    from ppl_mixtures.inference.pymc import models

    points = _points(n_samples)
    spec = _spec()
    out: dict = {"n": n_samples}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out["grad_ours"] = gradient_ms(models.build_marginal_model(points, spec))
        out["grad_builtin"] = gradient_ms(models.build_builtin_model(points, spec))
    nuts = (
        {"draws": 300, "tune": 300, "chains": 2}
        if quick
        else {"draws": 1000, "tune": 1000, "chains": 4}
    )
    rows = [
        _row(
            "NUTS, our density",
            _fit(points, "nuts", model="marginal", cores=2, random_seed=SEED, **nuts),
        ),
        _row(
            "NUTS, pm.Mixture",
            _fit(points, "nuts", model="builtin", cores=2, random_seed=SEED, **nuts),
        ),
    ]
    # seed 001: find_MAP, then Metropolis per variable, 2 chains x 1000 draws (pymc3 tuned 500)
    seed_recipe = (
        {"draws": 300, "tune": 300, "chains": 2}
        if quick
        else {"draws": 1000, "tune": 500, "chains": 2}
    )
    rows.append(
        _row(
            "Metropolis, seed 001 recipe (find_MAP start)",
            _fit(points, "metropolis", start="map", cores=2, random_seed=SEED, **seed_recipe),
        )
    )
    if n_samples <= 1000:  # the latent-z contrast: O(N) model evaluations per sweep over z
        latent = (
            {"draws": 300, "tune": 300, "chains": 2}
            if quick
            else {"draws": 500, "tune": 500, "chains": 2}
        )
        rows.append(
            _row(
                "latent z: Gibbs for z + NUTS (`latent_gibbs`)",
                _fit(points, "latent_gibbs", cores=2, random_seed=SEED, **latent),
            )
        )
    out["rows"] = rows
    return out


# ------------------------------------------------------------------ report
def _fmt_rows(rows: list[dict]) -> list[str]:
    lines = [
        "| sampler | chains x draws | build s | sampling s | wall s | min ESS_bulk "
        "| ESS_bulk/s | max R-hat | divergences | draws relabeled |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        div = "-" if r["divergences"] is None else str(r["divergences"])
        lines.append(
            f"| {r['label']} | {r['chains']} x {r['draws']} | {r['build']:.1f} | "
            f"{r['run']:.1f} | {r['wall']:.1f} | {r['ess']:.0f} | "
            f"{r['ess_per_s']:.1f} | {r['rhat']:.3f} | {div} | {r['relabeled']} |"
        )
    return lines


def _verdict(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def run(quick: bool = False) -> str:
    """Run the benchmark and return the markdown report body."""
    logging.getLogger("pymc").setLevel(logging.ERROR)
    sizes = (100, 10_000) if quick else (100, 100_000)
    load_before = os.getloadavg()
    started = time.perf_counter()
    results = [_measure(n, quick) for n in sizes]
    elapsed = time.perf_counter() - started
    load_after = os.getloadavg()

    lines = [
        f"# MCMC benchmark{' (quick)' if quick else ''}",
        "",
        "Seed 001's generator, K = 2, D = 2, priors means ~ N(0, 1), Dirichlet(0.1), "
        "obs_sd = 1. NUTS runs use `cores=2`; ESS is the minimum bulk ESS over "
        "means and weights after relabeling to the true means; ESS/s divides by the "
        "sampling time (`timings.run`); wall = build (model, compile, PyMC set-up, "
        "find_MAP) + sampling.",
        "",
    ]
    for res in results:
        n = res["n"]
        ours, builtin, metro = res["rows"][:3]
        lines += [
            f"## N = {n:,}",
            "",
            "| gradient (logp + dlogp, one evaluation) | ms |",
            "|---|---|",
            f"| our density (`models.build_marginal_model`) | {res['grad_ours']:.3f} |",
            f"| pm.Mixture (`models.build_builtin_model`) | {res['grad_builtin']:.3f} |",
            f"| ratio pm.Mixture / ours | {res['grad_builtin'] / res['grad_ours']:.2f} |",
            "",
        ]
        lines += _fmt_rows(res["rows"])
        speedup = ours["ess_per_s"] / builtin["ess_per_s"]
        over_metro = ours["ess_per_s"] / metro["ess_per_s"]
        lines += [
            "",
            f"- ESS/s, our density / pm.Mixture: **{speedup:.2f}x**",
            f"- ESS/s, NUTS (our density) / seed 001's Metropolis: **{over_metro:.1f}x**; "
            f"Metropolis max R-hat {metro['rhat']:.3f} (NUTS {ours['rhat']:.3f})",
        ]
        if len(res["rows"]) > 3:
            latent = res["rows"][3]
            lines.append(
                f"- ESS/s, NUTS on the marginal model / latent-z Gibbs: "
                f"**{ours['ess_per_s'] / latent['ess_per_s']:.1f}x**"
            )
        lines.append("")
        res["speedup"] = speedup
    largest, ours_large = results[-1], results[-1]["rows"][0]
    goal1 = largest["speedup"] >= 3.0
    goal2 = (
        ours_large["chains"] == 4
        and ours_large["draws"] == 1000
        and ours_large["rhat"] <= 1.01
        and ours_large["wall"] < 60.0
    )
    lines += [
        "## Goals",
        "",
        "| goal | measured | verdict |",
        "|---|---|---|",
        f"| ESS/s >= 3x pm.Mixture's at N = {largest['n']:,} | {largest['speedup']:.2f}x "
        f"| {_verdict(goal1)} |",
        f"| 4 chains x 1000 draws, R-hat <= 1.01, < 60 s on 2 cores (N = "
        f"{largest['n']:,}) | {ours_large['chains']} x {ours_large['draws']}, R-hat "
        f"{ours_large['rhat']:.3f}, wall {ours_large['wall']:.1f} s "
        f"(sampling {ours_large['run']:.1f} s) | "
        f"{_verdict(goal2) if not quick else 'not measured in quick mode'} |",
        "",
        "## Machine",
        "",
        f"- {platform.platform()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs shared with other users",
        f"- load average (1, 5, 15 min): {', '.join(f'{x:.1f}' for x in load_before)} "
        f"before, {', '.join(f'{x:.1f}' for x in load_after)} after; the benchmark took "
        f"{elapsed:.0f} s",
        "- times on a loaded machine are noisy: compare the ratios, measured in the same run",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    quick = "--quick" in sys.argv[1:]
    body = run(quick=quick)
    target = Path(__file__).resolve().parent.parent / "reports" / "benchmarks" / f"{NAME}.md"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(body, encoding="utf-8")
    print(body)
