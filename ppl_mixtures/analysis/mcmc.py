"""``az.summary`` of a fit's parameters plus its sampler's own health: :func:`mcmc_summary`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ppl_mixtures.analysis.draws import check_fit
from ppl_mixtures.results import MixtureFit

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["McmcSummary", "mcmc_summary"]


@dataclass(frozen=True)
class McmcSummary:
    """``az.summary`` of the model parameters plus the sampler's own health checks.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per scalar parameter: mean, sd, interval, ess_bulk, ess_tail, r_hat, mcse.
    rhat_max, ess_bulk_min, ess_tail_min : float
        Worst values over the parameters (NaN with one chain or a point estimate).
    divergences : int or None
        Divergent transitions (NUTS); None when the sampler has no such statistic.
    reached_max_treedepth : int or None
        Draws whose trajectory hit the maximum tree depth (NUTS).
    max_tree_depth : int or None
        Deepest tree seen.
    acceptance : float or None
        Mean acceptance rate (NUTS ``acceptance_rate``; Metropolis ``accepted``, the
        fraction of proposals accepted, or else ``accept`` clipped to 1).
    n_chains, n_draws : int
    """

    table: pd.DataFrame
    rhat_max: float
    ess_bulk_min: float
    ess_tail_min: float
    divergences: int | None
    reached_max_treedepth: int | None
    max_tree_depth: int | None
    acceptance: float | None
    n_chains: int
    n_draws: int

    def __str__(self) -> str:
        lines = [
            f"{self.n_chains} chains x {self.n_draws} draws: max R-hat {self.rhat_max:.3f}, "
            f"min ESS bulk {self.ess_bulk_min:.0f}, tail {self.ess_tail_min:.0f}"
        ]
        extra = []
        if self.divergences is not None:
            extra.append(f"divergences {self.divergences}")
        if self.max_tree_depth is not None:
            extra.append(
                f"max tree depth {self.max_tree_depth} "
                f"({self.reached_max_treedepth} draws at the limit)"
            )
        if self.acceptance is not None:
            extra.append(f"mean acceptance {self.acceptance:.2f}")
        if extra:
            lines.append(", ".join(extra))
        lines.append(self.table.to_string())
        return "\n".join(lines)

    __repr__ = __str__


def _stat(stats: Any, name: str) -> np.ndarray | None:
    if stats is None or name not in stats.data_vars:
        return None
    return np.asarray(stats[name].values)


def _free_label(label: str) -> bool:
    """False for "obs_corr[k, i, j]" rows with i >= j (constant 1s and mirrored entries)."""
    if not label.startswith("obs_corr["):
        return True
    _, i, j = (int(part) for part in label[len("obs_corr[") : -1].split(","))
    return i < j


def mcmc_summary(fit: MixtureFit, **kwargs: Any) -> McmcSummary:
    """R-hat, ESS (bulk, tail), MCSE and the sampler's statistics for a fit.

    Relabel first (``ppl_mixtures.relabel``) when the chains may use different component
    labels; otherwise R-hat reports the label switching, not a convergence failure. For
    learned full and tied covariances the table (and the worst R-hat and ESS) also covers
    the correlations ``obs_corr[k, i, j]``, i < j (each once; the sds are ``obs_sd``), and a
    truncated DP's learned concentration ``dp_alpha``.

    Parameters
    ----------
    fit : MixtureFit
    **kwargs
        Passed to ``arviz.summary`` (e.g. ``ci_prob=0.94``).

    Returns
    -------
    McmcSummary
    """
    import warnings

    fit = check_fit(fit)
    with_corr = "var_names" not in kwargs and "obs_corr" in fit.idata["posterior"].data_vars
    dp_alpha = ["dp_alpha"] if "dp_alpha" in fit.idata["posterior"].data_vars else []
    kwargs.setdefault(
        "var_names",
        [*fit.parameter_names(), *(["obs_corr"] if with_corr else []), *dp_alpha],
    )
    with warnings.catch_warnings():  # one chain or one draw: R-hat/ESS are NaN, not an error
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", UserWarning)
        table = fit.summary(**kwargs)
    if with_corr:  # keep each correlation once (i < j); the diagonal is the constant 1
        table = table[[_free_label(label) for label in table.index]]

    def worst(column: str, reduce: Any) -> float:
        if column not in table.columns or table[column].isna().all():
            return float("nan")
        return float(reduce(table[column].to_numpy(dtype=float)))

    stats = fit.idata["sample_stats"] if "sample_stats" in fit.idata.children else None
    diverging = _stat(stats, "diverging")
    depth = _stat(stats, "tree_depth")
    at_max = _stat(stats, "reached_max_treedepth")
    acceptance = _stat(stats, "acceptance_rate")
    if acceptance is None:  # Metropolis: the fraction of accepted proposals per step
        acceptance = _stat(stats, "accepted")
    if acceptance is None:
        accept = _stat(stats, "accept")  # the MH ratio, may exceed 1
        acceptance = None if accept is None else np.minimum(accept.astype(float), 1.0)
    return McmcSummary(
        table=table,
        rhat_max=worst("r_hat", np.nanmax),
        ess_bulk_min=worst("ess_bulk", np.nanmin),
        ess_tail_min=worst("ess_tail", np.nanmin),
        divergences=None if diverging is None else int(diverging.sum()),
        reached_max_treedepth=None if at_max is None else int(at_max.sum()),
        max_tree_depth=None if depth is None else int(depth.max()),
        acceptance=None if acceptance is None else float(np.nanmean(acceptance)),
        n_chains=fit.n_chains,
        n_draws=fit.n_draws,
    )
