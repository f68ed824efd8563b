"""The compiled ADVI objective, built once per model shape and reused across fits.

(Longer than our ~400-line guide: one class and its builder, whose compiled pieces share
the same shared variables; splitting them would pass a dozen of those between modules.)

``pm.fit`` rebuilds the whole optimisation graph on every call: it creates the
approximation, differentiates the ELBO, rewrites the graph and asks numba for the compiled
step function. Even with a warm on-disk cache that costs seconds, while one step of the
seed-001 problem (batch 200) costs ~0.1 ms. :class:`CompiledObjective` holds everything
that does not depend on the data values or the random seed:

- the PyMC model (built by :func:`ppl_mixtures.inference.pymc.models.build_marginal_model`) and the
  approximation (``pm.MeanField`` / ``pm.FullRank``);
- the step function (one optimiser update, returning the single-draw loss), compiled with
  the data and the learning rate as *shared variables*, so new data of the same shape and
  a new learning rate need no recompilation. The model's own data variable
  (:func:`ppl_mixtures.inference.pymc.models.observed_data`) is substituted by the
  objective's, which :meth:`CompiledObjective.reset` sets to each fit's data;
- small helper functions: unconstrained point -> constrained ``means`` / ``weights`` /
  ``obs_sd`` / ``obs_cov``, constrained start values -> unconstrained point, and the full-data
  ``log p(x, theta)`` (with log|J|) for the final ELBO.

:meth:`CompiledObjective.reset` puts every piece of optimiser state back where a freshly
compiled function starts (variational parameters, optimiser accumulators and counters) and
restarts the random stream from ``random_seed``. A cached and a freshly built objective
therefore produce identical numbers for the same seed: the cold path is "build, then
reset", the warm path "look up, then reset".

Randomness in blocks. PyMC draws q's standard-normal noise and the minibatch indices with
random-variable Ops inside the step; in the numba backend each such draw costs tens of
microseconds (more than the whole gradient of a batch of 200). We replace both by slices of
shared arrays, ``noise[t]`` (d,) and ``batch_rows[t]`` (B,), with a counter ``t`` the step
increments, and refill the arrays every :data:`BLOCK` iterations from one numpy
``Generator``: the same distributions (standard normal; rows uniform with replacement, as
``pm.Minibatch``), one vectorized draw per block, reproducible from the seed.

Step sizes and iterate averaging. The optimiser's learning rate is read from a shared
array ``rates[t]`` (BLOCK,) like the noise, refilled per block from a per-iteration plan
(:meth:`CompiledObjective.reset` takes it), so any schedule (constant, or Robbins-Monro
decay after a warm phase) runs in the same compiled step. The step also adds the new
value of every variational parameter to a shared running sum; :meth:`CompiledObjective.run`
returns and clears that sum, so the caller gets the sum of the iterates of every block and
can form Polyak-Ruppert averages over any window of whole blocks.

The ELBO scale. PyMC divides the loss by a "normalizing constant" when the observed variable
is minibatched (``approx.scale_cost_to_minibatch``, on by default). For 2-D data that
constant is computed from the whole data shape and comes out as N/B * N/D instead of N/B
(25,000,000 instead of 500 for the seed's N=100,000, B=200, D=2), so the gradients shrink
below adagrad's epsilon and the optimiser barely moves. We switch the scaling off: the loss
is then the negative ELBO in full-data nats (the minibatch log-likelihood is already
multiplied by N/B through ``total_size``), for every batch size and data dimension.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ppl_mixtures.model.spec import MixtureSpec

logger = logging.getLogger(__name__)

__all__ = [
    "CompiledObjective",
    "cache_info",
    "clear_cache",
    "get_objective",
]

METHODS = ("advi", "fullrank_advi")
OPTIMIZERS = ("adagrad_window", "adagrad", "adam")
CONSTRAINED_NAMES = ("means", "weights", "obs_sd", "obs_cov")
# per draw: (K, D), (K,), (K, D), (K, D, D)
_NDIM = {"means": 2, "weights": 1, "obs_sd": 2, "obs_cov": 3}
#: Iterations per block of pre-drawn noise and minibatch rows (see the module docs).
BLOCK = 100
_CACHE_SIZE = 8
#: PyTensor mode of the helpers that run a few hundred times per fit (constrain, unconstrain,
#: the final ELBO's log p): the Python linker skips a numba compile per helper (seconds
#: each on a cold cache, and the graph rewrites on a warm one); only the step runs in numba.
_HELPER_MODE = "FAST_COMPILE"
_CACHE: OrderedDict[Hashable, CompiledObjective] = OrderedDict()


def _softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + exp(x)) without overflow (PyMC's ``rho2sigma``)."""
    return np.logaddexp(0.0, x)


def element_labels(name: str, shape: tuple[int, ...]) -> list[str]:
    """``["means[0,0]", "means[0,1]", ...]`` in C order; ``[name]`` for a scalar."""
    if not shape:
        return [name]
    return [f"{name}[{','.join(map(str, idx))}]" for idx in np.ndindex(*shape)]


def _make_optimizer(name: str, learning_rate):
    import pymc as pm

    return {"adagrad_window": pm.adagrad_window, "adagrad": pm.adagrad, "adam": pm.adam}[name](
        learning_rate=learning_rate
    )


@dataclass
class CompiledObjective:
    """Compiled pieces of one ADVI problem (spec, method, data shape, batch, optimizer).

    Attributes
    ----------
    method : {"advi", "fullrank_advi"}
    spec : MixtureSpec
    n_samples, n_features, batch_size : int, int, int or None
    ordering : list of (name, slice, shape)
        The unconstrained coordinates: value-variable name, its slice in the flat vector
        of length ``ndim``, its shape.
    labels : list of str
        One label per unconstrained coordinate, e.g. ``"weights_stickbreaking__[0]"``.
    free_names : list of str
        Names of the free random variables (constrained), in ``ordering`` order.
    """

    method: str
    spec: MixtureSpec
    n_samples: int
    n_features: int
    batch_size: int | None
    optimizer: str
    model: Any
    approx: Any
    step: Any
    data: Any
    rates: Any
    sums: dict
    resets: list
    rngs: list
    noise: Any
    batch_rows: Any
    counter: Any
    ordering: list
    labels: list
    free_names: list
    constrained_names: list
    _constrain_fn: Any
    _constrain_batched: bool
    _unconstrain_fn: Any
    _logp_fn: Any
    build_seconds: float = 0.0
    _rng: Any = None
    _rate_plan: Any = None
    _t: int = 0

    # ------------------------------------------------------------------ state
    @property
    def ndim(self) -> int:
        return len(self.labels)

    def reset(
        self, points: np.ndarray, start: np.ndarray, rates: np.ndarray, random_seed: int
    ) -> None:
        """Put the objective in the state of a fresh build, with new data and seed.

        Parameters
        ----------
        points : ndarray of shape (n_samples, n_features)
        start : ndarray of shape (ndim,)
            The unconstrained start of q's mean; q's scale starts at PyMC's default
            (sd = softplus(0) = 0.69 per coordinate, or L = identity for full rank).
        rates : float or ndarray of shape (n_planned,)
            The learning rate of each iteration (a float: the same at every iteration);
            iterations past the end of the plan use its last rate.
        random_seed : int
            Seeds the Monte Carlo draws of q and the minibatch indices.
        """
        from pymc.pytensorf import reseed_rngs

        for shared, value in self.resets:
            shared.set_value(value.copy())
        self.data.set_value(points)
        self._rate_plan = np.atleast_1d(np.asarray(rates, dtype=np.float64)).copy()
        self._t = 0
        self._param("mu").set_value(np.asarray(start, dtype=np.float64).copy())
        for total in self.sums.values():
            total.set_value(np.zeros_like(total.get_value()))
        reseed_rngs(self.rngs, random_seed)  # none left in the step; kept for safety
        self._rng = np.random.default_rng((random_seed, 1))
        self.counter.set_value(np.int64(BLOCK))  # run() refills before the first step

    def refill(self) -> None:
        """Draw the next :data:`BLOCK` iterations of q's noise and minibatch rows, and set
        their learning rates from the plan."""
        self.noise.set_value(self._rng.standard_normal((BLOCK, self.ndim)))
        if self.batch_rows is not None:
            self.batch_rows.set_value(
                self._rng.integers(0, self.n_samples, size=(BLOCK, self.batch_size))
            )
        index = np.minimum(np.arange(self._t, self._t + BLOCK), self._rate_plan.size - 1)
        self.rates.set_value(self._rate_plan[index])
        self.counter.set_value(np.int64(0))

    def run(self, n_steps: int, out: np.ndarray) -> dict[str, np.ndarray]:
        """Take ``n_steps`` optimiser steps, writing -loss (the ELBO) into ``out[:n_steps]``.

        Each block of :data:`BLOCK` steps starts with a fresh draw of noise and rows; runs
        of whole blocks therefore consume the random stream identically however they are
        split.

        Returns
        -------
        dict of ndarray
            The sum, over these ``n_steps`` iterations, of each raw variational parameter
            *after* its update (``"mu"`` (ndim,), and ``"rho"`` (ndim,) or ``"L_tril"``
            (ndim (ndim + 1) / 2,)): the iterates' sum, for Polyak-Ruppert averages.
        """
        step, counter = self.step, self.counter
        for i in range(n_steps):
            if int(counter.get_value(borrow=True)) >= BLOCK:
                self.refill()
            out[i] = -float(step())
            self._t += 1
        totals = {}
        for name, total in self.sums.items():
            totals[name] = total.get_value()
            total.set_value(np.zeros_like(totals[name]))
        return totals

    def raw_params(self) -> dict[str, np.ndarray]:
        """The current raw variational parameters (``mu`` and ``rho`` or ``L_tril``)."""
        return {p.name: p.get_value() for p in self.approx.params}

    def _param(self, name: str):
        return next(p for p in self.approx.params if p.name == name)

    def params(self, raw: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """q's parameters: ``mean`` (ndim,), ``std`` (ndim,), ``chol`` (ndim, ndim).

        ``chol`` is the Cholesky factor L of q's covariance (diag(std) for mean-field).
        ``raw``: raw parameters as :meth:`raw_params` returns them (e.g. averaged
        iterates); default the current ones.
        """
        values = self.raw_params() if raw is None else raw
        mean = np.asarray(values["mu"], dtype=np.float64)
        if self.method == "advi":
            std = _softplus(values["rho"])
            chol = np.diag(std)
        else:  # FullRankGroup.L: the tril entries, then softplus on the diagonal
            n = mean.shape[0]
            chol = np.zeros((n, n))
            chol[np.tril_indices(n)] = values["L_tril"]
            chol[np.diag_indices(n)] = _softplus(np.diag(chol))
            std = np.sqrt(np.sum(chol**2, axis=1))
        return {"mean": mean, "std": std, "chol": chol}

    # ------------------------------------------------------------------ helpers
    def constrain(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """Unconstrained points -> model variables.

        Parameters
        ----------
        theta : ndarray of shape (n_draws, ndim)

        Returns
        -------
        dict
            ``means`` (n_draws, K, D), ``weights`` (n_draws, K) and, when learned,
            ``obs_sd`` (n_draws, K, D).
        """
        theta = np.atleast_2d(np.asarray(theta, dtype=np.float64))
        if self._constrain_batched:
            outs = [np.asarray(o) for o in self._constrain_fn(theta)]
            # a variable that does not depend on theta (fixed weights) comes back unbatched
            return {
                name: (
                    o
                    if o.ndim > _NDIM[name]
                    else np.broadcast_to(o, (theta.shape[0], *o.shape)).copy()
                )
                for name, o in zip(self.constrained_names, outs, strict=True)
            }
        outs = [self._constrain_fn(row) for row in theta]
        return {
            name: np.stack([o[i] for o in outs]) for i, name in enumerate(self.constrained_names)
        }

    def unconstrain(self, start: dict[str, np.ndarray]) -> np.ndarray:
        """Constrained start values (by free-variable name) -> flat unconstrained point (ndim,)."""
        parts = self._unconstrain_fn(
            *[np.asarray(start[name], dtype=np.float64) for name in self.free_names]
        )
        return np.concatenate([np.ravel(p) for p in parts])

    def log_joint(self, theta: np.ndarray) -> np.ndarray:
        """Full-data log p(x, theta) in unconstrained space (log|J| included), (n_draws,)."""
        return np.array([float(self._logp_fn(row)) for row in np.atleast_2d(theta)])


def _build(
    points: np.ndarray, spec: MixtureSpec, method: str, batch_size: int | None, optimizer: str
) -> CompiledObjective:
    import pymc as pm
    import pytensor
    import pytensor.tensor as pt
    from pymc.variational.inference import KLqp
    from pytensor.graph.replace import graph_replace, vectorize_graph
    from pytensor.tensor.random.type import RandomType

    from ppl_mixtures.inference.pymc.models import build_marginal_model, observed_data

    n_samples, n_features = points.shape
    model = build_marginal_model(points, spec, batch_size=batch_size, check_input=False)
    data = pytensor.shared(
        np.array(points, dtype=np.float64), name="advi_points", shape=points.shape
    )
    rates = pytensor.shared(np.full(BLOCK, 0.01), name="advi_rates", shape=(BLOCK,))
    with model:
        approx = pm.MeanField() if method == "advi" else pm.FullRank()
        inference = KLqp(approx)
    approx.scale_cost_to_minibatch = False  # loss = -ELBO in full-data nats (module docs)
    group = approx.groups[0]
    # pre-drawn randomness (module docs): q's noise and the minibatch rows, by counter
    counter = pytensor.shared(np.int64(0), name="advi_counter")
    noise = pytensor.shared(
        np.zeros((BLOCK, group.ddim)), name="advi_noise", shape=(BLOCK, group.ddim)
    )
    replacements = {observed_data(model): data, group.symbolic_initial: noise[counter][None, :]}
    batch_rows = None
    if batch_size is not None:
        batch_rows = pytensor.shared(
            np.zeros((BLOCK, batch_size), dtype=np.int64),
            name="advi_batch_rows",
            shape=(BLOCK, batch_size),
        )
        replacements[model.rvs_to_values[model["x"]]] = data[batch_rows[counter]]
    updates = inference.objective.updates(
        obj_optimizer=_make_optimizer(optimizer, rates[counter]),
        more_replacements=replacements,
        more_updates={counter: counter + 1},
    )
    # running sums of the updated parameters (Polyak-Ruppert averages; module docs)
    sums = {}
    for param in approx.params:
        total = pytensor.shared(np.zeros_like(param.get_value()), name=f"advi_sum_{param.name}")
        updates[total] = total + updates[param]
        sums[param.name] = total
    step = pm.compile([], updates.loss, updates=updates)
    rngs = [v for v in step.get_shared() if isinstance(v.type, RandomType)]
    skip = {data, rates, noise, counter, batch_rows, *sums.values()}
    resets = [
        (v, np.array(v.get_value(), copy=True))
        for v in step.get_shared()
        if not isinstance(v.type, RandomType) and v not in skip
    ]
    ordering = [
        (name, slc, tuple(int(s) for s in shape))
        for name, slc, shape, _dtype in group.ordering.values()
    ]
    labels = [lab for name, _slc, shape in ordering for lab in element_labels(name, shape)]
    values_by_name = {v.name: v for v in model.value_vars}
    free_rvs = [model.values_to_rvs[values_by_name[name]] for name, _s, _sh in ordering]
    free_names = [rv.name for rv in free_rvs]

    # flat theta -> value variables (the approximation's own slicing)
    theta = pt.vector("theta", dtype="float64")
    to_theta = {values_by_name[name]: theta[slc].reshape(shape) for name, slc, shape in ordering}

    # theta -> constrained model variables
    names = [n for n in CONSTRAINED_NAMES if n in model.named_vars]
    constrained = model.replace_rvs_by_values([model[n] for n in names])
    constrained = graph_replace(constrained, to_theta, strict=False)
    # vectorized over a batch of draws (one call for all of them), or row by row when a
    # transform cannot be vectorized
    thetas = pt.matrix("thetas", dtype="float64")
    try:
        batched = vectorize_graph(constrained, {theta: thetas})
        constrain_fn = pytensor.function(
            [thetas], batched, on_unused_input="ignore", mode=_HELPER_MODE
        )
        constrain_fn(np.zeros((2, len(labels))))
        constrain_batched = True
    except Exception as err:  # fall back to the row-by-row helper
        logger.debug("constrain helper not vectorized (%s); row by row", err)
        constrain_fn = pytensor.function(
            [theta], constrained, on_unused_input="ignore", mode=_HELPER_MODE
        )
        constrain_batched = False

    # constrained start -> theta pieces
    inputs, pieces = [], []
    for rv in free_rvs:
        value = rv.type()
        transform = model.rvs_to_transforms.get(rv)
        pieces.append(value if transform is None else transform.forward(value, *rv.owner.inputs))
        inputs.append(value)
    unconstrain_fn = pytensor.function(inputs, pieces, on_unused_input="ignore", mode=_HELPER_MODE)

    # full-data log p(x, theta), log|J| included, on the shared data
    full = (
        model
        if batch_size is None
        else build_marginal_model(points, spec, batch_size=None, check_input=False)
    )
    full_values = {v.name: v for v in full.value_vars}
    full_logp = graph_replace(
        full.logp(jacobian=True),
        {
            observed_data(full): data,
            **{full_values[name]: theta[slc].reshape(shape) for name, slc, shape in ordering},
        },
        strict=False,
    )
    logp_fn = pytensor.function([theta], full_logp, mode=_HELPER_MODE)

    # JIT-compile everything now (numba compiles on the first call), so build time is
    # paid here and not in the first fit's run time; reset() undoes the state change.
    step()
    point = np.zeros(len(labels))
    logp_fn(point)

    return CompiledObjective(
        method=method,
        spec=spec,
        n_samples=n_samples,
        n_features=n_features,
        batch_size=batch_size,
        optimizer=optimizer,
        model=model,
        approx=approx,
        step=step,
        data=data,
        rates=rates,
        sums=sums,
        resets=resets,
        rngs=rngs,
        noise=noise,
        batch_rows=batch_rows,
        counter=counter,
        ordering=ordering,
        labels=labels,
        free_names=free_names,
        constrained_names=names,
        _constrain_fn=constrain_fn,
        _constrain_batched=constrain_batched,
        _unconstrain_fn=unconstrain_fn,
        _logp_fn=logp_fn,
    )


def get_objective(
    points: np.ndarray,
    spec: MixtureSpec,
    method: str,
    batch_size: int | None,
    optimizer: str,
    *,
    use_cache: bool = True,
) -> tuple[CompiledObjective, bool]:
    """The compiled objective for this problem, from the cache when possible.

    Parameters
    ----------
    points : ndarray of shape (n_samples, n_features)
    spec : MixtureSpec
    method : {"advi", "fullrank_advi"}
    batch_size : int or None
    optimizer : {"adagrad_window", "adagrad", "adam"}
    use_cache : bool
        False builds a fresh objective and leaves the cache alone.

    Returns
    -------
    objective : CompiledObjective
        Not yet reset: call :meth:`CompiledObjective.reset` before stepping.
    cache_hit : bool
    """
    import time

    key = (spec, method, points.shape, batch_size, optimizer)
    if use_cache and key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key], True
    start = time.perf_counter()
    objective = _build(points, spec, method, batch_size, optimizer)
    objective.build_seconds = time.perf_counter() - start
    logger.debug("compiled %s objective in %.2f s", method, objective.build_seconds)
    if use_cache:
        _CACHE[key] = objective
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return objective, False


def clear_cache() -> None:
    """Forget every compiled ADVI objective (the next fit of each problem compiles again)."""
    _CACHE.clear()


def cache_info() -> dict[str, int]:
    """``{"entries": ..., "max_entries": ...}`` of the compiled-objective cache."""
    return {"entries": len(_CACHE), "max_entries": _CACHE_SIZE}
