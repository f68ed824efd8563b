""":class:`SelectK`, what :func:`ppl_mixtures.select_k` returns: the table, each criterion's
choice, the differences from it, the flags, and the table as markdown."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ppl_mixtures.analysis.select_k_criteria import CRITERIA, Cell
from ppl_mixtures.model.spec import MixtureSpec

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["LOO_MIN_NATS", "LOO_SE", "RULES", "SMC_EXACT_SE", "SelectK", "assemble"]

#: Each criterion's rule, in words (reports and docs print these).
RULES: dict[str, str] = {
    "elbo": "CAVI's ELBO, a lower bound of log p(x): the largest wins.",
    "elbo_logk": (
        "ELBO + log K!: log p(x) when the K! label modes of the posterior do not overlap "
        "(a mean-field q sits in one of them); the largest wins."
    ),
    "smc": "SMC's estimate of log p(x) (± se over independent runs): the largest wins.",
    "exact": "log p(x) by enumerating all K^N assignments: the largest wins.",
    "loo": (
        "NUTS's PSIS-LOO elpd (± se): the smallest K within max(4, 2 se_diff) nats of the "
        "largest (se_diff: the paired se of the difference)."
    ),
    "bic": "BIC = -2 log L + p log N at EM's maximum-likelihood estimate: the smallest wins.",
    "aic": "AIC = -2 log L + 2 p at the same estimate: the smallest wins.",
    "icl": (
        "ICL = BIC + 2 x the entropy of the soft assignments (penalizes overlapping "
        "components): the smallest wins."
    ),
    "dp": (
        "the posterior probability of K occupied components under a truncated "
        "Dirichlet-process mixture (one CAVI fit): the most probable K wins."
    ),
}


def _number(value: float, name: str) -> str:
    if name == "dp":
        return f"{value:.3f}"
    return f"{value:,.2f}"


def _se(se: float) -> str:
    if not np.isfinite(se):
        return " ± ?"
    digits = int(min(3, max(1, 1 - math.floor(math.log10(se))))) if se > 0 else 2
    return f" ± {se:.{digits}f}"


@dataclass(frozen=True, eq=False)
class SelectK:
    """Every criterion for choosing K, one row per K (:func:`ppl_mixtures.select_k`).

    Attributes
    ----------
    table : pandas.DataFrame
        Index ``K``; one column per criterion (``elbo``, ``elbo_logk``, ``smc``, ``exact``,
        ``loo``, ``bic``, ``aic``, ``icl``, ``dp``), plus ``smc_se`` and ``loo_se``. nats
        for the log-evidence and elpd columns; BIC units (-2 log L scale) for BIC, AIC and
        ICL; a probability for ``dp``. NaN only where :attr:`missing` says why.
    choices : dict of str -> int or None
        Each criterion's K (None unless every row has a value: a partial column cannot
        choose). The DP's is the mode of P(K occupied | x) over K = 0..T, which may lie
        outside ks (the note says so).
    differences : pandas.DataFrame
        value - value at the criterion's choice (nats or BIC units), per criterion but dp.
    difference_se : pandas.DataFrame
        Its standard error where there is one (``smc``: the two runs' se combined;
        ``loo``: the paired se of the pointwise difference).
    flags : dict of str -> dict of int -> str
        criterion -> K -> why this number is not to be trusted.
    missing : dict of str -> dict of int -> str
        criterion -> K -> why there is no number.
    notes : dict of str -> str
        Criterion-level notes (the DP's truncation and effective number).
    criteria : tuple of str
    spec : MixtureSpec
        The spec each row used (with its own ``n_components``).
    n_samples : int
    seconds : dict of str -> float
        Wall time per source: ``cavi``, ``em``, ``exact``, ``smc``, ``nuts``, ``dp``.
    """

    table: pd.DataFrame
    choices: dict[str, int | None]
    differences: pd.DataFrame
    difference_se: pd.DataFrame
    flags: dict[str, dict[int, str]]
    missing: dict[str, dict[int, str]]
    notes: dict[str, str]
    criteria: tuple[str, ...]
    spec: MixtureSpec
    n_samples: int
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def ks(self) -> tuple[int, ...]:
        """The K of the rows."""
        return tuple(int(k) for k in self.table.index)

    def cell_text(self, name: str, k: int) -> str:
        """One cell as the markdown table shows it: value (± se), "—" when missing, a
        dagger when flagged, bold at the criterion's choice."""
        value = float(self.table.loc[k, name])
        if not np.isfinite(value):
            return "—"
        text = _number(value, name)
        if CRITERIA[name].has_se:
            text += _se(float(self.table.loc[k, f"{name}_se"]))
        if self.choices.get(name) == k:
            text = f"**{text}**"
        if k in self.flags.get(name, {}):
            text += " †"
        return text

    def choice_lines(self) -> list[str]:
        """One line per criterion: its choice, its units and its rule."""
        lines = []
        for name in self.criteria:
            k = self.choices.get(name)
            absent = sorted(self.missing.get(name, {}))
            chosen = f"K = {k}" if k is not None else "no choice"
            if k is None and absent:
                chosen += f" (no value at K = {', '.join(map(str, absent))})"
            flags = self.flags.get(name, {})
            # the DP's one fit flags every row alike; its choice may lie outside ks
            flagged = k is not None and (k in flags or (name == "dp" and bool(flags)))
            suffix = " (flagged: see below)" if flagged else ""
            lines.append(f"- **{CRITERIA[name].label}**: {chosen}{suffix}. {RULES[name]}")
        return lines

    def footnotes(self) -> list[str]:
        """The flags (†) and the reasons for "—", one line each; then the notes."""
        lines = []
        for name in self.criteria:
            for k, text in sorted(self.flags.get(name, {}).items()):
                lines.append(f"- † {CRITERIA[name].label}, K = {k}: {text}")
        for name in self.criteria:
            reasons = self.missing.get(name, {})
            for reason in dict.fromkeys(reasons.values()):
                where = ", ".join(str(k) for k, r in reasons.items() if r == reason)
                lines.append(f"- — {CRITERIA[name].label}, K = {where}: {reason}")
        for name, text in self.notes.items():
            lines.append(f"- {CRITERIA[name].label}: {text}")
        return lines

    def to_markdown(self) -> str:
        """The table (bold: each criterion's choice; †: flagged; —: not computed), the
        choices with their rules, and the footnotes."""
        header = ["K", *(f"{CRITERIA[c].label} ({CRITERIA[c].units})" for c in self.criteria)]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for k in self.ks:
            cells = [str(k), *(self.cell_text(c, k) for c in self.criteria)]
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", "Choices:", *self.choice_lines()]
        notes = self.footnotes()
        if notes:
            lines += ["", "Notes:", *notes]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_markdown()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON: the table (NaN as None), choices, flags, missing reasons, notes."""

        def clean(value: float) -> float | None:
            return float(value) if np.isfinite(value) else None

        return {
            "ks": list(self.ks),
            "criteria": list(self.criteria),
            "table": {
                col: {str(k): clean(v) for k, v in self.table[col].items()}
                for col in self.table.columns
            },
            "choices": dict(self.choices),
            "flags": {c: {str(k): t for k, t in f.items()} for c, f in self.flags.items()},
            "missing": {c: {str(k): t for k, t in m.items()} for c, m in self.missing.items()},
            "notes": dict(self.notes),
            "rules": {c: RULES[c] for c in self.criteria},
            "seconds": dict(self.seconds),
            "n_samples": self.n_samples,
            "spec": {k: v for k, v in self.spec.to_dict().items() if k != "n_components"},
        }

    def plot(self, **kwargs: Mapping[str, Any]) -> Figure:
        """The differences from each criterion's best K
        (:func:`ppl_mixtures.present.plots.plot_select_k`)."""
        # A shortcut for users, like MixtureFit.plot_* and Comparison.plot_*: the figure
        # module is imported at call time (nothing below `present` calls this); the layer
        # contract declares this edge (pyproject.toml, ignore_imports).
        from ppl_mixtures.present.plots import plot_select_k

        return plot_select_k(self, **kwargs)


# --------------------------------------------------------------------------- assembly
#: SMC farther from the exact log p(x) than this many se is flagged.
SMC_EXACT_SE = 3.0
#: LOO's choice: the smallest K within max(LOO_MIN_NATS, LOO_SE * se_diff) of the best.
LOO_MIN_NATS, LOO_SE = 4.0, 2.0


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


def assemble(
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
