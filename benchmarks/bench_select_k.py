"""select_k over K = 1..6 on 10^5 points with the conjugate criteria, against scikit-learn.

Ours: ``select_k(points, spec, range(1, 7), criteria=("elbo", "elbo_logk", "bic", "aic",
"icl", "dp"))``: per K one CAVI fit (ELBO, ELBO + log K!) and one EM fit (BIC, AIC, ICL),
then one CAVI fit with DP weights (T = 10) read through ``occupied_components``; every fit
with its defaults (5 restarts, CAVI tol 1e-8 and EM tol 1e-10 relative). The wall time is
broken down per source (``SelectK.seconds``).

scikit-learn doing the same work: ``GaussianMixture(covariance_type="diag")`` ``.bic`` and
``.aic`` for K = 1..6 plus ``BayesianGaussianMixture(weight_concentration_prior_type=
"dirichlet_process", n_components=10)`` for the DP, with n_init = 5 like ours and the same
stopping rule in their units: ours stop at a relative change of the total objective of
1e-8 (select_k's EM default and CAVI's), i.e. 1e-8 x |log L| ~ 3.5e-3 nats here;
GaussianMixture's tol is on the mean per point (3.5e-3 / 1e5 = 3.5e-8) and
BayesianGaussianMixture's on its total lower bound (3.5e-3: a total of the same order,
though scikit-learn drops some constants from it); at most 1000 iterations. scikit-learn has
no per-K ELBO with its constants to compare with our
CAVI column, so that column is extra work on our side.

Rounds are interleaved (ours, then sklearn, round after round) so each ratio compares runs
seconds apart; numba's compilation is paid once before the rounds (a warm-up on 1,000
points) and reported separately. Run: ``python benchmarks/bench_select_k.py [--quick]
[--rounds N]``
(writes reports/benchmarks/select_k.md).
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

NAME = "select_k"
GOAL_SECONDS = 10.0  # the whole table, K = 1..6 at N = 1e5, "in seconds"
CRITERIA = ("elbo", "elbo_logk", "bic", "aic", "icl", "dp")
KS = range(1, 7)
TRUNCATION = 10  # max(KS) + 4, select_k's default
GM_TOL = 3.5e-8  # 1e-8 x |mean log-likelihood per point| (~3.45): ours, per point
BGM_TOL = 3.5e-3  # 1e-8 x |total lower bound| (~3.45e5): ours, on the total


def _data(n_samples: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    labels = rng.choice(3, size=n_samples, p=[0.5, 0.3, 0.2])
    centers = np.array([[0.0, 0.0], [4.0, 3.0], [-3.0, 5.0]])
    scales = np.array([[1.0, 0.5], [0.7, 1.0], [1.0, 1.2]])
    return centers[labels] + scales[labels] * rng.normal(size=(n_samples, 2))


def _ours(points: np.ndarray):
    from ppl_mixtures import MixtureSpec, select_k

    spec = MixtureSpec(n_components=1, mean_prior_sd=5.0, obs_sd="learned")
    start = time.perf_counter()
    result = select_k(points, spec, KS, criteria=CRITERIA, random_seed=0, progressbar=False)
    return time.perf_counter() - start, result


def _sklearn(points: np.ndarray) -> tuple[float, dict]:
    from sklearn.mixture import BayesianGaussianMixture, GaussianMixture

    out: dict = {"bic": {}, "aic": {}, "converged": [], "seconds_gm": 0.0}
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k in KS:
            gm = GaussianMixture(k, covariance_type="diag", n_init=5, tol=GM_TOL, max_iter=1000,
                                 random_state=0).fit(points)  # fmt: skip
            out["bic"][k], out["aic"][k] = gm.bic(points), gm.aic(points)
            out["converged"].append(bool(gm.converged_))
        out["seconds_gm"] = time.perf_counter() - start
        bgm = BayesianGaussianMixture(
            n_components=TRUNCATION, covariance_type="diag",
            weight_concentration_prior_type="dirichlet_process", weight_concentration_prior=1.0,
            n_init=5, tol=BGM_TOL, max_iter=1000, random_state=0,
        ).fit(points)  # fmt: skip
    out["dp_occupied"] = int(np.sum(np.bincount(bgm.predict(points), minlength=TRUNCATION) > 0))
    out["dp_converged"] = bool(bgm.converged_)
    seconds = time.perf_counter() - start
    out["seconds_bgm"] = seconds - out["seconds_gm"]
    return seconds, out


def _load() -> str:
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def run(quick: bool = False, rounds: int | None = None) -> str:
    """Measure and return the markdown report body (``rounds``: 1 quick, else 2 by default)."""
    n_samples = 10_000 if quick else 100_000
    rounds = rounds if rounds is not None else (1 if quick else 2)
    points = _data(n_samples)
    load_before = _load()
    warm = time.perf_counter()
    _ours(points[:1000])  # numba compilation (cached on disk after the first process)
    warm_seconds = time.perf_counter() - warm
    ours_t, sk_t, parts, sk_parts = [], [], [], []
    result = sk = None
    for _ in range(rounds):
        seconds, result = _ours(points)
        ours_t.append(seconds)
        parts.append(dict(result.seconds))
        seconds, sk = _sklearn(points)
        sk_t.append(seconds)
        sk_parts.append((sk["seconds_gm"], sk["seconds_bgm"]))
    load_after = _load()
    ours_med, sk_med = float(np.median(ours_t)), float(np.median(sk_t))
    ratios = np.asarray(sk_t) / np.asarray(ours_t)
    part_med = {key: float(np.median([p.get(key, 0.0) for p in parts])) for key in parts[0]}
    gm_med = float(np.median([p[0] for p in sk_parts]))
    bgm_med = float(np.median([p[1] for p in sk_parts]))
    em_plus_dp = part_med.get("em", 0.0) + part_med.get("dp", 0.0)
    assert result is not None and sk is not None
    bic_gap = max(abs(result.table.loc[k, "bic"] - sk["bic"][k]) / abs(sk["bic"][k]) for k in KS)
    flagged = {c: sorted(f) for c, f in result.flags.items()}
    lines = [
        f"Run {_dt.datetime.now(_dt.UTC):%Y-%m-%d %H:%M} UTC. N = {n_samples:,}, D = 2, three "
        f"clusters; K = 1..6; spec: learned diagonal covariances (obs_sd='learned'), "
        f"mean_prior_sd = 5, Dirichlet(1) weights; the DP with T = {TRUNCATION}.",
        "",
        "| what | wall s (median of rounds) | rounds |",
        "|---|---:|---|",
        f"| **ours: select_k, criteria {', '.join(CRITERIA)}** | **{ours_med:.2f}** | "
        f"{', '.join(f'{t:.2f}' for t in ours_t)} |",
        f"| ↳ CAVI per K (ELBO, ELBO + log K!) | {part_med.get('cavi', 0.0):.2f} | |",
        f"| ↳ EM per K (BIC, AIC, ICL) | {part_med.get('em', 0.0):.2f} | |",
        f"| ↳ DP: one CAVI fit (T = {TRUNCATION}) + occupancy | {part_med.get('dp', 0.0):.2f} | |",
        f"| sklearn: GaussianMixture(diag) bic/aic K = 1..6 + BGM(DP) | {sk_med:.2f} | "
        f"{', '.join(f'{t:.2f}' for t in sk_t)} |",
        f"| ↳ GaussianMixture x 6 | {gm_med:.2f} | |",
        f"| ↳ BayesianGaussianMixture(dirichlet_process, {TRUNCATION}) | {bgm_med:.2f} | |",
        "",
        "| comparison | measured |",
        "|---|---|",
        f"| goal: the whole table in seconds (<= {GOAL_SECONDS:g} s) | {ours_med:.2f} s: "
        f"{'met' if ours_med <= GOAL_SECONDS else 'NOT met'} |",
        f"| sklearn's total / ours (median of per-round ratios) | {np.median(ratios):.1f}x "
        f"(rounds {ratios.min():.1f}-{ratios.max():.1f}x) |",
        f"| like for like: sklearn's total / our EM + DP parts | {sk_med / em_plus_dp:.1f}x |",
        f"| EM part: GaussianMixture x 6 / our EM x 6 | {gm_med / part_med.get('em', 1):.1f}x |",
        f"| DP part: BGM / our CAVI-DP | {bgm_med / part_med.get('dp', 1):.1f}x |",
        f"| largest relative BIC difference, ours vs sklearn's fit (K = 1..6) | {bic_gap:.1e} |",
        "",
        f"Choices (ours): {result.choices}. Flagged cells: {flagged or 'none'}. sklearn: "
        f"GaussianMixture converged at every K: {all(sk['converged'])}; the DP's "
        f"BayesianGaussianMixture converged: {sk['dp_converged']}, "
        f"{sk['dp_occupied']} components hold points; ours: "
        f"{result.notes.get('dp', '')}.",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores shared with other jobs; "
        f"`uptime` load average {load_before} before and {load_after} after the run. numba "
        f"compilation before the rounds (a first select_k on 1,000 points): "
        f"{warm_seconds:.1f} s, paid once per process with a cold cache. Python "
        f"{platform.python_version()}.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    # run as a script, sys.path[0] is benchmarks/: make the package importable from the repo
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    quick = "--quick" in sys.argv
    n_rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else None
    body = run(quick=quick, rounds=n_rounds)
    target = Path(__file__).resolve().parents[1] / "reports" / "benchmarks" / f"{NAME}.md"
    if not quick:
        target.write_text(f"# Benchmark: {NAME}\n\n{body}", encoding="utf-8")
    print(body)
