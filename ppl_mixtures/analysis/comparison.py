"""`Comparison`: every engine's answer beside the reference's, as tables and verdicts.

A Comparison holds data only (pandas tables, the aligned fits, verdict sentences); it is
built by :func:`ppl_mixtures.compare`. Its markdown (:meth:`Comparison.to_markdown`) and
figures (``plot_*``) are shortcuts to :mod:`ppl_mixtures.present.tables` and
:mod:`ppl_mixtures.present.plots`, imported when called (declared in pyproject's
import-linter contracts), so nothing here depends on matplotlib. :meth:`Comparison.to_dict`
is the JSON-ready form of the same numbers.

(About 450 lines, most of them the class docstring, which documents every column of the
two tables; the class is one thing and stays in one place.)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from ppl_mixtures.analysis.features import (
    check_feature_names,
    check_transform,
    check_units,
    in_data_units,
    parameter_label,
    units_note,
)
from ppl_mixtures.analysis.summaries import wide
from ppl_mixtures.analysis.verdicts import (
    ESS_MIN,
    GROUPS,
    RHAT_TOL,
    finite,
    thresholds,
    verdict_rules,
)
from ppl_mixtures.model.spec import MixtureSpec
from ppl_mixtures.results import MixtureFit, frozen_state, restore_frozen_state

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = ["Comparison", "has_dp", "rule_groups"]


def _json_number(value: Any) -> Any:
    """A JSON-ready scalar: numpy scalars to Python, NaN/inf to None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _jsonable(value: Any) -> Any:
    """Options as plain JSON (arrays to lists, unknown objects to their repr)."""
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
        with the ``family`` the fit recorded (``ppl_mixtures.fit`` always sets it).
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
        How it was computed (the fit's ``evidence.method``, or "enumeration").
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
        (:mod:`ppl_mixtures.analysis.features`) and store them as tuples and read-only
        float64 arrays."""
        if self.feature_names is None and self.units is None and self.data_transform is None:
            return
        n_features = int(self.points.shape[1])
        names = check_feature_names(n_features, self.feature_names)
        units = check_units(n_features, self.units)
        center, scale = check_transform(n_features, self.data_transform)
        if self.feature_names is not None:
            object.__setattr__(self, "feature_names", names)
        if self.units is not None and not isinstance(self.units, str):
            object.__setattr__(self, "units", units)
        if self.data_transform is not None:
            for array in (center, scale):
                array.setflags(write=False)
            object.__setattr__(self, "data_transform", (center, scale))

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> dict[str, Any]:
        """Fields for pickle (report sections render in worker processes): the read-only
        mappings as plain dicts."""
        return frozen_state(self, ("fits", "not_applicable"))

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        restore_frozen_state(self, state, ("fits", "not_applicable"))

    # ------------------------------------------------------------------ data units
    def parameter_label(self, parameter: str, with_unit: bool = True) -> str:
        """A table label with the feature's name and unit: "means[0,1]" ->
        "means[0, waiting time] (min)" (no unit for unit-free columns such as sd ratios:
        ``with_unit=False``); unchanged without ``feature_names``/``units``."""
        return parameter_label(parameter, self.feature_names, self.units, with_unit=with_unit)

    def parameters_in_data_units(self) -> pd.DataFrame:
        """The ``parameters`` table with ``mean``, ``sd``, ``mcse`` and ``wasserstein`` in
        the data's own units when ``data_transform`` is set (a copy; unchanged otherwise).

        A standardized value v of means[k, d] is ``center[d] + scale[d] * v`` and its sd,
        MCSE and Wasserstein distance are multiplied by ``scale[d]``; obs_sd[k, d] (and its
        spread) is multiplied by ``scale[d]``; weights are unit-free. Shifts and sd ratios
        are ratios of the same units and do not change.
        """
        return in_data_units(self.parameters, self.data_transform)

    def units_note(self) -> str | None:
        """One sentence on the units of the parameter tables (None when nothing to say)."""
        return units_note(self.units, self.data_transform)

    # ------------------------------------------------------------------ judgement
    @property
    def reference_strong(self) -> bool:
        """True when the reference passed every test of ``ESS_MIN`` / ``RHAT_TOL``."""
        return not self.reference_weak_reasons

    @property
    def thresholds(self) -> dict[str, float]:
        """Every threshold the verdicts use, by name (also in ``to_dict()``)."""
        return thresholds()

    def rules_text(self) -> str:
        """The verdict rules with their thresholds, in words (:func:`verdict_rules`), naming
        the groups of :func:`rule_groups` (``obs_corr`` only when correlations are compared)."""
        return verdict_rules(groups=rule_groups([self]), dp=has_dp([self]))

    def reference_line(self) -> str:
        """One sentence: is the reference strong, and if not, why."""
        row = self.engines.loc[self.reference]
        if self.reference_strong:
            return (
                f"Reference {self.reference}: strong ({row['chains']} chains, max R-hat "
                f"{row['rhat_max']:.3f} <= {RHAT_TOL:g}, min bulk ESS "
                f"{row['ess_min']:.0f} >= {ESS_MIN})."
            )
        advice = (
            " rerun it longer (e.g. 4 chains x 1000 draws or more)."
            if row["family"] == "mcmc"
            else " use a long MCMC run (nuts) as the reference."
        )
        return (
            f"Reference {self.reference} is weak: "
            f"{'; '.join(self.reference_weak_reasons)}. Shifts and sd ratios against "
            f"it carry its error;{advice}"
        )

    def evidence_line(self) -> str | None:
        """How log p(x) is known: exact, given, or an estimate with its se and flags."""
        if self.log_evidence is None:
            return None
        if self.log_evidence_source == "exact":
            return (
                f"Exact log evidence log p(x) = {self.log_evidence:.3f} nats "
                f"(enumeration of every assignment)."
            )
        if self.log_evidence_source == "given":
            return f"Log evidence log p(x) = {self.log_evidence:.3f} nats (given)."
        se = (
            f" ± {self.log_evidence_se:.3f}"
            if finite(self.log_evidence_se)
            else " (no standard error)"
        )
        method = f", {self.log_evidence_method}" if self.log_evidence_method else ""
        text = (
            f"Log evidence estimate log p(x) = {self.log_evidence:.3f}{se} nats "
            f"(from {self.log_evidence_source}{method})."
        )
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
    def spec(self) -> MixtureSpec:
        return self.reference_fit.spec

    def verdicts(self) -> dict[str, str]:
        """Engine name -> verdict."""
        return dict(self.engines["verdict"].items())

    def to_dataframe(self) -> pd.DataFrame:
        """The parameter table in long form, with each engine's verdict joined on."""
        return self.parameters.merge(
            self.engines[["verdict"]], left_on="engine", right_index=True, how="left"
        )

    def wide_table(self, column: str = "mean") -> pd.DataFrame:
        """One row per parameter, one column per engine, holding ``column`` (fitted units)."""
        return wide(self.parameters, column, list(self.fits))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: every number in the tables (NaN as null), verdicts and settings."""
        engines = {}
        for name, row in self.engines.iterrows():
            entry = {key: _jsonable(val) for key, val in row.items()}
            fit = self.fits[name]
            entry["options"] = {k: _jsonable(v) for k, v in fit.options.items()}
            entry["n_iter"] = fit.n_iter
            engines[name] = entry
        parameters = [
            {key: _json_number(val) for key, val in rec.items()}
            for rec in self.parameters.to_dict(orient="records")
        ]
        return {
            "name": self.name,
            "reference": self.reference,
            "graded_by": self.graded_by,
            "reference_strong": self.reference_strong,
            "reference_weak_reasons": list(self.reference_weak_reasons),
            "spec": self.spec.to_dict(),
            "n_samples": int(self.points.shape[0]),
            "n_features": int(self.points.shape[1]),
            "log_evidence": _json_number(self.log_evidence),
            "log_evidence_se": _json_number(self.log_evidence_se),
            "log_evidence_source": self.log_evidence_source,
            "log_evidence_method": self.log_evidence_method,
            "log_evidence_flags": list(self.log_evidence_flags),
            "exact_log_evidence": _json_number(self.exact_log_evidence),
            "thresholds": self.thresholds,
            "rules": self.rules_text(),
            "engines": engines,
            "parameters": parameters,
            "not_applicable": dict(self.not_applicable),
            **self._units_dict(),
        }

    def _units_dict(self) -> dict[str, Any]:
        """feature_names/units/data_transform for to_dict, and the data-unit parameters."""
        out: dict[str, Any] = {
            "feature_names": None if self.feature_names is None else list(self.feature_names),
            "units": self.units
            if self.units is None or isinstance(self.units, str)
            else list(self.units),
            "data_transform": None,
        }
        if self.data_transform is not None:
            out["data_transform"] = {
                "center": self.data_transform[0].tolist(),
                "scale": self.data_transform[1].tolist(),
            }
            out["parameters_data_units"] = [
                {key: _json_number(val) for key, val in rec.items()}
                for rec in self.parameters_in_data_units().to_dict(orient="records")
            ]
        return out

    def parameter_table_markdown(self, digits: int = 3) -> str:
        """Posterior mean ± sd of every parameter per engine, in the data's own units and
        feature names when known (:func:`ppl_mixtures.present.tables.parameter_table`)."""
        from ppl_mixtures.present import tables  # rendering lives in the present layer

        return tables.parameter_table(self, digits)

    def to_markdown(self, *, digits: int = 3, rules: bool = True) -> str:
        """The engine table, the reference's strength, log p(x), then the parameters
        (:func:`ppl_mixtures.present.tables.comparison_markdown`).

        Parameters
        ----------
        digits : int
            Decimals of the parameter table.
        rules : bool
            Append :meth:`rules_text` (a report with many datasets prints it once).
        """
        from ppl_mixtures.present import tables

        return tables.comparison_markdown(self, digits=digits, rules=rules)

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

        return plots.plot_trace(self.fits[engine or self.reference], **self._feature_kwargs(kwargs))

    def plot_responsibilities(self, engine: str | None = None, **kwargs: Any) -> Figure:
        """Data coloured by each point's component responsibilities under one engine."""
        from ppl_mixtures.present import plots

        return plots.plot_responsibilities(
            self.fits[engine or self.reference], **self._feature_kwargs(kwargs)
        )

    def _feature_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """``kwargs`` with this comparison's feature_names/units/data_transform as defaults
        (figures of one fit do not see the comparison)."""
        out = dict(kwargs)
        for key in ("feature_names", "units", "data_transform"):
            if out.get(key) is None and getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


def rule_groups(comparisons: Iterable[Comparison]) -> tuple[str, ...]:
    """The parameter groups the verdict rules name for these comparisons: means, weights
    and obs_sd (the wording of every diagonal comparison), then obs_corr when any of them
    has correlation rows (learned full or tied covariances) and dp_alpha when any has a
    learned DP concentration."""
    present = {
        group
        for comparison in comparisons
        for group in (comparison.parameters["group"] if "group" in comparison.parameters else ())
    }
    optional = ("obs_corr", "dp_alpha")  # named only when some comparison has such rows
    return tuple(group for group in GROUPS if group not in optional or group in present)


def has_dp(comparisons: Iterable[Comparison]) -> bool:
    """True when any of these comparisons is of truncated Dirichlet-process fits (the
    verdict rules then say how DP components are aligned)."""
    return any(fit.spec.is_dp for comparison in comparisons for fit in comparison.fits.values())
