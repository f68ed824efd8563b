"""`MixtureFit`: the result every engine returns, and the helpers engines use to build it.

(Longer than ~400 lines on purpose: the fit, its typed records and the one schema builder
are the single contract every engine writes and every reader reads; they change together.)

Schema of ``fit.idata`` (an ``xarray.DataTree``, as ArviZ 1.x expects):

- ``posterior``: ``means`` (chain, draw, component, feature), ``weights`` (chain, draw,
  component) and, when the spec learns it, ``obs_sd`` (chain, draw, component, feature).
  MCMC engines put their draws here, VI engines draws from q, EM its point estimate as one
  chain of one draw. Engines may add more variables (e.g. PyMC deterministics).
- ``observed_data``: ``x`` (obs, feature), the data the engine saw.
- ``sample_stats`` (MCMC), ``log_likelihood`` (``x`` with dims (chain, draw, obs)) when
  the engine computed it.

``fit.converged`` means the engine's own convergence test passed (see :class:`MixtureFit`);
``fit.family`` is "mcmc", "vi" or "point"; ``fit.fingerprint`` identifies the spec and data,
so ``compare`` refuses fits of different questions.

What engines report beyond the draws is typed, never a bag of string keys:
``fit.elbo_estimate`` (:class:`Estimate`: the final ELBO and its Monte Carlo standard
error), ``fit.evidence`` (:class:`EvidenceEstimate`: log p(x) with its se, method, runs and
flags), ``fit.restarts`` (:class:`Restart` per ``n_init`` restart, the kept one marked),
``fit.sampler`` (:class:`SamplerStats`), ``fit.relabeling`` (:class:`Relabeling`, set by
``relabel``), ``fit.from_cache``, and ``fit.details``: a dataclass each engine's module
defines for its own material (e.g. ``AdviDetails`` with q's parameters, ``EmDetails`` with
the log-likelihood trace).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from ppl_mixtures.model.spec import MixtureSpec
from ppl_mixtures.validation.chunked import ChunkedPoints

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr
    from matplotlib.figure import Figure

__all__ = [
    "FAMILIES",
    "PARAMETERS",
    "ConvergenceWarning",
    "Estimate",
    "EvidenceEstimate",
    "MixtureFit",
    "Relabeling",
    "Restart",
    "SamplerStats",
    "Timings",
    "make_idata",
    "stopwatch",
]

#: The model parameters every engine reports, in the order tables show them.
PARAMETERS = ("means", "weights", "obs_sd")
#: Engine families: samplers, variational methods, point estimators.
FAMILIES = ("mcmc", "vi", "point")
#: Spec fields that choose a parameterization, not the model (left out of the fingerprint:
#: the posterior is the same whichever transform the weights use).
_PARAMETERIZATION_FIELDS = ("weights_transform",)


def frozen_state(obj: Any, mappings: tuple[str, ...]) -> dict[str, Any]:
    """A frozen dataclass's fields for pickle, its read-only ``mappings`` as plain dicts
    (``MappingProxyType`` does not pickle)."""
    state = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    for name in mappings:
        state[name] = dict(state[name])
    return state


def restore_frozen_state(obj: Any, state: Mapping[str, Any], mappings: tuple[str, ...]) -> None:
    """Inverse of :func:`frozen_state`: set the fields, ``mappings`` read-only again."""
    for name, value in state.items():
        object.__setattr__(obj, name, value)
    for name in mappings:
        object.__setattr__(obj, name, MappingProxyType(dict(state[name])))


class ConvergenceWarning(UserWarning):
    """An optimizer or sampler stopped before its convergence criterion was met."""


@dataclass(frozen=True)
class Timings:
    """Wall-clock seconds, split so compile cost and steady-state speed can be told apart.

    Attributes
    ----------
    build : float
        Building the model and compiling its functions (PyTensor's cold cost lives here).
    run : float
        Sampling, optimizing or iterating.
    """

    build: float = 0.0
    run: float = 0.0

    @property
    def total(self) -> float:
        return self.build + self.run

    def to_dict(self) -> dict[str, float]:
        return {"build": self.build, "run": self.run, "total": self.total}


class _Elapsed:
    seconds: float = 0.0


@contextmanager
def stopwatch() -> Iterator[_Elapsed]:
    """Time a block: ``with stopwatch() as t: ...`` then ``t.seconds``."""
    elapsed = _Elapsed()
    start = time.perf_counter()
    try:
        yield elapsed
    finally:
        elapsed.seconds = time.perf_counter() - start


# ------------------------------------------------------------------ typed records
@dataclass(frozen=True)
class Estimate:
    """A number in nats with its standard error (0.0 when computed exactly)."""

    value: float
    se: float = 0.0


@dataclass(frozen=True)
class EvidenceEstimate:
    """An estimate of log p(x) (nats).

    Attributes
    ----------
    log_evidence : float
    se : float
        Its standard error (e.g. delta method over independent SMC runs).
    method : str
        How it was estimated, in words (reports print it).
    runs : tuple of float
        One estimate per independent run, when there were several.
    flags : tuple of str
        Reasons to distrust it, e.g. ``"below_elbo"``, ``"runs_disagree"``.
    """

    log_evidence: float
    se: float
    method: str
    runs: tuple[float, ...] = ()
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Restart:
    """One restart of an optimizer (``n_init``): the local optima users should see.

    Attributes
    ----------
    random_seed : int
        The seed this restart started from.
    objective : float
        What it reached, in nats (the ELBO, or EM's log-likelihood / log-joint).
    objective_name : str
        ``"elbo"``, ``"log_lik"`` or ``"log_joint"``.
    n_iter : int or None
    converged : bool or None
    kept : bool
        True for the restart whose answer the fit returns.
    """

    random_seed: int
    objective: float
    objective_name: str
    n_iter: int | None = None
    converged: bool | None = None
    kept: bool = False


@dataclass(frozen=True)
class SamplerStats:
    """A summary of an MCMC sampler's statistics (None where the sampler does not report it).

    Attributes
    ----------
    n_chains, n_draws : int
    divergences : int or None
        Divergent transitions after tuning, over all chains (NUTS).
    max_treedepth_hits : int or None
    mean_tree_depth : float or None
    mean_acceptance : float or None
        NUTS's mean acceptance statistic, or Metropolis's acceptance rate.
    step_size : tuple of float
        Per chain, after tuning (NUTS).
    """

    n_chains: int
    n_draws: int
    divergences: int | None = None
    max_treedepth_hits: int | None = None
    mean_tree_depth: float | None = None
    mean_acceptance: float | None = None
    step_size: tuple[float, ...] = ()


@dataclass(frozen=True, eq=False)
class Relabeling:
    """What :func:`ppl_mixtures.relabel` did to a fit.

    Attributes
    ----------
    permutations : ndarray of shape (n_chains, n_draws, n_components)
    draws_relabeled : int
    rhat_before, rhat_after : float or None
        Max R-hat over the parameters before and after (None with one chain).
    """

    permutations: np.ndarray
    draws_relabeled: int
    rhat_before: float | None
    rhat_after: float | None


@dataclass(frozen=True, eq=False)
class MixtureFit:
    """One engine's answer to one :class:`MixtureSpec` on one dataset.

    Attributes
    ----------
    engine : str
        Registry name of the engine that produced the fit (``"nuts"``, ``"cavi"``, ...).
    spec : MixtureSpec
        The model that was fitted.
    idata : xarray.DataTree
        Posterior (or q, or point-estimate) draws in the shared schema; see module docs.
    timings : Timings
        Build/compile and run seconds, measured separately.
    elbo : ndarray of shape (n_iter,) or None
        ELBO trace in nats (higher is better; never a loss), full-data scale. None for
        engines without an ELBO.
    converged : bool or None
        True when the engine's own convergence test passed, False when it ran out of
        iterations (or failed its test) first, None when the engine has no such test
        (MCMC: judge the chains by R-hat and ESS instead). It says nothing about how good
        the answer is: a converged mean-field fit is still too narrow, and ``compare``
        reports that separately as a property of the family.
    n_iter : int or None
        Iterations run (optimizers) or draws per chain (samplers).
    options : Mapping
        The options the engine ran with, including ``random_seed``, for reproduction.
    family : {"mcmc", "vi", "point"} or None
        The engine's family (samplers, variational methods, point estimators); None when
        not recorded (``compare`` then treats it as an unknown family; ``fit()`` always sets it).
    elbo_estimate : Estimate or None
        The ELBO of the returned q (VI engines), with its Monte Carlo standard error.
    evidence : EvidenceEstimate or None
        An estimate of log p(x) (SMC).
    restarts : tuple of Restart
        Every restart of an optimizer with ``n_init`` > 1; the kept one is marked.
    sampler : SamplerStats or None
        MCMC engines' sampler statistics.
    relabeling : Relabeling or None
        Set by :func:`ppl_mixtures.relabel`.
    from_cache : bool
        True when the fit was loaded from the reference cache instead of run.
    details : object or None
        Engine-specific material, as a dataclass the engine's module defines (e.g. ADVI's
        q parameters, EM's log-likelihood trace).
    """

    engine: str
    spec: MixtureSpec
    idata: Any
    timings: Timings = field(default_factory=Timings)
    elbo: np.ndarray | None = None
    converged: bool | None = None
    n_iter: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    family: str | None = None
    elbo_estimate: Estimate | None = None
    evidence: EvidenceEstimate | None = None
    restarts: tuple[Restart, ...] = ()
    sampler: SamplerStats | None = None
    relabeling: Relabeling | None = None
    from_cache: bool = False
    details: Any = None

    def __post_init__(self) -> None:
        if self.family is not None and self.family not in FAMILIES:
            raise ValueError(
                f"family: expected one of {', '.join(FAMILIES)} or None, got "
                f"{self.family!r}. Use 'mcmc' for samplers, 'vi' for variational "
                f"methods, 'point' for point estimators."
            )
        if self.elbo is not None:
            # a copy: the caller's array stays writable
            elbo = np.array(self.elbo, dtype=np.float64)
            elbo.setflags(write=False)
            object.__setattr__(self, "elbo", elbo)
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))

    # --------------------------------------------------------------- pickling
    def __getstate__(self) -> dict[str, Any]:
        """Fields for pickle: ``options`` as a plain dict (mappingproxy does not pickle)."""
        return frozen_state(self, ("options",))

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        """Restore a pickled fit: ``options`` read-only again, ``elbo`` read-only."""
        restore_frozen_state(self, state, ("options",))
        if self.elbo is not None:
            elbo = np.array(self.elbo, dtype=np.float64)
            elbo.setflags(write=False)
            object.__setattr__(self, "elbo", elbo)

    # ------------------------------------------------------------------ views
    @property
    def posterior(self) -> xr.Dataset:
        """The posterior group as an ``xarray.Dataset``."""
        return self.idata["posterior"].to_dataset()

    @property
    def points(self) -> np.ndarray:
        """The observed data, shape (n_samples, n_features).

        Raises a ValueError for a fit of chunked (dask) data, which are not stored in it
        (``idata.posterior.attrs["chunked_data"]`` describes them): pass the points
        explicitly to what needs them.
        """
        if "observed_data" not in self.idata.children:
            chunked = self.idata["posterior"].attrs.get(_CHUNKED_ATTR, "none stored")
            raise ValueError(
                f"fit.points: expected a fit that stores its data, got a {self.engine} fit "
                f"of chunked data ({chunked}), which stay where they are. Pass the points "
                f"explicitly (e.g. fit.plot_data(points=subsample), responsibilities(fit, "
                f"points)), or fit an in-memory array."
            )
        return np.asarray(self.idata["observed_data"]["x"].values)

    @property
    def n_components(self) -> int:
        return self.spec.n_components

    @property
    def n_features(self) -> int:
        return int(self.idata["posterior"]["means"].sizes["feature"])

    @property
    def n_chains(self) -> int:
        return int(self.idata["posterior"].sizes["chain"])

    @property
    def n_draws(self) -> int:
        return int(self.idata["posterior"].sizes["draw"])

    def draws(self, name: str) -> np.ndarray:
        """Draws of a parameter as a numpy array with (chain, draw) leading dims."""
        return np.asarray(self.idata["posterior"][name].values)

    def posterior_mean(self, name: str) -> np.ndarray:
        """Posterior (or q) mean of a parameter over chains and draws."""
        return self.draws(name).mean(axis=(0, 1))

    @property
    def final_elbo(self) -> float | None:
        """The ELBO at the end in nats: ``elbo_estimate`` if set, else the trace's last."""
        if self.elbo_estimate is not None:
            return float(self.elbo_estimate.value)
        if self.elbo is not None and self.elbo.size:
            return float(self.elbo[-1])
        return None

    @property
    def data_fingerprint(self) -> str:
        """sha256 (hex) of the observed data: its shape and float64 bytes (C order).

        Chunked data: sha256 of the shape and every chunk's blake2b digest, in chunk order
        (computed by the validating pass; it depends on the chunking too).
        """
        stored = self.idata["posterior"].attrs.get(_FINGERPRINT_ATTR)
        if stored is not None and "observed_data" not in self.idata.children:
            return str(stored)
        points = np.ascontiguousarray(self.points, dtype="<f8")
        digest = hashlib.sha256(repr(points.shape).encode())
        digest.update(points.tobytes())
        return digest.hexdigest()

    @property
    def spec_fingerprint(self) -> str:
        """sha256 (hex) of the model the spec describes (``spec.to_dict()`` as sorted JSON).

        Parameterization choices that leave the posterior unchanged (``weights_transform``)
        are left out, so fits of one model under different transforms compare.
        """
        model = {k: v for k, v in self.spec.to_dict().items() if k not in _PARAMETERIZATION_FIELDS}
        text = json.dumps(model, sort_keys=True, default=repr)
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def fingerprint(self) -> str:
        """sha256 (hex) of the spec and data together: equal fingerprints, same question.

        Computed from ``idata.observed_data`` (every engine stores the data it saw), so
        two fits answer the same question exactly when their fingerprints are equal.
        """
        return hashlib.sha256((self.spec_fingerprint + self.data_fingerprint).encode()).hexdigest()

    def parameter_names(self) -> tuple[str, ...]:
        """The model parameters present in the posterior, in table order."""
        post = self.idata["posterior"]
        return tuple(p for p in PARAMETERS if p in post.data_vars)

    def summary(self, **kwargs: Any) -> pd.DataFrame:
        """``arviz.summary`` of the model parameters (R-hat and ESS need >= 2 chains)."""
        import arviz as az

        kwargs.setdefault("var_names", list(self.parameter_names()))
        return az.summary(self.idata, **kwargs)

    # ------------------------------------------------------------------ plots
    def plot_data(self, points: Any = None, **kwargs: Any) -> Figure:
        """The data with this fit's components (:func:`ppl_mixtures.present.plots.plot_fit_data`).

        ``points`` of shape (n_samples, n_features) (default: ``self.points``, the data
        the engine saw); ``kwargs``: ``max_points``, ``title``, ``feature_names``,
        ``units``, ``data_transform``. Returns a ``matplotlib.figure.Figure``.
        """
        from ppl_mixtures.present import plots  # matplotlib only when a figure is asked for

        return plots.plot_fit_data(self, points, **kwargs)

    def plot_trace(self, **kwargs: Any) -> Figure:
        """Per-chain densities and traces (:func:`ppl_mixtures.present.plots.plot_trace`).

        ``kwargs``: ``title``, ``max_parameters``, ``feature_names``, ``units``,
        ``data_transform``. A ValueError for a point estimate (nothing varies).
        """
        from ppl_mixtures.present import plots

        return plots.plot_trace(self, **kwargs)

    def plot_marginals(self, **kwargs: Any) -> Figure:
        """Each parameter's marginal (:func:`ppl_mixtures.present.plots.plot_fit_marginals`).

        ``kwargs``: ``parameters``, ``max_panels``, ``bins``, ``title``,
        ``feature_names``, ``units``, ``data_transform``.
        """
        from ppl_mixtures.present import plots

        return plots.plot_fit_marginals(self, **kwargs)

    def replace(self, **changes: Any) -> MixtureFit:
        """A copy with some fields changed (the fit itself is immutable)."""
        return dataclasses.replace(self, **changes)

    def __str__(self) -> str:
        lines = [
            f"MixtureFit(engine={self.engine!r}, K={self.n_components}, "
            f"D={self.n_features}, chains={self.n_chains}, draws={self.n_draws})",
            f"  time: build {self.timings.build:.2f} s, run {self.timings.run:.2f} s",
        ]
        if self.final_elbo is not None:
            lines.append(f"  final ELBO: {self.final_elbo:.3f} nats")
        if self.converged is not None:
            lines.append(f"  converged: {self.converged} after {self.n_iter} iterations")
        for name in self.parameter_names():
            lines.append(f"  {name} (mean): {np.round(self.posterior_mean(name), 3).tolist()}")
        return "\n".join(lines)

    __repr__ = __str__


#: posterior attrs of a fit of chunked data (no observed_data group): what the data were,
#: and their fingerprint.
_CHUNKED_ATTR = "chunked_data"
_FINGERPRINT_ATTR = "data_fingerprint"


def make_idata(
    means: np.ndarray,
    weights: np.ndarray,
    points: np.ndarray,
    *,
    obs_sd: np.ndarray | None = None,
    obs_cov: np.ndarray | None = None,
    sample_stats: Mapping[str, np.ndarray] | None = None,
    log_likelihood: np.ndarray | None = None,
    attrs: Mapping[str, Any] | None = None,
    extra_posterior: xr.Dataset | None = None,
) -> xr.DataTree:
    """Build a DataTree in the shared schema from numpy draws: the one schema builder of
    every engine (the PyMC engines reach it through ``inference.pymc.sampling.to_mixture_fit``).

    Parameters
    ----------
    means : ndarray of shape (n_chains, n_draws, n_components, n_features)
    weights : ndarray of shape (n_chains, n_draws, n_components)
    points : ndarray of shape (n_samples, n_features), or ChunkedPoints
        Stored as ``observed_data.x``. Chunked data (``validation.chunked.ChunkedPoints``)
        are not stored (1e8 points would be pulled into memory): there is no
        ``observed_data`` group; ``posterior.attrs["chunked_data"]`` says "N x D in C
        chunks" and ``posterior.attrs["data_fingerprint"]`` holds their fingerprint, and
        ``MixtureFit.points`` raises a ValueError saying to pass the points explicitly.
    obs_sd : ndarray of shape (n_chains, n_draws, n_components, n_features), optional
        Only for specs that learn it.
    obs_cov : ndarray of shape (n_chains, n_draws, n_components, n_features, n_features), optional
        Learned full (or tied: the same matrix for every component) covariances. Stored as
        ``obs_cov`` with dims (component, feature, feature_b), together with ``obs_sd``
        (the square roots of its diagonal) and ``obs_corr`` (the correlation matrices), the
        forms tables and figures read; pass either ``obs_sd`` or ``obs_cov``, not both.
    sample_stats : mapping of name -> ndarray of shape (n_chains, n_draws, ...), optional
    log_likelihood : ndarray of shape (n_chains, n_draws, n_samples), optional
    attrs : mapping, optional
        Attributes set on the posterior group (e.g. ``{"engine": "cavi"}``).
    extra_posterior : xarray.Dataset, optional
        More posterior variables with leading dims (chain, draw) of the same sizes (e.g.
        PyMC's ``means_first``, ``obs_precision``, ``z``), added as they are after the
        schema's; their chain/draw coords become the schema's integers and coords that
        are not dimensions are dropped.

    Returns
    -------
    xarray.DataTree
    """
    from arviz_base import from_dict

    means = np.asarray(means, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    if means.ndim != 4 or weights.ndim != 3 or means.shape[:3] != weights.shape:
        raise ValueError(
            f"means/weights: expected shapes (chain, draw, K, D) and (chain, draw, "
            f"K), got {means.shape} and {weights.shape}. Add the chain and draw "
            f"axes, e.g. means[None, None]."
        )
    n_components, n_features = means.shape[2:]
    chunked_attrs: dict[str, str] = {}
    if isinstance(points, ChunkedPoints):
        n_samples, data_features = points.shape
        chunked_attrs = {
            _CHUNKED_ATTR: f"{n_samples} x {data_features} in {points.n_chunks} chunks, not stored",
            _FINGERPRINT_ATTR: points.fingerprint or "",
        }
        if log_likelihood is not None or data_features != n_features:
            raise ValueError(
                f"points: expected chunked data of {n_features} features and no "
                f"log_likelihood, got {points.shape} and "
                f"{'a' if log_likelihood is not None else 'no'} log_likelihood."
            )
        points = np.empty((0, n_features))  # placeholder for the shape checks below
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != n_features:
        raise ValueError(
            f"points: expected shape (n_samples, {n_features}) to match means, got "
            f"{points.shape}. Pass the validated data (check_points returns it)."
        )
    n_chains, n_draws = means.shape[:2]
    if obs_sd is not None and np.shape(obs_sd) != means.shape:
        raise ValueError(
            f"obs_sd: expected shape {means.shape} (like means), got "
            f"{np.shape(obs_sd)}. Broadcast it to (chain, draw, K, D) first."
        )
    if obs_cov is not None:
        obs_cov = np.asarray(obs_cov, dtype=np.float64)
        expected = (*means.shape, n_features)
        if obs_sd is not None or obs_cov.shape != expected:
            raise ValueError(
                f"obs_cov: expected shape {expected} (chain, draw, K, D, D) and no "
                f"obs_sd, got shape {obs_cov.shape}"
                f"{' and an obs_sd' if obs_sd is not None else ''}. Pass the "
                f"covariance matrices only; obs_sd is derived from them."
            )
        obs_sd = np.sqrt(np.diagonal(obs_cov, axis1=-2, axis2=-1))
    if log_likelihood is not None and np.shape(log_likelihood) != (
        n_chains,
        n_draws,
        points.shape[0],
    ):
        raise ValueError(
            f"log_likelihood: expected shape {(n_chains, n_draws, points.shape[0])} "
            f"(chain, draw, obs), got {np.shape(log_likelihood)}. Pass one value "
            f"per draw and observation."
        )
    coords = {
        "component": np.arange(n_components),
        "feature": np.arange(n_features),
        "obs": np.arange(points.shape[0]),
    }
    posterior = {"means": means, "weights": weights}
    dims: dict[str, list[str]] = {
        "means": ["component", "feature"],
        "weights": ["component"],
        "x": ["obs", "feature"],
    }
    if obs_sd is not None:
        posterior["obs_sd"] = np.asarray(obs_sd, dtype=np.float64)
        dims["obs_sd"] = ["component", "feature"]
    if obs_cov is not None and obs_sd is not None:  # obs_sd was derived from obs_cov above
        coords["feature_b"] = np.arange(n_features)
        posterior["obs_cov"] = obs_cov
        corr = obs_cov / (obs_sd[..., :, None] * obs_sd[..., None, :])
        corr[..., np.arange(n_features), np.arange(n_features)] = 1.0  # exactly, not 1 - 1 ulp
        posterior["obs_corr"] = corr
        dims["obs_cov"] = dims["obs_corr"] = ["component", "feature", "feature_b"]
    groups: dict[str, dict[str, np.ndarray]] = {"posterior": posterior}
    if not chunked_attrs:
        groups["observed_data"] = {"x": points}
    else:
        del coords["obs"], dims["x"]
    if sample_stats:
        groups["sample_stats"] = {k: np.asarray(val) for k, val in sample_stats.items()}
    if log_likelihood is not None:
        groups["log_likelihood"] = {"x": np.asarray(log_likelihood, dtype=np.float64)}
    # dims are matched from the left: log_likelihood.x (chain, draw, n) gets ("obs",)
    tree = from_dict(groups, coords=coords, dims=dims)
    if extra_posterior is not None:
        import xarray as xr

        schema = tree["posterior"].to_dataset()
        extra = extra_posterior.drop_vars(
            [c for c in extra_posterior.coords if c not in extra_posterior.dims]
        )
        extra = extra.assign_coords(chain=schema["chain"].values, draw=schema["draw"].values)
        merged = xr.merge([schema, extra], compat="override", join="override")
        tree["posterior"] = xr.DataTree(merged)
    if attrs or chunked_attrs:
        tree["posterior"].attrs.update({**dict(attrs or {}), **chunked_attrs})
    return tree
