"""What a comparison is judged against: the same question, the exact posterior, log p(x).

:func:`check_same_question` refuses fits of different specs or data; with
``compare(..., reference="exact")`` :func:`exact_posterior` enumerates the posterior and
:func:`grade_exact` grades every fit against it (label-invariant errors); :func:`grade_khats`
adds the Pareto k-hat of p/q of every VI fit; :func:`evidence_source` says where the
comparison's log p(x) comes from.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ppl_mixtures.analysis.verdicts import ELBO_GAP_TOL, EVIDENCE_Z, finite
from ppl_mixtures.results import _PARAMETERIZATION_FIELDS, MixtureFit

__all__ = [
    "check_same_question",
    "default_parameter_reference",
    "evidence_source",
    "exact_posterior",
    "grade_exact",
    "grade_khats",
    "learned_covariance_words",
]


def check_same_question(fits: Mapping[str, MixtureFit], reference: str) -> None:
    """ValueError naming every fit whose spec or data differ from the reference's."""
    ref = fits[reference]
    spec_ref, data_ref = ref.spec_fingerprint, ref.data_fingerprint
    ref_spec = ref.spec.to_dict()
    problems = []
    for key, fit in fits.items():
        what = []
        if fit.spec_fingerprint != spec_ref:
            fields = [
                f"{k}={v!r} vs {ref_spec.get(k)!r}"
                for k, v in fit.spec.to_dict().items()
                if k not in _PARAMETERIZATION_FIELDS and v != ref_spec.get(k)
            ]
            what.append(f"spec ({', '.join(fields) or 'differs'})")
        if fit.data_fingerprint != data_ref:
            if fit.points.shape != ref.points.shape:
                what.append(f"data (shape {fit.points.shape} vs {ref.points.shape})")
            else:
                what.append(f"data (same shape {fit.points.shape}, different values)")
        if what:
            problems.append(f"fits[{key!r}] differs in {' and '.join(what)}")
    if problems:
        raise ValueError(
            f"fits: expected every fit to answer the reference's question (the "
            f"spec and data of fits[{reference!r}]), got: {'; '.join(problems)}. "
            f"Fit every engine to the same points with the same MixtureSpec."
        )


def default_parameter_reference(fits: Mapping[str, MixtureFit]) -> str:
    """The fit the tables align to under ``reference="exact"``: nuts, else the MCMC fit
    with the most draws, else the first fit."""
    if "nuts" in fits:
        return "nuts"
    mcmc = [k for k, f in fits.items() if f.family == "mcmc" and f.n_chains * f.n_draws > 1]
    if mcmc:
        return max(mcmc, key=lambda k: fits[k].n_chains * fits[k].n_draws)
    return next(iter(fits))


def learned_covariance_words(spec: Any) -> str:
    """How a spec learns its covariance, as its arguments say it: "obs_sd='learned'",
    "covariance='full', obs_cov='learned'", "covariance='tied'" or "covariance='spherical'"."""
    if spec.covariance == "diag":
        return "obs_sd='learned'"
    if spec.covariance == "full":
        return "covariance='full', obs_cov='learned'"
    return f"covariance={spec.covariance!r} (always learned)"


def exact_posterior(fit: MixtureFit) -> Any:
    """The exact posterior of the fit's spec and data; ValueError when it cannot be had."""
    from ppl_mixtures.model import evidence

    n_samples, n_components = fit.points.shape[0], fit.n_components
    if fit.spec.learned_obs_sd:
        raise ValueError(
            "reference: 'exact' needs a known obs_sd (the learned precisions do "
            "not integrate out in closed form), got obs_sd='learned'. Use "
            "reference='nuts' (a long NUTS run) instead."
        )
    if fit.spec.learned_covariance:
        raise ValueError(
            f"reference: 'exact' needs a known covariance (the learned precisions do "
            f"not integrate out in closed form), got {learned_covariance_words(fit.spec)}. "
            f"Use reference='nuts' (a long NUTS run) instead, or covariance='full' with a "
            f"known obs_cov matrix."
        )
    if not evidence.exact_feasible(n_samples, n_components):
        raise ValueError(
            f"reference: 'exact' enumerates all K^N assignments and needs K^N <= "
            f"{evidence.MAX_ASSIGNMENTS:,} (N <= 20 at K = 2, 13 at K = 3, 10 at "
            f"K = 4), got K={n_components}, N={n_samples}. Use reference='nuts' "
            f"(a long NUTS run), or grade on a subset of the data."
        )
    return evidence.exact_posterior(fit.points, fit.spec)


def _evidence_parts(
    row: dict[str, Any], exact_log_evidence: float
) -> tuple[float, float, list[str]]:
    """The fit's log p(x) estimate (else its ELBO) minus the exact value, its se, and the
    verdict phrases when that difference is impossible or beyond EVIDENCE_Z se."""
    parts: list[str] = []
    if finite(row["log_evidence"]):
        err, se = row["log_evidence"] - exact_log_evidence, row["log_evidence_se"]
        side = "below" if err < 0 else "above"
        if finite(se) and se > 0 and abs(err) > EVIDENCE_Z * se:
            parts.append(
                f"log p(x) estimate {abs(err):.2f} nats ({abs(err) / se:.1f} se) "
                f"{side} the exact value"
            )
        elif not (finite(se) and se > 0) and abs(err) > ELBO_GAP_TOL:
            parts.append(
                f"log p(x) estimate {abs(err):.2f} nats {side} the exact value (no standard error)"
            )
    elif finite(row["elbo"]):
        err, se = row["elbo"] - exact_log_evidence, np.nan_to_num(row["elbo_se"])
        if err > EVIDENCE_Z * se + 1e-6:
            parts.append(
                f"ELBO {err:.2f} nats above the exact log p(x) (impossible for "
                f"a lower bound: the ELBO is wrong)"
            )
    else:
        err, se = np.nan, np.nan
    return float(err), float(se), parts


def grade_exact(
    rows: dict[str, dict[str, Any]], fits: Mapping[str, MixtureFit], exact: Any
) -> None:
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
        err, se, parts = _evidence_parts(row, exact.log_evidence)
        row["evidence_err"], row["evidence_err_se"] = err, se
        row["exact_parts"] = parts


def grade_khats(
    rows: dict[str, dict[str, Any]], fits: Mapping[str, MixtureFit], limit: int | None
) -> None:
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
            row["khat_note"] = (
                f"skipped: {fit.points.shape[0]:,} observations > {limit:,} "
                f"(pass khat=True to compute it)"
            )
            continue
        try:
            row["khat"] = float(diagnostics.vi_khat(fit, fit.points))
        except (ValueError, NotImplementedError, KeyError) as err:  # e.g. no q recorded
            row["khat_note"] = f"{type(err).__name__}: {err}"


def evidence_source(
    fits: Mapping[str, MixtureFit],
    reference: str,
    rows: Mapping[str, Mapping[str, Any]],
    *,
    exact: Any = None,
    given: float | None = None,
) -> dict[str, Any]:
    """Where the comparison's log p(x) comes from: ``source``, ``value``, ``se``, ``method``
    and ``flags`` (all None / () when nothing knows it).

    In order: the exact posterior (enumeration), a value the user gave, else the first fit
    (reference first) with an estimate in ``fit.evidence``, with its own flags and those
    compare found (its row's ``evidence_flags``, e.g. below another fit's ELBO).
    """
    if exact is not None:
        return {
            "source": "exact",
            "value": float(exact.log_evidence),
            "se": 0.0,
            "method": "enumeration",
            "flags": (),
        }
    if given is not None:
        return {"source": "given", "value": float(given), "se": None, "method": None, "flags": ()}
    for key, fit in ((reference, fits[reference]), *fits.items()):
        if fit.evidence is not None:
            found = fit.evidence
            flags = [*map(str, found.flags), *rows[key]["evidence_flags"]]
            return {
                "source": key,
                "value": float(found.log_evidence),
                "se": float(found.se) if found.se is not None else None,
                "method": found.method,
                "flags": tuple(dict.fromkeys(flags)),
            }
    return {"source": None, "value": None, "se": None, "method": None, "flags": ()}
