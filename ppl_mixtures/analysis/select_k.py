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

from ppl_mixtures.analysis import select_k_criteria as crit
from ppl_mixtures.analysis.select_k_checks import (
    DEFAULT_CRITERIA,
    DP_EXTRA_COMPONENTS,
    check_arguments,
    check_options,
    spec_for,
)
from ppl_mixtures.analysis.select_k_criteria import CRITERIA, Cell
from ppl_mixtures.analysis.select_k_table import SelectK, assemble
from ppl_mixtures.model.spec import MixtureSpec
from ppl_mixtures.results import ConvergenceWarning
from ppl_mixtures.validation import EvidenceWarning, check_seed

__all__ = [
    "CRITERIA",
    "DEFAULT_CRITERIA",
    "DP_EXTRA_COMPONENTS",
    "SelectK",
    "check_arguments",
    "select_k",
]

logger = logging.getLogger(__name__)

#: Draws from the DP fit's q whose z draws give P(K | x) (Monte Carlo sd of each
#: probability at most sqrt(0.25 / 100) = 0.05; ``dp_options={"n_draws": ...}`` for more).
DP_DRAWS = 100
#: select_k's default EM tolerance (relative change of the log-likelihood), looser than the
#: engine's 1e-10: an overfitted K (an empty or split component) converges slowly, and at
#: 1e-10 EM stops at max_iter there (measured: K = 5, 6 on 10^5 points, 5 x 1000
#: iterations); at 1e-8 it converges in 232 and 325 iterations. A step then changes log L
#: by at most 1e-8 |log L| (3e-3 nats at log L = -3.4e5), far below the BIC differences
#: that decide K (>= 2 units). ``em_options={"tol": 1e-10}`` restores the engine's.
EM_TOL = 1e-8


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
    random_seed: int | None
    progressbar: bool
    seconds: dict[str, float] = field(default_factory=dict)

    def fit(self, source: str, spec: MixtureSpec, engine: str, options: Mapping[str, Any]) -> Any:
        from ppl_mixtures.inference.fit import fit

        opts = {"random_seed": self.random_seed, "progressbar": self.progressbar, **options}
        start = time.perf_counter()
        with warnings.catch_warnings():
            # the table flags what these warn about (fit.converged, evidence.flags); other
            # warnings (the data's scale, ...) reach the user
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", EvidenceWarning)
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
    spec_k = spec_for(spec, k)
    cells: dict[str, Cell] = {}
    if wanted & {"elbo", "elbo_logk"}:
        cavi = run.fit("cavi", spec_k, "cavi", {"n_draws": 10, **options["cavi"]})
        cells.update(crit.cavi_cells(cavi, k))
    if wanted & {"bic", "aic", "icl"}:
        em = run.fit("em", spec_k, "em", {"tol": EM_TOL, **options["em"]})
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
) -> tuple[dict[int, Cell], str, int]:
    """P(K occupied | x) for each K in ks from one CAVI fit with DP weights, a note, and
    the mode of P(K occupied | x) over K = 0..T (the DP's choice, which may lie outside ks)."""
    from ppl_mixtures.analysis.occupancy import TruncationWarning, occupied_components

    dp_fit = run.fit("dp", _dp_spec(spec, truncation), "cavi", {"n_draws": DP_DRAWS, **options})
    with warnings.catch_warnings():  # TruncationWarning: the flag below says it
        warnings.simplefilter("ignore", TruncationWarning)
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
    mode = int(np.argmax(pmf))
    note = (
        f"one CAVI fit with weights='dp', T = {truncation}, {dp_fit.n_draws} draws from q "
        f"(mean occupied {occ.mean:.2f} ± {occ.mean_mcse:.2f} MCSE); effective number of components "
        f"{occ.effective_number:g}; P(K outside ks) = {outside:.3g}; last stick weight "
        f"{occ.last_weight:.3g}"
    )
    if mode not in ks:
        note += f"; the most probable K, {mode}, lies outside ks"
    return cells, note, mode


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
        (``prior="none"``): BIC, AIC and ICL are defined there; its default ``tol`` here is
        :data:`EM_TOL` = 1e-8 (the engine's is 1e-10; see there why). The DP's CAVI fit
        keeps :data:`DP_DRAWS` = 100 draws from q unless ``dp_options`` says otherwise.
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
        "cavi": check_options("cavi_options", cavi_options),
        "em": check_options("em_options", em_options),
        "smc": check_options("smc_options", smc_options),
        "nuts": check_options("nuts_options", nuts_options),
        "dp": check_options("dp_options", dp_options),
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
        dp_cells, notes["dp"], dp_mode = _dp_cells(run, spec, ks_, truncation, options["dp"])
        for k in ks_:
            rows[k]["dp"] = dp_cells[k]
    result = assemble(rows, chosen, ks_, spec, data.shape[0], run.seconds, notes)
    if "dp" in chosen:  # the DP's choice is its mode over 0..T, inside ks or not
        result.choices["dp"] = dp_mode
    return result
