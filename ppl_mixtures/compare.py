"""`compare(fits, reference="nuts")`: put every engine's answer beside a reference answer.

Each fit is first made label-consistent (the reference with itself, every other fit onto
the reference's posterior-mean means, see :mod:`ppl_mixtures.relabel`), then each model
parameter (``means[k,d]``, ``weights[k]``, ``obs_sd[k,d]`` when learned) is summarized per
engine, and each engine gets one verdict a student can read.

Only numpy and scipy are imported at module level; pandas (the tables) and arviz (R-hat,
ESS) are imported when a comparison is built.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from .relabel import relabel
from .results import MixtureFit

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = [
    "LABEL_SWITCH_FRACTION",
    "MEAN_SHIFT_TOL",
    "RHAT_TOL",
    "SD_RATIO_TOL",
    "Comparison",
    "compare",
]

#: An engine's sds agree with the reference's when their geometric-mean ratio is within
#: [1/SD_RATIO_TOL, SD_RATIO_TOL]; outside it the verdict says "too narrow/wide by r x".
SD_RATIO_TOL = 1.25
#: Posterior means agree when every parameter's |mean - reference mean| is at most this
#: many reference posterior sds; beyond it the verdict says "means off by s reference sd".
MEAN_SHIFT_TOL = 1.0
#: A fit "label-switched" when at least this fraction of its draws had to be relabeled
#: to agree with its own consensus labeling (between chains or inside a chain).
LABEL_SWITCH_FRACTION = 0.01
#: Chains disagree (after relabeling) when the max R-hat exceeds this.
RHAT_TOL = 1.05


def _parameter_labels(name: str, shape: tuple[int, ...]) -> list[str]:
    """``means[0,1]``-style labels for every entry of a (K,) or (K, D) parameter."""
    return [f"{name}[{','.join(str(i) for i in idx)}]" for idx in np.ndindex(*shape)]


def _flat_draws(fit: MixtureFit, name: str) -> np.ndarray:
    """Draws of one parameter flattened to (n_chains * n_draws, n_entries)."""
    draws = fit.draws(name)
    return draws.reshape(draws.shape[0] * draws.shape[1], -1)


def _sd(flat: np.ndarray) -> np.ndarray:
    """Sd over draws (ddof=0) of shape (n_entries,); exactly 0 for a constant entry."""
    return np.where(np.ptp(flat, axis=0) == 0, 0.0, flat.std(axis=0))


def _diagnostics(fit: MixtureFit, name: str) -> tuple[np.ndarray, np.ndarray]:
    """R-hat and bulk ESS per entry, shape (n_entries,) each; NaN with fewer than 2 chains."""
    n_entries = int(np.prod(fit.draws(name).shape[2:]))
    if fit.n_chains < 2 or fit.n_draws < 4:
        return np.full(n_entries, np.nan), np.full(n_entries, np.nan)
    import arviz as az

    post = fit.idata["posterior"][name]
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        rhat = np.asarray(az.rhat(post).values, dtype=float).reshape(-1)
        ess = np.asarray(az.ess(post, method="bulk").values, dtype=float).reshape(-1)
    return rhat, ess


def _label_switch_info(fit: MixtureFit) -> dict[str, Any]:
    """How much a fit needed relabeling against itself (from ``extras['relabel']``)."""
    info = fit.extras.get("relabel", {})
    total = max(fit.n_chains * fit.n_draws, 1)
    moved = int(info.get("draws_relabeled", 0))
    return {"fraction_relabeled": moved / total,
            "rhat_before": info.get("rhat_before"), "rhat_after": info.get("rhat_after"),
            "label_switched": fit.n_components > 1 and moved / total >= LABEL_SWITCH_FRACTION}


def _verdict(row: Mapping[str, Any], is_reference: bool) -> str:
    """One readable sentence from an engine's summary numbers (thresholds: module constants)."""
    parts: list[str] = []
    if is_reference:
        parts.append("reference")
    if row["label_switched"]:
        after = row["rhat_after"]
        if after is None or not np.isfinite(after) or after <= RHAT_TOL:
            parts.append("label-switched (fixed by relabeling)")
        else:
            parts.append(f"label-switched (R-hat still {after:.2f} after relabeling)")
    elif row["rhat_max"] is not None and np.isfinite(row["rhat_max"]) and row["rhat_max"] > RHAT_TOL:
        parts.append(f"chains disagree (R-hat {row['rhat_max']:.2f})")
    if row["converged"] is False:
        parts.append("did not converge (engine's own criterion)")
    if not is_reference:
        point = row["n_draws_total"] <= 1
        if point:
            parts.append("point estimate (no uncertainty)")
        shift, ratio = row["max_mean_shift"], row["sd_ratio"]
        if np.isfinite(shift) and shift > MEAN_SHIFT_TOL:
            parts.append(f"means off by {shift:.1f} reference sd")
        if not point and np.isfinite(ratio):
            if ratio < 1.0 / SD_RATIO_TOL:
                parts.append(f"too narrow by {1.0 / ratio:.1f}x")
            elif ratio > SD_RATIO_TOL:
                parts.append(f"too wide by {ratio:.1f}x")
        if not np.isfinite(shift) and not np.isfinite(ratio):
            parts.append("cannot judge (the reference has no spread)")
    agrees = not parts or parts == ["reference"]
    if agrees and not is_reference:
        return "agrees"
    return "; ".join(parts) if parts else "agrees"


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
        Name of the reference fit (its verdict starts with "reference").
    fits : Mapping[str, MixtureFit]
        The fits after relabeling (component k means the same thing in every fit).
    parameters : pandas.DataFrame
        One row per (parameter, engine): ``parameter`` ("means[0,1]"), ``engine``,
        ``mean``, ``sd``, ``r_hat``, ``ess_bulk`` (NaN with < 2 chains), ``sd_ratio``
        (engine sd / reference sd), ``mean_shift`` (|mean - reference mean| in reference
        sds) and ``wasserstein`` (Wasserstein-1 distance between the engine's and the
        reference's marginal draws, in the parameter's units).
    engines : pandas.DataFrame
        One row per engine, indexed by name: ``family``, ``chains``, ``draws``,
        ``build_s``, ``run_s``, ``total_s``, ``elbo`` and ``elbo_se`` (nats, NaN when
        undefined), ``log_evidence`` and ``log_evidence_se`` (nats, NaN when unknown),
        ``sd_ratio`` (geometric mean over parameters), ``sd_ratio_min``/``sd_ratio_max``,
        ``max_mean_shift``, ``w1_mean`` (mean Wasserstein-1 / reference sd), ``rhat_max``,
        ``rhat_before_relabel``, ``fraction_relabeled``, ``label_switched``, ``converged``
        and ``verdict``.
    not_applicable : Mapping[str, str]
        Engines that could not serve the spec, with the reason (reports list them).
    log_evidence : float or None
        A known log p(x) in nats (exact, or from SMC), drawn as a line under ELBO traces.
    name : str or None
        Dataset name for titles and reports.
    log_evidence_source : str or None
        Where ``log_evidence`` came from: the fit that estimated it, or "given".
    """

    reference: str
    fits: Mapping[str, MixtureFit]
    parameters: pd.DataFrame
    engines: pd.DataFrame
    not_applicable: Mapping[str, str] = field(default_factory=dict)
    log_evidence: float | None = None
    name: str | None = None
    log_evidence_source: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "fits", MappingProxyType(dict(self.fits)))
        object.__setattr__(self, "not_applicable", MappingProxyType(dict(self.not_applicable)))

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
        """One row per parameter, one column per engine, holding ``column``."""
        table = self.parameters.pivot(index="parameter", columns="engine", values=column)
        order = list(dict.fromkeys(self.parameters["parameter"]))
        return table.loc[order, list(self.fits)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: every number in the tables (NaN as null), verdicts and settings."""
        engines = {}
        for name, row in self.engines.iterrows():
            entry = {key: _json_number(val) for key, val in row.items()}
            fit = self.fits[name]
            entry["options"] = {k: _jsonable(v) for k, v in fit.options.items()}
            entry["n_iter"] = fit.n_iter
            engines[name] = entry
        parameters = [{key: _json_number(val) for key, val in rec.items()}
                      for rec in self.parameters.to_dict(orient="records")]
        return {"name": self.name, "reference": self.reference,
                "spec": self.spec.to_dict(),
                "n_samples": int(self.points.shape[0]), "n_features": int(self.points.shape[1]),
                "log_evidence": _json_number(self.log_evidence),
                "log_evidence_source": self.log_evidence_source,
                "thresholds": {"sd_ratio_tol": SD_RATIO_TOL, "mean_shift_tol": MEAN_SHIFT_TOL,
                               "label_switch_fraction": LABEL_SWITCH_FRACTION,
                               "rhat_tol": RHAT_TOL},
                "engines": engines, "parameters": parameters,
                "not_applicable": dict(self.not_applicable)}

    def to_markdown(self, *, digits: int = 3) -> str:
        """The engine table, then the parameters (mean ± sd, sd ratio, Wasserstein-1)."""
        eng = self.engines
        rows = [[name, r["family"], f"{r['chains']}x{r['draws']}", _fmt(r["build_s"], 2),
                 _fmt(r["run_s"], 2), _fmt_pm(r["elbo"], r["elbo_se"], 1),
                 _fmt_pm(r["log_evidence"], r["log_evidence_se"], 1), _fmt(r["sd_ratio"], 2),
                 _fmt(r["max_mean_shift"], 2), _fmt(r["rhat_max"], 3), r["verdict"]]
                for name, r in eng.iterrows()]
        rows += [[name, "", "", "", "", "", "", "", "", "", f"not applicable: {why}"]
                 for name, why in self.not_applicable.items()]
        out = [markdown_table(["engine", "family", "chains x draws", "build (s)", "run (s)",
                               "ELBO (nats)", "log p(x) (nats)", "sd ratio",
                               "max shift (ref sd)", "max R-hat", "verdict"], rows)]
        means, sds = self.wide_table("mean"), self.wide_table("sd")
        ratio, w1 = self.wide_table("sd_ratio"), self.wide_table("wasserstein")
        names = list(self.fits)
        out.append("\nPosterior mean ± sd of each parameter (components aligned to the "
                   f"reference, {self.reference}):\n")
        out.append(markdown_table(
            ["parameter", *names],
            [[p, *(_fmt_pm(means.loc[p, n], sds.loc[p, n], digits) for n in names)]
             for p in means.index]))
        others = [n for n in names if n != self.reference]
        if others:
            out.append(f"\nsd ratio engine / {self.reference} (1 = same width; mean-field VI "
                       "is usually < 1):\n")
            out.append(markdown_table(
                ["parameter", *others],
                [[p, *(_fmt(ratio.loc[p, n], 2) for n in others)] for p in means.index]))
            out.append(f"\nWasserstein-1 distance between each engine's draws and "
                       f"{self.reference}'s (parameter units; 0 = same distribution):\n")
            out.append(markdown_table(
                ["parameter", *others],
                [[p, *(_fmt(w1.loc[p, n], digits) for n in others)] for p in means.index]))
        return "\n".join(out) + "\n"

    def __str__(self) -> str:
        return self.to_markdown()

    __repr__ = __str__

    # ------------------------------------------------------------------ plots
    def plot_data(self, **kwargs: Any) -> Figure:
        """Data with each engine's component means and 1/2-sd ellipses (see plots.py)."""
        from . import plots

        return plots.plot_data(self, **kwargs)

    def plot_elbo(self, **kwargs: Any) -> Figure:
        """ELBO traces of the VI engines, in nats, with the known log evidence."""
        from . import plots

        return plots.plot_elbo(self, **kwargs)

    def plot_marginals(self, **kwargs: Any) -> Figure:
        """Posterior marginals of every parameter, one engine per colour."""
        from . import plots

        return plots.plot_marginals(self, **kwargs)

    def plot_forest(self, **kwargs: Any) -> Figure:
        """ArviZ forest plot of every engine's posterior."""
        from . import plots

        return plots.plot_forest(self, **kwargs)

    def plot_trace(self, engine: str | None = None, **kwargs: Any) -> Figure:
        """ArviZ trace plot of one engine (default: the reference)."""
        from . import plots

        return plots.plot_trace(self.fits[engine or self.reference], **kwargs)

    def plot_responsibilities(self, engine: str | None = None, **kwargs: Any) -> Figure:
        """Data coloured by each point's component responsibilities under one engine."""
        from . import plots

        return plots.plot_responsibilities(self.fits[engine or self.reference], **kwargs)


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
    from scipy.stats import wasserstein_distance  # scipy.stats costs ~1 s to import

    ref = fits[reference]
    rows = []
    for pname in ref.parameter_names():
        ref_flat = _flat_draws(ref, pname)
        labels = _parameter_labels(pname, ref.draws(pname).shape[2:])
        ref_mean, ref_sd = ref_flat.mean(0), _sd(ref_flat)
        for name, fit in fits.items():
            if pname not in fit.parameter_names():
                continue
            flat = _flat_draws(fit, pname)
            rhat, ess = _diagnostics(fit, pname)
            mean, sd = flat.mean(0), _sd(flat)
            for j, label in enumerate(labels):
                has_spread = ref_sd[j] > 0
                rows.append({
                    "parameter": label, "engine": name, "mean": float(mean[j]),
                    "sd": float(sd[j]), "r_hat": float(rhat[j]), "ess_bulk": float(ess[j]),
                    "sd_ratio": float(sd[j] / ref_sd[j]) if has_spread else np.nan,
                    "mean_shift": (float(abs(mean[j] - ref_mean[j]) / ref_sd[j])
                                   if has_spread else np.nan),
                    "wasserstein": float(wasserstein_distance(flat[:, j], ref_flat[:, j])),
                    "_ref_sd": float(ref_sd[j]),
                })
    return rows


def _engine_row(name: str, fit: MixtureFit, params: pd.DataFrame) -> dict[str, Any]:
    from .engines import available_engines

    mine = params[params["engine"] == name]
    judged = mine[np.isfinite(mine["sd_ratio"])]
    positive = judged[judged["sd_ratio"] > 0]
    sd_ratio = (float(np.exp(np.log(positive["sd_ratio"]).mean()))
                if len(positive) and len(positive) == len(judged)
                else (0.0 if len(judged) else np.nan))
    w1_scaled = (judged["wasserstein"] / judged["_ref_sd"]) if len(judged) else judged["sd_ratio"]
    rhat = mine["r_hat"].to_numpy()
    switch = _label_switch_info(fit)
    registry = available_engines()
    family = registry[fit.engine].family if fit.engine in registry else ""
    extras = fit.extras
    row = {
        "family": family, "chains": fit.n_chains, "draws": fit.n_draws,
        "n_draws_total": fit.n_chains * fit.n_draws,
        "build_s": fit.timings.build, "run_s": fit.timings.run, "total_s": fit.timings.total,
        "elbo": fit.final_elbo if fit.final_elbo is not None else np.nan,
        "elbo_se": float(extras.get("elbo_final_se", np.nan)),
        "log_evidence": float(extras.get("log_evidence", np.nan)),
        "log_evidence_se": float(extras.get("log_evidence_se", np.nan)),
        "sd_ratio": sd_ratio,
        "sd_ratio_min": float(judged["sd_ratio"].min()) if len(judged) else np.nan,
        "sd_ratio_max": float(judged["sd_ratio"].max()) if len(judged) else np.nan,
        "max_mean_shift": float(judged["mean_shift"].max()) if len(judged) else np.nan,
        "w1_mean": float(w1_scaled.mean()) if len(judged) else np.nan,
        "rhat_max": float(np.nanmax(rhat)) if np.isfinite(rhat).any() else np.nan,
        "rhat_before_relabel": (np.nan if switch["rhat_before"] is None
                                else float(switch["rhat_before"])),
        "fraction_relabeled": switch["fraction_relabeled"],
        "label_switched": bool(switch["label_switched"]),
        "converged": fit.converged,
    }
    row["rhat_after"] = switch["rhat_after"]
    return row


def compare(fits: Mapping[str, MixtureFit], reference: str = "nuts", *,
            not_applicable: Mapping[str, str] | None = None,
            log_evidence: float | None = None, name: str | None = None) -> Comparison:
    """Compare fits of one spec on one dataset against a reference fit.

    Parameters
    ----------
    fits : Mapping[str, MixtureFit]
        Fits by display name (usually the engine name), all of the same spec and data.
    reference : str
        The key of the fit the others are judged against (usually long-run NUTS).
    not_applicable : Mapping[str, str], optional
        Engines that could not serve the spec, with the reason, listed in tables.
    log_evidence : float, optional
        A known log p(x) in nats. By default the reference's ``extras["log_evidence"]``
        (e.g. SMC), or any fit's, is used when present.
    name : str, optional
        Dataset name, for titles.

    Returns
    -------
    Comparison

    Raises
    ------
    ValueError
        When ``reference`` is not a key of ``fits``, or the fits disagree on K or the data
        shape.
    TypeError
        When a value is not a MixtureFit.

    Notes
    -----
    Verdict rules (the thresholds are module constants, also stored in ``to_dict()``):

    - "label-switched (fixed by relabeling)": >= ``LABEL_SWITCH_FRACTION`` (1 %) of the
      fit's draws changed labels when aligned to the fit's own consensus, and the max
      R-hat after relabeling is <= ``RHAT_TOL`` (1.05) (or there is one chain);
    - "chains disagree (R-hat r)": no switching, but max R-hat > ``RHAT_TOL``;
    - "point estimate (no uncertainty)": a single draw (EM, MAP);
    - "means off by s reference sd": s = max over parameters of |mean - reference mean| /
      reference sd exceeds ``MEAN_SHIFT_TOL`` (1.0);
    - "too narrow by r x" / "too wide by r x": the geometric mean over parameters of
      sd / reference sd is below 1 / ``SD_RATIO_TOL`` or above ``SD_RATIO_TOL`` (1.25);
    - "did not converge (engine's own criterion)": ``fit.converged is False``;
    - "agrees": none of the above. Parameters the reference does not vary (fixed
      weights) are left out of the ratios and shifts.
    """
    import pandas as pd

    if not isinstance(fits, Mapping) or not fits:
        raise TypeError(f"fits: expected a non-empty mapping of name -> MixtureFit, got "
                        f"{type(fits).__name__}. Pass e.g. {{'nuts': nuts_fit, 'cavi': cavi_fit}}.")
    for key, fit in fits.items():
        if not isinstance(fit, MixtureFit):
            raise TypeError(f"fits[{key!r}]: expected a MixtureFit, got {type(fit).__name__}. "
                            f"Pass the result of ppl_mixtures.fit(...).")
    if reference not in fits:
        raise ValueError(f"reference: expected one of the fits given ({', '.join(fits)}), got "
                         f"{reference!r}. Pass reference=<one of those>, or add that fit.")
    ref = fits[reference]
    for key, fit in fits.items():
        if fit.n_components != ref.n_components or fit.points.shape != ref.points.shape:
            raise ValueError(f"fits[{key!r}]: expected K={ref.n_components} and data of shape "
                             f"{ref.points.shape} like the reference, got K={fit.n_components} "
                             f"and {fit.points.shape}. Compare fits of one spec on one dataset.")
    aligned = _align(fits, reference)
    params = pd.DataFrame(_parameter_rows(aligned, reference))
    rows = {}
    for key, fit in aligned.items():
        row = _engine_row(key, fit, params)
        row["verdict"] = _verdict(row, key == reference)
        del row["rhat_after"]
        rows[key] = row
    engines = pd.DataFrame.from_dict(rows, orient="index")
    engines.index.name = "engine"
    source = "given" if log_evidence is not None else None
    if log_evidence is None:
        known = [(key, f.extras["log_evidence"]) for key, f in ((reference, ref), *fits.items())
                 if f.extras.get("log_evidence") is not None]
        if known:
            source, log_evidence = known[0][0], float(known[0][1])
    return Comparison(reference=reference, fits=aligned,
                      parameters=params.drop(columns="_ref_sd"), engines=engines,
                      not_applicable=dict(not_applicable or {}), log_evidence=log_evidence,
                      name=name, log_evidence_source=source)
