"""`fit(points, spec, engine=..., **options)`: one entry point for every engine."""

from __future__ import annotations

from typing import Any

from .engines import get_engine
from .results import MixtureFit
from .spec import MixtureSpec
from .validation import check_engine_options, check_points

__all__ = ["fit"]


def fit(points: Any, spec: MixtureSpec, engine: str = "nuts", **options: Any) -> MixtureFit:
    """Fit ``spec`` to ``points`` with the named engine.

    Parameters
    ----------
    points : array-like of shape (n_samples,) or (n_samples, n_features)
        Finite numeric data; 1-D input is one feature. Never modified.
    spec : MixtureSpec
        The model. Every engine fits the same model, so answers are comparable.
    engine : str
        A registered engine: ``ppl_mixtures.engines.available_engines()`` lists them.
    **options
        Engine options (e.g. ``draws``, ``chains``, ``random_seed`` for ``"nuts"``). Unknown
        options raise a TypeError listing the valid ones.

    Returns
    -------
    MixtureFit
    """
    if not isinstance(spec, MixtureSpec):
        raise TypeError(f"spec: expected a MixtureSpec, got {type(spec).__name__}. "
                        f"Build one with MixtureSpec(n_components=...).")
    entry = get_engine(engine)
    check_engine_options(engine, entry.fit, options)
    data = check_points(points, n_components=spec.n_components)
    spec.check_features(data.shape[1])
    return entry.fit(data, spec, **options)
