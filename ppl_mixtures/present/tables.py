"""Markdown tables of a comparison: pure functions, data in, text out (no files, no figures).

:func:`comparison_markdown` is what ``Comparison.to_markdown()`` prints (the engine table,
the reference's strength, log p(x), the exact grades, the parameter, sd-ratio and
Wasserstein tables, the rules); :func:`headline_table` is a report's first table (one row
per dataset and engine); :func:`data_summary` and :func:`settings_table` are a report
section's data and settings tables. The cell formats (:func:`fmt_number`,
:func:`fmt_estimate`, :func:`khat_cell`) are shared with the figures' legends.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ppl_mixtures.analysis.summaries import correlation_label, split_parameter, wide
from ppl_mixtures.analysis.verdicts import KHAT_TOL, MEAN_SHIFT_TOL

if TYPE_CHECKING:
    from ppl_mixtures.analysis.comparison import Comparison

__all__ = [
    "comparison_markdown",
    "data_summary",
    "fmt_estimate",
    "fmt_mean_sd",
    "fmt_number",
    "headline_table",
    "khat_cell",
    "markdown_table",
    "parameter_table",
    "settings_table",
]

#: The headline names the parameter with the largest shift when its label is this short.
_SHORT_PARAMETER = 14


# --------------------------------------------------------------------------- cells
def fmt_number(value: Any, digits: int) -> str:
    """A table cell: "–" for None/NaN/inf, "yes"/"no" for booleans, ints as they are,
    other numbers with ``digits`` decimals."""
    if value is None or (isinstance(value, float | np.floating) and not np.isfinite(value)):
        return "–"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    return f"{float(value):.{digits}f}"


def fmt_mean_sd(mean: Any, sd: Any, digits: int) -> str:
    """ "mean ± sd" with ``digits`` decimals ("–" without a mean, the mean alone without sd)."""
    if mean is None or not np.isfinite(mean):
        return "–"
    if sd is None or not np.isfinite(sd):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"


def fmt_estimate(mean: Any, se: Any) -> str:
    """An estimate and its se, with enough decimals to show the se (2 significant digits).

    se 0.51 -> "-321.87 ± 0.51", se 0.033 -> "-320.797 ± 0.033", se 0 -> "-322.1 ± 0".
    """
    if mean is None or not np.isfinite(mean):
        return "–"
    if se is None or not np.isfinite(se):
        return f"{mean:.1f}"
    if se == 0:
        return f"{mean:.1f} ± 0"
    digits = int(min(3, max(1, 1 - math.floor(math.log10(se)))))
    return f"{mean:.{digits}f} ± {se:.{digits}f}"


def khat_cell(value: Any, note: str = "") -> str:
    """Pareto k-hat with its reading ("0.42 (usable)"); "not computed" when a note says why."""
    if value is None or np.isnan(value):
        return "not computed" if note else "–"
    if value == -np.inf:  # constant ratios p/q: q is the posterior (usable)
        return "-inf (q = p, usable)"
    return f"{value:.2f} ({'usable' if value < KHAT_TOL else 'unreliable'})"


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    """A GitHub-flavoured markdown table (no dependency on ``tabulate``); pipes escaped."""
    lines = [
        "| " + " | ".join(_cell(h) for h in header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# --------------------------------------------------------------------------- one comparison
def _label(comparison: Comparison, parameter: str, with_unit: bool = True) -> str:
    """A parameter's table label: the comparison's (feature names and units), and for a
    correlation ``obs_corr[k,i,j]`` "corr[k: name_i, name_j]" (unit-free)."""
    if split_parameter(parameter)[0] == "obs_corr":
        return correlation_label(parameter, comparison.feature_names)
    return comparison.parameter_label(parameter, with_unit=with_unit)


def _engine_table(comparison: Comparison) -> str:
    eng = comparison.engines
    has_khat = bool((eng["family"] == "vi").any())
    header = [
        "engine", "family", "chains x draws", "build (s)", "run (s)", "ELBO (nats)",
        "log p(x) estimate (nats)", *(["k-hat"] if has_khat else []),
        "sd ratio", "max shift (ref sd)", "max R-hat", "verdict",
    ]  # fmt: skip
    rows = []
    for name, r in eng.iterrows():
        evidence = fmt_estimate(r["log_evidence"], r["log_evidence_se"])
        if r["evidence_flags"]:
            evidence += f" ({', '.join(r['evidence_flags'])})"
        shift = fmt_number(r["max_mean_shift"], 2)
        worst = r["max_shift_parameter"]
        if worst and r["max_mean_shift"] > MEAN_SHIFT_TOL:
            if split_parameter(worst)[0] == "obs_corr":
                worst = correlation_label(worst, comparison.feature_names)
            shift += f" ({worst})"
        khat = [khat_cell(r["khat"], r["khat_note"])] if has_khat else []
        rows.append([
            name, r["family"], f"{r['chains']}x{r['draws']}", fmt_number(r["build_s"], 2),
            fmt_number(r["run_s"], 2), fmt_estimate(r["elbo"], r["elbo_se"]), evidence,
            *khat, fmt_number(r["sd_ratio"], 2), shift, fmt_number(r["rhat_max"], 3),
            r["verdict"],
        ])  # fmt: skip
    blanks = [""] * (len(header) - 2)
    rows += [
        [name, *blanks, f"not applicable: {why}"] for name, why in comparison.not_applicable.items()
    ]
    return markdown_table(header, rows)


def _exact_table(comparison: Comparison) -> str:
    rows = [
        [
            name,
            fmt_number(r["cocluster_max_err"], 3),
            fmt_number(r["predictive_mean_err"], 4),
            fmt_number(r["evidence_err"], 2),
        ]
        for name, r in comparison.engines.iterrows()
    ]
    header = [
        "engine",
        "max |co-clustering - exact|",
        "mean |log pred - exact| (nats)",
        "log p(x) or ELBO - exact (nats)",
    ]
    return markdown_table(header, rows)


def parameter_table(comparison: Comparison, digits: int = 3) -> str:
    """Posterior mean ± sd of every parameter per engine, in the data's own units and
    feature names when known (with a sentence saying so)."""
    data_units = comparison.parameters_in_data_units()
    names = list(comparison.fits)
    means, sds = wide(data_units, "mean", names), wide(data_units, "sd", names)
    where = " in the data's own units" if comparison.data_transform is not None else ""
    out = [
        f"Posterior mean ± sd of each parameter{where} (components aligned to the "
        f"reference, {comparison.reference}):\n"
    ]
    note = comparison.units_note()
    if note and (data_units["group"] == "obs_corr").any():
        note += (
            " Correlations corr[k: i, j] are unit-free: the same in standardized and data units."
        )
    if note:
        out.append(note + "\n")
    rows = [
        [
            _label(comparison, p),
            *(fmt_mean_sd(means.loc[p, n], sds.loc[p, n], digits) for n in names),
        ]
        for p in means.index
    ]
    out.append(markdown_table(["parameter", *names], rows))
    return "\n".join(out)


def _spread_tables(comparison: Comparison, digits: int) -> list[str]:
    """The sd-ratio and Wasserstein-1 tables of every engine but the reference."""
    others = [n for n in comparison.fits if n != comparison.reference]
    if not others:
        return []
    ratio = comparison.wide_table("sd_ratio")
    w1 = wide(comparison.parameters_in_data_units(), "wasserstein", list(comparison.fits))

    def label(p: str, with_unit: bool = True) -> str:
        return _label(comparison, p, with_unit)

    return [
        f"\nsd ratio engine / {comparison.reference} (1 = same width; mean-field VI "
        "is usually < 1):\n",
        markdown_table(
            ["parameter", *others],
            [
                [label(p, with_unit=False), *(fmt_number(ratio.loc[p, n], 2) for n in others)]
                for p in ratio.index
            ],
        ),
        f"\nWasserstein-1 distance between each engine's draws and "
        f"{comparison.reference}'s (parameter units; 0 = same distribution):\n",
        markdown_table(
            ["parameter", *others],
            [[label(p), *(fmt_number(w1.loc[p, n], digits) for n in others)] for p in ratio.index],
        ),
    ]


def comparison_markdown(comparison: Comparison, *, digits: int = 3, rules: bool = True) -> str:
    """The engine table, the reference's strength, log p(x), then the parameters.

    Parameters
    ----------
    comparison : Comparison
    digits : int
        Decimals of the parameter and Wasserstein tables.
    rules : bool
        Append the verdict rules (a report with many datasets prints them once).
    """
    out = [_engine_table(comparison), "", comparison.reference_line()]
    evidence = comparison.evidence_line()
    if evidence:
        out.append(evidence)
    if comparison.graded_by == "exact":
        out.append(
            "\nEvery engine against the exact posterior (enumeration; label-"
            "invariant, so no relabeling is involved):\n"
        )
        out.append(_exact_table(comparison))
    out.append("")
    out.append(parameter_table(comparison, digits))
    out += _spread_tables(comparison, digits)
    if rules:
        out += ["", comparison.rules_text()]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- reports
def _shift_cell(row: Mapping[str, Any]) -> str:
    """The max shift in reference sd, with the parameter when it is beyond the tolerance."""
    text = fmt_number(row["max_mean_shift"], 2)
    parameter = row.get("max_shift_parameter")
    if (
        parameter
        and len(str(parameter)) <= _SHORT_PARAMETER
        and np.isfinite(row["max_mean_shift"])
        and row["max_mean_shift"] > MEAN_SHIFT_TOL
    ):
        text += f" ({parameter})"
    return text


def _evidence_cell(row: Mapping[str, Any]) -> str:
    """log p(x) as estimate ± se, with the flags the fit or compare attached."""
    text = fmt_estimate(row["log_evidence"], row["log_evidence_se"])
    flags = row.get("evidence_flags")
    if text != "–" and flags:
        text += f" ({', '.join(flags)})"
    return text


def _seconds(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.0f}"


def headline_table(comparisons: Mapping[str, Comparison]) -> str:
    """A report's headline table: one row per dataset and engine (and not-applicable
    engine), with time, sd ratio, max shift, ELBO, log p(x), k-hat (when any fit is VI)
    and the verdict."""
    has_khat = any(bool((c.engines["family"] == "vi").any()) for c in comparisons.values())
    rows = []
    for dataset, comp in comparisons.items():
        for name, r in comp.engines.iterrows():
            khat = (
                [khat_cell(r.get("khat", np.nan), r.get("khat_note", "")) if r["family"] == "vi"
                 else "–"]
                if has_khat
                else []
            )  # fmt: skip
            rows.append([
                dataset, name, r["family"], _seconds(r["total_s"]), fmt_number(r["sd_ratio"], 2),
                _shift_cell(r), fmt_estimate(r["elbo"], r.get("elbo_se", np.nan)),
                _evidence_cell(r), *khat, r["verdict"],
            ])  # fmt: skip
        blanks = [""] * (6 + has_khat)
        rows += [
            [dataset, name, *blanks, f"not applicable: {why}"]
            for name, why in comp.not_applicable.items()
        ]
    header = [
        "dataset", "engine", "family", "time (s)", "sd ratio", "max shift (ref sd)",
        "ELBO (nats)", "log p(x) estimate (nats)", *(["k-hat"] if has_khat else []), "verdict",
    ]  # fmt: skip
    return markdown_table(header, rows)


def data_summary(comparison: Comparison) -> str:
    """Mean, sd, min and max of each feature, in the data's own units and names when the
    comparison knows them (the fits may have seen standardized data)."""
    points = comparison.points
    if comparison.data_transform is not None:
        center, scale = comparison.data_transform
        points = center + scale * points
    names = comparison.feature_names or tuple(f"feature {d}" for d in range(points.shape[1]))
    units = comparison.units
    labels = [
        name if units is None else f"{name} ({units if isinstance(units, str) else units[d]})"
        for d, name in enumerate(names)
    ]
    rows = [
        [labels[d], f"{col.mean():.3f}", f"{col.std():.3f}", f"{col.min():.3f}", f"{col.max():.3f}"]
        for d, col in enumerate(points.T)
    ]
    head = f"{points.shape[0]} points, {points.shape[1]} feature(s)"
    if comparison.data_transform is not None:
        head += " (in the data's own units; the engines fitted them standardized)"
    return head + ".\n\n" + markdown_table(["", "mean", "sd", "min", "max"], rows)


def settings_table(comparison: Comparison) -> str:
    """Each fit's engine, options (with random_seed), iterations and convergence."""
    rows = []
    for name, fit in comparison.fits.items():
        options = ", ".join(f"{k}={v!r}" for k, v in fit.options.items()) or "(defaults)"
        iterations = fit.n_iter if fit.n_iter is not None else "–"
        converged = {True: "yes", False: "no", None: "–"}[fit.converged]
        rows.append([name, fit.engine, options, iterations, converged])
    header = ["fit", "engine", "options (incl. random_seed)", "iterations", "converged"]
    return markdown_table(header, rows)
