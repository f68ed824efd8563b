"""Sequential Monte Carlo (``pm.sample_smc``): posterior draws and an estimate of log p(x).

(Longer than our ~400-line guide: the engine, its evidence estimate, the checks of that
estimate and the ordered-start workaround are one algorithm; a third of the lines are the
derivations and measurements in the docstrings.)

SMC moves a population of particles from the prior (inverse temperature beta = 0) to the
posterior (beta = 1) through a sequence of tempered distributions
p_beta(theta | x) ∝ p(theta) p(x | theta)^beta, reweighting, resampling and mutating the
particles (independent Metropolis-Hastings by default) at each stage. The product of the
stages' mean incremental weights estimates the marginal likelihood:

    Z_r = prod_t mean_i p(x | theta_i^(t))^(beta_t - beta_(t-1))                      (1)

an unbiased estimate of p(x) from one run r (Del Moral 2004; Chopin & Papaspiliopoulos
2020, §14.3). This engine does ``runs`` independent runs and combines them:

    log Z   = log mean_r Z_r = logsumexp_r log Z_r - log R                            (2)
    se      = sd_r(Z_r / Z) / sqrt(R)                    (the delta method for log Z)    (3)

Why (2) and not the mean of the runs' log Z_r: the mean of R unbiased estimates is
unbiased for p(x) with R times less variance, so the bias of its log, about -se^2 / 2,
shrinks with R; the mean of log Z_r is biased low by Var(log Z_r) / 2 whatever R
(Jensen). Both are reported (``fit.evidence.runs`` holds every run,
``fit.details.log_evidence_mean_of_logs`` the mean of their logs).

It is the number no VI or MCMC engine gives: every ELBO of the same model must lie below
log p(x). The engine checks that itself: it runs CAVI (milliseconds) on the same spec and
flags an estimate whose interval lies below CAVI's ELBO, and runs that disagree by more
than 1 nat (:class:`EvidenceWarning`, ``fit.evidence.flags``).

The ordered-start trap (API_NOTES §3): SMC draws its initial particles from the prior and
maps them to the unconstrained space. Unsorted prior draws are invalid under the ordered
transform (log of a negative difference is NaN), and the run silently collapses to the
initial value with a wrong log evidence. With ``spec.ordered`` this engine therefore draws
the prior itself, sorts feature 0 of the means, transforms, and passes the particles as
``start=``.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import logsumexp

from ppl_mixtures.inference.pymc.cov_models import COVARIANCES
from ppl_mixtures.inference.pymc.sampling import to_mixture_fit
from ppl_mixtures.inference.registry import Engine, get_engine
from ppl_mixtures.model.spec import MixtureSpec
from ppl_mixtures.results import EvidenceEstimate, MixtureFit, Timings, stopwatch
from ppl_mixtures.validation import (
    EvidenceWarning,
    build_options,
    check_bool,
    check_fraction,
    check_int,
    check_seed,
)

__all__ = [
    "DEFAULT_RUNS",
    "DISAGREEMENT_NATS",
    "ENGINES",
    "EvidenceWarning",
    "Options",
    "SmcDetails",
    "combine_runs",
    "elbo_bound",
    "evidence_flags",
    "fit",
    "ordered_start",
]

logger = logging.getLogger(__name__)

#: Independent SMC runs when neither ``runs`` nor ``chains`` is given.
DEFAULT_RUNS = 6
#: Runs whose log evidence spans more than this (nats) are flagged "runs_disagree".
DISAGREEMENT_NATS = 1.0
#: "below_elbo" when log Z + ELBO_SE_MARGIN * se < the ELBO (the interval is below a bound).
ELBO_SE_MARGIN = 3.0


#: The free variable that ``ordered`` specs constrain (models.py names it so).
_ORDERED_VARIABLE = "means_first"


def ordered_start(
    model: Any, draws: int, chains: int, random_seed: int | None
) -> list[dict[str, np.ndarray]]:
    """Prior particles with feature 0 of the means sorted, in the unconstrained space.

    The workaround of the module docs' ordered-start trap: valid starting particles for
    ``pm.sample_smc(start=...)`` on an ``ordered`` model, drawn from the normalized ordered
    prior (sorted prior draws).

    Parameters
    ----------
    model : pm.Model
        From :func:`ppl_mixtures.inference.pymc.models.build_marginal_model`.
    draws, chains : int
        Particles per chain, and chains (SMC runs).
    random_seed : int, optional

    Returns
    -------
    list of dict, one per chain
        Value-variable name (e.g. ``means_first_ordered__``) -> ndarray of shape
        (draws, *variable shape), as ``pm.sample_smc(start=...)`` expects.
    """
    import pymc as pm
    import pytensor
    import pytensor.tensor as pt

    free = list(model.free_RVs)
    # Python-mode graphs: these run once, so skipping the numba compile saves seconds cold
    values = pm.draw(free, draws=draws * chains, random_seed=random_seed, mode="FAST_COMPILE")
    start: dict[str, np.ndarray] = {}
    for rv, value in zip(free, values, strict=True):
        value = np.asarray(value, dtype=np.float64)
        if rv.name == _ORDERED_VARIABLE:
            value = np.sort(value, axis=-1)
        transform = model.rvs_to_transforms.get(rv)
        if transform is not None:
            # the transform's own forward map, so every transform (ordered, log, stick-breaking,
            # simplex) is handled the way the model will read it back
            forward = transform.forward(pt.as_tensor_variable(value), *rv.owner.inputs)
            value = np.asarray(pytensor.function([], forward, mode="FAST_COMPILE")())
        start[model.rvs_to_values[rv].name] = value
    return [
        {name: value[c * draws : (c + 1) * draws] for name, value in start.items()}
        for c in range(chains)
    ]


def _stage_stats(idata) -> dict[str, Any]:
    """Per-chain SMC statistics from ``sample_stats`` (object arrays of per-stage lists)."""
    stats = idata["sample_stats"]
    n_chains = int(idata["posterior"].sizes["chain"])

    def flat(entry) -> np.ndarray:
        parts = [
            np.ravel(np.asarray(e, dtype=np.float64))
            for e in np.ravel(np.asarray(entry, dtype=object))
        ]
        return np.concatenate(parts)

    def per_chain(name):
        # PyMC stores one per-stage list per chain (object array); with one chain the
        # per-stage values themselves sit on the "chain" dimension
        values = stats[name].values
        return [flat(values)] if n_chains == 1 else [flat(values[c]) for c in range(n_chains)]

    log_ml = np.array([stages[-1] for stages in per_chain("log_marginal_likelihood")])
    betas = per_chain("beta")
    out: dict[str, Any] = {
        "log_evidence_per_chain": log_ml.tolist(),
        "n_stages": [int(b.size) for b in betas],
        "final_beta": [float(b[-1]) for b in betas],
    }
    if "accept_rate" in stats.data_vars:
        out["mean_accept_rate"] = [float(np.nanmean(a)) for a in per_chain("accept_rate")]
    return out


def combine_runs(log_z: Any) -> tuple[float, float]:
    """Eqs. (2) and (3): the log of the mean of the runs' evidence estimates, and its se.

    Parameters
    ----------
    log_z : array-like of shape (runs,)
        Each independent run's log Z_r (finite).

    Returns
    -------
    log_evidence : float
        log mean_r Z_r, by logsumexp.
    se : float
        sd_r(Z_r / Z) / sqrt(R) with ddof=1, the delta-method standard error of log Z
        (NaN for one run). Computed on Z_r / Z = exp(log Z_r - log Z), so nothing overflows.
    """
    log_z = np.asarray(log_z, dtype=np.float64)
    log_mean = float(logsumexp(log_z) - np.log(log_z.size))
    if log_z.size < 2:
        return log_mean, float("nan")
    ratio = np.exp(log_z - log_mean)
    return log_mean, float(ratio.std(ddof=1) / np.sqrt(log_z.size))


def elbo_bound(points: np.ndarray, spec: MixtureSpec, random_seed: int | None) -> float:
    """The best ELBO of CAVI (5 restarts) on the same spec: a lower bound of log p(x).

    Any q gives a lower bound, converged or not, so CAVI's convergence warnings are
    silenced here. CAVI comes from the engine registry (engines do not import each other).
    """
    from ppl_mixtures.results import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        cavi = get_engine("cavi").fit(
            points, spec, random_seed=random_seed, n_init=5, n_draws=1, progressbar=False
        )
    return float(cavi.final_elbo)


def evidence_flags(
    log_z_runs: np.ndarray, log_evidence: float, se: float, elbo: float | None
) -> tuple[list[str], list[str]]:
    """Short flags and the sentences that explain them (for the EvidenceWarning).

    Parameters
    ----------
    log_z_runs : ndarray of shape (runs,)
        Each run's log Z_r (NaN/inf for a collapsed run).
    log_evidence, se : float
        The combined estimate and its standard error (eqs. (2), (3)).
    elbo : float or None
        A lower bound of log p(x) on the same model (CAVI's ELBO), or None: no check.

    Returns
    -------
    flags : list of str
        ``"nonfinite_runs"``, ``"runs_disagree"`` (the runs span more than
        :data:`DISAGREEMENT_NATS`), ``"below_elbo"`` (log Z + :data:`ELBO_SE_MARGIN` se <
        the ELBO); empty when all is well.
    reasons : list of str
        One sentence per flag, for the warning.
    """
    flags, reasons = [], []
    finite = np.isfinite(log_z_runs)
    if not finite.all():
        flags.append("nonfinite_runs")
        reasons.append(
            f"{int((~finite).sum())} of {finite.size} runs ended with a non-finite "
            f"log evidence (the particles collapsed); the estimate uses the others"
        )
    spread = float(np.ptp(log_z_runs[finite])) if finite.sum() > 1 else 0.0
    if spread > DISAGREEMENT_NATS:
        flags.append("runs_disagree")
        reasons.append(
            f"the {finite.sum()} runs span {spread:.2f} nats (> "
            f"{DISAGREEMENT_NATS:g}): {np.round(log_z_runs, 2).tolist()}"
        )
    margin = ELBO_SE_MARGIN * (se if np.isfinite(se) else 0.0)
    if elbo is not None and log_evidence + margin < elbo:
        flags.append("below_elbo")
        reasons.append(
            f"the estimate {log_evidence:.3f} + {ELBO_SE_MARGIN:g} se "
            f"({margin:.3f}) lies below CAVI's ELBO {elbo:.3f} on the same model, "
            f"a lower bound of log p(x): the estimate is too low"
        )
    return flags, reasons


@dataclass(frozen=True, kw_only=True)
class Options:
    """The options of ``fit(points, spec, engine="smc", **options)``.

    ``runs`` and its older name ``chains`` are one option: give at most one; after checking,
    ``runs`` holds the number and ``chains`` is None.
    """

    draws: int = field(default=2000, metadata={"help": "particles per run (= draws per chain)"})
    runs: int | None = field(
        default=None,
        metadata={
            "help": f"independent SMC runs (default {DEFAULT_RUNS}); >= 2 gives the evidence's se"
        },
    )
    chains: int | None = field(default=None, metadata={"help": "older name of runs"})
    threshold: float = field(
        default=0.8,
        metadata={"help": "ESS fraction that sets the next beta in (0, 1); higher: more stages"},
    )
    correlation_threshold: float = field(
        default=0.001, metadata={"help": "in (0, 1); lower: more Metropolis steps per stage"}
    )
    random_seed: int | None = field(
        default=None, metadata={"help": "same seed, same draws and log evidence"}
    )
    progressbar: bool = field(default=True, metadata={"help": "PyMC's progress bar"})
    log_likelihood: bool = field(
        default=True, metadata={"help": "store log p(x_i | draw) for az.loo"}
    )
    one_label_mode: bool = field(
        default=True, metadata={"help": "sample one of the K! label modes of an exchangeable prior"}
    )
    check_elbo: bool = field(
        default=True, metadata={"help": "flag an evidence below CAVI's ELBO on the same spec"}
    )

    def __post_init__(self) -> None:
        put = object.__setattr__
        put(
            self,
            "draws",
            check_int(
                "draws", self.draws, minimum=2, hint="Use e.g. draws=2000 (particles per run)"
            ),
        )
        put(self, "runs", _check_runs(self.runs, self.chains))
        put(self, "chains", None)
        put(self, "threshold", check_fraction("threshold", self.threshold, example="0.8"))
        put(
            self,
            "correlation_threshold",
            check_fraction("correlation_threshold", self.correlation_threshold, example="0.001"),
        )
        put(self, "random_seed", check_seed(self.random_seed))
        put(self, "progressbar", check_bool("progressbar", self.progressbar))
        put(self, "log_likelihood", check_bool("log_likelihood", self.log_likelihood))
        put(self, "one_label_mode", check_bool("one_label_mode", self.one_label_mode))
        put(self, "check_elbo", check_bool("check_elbo", self.check_elbo))


@dataclass(frozen=True)
class SmcDetails:
    """SMC-specific results (``MixtureFit.details``); the estimate itself is ``fit.evidence``.

    Attributes
    ----------
    log_evidence_mean_of_logs : float
        The mean of the runs' log Z_r (biased low by Var(log Z_r) / 2; module docs).
    evidence_elbo : float or None
        The CAVI ELBO used for the "below_elbo" check (None when not checked).
    smc : dict
        Per run: ``log_evidence_per_chain``, ``n_stages``, ``final_beta`` and
        ``mean_accept_rate`` (lists).
    """

    log_evidence_mean_of_logs: float
    evidence_elbo: float | None
    smc: dict[str, Any]


def fit(points: np.ndarray, spec: MixtureSpec, **options: Any) -> MixtureFit:
    """Sample the posterior with PyMC's SMC and estimate the log evidence log p(x).

    Parameters
    ----------
    points : ndarray of shape (n_samples, n_features)
        Validated data (``ppl_mixtures.fit`` validates it).
    spec : MixtureSpec
    **options
        The fields of :class:`Options`:

        - ``draws``: particles per run (= posterior draws per chain);
        - ``runs``: independent SMC runs (default :data:`DEFAULT_RUNS` = 6), one after the
          other; each is one chain of the posterior. >= 2 gives the evidence's se; more
          runs shrink it as 1/sqrt(runs) and make the se itself trustworthy (from 2 runs it
          is a one-degree-of-freedom guess). ``chains`` is the older name (give one);
        - ``threshold`` in (0, 1): effective-sample-size fraction that sets the next beta;
          higher means more stages (0.8: ~13 stages on seed 001's 100 points, 0.5: ~7);
        - ``correlation_threshold`` in (0, 1): lower means more Metropolis steps per stage
          (PyMC's kernel keeps stepping while the particles' correlation with their start
          drops by more than this per step in 90% of the coordinates). 0.001 (PyMC's
          default is 0.01) costs ~15% more time and cut the sd of one run's log Z_r from
          ~0.2 to ~0.06 nats on seed 001's data;
        - ``random_seed``: same seed -> identical draws and log evidence; ``progressbar``;
        - ``log_likelihood``: store log_likelihood ``x`` (chain, draw, obs) for ``az.loo``;
        - ``one_label_mode``: for an unordered spec whose prior is exchangeable (scalar
          ``dirichlet_alpha`` or fixed weights; not DP weights, whose prior is not
          exchangeable), sample one of the K! label modes:
          particles start from sorted prior draws and stay ordered by feature 0 (the spec
          is fitted as if ``ordered=True``). The posterior is the same up to labels
          (``compare`` relabels anyway) and the chains agree; the log evidence is log p(x)
          of the unordered model either way (see Notes). False samples the
          label-switching posterior as it is;
        - ``check_elbo``: run CAVI on the same spec and flag an estimate below its ELBO.

    Returns
    -------
    MixtureFit
        ``evidence``: an :class:`~ppl_mixtures.results.EvidenceEstimate` with

        - ``log_evidence`` (nats) and ``se``: eqs. (2) and (3) of the module docs over the
          runs (se NaN for one run);
        - ``runs``: each run's log Z_r; ``method``: how the estimate was made;
        - ``flags``: short strings, empty when all is well: ``"below_elbo"`` (log Z + 3 se
          < CAVI's ELBO on the same model: impossible for log p(x), so the estimate is too
          low), ``"runs_disagree"`` (the runs span more than 1 nat), ``"nonfinite_runs"``.

        ``details``: :class:`SmcDetails` (the mean of the runs' logs, the CAVI ELBO of the
        check, per-run stages, final beta and acceptance). ``n_iter`` = draws.

    Warns
    -----
    EvidenceWarning
        When ``evidence.flags`` is not empty, saying what was seen and what to try.

    Notes
    -----
    Each run's estimate (1) is unbiased for p(x), not for log p(x); see the module docs for
    why the runs are combined by (2). The Jensen bias of (2) is about -se^2/2 (0.005 nats at
    se = 0.1). Measured on seed 001's 100 points (K = 2, truth -320.757 by importance
    sampling): the sd of one run's log Z_r is 0.43 nats at 1000 particles and threshold
    0.5 (the old defaults: 7 stages), about 0.2 at 2000 particles and threshold 0.8 (13
    stages), where 58 runs read 0.11 +- 0.03 nats low on average, and about 0.06 with
    ``correlation_threshold=0.001`` (the default; 20 runs: 0.03 low on average); see
    ``docs/smc.md``.

    With ``spec.ordered`` the starting particles are sorted prior draws, i.e. draws from the
    *normalized* ordered prior (K! times the Normal density on the ordered region), so the
    estimate is the evidence under that proper prior; no log K! is added. For the
    exchangeable priors of :class:`MixtureSpec` (one mean prior for all components, a
    scalar ``dirichlet_alpha``) it equals log p(x) of the unordered model. PyMC's own log
    density of an ordered model is *not* renormalized (its prior mass is 1/K!), so an ELBO
    computed on that model bounds log p(x) - log K!, not log p(x). Without ordering, the
    K! label modes carry equal mass and identical likelihood increments, so particles that
    settle in one mode still estimate p(x) without bias.
    """
    import pymc as pm

    from ppl_mixtures.inference.pymc import models

    opts = build_options("smc", Options, options)
    draws, runs = opts.draws, opts.runs
    # DP weights are not exchangeable (stick-breaking favours the first components)
    exchangeable = spec.fixed_weights or (not spec.is_dp and len(set(spec.alpha().tolist())) == 1)
    sample_spec = spec
    if not spec.ordered and spec.n_components > 1:
        if opts.one_label_mode and exchangeable:
            sample_spec = dataclasses.replace(spec, ordered=True)
        else:
            logger.info("smc: sampling all K! label modes.")
    with stopwatch() as build:
        pm_model = models.build_marginal_model(points, sample_spec, check_input=False)
        start_seed, kernel_seed = _split_seed(opts.random_seed)
        start = ordered_start(pm_model, draws, runs, start_seed) if sample_spec.ordered else None
    with stopwatch() as wall, pm_model, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*object mode.*")  # CustomDist random
        idata = pm.sample_smc(
            draws=draws,
            start=start,
            chains=runs,
            cores=1,
            random_seed=kernel_seed,
            progressbar=opts.progressbar,
            threshold=opts.threshold,
            correlation_threshold=opts.correlation_threshold,
            compute_convergence_checks=False,
        )
    sampling = float(idata["posterior"].attrs.get("sampling_time", wall.seconds))

    stages = _stage_stats(idata)
    log_z_runs = np.asarray(stages["log_evidence_per_chain"])
    finite = log_z_runs[np.isfinite(log_z_runs)]
    log_evidence, se = combine_runs(finite) if finite.size else (float("nan"), float("nan"))
    # an ordered, non-exchangeable spec estimates the evidence under the normalized ordered
    # prior, which is not the model CAVI bounds: no comparison then
    # (and the check needs a CAVI that serves the spec's covariance type)
    cavi = get_engine("cavi")
    comparable = (
        not (spec.ordered and not exchangeable)
        and spec.covariance in cavi.covariances
        and spec.weights in cavi.weights
    )
    with stopwatch() as check:
        elbo = (
            elbo_bound(points, spec, opts.random_seed) if opts.check_elbo and comparable else None
        )
    flags, reasons = evidence_flags(log_z_runs, log_evidence, se, elbo)
    if flags:
        warnings.warn(
            f"smc: the log evidence {log_evidence:.3f} ± {se:.3f} is not "
            f"trustworthy: {'; '.join(reasons)}. Try more particles (draws), a "
            f"higher threshold (more stages) or more runs.",
            EvidenceWarning,
            stacklevel=3,
        )
    timings = Timings(
        build=build.seconds + max(wall.seconds - sampling, 0.0), run=sampling + check.seconds
    )
    evidence = EvidenceEstimate(
        log_evidence=log_evidence,
        se=se,
        method=f"log of the mean of {runs} independent SMC runs' estimates ({draws} "
        f"particles each), delta-method se",
        runs=tuple(float(v) for v in log_z_runs),
        flags=tuple(flags),
    )
    details = SmcDetails(
        log_evidence_mean_of_logs=float(finite.mean()) if finite.size else float("nan"),
        evidence_elbo=elbo,
        smc=stages,
    )
    options_used = {k: v for k, v in dataclasses.asdict(opts).items() if k != "chains"}
    return to_mixture_fit(
        "smc",
        spec,
        points,
        idata,
        timings,
        options=options_used,
        log_likelihood=opts.log_likelihood,
        evidence=evidence,
        details=details,
        n_iter=draws,
    )


def _split_seed(random_seed: int | None) -> tuple[int | None, int | None]:
    """Independent seeds for the start particles and for PyMC's SMC kernels.

    ``SeedSequence.spawn`` gives two independent streams from the user's seed, so the start
    draws and the kernels' random numbers never share a stream; same seed -> same numbers.
    """
    if random_seed is None:
        return None, None
    children = np.random.SeedSequence(random_seed).spawn(2)
    return tuple(int(child.generate_state(1)[0]) for child in children)


def _check_runs(runs: Any, chains: Any) -> int:
    """``runs`` or its older name ``chains`` (not both), default :data:`DEFAULT_RUNS`."""
    if runs is not None and chains is not None:
        raise ValueError(
            f"runs: expected runs or chains (the same thing), got both "
            f"(runs={runs!r}, chains={chains!r}). Pass only runs=."
        )
    if chains is not None:
        return check_int("chains", chains, minimum=1, hint="Use e.g. runs=4")
    if runs is None:
        return DEFAULT_RUNS
    return check_int("runs", runs, minimum=1, hint="Use e.g. runs=4")


ENGINES = (
    Engine(
        name="smc",
        covariances=COVARIANCES,
        fit=fit,
        family="mcmc",
        scalable=False,
        options=Options,
        summary="Sequential Monte Carlo (pm.sample_smc): posterior draws and log p(x).",
    ),
)
