"""The verdict rules of :func:`ppl_mixtures.compare`: thresholds, and the sentences they give.

Every threshold is a module constant with the reasoning beside it; :func:`verdict_rules`
states them in words (reports print it). The functions here read one engine's summary row
(a dict of numbers, see :class:`ppl_mixtures.analysis.comparison.Comparison` ``engines``)
and return phrases; the cross-fit rules (ELBO below a same-family fit, log p(x) estimate
below an ELBO, the reference's strength) mark those rows. Nothing here computes a statistic
from draws: :mod:`ppl_mixtures.analysis.summaries` does that.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np

__all__ = [
    "ELBO_GAP_TOL",
    "ELBO_SE_Z",
    "ESS_MIN",
    "EVIDENCE_Z",
    "GROUPS",
    "KHAT_MAX_SAMPLES",
    "KHAT_TOL",
    "LABEL_SWITCH_FRACTION",
    "MCSE_Z",
    "MEAN_SHIFT_TOL",
    "REF_MIN_CHAINS",
    "RHAT_TOL",
    "SD_RATIO_TOL",
    "VARIATIONAL_FAMILIES",
    "finite",
    "flag_evidence_below_elbos",
    "mark_elbo_shortfalls",
    "reference_weakness",
    "thresholds",
    "variational_family",
    "verdict",
    "verdict_rules",
]

#: An engine's sds agree with the reference's when their geometric-mean ratio (over the
#: free parameters) is within [1/SD_RATIO_TOL, SD_RATIO_TOL]; outside it the verdict says
#: "too narrow/wide by r x". A reference with bulk ESS >= 400 estimates an sd to ~3.5 %
#: (relative se 1/sqrt(2 ESS)), so 10 % is about three of its standard errors.
SD_RATIO_TOL = 1.10
#: A posterior mean is shifted when ``abs(mean - reference mean)`` exceeds both this many
#: reference posterior sds and MCSE_Z combined Monte Carlo standard errors (below).
MEAN_SHIFT_TOL = 1.0
#: ... and MCSE_Z x sqrt(mcse_reference^2 + mcse_engine^2): a shift the Monte Carlo error
#: of the two means could explain is not reported.
MCSE_Z = 3.0
#: A fit "label-switched" when at least this fraction of its draws had to be relabeled
#: to agree with its own consensus labeling (between chains or inside a chain).
LABEL_SWITCH_FRACTION = 0.01
#: Chains disagree (after relabeling) when the max R-hat exceeds this (Vehtari et al. 2021).
RHAT_TOL = 1.01
#: A reference is strong when every free parameter has R-hat <= RHAT_TOL and bulk ESS >=
#: ESS_MIN and it has >= REF_MIN_CHAINS chains (each from its own start, so R-hat can see
#: chains that settled in different modes); otherwise the comparison says it is weak, and why.
ESS_MIN = 400
REF_MIN_CHAINS = 4
#: A VI fit did not converge when its final ELBO is below another fit's of the same (or a
#: nested) variational family on the same model by more than max(ELBO_GAP_TOL nats,
#: ELBO_SE_Z x sqrt(se_1^2 + se_2^2)): at the family's optimum that is impossible.
ELBO_GAP_TOL = 1.0
ELBO_SE_Z = 3.0
#: Pareto k-hat of the importance ratios p/q (PSIS; Yao et al. 2018): below this the
#: VI fit is usable for importance-sampling corrections, above it q misses mass of p.
KHAT_TOL = 0.7
#: ``compare(khat="auto")`` computes k-hat only up to this many observations: it evaluates
#: log p(x, theta) on all the data for each of 4000 draws from q (measured: ~300 s at
#: N = 100,000 on the shared 2-core machine, well under a second at N = 100).
KHAT_MAX_SAMPLES = 5_000
#: With an exact reference: an estimate of log p(x) (SMC) is off when it is more than
#: EVIDENCE_Z standard errors from the exact value; an ELBO above the exact log p(x) by
#: more than EVIDENCE_Z se (and 1e-6 nats) is impossible and is flagged.
EVIDENCE_Z = 3.0
#: Variational family of each VI engine, and the families each one contains: a fit of a
#: larger family can always reach at least the ELBO of a contained one (full-rank Gaussian
#: contains mean-field Gaussian). CAVI and SVI share the conjugate mean-field family over
#: (z, means, weights); ADVI's Gaussian families live on the marginal model, so their
#: ELBOs are not compared with CAVI's/SVI's. ``fit.details.variational_family`` overrides.
VARIATIONAL_FAMILIES = MappingProxyType(
    {
        "advi": "gaussian mean-field",
        "fullrank_advi": "gaussian full-rank",
        "cavi": "conjugate mean-field",
        "svi": "conjugate mean-field",
    }
)
_CONTAINS = MappingProxyType(
    {
        "gaussian full-rank": frozenset({"gaussian mean-field", "gaussian full-rank"}),
        "gaussian mean-field": frozenset({"gaussian mean-field"}),
        "conjugate mean-field": frozenset({"conjugate mean-field"}),
    }
)
#: Parameter groups, each judged and named separately in a verdict (obs_corr: the
#: correlations of a learned full or tied covariance, judged like any other parameter;
#: dp_alpha: a truncated DP's learned concentration).
GROUPS = ("means", "weights", "obs_sd", "obs_corr", "dp_alpha")
#: The groups the rules text names when it is not told which groups a comparison has.
_RULES_GROUPS = ("means", "weights", "obs_sd")


def thresholds() -> dict[str, float]:
    """Every threshold the verdicts use, by name (``Comparison.thresholds``, results.json)."""
    return {
        "sd_ratio_tol": SD_RATIO_TOL,
        "mean_shift_tol": MEAN_SHIFT_TOL,
        "mcse_z": MCSE_Z,
        "label_switch_fraction": LABEL_SWITCH_FRACTION,
        "rhat_tol": RHAT_TOL,
        "ess_min": ESS_MIN,
        "ref_min_chains": REF_MIN_CHAINS,
        "elbo_gap_tol": ELBO_GAP_TOL,
        "elbo_se_z": ELBO_SE_Z,
        "khat_tol": KHAT_TOL,
    }


def verdict_rules(groups: Sequence[str] = _RULES_GROUPS, *, dp: bool = False) -> str:
    """The verdict rules and every threshold, in words (a paragraph of markdown).

    ``groups``: the parameter groups of the comparison, named in the shifts rule (default
    means, weights, obs_sd; pass e.g. ``GROUPS`` when correlations are compared too).
    ``dp``: add how truncated Dirichlet-process components are aligned
    (:func:`ppl_mixtures.analysis.relabel.relabel`).
    """
    dp_rule = (
        " **DP fits**: each draw's components are matched to the reference by distances "
        "weighted by their weights (an unoccupied component's mean is a prior draw and "
        "costs almost nothing wherever it is), a VI fit's q is moved as one block, and "
        "labels are then the reference's, not stick positions (dp_sticks are dropped once "
        "labels move)."
        if dp
        else ""
    )
    return (
        "How to read the verdicts. Components are aligned to the reference before anything "
        'is compared. **Shifts**: a parameter is named ("obs_sd[0,0] 3.3 reference sd '
        f'below") when |mean - reference mean| exceeds both {MEAN_SHIFT_TOL:g} reference '
        f"posterior sd and {MCSE_Z:g} combined Monte Carlo standard errors "
        "sqrt(mcse_ref^2 + mcse_engine^2); the largest shift of each group ("
        f"{', '.join(groups)}) is named. **Width**: the sd ratio is the geometric mean over the "
        "free parameters of engine sd / reference sd (with K components only K-1 weights "
        "are free, so the last weight is left out, and parameters the reference does not "
        f"vary are left out); outside [1/{SD_RATIO_TOL:g}, {SD_RATIO_TOL:g}] the verdict "
        'says "too narrow/wide by r x" (for a converged VI fit: "converged; q too '
        'narrow by r x", a property of its variational family), and inside it '
        '"agrees" is followed by the ratio. **Convergence**: "did not converge" '
        "when the engine's own test failed (fit.converged is False), or when its ELBO is "
        f"more than max({ELBO_GAP_TOL:g} nat, {ELBO_SE_Z:g} se) below the ELBO of another "
        "fit of the same or a contained variational family (impossible at the family's "
        "optimum); the numbers of such a fit are not a property of its method. **Chains**: "
        f'"chains disagree" when max R-hat > {RHAT_TOL:g}; "label-switched" when '
        f">= {LABEL_SWITCH_FRACTION:.0%} of the draws had to be relabeled. **Reference**: "
        f"strong when it has >= {REF_MIN_CHAINS} chains, every free parameter R-hat <= "
        f"{RHAT_TOL:g} and "
        f"bulk ESS >= {ESS_MIN}; otherwise the table says it is weak and why. **k-hat** "
        f"(VI): Pareto k-hat of p/q, < {KHAT_TOL:g} usable.{dp_rule}"
    )


def finite(value: Any) -> bool:
    """True for a finite real number (None, NaN, inf and non-numbers are not)."""
    return (
        value is not None
        and isinstance(value, int | float | np.number)
        and bool(np.isfinite(value))
    )


def variational_family(engine: str, family: str, override: str | None) -> str:
    """The variational family of a VI fit ("" for other families or unknown engines)."""
    if family != "vi":
        return ""
    return str(override or VARIATIONAL_FAMILIES.get(engine, ""))


# ----------------------------------------------------------------------- phrases
def _chain_parts(row: Mapping[str, Any]) -> list[str]:
    """Label switching and chain agreement (R-hat after relabeling)."""
    if row["label_switched"]:
        after = row["rhat_after"]
        if not finite(after) or after <= RHAT_TOL:
            return ["label-switched (fixed by relabeling)"]
        return [f"label-switched (R-hat still {after:.2f} after relabeling)"]
    if finite(row["rhat_max"]) and row["rhat_max"] > RHAT_TOL:
        return [f"chains disagree (R-hat {row['rhat_max']:.3f} > {RHAT_TOL:g})"]
    return []


def _shift_parts(shifts: list[dict[str, Any]]) -> list[str]:
    """One phrase per parameter group: its largest significant shift, named and signed."""
    parts = []
    for group in GROUPS:
        mine = [r for r in shifts if r["group"] == group]
        if mine:
            worst = max(mine, key=lambda r: abs(r["shift"]))
            side = "above" if worst["shift"] > 0 else "below"
            parts.append(f"{worst['parameter']} {abs(worst['shift']):.1f} reference sd {side}")
    return parts


def _width_parts(row: Mapping[str, Any], not_converged: bool) -> tuple[list[str], bool]:
    """The width phrase, and whether the width is within tolerance."""
    ratio = row["sd_ratio"]
    if row["n_draws_total"] <= 1 or not np.isfinite(ratio):
        return [], True
    if not_converged:  # its width says nothing about the method
        return [f"sd ratio {ratio:.2f}x"], False
    if 1.0 / SD_RATIO_TOL <= ratio <= SD_RATIO_TOL:
        return [], True
    if ratio == 0.0:
        return ["no spread where the reference has some"], False
    word = "narrow" if ratio < 1.0 else "wide"
    factor = 1.0 / ratio if ratio < 1.0 else ratio
    if row["family"] == "vi":
        prefix = "converged; " if row["converged"] is True else ""
        # Too narrow is what the KL(q || p) optimum of a restricted family does (mean-field
        # most of all), so the family is named; too wide is not a property of any family
        # at its optimum, so the phrase states the width and blames nothing.
        family = (
            f" ({row['variational_family']} family)"
            if row["variational_family"] and word == "narrow"
            else ""
        )
        return [f"{prefix}q too {word} by {factor:.2f}x{family}"], False
    return [f"too {word} by {factor:.2f}x"], False


def verdict(row: Mapping[str, Any], is_reference: bool, shifts: list[dict[str, Any]]) -> str:
    """One readable sentence from an engine's summary row (thresholds: module constants).

    ``shifts`` holds the fit's significant shifts of free parameters (dicts with
    ``parameter``, ``group`` and ``shift``, the signed shift in reference sd).
    """
    parts: list[str] = []
    if is_reference:
        weak = row.get("reference_weak")
        parts.append(f"reference (weak: {weak})" if weak else "reference")
    parts += _chain_parts(row)
    not_converged = False
    if row["converged"] is False:
        parts.append("did not converge (the engine's own test failed)")
        not_converged = True
    elif row.get("elbo_below"):
        parts.append(
            f"did not converge (ELBO {row['elbo_gap']:.1f} nats below "
            f"{row['elbo_below']}'s, a fit of the same or a contained variational "
            f"family)"
        )
        not_converged = True
    tail = list(row.get("exact_parts") or [])
    if finite(row.get("khat")) and row["khat"] >= KHAT_TOL:
        tail.append(f"k-hat {row['khat']:.2f} >= {KHAT_TOL:g} (q misses mass of the posterior)")
    if is_reference:
        return "; ".join(parts + tail)
    if row["n_draws_total"] <= 1:
        parts.append("point estimate (no uncertainty)")
    parts += _shift_parts(shifts)
    width, width_ok = _width_parts(row, not_converged)
    parts += width
    if not np.isfinite(row["sd_ratio"]) and not np.isfinite(row["max_mean_shift"]):
        parts.append("cannot judge (the reference has no spread)")
    if not parts:
        parts = [
            f"agrees (sd ratio {row['sd_ratio']:.2f}x)"
            if width_ok and np.isfinite(row["sd_ratio"])
            else "agrees"
        ]
    return "; ".join(parts + tail)


# ----------------------------------------------------------------------- cross-fit rules
def mark_elbo_shortfalls(rows: dict[str, dict[str, Any]]) -> None:
    """Mark VI fits whose ELBO is below a fit of the same or a contained family.

    A fit of family F can represent every q of a family G it contains, so at F's optimum
    its ELBO is >= G's optimum. Fit a is marked when some fit b with family(b) contained
    in family(a) has ELBO_b - ELBO_a > max(ELBO_GAP_TOL, ELBO_SE_Z * sqrt(se_a^2 + se_b^2))
    (a missing se counts as 0). Sets ``elbo_gap`` (nats, the largest such gap) and
    ``elbo_below`` (that fit's name) in place.
    """
    for a, row_a in rows.items():
        fam_a = row_a["variational_family"]
        if not fam_a or not np.isfinite(row_a["elbo"]):
            continue
        for b, row_b in rows.items():
            if b == a or row_b["variational_family"] not in _CONTAINS.get(fam_a, ()):
                continue
            if not np.isfinite(row_b["elbo"]):
                continue
            gap = row_b["elbo"] - row_a["elbo"]
            se = math.hypot(np.nan_to_num(row_a["elbo_se"]), np.nan_to_num(row_b["elbo_se"]))
            if gap > max(ELBO_GAP_TOL, ELBO_SE_Z * se) and not gap <= row_a["elbo_gap"]:
                row_a["elbo_gap"], row_a["elbo_below"] = float(gap), b


def flag_evidence_below_elbos(rows: dict[str, dict[str, Any]]) -> None:
    """Flag log p(x) estimates below a fit's ELBO (a lower bound on log p(x)), in place.

    Estimate e (se s_e) is impossible when e + EVIDENCE_Z * sqrt(s_e^2 + s_b^2) < ELBO_b for
    some fit b (se s_b; a missing se counts as 0). The row gets "below_elbo" in its
    ``evidence_flags`` (once) and a verdict phrase naming the fit.
    """
    for row in rows.values():
        if not finite(row["log_evidence"]):
            continue
        worst = None
        for b, other in rows.items():
            if not finite(other["elbo"]):
                continue
            se = math.hypot(np.nan_to_num(row["log_evidence_se"]), np.nan_to_num(other["elbo_se"]))
            gap = other["elbo"] - row["log_evidence"]
            if gap > EVIDENCE_Z * se and (worst is None or gap > worst[1]):
                worst = (b, gap)
        if worst is not None:
            if "below_elbo" not in row["evidence_flags"]:
                row["evidence_flags"] = [*row["evidence_flags"], "below_elbo"]
            row.setdefault("exact_parts", []).append(
                f"log p(x) estimate {worst[1]:.1f} nats below {worst[0]}'s ELBO (a lower bound "
                f"on log p(x)): the estimate is too low"
            )


def reference_weakness(row: Mapping[str, Any]) -> list[str]:
    """Why a reference is not strong (empty when it is): chains, R-hat, ESS."""
    if row["n_draws_total"] <= 1:
        return ["a point estimate has no posterior spread to judge against"]
    if row["family"] == "vi":
        return ["draws from a variational q, not from the posterior"]
    reasons = []
    if row["chains"] < 2:
        reasons.append(f"{row['chains']} chain (R-hat needs >= 2)")
    elif row["chains"] < REF_MIN_CHAINS:
        reasons.append(
            f"{row['chains']} chains < {REF_MIN_CHAINS} (R-hat compares chains "
            f"from different starts)"
        )
    if row["chains"] >= 2 and not finite(row["rhat_max"]):
        reasons.append("R-hat undefined")
    elif row["chains"] >= 2 and row["rhat_max"] > RHAT_TOL:
        reasons.append(f"max R-hat {row['rhat_max']:.3f} > {RHAT_TOL:g}")
    if not finite(row["ess_min"]):
        reasons.append("bulk ESS undefined")
    elif row["ess_min"] < ESS_MIN:
        reasons.append(f"min bulk ESS {row['ess_min']:.0f} < {ESS_MIN}")
    if row["converged"] is False:
        reasons.append("the engine's own convergence test failed")
    return reasons
