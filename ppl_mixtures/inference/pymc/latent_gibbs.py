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

import numpy as np

from ppl_mixtures.inference.pymc import models
from ppl_mixtures.inference.pymc.sampling import sampler_diagnostics, to_mixture_fit
from ppl_mixtures.inference.registry import Engine
from ppl_mixtures.model.spec import MixtureSpec
from ppl_mixtures.results import MixtureFit, Timings, stopwatch
from ppl_mixtures.validation import check_bool, check_choice, check_draws, check_int, check_seed

__all__ = ["ENGINES", "fit"]

logger = logging.getLogger(__name__)

CONTINUOUS_CHOICES = ("nuts", "metropolis")


def _initvals(spec: MixtureSpec, points: np.ndarray, chains: int,
              random_seed: int | None) -> list[dict[str, np.ndarray]]:
    """Per chain: K random data points as means, and z_i = the nearest of them."""
    out = []
    for seed in np.random.SeedSequence(random_seed).spawn(chains):
        start = models.initial_point(spec, points, random_seed=int(seed.generate_state(1)[0]))
        if spec.ordered:
            means = start["means_first"][:, None]
            if points.shape[1] > 1:
                means = np.concatenate([means, start["means_rest"]], axis=1)
        else:
            means = start["means"]
        distance = ((points[:, None, :] - means[None, :, :]) ** 2).sum(-1)   # (N, K)
        start["z"] = distance.argmin(1)
        out.append(start)
    return out


def _z_switch_rate(z: np.ndarray) -> float:
    """Fraction of (draw, observation) pairs whose assignment changed from the last draw."""
    if z.shape[1] < 2:
        return float("nan")
    return float((z[:, 1:] != z[:, :-1]).mean())


def fit(points: np.ndarray, spec: MixtureSpec, *, draws: int = 1000, tune: int = 1000,
        chains: int = 2, cores: int = 1, continuous_step: str = "nuts",
        keep_z: bool = True, random_seed: int | None = None, progressbar: bool = True,
        log_likelihood: bool = True) -> MixtureFit:
    """Sample the latent-z mixture: Gibbs for z, NUTS or Metropolis for the rest.

    Parameters
    ----------
    points : ndarray of shape (n_samples, n_features)
        Validated data. Each sweep over z costs O(n_samples) model evaluations: keep the
        data to a few hundred points.
    spec : MixtureSpec
        n_components >= 2 (with K = 1 there is no assignment to sample; a ValueError names
        the engines that fit K = 1).
    draws, tune : int
        Kept and tuning draws per chain (draws capped so that the stored draws stay within
        ``validation.MAX_STORED_VALUES`` floats).
    chains : int
        Independent chains (>= 2 for R-hat).
    cores : int
        Processes for the chains.
    continuous_step : {"nuts", "metropolis"}
        Sampler for means, weights (and learned precisions) given z.
    keep_z : bool
        Keep the z draws (chain, draw, obs) in the posterior; drop them to save memory.
    random_seed : int, optional
        Same seed -> same draws.
    progressbar : bool
        PyMC's progress bar.
    log_likelihood : bool
        Store the marginal log p(x_i | theta) per draw for ``az.loo``.

    Returns
    -------
    MixtureFit
        ``extras["sampler"]``: PyMC's sampler summary (the continuous step's acceptance,
        divergences for NUTS) and ``z_switch_rate``, the fraction of assignments that
        changed between consecutive draws (how fast z moves).
    """
    import pymc as pm

    if spec.n_components < 2:
        raise ValueError(f"n_components: expected at least 2 components for engine "
                         f"'latent_gibbs' (it samples the assignments z, and with one "
                         f"component every z_i is 0), got {spec.n_components}. Fit K = 1 with "
                         f"engine='nuts', 'metropolis', 'smc', 'advi', 'cavi', 'svi' or 'em'.")
    chains = check_int("chains", chains, minimum=1, hint="Use e.g. chains=2")
    n_samples, n_features = points.shape
    per_draw = chains * (spec.n_components * (2 * n_features + 1) + n_samples)
    draws = check_draws("draws", draws, values_per_draw=per_draw, hint="Use e.g. draws=1000")
    tune = check_int("tune", tune, minimum=0, hint="Use e.g. tune=1000")
    cores = check_int("cores", cores, minimum=1, hint="Use e.g. cores=1")
    continuous_step = check_choice("continuous_step", continuous_step, CONTINUOUS_CHOICES)
    keep_z = check_bool("keep_z", keep_z)
    progressbar = check_bool("progressbar", progressbar)
    log_likelihood = check_bool("log_likelihood", log_likelihood)
    random_seed = check_seed(random_seed)
    options = {"draws": draws, "tune": tune, "chains": chains, "cores": cores,
               "continuous_step": continuous_step, "keep_z": keep_z,
               "random_seed": random_seed, "progressbar": progressbar,
               "log_likelihood": log_likelihood}

    with stopwatch() as build:
        model = models.build_latent_model(points, spec)
        initvals = _initvals(spec, points, chains, random_seed)
        with model:
            z = model["z"]
            rest = [rv for rv in model.free_RVs if rv is not z]
            continuous = pm.NUTS(vars=rest) if continuous_step == "nuts" else pm.Metropolis(vars=rest)
            # "uniform" proposes another category and accepts by the Metropolis ratio. Do not
            # use proposal="proportional" in PyMC 6.4: its acceptance ratio divides by the
            # renormalized proposal probability (1 - 1 = 0 when K = 2), so it accepts almost
            # every flip and z loses its dependence on x (we measured the posterior collapse
            # to one blurred component).
            steps = [pm.CategoricalGibbsMetropolis(vars=[z], proposal="uniform"), continuous]
    with stopwatch() as wall, model, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*object mode.*")
        idata = pm.sample(draws=draws, tune=tune, chains=chains, cores=cores, step=steps,
                          initvals=initvals, random_seed=random_seed, progressbar=progressbar,
                          compute_convergence_checks=False)
    sampling = float(idata["posterior"].attrs.get("sampling_time", wall.seconds))
    timings = Timings(build=build.seconds + max(wall.seconds - sampling, 0.0), run=sampling)
    z_draws = np.asarray(idata["posterior"]["z"].values)
    if not keep_z:
        idata["posterior"] = idata["posterior"].to_dataset().drop_vars("z")
    sampler = {**sampler_diagnostics(idata),
               "steps": ["CategoricalGibbsMetropolis: [z]",
                         f"{'NUTS' if continuous_step == 'nuts' else 'Metropolis'}: "
                         f"[{', '.join(rv.name for rv in rest)}]"],
               "z_switch_rate": _z_switch_rate(z_draws)}
    logger.debug("latent_gibbs: %s", sampler)
    # log_likelihood: the marginal log p(x_i | theta), comparable with the other engines
    return to_mixture_fit("latent_gibbs", spec, points, idata, timings,
                          log_likelihood=log_likelihood, options=options, n_iter=draws,
                          extras={"sampler": sampler},
                          attrs={"continuous_step": continuous_step})

ENGINES = (
    Engine(
        name="latent_gibbs",
        fit=fit,
        summary="Explicit assignments z (CategoricalGibbsMetropolis) + NUTS or Metropolis "
                "for the parameters: the slow textbook contrast to marginalizing z",
        family="mcmc",
        scalable=False,
        quick_options={"draws": 200, "tune": 200, "chains": 2},
        # the demo's contrast run: 2 x (300 + 300) draws, ~1/3 of the default's time
        demo_options={"draws": 300, "tune": 300, "chains": 2},
        max_samples=150,  # the z sweep evaluates the model once per observation: O(N^2)
    ),
)
