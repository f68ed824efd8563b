"""Engine ``"metropolis"``: random-walk Metropolis on the marginalized mixture (seed 001's recipe).

Seed 001 sampled the marginal mixture with ``find_MAP`` as the start and ``pm.Metropolis``
for every variable. On 100 points that gives a few hundred effective draws; on 100 000
points it printed "the gelman-rubin statistic is larger than 1.4 ... the sampler did not
converge" after four minutes. The reason: a random walk must take steps of the posterior's
width, which shrinks like 1/sqrt(N), while the proposal scale starts at 1 and is tuned by
at most a factor of 10 per 100 tuning draws; and even when tuned, a random walk in d
dimensions needs O(d) steps per independent draw, where NUTS needs O(d^(1/4)) gradient
steps. This engine reproduces the recipe so the failure can be measured (ESS per second,
R-hat) next to NUTS on the same model, and offers the options that repair part of it:

- ``blocked=False`` (PyMC's default): one Metropolis step per variable; ``True``: one joint
  proposal for all variables;
- ``start="map"`` (the seed's recipe): every chain starts at ``pm.find_MAP``; ``"data"``:
  each chain from its own overdispersed start (:func:`ppl_mixtures.inference.pymc.models.initial_points`:
  k-means++ data points as means, random weights); ``"prior"``: each chain at means drawn
  from the prior. Only the per-chain starts let R-hat see chains that end in different
  modes; "map" stays the default because it is the recipe this engine reproduces;
- ``compound=True``: Metropolis for the weights (DP specs: the sticks and a learned alpha)
  and NUTS for the means (and learned precisions), the list-of-steps form of
  ``pm.sample(step=[...])``.

Every variant samples the same model as ``"nuts"`` (``models.build_marginal_model``), so the
answers are comparable and ``relabel``/``compare`` need no special case.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ppl_mixtures.inference.pymc import models
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
    check_int,
    check_seed,
)

__all__ = ["ENGINES", "MetropolisDetails", "Options", "fit"]

logger = logging.getLogger(__name__)

START_CHOICES = ("map", "data", "prior")


# ----------------------------------------------------------------- start values
def _map_start(
    model: Any, spec: MixtureSpec, points: np.ndarray, random_seed: int | None
) -> dict[str, np.ndarray]:
    """``pm.find_MAP`` from the data-quantile start, as constrained values by RV name."""
    import pymc as pm

    with warnings.catch_warnings():  # FutureWarnings about find_MAP's future defaults
        warnings.simplefilter("ignore", FutureWarning)
        # Python-mode graphs: the optimiser evaluates log p and its gradient a few dozen
        # times, so a numba compile of both (tens of seconds on a cold cache) does not pay
        found = pm.find_MAP(
            initvals=models.initial_point(spec, points, check_input=False),
            model=model,
            jitter=False,
            random_seed=random_seed,
            progressbar=False,
            return_inferencedata=False,
            compile_kwargs={"mode": "FAST_COMPILE"},
        )
    # find_MAP returns value-variable keys (weights_stickbreaking__) and constrained keys;
    # pm.sample's initvals takes the constrained ones by RV name.
    return {rv.name: np.asarray(found[rv.name]) for rv in model.free_RVs}


def _prior_start(
    spec: MixtureSpec, points: np.ndarray, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Means from the prior (feature 0 sorted when ordered), other variables as initial_point."""
    start = models.initial_point(spec, points, check_input=False)
    n_features = points.shape[1]
    means = rng.normal(
        spec.prior_mean(n_features), spec.prior_sd(n_features), size=(spec.n_components, n_features)
    )
    if spec.ordered:
        means = means[np.argsort(means[:, 0])]
        start["means_first"] = means[:, 0]
        if n_features > 1:
            start["means_rest"] = means[:, 1:]
    else:
        start["means"] = means
    return start


def _initvals(
    start: str,
    model: Any,
    spec: MixtureSpec,
    points: np.ndarray,
    chains: int,
    random_seed: int | None,
) -> list[dict[str, np.ndarray]]:
    """One dict of constrained start values per chain."""
    if start == "map":
        found = _map_start(model, spec, points, random_seed)
        return [found] * chains
    if start == "prior":
        return [
            _prior_start(spec, points, np.random.default_rng(s))
            for s in np.random.SeedSequence(random_seed).spawn(chains)
        ]
    return models.initial_points(spec, points, chains, random_seed, check_input=False)


# ----------------------------------------------------------------- steps
#: The free variables of the weights: Dirichlet ``weights``, or the DP's sticks and alpha.
_WEIGHT_VARIABLES = ("weights", "dp_neg_log_rest", "dp_alpha")


def _steps(model: Any, *, blocked: bool, compound: bool) -> list[Any]:
    """The step methods; building them compiles the logp functions (build time)."""
    import pymc as pm

    free = list(model.free_RVs)
    if not compound:
        return [pm.Metropolis(vars=free, blocked=blocked)]
    weights = [rv for rv in free if rv.name in _WEIGHT_VARIABLES]
    rest = [rv for rv in free if rv.name not in _WEIGHT_VARIABLES]
    return [pm.Metropolis(vars=weights, blocked=blocked), pm.NUTS(vars=rest)]


def _step_label(method: Any) -> str:
    names = ", ".join(var.name for var in method.vars)
    return f"{type(method).__name__}: [{names}]"


def _flat_methods(steps: list[Any]) -> list[Any]:
    out = []
    for step in steps:
        out.extend(getattr(step, "methods", [step]))
    return out


def _acceptance(idata: Any, methods: list[Any]) -> dict[str, float]:
    """Mean acceptance per step method, keyed by its label ('Metropolis: [means]')."""
    stats = idata["sample_stats"]
    labels = [_step_label(m) for m in methods]
    out: dict[str, float] = {}
    if "accepted" in stats.data_vars:
        accepted = np.asarray(stats["accepted"].values, dtype=float)
        accepted = accepted.reshape(accepted.shape[0], accepted.shape[1], -1)
        metropolis = [lab for lab in labels if lab.startswith("Metropolis")]
        for j, label in enumerate(metropolis[: accepted.shape[-1]]):
            out[label] = float(accepted[..., j].mean())
    if "acceptance_rate" in stats.data_vars:
        nuts = [lab for lab in labels if lab.startswith("NUTS")]
        if nuts:
            out[nuts[0]] = float(np.asarray(stats["acceptance_rate"].values).mean())
    return out


# ----------------------------------------------------------------- the engine
@dataclass(frozen=True, kw_only=True)
class Options:
    """The options of ``fit(points, spec, engine="metropolis", **options)``."""

    draws: int = field(default=2000, metadata={"help": "kept draws per chain"})
    tune: int = field(
        default=2000,
        metadata={"help": "tuning draws per chain (the proposal scale moves <= 10x per 100 draws)"},
    )
    chains: int = field(default=2, metadata={"help": "independent chains (>= 2 for R-hat)"})
    cores: int = field(default=1, metadata={"help": "processes for the chains"})
    blocked: bool = field(
        default=False,
        metadata={"help": "one joint proposal for all variables (False: one step per variable)"},
    )
    start: str | None = field(
        default="map",
        metadata={
            "help": "'map' (find_MAP, seed 001's recipe), 'data' (per-chain k-means starts) or "
            "'prior'; None means 'data'"
        },
    )
    compound: bool = field(
        default=False,
        metadata={"help": "Metropolis for the weights, NUTS for the means (needs learned weights)"},
    )
    random_seed: int | None = field(default=None, metadata={"help": "same seed, same draws"})
    progressbar: bool = field(default=True, metadata={"help": "PyMC's progress bar"})
    log_likelihood: bool = field(
        default=True,
        metadata={"help": "store log p(x_i | draw) for az.loo (chains x draws x n_samples floats)"},
    )

    def __post_init__(self) -> None:
        put = object.__setattr__
        put(self, "chains", check_int("chains", self.chains, minimum=1, hint="Use e.g. chains=2"))
        put(self, "log_likelihood", check_bool("log_likelihood", self.log_likelihood))
        # the memory cap needs the data's size: fit() checks it with check_draws
        put(self, "draws", check_int("draws", self.draws, minimum=1, hint="Use e.g. draws=2000"))
        put(self, "tune", check_int("tune", self.tune, minimum=0, hint="Use e.g. tune=2000"))
        put(self, "cores", check_int("cores", self.cores, minimum=1, hint="Use e.g. cores=1"))
        put(
            self,
            "start",
            check_choice("start", "data" if self.start is None else self.start, START_CHOICES),
        )
        put(self, "blocked", check_bool("blocked", self.blocked))
        put(self, "compound", check_bool("compound", self.compound))
        put(self, "progressbar", check_bool("progressbar", self.progressbar))
        put(self, "random_seed", check_seed(self.random_seed))


@dataclass(frozen=True)
class MetropolisDetails:
    """Metropolis-specific results (``MixtureFit.details``).

    Attributes
    ----------
    steps : tuple of str
        The step methods, e.g. ``"Metropolis: [means]"``.
    acceptance : dict of str to float
        Mean acceptance per step method, keyed like ``steps``.
    start : dict
        Chain 0's start values (constrained, by variable name).
    starts : tuple of dict
        Every chain's start values.
    """

    steps: tuple[str, ...]
    acceptance: dict[str, float]
    start: dict[str, np.ndarray]
    starts: tuple[dict[str, np.ndarray], ...]


def fit(points: np.ndarray, spec: MixtureSpec, **options: Any) -> MixtureFit:
    """Sample the marginal mixture with Metropolis (optionally NUTS for the means).

    Parameters
    ----------
    points : ndarray of shape (n_samples, n_features)
        Validated data (``ppl_mixtures.fit`` validates it; this function trusts it).
    spec : MixtureSpec
    **options
        The fields of :class:`Options`: ``draws``, ``tune`` (per chain; Metropolis tunes
        its proposal scale every 100 tuning draws by at most a factor of 10, so it needs
        long tuning on large data), ``chains``, ``cores``, ``blocked`` (False: a Metropolis
        step per variable, PyMC's default and seed 001's CompoundStep; True: one joint
        proposal), ``start`` ("map": every chain at ``pm.find_MAP``, the seed's recipe;
        "data": each chain from its own overdispersed start, ``models.initial_points``;
        "prior": each chain's means drawn from the prior; None: "data"), ``compound``
        (Metropolis for the weights and NUTS for the means and learned precisions; needs
        ``spec.weights="dirichlet"`` or ``"dp"`` and K > 1), ``random_seed``, ``progressbar``,
        ``log_likelihood`` (store log p(x_i | theta) per draw for ``az.loo``).

    Returns
    -------
    MixtureFit
        ``idata`` holds the posterior (means, weights, obs_sd when learned), sample_stats
        (Metropolis: ``accept``, ``accepted``, ``scaling`` per step; NUTS stats too when
        compound), observed_data and log_likelihood. ``sampler``: PyMC's sampler summary;
        ``details``: :class:`MetropolisDetails` (the steps, each one's mean acceptance, the
        start values). ``timings.build`` includes compiling and PyMC's set-up (and
        find_MAP), ``timings.run`` is the sampling time.
    """
    import pymc as pm

    opts = build_options("metropolis", Options, options)
    check_draws(
        "draws",
        opts.draws,
        hint="Use e.g. draws=2000",
        values_per_draw=values_per_draw(
            points, spec, opts.chains, log_likelihood=opts.log_likelihood
        ),
    )
    if opts.compound and spec.fixed_weights:
        raise ValueError(
            "compound: expected a spec with learned weights (weights='dirichlet' "
            "or 'dp', and n_components > 1), got fixed weights, so there is nothing for "
            "Metropolis to sample. Use compound=False, or engine='nuts'."
        )

    with stopwatch() as build:
        model = models.build_marginal_model(points, spec, check_input=False)
        initvals = _initvals(opts.start, model, spec, points, opts.chains, opts.random_seed)
        with model:
            steps = _steps(model, blocked=opts.blocked, compound=opts.compound)  # compiles
    with stopwatch() as wall, model, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*object mode.*")  # CustomDist random
        idata = pm.sample(
            draws=opts.draws,
            tune=opts.tune,
            chains=opts.chains,
            cores=opts.cores,
            step=steps if len(steps) > 1 else steps[0],
            initvals=initvals,
            random_seed=opts.random_seed,
            progressbar=opts.progressbar,
            compute_convergence_checks=False,
        )
    sampling = float(idata["posterior"].attrs.get("sampling_time", wall.seconds))
    timings = Timings(build=build.seconds + max(wall.seconds - sampling, 0.0), run=sampling)
    methods = _flat_methods(steps)
    details = MetropolisDetails(
        steps=tuple(_step_label(m) for m in methods),
        acceptance=_acceptance(idata, methods),
        start=initvals[0],
        starts=tuple(initvals),
    )
    logger.debug("metropolis: %s", details.acceptance)
    return to_mixture_fit(
        "metropolis",
        spec,
        points,
        idata,
        timings,
        options=opts,
        log_likelihood=opts.log_likelihood,
        sampler=sampler_diagnostics(idata),
        details=details,
        n_iter=opts.draws,
        attrs={"blocked": int(opts.blocked), "compound": int(opts.compound), "start": opts.start},
    )


ENGINES = (
    Engine(
        name="metropolis",
        covariances=COVARIANCES,
        fit=fit,
        options=Options,
        summary="Random-walk Metropolis on the marginal model (seed 001's recipe: "
        "find_MAP start); per-variable or blocked, or compound with NUTS",
        family="mcmc",
        scalable=False,
    ),
)
