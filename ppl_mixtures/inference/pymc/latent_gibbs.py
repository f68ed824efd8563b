"""Engine ``"latent_gibbs"``: the mixture with explicit assignments z, sampled by Gibbs steps.

The textbook way to sample a mixture keeps the assignments z_i as variables:

    z_i ~ Categorical(weights),    x_i | z_i ~ Normal(means_{z_i}, diag(obs_sd_{z_i}^2))

Gradient samplers cannot move a discrete z, so this engine updates z with
``pm.CategoricalGibbsMetropolis`` (each z_i in turn: propose another component, accept
with the ratio of the full conditionals, which are the responsibilities r_ik of eq. (1)
in ``diagnostics.responsibilities``) and the continuous
parameters with NUTS or Metropolis given z. It exists for contrast with the marginal
model every other PyMC engine samples (``models.build_marginal_model``, z summed out):

- each sweep over z costs O(N) logp evaluations of the whole model in PyMC, so it is
  only usable on small data (hundreds of points);
- the means move only as far as the current z allows, and z only as far as the current
  means allow: the alternation mixes slowly when components overlap (lower ESS per
  second than NUTS on the marginal model, for the same posterior of the parameters).

The parameter posterior is the same as the marginal model's, so the fit is comparable:
``means``, ``weights`` (and ``obs_sd``) are in the shared schema. The z draws are kept in
the posterior (``z``: chain, draw, obs; values are component labels, relabeled with the
components by ``ppl_mixtures.relabel``) unless ``keep_z=False``. The ``log_likelihood``
group holds the *marginal* log p(x_i | theta) (z summed out, computed with numpy from the
draws), not log p(x_i | z_i, theta), so ``az.loo`` compares it with the other engines.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ppl_mixtures.inference.pymc import models
from ppl_mixtures.inference.pymc.sampling import sampler_diagnostics, to_mixture_fit
from ppl_mixtures.inference.registry import Engine
from ppl_mixtures.model.spec import MixtureSpec
from ppl_mixtures.results import MixtureFit, Timings, stopwatch
from ppl_mixtures.validation import (
    build_options,
    check_bool,
    check_choice,
    check_draws,
    check_int,
    check_seed,
)

__all__ = ["ENGINES", "LatentGibbsDetails", "Options", "fit"]

logger = logging.getLogger(__name__)

CONTINUOUS_CHOICES = ("nuts", "metropolis")


def _initvals(
    spec: MixtureSpec, points: np.ndarray, chains: int, random_seed: int | None
) -> list[dict[str, np.ndarray]]:
    """Per chain: K random data points as means, and z_i = the nearest of them."""
    out = []
    for seed in np.random.SeedSequence(random_seed).spawn(chains):
        start = models.initial_point(
            spec, points, random_seed=int(seed.generate_state(1)[0]), check_input=False
        )
        if spec.ordered:
            means = start["means_first"][:, None]
            if points.shape[1] > 1:
                means = np.concatenate([means, start["means_rest"]], axis=1)
        else:
            means = start["means"]
        distance = ((points[:, None, :] - means[None, :, :]) ** 2).sum(-1)  # (N, K)
        start["z"] = distance.argmin(1)
        out.append(start)
    return out


def _z_switch_rate(z: np.ndarray) -> float:
    """Fraction of (draw, observation) pairs whose assignment changed from the last draw."""
    if z.shape[1] < 2:
        return float("nan")
    return float((z[:, 1:] != z[:, :-1]).mean())


@dataclass(frozen=True, kw_only=True)
class Options:
    """The options of ``fit(points, spec, engine="latent_gibbs", **options)``."""

    draws: int = field(default=1000, metadata={"help": "kept draws per chain"})
    tune: int = field(default=1000, metadata={"help": "tuning draws per chain"})
    chains: int = field(default=2, metadata={"help": "independent chains (>= 2 for R-hat)"})
    cores: int = field(default=1, metadata={"help": "processes for the chains"})
    continuous_step: str = field(
        default="nuts",
        metadata={"help": "'nuts' or 'metropolis': the sampler for the parameters given z"},
    )
    keep_z: bool = field(
        default=True, metadata={"help": "keep the z draws (chain, draw, obs) in the posterior"}
    )
    random_seed: int | None = field(default=None, metadata={"help": "same seed, same draws"})
    progressbar: bool = field(default=True, metadata={"help": "PyMC's progress bar"})
    log_likelihood: bool = field(
        default=True, metadata={"help": "store the marginal log p(x_i | draw) for az.loo"}
    )

    def __post_init__(self) -> None:
        put = object.__setattr__
        put(self, "chains", check_int("chains", self.chains, minimum=1, hint="Use e.g. chains=2"))
        # the memory cap needs the data's size: fit() checks it with check_draws
        put(self, "draws", check_int("draws", self.draws, minimum=1, hint="Use e.g. draws=1000"))
        put(self, "tune", check_int("tune", self.tune, minimum=0, hint="Use e.g. tune=1000"))
        put(self, "cores", check_int("cores", self.cores, minimum=1, hint="Use e.g. cores=1"))
        put(
            self,
            "continuous_step",
            check_choice("continuous_step", self.continuous_step, CONTINUOUS_CHOICES),
        )
        put(self, "keep_z", check_bool("keep_z", self.keep_z))
        put(self, "progressbar", check_bool("progressbar", self.progressbar))
        put(self, "log_likelihood", check_bool("log_likelihood", self.log_likelihood))
        put(self, "random_seed", check_seed(self.random_seed))


@dataclass(frozen=True)
class LatentGibbsDetails:
    """latent_gibbs-specific results (``MixtureFit.details``).

    Attributes
    ----------
    steps : tuple of str
        The step methods, e.g. ``"CategoricalGibbsMetropolis: [z]"``.
    z_switch_rate : float
        Fraction of assignments that changed between consecutive draws (how fast z moves;
        NaN with one draw).
    """

    steps: tuple[str, ...]
    z_switch_rate: float


def fit(points: np.ndarray, spec: MixtureSpec, **options: Any) -> MixtureFit:
    """Sample the latent-z mixture: Gibbs for z, NUTS or Metropolis for the rest.

    Parameters
    ----------
    points : ndarray of shape (n_samples, n_features)
        Validated data (trusted). Each sweep over z costs O(n_samples) model evaluations:
        keep the data to a few hundred points.
    spec : MixtureSpec
        n_components >= 2 (with K = 1 there is no assignment to sample; a ValueError names
        the engines that fit K = 1).
    **options
        The fields of :class:`Options`: ``draws``, ``tune`` (per chain; draws capped so
        that the stored draws stay within ``validation.MAX_STORED_VALUES`` floats),
        ``chains``, ``cores``, ``continuous_step`` ("nuts" or "metropolis", for means,
        weights and learned precisions given z), ``keep_z``, ``random_seed``,
        ``progressbar``, ``log_likelihood`` (the marginal log p(x_i | theta) per draw).

    Returns
    -------
    MixtureFit
        ``sampler``: PyMC's sampler summary (the continuous step's acceptance, divergences
        for NUTS); ``details``: :class:`LatentGibbsDetails` (the steps and
        ``z_switch_rate``).
    """
    import pymc as pm

    if spec.n_components < 2:
        raise ValueError(
            f"n_components: expected at least 2 components for engine "
            f"'latent_gibbs' (it samples the assignments z, and with one "
            f"component every z_i is 0), got {spec.n_components}. Fit K = 1 with "
            f"engine='nuts', 'metropolis', 'smc', 'advi', 'cavi', 'svi' or 'em'."
        )
    opts = build_options("latent_gibbs", Options, options)
    n_samples, n_features = points.shape
    per_draw = opts.chains * (spec.n_components * (2 * n_features + 1) + n_samples)
    check_draws("draws", opts.draws, values_per_draw=per_draw, hint="Use e.g. draws=1000")

    with stopwatch() as build:
        model = models.build_latent_model(points, spec, check_input=False)
        initvals = _initvals(spec, points, opts.chains, opts.random_seed)
        with model:
            z = model["z"]
            rest = [rv for rv in model.free_RVs if rv is not z]
            continuous = (
                pm.NUTS(vars=rest) if opts.continuous_step == "nuts" else pm.Metropolis(vars=rest)
            )
            # "uniform" proposes another category and accepts by the Metropolis ratio. Do not
            # use proposal="proportional" in PyMC 6.4: its acceptance ratio divides by the
            # renormalized proposal probability (1 - 1 = 0 when K = 2), so it accepts almost
            # every flip and z loses its dependence on x (we measured the posterior collapse
            # to one blurred component).
            steps = [pm.CategoricalGibbsMetropolis(vars=[z], proposal="uniform"), continuous]
    with stopwatch() as wall, model, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*object mode.*")
        idata = pm.sample(
            draws=opts.draws,
            tune=opts.tune,
            chains=opts.chains,
            cores=opts.cores,
            step=steps,
            initvals=initvals,
            random_seed=opts.random_seed,
            progressbar=opts.progressbar,
            compute_convergence_checks=False,
        )
    sampling = float(idata["posterior"].attrs.get("sampling_time", wall.seconds))
    timings = Timings(build=build.seconds + max(wall.seconds - sampling, 0.0), run=sampling)
    z_draws = np.asarray(idata["posterior"]["z"].values)
    if not opts.keep_z:
        idata["posterior"] = idata["posterior"].to_dataset().drop_vars("z")
    continuous_name = "NUTS" if opts.continuous_step == "nuts" else "Metropolis"
    details = LatentGibbsDetails(
        steps=(
            "CategoricalGibbsMetropolis: [z]",
            f"{continuous_name}: [{', '.join(rv.name for rv in rest)}]",
        ),
        z_switch_rate=_z_switch_rate(z_draws),
    )
    logger.debug("latent_gibbs: %s", details)
    # log_likelihood: the marginal log p(x_i | theta), comparable with the other engines
    return to_mixture_fit(
        "latent_gibbs",
        spec,
        points,
        idata,
        timings,
        options=opts,
        log_likelihood=opts.log_likelihood,
        sampler=sampler_diagnostics(idata),
        details=details,
        n_iter=opts.draws,
        attrs={"continuous_step": opts.continuous_step},
    )


ENGINES = (
    Engine(
        name="latent_gibbs",
        fit=fit,
        weights=("dirichlet", "fixed"),  # the teaching contrast; DP specs: nuts, metropolis, smc
        options=Options,
        summary="Explicit assignments z (CategoricalGibbsMetropolis) + NUTS or Metropolis "
        "for the parameters: the slow textbook contrast to marginalizing z",
        family="mcmc",
        scalable=False,
    ),
)
