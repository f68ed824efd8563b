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
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ppl_mixtures.inference.pymc.cov_models import COVARIANCES
from ppl_mixtures.inference.pymc.sampling import (
    sampler_diagnostics,
    to_mixture_fit,
    values_per_draw,
)
from ppl_mixtures.inference.registry import Engine
from ppl_mixtures.model.spec import MixtureSpec
from ppl_mixtures.results import MixtureFit, Timings, stopwatch
from ppl_mixtures.validation import (
    build_options,
    check_bool,
    check_choice,
    check_draws,
    check_fraction,
    check_int,
    check_seed,
)

__all__ = ["ENGINES", "NutsDetails", "Options", "fit"]

logger = logging.getLogger(__name__)

MODELS = ("marginal", "builtin")


@dataclass(frozen=True, kw_only=True)
class Options:
    """The options of ``fit(points, spec, engine="nuts", **options)``, checked on creation."""

    draws: int = field(default=1000, metadata={"help": "kept draws per chain"})
    tune: int = field(default=1000, metadata={"help": "tuning steps per chain"})
    chains: int = field(
        default=4,
        metadata={
            "help": "independent chains, each from its own overdispersed start (4+ for R-hat)"
        },
    )
    cores: int | None = field(
        default=None, metadata={"help": "parallel processes (None: PyMC's default)"}
    )
    target_accept: float = field(
        default=0.9,
        metadata={
            "help": "step-size adaptation target in (0, 1); raise it if there are divergences"
        },
    )
    random_seed: int | None = field(default=None, metadata={"help": "same seed, same draws"})
    progressbar: bool = field(default=True, metadata={"help": "PyMC's progress bar"})
    model: str = field(
        default="marginal",
        metadata={"help": "'marginal' (our density) or 'builtin' (pm.Mixture, the oracle)"},
    )
    log_likelihood: bool = field(
        default=True,
        metadata={"help": "store log p(x_i | draw) for az.loo (chains x draws x n_samples floats)"},
    )

    def __post_init__(self) -> None:
        put = object.__setattr__
        put(self, "chains", check_int("chains", self.chains, minimum=1, hint="Use e.g. chains=4"))
        put(self, "log_likelihood", check_bool("log_likelihood", self.log_likelihood))
        # the memory cap needs the data's size: fit() checks it with check_draws
        put(self, "draws", check_int("draws", self.draws, minimum=1, hint="Use e.g. draws=1000"))
        put(self, "tune", check_int("tune", self.tune, minimum=0, hint="Use e.g. tune=1000"))
        if self.cores is not None:
            put(
                self,
                "cores",
                check_int("cores", self.cores, minimum=1, hint="Use e.g. cores=1, or None"),
            )
        put(
            self,
            "target_accept",
            check_fraction(
                "target_accept",
                self.target_accept,
                example="0.9",
                hint="higher for fewer divergences",
            ),
        )
        put(self, "random_seed", check_seed(self.random_seed))
        put(self, "progressbar", check_bool("progressbar", self.progressbar))
        check_choice("model", self.model, MODELS)


@dataclass(frozen=True)
class NutsDetails:
    """NUTS-specific results (``MixtureFit.details``).

    Attributes
    ----------
    model : {"marginal", "builtin"}
        The likelihood that was sampled.
    starts : tuple of dict
        Each chain's start (constrained values by variable name, before PyMC's jitter).
    """

    model: str
    starts: tuple[dict[str, np.ndarray], ...]


def fit(points: np.ndarray, spec: MixtureSpec, **options: Any) -> MixtureFit:
    """Sample the posterior with PyMC's NUTS.

    Parameters
    ----------
    points : ndarray of shape (n_samples, n_features)
        Validated data (``ppl_mixtures.fit`` validates it; this function trusts it).
    spec : MixtureSpec
    **options
        The fields of :class:`Options`: ``draws``, ``tune`` (per chain), ``chains``,
        ``cores``, ``target_accept``, ``random_seed``, ``progressbar``, ``model``
        ("marginal": our density; "builtin": ``pm.Mixture``, the oracle and benchmark
        peer), ``log_likelihood`` (store log_likelihood ``x`` (chain, draw, obs) for
        ``az.loo``; pass False on large data).

    Returns
    -------
    MixtureFit
        ``timings.build`` = model building + compiling + PyMC's set-up,
        ``timings.run`` = sampling (``posterior.attrs["sampling_time"]``);
        ``sampler`` = :func:`~ppl_mixtures.inference.pymc.sampling.sampler_diagnostics`;
        ``details`` = :class:`NutsDetails` (``model``, ``starts``); ``n_iter`` = draws.
    """
    import pymc as pm

    from ppl_mixtures.inference.pymc import models

    opts = build_options("nuts", Options, options)
    check_draws(
        "draws",
        opts.draws,
        hint="Use e.g. draws=1000",
        values_per_draw=values_per_draw(
            points, spec, opts.chains, log_likelihood=opts.log_likelihood
        ),
    )

    with stopwatch() as build:
        builder = (
            models.build_marginal_model if opts.model == "marginal" else models.build_builtin_model
        )
        pm_model = builder(points, spec, check_input=False)
        starts = models.initial_points(
            spec, points, opts.chains, opts.random_seed, check_input=False
        )
    with stopwatch() as wall, pm_model, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*object mode.*")  # CustomDist random
        idata = pm.sample(
            draws=opts.draws,
            tune=opts.tune,
            chains=opts.chains,
            cores=opts.cores,
            target_accept=opts.target_accept,
            random_seed=opts.random_seed,
            progressbar=opts.progressbar,
            initvals=starts,
            compute_convergence_checks=False,
        )
    sampling = float(idata["posterior"].attrs.get("sampling_time", wall.seconds))
    timings = Timings(build=build.seconds + max(wall.seconds - sampling, 0.0), run=sampling)
    sampler = sampler_diagnostics(idata)
    if sampler is not None and sampler.divergences:
        logger.warning(
            "nuts: %d divergent transitions; try target_accept=0.95 or MixtureSpec(ordered=True).",
            sampler.divergences,
        )
    return to_mixture_fit(
        "nuts",
        spec,
        points,
        idata,
        timings,
        options=opts,
        log_likelihood=opts.log_likelihood,
        sampler=sampler,
        details=NutsDetails(model=opts.model, starts=tuple(starts)),
        n_iter=opts.draws,
        attrs={"model": opts.model},
    )


ENGINES = (
    Engine(
        name="nuts",
        covariances=COVARIANCES,
        fit=fit,
        family="mcmc",
        scalable=False,
        options=Options,
        summary="NUTS (pm.sample) on the marginalized mixture; the reference posterior.",
    ),
)
