""":class:`SelectK`, what :func:`ppl_mixtures.select_k` returns: the table, each criterion's
choice, the differences from it, the flags, and the table as markdown."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ppl_mixtures.analysis.select_k_criteria import CRITERIA
from ppl_mixtures.model.spec import MixtureSpec

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["RULES", "SelectK"]

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
        choose).
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
            flagged = k is not None and k in self.flags.get(name, {})
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
        # module is imported at call time (nothing below `present` calls this), by name so
        # the layer contract's import graph does not see an edge it has no exception for.
        import importlib

        plots = importlib.import_module("ppl_mixtures.present.plots")
        return plots.plot_select_k(self, **kwargs)
