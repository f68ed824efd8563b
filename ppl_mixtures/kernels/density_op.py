"""The fused mixture density as PyTensor Ops backed by the numba kernels of :mod:`.density`.

    log p(x_i) = logsumexp_k [log w_k + sum_d log N(x_id | mu_kd, sd_kd^2)]          (1)

Four Ops, each one pass over the data with no (N, K, D) temporaries (equation numbers are
those of :mod:`ppl_mixtures.kernels.density`):

- :class:`MixtureLogp` -- eq. (1) per observation, (N,); its gradient is the next two Ops;
- :class:`MixtureLogpGradParams` -- eqs. (2)-(4), the gradient w.r.t. (log w, means, sd);
- :class:`MixtureLogpGradValue` -- eq. (5), the gradient w.r.t. x;
- :class:`MixtureLogpAndGradParams` -- eq. (1) and eqs. (2)-(4) together; only the rewrite
  :func:`local_mixture_fuse_logp_and_grad` creates it (NUTS asks for both at every step).

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
from pytensor.tensor.rewriting.basic import register_specialize

from ppl_mixtures.kernels import density as kernels

__all__ = [
    "MixtureLogp",
    "MixtureLogpAndGradParams",
    "MixtureLogpGradParams",
    "MixtureLogpGradValue",
    "fused_mixture_logp",
    "kernel_version",
]

#: ndim of the inputs x, log_w, means, obs_sd and (gradient Ops) the cotangent g.
_INPUT_NDIMS = (2, 1, 2, 2, 1)


def _as_inputs(*inputs: Any) -> list[Variable]:
    """The Ops' inputs as float64 tensors of the expected ndim (a ValueError otherwise)."""
    variables = [pt.as_tensor_variable(v) for v in inputs]
    for v, ndim in zip(variables, _INPUT_NDIMS, strict=False):
        if v.ndim != ndim:
            raise ValueError(
                f"fused_mixture_logp: expected a {ndim}-D input, got "
                f"{v.ndim}-D {v.type}. Use mixture_logp_pt for batched "
                f"parameters."
            )
    return [pt.cast(v, "float64") if v.dtype != "float64" else v for v in variables]


def _outputs(op: Op, *inputs: Any) -> list[Variable]:
    """``op(*inputs)`` as the list of its outputs (``Op.__call__`` may return one or a list)."""
    return cast(list[Variable], op(*inputs, return_list=True))


def _logp_output(x: Variable) -> Variable:
    return pt.tensor(dtype="float64", shape=(x.type.shape[0],))


# ``make_node`` names its inputs (``Op.make_node`` takes ``*inputs``): type: ignore[override]


class MixtureLogp(Op):
    """log p(x_i) of eq. (1), shape (N,). Inputs x (N, D), log_w (K,), means (K, D),
    obs_sd (K, D). Its gradient is two more fused Ops (parameters; x)."""

    __props__ = ()

    def make_node(self, x: Any, log_w: Any, means: Any, obs_sd: Any) -> Apply:  # type: ignore[override]
        inputs = _as_inputs(x, log_w, means, obs_sd)
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
        g_log_w, g_means, g_sd = _outputs(mixture_logp_grad_params, *inputs, cotangents[0])
        [g_x] = _outputs(mixture_logp_grad_value, *inputs, cotangents[0])
        return [g_x, g_log_w, g_means, g_sd]


class MixtureLogpGradParams(Op):
    """(d/dlog_w, d/dmeans, d/dobs_sd) of sum_i g_i log p(x_i), eqs. (2)-(4);
    inputs x, log_w, means, obs_sd, g."""

    __props__ = ()

    def make_node(self, x: Any, log_w: Any, means: Any, obs_sd: Any, g: Any) -> Apply:  # type: ignore[override]
        inputs = _as_inputs(x, log_w, means, obs_sd, g)
        return Apply(self, inputs, [inputs[1].type(), inputs[2].type(), inputs[3].type()])

    def perform(self, node: Apply, inputs: Sequence[Any], output_storage: list) -> None:
        results = kernels.grad_parameters_kernel(*inputs)
        for store, result in zip(output_storage, results, strict=True):
            store[0] = result

    def infer_shape(self, node: Apply, input_shapes: list) -> list:
        return list(input_shapes[1:4])


class MixtureLogpGradValue(Op):
    """d/dx of sum_i g_i log p(x_i), eq. (5); inputs x, log_w, means, obs_sd, g."""

    __props__ = ()

    def make_node(self, x: Any, log_w: Any, means: Any, obs_sd: Any, g: Any) -> Apply:  # type: ignore[override]
        inputs = _as_inputs(x, log_w, means, obs_sd, g)
        return Apply(self, inputs, [inputs[0].type()])

    def perform(self, node: Apply, inputs: Sequence[Any], output_storage: list) -> None:
        output_storage[0][0] = kernels.grad_value_kernel(*inputs)

    def infer_shape(self, node: Apply, input_shapes: list) -> list:
        return [input_shapes[0]]


class MixtureLogpAndGradParams(Op):
    """log p(x_i) (N,) and (d/dlog_w, d/dmeans, d/dobs_sd) of sum_i g_i log p(x_i) in one
    pass; inputs x, log_w, means, obs_sd, g. Only created by the rewrite
    :func:`local_mixture_fuse_logp_and_grad`, so it has no gradient."""

    __props__ = ()

    def make_node(self, x: Any, log_w: Any, means: Any, obs_sd: Any, g: Any) -> Apply:  # type: ignore[override]
        inputs = _as_inputs(x, log_w, means, obs_sd, g)
        outputs = [_logp_output(inputs[0]), inputs[1].type(), inputs[2].type(), inputs[3].type()]
        return Apply(self, inputs, outputs)

    def perform(self, node: Apply, inputs: Sequence[Any], output_storage: list) -> None:
        results = kernels.logp_and_grad_parameters_kernel(*inputs)
        for store, result in zip(output_storage, results, strict=True):
            store[0] = result

    def infer_shape(self, node: Apply, input_shapes: list) -> list:
        return [(input_shapes[0][0],), *input_shapes[1:4]]


#: The Op instances (the Ops have no parameters, so one of each serves every graph).
mixture_logp_op = MixtureLogp()
mixture_logp_grad_params = MixtureLogpGradParams()
mixture_logp_grad_value = MixtureLogpGradValue()
mixture_logp_and_grad_params = MixtureLogpAndGradParams()


def fused_mixture_logp(value: Any, log_weights: Any, means: Any, obs_sd: Any) -> Variable:
    """Eq. (1) as one PyTensor Op with numba kernels for the value and the gradient.

    Parameters
    ----------
    value : TensorVariable of shape (n_samples, n_features)
        The data. Pass a shared variable rather than a constant for large data: the numba
        backend embeds constant arrays in the compiled function and pays for that on every
        call (about 1.3 ms at N = 100,000); a shared variable is passed by reference.
        :func:`ppl_mixtures.inference.pymc.models.build_marginal_model` does.
    log_weights : TensorVariable of shape (n_components,)
    means, obs_sd : TensorVariable of shape (n_components, n_features)

    Returns
    -------
    TensorVariable of shape (n_samples,)
    """
    [logp] = _outputs(mixture_logp_op, value, log_weights, means, obs_sd)
    return logp


# --------------------------------------------------------------------------- rewrites
@register_specialize
@node_rewriter([MixtureLogpGradParams, MixtureLogpGradValue])
def local_mixture_grad_constant_cotangent(fgraph: Any, node: Apply) -> list | None:
    """The cotangent of sum(log p) is a constant array of N ones. The numba backend pays
    for every constant array on every call, so pass one value instead; the kernels
    broadcast a cotangent of length 1."""
    g = node.inputs[4]
    if not isinstance(g, Constant) or g.data.shape[0] == 1:
        return None
    first = g.data.reshape(-1)[:1]
    if not np.all(g.data == first):
        return None
    return _outputs(node.op, *node.inputs[:4], pt.constant(first))


@register_specialize
@node_rewriter([MixtureLogpGradParams])
def local_mixture_fuse_logp_and_grad(fgraph: Any, node: Apply) -> dict | None:
    """NUTS asks for log p and its gradient together: when both are in the graph (same
    inputs; the cotangent one value), compute them in one pass over the data."""
    x, log_w, means, obs_sd, g = node.inputs
    if not isinstance(g, Constant) or g.data.shape[0] != 1:
        return None
    for client, _ in fgraph.clients.get(x, ()):
        if (
            not isinstance(client, str)
            and isinstance(client.op, MixtureLogp)
            and list(client.inputs) == [x, log_w, means, obs_sd]
        ):
            fused = _outputs(mixture_logp_and_grad_params, x, log_w, means, obs_sd, g)
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
    """A number that changes with the kernels' source (``kernels/density.py`` and the
    ``kernels/numba_math.py`` it imports): part of PyTensor's numba cache key, so a compiled
    graph cached on disk is never reused with older kernels."""
    here = Path(__file__).resolve().parent
    source = b"".join((here / name).read_bytes() for name in ("density.py", "numba_math.py"))
    return int(hashlib.sha256(source).hexdigest()[:12], 16)


def _register_numba(op_class: type[Op], kernel: Any) -> None:
    """Make the numba backend call ``kernel`` for every node of ``op_class``."""

    def funcify(op: Op, node: Apply | None = None, **kwargs: Any) -> tuple[Any, int]:
        return kernel, kernel_version()

    register_funcify_default_op_cache_key(op_class)(funcify)


for _op_class, _kernel in (
    (MixtureLogp, kernels.logp_kernel),
    (MixtureLogpAndGradParams, kernels.logp_and_grad_parameters_kernel),
    (MixtureLogpGradParams, kernels.grad_parameters_kernel),
    (MixtureLogpGradValue, kernels.grad_value_kernel),
):
    _register_numba(_op_class, _kernel)
