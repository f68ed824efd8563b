"""The numbers behind a comparison: aligned fits, one row per parameter, one row per engine.

:func:`align` relabels every fit onto the reference; :func:`parameter_rows` summarizes
each model parameter per engine (mean, sd, MCSE, R-hat, ESS, shift and sd ratio against the
reference, Wasserstein-1 distance); :func:`engine_row` aggregates one engine's rows (the
geometric-mean sd ratio over the free parameters, the largest shift, label switching).
The columns are documented on :class:`ppl_mixtures.analysis.comparison.Comparison`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ppl_mixtures.analysis.relabel import relabel
from ppl_mixtures.analysis.verdicts import (
    LABEL_SWITCH_FRACTION,
    MCSE_Z,
    MEAN_SHIFT_TOL,
    variational_family,
)
from ppl_mixtures.results import MixtureFit

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "align",
    "engine_row",
    "parameter_labels",
    "parameter_rows",
    "split_parameter",
    "wide",
]


def parameter_labels(name: str, shape: tuple[int, ...]) -> list[str]:
    """``means[0,1]``-style labels for every entry of a (K,) or (K, D) parameter."""
    return [f"{name}[{','.join(str(i) for i in idx)}]" for idx in np.ndindex(*shape)]


def split_parameter(label: str) -> tuple[str, int | None]:
    """("means", 1) from "means[0,1]"; ("weights", None) from "weights[2]"."""
    name, idx = label.rstrip("]").split("[")
    parts = idx.split(",")
    return name, (int(parts[1]) if len(parts) > 1 else None)


def wide(parameters: pd.DataFrame, column: str, names: list[str]) -> pd.DataFrame:
    """One row per parameter (table order), one column per fit in ``names``, of ``column``."""
    table = parameters.pivot(index="parameter", columns="engine", values=column)
    order = list(dict.fromkeys(parameters["parameter"]))
    return table.loc[order, list(names)]


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
    for pname in ref.parameter_names():
        ref_flat = _flat_draws(ref, pname)
        shape = ref.draws(pname).shape[2:]
        labels = parameter_labels(pname, shape)
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
                        "free": bool(has_spread and not (last_weight and j == len(labels) - 1)),
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
