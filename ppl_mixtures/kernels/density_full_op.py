"""The fused full-covariance mixture density as PyTensor Ops (numba kernels of :mod:`.density_full`).

    log p(x_n) = logsumexp_k [log w_k + log N(x_n | mu_k, (L_k L_k^T)^-1)]               (2)

with L_k the lower Cholesky factor of component k's precision matrix (upper triangle
ignored). The design is that of :mod:`ppl_mixtures.kernels.density` (diagonal covariance).
Four Ops, each one pass over the data with no (N, K, D) temporaries (equation numbers are
those of :mod:`ppl_mixtures.kernels.density_full`):

- :class:`FullMixtureLogp` -- eq. (2) per observation, (N,); its gradient is the next two Ops;
- :class:`FullMixtureLogpGradParams` -- eqs. (3)-(5), the gradient w.r.t. (log w, means, L);
- :class:`FullMixtureLogpGradValue` -- eq. (6), the gradient w.r.t. x;
- :class:`FullMixtureLogpAndGradParams` -- eq. (2) and eqs. (3)-(5) together; only the
  rewrite :func:`local_full_mixture_fuse_logp_and_grad` creates it (NUTS and ADVI ask for
  both at every step, so they get value and gradient from one kernel call).

The Ops call the serial kernels. The kernels also have a parallel path over chunks of rows
(``parallel=True``; the same bits, the reduction order being fixed by chunk). On our shared
2-core machine its speed follows the load: 1.5x the serial path's in a run at load average
~2.7, and 0.83x (N = 10^4) and 0.40x (N = 10^5) at load average 4-6, the run in
reports/benchmarks/density_full.md. PyMC samples its chains in parallel processes, one per
core, which is the loaded case, so the Ops do not use it.

PyTensor's default backend is numba: each Op registers its kernel with the numba dispatcher,
so a compiled log p stays in numba mode; ``Op.perform`` calls the same kernels for the other
backends. The classes live at module level, so a compiled model pickles them by reference
(PyMC sends compiled models to its sampling processes).

Importing this module imports PyTensor and numba; :mod:`ppl_mixtures.model.density` imports
it only when a PyTensor graph is built.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Apply, Constant, Variable
from pytensor.graph.op import Op
from pytensor.graph.rewriting.basic import node_rewriter
from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key
from pytensor.tensor.basic import Alloc
from pytensor.tensor.rewriting.basic import register_specialize

from ppl_mixtures.kernels import density_full as kernels

__all__ = [
    "FullMixtureLogp",
    "FullMixtureLogpAndGradParams",
    "FullMixtureLogpGradParams",
    "FullMixtureLogpGradValue",
    "fused_full_mixture_logp",
    "kernel_version",
]

#: ndim of the inputs x, log_w, means, prec_chol and (gradient Ops) the cotangent g.
_INPUT_NDIMS = (2, 1, 2, 3, 1)


def _as_inputs(*inputs: Any) -> list[Variable]:
    """The Ops' inputs as float64 tensors of the expected ndim (a ValueError otherwise)."""
    variables = [pt.as_tensor_variable(v) for v in inputs]
    for v, ndim in zip(variables, _INPUT_NDIMS, strict=False):
        if v.ndim != ndim:
            raise ValueError(
                f"fused_full_mixture_logp: expected a {ndim}-D input, got "
                f"{v.ndim}-D {v.type}. Use full_mixture_logp_pt for batched "
                f"parameters."
            )
    return [pt.cast(v, "float64") if v.dtype != "float64" else v for v in variables]


def _outputs(op: Op, *inputs: Any) -> list[Variable]:
    """``op(*inputs)`` as the list of its outputs (``Op.__call__`` may return one or a list)."""
    return cast(list[Variable], op(*inputs, return_list=True))


def _logp_output(x: Variable) -> Variable:
    return pt.tensor(dtype="float64", shape=(x.type.shape[0],))


# ``make_node`` names its inputs (``Op.make_node`` takes ``*inputs``): type: ignore[override]


class FullMixtureLogp(Op):
    """log p(x_n) of eq. (2), shape (N,). Inputs x (N, D), log_w (K,), means (K, D),
    prec_chol (K, D, D). Its gradient is two more fused Ops (parameters; x)."""

    __props__ = ()

    def make_node(self, x: Any, log_w: Any, means: Any, prec_chol: Any) -> Apply:  # type: ignore[override]
        inputs = _as_inputs(x, log_w, means, prec_chol)
        return Apply(self, inputs, [_logp_output(inputs[0])])

    def perform(self, node: Apply, inputs: Sequence[Any], output_storage: list) -> None:
        output_storage[0][0] = kernels.logp_kernel(*inputs)

    def infer_shape(self, node: Apply, input_shapes: list) -> list:
        return [(input_shapes[0][0],)]

    def pullback(
        self,
        inputs: Sequence[Variable],
        outputs: Sequence[Variable],
        cotangents: Sequence[Variable],
    ) -> list[Variable]:
        g_log_w, g_means, g_chol = _outputs(full_mixture_logp_grad_params, *inputs, cotangents[0])
        [g_x] = _outputs(full_mixture_logp_grad_value, *inputs, cotangents[0])
        return [g_x, g_log_w, g_means, g_chol]


class FullMixtureLogpGradParams(Op):
    """(d/dlog_w, d/dmeans, d/dprec_chol) of sum_n g_n log p(x_n), eqs. (3)-(5) (zero above
    the diagonal of d/dprec_chol); inputs x, log_w, means, prec_chol, g."""

    __props__ = ()

    def make_node(self, x: Any, log_w: Any, means: Any, prec_chol: Any, g: Any) -> Apply:  # type: ignore[override]
        inputs = _as_inputs(x, log_w, means, prec_chol, g)
        return Apply(self, inputs, [inputs[1].type(), inputs[2].type(), inputs[3].type()])

    def perform(self, node: Apply, inputs: Sequence[Any], output_storage: list) -> None:
        results = kernels.grad_parameters_kernel(*inputs)
        for store, result in zip(output_storage, results, strict=True):
            store[0] = result

    def infer_shape(self, node: Apply, input_shapes: list) -> list:
        return list(input_shapes[1:4])


class FullMixtureLogpGradValue(Op):
    """d/dx of sum_n g_n log p(x_n), eq. (6); inputs x, log_w, means, prec_chol, g."""

    __props__ = ()

    def make_node(self, x: Any, log_w: Any, means: Any, prec_chol: Any, g: Any) -> Apply:  # type: ignore[override]
        inputs = _as_inputs(x, log_w, means, prec_chol, g)
        return Apply(self, inputs, [inputs[0].type()])

    def perform(self, node: Apply, inputs: Sequence[Any], output_storage: list) -> None:
        output_storage[0][0] = kernels.grad_value_kernel(*inputs)

    def infer_shape(self, node: Apply, input_shapes: list) -> list:
        return [input_shapes[0]]


class FullMixtureLogpAndGradParams(Op):
    """log p(x_n) (N,) and (d/dlog_w, d/dmeans, d/dprec_chol) of sum_n g_n log p(x_n) in one
    pass; inputs x, log_w, means, prec_chol, g. Only created by the rewrite
    :func:`local_full_mixture_fuse_logp_and_grad`, so it has no gradient."""

    __props__ = ()

    def make_node(self, x: Any, log_w: Any, means: Any, prec_chol: Any, g: Any) -> Apply:  # type: ignore[override]
        inputs = _as_inputs(x, log_w, means, prec_chol, g)
        outputs = [_logp_output(inputs[0]), inputs[1].type(), inputs[2].type(), inputs[3].type()]
        return Apply(self, inputs, outputs)

    def perform(self, node: Apply, inputs: Sequence[Any], output_storage: list) -> None:
        results = kernels.logp_and_grad_parameters_kernel(*inputs)
        for store, result in zip(output_storage, results, strict=True):
            store[0] = result

    def infer_shape(self, node: Apply, input_shapes: list) -> list:
        return [(input_shapes[0][0],), *input_shapes[1:4]]


#: The Op instances (the Ops have no parameters, so one of each serves every graph).
full_mixture_logp_op = FullMixtureLogp()
full_mixture_logp_grad_params = FullMixtureLogpGradParams()
full_mixture_logp_grad_value = FullMixtureLogpGradValue()
full_mixture_logp_and_grad_params = FullMixtureLogpAndGradParams()


def fused_full_mixture_logp(value: Any, log_weights: Any, means: Any, prec_chol: Any) -> Variable:
    """Eq. (2) as one PyTensor Op with numba kernels for the value and the gradient.

    Parameters
    ----------
    value : TensorVariable of shape (n_samples, n_features)
        The data. Pass a shared variable rather than a constant for large data (the numba
        backend embeds constant arrays in the compiled function and pays for that on every
        call; a shared variable is passed by reference).
    log_weights : TensorVariable of shape (n_components,)
    means : TensorVariable of shape (n_components, n_features)
    prec_chol : TensorVariable of shape (n_components, n_features, n_features)
        Lower Cholesky factors of the precision matrices, positive diagonal; the upper
        triangle is ignored (its gradient is zero).

    Returns
    -------
    TensorVariable of shape (n_samples,)
    """
    [logp] = _outputs(full_mixture_logp_op, value, log_weights, means, prec_chol)
    return logp


# --------------------------------------------------------------------------- rewrites
@register_specialize
@node_rewriter([FullMixtureLogpGradParams, FullMixtureLogpGradValue])
def local_full_mixture_grad_constant_cotangent(fgraph: Any, node: Apply) -> list | None:
    """The cotangent of sum(log p) is a constant array of N ones (or, when N is not known
    when the graph is built, ``Alloc(1.0, N)``). The numba backend pays for every constant
    array on every call, so pass one value instead; the kernels broadcast a cotangent of
    length 1."""
    g = node.inputs[4]
    if g.owner is not None and isinstance(g.owner.op, Alloc):
        fill = g.owner.inputs[0]  # Alloc(scalar, n): data of unknown length (no static shape)
        if not isinstance(fill, Constant) or fill.data.size != 1:
            return None
        first = np.asarray(fill.data, dtype=np.float64).reshape(1)
        return _outputs(node.op, *node.inputs[:4], pt.constant(first))
    if not isinstance(g, Constant) or g.data.shape[0] == 1:
        return None
    first = g.data.reshape(-1)[:1]
    if not np.all(g.data == first):
        return None
    return _outputs(node.op, *node.inputs[:4], pt.constant(first))


@register_specialize
@node_rewriter([FullMixtureLogpGradParams])
def local_full_mixture_fuse_logp_and_grad(fgraph: Any, node: Apply) -> dict | None:
    """NUTS asks for log p and its gradient together: when both are in the graph (same
    inputs; the cotangent one value), compute them in one pass over the data."""
    x, log_w, means, prec_chol, g = node.inputs
    if not isinstance(g, Constant) or g.data.shape[0] != 1:
        return None
    for client, _ in fgraph.clients.get(x, ()):
        if (
            not isinstance(client, str)
            and isinstance(client.op, FullMixtureLogp)
            and list(client.inputs) == [x, log_w, means, prec_chol]
        ):
            fused = _outputs(full_mixture_logp_and_grad_params, x, log_w, means, prec_chol, g)
            return {
                client.outputs[0]: fused[0],
                node.outputs[0]: fused[1],
                node.outputs[1]: fused[2],
                node.outputs[2]: fused[3],
            }
    return None


# --------------------------------------------------------------------------- numba dispatch
@cache
def kernel_version() -> int:
    """A number that changes with the kernels' source (``kernels/density_full.py`` and the
    ``kernels/numba_math.py`` it imports): part of PyTensor's numba cache key, so a compiled
    graph cached on disk is never reused with older kernels."""
    here = Path(__file__).resolve().parent
    source = b"".join((here / name).read_bytes() for name in ("density_full.py", "numba_math.py"))
    return int(hashlib.sha256(source).hexdigest()[:12], 16)


def _register_numba(op_class: type[Op], kernel: Any) -> None:
    """Make the numba backend call ``kernel`` for every node of ``op_class``."""

    def funcify(op: Op, node: Apply | None = None, **kwargs: Any) -> tuple[Any, int]:
        return kernel, kernel_version()

    register_funcify_default_op_cache_key(op_class)(funcify)


for _op_class, _kernel in (
    (FullMixtureLogp, kernels.logp_kernel),
    (FullMixtureLogpAndGradParams, kernels.logp_and_grad_parameters_kernel),
    (FullMixtureLogpGradParams, kernels.grad_parameters_kernel),
    (FullMixtureLogpGradValue, kernels.grad_value_kernel),
):
    _register_numba(_op_class, _kernel)
