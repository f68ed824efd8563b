"""Which mean-field family q a spec gets, and q's draws in the posterior schema (CAVI, SVI).

Diagonal and spherical covariances use ``meanfield`` (Gaussian q(mu_k), Gamma factors on
the precisions); full and tied ones ``fullcov_meanfield`` (Gaussian q(mu_k) with a full
covariance, Wishart factors). Both modules expose the same functions (``expectations``,
``local_pass``, ``update_globals``, ``draws_from_q``, ...), so an engine calls them through
the module this picks.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import xarray as xr

from ppl_mixtures.inference.conjugate import fullcov_meanfield as fm
from ppl_mixtures.inference.conjugate import meanfield as mf
from ppl_mixtures.inference.conjugate.elbo import elbo
from ppl_mixtures.inference.conjugate.fullcov_elbo import elbo as full_elbo
from ppl_mixtures.model.spec import MixtureSpec

__all__ = ["q_draws", "q_family", "q_posterior_draws"]


def q_family(spec: MixtureSpec) -> tuple[ModuleType, Callable[..., float]]:
    """q's family module and its ELBO: ``fullcov_meanfield`` (Gaussian-Wishart factors) for
    covariance "full" and "tied", ``meanfield`` (Gaussian-Gamma) for "diag", "spherical"."""
    if spec.covariance in fm.FULL_COVARIANCES:
        return fm, full_elbo
    return mf, elbo


def q_draws(
    params: Any, spec: MixtureSpec, n_draws: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """``n_draws`` draws from q (sorted by feature 0 first when the spec is ordered), as
    ``(means, weights, obs_sd, obs_cov)`` for ``results.make_idata``: ``obs_cov`` for the
    Wishart family, ``obs_sd`` (or None when known) for the Gamma family."""
    return q_posterior_draws(params, spec, n_draws, rng)[:4]


def q_posterior_draws(
    params: Any, spec: MixtureSpec, n_draws: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None, xr.Dataset | None]:
    """:func:`q_draws` (the same numbers from the same ``rng``) and the extra posterior
    variables for ``make_idata(..., extra_posterior=...)``: for ``weights="dp"``,
    ``dp_sticks`` (chain, draw, component_stick) with T - 1 sticks and, when alpha is
    learned, ``dp_alpha`` (chain, draw); None for other specs."""
    family, _ = q_family(spec)
    if spec.ordered:
        params = family.sorted_by_first_feature(params)
    means, weights, obs, extras = family.draws_with_extras(params, spec, n_draws, rng)
    extra = None
    if extras:
        dims = {"dp_sticks": ("chain", "draw", "component_stick"), "dp_alpha": ("chain", "draw")}
        extra = xr.Dataset({name: (dims[name], value) for name, value in extras.items()})
    if family is fm:
        return means, weights, None, obs, extra
    return means, weights, obs, None, extra
