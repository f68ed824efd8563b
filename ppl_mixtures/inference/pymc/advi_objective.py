"""The compiled ADVI objective, built once per model shape and reused across fits.

(Longer than our ~400-line guide: one class and its builder, whose compiled pieces share
the same shared variables -- for in-memory and for chunked data; splitting them would pass
a dozen of those between modules.)

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

Chunked data (a :class:`~ppl_mixtures.validation.chunked.ChunkedPoints`, e.g. a dask array;
minibatches only). The data never load whole: the objective's data variable is a *buffer*
of as many rows as the largest chunk, and the model is built on a zero-copy stand-in of
shape (N, D) (only its shape is read: ``total_size=N``). At every refill (every
:data:`CHUNK_STEPS` iterations) one chunk is read into the buffer and the block's minibatch
rows are drawn uniformly, with replacement, from it. The chunks come in epochs of C reads
(:func:`~ppl_mixtures.validation.chunked.chunk_epoch`, its own stream ``(seed, 4)``):
stratified in proportion to their rows, in random order. Each read is chunk c with
probability n_c / N, so each row of every minibatch is uniform over all N points
(n_c / N x 1 / n_c = 1 / N) and the scaled minibatch log-likelihood stays an **unbiased**
estimate of the full-data one, as in memory; but the batches of one block share a chunk, so
they are *correlated* within a block (a chunk whose points differ from the whole -- by
chance, or because the data are sorted -- pulls a whole block of steps one way). The
stratified epochs cancel most of that over every C blocks; the step decay and the iterate
average over many epochs absorb the rest, which shows in the convergence test's batch-means
standard error (over whole blocks). The full-data ``log p(x, theta)`` (the final ELBO, the
convergence test's ELBO change) is summed chunk by chunk: the log prior and log|J| once,
the log-likelihood of each chunk read into the buffer in turn (one pass over the data per
call, on the caller's side).
"""

from __future__ import annotations

import dataclasses
import logging
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ppl_mixtures.model.spec import MixtureSpec
from ppl_mixtures.validation.chunked import ChunkedPoints, chunk_epoch, read_chunk

logger = logging.getLogger(__name__)

__all__ = [
    "CompiledObjective",
    "cache_info",
    "clear_cache",
    "get_objective",
]

METHODS = ("advi", "fullrank_advi")
OPTIMIZERS = ("adagrad_window", "adagrad", "adam")
CONSTRAINED_NAMES = ("means", "weights", "obs_sd", "obs_cov", "dp_sticks", "dp_alpha")
# per draw: (K, D), (K,), (K, D), (K, D, D); dp weights: sticks (K - 1,), alpha ()
_NDIM = {"means": 2, "weights": 1, "obs_sd": 2, "obs_cov": 3, "dp_sticks": 1, "dp_alpha": 0}
#: Iterations per block of pre-drawn noise and minibatch rows (see the module docs).
BLOCK = 100
#: Chunked data: iterations between chunk loads (one chunk per block; module docs).
CHUNK_STEPS = BLOCK
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
    buffer_rows : int or None
        Chunked data: the rows of the data buffer (the largest chunk); None in memory.
    chunk_history : list of int
        Chunked data: the chunk loaded at each refill since the last reset, in order.
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
    buffer_rows: int | None = None
    loaded_rows: Any = None
    _prior_fn: Any = None
    _rng: Any = None
    _rate_plan: Any = None
    _t: int = 0
    _chunks: ChunkedPoints | None = None
    _chunk_rng: Any = None
    _chunk_queue: list = dataclasses.field(default_factory=list)
    _n_loaded: int = 0
    chunk_history: list = dataclasses.field(default_factory=list)

    # ------------------------------------------------------------------ state
    @property
    def ndim(self) -> int:
        return len(self.labels)

    def reset(
        self,
        points: np.ndarray | ChunkedPoints,
        start: np.ndarray,
        rates: np.ndarray,
        random_seed: int,
    ) -> None:
        """Put the objective in the state of a fresh build, with new data and seed.

        Parameters
        ----------
        points : ndarray of shape (n_samples, n_features), or ChunkedPoints
            Chunked data only for an objective built for them (``buffer_rows`` set);
            nothing is read here (the first refill reads a chunk).
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

        if isinstance(points, ChunkedPoints) != (self.buffer_rows is not None):
            kind = "in-memory" if self.buffer_rows is None else "chunked"
            raise ValueError(  # internal: get_objective builds by the kind of data
                f"points: expected {kind} data (this objective was built for them), got "
                f"{type(points).__name__}. Get the objective with get_objective(points, ...)."
            )
        for shared, value in self.resets:
            shared.set_value(value.copy())
        if isinstance(points, ChunkedPoints):
            self._chunks = points
            self._chunk_rng = np.random.default_rng((random_seed, 4))
            self._chunk_queue = []
            self.chunk_history = []
        else:
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
        their learning rates from the plan. Chunked data: every :data:`CHUNK_STEPS`
        iterations first a chunk drawn with probability n_c / N is read into the buffer,
        and the rows are drawn from it."""
        if self._chunks is not None and self._t % CHUNK_STEPS == 0:
            if not self._chunk_queue:  # the next epoch of chunk reads
                self._chunk_queue = list(chunk_epoch(self._chunks, self._chunk_rng))[::-1]
            chunk = int(self._chunk_queue.pop())
            self._load(chunk)
            self.chunk_history.append(chunk)
        self.noise.set_value(self._rng.standard_normal((BLOCK, self.ndim)))
        if self.batch_rows is not None:
            high = self.n_samples if self._chunks is None else self._n_loaded
            self.batch_rows.set_value(self._rng.integers(0, high, size=(BLOCK, self.batch_size)))
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

    def _load(self, chunk: int) -> None:
        """Read chunk ``chunk`` of the chunked data into the first rows of the buffer."""
        block = read_chunk(self._chunks, chunk)
        buffer = self.data.get_value(borrow=True)
        buffer[: block.shape[0]] = block
        self.data.set_value(buffer, borrow=True)
        self.loaded_rows.set_value(np.int64(block.shape[0]))
        self._n_loaded = int(block.shape[0])

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
        """Full-data log p(x, theta) in unconstrained space (log|J| included), (n_draws,).

        Chunked data: the log prior with log|J|, plus the log-likelihood summed chunk by
        chunk (each chunk read into the buffer once for all draws; one pass over the data).
        """
        theta = np.atleast_2d(theta)
        if self._chunks is None:
            return np.array([float(self._logp_fn(row)) for row in theta])
        total = np.array([float(self._prior_fn(row)) for row in theta])
        for chunk in range(self._chunks.n_chunks):
            self._load(chunk)
            total += np.array([float(self._logp_fn(row)) for row in theta])
        return total


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
    chunked = isinstance(points, ChunkedPoints)
    if chunked:  # a buffer of the largest chunk; the model on a zero-copy (N, D) stand-in
        assert batch_size is not None  # internal: fit_advi refuses chunked full-data ADVI
        buffer_rows = int(np.max(np.diff(points.bounds)))
        standin = np.broadcast_to(np.zeros((1, n_features)), (n_samples, n_features))
        model = build_marginal_model(standin, spec, batch_size=batch_size, check_input=False)
        data = pytensor.shared(
            np.zeros((buffer_rows, n_features)),
            name="advi_points",
            shape=(buffer_rows, n_features),
        )
    else:
        buffer_rows = None
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
    # (chunked: the batch rows below replace the only read of the stand-in)
    replacements = {} if chunked else {observed_data(model): data}
    replacements[group.symbolic_initial] = noise[counter][None, :]
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

    # full-data log p(x, theta), log|J| included, on the shared data; chunked: the prior
    # with log|J| (prior_fn), and the log-likelihood of the buffer's loaded rows (logp_fn)
    loaded_rows, prior_fn = None, None
    if chunked:
        full = build_marginal_model(data.get_value(), spec, batch_size=None, check_input=False)
    elif batch_size is None:
        full = model
    else:
        full = build_marginal_model(points, spec, batch_size=None, check_input=False)
    full_values = {v.name: v for v in full.value_vars}
    to_full = {
        observed_data(full): data,
        **{full_values[name]: theta[slc].reshape(shape) for name, slc, shape in ordering},
    }
    if chunked:
        loaded_rows = pytensor.shared(np.int64(0), name="advi_loaded_rows")
        observed = full["x"]
        prior_terms = [rv for rv in full.basic_RVs if rv is not observed] + list(full.potentials)
        prior = graph_replace(full.logp(vars=prior_terms, jacobian=True), to_full, strict=False)
        elementwise = full.logp(vars=[observed], sum=False)[0]
        loglik = graph_replace(pt.sum(elementwise[:loaded_rows]), to_full, strict=False)
        prior_fn = pytensor.function([theta], prior, mode=_HELPER_MODE)
        logp_fn = pytensor.function([theta], loglik, mode=_HELPER_MODE)
    else:
        full_logp = graph_replace(full.logp(jacobian=True), to_full, strict=False)
        logp_fn = pytensor.function([theta], full_logp, mode=_HELPER_MODE)

    # JIT-compile everything now (numba compiles on the first call), so build time is
    # paid here and not in the first fit's run time; reset() undoes the state change.
    step()
    point = np.zeros(len(labels))
    logp_fn(point)
    if prior_fn is not None:
        prior_fn(point)

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
        buffer_rows=buffer_rows,
        loaded_rows=loaded_rows,
        _prior_fn=prior_fn,
    )


def get_objective(
    points: np.ndarray | ChunkedPoints,
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
    points : ndarray of shape (n_samples, n_features), or ChunkedPoints
        Chunked data (``batch_size`` required) get an objective that streams them
        (module docs), cached by the largest chunk's rows.
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

    buffer = int(np.max(np.diff(points.bounds))) if isinstance(points, ChunkedPoints) else None
    key = (spec, method, points.shape, batch_size, optimizer, buffer)
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
