"""`compare(fits, reference="nuts")`: put every engine's answer beside a reference answer.

Each fit is first made label-consistent (the reference with itself, every other fit onto
the reference's posterior-mean means, see :mod:`ppl_mixtures.analysis.relabel`), then each
model parameter (``means[k,d]``, ``weights[k]``, ``obs_sd[k,d]`` when learned) is
summarized per engine (:mod:`~ppl_mixtures.analysis.summaries`), and each engine gets one
verdict a student can read, saying *why*: which parameter moved and by how much, whether the
engine converged by its own test, and whether a width difference is a property of its
variational family. The rules and thresholds live in :mod:`~ppl_mixtures.analysis.verdicts`
(re-exported here); :func:`verdict_rules` states them in words (reports print it). What the
fits are judged against (the same question, the exact posterior, log p(x)) is in
:mod:`~ppl_mixtures.analysis.references`; the result is a
:class:`~ppl_mixtures.analysis.comparison.Comparison` (data only: its markdown is rendered by
:mod:`ppl_mixtures.present.tables`).

Only numpy and scipy are imported at module level; pandas (the tables) and arviz (R-hat,
ESS, MCSE) are imported when a comparison is built.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ppl_mixtures.analysis.comparison import Comparison
from ppl_mixtures.analysis.references import (
    check_same_question,
    default_parameter_reference,
    evidence_source,
    exact_posterior,
    grade_exact,
    grade_khats,
)
from ppl_mixtures.analysis.summaries import align, engine_row, parameter_rows
from ppl_mixtures.analysis.verdicts import (
    ELBO_GAP_TOL,
    ELBO_SE_Z,
    ESS_MIN,
    EVIDENCE_Z,
    KHAT_MAX_SAMPLES,
    KHAT_TOL,
    LABEL_SWITCH_FRACTION,
    MCSE_Z,
    MEAN_SHIFT_TOL,
    REF_MIN_CHAINS,
    RHAT_TOL,
    SD_RATIO_TOL,
    VARIATIONAL_FAMILIES,
    flag_evidence_below_elbos,
    mark_elbo_shortfalls,
    reference_weakness,
    verdict,
    verdict_rules,
)
from ppl_mixtures.results import MixtureFit
from ppl_mixtures.validation import check_real

__all__ = [
    "ELBO_GAP_TOL",
    "ELBO_SE_Z",
    "ESS_MIN",
    "EVIDENCE_Z",
    "KHAT_MAX_SAMPLES",
    "KHAT_TOL",
    "LABEL_SWITCH_FRACTION",
    "MCSE_Z",
    "MEAN_SHIFT_TOL",
    "REF_MIN_CHAINS",
    "RHAT_TOL",
    "SD_RATIO_TOL",
    "VARIATIONAL_FAMILIES",
    "Comparison",
    "compare",
    "verdict_rules",
]


def _check_arguments(fits: Any, khat: Any, log_evidence: Any) -> float | None:
    """TypeError/ValueError for bad ``fits``, ``khat`` or ``log_evidence``; the latter
    checked (a float, or None)."""
    if not isinstance(fits, Mapping) or not fits:
        raise TypeError(
            f"fits: expected a non-empty mapping of name -> MixtureFit, got "
            f"{type(fits).__name__}. Pass e.g. {{'nuts': nuts_fit, 'cavi': cavi_fit}}."
        )
    for key, fit in fits.items():
        if not isinstance(fit, MixtureFit):
            raise TypeError(
                f"fits[{key!r}]: expected a MixtureFit, got {type(fit).__name__}. "
                f"Pass the result of ppl_mixtures.fit(...)."
            )
    if not ((isinstance(khat, str) and khat == "auto") or isinstance(khat, bool | np.bool_)):
        raise TypeError(
            f"khat: expected 'auto', True or False, got {khat!r}. Pass "
            f"khat='auto' (k-hat up to {KHAT_MAX_SAMPLES:,} observations), "
            f"True or False."
        )
    if log_evidence is None:
        return None
    return check_real(
        "log_evidence", log_evidence, hint="Pass log p(x) in nats, e.g. -320.8, or None"
    )


def compare(
    fits: Mapping[str, MixtureFit],
    reference: str = "nuts",
    *,
    not_applicable: Mapping[str, str] | None = None,
    log_evidence: float | None = None,
    name: str | None = None,
    khat: bool | str = "auto",
    feature_names: Sequence[str] | None = None,
    units: str | Sequence[str] | None = None,
    data_transform: tuple[Any, Any] | None = None,
) -> Comparison:
    """Compare fits of one spec on one dataset against a reference fit.

    Parameters
    ----------
    fits : Mapping[str, MixtureFit]
        Fits by display name (usually the engine name), all of the same spec and data
        (checked by fingerprint: ``MixtureFit.spec_fingerprint`` / ``data_fingerprint``).
    reference : str
        The key of the fit the others are judged against (usually long-run NUTS), or
        ``"exact"``: every fit is also graded against the exact posterior by enumeration
        (label-invariant: max ``abs(co-clustering - exact)``, mean
        ``abs(log predictive density - exact)`` on the data, and log p(x) estimates or
        ELBOs against the exact log p(x)).
        The limit: K^N <= ``evidence.MAX_ASSIGNMENTS`` (2,000,000: N <= 20 at K = 2,
        13 at K = 3, 10 at K = 4) and a known obs_sd. The parameter tables then align to
        "nuts" if given, else to the MCMC fit with the most draws.
    not_applicable : Mapping[str, str], optional
        Engines that could not serve the spec, with the reason, listed in tables.
    log_evidence : float, optional
        A known log p(x) in nats. By default the reference's ``fit.evidence``
        (e.g. SMC's estimate, shown with its se and flags), or any fit's, is used.
    name : str, optional
        Dataset name, for titles.
    khat : {"auto", True, False}
        Compute the Pareto k-hat of p/q for every VI fit (``diagnostics.vi_khat``;
        column ``khat``, < ``KHAT_TOL`` = 0.7 usable). "auto" (default): only up to
        ``KHAT_MAX_SAMPLES`` (5,000) observations, since it costs 4000 evaluations of
        log p(x, theta) on all the data; beyond that the column says why it is missing
        (``khat_note``). True: always; False: never.
    feature_names : sequence of str, optional
        One name per feature (e.g. a CSV's column names), for tables and figures.
    units : str or sequence of str, optional
        The data's unit, one or one per feature (e.g. "min").
    data_transform : (center, scale), optional
        When the fits ran on standardized data ``(x - center) / scale`` (e.g.
        ``points, center, scale = datasets.standardize(raw)``): the printed parameter
        tables and the figures are in the data's own units (see
        :meth:`Comparison.parameters_in_data_units`); ``parameters`` and the verdicts are
        unchanged (shifts and sd ratios do not depend on the units).

    Returns
    -------
    Comparison

    Raises
    ------
    ValueError
        When ``reference`` is not a key of ``fits`` (nor "exact"), a fit's spec or data
        differ from the reference's (the message names each such fit and what differs),
        or ``reference="exact"`` is beyond the enumeration limit or has a learned obs_sd.
    TypeError
        When a value is not a MixtureFit.

    Notes
    -----
    Verdict rules (the thresholds are module constants, also in ``to_dict()`` and in
    words in :func:`verdict_rules`):

    - the reference: "reference", or "reference (weak: ...)" unless it has >= 4 chains,
      every free parameter R-hat <= ``RHAT_TOL`` (1.01) and bulk ESS >= ``ESS_MIN`` (400);
    - "label-switched (fixed by relabeling)": >= ``LABEL_SWITCH_FRACTION`` (1 %) of the
      fit's draws changed labels when aligned to the fit's own consensus, and the max
      R-hat after relabeling is <= ``RHAT_TOL`` (or there is one chain);
    - "chains disagree (R-hat r > 1.01)": no switching, but max R-hat > ``RHAT_TOL``;
    - "did not converge (...)": ``fit.converged is False`` (the engine's own test), or
      the ELBO is more than max(``ELBO_GAP_TOL`` nat, ``ELBO_SE_Z`` se) below that of a
      fit of the same or a contained variational family (``VARIATIONAL_FAMILIES``); such
      a fit's width is shown as "sd ratio r x", never as a property of its method;
    - "point estimate (no uncertainty)": a single draw (EM, MAP);
    - "<parameter> s reference sd above/below": per group (means, weights, obs_sd), the
      largest shift that exceeds both ``MEAN_SHIFT_TOL`` (1) reference sd and ``MCSE_Z``
      (3) x sqrt(mcse_ref^2 + mcse_engine^2);
    - "too narrow/wide by r x" (MCMC) or "[converged; ]q too narrow/wide by r x (<family>
      family)" (VI): the geometric mean over the free parameters of sd / reference sd is
      outside [1/``SD_RATIO_TOL``, ``SD_RATIO_TOL``] (1.1);
    - "agrees (sd ratio r x)": none of the above; the ratio is always shown.

    Free parameters: those the reference varies (fixed weights are left out), and of the
    K weights only the first K-1 (the last is determined by them).
    """
    import pandas as pd

    log_evidence = _check_arguments(fits, khat, log_evidence)
    graded_by = None
    if reference == "exact" and "exact" not in fits:
        graded_by, reference = "exact", default_parameter_reference(fits)
    if reference not in fits:
        raise ValueError(
            f"reference: expected one of the fits given ({', '.join(fits)}) or "
            f"'exact', got {reference!r}. Pass reference=<one of those>, or add "
            f"that fit."
        )
    check_same_question(fits, reference)
    exact = exact_posterior(fits[reference]) if graded_by == "exact" else None
    aligned = align(fits, reference)
    params = pd.DataFrame(parameter_rows(aligned, reference))
    rows = {key: engine_row(key, fit, params) for key, fit in aligned.items()}
    mark_elbo_shortfalls(rows)
    if khat:
        grade_khats(rows, aligned, limit=KHAT_MAX_SAMPLES if khat == "auto" else None)
    if exact is not None:
        grade_exact(rows, aligned, exact)
    flag_evidence_below_elbos(rows)
    weak = reference_weakness(rows[reference])
    rows[reference]["reference_weak"] = "; ".join(weak)
    for key, row in rows.items():
        mine = params[(params["engine"] == key) & params["free"] & params["significant"]]
        row["verdict"] = verdict(row, key == reference, mine.to_dict(orient="records"))
        for private in ("rhat_after", "reference_weak", "exact_parts"):
            row.pop(private, None)
    engines = pd.DataFrame.from_dict(rows, orient="index")
    engines.index.name = "engine"
    evidence = evidence_source(fits, reference, rows, exact=exact, given=log_evidence)
    return Comparison(
        reference=reference,
        fits=aligned,
        parameters=params.drop(columns="_ref_sd"),
        engines=engines,
        not_applicable=dict(not_applicable or {}),
        log_evidence=evidence["value"],
        name=name,
        log_evidence_source=evidence["source"],
        log_evidence_se=evidence["se"],
        log_evidence_method=evidence["method"],
        log_evidence_flags=evidence["flags"],
        reference_weak_reasons=tuple(weak),
        graded_by=graded_by,
        exact_log_evidence=None if exact is None else float(exact.log_evidence),
        feature_names=feature_names,
        units=units,
        data_transform=data_transform,
    )
