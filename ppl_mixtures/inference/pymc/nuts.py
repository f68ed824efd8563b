"""NUTS (``pm.sample``) on the marginalized mixture: the reference posterior.

``fit(points, spec, engine="nuts", draws=1000, chains=4, random_seed=1)`` samples
:func:`ppl_mixtures.inference.pymc.models.build_marginal_model` (our density) or, with
``model="builtin"``, :func:`~ppl_mixtures.inference.pymc.models.build_builtin_model` (``pm.Mixture``; the
oracle and the benchmark peer). Each chain starts from its own overdispersed point,
:func:`~ppl_mixtures.inference.pymc.models.initial_points` (k-means++ data points as means, random weights;
valid for ordered specs; reproducible from ``random_seed``), jittered by PyMC. Starting
every chain at one point would hide a second mode from R-hat.

As the reference of a comparison use the defaults (4 chains x 1000 draws after 1000
tuning steps): ``compare`` calls a reference strong only when every parameter has R-hat
<= 1.01 and bulk ESS >= 400.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np

from ppl_mixtures.inference.pymc.sampling import (
    sampler_diagnostics,
    to_mixture_fit,
    values_per_draw,
)
from ppl_mixtures.inference.registry import Engine
from ppl_mixtures.model.spec import MixtureSpec
from ppl_mixtures.results import MixtureFit, Timings, stopwatch
from ppl_mixtures.validation import (
    check_bool,
    check_choice,
    check_draws,
    check_fraction,
    check_int,
    check_seed,
)

__all__ = ["ENGINES", "fit"]

logger = logging.getLogger(__name__)

MODELS = ("marginal", "builtin")


def fit(points: np.ndarray, spec: MixtureSpec, *, draws: int = 1000, tune: int = 1000,
        chains: int = 4, cores: int | None = None, target_accept: float = 0.9,
        random_seed: int | None = None, progressbar: bool = True, model: str = "marginal",
        log_likelihood: bool = True) -> MixtureFit:
    """Sample the posterior with PyMC's NUTS.

    Parameters
    ----------
    points : ndarray of shape (n_samples, n_features)
        Validated data (``ppl_mixtures.fit`` validates it).
    spec : MixtureSpec
    draws, tune : int
        Kept draws and tuning steps per chain.
    chains : int
        Independent chains, each from its own overdispersed start (4 or more for a
        reference: R-hat compares them).
    cores : int, optional
        Parallel processes (PyMC's default when None).
    target_accept : float in (0, 1)
        NUTS step-size adaptation target; raise it if there are divergences.
    random_seed : int, optional
        Same seed -> identical draws.
    progressbar : bool
    model : {"marginal", "builtin"}
        Our density (default) or ``pm.Mixture`` (oracle/benchmark peer).
    log_likelihood : bool
        Store log_likelihood ``x`` (chain, draw, obs) for ``az.loo``; chains x draws x
        n_samples floats, so pass False on large data.

    Returns
    -------
    MixtureFit
        ``timings.build`` = model building + compiling + PyMC's set-up,
        ``timings.run`` = sampling (``posterior.attrs["sampling_time"]``);
        ``extras["sampler"]`` = :func:`~ppl_mixtures.inference.pymc.sampling.sampler_diagnostics`;
        ``extras["starts"]`` = each chain's start (constrained values, before PyMC's
        jitter); ``n_iter`` = draws.
    """
    import pymc as pm

    from ppl_mixtures.inference.pymc import models

    chains = check_int("chains", chains, minimum=1, hint="Use e.g. chains=4")
    log_likelihood = check_bool("log_likelihood", log_likelihood)
    draws = check_draws("draws", draws, hint="Use e.g. draws=1000",
                        values_per_draw=values_per_draw(points, spec, chains,
                                                        log_likelihood=log_likelihood))
    tune = check_int("tune", tune, minimum=0, hint="Use e.g. tune=1000")
    if cores is not None:
        cores = check_int("cores", cores, minimum=1, hint="Use e.g. cores=1, or None")
    target_accept = check_fraction("target_accept", target_accept, example="0.9",
                                   hint="higher for fewer divergences")
    random_seed = check_seed(random_seed)
    progressbar = check_bool("progressbar", progressbar)
    check_choice("model", model, MODELS)
    options = dict(draws=draws, tune=tune, chains=chains, cores=cores,
                   target_accept=target_accept, random_seed=random_seed,
                   progressbar=progressbar, model=model, log_likelihood=log_likelihood)

    with stopwatch() as build:
        builder = models.build_marginal_model if model == "marginal" else models.build_builtin_model
        pm_model = builder(points, spec)
        starts = models.initial_points(spec, points, chains, random_seed)
    with stopwatch() as wall, pm_model, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*object mode.*")  # CustomDist random
        idata = pm.sample(draws=draws, tune=tune, chains=chains, cores=cores,
                          target_accept=target_accept, random_seed=random_seed,
                          progressbar=progressbar, initvals=starts,
                          compute_convergence_checks=False)
    sampling = float(idata["posterior"].attrs.get("sampling_time", wall.seconds))
    timings = Timings(build=build.seconds + max(wall.seconds - sampling, 0.0), run=sampling)
    diagnostics = sampler_diagnostics(idata)
    if diagnostics.get("divergences"):
        logger.warning("nuts: %d divergent transitions; try target_accept=0.95 or "
                       "MixtureSpec(ordered=True).", diagnostics["divergences"])
    return to_mixture_fit("nuts", spec, points, idata, timings, log_likelihood=log_likelihood,
                          extras={"sampler": diagnostics, "model": model,
                                  "starts": starts}, options=options,
                          n_iter=draws, attrs={"model": model})


ENGINES = (
    Engine(name="nuts", fit=fit, family="mcmc", scalable=False,
           summary="NUTS (pm.sample) on the marginalized mixture; the reference posterior.",
           quick_options={"draws": 200, "tune": 200, "chains": 2, "cores": 1},
           # the demo runs fits side by side in worker processes: one core per fit
           demo_options={"cores": 1}),
)
