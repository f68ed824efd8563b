"""ADVI's q in readable form: back-transforms of the weights, tables of q, q as text.

q is a Gaussian over the unconstrained coordinates of the model (the means as they are, the
weights through stick-breaking or PyMC's simplex transform, learned precisions through log).
:func:`approximation_tables` turns q into labelled tables (they are stored on the fit as
``fit.details.approximation``, ``.back_transform``, ``.covariance``, ``.correlation``), and
:func:`format_approximation` prints them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ppl_mixtures.inference.pymc.advi_objective import CompiledObjective, element_labels
from ppl_mixtures.validation import check_choice

if TYPE_CHECKING:
    import pandas as pd

    from ppl_mixtures.results import MixtureFit

__all__ = ["approximation_tables", "format_approximation", "simplex_backward", "weights_backward"]


def simplex_backward(y: Any) -> np.ndarray:
    """PyMC's ``SimplexTransform.backward`` in numpy: (..., K-1) -> (..., K).

    The additive log-ratio with a zero-sum shift: append ``-sum(y)`` and take the softmax.
    """
    y = np.asarray(y, dtype=np.float64)
    full = np.concatenate([y, -y.sum(axis=-1, keepdims=True)], axis=-1)
    full = full - full.max(axis=-1, keepdims=True)
    return np.exp(full) / np.exp(full).sum(axis=-1, keepdims=True)


def weights_backward(y: Any, transform: str = "stick_breaking") -> np.ndarray:
    """The mixture weights at unconstrained coordinates ``y`` (..., K-1) -> (..., K).

    ``transform`` is ``spec.weights_transform``: ``"stick_breaking"`` (our Stan-style
    transform, :func:`ppl_mixtures.model.transforms.stick_breaking_backward`) or ``"simplex"``
    (PyMC's, :func:`simplex_backward`). This is the seed's hand back-transform of the
    approximation's mean; read the docstring of :func:`approximation_tables` before using
    it as "the" weights of q.
    """
    from ppl_mixtures.model.transforms import stick_breaking_backward

    check_choice("transform", transform, ("stick_breaking", "simplex"))
    return stick_breaking_backward(y) if transform == "stick_breaking" else simplex_backward(y)


def approximation_tables(
    objective: CompiledObjective,
    params: dict[str, np.ndarray],
    constrained_draws: dict[str, np.ndarray],
) -> dict[str, pd.DataFrame]:
    """q in readable form: unconstrained mean/sd, back-transforms, covariance.

    Parameters
    ----------
    objective : CompiledObjective
    params : dict
        ``mean`` (d,), ``std`` (d,), ``chol`` (d, d) of q over the unconstrained coordinates.
    constrained_draws : dict
        Draws from q mapped to the model variables, ``means`` (S, K, D), ``weights`` (S, K),
        ``obs_sd`` (S, K, D) when learned.

    Returns
    -------
    dict of pandas.DataFrame
        ``approximation``: one row per unconstrained coordinate (``"means[0,1]"``,
        ``"weights_stickbreaking__[0]"``, ``"obs_precision_log__[1,0]"``), columns ``mean``
        and ``sd`` of q. ``back_transform``: one row per model variable entry
        (``"weights[0]"``, ...), columns ``at_q_mean`` (the model variable at q's
        unconstrained mean: what seed 001 computed by hand), ``q_mean`` and ``q_sd`` (the
        mean and sd of the constrained draws) and ``difference`` = q_mean - at_q_mean.
        ``covariance`` and ``correlation``: (d, d) over the unconstrained coordinates, with
        the labels on both axes (diagonal for mean-field).

    Notes
    -----
    The back-transform of the mean is not the mean of the back-transform. The weights live
    on the simplex and q lives on R^(K-1): w = g(y) with g the stick-breaking (or simplex)
    map. For a nonlinear g, ``g(E_q[y]) != E_q[g(y)]`` (Jensen). For K = 2,
    ``w_0 = logistic(y)``; with y ~ Normal(m, s^2) the mean ``E[w_0]`` is pulled towards
    1/2 as s grows, while ``logistic(m)`` is not. Seed 001 reported ``g(E_q[y])``; the
    posterior mean under q is ``E_q[g(y)]``, the ``q_mean`` column, which is what the
    posterior group of the fit holds. The means are untransformed, so both columns agree
    for them (up to Monte Carlo error).
    """
    import pandas as pd

    labels = objective.labels
    at_mean = objective.constrain(params["mean"][None])
    rows = {}
    for name in objective.constrained_names:
        values_at_mean = at_mean[name][0]
        for label, a, m, s in zip(
            element_labels(name, values_at_mean.shape),
            values_at_mean.ravel(),
            constrained_draws[name].mean(axis=0).ravel(),
            constrained_draws[name].std(axis=0).ravel(),
            strict=True,
        ):
            rows[label] = {"at_q_mean": a, "q_mean": m, "q_sd": s, "difference": m - a}
    chol = params["chol"]
    cov = chol @ chol.T
    sd = np.sqrt(np.diag(cov))
    corr = cov / np.outer(sd, sd)
    return {
        "approximation": pd.DataFrame(
            {"mean": params["mean"], "sd": params["std"]},
            index=pd.Index(labels, name="unconstrained"),
        ),
        "back_transform": pd.DataFrame.from_dict(rows, orient="index").rename_axis("variable"),
        "covariance": pd.DataFrame(cov, index=labels, columns=labels),
        "correlation": pd.DataFrame(corr, index=labels, columns=labels),
    }


def format_approximation(fit: MixtureFit, *, correlation: bool | None = None) -> str:
    """The approximation of an ADVI fit as text (for notebooks, logs and reports).

    Parameters
    ----------
    fit : MixtureFit
        From engine ``"advi"`` or ``"fullrank_advi"`` (it reads ``fit.details``).
    correlation : bool, optional
        Show the correlation matrix; default: only for full-rank fits.
    """
    details = fit.details
    if getattr(details, "approximation", None) is None:
        raise ValueError(
            f"fit: expected a fit of engine 'advi' or 'fullrank_advi', got "
            f"engine {fit.engine!r}. Fit with engine='advi' first."
        )
    if correlation is None:
        correlation = fit.engine == "fullrank_advi"
    import pandas as pd

    fmt = "{:.4f}".format
    family = "full-rank" if fit.engine == "fullrank_advi" else "mean-field"
    parts = [
        f"q = {family} Gaussian over the unconstrained coordinates",
        details.approximation.to_string(float_format=fmt),
        "",
        "Model variables: at q's mean (back-transform of the mean) vs mean of draws",
        details.back_transform.to_string(float_format=fmt),
    ]
    if correlation:
        corr = details.correlation
        short = [str(i) for i in range(len(corr))]  # columns by number, rows by label
        rows = [f"{i} {lab}" for i, lab in zip(short, corr.index, strict=True)]
        table = pd.DataFrame(corr.to_numpy(), index=rows, columns=short)
        parts += ["", "Correlation of q", table.to_string(float_format="{:.2f}".format)]
    return "\n".join(parts)
