"""Wall time of `ppl-mixtures demo`, with a cold and a warm PyTensor compile cache.

Cold: a fresh ``PYTENSOR_FLAGS=base_compiledir=<empty dir>`` (API_NOTES §6: the numba
cache of PyTensor's graphs lives under base_compiledir, so a fresh compiledir alone is not
cold). Numba kernels compiled with ``cache=True`` by our own modules (the numpy engines'
kernels, the fused density) are cached next to those modules and stay warm. Warm: the same
command again in a new process with that now-filled cache. Each run is a separate process
(``python -m ppl_mixtures demo``), as a user would run it; the demo's default ``--jobs``
(the CPUs, at most 2) fits side by side in worker processes. A third warm run with
``--jobs 1`` (every fit in the main process, one after the other) shows what the worker
processes buy.

Peer, measured in the same run and the same way: one ``ppl-mixtures fit`` of NUTS with its
default settings on seed 001's 100 points, cold and warm; the demo's time is also reported
as a multiple of it. Goal: demo <= 60 s warm, <= 3 min cold on 2 cores.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NAME = "demo"
GOAL_WARM_S = 60.0
GOAL_COLD_S = 180.0


def _run(args: list[str], compiledir: Path) -> tuple[float, float | None]:
    """(wall seconds, seconds until the last fit finished or None) of one CLI process."""
    env = dict(os.environ)
    env["PYTENSOR_FLAGS"] = f"base_compiledir={compiledir}"
    start = time.perf_counter()
    last_fit = None
    proc = subprocess.Popen([sys.executable, "-m", "ppl_mixtures", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    tail = []
    for line in proc.stderr:  # progress lines: "[dataset] engine: done in 1.2 s"
        if ": done in " in line or ": FAILED" in line or "not applicable" in line:
            last_fit = time.perf_counter() - start
        tail = [*tail, line][-20:]
    code = proc.wait()
    elapsed = time.perf_counter() - start
    if code != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({code}): {''.join(tail)[-2000:]}")
    return elapsed, last_fit


def _engine_times(results_json: Path) -> list[tuple[str, str, float, float]]:
    data = json.loads(results_json.read_text())
    rows = []
    for dataset, comp in data["datasets"].items():
        for engine, row in comp["engines"].items():
            rows.append((dataset, engine, row["build_s"], row["run_s"]))
    return rows


def run(quick: bool = False) -> str:
    """Measure the demo (``--quick`` settings when ``quick``) and return the markdown report."""
    import numpy as np

    from ppl_mixtures import cli, datasets

    load_before = os.getloadavg()
    demo_args = ["demo", "--force"] + (["--quick"] if quick else [])
    jobs = cli._default_jobs()
    with tempfile.TemporaryDirectory(prefix="bench_demo_") as tmp:
        tmp_path = Path(tmp)
        cache = tmp_path / "pytensor"
        cache.mkdir()
        data = tmp_path / "points.npy"
        np.save(data, datasets.advi_notebook_points(100))
        peer_args = ["--quiet", "fit", str(data), "-k", "2", "--engine", "nuts",
                     "--dirichlet-alpha", "0.1"]
        if quick:
            peer_args.append("--quick")
        out = tmp_path / "demo"
        demo_cold, fits_cold = _run([*demo_args, "--out", str(out)], cache)
        peer_cold, _ = _run(peer_args, cache)  # the NUTS graph is cached by now: see notes
        demo_warm, fits_warm = _run([*demo_args, "--out", str(out)], cache)
        peer_warm, _ = _run(peer_args, cache)
        engine_rows = _engine_times(out / "results.json")
        serial, fits_serial = _run([*demo_args, "--jobs", "1", "--out", str(out)], cache)
    load_after = os.getloadavg()

    def met(value: float, goal: float) -> str:
        return "yes" if value <= goal else "no"

    def split(total: float, fits: float | None) -> str:
        return "–" if fits is None else f"{fits:.1f} | {total - fits:.1f}"

    mode = "`--quick` settings" if quick else "default settings"
    lines = [
        f"# Benchmark: `ppl-mixtures demo` wall time ({mode})", "",
        "Each number is one run of a fresh process (`python -m ppl_mixtures demo ...`). "
        "Cold: empty `PYTENSOR_FLAGS=base_compiledir` (PyTensor's numba cache lives there). "
        "Warm: the same command again with that cache filled. The numba kernels our own "
        "modules compile with `cache=True` (numpy engines, fused density) are cached next to "
        "the modules and were warm in every run. 'last fit' is the time until the last fit "
        "finished (from the progress lines); 'after' the rest: the last dataset's comparison "
        "and report section, and report.md (the other datasets' sections are drawn between "
        f"fits). The demo ran with its default `--jobs {jobs}` (worker processes) unless "
        "the row says otherwise.", "",
        "| run | demo (s) | last fit (s) | after (s) | peer: `fit --engine nuts` (s) | "
        "demo / peer | goal (s) | met |",
        "|---|---|---|---|---|---|---|---|",
        f"| cold cache | {demo_cold:.1f} | {split(demo_cold, fits_cold)} | {peer_cold:.1f} | "
        f"{demo_cold / peer_cold:.1f}x | {GOAL_COLD_S:.0f} | {met(demo_cold, GOAL_COLD_S)} |",
        f"| warm cache | {demo_warm:.1f} | {split(demo_warm, fits_warm)} | {peer_warm:.1f} | "
        f"{demo_warm / peer_warm:.1f}x | {GOAL_WARM_S:.0f} | {met(demo_warm, GOAL_WARM_S)} |",
        f"| warm cache, `--jobs 1` | {serial:.1f} | {split(serial, fits_serial)} | "
        f"{peer_warm:.1f} | {serial / peer_warm:.1f}x | {GOAL_WARM_S:.0f} | "
        f"{met(serial, GOAL_WARM_S)} |",
        "",
        "The peer's cold run comes after the cold demo, which has already compiled the NUTS "
        "model of the 100-point data: its 'cold' time is close to warm. The demo's cold run is "
        "the honest cold number.", "",
        "What the demo does to fit in the goal (before: 118-177 s warm, ~680 s cold with "
        "`--quick`):", "",
        "- Fits run side by side in worker processes (`--jobs`, default the CPUs, at most 2; "
        "forked, so they start with the package already imported). The fits are handed out "
        "two at a time, dataset by dataset, MCMC first; each dataset's comparison and report "
        "section (figures, netCDF) starts in a worker as soon as its last fit is done, so the "
        "report is mostly drawn while other fits run. Same seeds, same numbers as `--jobs 1`.",
        "- Cheaper settings for the slow contrast engines, from their `Engine.demo_options` "
        "(the report's settings table lists what ran): latent_gibbs 2 x (300 tune + 300 "
        "draws) instead of 2 x (1000 + 1000) (its verdict stays 'agrees'). Metropolis keeps "
        "2 x (2000 + 2000): with 2 x (1000 + 1000) its chains on the 1-D data disagreed "
        "(R-hat 1.07). NUTS (the reference) keeps 4 x (1000 + 1000) on the small data "
        "and 2 x (300 + 300) on 100,000 points; SMC keeps 1000 particles per chain, ADVI "
        "10,000 iterations. `ppl-mixtures fit` defaults are unchanged.",
        "- Graphs that run only a few dozen to a few hundred times are compiled in PyTensor's "
        "Python mode instead of numba: Metropolis's `find_MAP` start, and ADVI's "
        "constrain/unconstrain/final-ELBO helpers. That skips their numba compiles (seconds "
        "each on a cold cache) and most graph rewrites on a warm one.",
        "- The demo's fits skip the pointwise log-likelihood (chains x draws x points; the "
        "report neither uses nor stores it), and the workers switch off PyTensor's "
        "graph-creation tracebacks (`traceback__limit=0`, about 10% of a PyMC fit's set-up "
        "time).",
        "- The models' density is the fused numba Op at every data size (it used to start at "
        "500 rows): its kernels are compiled once and cached by numba, so PyTensor's numba "
        "backend has far less to compile per model (cold, Old Faithful: ADVI 42 -> 30 s, "
        "NUTS 22 -> 15 s; 100 points: Metropolis 20 -> 8 s), and it is no slower warm. Cold "
        "demo 162-190 s -> 139 s, warm 50-54 s -> 47 s.", "",
        "Where the cold time goes: numba compiles PyTensor's step graphs once per distinct "
        "model (ADVI and full-rank ADVI steps 10-30 s each, NUTS's log p ~15 s for the first "
        "model in a process, a Metropolis step per variable a few s); two workers compile in "
        "parallel.", "",
        "Where the warm demo's time goes (seconds per fit, from its results.json; with two "
        "workers two fits run at a time):", "",
        "| dataset | engine | build/compile | run |", "|---|---|---|---|",
    ]
    lines += [f"| {d} | {e} | {b:.1f} | {r:.1f} |" for d, e, b, r in engine_rows]
    lines += ["", f"Machine: {platform.platform()}, {os.cpu_count()} CPU(s), Python "
              f"{platform.python_version()}. Load average (1 min) {load_before[0]:.1f} before, "
              f"{load_after[0]:.1f} after: the machine is shared, so absolute times are noisy; "
              "the demo/peer ratio is the steadier number.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    quick_mode = "--quick" in sys.argv[1:]
    report = run(quick=quick_mode)
    target = Path(__file__).resolve().parent.parent / "reports" / "benchmarks" / f"{NAME}.md"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(report, encoding="utf-8")
    print(report)
