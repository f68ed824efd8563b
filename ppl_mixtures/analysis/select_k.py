"""Choosing the number of components K: every criterion side by side, :func:`select_k`.

One row per K, one column per criterion, computed on the same data and the same model
(``spec`` with ``n_components=K``); each criterion's choice, the differences from its best
K, and a flag on every number that should not be trusted (a fit that did not converge, an
SMC estimate whose runs disagree or that misses the exact value by more than 3 se, LOO
chains that disagree or bad Pareto k). A number that cannot be computed is NaN with its
reason (shown as "—" and the reason), never a silent NaN.

What each criterion estimates, its convention, its cost (measured: docs/choosing_k.md):

=============  ====================================================  =====  ==============
criterion      estimates                                             best   cost per K
=============  ====================================================  =====  ==============
``elbo``       CAVI's ELBO, a lower bound of log p(x) (nats)          max    ms - seconds
``elbo_logk``  ELBO + log K!: log p(x) when the K! modes are apart   max    (same fit)
``exact``      log p(x) by enumeration (tiny N, known covariance)    max    K^N sums
``smc``        SMC's estimate of log p(x) +- se (nats)               max    seconds-minutes
``loo``        NUTS's PSIS-LOO elpd +- se (nats): prediction         max*   seconds-minutes
``bic``        -2 log L + p log N at EM's ML estimate                min    ms - seconds
``aic``        -2 log L + 2 p                                        min    (same fit)
``icl``        BIC + 2 x the assignments' entropy                    min    (same fit)
``dp``         P(K occupied components | x) under a truncated DP     max    one CAVI fit
=============  ====================================================  =====  ==============

(*) LOO's choice is the smallest K whose elpd lies within max(4, 2 se_diff) nats of the
best (se_diff: the paired standard error of the difference, as ``az.compare``'s dse):
differences below ~4 nats are not told apart by LOO (Sivula, Magnusson & Vehtari 2022),
and an overfitted mixture predicts as well as the right one (its extra component is
nearly empty), so the plain argmax drifts up by noise.

The log K! correction. A K-component mixture whose components are exchangeable (one prior
for all, a symmetric Dirichlet or fixed weights, no ordering) has a posterior with K!
symmetric modes, one per labelling. A mean-field q sits in one of them, so its ELBO bounds
log p(x) - log K! rather than log p(x) whenever the modes do not overlap: then
log p(x) ~ ELBO + log K! (Blei, Kucukelbir & McAuliffe 2017, §3.2; Bishop 2006, §10.2.4).
Without it the plain ELBO penalizes every extra component by log K on top of the Occam
factor. It does not apply to ``ordered=True`` specs (one mode), DP weights or an
asymmetric ``dirichlet_alpha``; it is flagged when q has an emptied component (the modes
then connect through it, and log p(x) lies between the ELBO and ELBO + log K!).
"""

from __future__ import annotations

import dataclasses
import logging
import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ppl_mixtures.analysis import select_k_criteria as crit
from ppl_mixtures.analysis.select_k_criteria import CRITERIA, Cell
from ppl_mixtures.analysis.select_k_table import SelectK
from ppl_mixtures.model.spec import MixtureSpec
from ppl_mixtures.validation import check_points, check_seed, describe

__all__ = [
    "CRITERIA",
    "DEFAULT_CRITERIA",
    "DP_EXTRA_COMPONENTS",
    "SelectK",
    "check_arguments",
    "select_k",
]

logger = logging.getLogger(__name__)

#: The criteria computed by default: the conjugate ones (seconds) and the exact evidence
#: when the data are tiny. ``"smc"`` and ``"loo"`` run a sampler per K: ask for them.
DEFAULT_CRITERIA = ("elbo", "elbo_logk", "exact", "bic", "aic", "icl", "dp")
#: The DP's truncation level is max(ks) + this (the occupied count can exceed max(ks)).
DP_EXTRA_COMPONENTS = 4
#: Draws from the DP fit's q whose z draws give P(K | x) (Monte Carlo sd of each
#: probability at most sqrt(0.25 / 100) = 0.05; ``dp_options={"n_draws": ...}`` for more).
DP_DRAWS = 100
#: SMC farther from the exact log p(x) than this many se is flagged.
SMC_EXACT_SE = 3.0
#: LOO's choice: the smallest K within max(LOO_MIN_NATS, LOO_SE * se_diff) of the best.
LOO_MIN_NATS, LOO_SE = 4.0, 2.0


# --------------------------------------------------------------------------- checks
def _check_ks(ks: Any, n_samples: int) -> tuple[int, ...]:
    hint = "Pass e.g. ks=range(1, 7)"
    if isinstance(ks, str | bytes) or not isinstance(ks, Iterable):
        raise TypeError(f"ks: expected a sequence of integers >= 1, got {describe(ks)}. {hint}.")
    values = list(ks)
    if not values:
        raise ValueError(f"ks: expected at least one K, got an empty sequence. {hint}.")
    for k in values:
        if isinstance(k, bool) or not isinstance(k, int | np.integer):
            raise TypeError(f"ks: expected integers, got {describe(k)}. {hint}.")
        if k < 1:
            raise ValueError(f"ks: expected integers >= 1, got {int(k)}. {hint}.")
        if k > n_samples:
            raise ValueError(
                f"ks: expected every K at most the number of points N = {n_samples}, got "
                f"{int(k)}. Drop the larger K, or use more data."
            )
    repeated = sorted({int(k) for k in values if values.count(k) > 1})
    if repeated:
        raise ValueError(
            f"ks: expected distinct values, got {repeated[0]} more than once. List each K once."
        )
    return tuple(sorted(int(k) for k in values))


def _check_criteria(criteria: Any) -> tuple[str, ...]:
    names = ", ".join(repr(c) for c in CRITERIA)
    if isinstance(criteria, str):
        criteria = tuple(CRITERIA) if criteria == "all" else (criteria,)
    if not isinstance(criteria, Iterable):
        raise TypeError(
            f"criteria: expected names among {names} (or 'all'), got {describe(criteria)}. "
            f"Pass e.g. criteria=('elbo', 'bic')."
        )
    chosen = list(dict.fromkeys(criteria))
    if not chosen:
        raise ValueError(
            f"criteria: expected at least one of {names}, got an empty sequence. Pass e.g. "
            f"criteria=('elbo', 'bic')."
        )
    for name in chosen:
        if name not in CRITERIA:
            raise ValueError(
                f"criteria: expected names among {names} (or 'all'), got {describe(name)}. "
                f"Pick from those."
            )
    return tuple(c for c in CRITERIA if c in chosen)  # the table's column order


def _check_options(name: str, options: Any) -> dict[str, Any]:
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise TypeError(
            f"{name}: expected a dict of engine options or None, got {describe(options)}. "
            f"Pass e.g. {name}={{'random_seed': 1}}."
        )
    return dict(options)


def _spec_for(spec: MixtureSpec, k: int) -> MixtureSpec:
    try:
        return dataclasses.replace(spec, n_components=k)
    except ValueError as err:
        raise ValueError(
            f"spec: expected a spec that holds for every K in ks, got one that fails at "
            f"n_components={k} ({err}). Use a scalar dirichlet_alpha and one obs_cov matrix "
            f"shared by the components."
        ) from err


def _dp_spec(spec: MixtureSpec, truncation: int) -> MixtureSpec:
    """The DP version of ``spec``: same priors and covariance, stick-breaking weights."""
    return dataclasses.replace(
        spec,
        n_components=truncation,
        weights="dp",
        ordered=False,
        dirichlet_alpha=1.0,
        weights_transform="stick_breaking",
    )


# --------------------------------------------------------------------------- fitting
@dataclass
class _Runner:
    """Fits one engine per K with the shared seed and progress bar; times each source."""

    points: np.ndarray
    random_seed: int
    progressbar: bool
    seconds: dict[str, float] = field(default_factory=dict)

    def fit(self, source: str, spec: MixtureSpec, engine: str, options: Mapping[str, Any]) -> Any:
        from ppl_mixtures.inference.fit import fit

        opts = {"random_seed": self.random_seed, "progressbar": self.progressbar, **options}
        start = time.perf_counter()
        with warnings.catch_warnings():
            # the table flags what these warn about (converged, evidence.flags)
            warnings.simplefilter("ignore")
            fitted = fit(self.points, spec, engine=engine, **opts)
        self.seconds[source] = self.seconds.get(source, 0.0) + time.perf_counter() - start
        return fitted

    def timed(self, source: str, func: Any, *args: Any) -> Any:
        start = time.perf_counter()
        out = func(*args)
        self.seconds[source] = self.seconds.get(source, 0.0) + time.perf_counter() - start
        return out


def _cells_for_k(
    run: _Runner, spec: MixtureSpec, k: int, wanted: set[str], options: Mapping[str, dict]
) -> dict[str, Cell]:
    """Every wanted criterion at one K."""
    spec_k = _spec_for(spec, k)
    cells: dict[str, Cell] = {}
    if wanted & {"elbo", "elbo_logk"}:
        cavi = run.fit("cavi", spec_k, "cavi", {"n_draws": 10, **options["cavi"]})
        cells.update(crit.cavi_cells(cavi, k))
    if wanted & {"bic", "aic", "icl"}:
        em = run.fit("em", spec_k, "em", options["em"])
        cells.update(run.timed("em", crit.em_cells, em, run.points))
    if "exact" in wanted:
        cells["exact"] = run.timed("exact", crit.exact_cell, run.points, spec_k)
    if "smc" in wanted:
        cells["smc"] = crit.smc_cell(run.fit("smc", spec_k, "smc", options["smc"]))
    if "loo" in wanted:
        nuts = run.fit("nuts", spec_k, "nuts", options["nuts"])
        cells["loo"] = run.timed("nuts", crit.loo_cell, nuts)
    return {name: cell for name, cell in cells.items() if name in wanted}


def _dp_cells(
    run: _Runner, spec: MixtureSpec, ks: tuple[int, ...], truncation: int, options: Mapping
) -> tuple[dict[int, Cell], str]:
    """P(K occupied | x) for each K in ks from one CAVI fit with DP weights, and a note."""
    from ppl_mixtures.analysis.occupancy import occupied_components

    dp_fit = run.fit("dp", _dp_spec(spec, truncation), "cavi", {"n_draws": DP_DRAWS, **options})
    with warnings.catch_warnings():  # TruncationWarning: the flag below says it
        warnings.simplefilter("ignore")
        occ = run.timed("dp", occupied_components, dp_fit, run.points)
    pmf = np.asarray(occ.pmf, float)
    flags = []
    if not dp_fit.converged:
        flags.append("CAVI-DP did not converge")
    if not occ.truncation_ok:
        flags.append(f"last stick weight {occ.last_weight:.3g} > 0.01: increase dp_truncation")
    flag = "; ".join(flags)
    cells = {k: Cell(float(pmf[k]) if k < pmf.size else 0.0, flag=flag) for k in ks}
    outside = 1.0 - sum(c.value for c in cells.values())
    outside = outside if outside > 1e-12 else 0.0  # round-off of a pmf that sums to 1
    note = (
        f"one CAVI fit with weights='dp', T = {truncation}, {dp_fit.n_draws} draws from q "
        f"(mean occupied {occ.mean:.2f} ± {occ.mean_mcse:.2f} MCSE); effective number of components "
        f"{occ.effective_number:g}; P(K outside ks) = {outside:.3g}; last stick weight "
        f"{occ.last_weight:.3g}"
    )
    return cells, note


# --------------------------------------------------------------------------- choices
def _choice(name: str, values: pd.Series, pointwise: dict) -> int | None:
    """The criterion's K; None unless every row has a value (a partial column cannot choose)."""
    finite = values[np.isfinite(values)]
    if finite.empty or len(finite) < len(values):
        return None
    best = int(finite.idxmax() if CRITERIA[name].higher_is_better else finite.idxmin())
    if name != "loo":
        return best
    for k in finite.index:  # the smallest K within the LOO tolerance of the best
        gap = finite[best] - finite[k]
        if gap <= max(LOO_MIN_NATS, LOO_SE * _paired_se(pointwise, k, best)):
            return int(k)
    return best


def _paired_se(pointwise: Mapping[int, np.ndarray], k: int, best: int) -> float:
    """se of elpd_K - elpd_best from the pointwise elpd (``az.compare``'s dse)."""
    if k == best or k not in pointwise or best not in pointwise:
        return 0.0
    diff = pointwise[k] - pointwise[best]
    return float(np.sqrt(diff.size * np.var(diff)))


def _differences(
    table: pd.DataFrame, criteria: tuple[str, ...], choices: Mapping, pointwise: dict
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """value - value at the choice, and its se (SMC: independent runs; LOO: paired)."""
    diff = pd.DataFrame(index=table.index)
    diff_se = pd.DataFrame(index=table.index)
    for name in criteria:
        best = choices.get(name)
        if best is None or name == "dp":
            continue
        diff[name] = table[name] - table.loc[best, name]
        if name == "smc":
            se = table["smc_se"]
            diff_se[name] = np.sqrt(se**2 + se[best] ** 2).where(table.index != best, 0.0)
        elif name == "loo":
            diff_se[name] = [_paired_se(pointwise, k, best) for k in table.index]
    return diff, diff_se


def _add_flag(flags: dict[str, dict[int, str]], name: str, k: int, text: str) -> None:
    old = flags.setdefault(name, {}).get(k, "")
    flags[name][k] = f"{old}; {text}" if old else text


def check_arguments(
    points: Any,
    spec: Any,
    ks: Any,
    criteria: Any = DEFAULT_CRITERIA,
    dp_truncation: Any = None,
) -> tuple[np.ndarray, tuple[int, ...], tuple[str, ...], int]:
    """:func:`select_k`'s checks of its data, model, ks, criteria and truncation, before any
    fit: (points as float64, sorted ks, criteria in table order, the DP's truncation)."""
    data = check_points(points)
    if not isinstance(spec, MixtureSpec):
        raise TypeError(
            f"spec: expected a MixtureSpec, got {type(spec).__name__}. Build one with "
            f"MixtureSpec(n_components=...) (its n_components is replaced by each K)."
        )
    if spec.weights == "dp":
        raise ValueError(
            "spec: expected Dirichlet or fixed weights (each row is a finite K-component "
            "mixture), got weights='dp'. Pass the finite spec; the 'dp' criterion builds "
            "the DP version of it."
        )
    ks_ = _check_ks(ks, data.shape[0])
    chosen = _check_criteria(criteria)
    n_samples = data.shape[0]
    default = min(max(ks_) + DP_EXTRA_COMPONENTS, n_samples)
    truncation = default if dp_truncation is None else dp_truncation
    if "dp" in chosen and (isinstance(truncation, bool) or not isinstance(truncation, int)):
        raise TypeError(
            f"dp_truncation: expected an integer from max(ks) = {max(ks_)} to the number of "
            f"points N = {n_samples}, got {describe(dp_truncation)}. Pass e.g. "
            f"dp_truncation={default}."
        )
    if "dp" in chosen and not max(ks_) <= truncation <= n_samples:
        raise ValueError(
            f"dp_truncation: expected an integer from max(ks) = {max(ks_)} to the number of "
            f"points N = {n_samples}, got {truncation}. Pass e.g. dp_truncation={default}."
        )
    for k in ks_:
        _spec_for(spec, k)
    spec.check_features(data.shape[1])
    return data, ks_, chosen, int(truncation)


# --------------------------------------------------------------------------- the API
def select_k(
    points: Any,
    spec: MixtureSpec,
    ks: Iterable[int] = range(1, 7),
    *,
    criteria: Iterable[str] | str = DEFAULT_CRITERIA,
    random_seed: int = 0,
    progressbar: bool = True,
    cavi_options: Mapping[str, Any] | None = None,
    em_options: Mapping[str, Any] | None = None,
    smc_options: Mapping[str, Any] | None = None,
    nuts_options: Mapping[str, Any] | None = None,
    dp_options: Mapping[str, Any] | None = None,
    dp_truncation: int | None = None,
) -> SelectK:
    """Every criterion for choosing K, one row per K, on the same data and model.

    Parameters
    ----------
    points : array-like of shape (n_samples, n_features)
    spec : MixtureSpec
        The model; each row fits ``dataclasses.replace(spec, n_components=K)`` (any
        covariance type). Dirichlet or fixed weights (the DP column is built from it).
    ks : iterable of int
        Distinct K >= 1, each at most n_samples; sorted.
    criteria : iterable of str, or "all"
        Among :data:`CRITERIA`: ``"elbo"``, ``"elbo_logk"`` (one CAVI fit per K, ms to
        seconds), ``"exact"`` (enumeration; "—" unless K^N <= 2,000,000 and the covariance
        is known), ``"smc"`` (SMC per K: seconds to minutes), ``"loo"`` (NUTS per K:
        seconds to minutes), ``"bic"``, ``"aic"``, ``"icl"`` (one EM fit per K),
        ``"dp"`` (one CAVI fit with DP weights). Default :data:`DEFAULT_CRITERIA`: all
        but the two samplers.
    random_seed : int
        Seed of every fit (same seed, same table).
    progressbar : bool
        The engines' progress bars.
    cavi_options, em_options, smc_options, nuts_options, dp_options : dict, optional
        Options of each engine (``dp_options`` go to the DP's CAVI fit), e.g.
        ``nuts_options={"draws": 500, "chains": 4}``. EM must stay maximum likelihood
        (``prior="none"``): BIC, AIC and ICL are defined there.
    dp_truncation : int, optional
        The DP's truncation level T, from max(ks) to n_samples; default max(ks) +
        :data:`DP_EXTRA_COMPONENTS` (at most n_samples): room for the occupied count to
        exceed max(ks), and the last stick's weight checks that T was enough.

    Returns
    -------
    SelectK
        ``.table`` (index K; columns the criteria, ``smc_se``, ``loo_se``), ``.choices``,
        ``.differences`` / ``.difference_se``, ``.flags``, ``.missing``, ``.notes``,
        ``.seconds`` (per source), ``.to_markdown()``, ``.plot()``.

    Notes
    -----
    The module docs give each criterion's convention and the log K! correction.
    """
    data, ks_, chosen, truncation = check_arguments(points, spec, ks, criteria, dp_truncation)
    seed = check_seed(random_seed)
    options = {
        "cavi": _check_options("cavi_options", cavi_options),
        "em": _check_options("em_options", em_options),
        "smc": _check_options("smc_options", smc_options),
        "nuts": _check_options("nuts_options", nuts_options),
        "dp": _check_options("dp_options", dp_options),
    }
    if options["em"].get("prior", "none") != "none":
        raise ValueError(
            f"em_options: expected prior='none' (BIC, AIC and ICL are defined at the "
            f"maximum-likelihood estimate), got prior={options['em']['prior']!r}. Drop it."
        )
    run = _Runner(data, seed, bool(progressbar))
    rows: dict[int, dict[str, Cell]] = {}
    for k in ks_:
        logger.info("select_k: K = %d", k)
        rows[k] = _cells_for_k(run, spec, k, set(chosen), options)
    notes: dict[str, str] = {}
    if "dp" in chosen:
        dp_cells, notes["dp"] = _dp_cells(run, spec, ks_, truncation, options["dp"])
        for k in ks_:
            rows[k]["dp"] = dp_cells[k]
    return _assemble(rows, chosen, ks_, spec, data.shape[0], run.seconds, notes)


def _assemble(
    rows: Mapping[int, Mapping[str, Cell]],
    chosen: tuple[str, ...],
    ks: tuple[int, ...],
    spec: MixtureSpec,
    n_samples: int,
    seconds: Mapping[str, float],
    notes: dict[str, str],
) -> SelectK:
    """The table, choices, differences and flags from the cells."""
    columns: dict[str, list[float]] = {}
    flags: dict[str, dict[int, str]] = {}
    missing: dict[str, dict[int, str]] = {}
    pointwise: dict[int, np.ndarray] = {}
    for name in chosen:
        columns[name] = [rows[k][name].value for k in ks]
        if CRITERIA[name].has_se:
            columns[f"{name}_se"] = [rows[k][name].se for k in ks]
        for k in ks:
            cell = rows[k][name]
            if cell.flag:
                _add_flag(flags, name, k, cell.flag)
            if cell.missing:
                missing.setdefault(name, {})[k] = cell.missing
            if name == "loo" and cell.extra is not None:
                pointwise[k] = cell.extra
    table = pd.DataFrame(columns, index=pd.Index(ks, name="K"))
    if "smc" in chosen and "exact" in chosen:  # the rule: SMC within 3 se of the truth
        for k in ks:
            smc, se, exact = table.loc[k, ["smc", "smc_se", "exact"]]
            if np.isfinite(exact) and np.isfinite(se) and abs(smc - exact) > SMC_EXACT_SE * se:
                _add_flag(flags, "smc", k, f"{smc - exact:+.3f} nats from the exact value (> 3 se)")
    choices = {name: _choice(name, table[name], pointwise) for name in chosen}
    diff, diff_se = _differences(table, chosen, choices, pointwise)
    return SelectK(
        table=table,
        choices=choices,
        differences=diff,
        difference_se=diff_se,
        flags=flags,
        missing=missing,
        notes=notes,
        criteria=chosen,
        spec=spec,
        n_samples=n_samples,
        seconds=dict(seconds),
    )
