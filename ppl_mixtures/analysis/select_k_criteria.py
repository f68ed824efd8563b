"""The criteria of :func:`ppl_mixtures.analysis.select_k.select_k`, one small function each.

Each takes the fit (or the data) of one K and returns :class:`Cell` values: the number, its
standard error when it has one, a flag (why not to trust it; empty when all is well) and,
for a number that could not be computed, the reason (never a silent NaN).

Conventions (the table's columns):

- ``elbo``, ``elbo_logk``, ``smc``, ``exact``, ``loo``: nats, higher is better;
- ``bic``, ``aic``, ``icl``: the -2 log-likelihood scale ("BIC units", scikit-learn's
  ``GaussianMixture.bic`` convention), lower is better;
- ``dp``: a probability, P(K occupied components | x), higher is better.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ppl_mixtures.model.spec import MixtureSpec
from ppl_mixtures.results import MixtureFit

__all__ = [
    "CRITERIA",
    "Cell",
    "Criterion",
    "em_cells",
    "exchangeable",
    "free_parameters",
    "log_k_factorial",
    "loo_cell",
    "smc_cell",
]

#: R-hat of the per-draw total log-likelihood (label-invariant) above this flags LOO.
RHAT_MAX = 1.01
#: A component of CAVI's q with fewer expected points than this counts as emptied.
EMPTY_COMPONENT_POINTS = 1.0


@dataclass(frozen=True)
class Criterion:
    """One column: its name, label, direction and units, and the fit it needs."""

    name: str
    label: str
    higher_is_better: bool
    units: str
    source: str  # the fit per K it reads: "cavi", "em", "nuts", "smc", "exact" or "dp"
    has_se: bool = False


CRITERIA: dict[str, Criterion] = {
    c.name: c
    for c in (
        Criterion("elbo", "CAVI ELBO", True, "nats", "cavi"),
        Criterion("elbo_logk", "ELBO + log K!", True, "nats", "cavi"),
        Criterion("smc", "SMC log p(x)", True, "nats", "smc", has_se=True),
        Criterion("exact", "exact log p(x)", True, "nats", "exact"),
        Criterion("loo", "NUTS LOO elpd", True, "nats", "nuts", has_se=True),
        Criterion("bic", "EM BIC", False, "BIC units", "em"),
        Criterion("aic", "EM AIC", False, "BIC units", "em"),
        Criterion("icl", "EM ICL", False, "BIC units", "em"),
        Criterion("dp", "DP mass on K", True, "probability", "dp"),
    )
}


@dataclass(frozen=True)
class Cell:
    """One criterion at one K: value (NaN when ``missing``), se, flag, missing reason."""

    value: float = float("nan")
    se: float = float("nan")
    flag: str = ""
    missing: str = ""
    extra: Any = None  # LOO's pointwise elpd (n_samples,), for paired differences


# --------------------------------------------------------------------------- CAVI
def exchangeable(spec: MixtureSpec) -> str:
    """Why the K! label modes of ``spec``'s posterior are *not* all equal ("" when they are).

    The components are exchangeable when nothing tells them apart: one mean prior for all
    (always so in MixtureSpec), a symmetric Dirichlet (scalar ``dirichlet_alpha``) or fixed
    weights, one known covariance for all, and no ordering constraint.
    """
    if spec.ordered:
        return "ordered=True: one label order is imposed, there is one mode"
    if spec.weights == "dp":
        return "weights='dp': stick-breaking weights are not exchangeable"
    if spec.weights == "dirichlet" and len(set(spec.alpha().tolist())) > 1:
        return "dirichlet_alpha differs between components"
    if spec.covariance == "full" and isinstance(spec.obs_cov, tuple):
        cov = np.asarray(spec.obs_cov)
        if cov.ndim == 3 and not np.allclose(cov, cov[:1]):
            return "obs_cov differs between components"
    return ""


def log_k_factorial(k: int) -> float:
    """log K! = lgamma(K + 1)."""
    return math.lgamma(k + 1)


def _expected_counts(fit: MixtureFit) -> np.ndarray | None:
    """E_q[N_k] from CAVI's Dirichlet factor (concentration minus prior), or None."""
    params = getattr(fit.details, "variational_params", None) or {}
    conc = params.get("weight_conc")
    if conc is None or fit.spec.weights != "dirichlet":
        return None
    return np.asarray(conc, float) - fit.spec.alpha()


def cavi_cells(fit: MixtureFit, k: int) -> dict[str, Cell]:
    """``elbo`` and ``elbo_logk`` (ELBO + log K!) from one CAVI fit.

    The corrected value is flagged when q has an emptied component (E[N_k] < 1): an empty
    component's mean roams its prior and can overlap an occupied one, so the K! modes are
    connected rather than separate and log K! overstates the gain (log p(x) then lies
    between the ELBO and ELBO + log K!).
    """
    elbo = float(fit.final_elbo) if fit.final_elbo is not None else float("nan")
    flag = "" if fit.converged else "CAVI did not converge"
    cells = {"elbo": Cell(elbo, flag=flag)}
    why_not = exchangeable(fit.spec)
    if why_not:
        cells["elbo_logk"] = Cell(missing=f"not applied: {why_not}")
        return cells
    corrected_flag = flag
    counts = _expected_counts(fit)
    if counts is not None and k > 1 and np.min(counts) < EMPTY_COMPONENT_POINTS:
        empty = int(np.sum(counts < EMPTY_COMPONENT_POINTS))
        corrected_flag = "; ".join(
            f
            for f in (
                flag,
                f"{empty} component(s) of q hold < 1 expected point: the K! modes "
                f"overlap, log K! overstates",
            )
            if f
        )
    cells["elbo_logk"] = Cell(elbo + log_k_factorial(k), flag=corrected_flag)
    return cells


# --------------------------------------------------------------------------- EM
def free_parameters(spec: MixtureSpec, n_features: int) -> int:
    """The number of free parameters of the maximum-likelihood mixture ``spec`` describes.

    means K D; weights K - 1 when learned (0 when fixed or K = 1); covariances: diag learned
    K D, spherical K, full learned K D (D + 1) / 2, tied D (D + 1) / 2, a known covariance
    0. (scikit-learn's ``GaussianMixture._n_parameters`` for the learned types.)
    """
    k, d = spec.n_components, n_features
    weights = 0 if spec.fixed_weights else k - 1
    if not spec.learned_covariance:
        cov = 0
    else:
        cov = {
            "diag": k * d,
            "spherical": k,
            "full": k * d * (d + 1) // 2,
            "tied": d * (d + 1) // 2,
        }[spec.covariance]
    return k * d + weights + cov


def em_cells(fit: MixtureFit, points: np.ndarray) -> dict[str, Cell]:
    """``bic``, ``aic`` and ``icl`` of one EM (maximum-likelihood) fit.

    BIC = -2 log L + p log N, AIC = -2 log L + 2 p (Schwarz 1978; Akaike 1974), and
    ICL = BIC + 2 H with H = -sum_i sum_k r_ik log r_ik the entropy of the soft assignments
    at the estimate (Biernacki, Celeux & Govaert 2000, the "BIC-like" approximation mclust
    uses, here in the -2 log L convention): lower is better for all three.
    """
    from ppl_mixtures.analysis.assignments import responsibilities

    n_samples, n_features = points.shape
    log_lik = float(fit.details.log_lik_final)
    p = free_parameters(fit.spec, n_features)
    resp = np.asarray(responsibilities(fit, points))
    entropy = float(-np.sum(resp * np.log(np.where(resp > 0, resp, 1.0))))
    flags = [] if fit.converged else ["EM did not converge"]
    collapsed = collapsed_components(fit, points, resp)
    if collapsed:
        flags.append(
            f"component(s) {', '.join(map(str, collapsed))} collapsed onto tied values (sd < "
            f"{COLLAPSE_RATIO:g} of the feature's): a degenerate maximum of the likelihood"
        )
    flag = "; ".join(flags)
    bic = -2.0 * log_lik + p * math.log(n_samples)
    return {
        "bic": Cell(bic, flag=flag),
        "aic": Cell(-2.0 * log_lik + 2.0 * p, flag=flag),
        "icl": Cell(bic + 2.0 * entropy, flag=flag),
    }


#: An EM component whose sd in some feature is below this fraction of the feature's sd,
#: with two or more points assigned, has collapsed onto tied values (e.g. 14 Old Faithful
#: eruptions that all waited 83 min: sd 0.014 min); the likelihood grows without bound there.
COLLAPSE_RATIO = 1e-3


def collapsed_components(fit: MixtureFit, points: np.ndarray, resp: np.ndarray) -> list[int]:
    """Components (by index) of a maximum-likelihood fit that sit on a spike of the
    likelihood: at least two points assigned (by the largest responsibility) and an sd
    below :data:`COLLAPSE_RATIO` times that feature's sd in the data. Known covariances
    cannot collapse (an empty list)."""
    if "obs_sd" not in fit.idata["posterior"]:
        return []
    sd = np.asarray(fit.posterior_mean("obs_sd"), dtype=float)  # (K, D)
    data_sd = points.std(axis=0)
    assigned = np.bincount(resp.argmax(axis=1), minlength=sd.shape[0])
    tiny = (sd < COLLAPSE_RATIO * data_sd).any(axis=1)
    return [int(k) for k in np.flatnonzero(tiny & (assigned >= 2))]


# --------------------------------------------------------------------------- samplers
def smc_cell(fit: MixtureFit) -> Cell:
    """SMC's log p(x) +- se (``fit.evidence``), flagged by the engine's own checks."""
    ev = fit.evidence
    if ev is None:
        return Cell(missing="the SMC fit has no evidence estimate")
    flag = "; ".join(ev.flags)
    if not np.isfinite(ev.se):
        flag = "; ".join(f for f in (flag, "no se (one run)") if f)
    return Cell(float(ev.log_evidence), float(ev.se), flag=flag)


def loo_cell(fit: MixtureFit) -> Cell:
    """NUTS's PSIS-LOO elpd +- se, flagged when the chains or the Pareto k disagree.

    Convergence is judged on a label-invariant quantity, the per-draw total
    log-likelihood sum_i log p(x_i | theta_s): its rank-normalized R-hat must be at most
    :data:`RHAT_MAX` (label switching between chains does not change it; chains stuck in
    different modes do), with no divergences; and every Pareto k must be below the
    threshold ``az.loo`` reports as good.
    """
    import arviz as az

    from ppl_mixtures.analysis.predictive import loo

    with warnings.catch_warnings():  # the Pareto k warning: the flag below says it
        warnings.simplefilter("ignore", UserWarning)
        result = loo(fit, pointwise=True)
    total = fit.idata["log_likelihood"]["x"].values.sum(axis=-1)  # (chain, draw)
    flags = []
    if total.shape[0] >= 2:
        rhat = float(az.rhat(total))
        if not rhat <= RHAT_MAX:
            flags.append(f"R-hat of the log-likelihood {rhat:.3f} > {RHAT_MAX}")
    else:
        flags.append("one chain: no R-hat")
    divergences = fit.sampler.divergences if fit.sampler is not None else None
    if divergences:
        flags.append(f"{divergences} divergences")
    pareto_k = np.asarray(result.pareto_k.values if hasattr(result.pareto_k, "values") else [])
    good_k = float(getattr(result, "good_k", 0.7))
    bad = int(np.sum(pareto_k > good_k))
    if bad:
        flags.append(f"{bad} Pareto k > {good_k:.2f}")
    pointwise = np.asarray(result.elpd_i.values if hasattr(result.elpd_i, "values") else [])
    return Cell(float(result.elpd), float(result.se), flag="; ".join(flags), extra=pointwise)


def exact_cell(points: np.ndarray, spec: MixtureSpec) -> Cell:
    """The exact log p(x) by enumeration when feasible; otherwise the reason."""
    from ppl_mixtures.model.evidence import MAX_ASSIGNMENTS, exact_feasible, exact_log_evidence

    if spec.learned_covariance:
        return Cell(missing="needs a known covariance (learned ones do not integrate out)")
    n_samples = points.shape[0]
    if not exact_feasible(n_samples, spec.n_components):
        return Cell(missing=f"K^N > {MAX_ASSIGNMENTS:,} assignments at N = {n_samples}")
    return Cell(float(exact_log_evidence(points, spec)))
