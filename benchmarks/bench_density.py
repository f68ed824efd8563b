"""The marginal mixture density: one log-density + gradient evaluation, ours vs pm.Mixture.

This is the function NUTS calls at every leapfrog step (``model.logp_dlogp_function``), on
seed 001's data (K = 2, D = 2, obs_sd = 1) at N = 100 and N = 100,000, for three models
with the same priors and value variables, measured in one run and interleaved:

- **ours**: ``build_marginal_model`` — ``pm.CustomDist`` whose logp is the fused
  ``MixtureLogp`` Op; with its gradient it compiles to one ``MixtureLogpAndGradParams``
  node (a blocked numba kernel, one pass over the data);
- **elementwise CustomDist**: the same CustomDist with the plain PyTensor log-sum-exp graph
  (``mixture_logp_pt_elementwise``, the recipe of API_NOTES §1) — the starting point;
- **pm.Mixture** (the peer): ``build_builtin_model``, PyMC's own mixture of diagonal
  ``MvNormal`` components.

Goal: ours at least 3x cheaper than pm.Mixture at N = 100,000 (issue 3 item 5; the floor
is one pass over the data). Times are per call: the minimum over repeats of the mean of a
batch of calls, in wall-clock and in process CPU time (less sensitive to other jobs on the
shared machine); ratios compare models measured in the same run.

Run: ``python benchmarks/bench_density.py [--quick]`` (writes reports/benchmarks/density.md).
"""

from __future__ import annotations

import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

NAME = "density"

GOAL_SPEEDUP = 3.0  # ours vs pm.Mixture, logp + gradient at N = 100,000
SIZES = (100, 100_000)


def _spec():
    from ppl_mixtures import MixtureSpec

    return MixtureSpec(n_components=2, mean_prior_sd=1.0, dirichlet_alpha=0.1, obs_sd=1.0)


def _points(n_samples: int) -> np.ndarray:
    from ppl_mixtures import datasets

    if n_samples <= 100:
        return datasets.advi_notebook_points(n_samples)
    return datasets.advi_notebook_large_points(n_samples)


def _elementwise_model(points, spec):
    """build_marginal_model's model with the plain elementwise log-sum-exp density."""
    import pymc as pm

    from ppl_mixtures.inference.pymc import models
    from ppl_mixtures.model.density import mixture_logp_pt_elementwise

    with pm.Model(coords=models._coords(points, spec)) as model:
        weights, means, obs_sd = models._add_parameters(points, spec)
        pm.CustomDist(
            "x",
            weights,
            means,
            obs_sd,
            logp=mixture_logp_pt_elementwise,
            random=models.mixture_random,
            signature=models.SIGNATURE,
            observed=points,
            dims=("obs", "feature"),
        )
    return model


def _logp_dlogp(model):
    """NUTS's compiled (logp, gradient) function on the flat unconstrained vector."""
    fn = model.logp_dlogp_function(ravel_inputs=True)
    fn.set_extra_values({})
    return fn


def _time_calls(fn, x0, n_calls: int) -> tuple[float, float]:
    """(wall, cpu) seconds per call for one batch of ``n_calls``."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n_calls):
        fn(x0)
    return (time.perf_counter() - wall) / n_calls, (time.process_time() - cpu) / n_calls


def _measure(n_samples: int, repeats: int) -> dict:
    from ppl_mixtures.inference.pymc.models import build_builtin_model, build_marginal_model

    spec, points = _spec(), _points(n_samples)
    builders = {
        "ours": build_marginal_model,
        "elementwise CustomDist": _elementwise_model,
        "pm.Mixture": build_builtin_model,
    }
    functions, compile_seconds = {}, {}
    for name, builder in builders.items():
        start = time.perf_counter()
        functions[name] = _logp_dlogp(builder(points, spec))
        compile_seconds[name] = time.perf_counter() - start
    x0 = np.array([0.3, -1.0, -1.5, 1.0, 1.0])  # weights_stickbreaking__, means (2, 2)
    values = {name: fn(x0) for name, fn in functions.items()}  # warm-up, and agreement
    reference = values["pm.Mixture"]
    scale = max(1.0, abs(float(reference[0])), float(np.abs(reference[1]).max()))
    max_diff = (
        max(
            max(abs(float(v[0]) - float(reference[0])), float(np.abs(v[1] - reference[1]).max()))
            for v in values.values()
        )
        / scale
    )
    n_calls = max(5, int(2e6 // (n_samples + 1000)))
    best = {name: [np.inf, np.inf] for name in functions}
    for _ in range(repeats):  # interleaved, so load changes hit all models alike
        for name, fn in functions.items():
            wall, cpu = _time_calls(fn, x0, n_calls)
            best[name] = [min(best[name][0], wall), min(best[name][1], cpu)]
    return {
        "n_samples": n_samples,
        "best": best,
        "compile": compile_seconds,
        "max_diff": max_diff,
        "n_calls": n_calls,
    }


def _table(result: dict) -> list[str]:
    peer_wall, peer_cpu = result["best"]["pm.Mixture"]
    lines = [
        f"### N = {result['n_samples']:,}",
        "",
        "| model | wall / call | CPU / call | pm.Mixture / model (wall) | "
        "pm.Mixture / model (CPU) | first build + compile |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, (wall, cpu) in result["best"].items():
        lines.append(
            f"| {name} | {wall * 1e3:.3f} ms | {cpu * 1e3:.3f} ms | "
            f"{peer_wall / wall:.2f}x | {peer_cpu / cpu:.2f}x | "
            f"{result['compile'][name]:.1f} s |"
        )
    lines += [
        "",
        f"Largest difference from pm.Mixture in logp or any gradient entry, relative "
        f"to the largest of them: {result['max_diff']:.1e}. Each time is the best of the "
        f"repeats of a batch of {result['n_calls']} calls.",
    ]
    return [*lines, ""]


def run(quick: bool = False) -> str:
    """Measure and return the markdown report body."""
    warnings.filterwarnings("ignore", category=UserWarning)
    load_before = os.getloadavg()[0]
    results = [_measure(n, repeats=3 if quick else 7) for n in SIZES]
    load_after = os.getloadavg()[0]
    large = results[-1]["best"]
    speedup_wall = large["pm.Mixture"][0] / large["ours"][0]
    speedup_cpu = large["pm.Mixture"][1] / large["ours"][1]
    met = min(speedup_wall, speedup_cpu) >= GOAL_SPEEDUP
    lines = [
        "# Marginal density: log p + gradient per call",
        "",
        "One evaluation of the log posterior and its gradient (what NUTS calls per "
        "leapfrog step), on seed 001's data, K = 2, D = 2, obs_sd = 1, for our model "
        "(fused `MixtureLogp` Op, numba kernels), the plain elementwise CustomDist "
        "graph, and PyMC's `pm.Mixture` (the peer), measured in one run.",
        "",
    ]
    for result in results:
        lines += _table(result)
    lines += [
        "## Goal",
        "",
        f"Ours at least {GOAL_SPEEDUP:.0f}x cheaper than pm.Mixture at N = 100,000: "
        f"measured {speedup_wall:.2f}x (wall) and {speedup_cpu:.2f}x (CPU) — "
        f"**{'met' if met else 'not met'}**.",
        "",
        "Why it is faster: one pass over the data computes log p and its gradient "
        "together (a graph rewrite merges the value and gradient Ops when both are "
        "asked for, as NUTS does), in blocks of 512 rows held in small scratch arrays "
        "(no (N, K) temporaries whose fresh pages fault in on every call), loops LLVM "
        "vectorizes "
        "with branch-free polynomial exp/log, the data passed by reference (a shared "
        "variable) rather than as a constant the numba backend handles on every call, "
        "and the gradient of the sum taking one cotangent value instead of N ones.",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores "
        f"shared with other jobs; load average {load_before:.1f} before and "
        f"{load_after:.1f} after. Python {sys.version.split()[0]}."
        + (" Quick mode (fewer repeats)." if quick else ""),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    body = run(quick="--quick" in sys.argv)
    out = Path(__file__).resolve().parents[1] / "reports" / "benchmarks" / f"{NAME}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(body)
    print(body)
