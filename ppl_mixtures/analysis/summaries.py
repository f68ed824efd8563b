"""The numbers behind a comparison: aligned fits, one row per parameter, one row per engine.

:func:`align` relabels every fit onto the reference; :func:`parameter_rows` summarizes
each model parameter per engine (mean, sd, MCSE, R-hat, ESS, shift and sd ratio against the
reference, Wasserstein-1 distance); :func:`engine_row` aggregates one engine's rows (the
geometric-mean sd ratio over the free parameters, the largest shift, label switching).
The columns are documented on :class:`ppl_mixtures.analysis.comparison.Comparison`.

The rows are the model parameters (``results.PARAMETERS``: means, weights, obs_sd), a
truncated DP's learned concentration ``dp_alpha`` and, for
a learned full or tied covariance, its correlations ``obs_corr[k,i,j]`` for i < j
(:data:`TABLE_PARAMETERS`, :func:`table_parameters`): a covariance is tabled as its sds
(obs_sd, the square roots of the variances) and correlations, never as raw Cholesky
entries, and the diagonal ones of a correlation matrix are left out. Rows that only repeat
another are shown but not counted in the aggregates (``free`` is False), as the last weight:
a tied covariance's components after the first, a spherical sd's features after the first.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ppl_mixtures.analysis.relabel import relabel
from ppl_mixtures.analysis.verdicts import (
    LABEL_SWITCH_FRACTION,
    MCSE_Z,
    MEAN_SHIFT_TOL,
    variational_family,
)
from ppl_mixtures.results import PARAMETERS, MixtureFit

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "TABLE_PARAMETERS",
    "align",
    "correlation_label",
    "engine_row",
    "parameter_labels",
    "parameter_rows",
    "split_parameter",
    "table_entries",
    "table_parameters",
    "wide",
]

#: The parameter groups of the comparison tables, in table order: the model parameters,
#: then the correlations of a learned full (or tied) covariance, then a truncated DP's
#: learned concentration ``dp_alpha`` (a scalar: one row).
TABLE_PARAMETERS = (*PARAMETERS, "obs_corr", "dp_alpha")


def parameter_labels(name: str, shape: tuple[int, ...]) -> list[str]:
    """``means[0,1]``-style labels for every entry of a (K,) or (K, D) parameter; a scalar
    (shape ()) is labeled by its name alone (``dp_alpha``)."""
    if shape == ():
        return [name]
    return [f"{name}[{','.join(str(i) for i in idx)}]" for idx in np.ndindex(*shape)]


def split_parameter(label: str) -> tuple[str, int | None]:
    """("means", 1) from "means[0,1]"; ("weights", None) from "weights[2]"; ("dp_alpha",
    None) from the scalar "dp_alpha".

    A correlation "obs_corr[0,0,1]" has no single feature: ("obs_corr", None) (it is
    unit-free, so unit conversions leave it unchanged).
    """
    if "[" not in label:  # a scalar parameter, e.g. "dp_alpha"
        return label, None
    name, idx = label.rstrip("]").split("[")
    parts = idx.split(",")
    return name, (int(parts[1]) if len(parts) == 2 else None)


def correlation_label(label: str, feature_names: Sequence[str] | None = None) -> str:
    """A readable label of a correlation row: "obs_corr[0,0,1]" -> "corr[0: duration,
    waiting]" with feature names, "corr[0: feature 0, feature 1]" without (unit-free).

    Examples
    --------
    >>> correlation_label("obs_corr[1,0,2]", ("a", "b", "c"))
    'corr[1: a, c]'
    """
    name, idx = label.rstrip("]").split("[")
    if name != "obs_corr" or idx.count(",") != 2:
        raise ValueError(
            f"label: expected a correlation label like 'obs_corr[0,0,1]', got {label!r}."
        )
    k, i, j = (int(p) for p in idx.split(","))
    if feature_names is None:
        first, second = f"feature {i}", f"feature {j}"
    else:
        first, second = feature_names[i], feature_names[j]
    return f"corr[{k}: {first}, {second}]"


def table_parameters(fit: MixtureFit) -> tuple[str, ...]:
    """The fit's parameter groups in the tables: ``fit.parameter_names()``, plus
    ``obs_corr`` when the posterior has learned correlations (two or more features), plus
    ``dp_alpha`` when a truncated DP's concentration is learned."""
    post = fit.idata["posterior"]
    extra = ("obs_corr",) if "obs_corr" in post.data_vars and fit.n_features > 1 else ()
    if "dp_alpha" in post.data_vars:  # a DP's learned concentration
        extra = (*extra, "dp_alpha")
    return tuple(p for p in TABLE_PARAMETERS if p in (*fit.parameter_names(), *extra))


def table_entries(name: str, shape: tuple[int, ...]) -> tuple[list[str], np.ndarray]:
    """Labels and flat indices of the tabled entries of a parameter of ``shape`` (no
    chain/draw): every entry, except for ``obs_corr`` (K, D, D) only i < j.

    Examples
    --------
    >>> table_entries("obs_corr", (1, 3, 3))
    (['obs_corr[0,0,1]', 'obs_corr[0,0,2]', 'obs_corr[0,1,2]'], array([1, 2, 5]))
    """
    labels = parameter_labels(name, shape)
    keep = [
        j for j, idx in enumerate(np.ndindex(*shape)) if name != "obs_corr" or idx[-2] < idx[-1]
    ]
    return [labels[j] for j in keep], np.asarray(keep, dtype=np.intp)


def wide(parameters: pd.DataFrame, column: str, names: list[str]) -> pd.DataFrame:
    """One row per parameter (table order), one column per fit in ``names``, of ``column``."""
    table = parameters.pivot(index="parameter", columns="engine", values=column)
    order = list(dict.fromkeys(parameters["parameter"]))
    return table.loc[order, list(names)]


def _flat_draws(fit: MixtureFit, name: str) -> np.ndarray:
    """Draws of one parameter flattened to (n_chains * n_draws, n_entries)."""
    draws = fit.draws(name)
    return draws.reshape(draws.shape[0] * draws.shape[1], -1)


def _take(values: np.ndarray, entries: np.ndarray) -> np.ndarray:
    """The tabled entries (last axis) of ``values``; the array itself when all are tabled
    (a copy would change the summation order, and the last digits, of today's tables)."""
    if entries.size == values.shape[-1]:
        return values
    return values[..., entries]


def _copies(name: str, shape: tuple[int, ...], entries: np.ndarray, covariance: str) -> np.ndarray:
    """Which tabled entries repeat another, shape (n_entries,) of bool: with a tied
    covariance every component's obs_sd and obs_corr are component 0's; with a spherical
    one every feature's obs_sd is feature 0's."""
    if not shape:  # a scalar (dp_alpha) repeats nothing
        return np.zeros(entries.size, dtype=bool)
    idx = np.unravel_index(entries, shape)
    if covariance == "tied" and name in ("obs_sd", "obs_corr"):
        return idx[0] > 0
    if covariance == "spherical" and name == "obs_sd":
        return idx[1] > 0
    return np.zeros(entries.size, dtype=bool)


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
        rhat = (
            np.asarray(az.rhat(post).values, dtype=float).reshape(-1) if fit.n_chains >= 2 else nan
        )
        ess = np.asarray(az.ess(post, method="bulk").values, dtype=float).reshape(-1)
        mcse = np.asarray(az.mcse(post).values, dtype=float).reshape(-1)
    return rhat, ess, mcse


def _label_switch_info(fit: MixtureFit) -> dict[str, Any]:
    """How much a fit needed relabeling against itself (from ``fit.relabeling``)."""
    info = fit.relabeling
    total = max(fit.n_chains * fit.n_draws, 1)
    moved = int(info.draws_relabeled) if info is not None else 0
    return {
        "fraction_relabeled": moved / total,
        "rhat_before": info.rhat_before if info is not None else None,
        "rhat_after": info.rhat_after if info is not None else None,
        "label_switched": fit.n_components > 1 and moved / total >= LABEL_SWITCH_FRACTION,
    }


def align(fits: Mapping[str, MixtureFit], reference: str) -> dict[str, MixtureFit]:
    """Each fit relabeled against itself (to detect switching), then onto the reference.

    Every returned fit's ``relabeling`` records its relabeling against itself (how many
    draws switched labels), not the final alignment onto the reference.
    """
    with warnings.catch_warnings():  # R-hat of a constant (fixed weights) is 0/0: NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        ref = relabel(fits[reference])
        aligned = {}
        for name, fit in fits.items():
            if name == reference:
                aligned[name] = ref
                continue
            own = relabel(fit)  # consensus labels; records switching
            onto_ref = relabel(own, reference=ref)  # then the reference's labels
            aligned[name] = onto_ref.replace(relabeling=own.relabeling)
    return aligned


def parameter_rows(fits: Mapping[str, MixtureFit], reference: str) -> list[dict[str, Any]]:
    """One row per (parameter, engine); see :class:`Comparison` ``parameters``.

    Each row also holds ``_ref_sd`` (the reference's sd of that parameter), which
    :func:`engine_row` needs and the final table drops.
    """
    from scipy.stats import wasserstein_distance  # scipy.stats costs ~1 s to import

    ref = fits[reference]
    rows = []
    for pname in table_parameters(ref):
        shape = ref.draws(pname).shape[2:]
        labels, entries = table_entries(pname, shape)
        ref_flat = _take(_flat_draws(ref, pname), entries)
        ref_mean, ref_sd = ref_flat.mean(0), _sd(ref_flat)
        ref_diagnostics = tuple(_take(x, entries) for x in _diagnostics(ref, pname))
        ref_mcse = ref_diagnostics[2]
        copies = _copies(pname, shape, entries, ref.spec.covariance)
        # with K components only K-1 weights are free: the last one is left out of the
        # aggregates (for K = 2 it would count the same shift and ratio twice)
        last_weight = pname == "weights" and shape[0] > 1
        for name, fit in fits.items():
            if pname not in table_parameters(fit):
                continue
            flat = _take(_flat_draws(fit, pname), entries)
            # the reference's R-hat/ESS/MCSE are already known (ArviZ is not cheap)
            rhat, ess, mcse = (
                ref_diagnostics
                if name == reference
                else tuple(_take(x, entries) for x in _diagnostics(fit, pname))
            )
            mean, sd = flat.mean(0), _sd(flat)
            for j, label in enumerate(labels):
                has_spread = ref_sd[j] > 0
                delta = float(mean[j] - ref_mean[j])
                shift = delta / ref_sd[j] if has_spread else np.nan
                noise = MCSE_Z * float(
                    np.sqrt(np.nan_to_num(ref_mcse[j]) ** 2 + np.nan_to_num(mcse[j]) ** 2)
                )
                rows.append(
                    {
                        "parameter": label,
                        "group": pname,
                        "engine": name,
                        "mean": float(mean[j]),
                        "sd": float(sd[j]),
                        "mcse": float(mcse[j]),
                        "r_hat": float(rhat[j]),
                        "ess_bulk": float(ess[j]),
                        "sd_ratio": float(sd[j] / ref_sd[j]) if has_spread else np.nan,
                        "shift": float(shift),
                        "mean_shift": float(abs(shift)),
                        "significant": bool(
                            has_spread and abs(delta) > max(MEAN_SHIFT_TOL * ref_sd[j], noise)
                        ),
                        "free": bool(
                            has_spread
                            and not (last_weight and j == len(labels) - 1)
                            and not copies[j]
                        ),
                        "wasserstein": float(wasserstein_distance(flat[:, j], ref_flat[:, j])),
                        "_ref_sd": float(ref_sd[j]),
                    }
                )
    return rows


def _evidence_numbers(fit: MixtureFit) -> dict[str, Any]:
    """log p(x), its se (NaN when unknown) and the fit's own flags, from ``fit.evidence``."""
    evidence = fit.evidence
    if evidence is None:
        return {"log_evidence": np.nan, "log_evidence_se": np.nan, "evidence_flags": []}
    se = evidence.se if evidence.se is not None else np.nan
    return {
        "log_evidence": float(evidence.log_evidence),
        "log_evidence_se": float(se),
        "evidence_flags": [str(f) for f in evidence.flags],
    }


def engine_row(name: str, fit: MixtureFit, params: pd.DataFrame) -> dict[str, Any]:
    """One engine's summary (a row of ``Comparison.engines`` before the verdict).

    ``params`` is the frame of :func:`parameter_rows`. The row also holds ``rhat_after``
    (R-hat after relabeling, for the verdict), which the final table drops.
    """
    mine = params[params["engine"] == name]
    judged = mine[mine["free"]]
    positive = judged[judged["sd_ratio"] > 0]
    sd_ratio = (
        float(np.exp(np.log(positive["sd_ratio"]).mean()))
        if len(positive) and len(positive) == len(judged)
        else (0.0 if len(judged) else np.nan)
    )
    w1_scaled = (judged["wasserstein"] / judged["_ref_sd"]) if len(judged) else judged["sd_ratio"]
    rhat, ess = mine["r_hat"].to_numpy(), judged["ess_bulk"].to_numpy()
    switch = _label_switch_info(fit)
    family = fit.family or ""
    worst = (
        judged.loc[judged["mean_shift"].idxmax()]
        if len(judged) and np.isfinite(judged["mean_shift"]).any()
        else None
    )
    override = getattr(fit.details, "variational_family", None)
    row = {
        "family": family,
        "variational_family": variational_family(fit.engine, family, override),
        "chains": fit.n_chains,
        "draws": fit.n_draws,
        "n_draws_total": fit.n_chains * fit.n_draws,
        "build_s": fit.timings.build,
        "run_s": fit.timings.run,
        "total_s": fit.timings.total,
        "elbo": fit.final_elbo if fit.final_elbo is not None else np.nan,
        "elbo_se": float(fit.elbo_estimate.se) if fit.elbo_estimate is not None else np.nan,
        "elbo_gap": np.nan,
        "elbo_below": None,
        **_evidence_numbers(fit),
        "khat": np.nan,
        "khat_note": "",
        "cocluster_max_err": np.nan,
        "predictive_mean_err": np.nan,
        "evidence_err": np.nan,
        "evidence_err_se": np.nan,
        "sd_ratio": sd_ratio,
        "sd_ratio_min": float(judged["sd_ratio"].min()) if len(judged) else np.nan,
        "sd_ratio_max": float(judged["sd_ratio"].max()) if len(judged) else np.nan,
        "max_mean_shift": float(worst["mean_shift"]) if worst is not None else np.nan,
        "max_shift_parameter": str(worst["parameter"]) if worst is not None else None,
        "w1_mean": float(w1_scaled.mean()) if len(judged) else np.nan,
        "rhat_max": float(np.nanmax(rhat)) if np.isfinite(rhat).any() else np.nan,
        "ess_min": float(np.nanmin(ess)) if np.isfinite(ess).any() else np.nan,
        "rhat_before_relabel": (
            np.nan if switch["rhat_before"] is None else float(switch["rhat_before"])
        ),
        "fraction_relabeled": switch["fraction_relabeled"],
        "label_switched": bool(switch["label_switched"]),
        "converged": fit.converged,
    }
    row["rhat_after"] = switch["rhat_after"]
    return row
