"""`fit(points, spec, engine=..., **options)`: one entry point for every engine."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ppl_mixtures.inference.registry import (
    check_covariance_served,
    check_weights_served,
    get_engine,
)
from ppl_mixtures.model.spec import MixtureSpec
from ppl_mixtures.results import MixtureFit
from ppl_mixtures.validation import (
    DataScaleWarning,
    NumericalError,
    check_data_scale,
    check_engine_options,
    check_points,
)
from ppl_mixtures.validation.chunked import check_chunked_engine

__all__ = ["DataScaleWarning", "NumericalError", "check_finite_fit", "fit"]

#: Posterior variables that must be finite in every returned fit.
_CHECKED_VARIABLES = ("means", "weights", "obs_sd")
#: Scalar fields of an engine's ``details`` (nats) that must be finite when it reports them
#: (EM's final log-likelihood and its objective).
_CHECKED_DETAILS = ("log_lik_final", "objective_final")


def fit(points: Any, spec: MixtureSpec, engine: str = "nuts", **options: Any) -> MixtureFit:
    """Fit ``spec`` to ``points`` with the named engine.

    Parameters
    ----------
    points : array-like of shape (n_samples,) or (n_samples, n_features)
        Finite numeric data; 1-D input is one feature. Never modified. A ``(points,
        labels)`` tuple (what ``datasets.three_clusters_1d()`` returns) is refused with a
        message saying to pass its first element. A ``dask.array.Array`` chunked along rows
        is accepted by the engines cavi, em, svi, and advi/fullrank_advi with ``batch_size``
        (streamed one chunk at a time; ``docs/scaling.md``); the others refuse it with a
        TypeError naming them.
    spec : MixtureSpec
        The model. Every engine fits the same model, so answers are comparable.
    engine : str
        A registered engine: ``ppl_mixtures.inference.registry.available_engines()`` lists them.
    **options
        Engine options (e.g. ``draws``, ``chains``, ``random_seed`` for ``"nuts"``). Unknown
        options raise a TypeError listing the valid ones.

    Returns
    -------
    MixtureFit
        Its posterior means, weights (and obs_sd) and its ELBO trace are finite.

    Raises
    ------
    TypeError, ValueError
        Bad input, naming the argument.
    NotImplementedError
        When the engine does not serve ``spec.covariance`` or ``spec.weights`` (e.g.
        ``weights="dp"`` with EM); the message names the engines that do.
    NumericalError
        The engine produced NaN/inf means, weights, obs_sd or ELBO (see
        :func:`check_finite_fit`); no such fit is ever returned.

    Warns
    -----
    DataScaleWarning
        When the data sit far from the scale the spec's priors assume
        (``validation.check_data_scale`` states the rule); standardize the data.
    """
    if not isinstance(spec, MixtureSpec):
        raise TypeError(
            f"spec: expected a MixtureSpec, got {type(spec).__name__}. "
            f"Build one with MixtureSpec(n_components=...)."
        )
    entry = get_engine(engine)
    check_engine_options(engine, entry.options or entry.fit, options)
    check_covariance_served(engine, spec.covariance)
    check_weights_served(engine, spec.weights)
    check_chunked_engine(engine, points)  # dask arrays: cavi, em, svi and minibatch advi only
    data = check_points(points, n_components=spec.n_components)
    spec.check_features(data.shape[1])
    message = check_data_scale(data, spec)
    if message is not None:
        warnings.warn(message, DataScaleWarning, stacklevel=2)
    result: MixtureFit = entry.fit(data, spec, **options)
    check_finite_fit(result, scale_warning=message is not None)
    if result.family is None:  # every fit says which family it comes from
        result = result.replace(family=entry.family)
    return result


def check_finite_fit(result: MixtureFit, *, scale_warning: bool = False) -> None:
    """Raise :class:`NumericalError` when a fit holds NaN/inf parameters or ELBO values.

    Checks the posterior ``means``, ``weights`` and ``obs_sd`` (when present), every entry
    of the ELBO trace, ``fit.elbo_estimate.value`` and the engine's
    ``fit.details.log_lik_final`` / ``fit.details.objective_final`` (when present).
    ``scale_warning`` says whether the data-scale warning fired (it makes the message name
    the likely cause first).
    """
    bad = []
    posterior = result.idata["posterior"]
    for name in _CHECKED_VARIABLES:
        if name in posterior:
            values = np.asarray(posterior[name].values, dtype=float)
            n_bad = int(np.size(values) - np.isfinite(values).sum())
            if n_bad:
                bad.append(f"{n_bad} of {values.size} {name} values")
    if result.elbo is not None:
        trace = np.asarray(result.elbo, dtype=float)
        n_bad = int(trace.size - np.isfinite(trace).sum())
        if n_bad:
            bad.append(f"{n_bad} of {trace.size} ELBO trace entries")
    scalars = {"elbo_estimate.value": getattr(result.elbo_estimate, "value", None)}
    scalars |= {f"details.{name}": getattr(result.details, name, None) for name in _CHECKED_DETAILS}
    for label, value in scalars.items():
        if value is not None and not np.isfinite(float(value)):
            bad.append(f"{label}={float(value)!r}")
    if not bad:
        return
    cause = (
        "the data sit far from the priors' scale (see the DataScaleWarning)"
        if scale_warning
        else "data far from the priors' scale, or priors at the edge of float64's range"
    )
    raise NumericalError(
        f"engine {result.engine!r} returned non-finite numbers: "
        f"{', '.join(bad)} are NaN or inf. Likely cause: {cause}. Standardize "
        f"the data (z, center, scale = ppl_mixtures.datasets.standardize("
        f"points)) and use priors on that scale, e.g. mean_prior_sd=1.0, "
        f"obs_sd=1.0 or 'learned'."
    )
