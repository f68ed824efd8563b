"""`compare(fits, reference="nuts")`: put every engine's answer beside a reference answer.

Each fit is first made label-consistent (the reference with itself, every other fit onto
the reference's posterior-mean means, see :mod:`ppl_mixtures.relabel`), then each model
parameter (``means[k,d]``, ``weights[k]``, ``obs_sd[k,d]`` when learned) is summarized per
engine, and each engine gets one verdict a student can read, saying *why*: which parameter
moved and by how much, whether the engine converged by its own test, and whether a width
difference is a property of its variational family. The rules and thresholds are the
module constants below; :func:`verdict_rules` states them in words (reports print it).

Only numpy and scipy are imported at module level; pandas (the tables) and arviz (R-hat,
ESS, MCSE) are imported when a comparison is built.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from ppl_mixtures.analysis.relabel import relabel
from ppl_mixtures.results import (
    _PARAMETERIZATION_FIELDS,
    MixtureFit,
    frozen_state,
    restore_frozen_state,
)
from ppl_mixtures.validation import check_real

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

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
#: ELBOs are not compared with CAVI's/SVI's. ``fit.extras["variational_family"]`` overrides.
VARIATIONAL_FAMILIES = MappingProxyType({
    "advi": "gaussian mean-field",
    "fullrank_advi": "gaussian full-rank",
    "cavi": "conjugate mean-field",
    "svi": "conjugate mean-field",
})
_CONTAINS = MappingProxyType({
    "gaussian full-rank": frozenset({"gaussian mean-field", "gaussian full-rank"}),
    "gaussian mean-field": frozenset({"gaussian mean-field"}),
    "conjugate mean-field": frozenset({"conjugate mean-field"}),
})
#: Parameter groups, each judged and named separately in a verdict.
GROUPS = ("means", "weights", "obs_sd")


def verdict_rules() -> str:
    """The verdict rules and every threshold, in words (a paragraph of markdown)."""
    return (
        "How to read the verdicts. Components are aligned to the reference before anything "
        "is compared. **Shifts**: a parameter is named (\"obs_sd[0,0] 3.3 reference sd "
        f"below\") when |mean - reference mean| exceeds both {MEAN_SHIFT_TOL:g} reference "
        f"posterior sd and {MCSE_Z:g} combined Monte Carlo standard errors "
        "sqrt(mcse_ref^2 + mcse_engine^2); the largest shift of each group (means, "
        "weights, obs_sd) is named. **Width**: the sd ratio is the geometric mean over the "
        "free parameters of engine sd / reference sd (with K components only K-1 weights "
        "are free, so the last weight is left out, and parameters the reference does not "
        f"vary are left out); outside [1/{SD_RATIO_TOL:g}, {SD_RATIO_TOL:g}] the verdict "
        "says \"too narrow/wide by r x\" (for a converged VI fit: \"converged; q too "
        "narrow by r x\", a property of its variational family), and inside it "
        "\"agrees\" is followed by the ratio. **Convergence**: \"did not converge\" "
        "when the engine's own test failed (fit.converged is False), or when its ELBO is "
        f"more than max({ELBO_GAP_TOL:g} nat, {ELBO_SE_Z:g} se) below the ELBO of another "
        "fit of the same or a contained variational family (impossible at the family's "
        "optimum); the numbers of such a fit are not a property of its method. **Chains**: "
        f"\"chains disagree\" when max R-hat > {RHAT_TOL:g}; \"label-switched\" when "
        f">= {LABEL_SWITCH_FRACTION:.0%} of the draws had to be relabeled. **Reference**: "
        f"strong when it has >= {REF_MIN_CHAINS} chains, every free parameter R-hat <= "
        f"{RHAT_TOL:g} and "
        f"bulk ESS >= {ESS_MIN}; otherwise the table says it is weak and why. **k-hat** "
        f"(VI): Pareto k-hat of p/q, < {KHAT_TOL:g} usable.")


def _parameter_labels(name: str, shape: tuple[int, ...]) -> list[str]:
    """``means[0,1]``-style labels for every entry of a (K,) or (K, D) parameter."""
    return [f"{name}[{','.join(str(i) for i in idx)}]" for idx in np.ndindex(*shape)]


def _split_parameter(label: str) -> tuple[str, int | None]:
    """("means", 1) from "means[0,1]"; ("weights", None) from "weights[2]"."""
    name, idx = label.rstrip("]").split("[")
    parts = idx.split(",")
    return name, (int(parts[1]) if len(parts) > 1 else None)


def _wide(parameters: pd.DataFrame, column: str, fits: Mapping[str, Any]) -> pd.DataFrame:
    """One row per parameter (table order), one column per fit, holding ``column``."""
    table = parameters.pivot(index="parameter", columns="engine", values=column)
    order = list(dict.fromkeys(parameters["parameter"]))
    return table.loc[order, list(fits)]


def _fmt_vector(values: np.ndarray) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in np.asarray(values, dtype=float)) + ")"


def _flat_draws(fit: MixtureFit, name: str) -> np.ndarray:
    """Draws of one parameter flattened to (n_chains * n_draws, n_entries)."""
    draws = fit.draws(name)
    return draws.reshape(draws.shape[0] * draws.shape[1], -1)


def _sd(flat: np.ndarray) -> np.ndarray:
    """Sd over draws (ddof=0) of shape (n_entries,); exactly 0 for a constant entry."""
    return np.where(np.ptp(flat, axis=0) == 0, 0.0, flat.std(axis=0))


def _diagnostics(fit: MixtureFit, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R-hat, bulk ESS and MCSE of the mean per entry, shape (n_entries,) each.

    R-hat needs >= 2 chains (NaN otherwise). ESS and MCSE come from ArviZ with >= 4
    draws (one chain too: VI draws from q are independent, and ArviZ's split-chain ESS
    then comes out near the number of draws); a single draw (a point estimate) has no
    Monte Carlo error (MCSE 0, ESS NaN).
    """
    n_entries = int(np.prod(fit.draws(name).shape[2:]))
    nan = np.full(n_entries, np.nan)
    if fit.n_draws < 4:
        return nan, nan, (np.zeros(n_entries) if fit.n_chains * fit.n_draws == 1 else nan)
    import arviz as az

    post = fit.idata["posterior"][name]
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        rhat = (np.asarray(az.rhat(post).values, dtype=float).reshape(-1)
                if fit.n_chains >= 2 else nan)
        ess = np.asarray(az.ess(post, method="bulk").values, dtype=float).reshape(-1)
        mcse = np.asarray(az.mcse(post).values, dtype=float).reshape(-1)
    return rhat, ess, mcse


def _label_switch_info(fit: MixtureFit) -> dict[str, Any]:
    """How much a fit needed relabeling against itself (from ``extras['relabel']``)."""
    info = fit.extras.get("relabel", {})
    total = max(fit.n_chains * fit.n_draws, 1)
    moved = int(info.get("draws_relabeled", 0))
    return {"fraction_relabeled": moved / total,
            "rhat_before": info.get("rhat_before"), "rhat_after": info.get("rhat_after"),
            "label_switched": fit.n_components > 1 and moved / total >= LABEL_SWITCH_FRACTION}


def _finite(value: Any) -> bool:
    return value is not None and isinstance(value, int | float | np.number) and \
        bool(np.isfinite(value))


def _chain_parts(row: Mapping[str, Any]) -> list[str]:
    """Label switching and chain agreement (R-hat after relabeling)."""
    if row["label_switched"]:
        after = row["rhat_after"]
        if not _finite(after) or after <= RHAT_TOL:
            return ["label-switched (fixed by relabeling)"]
        return [f"label-switched (R-hat still {after:.2f} after relabeling)"]
    if _finite(row["rhat_max"]) and row["rhat_max"] > RHAT_TOL:
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
        family = (f" ({row['variational_family']} family)"
                  if row["variational_family"] and word == "narrow" else "")
        return [f"{prefix}q too {word} by {factor:.2f}x{family}"], False
    return [f"too {word} by {factor:.2f}x"], False


def _verdict(row: Mapping[str, Any], is_reference: bool, shifts: list[dict[str, Any]]) -> str:
    """One readable sentence from an engine's summary numbers (thresholds: module constants).

    ``shifts`` holds the fit's significant shifts (dicts with parameter, group, shift).
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
        parts.append(f"did not converge (ELBO {row['elbo_gap']:.1f} nats below "
                     f"{row['elbo_below']}'s, a fit of the same or a contained variational "
                     f"family)")
        not_converged = True
    tail = list(row.get("exact_parts") or [])
    if _finite(row.get("khat")) and row["khat"] >= KHAT_TOL:
        tail.append(f"k-hat {row['khat']:.2f} >= {KHAT_TOL:g} (q misses mass of the "
                    f"posterior)")
    if is_reference:
        return "; ".join(parts + tail)
    point = row["n_draws_total"] <= 1
    if point:
        parts.append("point estimate (no uncertainty)")
    parts += _shift_parts(shifts)
    width, width_ok = _width_parts(row, not_converged)
    parts += width
    if not np.isfinite(row["sd_ratio"]) and not np.isfinite(row["max_mean_shift"]):
        parts.append("cannot judge (the reference has no spread)")
    if not parts:
        parts = [f"agrees (sd ratio {row['sd_ratio']:.2f}x)" if width_ok
                 and np.isfinite(row["sd_ratio"]) else "agrees"]
    return "; ".join(parts + tail)


def _json_number(value: Any) -> Any:
    """A JSON-ready scalar: numpy scalars to Python, NaN/inf to None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass(frozen=True, eq=False)
class Comparison:
    """Every engine's answer beside the reference's, as tables and a verdict per engine.

    Attributes
    ----------
    reference : str
        Name of the reference fit (its verdict starts with "reference"); the parameter
        tables are aligned to it. With ``compare(..., reference="exact")`` it is the fit
        the tables are aligned to, and ``graded_by`` is "exact".
    fits : Mapping[str, MixtureFit]
        The fits after relabeling (component k means the same thing in every fit), each
        with its ``family`` recorded (from the engine registry when the engine did not).
    parameters : pandas.DataFrame
        One row per (parameter, engine): ``parameter`` ("means[0,1]"), ``group`` ("means",
        "weights", "obs_sd"), ``engine``, ``mean``, ``sd``, ``mcse`` (Monte Carlo se of the
        mean), ``r_hat`` (NaN with < 2 chains), ``ess_bulk``, ``sd_ratio`` (engine sd /
        reference sd), ``shift`` ((mean - reference mean) / reference sd, signed),
        ``mean_shift`` (its absolute value), ``significant`` (the shift exceeds
        ``MEAN_SHIFT_TOL`` reference sd and ``MCSE_Z`` combined MCSEs), ``free`` (counted
        in the aggregates: False for the last weight, which the others determine, and
        for parameters the reference does not vary) and ``wasserstein`` (Wasserstein-1
        distance between the engine's and the reference's marginal draws, in the
        parameter's units).
    engines : pandas.DataFrame
        One row per engine, indexed by name: ``family``, ``variational_family`` (VI),
        ``chains``, ``draws``, ``build_s``, ``run_s``, ``total_s``, ``elbo`` and
        ``elbo_se`` (nats, NaN when undefined), ``elbo_gap`` / ``elbo_below`` (how far
        the ELBO is below the best fit of the same or a contained family, and which fit),
        ``log_evidence``, ``log_evidence_se`` (nats, NaN when unknown) and
        ``evidence_flags`` (the fit's own, plus "below_elbo" when compare finds the
        estimate below a fit's ELBO), ``khat`` (VI: Pareto k-hat of p/q, NaN otherwise)
        and ``khat_note`` (why a VI fit has none), ``sd_ratio``
        (geometric mean over the free parameters), ``sd_ratio_min``/``sd_ratio_max``,
        ``max_mean_shift`` and ``max_shift_parameter``, ``w1_mean`` (mean Wasserstein-1 /
        reference sd), ``rhat_max``, ``ess_min``, ``rhat_before_relabel``,
        ``fraction_relabeled``, ``label_switched``, ``converged`` and ``verdict``; with
        an exact reference also ``cocluster_max_err``, ``predictive_mean_err``,
        ``evidence_err`` and ``evidence_err_se`` (NaN otherwise; see :func:`compare`).
    not_applicable : Mapping[str, str]
        Engines that could not serve the spec, with the reason (reports list them).
    log_evidence : float or None
        log p(x) in nats: exact (enumeration), given, or an *estimate* (SMC), drawn as a
        line under ELBO traces. ``log_evidence_se`` is its standard error (0 when exact).
    name : str or None
        Dataset name for titles and reports.
    log_evidence_source : str or None
        Where ``log_evidence`` came from: the fit that estimated it, "given" or "exact".
    log_evidence_se : float or None
    log_evidence_method : str or None
        How it was computed (the fit's ``extras["log_evidence_method"]``, "enumeration").
    log_evidence_flags : tuple of str
        Warnings attached to the estimate (e.g. "below_elbo", "runs_disagree").
    reference_weak_reasons : tuple of str
        Empty when the reference is strong (see ``ESS_MIN``, ``RHAT_TOL``); else why not.
    graded_by : str or None
        "exact" when every fit was also graded against the exact posterior.
    exact_log_evidence : float or None
        The exact log p(x) by enumeration (``reference="exact"``).
    feature_names : tuple of str or None
        One name per feature (e.g. the CSV's column names), for tables and figures.
    units : str or tuple of str or None
        The data's unit (one, or one per feature), e.g. "min".
    data_transform : tuple (center, scale) of ndarray of shape (n_features,) or None
        Set when the fits ran on standardized data ``(x - center) / scale`` (as
        :func:`ppl_mixtures.datasets.standardize` returns): tables and figures then show
        means as ``center + scale * v`` and the sds of means and ``obs_sd`` as
        ``scale * v`` (weights unchanged); see :meth:`parameters_in_data_units`. The
        ``parameters`` table itself stays in the fitted (standardized) units.
    """

    reference: str
    fits: Mapping[str, MixtureFit]
    parameters: pd.DataFrame
    engines: pd.DataFrame
    not_applicable: Mapping[str, str] = field(default_factory=dict)
    log_evidence: float | None = None
    name: str | None = None
    log_evidence_source: str | None = None
    log_evidence_se: float | None = None
    log_evidence_method: str | None = None
    log_evidence_flags: tuple[str, ...] = ()
    reference_weak_reasons: tuple[str, ...] = ()
    graded_by: str | None = None
    exact_log_evidence: float | None = None
    feature_names: tuple[str, ...] | None = None
    units: str | tuple[str, ...] | None = None
    data_transform: tuple[np.ndarray, np.ndarray] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "fits", MappingProxyType(dict(self.fits)))
        object.__setattr__(self, "not_applicable", MappingProxyType(dict(self.not_applicable)))
        object.__setattr__(self, "log_evidence_flags", tuple(self.log_evidence_flags))
        object.__setattr__(self, "reference_weak_reasons", tuple(self.reference_weak_reasons))
        self._check_features()

    def _check_features(self) -> None:
        """Validate feature_names/units/data_transform against the data's feature count
        (the messages of :class:`ppl_mixtures.present.plots.FeatureAxes`) and store them as tuples
        and read-only float64 arrays."""
        if self.feature_names is None and self.units is None and self.data_transform is None:
            return
        from ppl_mixtures.present.plots import FeatureAxes

        n_features = int(self.points.shape[1])
        axes = FeatureAxes.resolve(n_features, self.feature_names, self.units,
                                   self.data_transform)
        if self.feature_names is not None:
            object.__setattr__(self, "feature_names", axes.names)
        if self.units is not None and not isinstance(self.units, str):
            object.__setattr__(self, "units", axes.units)
        if self.data_transform is not None:
            for array in (axes.center, axes.scale):
                array.setflags(write=False)
            object.__setattr__(self, "data_transform", (axes.center, axes.scale))

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> dict[str, Any]:
        """Fields for pickle (report sections render in worker processes): the read-only
        mappings as plain dicts."""
        return frozen_state(self, ("fits", "not_applicable"))

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        restore_frozen_state(self, state, ("fits", "not_applicable"))

    # ------------------------------------------------------------------ data units
    def _unit(self, d: int) -> str | None:
        if self.units is None:
            return None
        return self.units if isinstance(self.units, str) else self.units[d]

    def parameter_label(self, parameter: str, with_unit: bool = True) -> str:
        """A table label with the feature's name and unit: "means[0,1]" ->
        "means[0, waiting time] (min)" (no unit for unit-free columns such as sd ratios:
        ``with_unit=False``); unchanged without ``feature_names``/``units``."""
        name, d = _split_parameter(parameter)
        if d is None or (self.feature_names is None and self.units is None):
            return parameter
        component = parameter[len(name) + 1:].split(",")[0]
        feature = self.feature_names[d] if self.feature_names is not None else str(d)
        unit = self._unit(d)
        return f"{name}[{component}, {feature}]" + (f" ({unit})" if unit and with_unit else "")

    def parameters_in_data_units(self) -> pd.DataFrame:
        """The ``parameters`` table with ``mean``, ``sd``, ``mcse`` and ``wasserstein`` in
        the data's own units when ``data_transform`` is set (a copy; unchanged otherwise).

        A standardized value v of means[k, d] is ``center[d] + scale[d] * v`` and its sd,
        MCSE and Wasserstein distance are multiplied by ``scale[d]``; obs_sd[k, d] (and its
        spread) is multiplied by ``scale[d]``; weights are unit-free. Shifts and sd ratios
        are ratios of the same units and do not change.
        """
        table = self.parameters.copy()
        if self.data_transform is None:
            return table
        center, scale = self.data_transform
        split = [_split_parameter(p) for p in table["parameter"]]
        d = np.array([-1 if f is None else f for _, f in split])
        has_feature = d >= 0
        factor = np.where(has_feature, scale[np.maximum(d, 0)], 1.0)
        offset = np.where(has_feature & (table["group"].to_numpy() == "means"),
                          center[np.maximum(d, 0)], 0.0)
        table["mean"] = offset + factor * table["mean"].to_numpy(dtype=float)
        for column in ("sd", "mcse", "wasserstein"):
            if column in table:
                table[column] = factor * table[column].to_numpy(dtype=float)
        return table

    def units_note(self) -> str | None:
        """One sentence on the units of the parameter tables (None when nothing to say)."""
        if self.data_transform is None:
            return None
        unit = f" ({', '.join(dict.fromkeys(self.units))})" if isinstance(self.units, tuple) \
            else (f" ({self.units})" if self.units else "")
        return (f"The fit ran on standardized data (x - center) / scale; the parameter "
                f"tables are in the data's own units{unit}: means as center + scale * v, sds "
                f"of means and obs_sd as scale * v, weights unchanged (center = "
                f"{_fmt_vector(self.data_transform[0])}, scale = "
                f"{_fmt_vector(self.data_transform[1])}).")

    # ------------------------------------------------------------------ judgement
    @property
    def reference_strong(self) -> bool:
        """True when the reference passed every test of ``ESS_MIN`` / ``RHAT_TOL``."""
        return not self.reference_weak_reasons

    @property
    def thresholds(self) -> dict[str, float]:
        """Every threshold the verdicts use, by name (also in ``to_dict()``)."""
        return {"sd_ratio_tol": SD_RATIO_TOL, "mean_shift_tol": MEAN_SHIFT_TOL,
                "mcse_z": MCSE_Z, "label_switch_fraction": LABEL_SWITCH_FRACTION,
                "rhat_tol": RHAT_TOL, "ess_min": ESS_MIN, "ref_min_chains": REF_MIN_CHAINS,
                "elbo_gap_tol": ELBO_GAP_TOL,
                "elbo_se_z": ELBO_SE_Z, "khat_tol": KHAT_TOL}

    def rules_text(self) -> str:
        """The verdict rules with their thresholds, in words (:func:`verdict_rules`)."""
        return verdict_rules()

    def reference_line(self) -> str:
        """One sentence: is the reference strong, and if not, why."""
        row = self.engines.loc[self.reference]
        if self.reference_strong:
            return (f"Reference {self.reference}: strong ({row['chains']} chains, max R-hat "
                    f"{row['rhat_max']:.3f} <= {RHAT_TOL:g}, min bulk ESS "
                    f"{row['ess_min']:.0f} >= {ESS_MIN}).")
        advice = (" rerun it longer (e.g. 4 chains x 1000 draws or more)."
                  if row["family"] == "mcmc" else " use a long MCMC run (nuts) as the reference.")
        return (f"Reference {self.reference} is weak: "
                f"{'; '.join(self.reference_weak_reasons)}. Shifts and sd ratios against "
                f"it carry its error;{advice}")

    def evidence_line(self) -> str | None:
        """How log p(x) is known: exact, given, or an estimate with its se and flags."""
        if self.log_evidence is None:
            return None
        if self.log_evidence_source == "exact":
            return (f"Exact log evidence log p(x) = {self.log_evidence:.3f} nats "
                    f"(enumeration of every assignment).")
        if self.log_evidence_source == "given":
            return f"Log evidence log p(x) = {self.log_evidence:.3f} nats (given)."
        se = (f" ± {self.log_evidence_se:.3f}" if _finite(self.log_evidence_se)
              else " (no standard error)")
        method = f", {self.log_evidence_method}" if self.log_evidence_method else ""
        text = (f"Log evidence estimate log p(x) = {self.log_evidence:.3f}{se} nats "
                f"(from {self.log_evidence_source}{method}).")
        if self.log_evidence_flags:
            text += f" Flags: {', '.join(self.log_evidence_flags)}."
        return text

    # ------------------------------------------------------------------ views
    @property
    def reference_fit(self) -> MixtureFit:
        return self.fits[self.reference]

    @property
    def points(self) -> np.ndarray:
        """The data, shape (n_samples, n_features)."""
        return self.reference_fit.points

    @property
    def spec(self):
        return self.reference_fit.spec

    def verdicts(self) -> dict[str, str]:
        """Engine name -> verdict."""
        return dict(self.engines["verdict"].items())

    def to_dataframe(self) -> pd.DataFrame:
        """The parameter table in long form, with each engine's verdict joined on."""
        return self.parameters.merge(self.engines[["verdict"]], left_on="engine",
                                     right_index=True, how="left")

    def wide_table(self, column: str = "mean") -> pd.DataFrame:
        """One row per parameter, one column per engine, holding ``column`` (fitted units)."""
        return _wide(self.parameters, column, self.fits)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: every number in the tables (NaN as null), verdicts and settings."""
        engines = {}
        for name, row in self.engines.iterrows():
            entry = {key: _jsonable(val) for key, val in row.items()}
            fit = self.fits[name]
            entry["options"] = {k: _jsonable(v) for k, v in fit.options.items()}
            entry["n_iter"] = fit.n_iter
            engines[name] = entry
        parameters = [{key: _json_number(val) for key, val in rec.items()}
                      for rec in self.parameters.to_dict(orient="records")]
        return {"name": self.name, "reference": self.reference,
                "graded_by": self.graded_by,
                "reference_strong": self.reference_strong,
                "reference_weak_reasons": list(self.reference_weak_reasons),
                "spec": self.spec.to_dict(),
                "n_samples": int(self.points.shape[0]), "n_features": int(self.points.shape[1]),
                "log_evidence": _json_number(self.log_evidence),
                "log_evidence_se": _json_number(self.log_evidence_se),
                "log_evidence_source": self.log_evidence_source,
                "log_evidence_method": self.log_evidence_method,
                "log_evidence_flags": list(self.log_evidence_flags),
                "exact_log_evidence": _json_number(self.exact_log_evidence),
                "thresholds": self.thresholds, "rules": self.rules_text(),
                "engines": engines, "parameters": parameters,
                "not_applicable": dict(self.not_applicable), **self._units_dict()}

    def _units_dict(self) -> dict[str, Any]:
        """feature_names/units/data_transform for to_dict, and the data-unit parameters."""
        out: dict[str, Any] = {
            "feature_names": None if self.feature_names is None else list(self.feature_names),
            "units": self.units if self.units is None or isinstance(self.units, str)
            else list(self.units),
            "data_transform": None}
        if self.data_transform is not None:
            out["data_transform"] = {"center": self.data_transform[0].tolist(),
                                     "scale": self.data_transform[1].tolist()}
            out["parameters_data_units"] = [
                {key: _json_number(val) for key, val in rec.items()}
                for rec in self.parameters_in_data_units().to_dict(orient="records")]
        return out

    def _engine_rows(self) -> tuple[list[str], list[list[Any]]]:
        eng = self.engines
        has_khat = bool((eng["family"] == "vi").any())
        header = ["engine", "family", "chains x draws", "build (s)", "run (s)",
                  "ELBO (nats)", "log p(x) estimate (nats)", *(["k-hat"] if has_khat else []),
                  "sd ratio", "max shift (ref sd)", "max R-hat", "verdict"]
        rows = []
        for name, r in eng.iterrows():
            evidence = _fmt_est(r["log_evidence"], r["log_evidence_se"])
            if r["evidence_flags"]:
                evidence += f" ({', '.join(r['evidence_flags'])})"
            shift = _fmt(r["max_mean_shift"], 2)
            if r["max_shift_parameter"] and r["max_mean_shift"] > MEAN_SHIFT_TOL:
                shift += f" ({r['max_shift_parameter']})"
            khat = [_khat_cell(r["khat"], r["khat_note"])] if has_khat else []
            rows.append([name, r["family"], f"{r['chains']}x{r['draws']}", _fmt(r["build_s"], 2),
                         _fmt(r["run_s"], 2), _fmt_est(r["elbo"], r["elbo_se"]), evidence,
                         *khat, _fmt(r["sd_ratio"], 2), shift, _fmt(r["rhat_max"], 3),
                         r["verdict"]])
        blanks = [""] * (len(header) - 2)
        rows += [[name, *blanks, f"not applicable: {why}"]
                 for name, why in self.not_applicable.items()]
        return header, rows

    def _exact_table(self) -> str:
        eng = self.engines
        rows = [[name, _fmt(r["cocluster_max_err"], 3), _fmt(r["predictive_mean_err"], 4),
                 _fmt(r["evidence_err"], 2)] for name, r in eng.iterrows()]
        return markdown_table(
            ["engine", "max |co-clustering - exact|", "mean |log pred - exact| (nats)",
             "log p(x) or ELBO - exact (nats)"], rows)

    def parameter_table_markdown(self, digits: int = 3) -> str:
        """Posterior mean ± sd of every parameter per engine, in the data's own units and
        feature names when known (with a sentence saying so)."""
        data_units = self.parameters_in_data_units()
        means, sds = _wide(data_units, "mean", self.fits), _wide(data_units, "sd", self.fits)
        names = list(self.fits)
        where = " in the data's own units" if self.data_transform is not None else ""
        out = [f"Posterior mean ± sd of each parameter{where} (components aligned to the "
               f"reference, {self.reference}):\n"]
        note = self.units_note()
        if note:
            out.append(note + "\n")
        out.append(markdown_table(
            ["parameter", *names],
            [[self.parameter_label(p),
              *(_fmt_pm(means.loc[p, n], sds.loc[p, n], digits) for n in names)]
             for p in means.index]))
        return "\n".join(out)

    def to_markdown(self, *, digits: int = 3, rules: bool = True) -> str:
        """The engine table, the reference's strength, log p(x), then the parameters.

        Parameters
        ----------
        digits : int
            Decimals of the parameter table.
        rules : bool
            Append :meth:`rules_text` (a report with many datasets prints it once).
        """
        header, rows = self._engine_rows()
        out = [markdown_table(header, rows), "", self.reference_line()]
        evidence = self.evidence_line()
        if evidence:
            out.append(evidence)
        if self.graded_by == "exact":
            out.append("\nEvery engine against the exact posterior (enumeration; label-"
                       "invariant, so no relabeling is involved):\n")
            out.append(self._exact_table())
        out.append("")
        out.append(self.parameter_table_markdown(digits))
        ratio = self.wide_table("sd_ratio")
        w1 = _wide(self.parameters_in_data_units(), "wasserstein", self.fits)
        names = list(self.fits)
        label = self.parameter_label
        others = [n for n in names if n != self.reference]
        if others:
            out.append(f"\nsd ratio engine / {self.reference} (1 = same width; mean-field VI "
                       "is usually < 1):\n")
            out.append(markdown_table(
                ["parameter", *others],
                [[label(p, with_unit=False), *(_fmt(ratio.loc[p, n], 2) for n in others)]
                 for p in ratio.index]))
            out.append(f"\nWasserstein-1 distance between each engine's draws and "
                       f"{self.reference}'s (parameter units; 0 = same distribution):\n")
            out.append(markdown_table(
                ["parameter", *others],
                [[label(p), *(_fmt(w1.loc[p, n], digits) for n in others)]
                 for p in ratio.index]))
        if rules:
            out += ["", self.rules_text()]
        return "\n".join(out) + "\n"

    def __str__(self) -> str:
        return self.to_markdown()

    __repr__ = __str__

    # ------------------------------------------------------------------ plots
    def plot_data(self, **kwargs: Any) -> Figure:
        """Data with each engine's component means and 1/2-sd ellipses (see plots.py)."""
        from ppl_mixtures.present import plots

        return plots.plot_data(self, **kwargs)

    def plot_elbo(self, **kwargs: Any) -> Figure:
        """ELBO traces of the VI engines, in nats, with log p(x) (an estimate unless exact)."""
        from ppl_mixtures.present import plots

        return plots.plot_elbo(self, **kwargs)

    def plot_marginals(self, **kwargs: Any) -> Figure:
        """Posterior marginals of every parameter, one engine per colour."""
        from ppl_mixtures.present import plots

        return plots.plot_marginals(self, **kwargs)

    def plot_forest(self, **kwargs: Any) -> Figure:
        """ArviZ forest plot of every engine's posterior."""
        from ppl_mixtures.present import plots

        return plots.plot_forest(self, **kwargs)

    def plot_trace(self, engine: str | None = None, **kwargs: Any) -> Figure:
        """ArviZ trace plot of one engine (default: the reference)."""
        from ppl_mixtures.present import plots

        return plots.plot_trace(self.fits[engine or self.reference],
                                **self._feature_kwargs(kwargs))

    def plot_responsibilities(self, engine: str | None = None, **kwargs: Any) -> Figure:
        """Data coloured by each point's component responsibilities under one engine."""
        from ppl_mixtures.present import plots

        return plots.plot_responsibilities(self.fits[engine or self.reference],
                                           **self._feature_kwargs(kwargs))

    def _feature_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """``kwargs`` with this comparison's feature_names/units/data_transform as defaults
        (figures of one fit do not see the comparison)."""
        out = dict(kwargs)
        for key in ("feature_names", "units", "data_transform"):
            if out.get(key) is None and getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


# ---------------------------------------------------------------------- formatting
def _fmt(value: Any, digits: int) -> str:
    if value is None or (isinstance(value, float | np.floating) and not np.isfinite(value)):
        return "–"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    return f"{float(value):.{digits}f}"


def _fmt_pm(mean: Any, sd: Any, digits: int) -> str:
    if mean is None or not np.isfinite(mean):
        return "–"
    if sd is None or not np.isfinite(sd):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"


def _fmt_est(mean: Any, se: Any) -> str:
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


def _khat_cell(value: Any, note: str = "") -> str:
    if value is None or np.isnan(value):
        return "not computed" if note else "–"
    if value == -np.inf:  # constant ratios p/q: q is the posterior (usable)
        return "-inf (q = p, usable)"
    return f"{value:.2f} ({'usable' if value < KHAT_TOL else 'unreliable'})"


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    """A GitHub-flavoured markdown table (no dependency on ``tabulate``)."""
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _jsonable(value: Any) -> Any:
    """Options and extras as plain JSON (arrays to lists, unknown objects to their repr)."""
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return repr(value)


# ---------------------------------------------------------------------- building
def _align(fits: Mapping[str, MixtureFit], reference: str) -> dict[str, MixtureFit]:
    """Each fit relabeled against itself (to detect switching), then onto the reference."""
    with warnings.catch_warnings():  # R-hat of a constant (fixed weights) is 0/0: NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        ref = relabel(fits[reference])
        aligned = {}
        for name, fit in fits.items():
            if name == reference:
                aligned[name] = ref
                continue
            own = relabel(fit)                       # consensus labels; records switching
            onto_ref = relabel(own, reference=ref)   # then the reference's labels
            aligned[name] = onto_ref.replace(extras={**onto_ref.extras,
                                                     "relabel": own.extras["relabel"]})
    return aligned


def _parameter_rows(fits: Mapping[str, MixtureFit], reference: str) -> list[dict[str, Any]]:
    """One row per (parameter, engine); see :class:`Comparison` ``parameters``."""
    from scipy.stats import wasserstein_distance  # scipy.stats costs ~1 s to import

    ref = fits[reference]
    rows = []
    for pname in ref.parameter_names():
        ref_flat = _flat_draws(ref, pname)
        shape = ref.draws(pname).shape[2:]
        labels = _parameter_labels(pname, shape)
        ref_mean, ref_sd = ref_flat.mean(0), _sd(ref_flat)
        ref_diagnostics = _diagnostics(ref, pname)
        ref_mcse = ref_diagnostics[2]
        # with K components only K-1 weights are free: the last one is left out of the
        # aggregates (for K = 2 it would count the same shift and ratio twice)
        last_weight = pname == "weights" and shape[0] > 1
        for name, fit in fits.items():
            if pname not in fit.parameter_names():
                continue
            flat = _flat_draws(fit, pname)
            # the reference's R-hat/ESS/MCSE are already known (ArviZ is not cheap)
            rhat, ess, mcse = ref_diagnostics if name == reference else _diagnostics(fit, pname)
            mean, sd = flat.mean(0), _sd(flat)
            for j, label in enumerate(labels):
                has_spread = ref_sd[j] > 0
                delta = float(mean[j] - ref_mean[j])
                shift = delta / ref_sd[j] if has_spread else np.nan
                noise = MCSE_Z * float(np.sqrt(np.nan_to_num(ref_mcse[j]) ** 2
                                               + np.nan_to_num(mcse[j]) ** 2))
                rows.append({
                    "parameter": label, "group": pname, "engine": name,
                    "mean": float(mean[j]), "sd": float(sd[j]), "mcse": float(mcse[j]),
                    "r_hat": float(rhat[j]), "ess_bulk": float(ess[j]),
                    "sd_ratio": float(sd[j] / ref_sd[j]) if has_spread else np.nan,
                    "shift": float(shift), "mean_shift": float(abs(shift)),
                    "significant": bool(has_spread and abs(delta) > max(
                        MEAN_SHIFT_TOL * ref_sd[j], noise)),
                    "free": bool(has_spread and not (last_weight and j == len(labels) - 1)),
                    "wasserstein": float(wasserstein_distance(flat[:, j], ref_flat[:, j])),
                    "_ref_sd": float(ref_sd[j]),
                })
    return rows


def _family(fit: MixtureFit) -> str:
    """The fit's engine family: its own record, else the registry's, else ""."""
    if fit.family:
        return fit.family
    from ppl_mixtures.inference.registry import available_engines

    registry = available_engines()
    return registry[fit.engine].family if fit.engine in registry else ""


def _variational_family(fit: MixtureFit, family: str) -> str:
    if family != "vi":
        return ""
    return str(fit.extras.get("variational_family") or VARIATIONAL_FAMILIES.get(fit.engine, ""))


def _evidence_flags(fit: MixtureFit) -> list[str]:
    flags = fit.extras.get("evidence_flags") or ()
    if isinstance(flags, str):
        flags = [flags]
    return [str(f) for f in flags]


def _engine_row(name: str, fit: MixtureFit, params: pd.DataFrame) -> dict[str, Any]:
    mine = params[params["engine"] == name]
    judged = mine[mine["free"]]
    positive = judged[judged["sd_ratio"] > 0]
    sd_ratio = (float(np.exp(np.log(positive["sd_ratio"]).mean()))
                if len(positive) and len(positive) == len(judged)
                else (0.0 if len(judged) else np.nan))
    w1_scaled = (judged["wasserstein"] / judged["_ref_sd"]) if len(judged) else judged["sd_ratio"]
    rhat, ess = mine["r_hat"].to_numpy(), judged["ess_bulk"].to_numpy()
    switch = _label_switch_info(fit)
    family = _family(fit)
    extras = fit.extras
    worst = (judged.loc[judged["mean_shift"].idxmax()] if len(judged)
             and np.isfinite(judged["mean_shift"]).any() else None)
    row = {
        "family": family, "variational_family": _variational_family(fit, family),
        "chains": fit.n_chains, "draws": fit.n_draws,
        "n_draws_total": fit.n_chains * fit.n_draws,
        "build_s": fit.timings.build, "run_s": fit.timings.run, "total_s": fit.timings.total,
        "elbo": fit.final_elbo if fit.final_elbo is not None else np.nan,
        "elbo_se": float(extras.get("elbo_final_se", np.nan)),
        "elbo_gap": np.nan, "elbo_below": None,
        "log_evidence": float(extras.get("log_evidence", np.nan)),
        "log_evidence_se": float(extras.get("log_evidence_se", np.nan)),
        "evidence_flags": _evidence_flags(fit),
        "khat": np.nan, "khat_note": "",
        "cocluster_max_err": np.nan, "predictive_mean_err": np.nan,
        "evidence_err": np.nan, "evidence_err_se": np.nan,
        "sd_ratio": sd_ratio,
        "sd_ratio_min": float(judged["sd_ratio"].min()) if len(judged) else np.nan,
        "sd_ratio_max": float(judged["sd_ratio"].max()) if len(judged) else np.nan,
        "max_mean_shift": float(worst["mean_shift"]) if worst is not None else np.nan,
        "max_shift_parameter": str(worst["parameter"]) if worst is not None else None,
        "w1_mean": float(w1_scaled.mean()) if len(judged) else np.nan,
        "rhat_max": float(np.nanmax(rhat)) if np.isfinite(rhat).any() else np.nan,
        "ess_min": float(np.nanmin(ess)) if np.isfinite(ess).any() else np.nan,
        "rhat_before_relabel": (np.nan if switch["rhat_before"] is None
                                else float(switch["rhat_before"])),
        "fraction_relabeled": switch["fraction_relabeled"],
        "label_switched": bool(switch["label_switched"]),
        "converged": fit.converged,
    }
    row["rhat_after"] = switch["rhat_after"]
    return row


def _elbo_shortfalls(rows: dict[str, dict[str, Any]]) -> None:
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


def _reference_weakness(row: Mapping[str, Any]) -> list[str]:
    """Why a reference is not strong (empty when it is): chains, R-hat, ESS."""
    if row["n_draws_total"] <= 1:
        return ["a point estimate has no posterior spread to judge against"]
    if row["family"] == "vi":
        return ["draws from a variational q, not from the posterior"]
    reasons = []
    if row["chains"] < 2:
        reasons.append(f"{row['chains']} chain (R-hat needs >= 2)")
    elif row["chains"] < REF_MIN_CHAINS:
        reasons.append(f"{row['chains']} chains < {REF_MIN_CHAINS} (R-hat compares chains "
                       f"from different starts)")
    if row["chains"] >= 2 and not _finite(row["rhat_max"]):
        reasons.append("R-hat undefined")
    elif row["chains"] >= 2 and row["rhat_max"] > RHAT_TOL:
        reasons.append(f"max R-hat {row['rhat_max']:.3f} > {RHAT_TOL:g}")
    if not _finite(row["ess_min"]):
        reasons.append("bulk ESS undefined")
    elif row["ess_min"] < ESS_MIN:
        reasons.append(f"min bulk ESS {row['ess_min']:.0f} < {ESS_MIN}")
    if row["converged"] is False:
        reasons.append("the engine's own convergence test failed")
    return reasons


def _default_parameter_reference(fits: Mapping[str, MixtureFit]) -> str:
    """The fit the tables align to under ``reference="exact"``: nuts, else the MCMC fit
    with the most draws, else the first fit."""
    if "nuts" in fits:
        return "nuts"
    mcmc = [k for k, f in fits.items() if _family(f) == "mcmc" and f.n_chains * f.n_draws > 1]
    if mcmc:
        return max(mcmc, key=lambda k: fits[k].n_chains * fits[k].n_draws)
    return next(iter(fits))


def _exact_posterior(fit: MixtureFit) -> Any:
    """The exact posterior of the fits' spec and data; ValueError when it cannot be had."""
    from ppl_mixtures.model import evidence

    n_samples, n_components = fit.points.shape[0], fit.n_components
    if fit.spec.learned_obs_sd:
        raise ValueError("reference: 'exact' needs a known obs_sd (the learned precisions do "
                         "not integrate out in closed form), got obs_sd='learned'. Use "
                         "reference='nuts' (a long NUTS run) instead.")
    if not evidence.exact_feasible(n_samples, n_components):
        raise ValueError(f"reference: 'exact' enumerates all K^N assignments and needs K^N <= "
                         f"{evidence.MAX_ASSIGNMENTS:,} (N <= 20 at K = 2, 13 at K = 3, 10 at "
                         f"K = 4), got K={n_components}, N={n_samples}. Use reference='nuts' "
                         f"(a long NUTS run), or grade on a subset of the data.")
    return evidence.exact_posterior(fit.points, fit.spec)


def _exact_grades(rows: dict[str, dict[str, Any]], fits: Mapping[str, MixtureFit],
                  exact: Any) -> None:
    """Label-invariant errors of every fit against the exact posterior (rows in place).

    ``cocluster_max_err``: max over pairs of |P_fit(z_i = z_j) - P_exact(z_i = z_j | x)|;
    ``predictive_mean_err``: mean over the data of |log p_fit(x_i) - log p(x_i | x)|
    (the posterior predictive log density, nats); ``evidence_err``: the fit's log p(x)
    estimate, else its ELBO, minus the exact log p(x) (nats; an ELBO must be <= 0 here),
    with ``evidence_err_se`` its standard error.
    """
    from ppl_mixtures.analysis import diagnostics

    points = exact.points
    truth = exact.predictive_logpdf(points)
    for key, fit in fits.items():
        row = rows[key]
        co = diagnostics.coclustering(fit, points)
        row["cocluster_max_err"] = float(np.max(np.abs(co - exact.coclustering)))
        pred = diagnostics.predictive_logpdf(fit, points)
        row["predictive_mean_err"] = float(np.mean(np.abs(pred - truth)))
        parts: list[str] = []
        if _finite(row["log_evidence"]):
            err, se = row["log_evidence"] - exact.log_evidence, row["log_evidence_se"]
            side = "below" if err < 0 else "above"
            if _finite(se) and se > 0 and abs(err) > EVIDENCE_Z * se:
                parts.append(f"log p(x) estimate {abs(err):.2f} nats ({abs(err) / se:.1f} se) "
                             f"{side} the exact value")
            elif not (_finite(se) and se > 0) and abs(err) > ELBO_GAP_TOL:
                parts.append(f"log p(x) estimate {abs(err):.2f} nats {side} the exact value "
                             f"(no standard error)")
        elif _finite(row["elbo"]):
            err, se = row["elbo"] - exact.log_evidence, np.nan_to_num(row["elbo_se"])
            if err > EVIDENCE_Z * se + 1e-6:
                parts.append(f"ELBO {err:.2f} nats above the exact log p(x) (impossible for "
                             f"a lower bound: the ELBO is wrong)")
        else:
            err, se = np.nan, np.nan
        row["evidence_err"], row["evidence_err_se"] = float(err), float(se)
        row["exact_parts"] = parts


def _evidence_below_elbos(rows: dict[str, dict[str, Any]]) -> None:
    """Flag log p(x) estimates below a fit's ELBO (a lower bound on log p(x)), in place.

    Estimate e (se s_e) is impossible when e + EVIDENCE_Z * sqrt(s_e^2 + s_b^2) < ELBO_b for
    some fit b (se s_b; a missing se counts as 0). The row gets "below_elbo" in its
    ``evidence_flags`` (once) and a verdict phrase naming the fit.
    """
    for row in rows.values():
        if not _finite(row["log_evidence"]):
            continue
        worst = None
        for b, other in rows.items():
            if not _finite(other["elbo"]):
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
                f"on log p(x)): the estimate is too low")


def _khats(rows: dict[str, dict[str, Any]], fits: Mapping[str, MixtureFit],
           limit: int | None) -> None:
    """Pareto k-hat of p/q for every VI fit (``diagnostics.vi_khat``), rows in place.

    A fit whose k-hat is not computed (more than ``limit`` observations, or no q
    recorded) keeps NaN, with the reason in ``khat_note``.
    """
    from ppl_mixtures.analysis import diagnostics

    for key, fit in fits.items():
        row = rows[key]
        if row["family"] != "vi":
            continue
        if limit is not None and fit.points.shape[0] > limit:
            row["khat_note"] = (f"skipped: {fit.points.shape[0]:,} observations > {limit:,} "
                                f"(pass khat=True to compute it)")
            continue
        try:
            row["khat"] = float(diagnostics.vi_khat(fit, fit.points))
        except (ValueError, NotImplementedError, KeyError) as err:  # e.g. no q recorded
            row["khat_note"] = f"{type(err).__name__}: {err}"


def _check_same_question(fits: Mapping[str, MixtureFit], reference: str) -> None:
    """ValueError naming every fit whose spec or data differ from the reference's."""
    ref = fits[reference]
    spec_ref, data_ref = ref.spec_fingerprint, ref.data_fingerprint
    ref_spec = ref.spec.to_dict()
    problems = []
    for key, fit in fits.items():
        what = []
        if fit.spec_fingerprint != spec_ref:
            fields = [f"{k}={v!r} vs {ref_spec.get(k)!r}"
                      for k, v in fit.spec.to_dict().items()
                      if k not in _PARAMETERIZATION_FIELDS and v != ref_spec.get(k)]
            what.append(f"spec ({', '.join(fields) or 'differs'})")
        if fit.data_fingerprint != data_ref:
            if fit.points.shape != ref.points.shape:
                what.append(f"data (shape {fit.points.shape} vs {ref.points.shape})")
            else:
                what.append(f"data (same shape {fit.points.shape}, different values)")
        if what:
            problems.append(f"fits[{key!r}] differs in {' and '.join(what)}")
    if problems:
        raise ValueError(f"fits: expected every fit to answer the reference's question (the "
                         f"spec and data of fits[{reference!r}]), got: {'; '.join(problems)}. "
                         f"Fit every engine to the same points with the same MixtureSpec.")


def _known_evidence(fits: Mapping[str, MixtureFit], reference: str) -> dict[str, Any] | None:
    """The first fit (reference first) that estimated log p(x), with se/method/flags."""
    for key, fit in ((reference, fits[reference]), *fits.items()):
        if fit.extras.get("log_evidence") is not None:
            se = fit.extras.get("log_evidence_se")
            return {"source": key, "value": float(fit.extras["log_evidence"]),
                    "se": float(se) if se is not None else None,
                    "method": fit.extras.get("log_evidence_method"),
                    "flags": tuple(_evidence_flags(fit))}
    return None


def compare(fits: Mapping[str, MixtureFit], reference: str = "nuts", *,
            not_applicable: Mapping[str, str] | None = None,
            log_evidence: float | None = None, name: str | None = None,
            khat: bool | str = "auto",
            feature_names: Sequence[str] | None = None,
            units: str | Sequence[str] | None = None,
            data_transform: tuple[Any, Any] | None = None) -> Comparison:
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
        A known log p(x) in nats. By default the reference's ``extras["log_evidence"]``
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

    if not isinstance(fits, Mapping) or not fits:
        raise TypeError(f"fits: expected a non-empty mapping of name -> MixtureFit, got "
                        f"{type(fits).__name__}. Pass e.g. {{'nuts': nuts_fit, 'cavi': cavi_fit}}.")
    for key, fit in fits.items():
        if not isinstance(fit, MixtureFit):
            raise TypeError(f"fits[{key!r}]: expected a MixtureFit, got {type(fit).__name__}. "
                            f"Pass the result of ppl_mixtures.fit(...).")
    if not ((isinstance(khat, str) and khat == "auto")
            or isinstance(khat, bool | np.bool_)):
        raise TypeError(f"khat: expected 'auto', True or False, got {khat!r}. Pass "
                        f"khat='auto' (k-hat up to {KHAT_MAX_SAMPLES:,} observations), "
                        f"True or False.")
    if log_evidence is not None:
        log_evidence = check_real("log_evidence", log_evidence,
                                  hint="Pass log p(x) in nats, e.g. -320.8, or None")
    graded_by = None
    if reference == "exact" and "exact" not in fits:
        graded_by, reference = "exact", _default_parameter_reference(fits)
    if reference not in fits:
        raise ValueError(f"reference: expected one of the fits given ({', '.join(fits)}) or "
                         f"'exact', got {reference!r}. Pass reference=<one of those>, or add "
                         f"that fit.")
    _check_same_question(fits, reference)
    exact = _exact_posterior(fits[reference]) if graded_by == "exact" else None
    aligned = {key: fit if fit.family else fit.replace(family=_family(fit) or None)
               for key, fit in _align(fits, reference).items()}
    params = pd.DataFrame(_parameter_rows(aligned, reference))
    rows = {key: _engine_row(key, fit, params) for key, fit in aligned.items()}
    _elbo_shortfalls(rows)
    if khat:
        _khats(rows, aligned, limit=KHAT_MAX_SAMPLES if khat == "auto" else None)
    if exact is not None:
        _exact_grades(rows, aligned, exact)
    _evidence_below_elbos(rows)
    weak = _reference_weakness(rows[reference])
    rows[reference]["reference_weak"] = "; ".join(weak)
    for key, row in rows.items():
        mine = params[(params["engine"] == key) & params["free"] & params["significant"]]
        row["verdict"] = _verdict(row, key == reference, mine.to_dict(orient="records"))
        for private in ("rhat_after", "reference_weak", "exact_parts"):
            row.pop(private, None)
    engines = pd.DataFrame.from_dict(rows, orient="index")
    engines.index.name = "engine"
    if exact is not None:
        evidence = {"source": "exact", "value": float(exact.log_evidence), "se": 0.0,
                    "method": "enumeration", "flags": ()}
    elif log_evidence is not None:
        evidence = {"source": "given", "value": float(log_evidence), "se": None,
                    "method": None, "flags": ()}
    else:
        evidence = _known_evidence(fits, reference)
        if evidence is not None:  # with the flags compare found (below another fit's ELBO)
            evidence["flags"] = tuple(dict.fromkeys(
                [*evidence["flags"], *rows[evidence["source"]]["evidence_flags"]]))
    evidence = evidence or {"source": None, "value": None, "se": None, "method": None,
                            "flags": ()}
    return Comparison(reference=reference, fits=aligned,
                      parameters=params.drop(columns="_ref_sd"), engines=engines,
                      not_applicable=dict(not_applicable or {}), log_evidence=evidence["value"],
                      name=name, log_evidence_source=evidence["source"],
                      log_evidence_se=evidence["se"], log_evidence_method=evidence["method"],
                      log_evidence_flags=evidence["flags"], reference_weak_reasons=tuple(weak),
                      graded_by=graded_by,
                      exact_log_evidence=None if exact is None else float(exact.log_evidence),
                      feature_names=feature_names, units=units,
                      data_transform=data_transform)
