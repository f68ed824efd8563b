"""The marginal mixture log-density, with the assignments z summed out.

    log p(x_i | w, mu, sigma) = logsumexp_k [ log w_k + sum_d log N(x_id | mu_kd, sigma_kd^2) ]

This module holds the numpy reference (used by CAVI/EM tests, responsibilities and as the
oracle for the PyTensor version) and the PyTensor version that ``pm.CustomDist`` uses.
Everything stays in log space; nothing is exponentiated before it is normalized.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

__all__ = [
    "LOG_2PI",
    "log_joint_components",
    "log_responsibilities",
    "mixture_logp",
    "mixture_logp_pt",
]

LOG_2PI = float(np.log(2.0 * np.pi))


def _as_params(points, weights, means, obs_sd):
    points = np.asarray(points, dtype=np.float64)
    if points.ndim == 1:
        points = points[:, None]
    means = np.asarray(means, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    if means.ndim == weights.ndim:  # 1-D data given as means of shape (..., K)
        means = means[..., None]
    obs_sd = np.broadcast_to(np.asarray(obs_sd, dtype=np.float64), means.shape)
    return points, weights, means, obs_sd


def log_joint_components(points, weights, means, obs_sd) -> np.ndarray:
    """log w_k + log N(x_i | mu_k, diag(sigma_k^2)) for every observation and component.

    Parameters
    ----------
    points : ndarray of shape (n_samples, n_features) or (n_samples,)
    weights : ndarray of shape (..., n_components)
        Leading dims batch over parameter draws.
    means : ndarray of shape (..., n_components, n_features) or (..., n_components) for 1-D
    obs_sd : float or ndarray broadcastable to ``means``

    Returns
    -------
    ndarray of shape (..., n_samples, n_components)
    """
    points, weights, means, obs_sd = _as_params(points, weights, means, obs_sd)
    with np.errstate(divide="ignore"):  # a zero weight is log 0 = -inf, which is correct
        log_w = np.log(weights)
    diff = (points[..., :, None, :] - means[..., None, :, :]) / obs_sd[..., None, :, :]
    log_norm = -0.5 * LOG_2PI - np.log(obs_sd)                      # (..., K, D)
    log_comp = (log_norm[..., None, :, :] - 0.5 * diff**2).sum(-1)  # (..., N, K)
    return log_w[..., None, :] + log_comp


def mixture_logp(points, weights, means, obs_sd) -> np.ndarray:
    """Marginal log-density of each observation under the mixture.

    Parameters
    ----------
    points : ndarray of shape (n_samples, n_features) or (n_samples,)
    weights : ndarray of shape (..., n_components)
    means : ndarray of shape (..., n_components, n_features)
    obs_sd : float, ndarray of shape (n_features,) or (..., n_components, n_features)

    Returns
    -------
    ndarray of shape (..., n_samples)
        One value per observation (LOO and WAIC need them separately).

    Examples
    --------
    >>> mixture_logp([[0.0]], [1.0], [[0.0]], 1.0).round(6)
    array([-0.918939])
    """
    return logsumexp(log_joint_components(points, weights, means, obs_sd), axis=-1)


def log_responsibilities(points, weights, means, obs_sd) -> np.ndarray:
    """log p(z_i = k | x_i, parameters), normalized in log space.

    Returns
    -------
    ndarray of shape (..., n_samples, n_components); ``exp`` of each row sums to 1.
    """
    log_joint = log_joint_components(points, weights, means, obs_sd)
    return log_joint - logsumexp(log_joint, axis=-1, keepdims=True)


# --------------------------------------------------------------------------- PyTensor
# The PyMC side. PyTensor is imported inside the functions, so ``import ppl_mixtures.model.density``
# stays a numpy-only import for CAVI, EM and the CLI.


def mixture_logp_pt(value, weights, means, obs_sd):
    """Marginal mixture log-density per observation, as a PyTensor graph.

    The ``logp`` of ``pm.CustomDist(..., signature="(k),(k,d),(k,d)->(d)")``. With a
    signature, PyMC passes the parameters with leading batch dimensions (typically of
    length 1) that broadcast against the observations, so every index is written from the
    right with ``...``.

    When the parameters' batch dimensions are all broadcastable (the CustomDist case) the
    graph is one fused Op, :func:`fused_mixture_logp`, whose value and gradient are
    single-pass numba kernels; with parameters that vary per observation it is the
    elementwise graph :func:`mixture_logp_pt_elementwise`. Both compute eq. (1). The fused
    Op is used at every data size: at N = 100 a call costs ~3 µs more (15 vs 12 µs), but
    the smaller graph builds faster (whole NUTS, ADVI and Metropolis fits on 100-300 points
    were no slower warm) and its precompiled kernels save PyTensor's numba backend 10-40 s
    of compilation per model on a cold cache.

    Parameters
    ----------
    value : TensorVariable of shape (n_samples, n_features)
    weights : TensorVariable of shape (..., n_components)
    means : TensorVariable of shape (..., n_components, n_features)
    obs_sd : TensorVariable of shape (..., n_components, n_features)

    Returns
    -------
    TensorVariable of shape (n_samples,)
        log p(x_i | weights, means, obs_sd), one value per observation (LOO needs them).

    Notes
    -----
    log p(x_i) = logsumexp_k [log w_k + sum_d log N(x_id | mu_kd, sd_kd^2)]           (1)
    """
    import pytensor.tensor as pt

    value = pt.as_tensor_variable(value)
    weights, means, obs_sd = (pt.as_tensor_variable(a) for a in (weights, means, obs_sd))
    batch_free = (value.ndim == 2
                  and all(weights.type.broadcastable[:-1])
                  and all(means.type.broadcastable[:-2])
                  and all(obs_sd.type.broadcastable[:-2]))
    if not batch_free:
        return mixture_logp_pt_elementwise(value, weights, means, obs_sd)
    weights = weights[(0,) * (weights.ndim - 1)]
    means = means[(0,) * (means.ndim - 2)]
    obs_sd = pt.broadcast_to(obs_sd[(0,) * (obs_sd.ndim - 2)], means.shape)
    return fused_mixture_logp(value, pt.log(weights), means, obs_sd)


def mixture_logp_pt_elementwise(value, weights, means, obs_sd):
    """Eq. (1) as a plain elementwise PyTensor graph (any batch shapes); (..., N)."""
    import pytensor.tensor as pt

    value = pt.as_tensor_variable(value)
    weights, means, obs_sd = (pt.as_tensor_variable(a) for a in (weights, means, obs_sd))
    diff = (value[..., None, :] - means) / obs_sd                       # (N, K, D)
    log_comp = pt.sum(-0.5 * LOG_2PI - pt.log(obs_sd) - 0.5 * diff**2, axis=-1)  # (N, K)
    return pt.logsumexp(pt.log(weights) + log_comp, axis=-1)           # (N,)


# --------------------------------------------------------------------------- fused Op
# One pass over the data per Op (and one for log p and its gradient together), with no
# (N, K, D) temporaries. PyTensor's default backend is numba; the Ops register numba kernels
# so the compiled logp stays in numba mode (Op.perform calls the same kernels for other
# backends).


def _fused_ops():
    """Build (once) the PyTensor Ops and register their numba implementations."""
    if "ops" in _FUSED:
        return _FUSED["ops"]
    import pytensor.tensor as pt
    from pytensor.graph.basic import Apply
    from pytensor.graph.op import Op
    from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key

    from ppl_mixtures.kernels import density as kernels

    def as_inputs(x, log_w, means, obs_sd, *rest):
        variables = [pt.as_tensor_variable(v) for v in (x, log_w, means, obs_sd, *rest)]
        for v, ndim in zip(variables, (2, 1, 2, 2, 1), strict=False):
            if v.ndim != ndim:
                raise ValueError(f"fused_mixture_logp: expected a {ndim}-D input, got "
                                 f"{v.ndim}-D {v.type}. Use mixture_logp_pt for batched "
                                 f"parameters.")
        return [pt.cast(v, "float64") if v.dtype != "float64" else v for v in variables]

    class MixtureLogp(Op):
        """log p(x_i) of eq. (1), shape (N,). Inputs x (N, D), log_w (K,), means (K, D),
        obs_sd (K, D). Its gradient is two more fused Ops (parameters; x)."""

        __props__ = ()

        def make_node(self, x, log_w, means, obs_sd):
            inputs = as_inputs(x, log_w, means, obs_sd)
            out = pt.tensor(dtype="float64", shape=(inputs[0].type.shape[0],))
            return Apply(self, inputs, [out])

        def perform(self, node, inputs, output_storage):
            output_storage[0][0] = kernels.logp_kernel(*inputs)

        def infer_shape(self, node, input_shapes):
            return [(input_shapes[0][0],)]

        def pullback(self, inputs, outputs, cotangents):
            g_log_w, g_means, g_sd = _FUSED["ops"][1](*inputs, cotangents[0])
            return [_FUSED["ops"][2](*inputs, cotangents[0]), g_log_w, g_means, g_sd]

    class MixtureLogpGradParams(Op):
        """(d/dlog_w, d/dmeans, d/dobs_sd) of sum_i g_i log p(x_i), eqs. (2)-(4);
        inputs x, log_w, means, obs_sd, g."""

        __props__ = ()

        def make_node(self, x, log_w, means, obs_sd, g):
            inputs = as_inputs(x, log_w, means, obs_sd, g)
            return Apply(self, inputs, [inputs[1].type(), inputs[2].type(), inputs[3].type()])

        def perform(self, node, inputs, output_storage):
            results = kernels.grad_parameters_kernel(*inputs)
            for store, result in zip(output_storage, results, strict=True):
                store[0] = result

        def infer_shape(self, node, input_shapes):
            return list(input_shapes[1:4])

    class MixtureLogpGradValue(Op):
        """d/dx of sum_i g_i log p(x_i), eq. (5); inputs x, log_w, means, obs_sd, g."""

        __props__ = ()

        def make_node(self, x, log_w, means, obs_sd, g):
            inputs = as_inputs(x, log_w, means, obs_sd, g)
            return Apply(self, inputs, [inputs[0].type()])

        def perform(self, node, inputs, output_storage):
            output_storage[0][0] = kernels.grad_value_kernel(*inputs)

        def infer_shape(self, node, input_shapes):
            return [input_shapes[0]]

    class MixtureLogpAndGradParams(Op):
        """log p(x_i) (N,) and (d/dlog_w, d/dmeans, d/dobs_sd) of sum_i g_i log p(x_i) in
        one pass; inputs x, log_w, means, obs_sd, g. Only created by the graph rewrite below
        (it merges a MixtureLogp and its MixtureLogpGradParams), so it has no gradient."""

        __props__ = ()

        def make_node(self, x, log_w, means, obs_sd, g):
            inputs = as_inputs(x, log_w, means, obs_sd, g)
            logp = pt.tensor(dtype="float64", shape=(inputs[0].type.shape[0],))
            return Apply(self, inputs, [logp, inputs[1].type(), inputs[2].type(),
                                        inputs[3].type()])

        def perform(self, node, inputs, output_storage):
            results = kernels.logp_and_grad_parameters_kernel(*inputs)
            for store, result in zip(output_storage, results, strict=True):
                store[0] = result

        def infer_shape(self, node, input_shapes):
            return [(input_shapes[0][0],), *input_shapes[1:4]]

    from pytensor.graph.basic import Constant
    from pytensor.graph.rewriting.basic import node_rewriter
    from pytensor.tensor.rewriting.basic import register_specialize

    @register_specialize
    @node_rewriter([MixtureLogpGradParams, MixtureLogpGradValue])
    def local_mixture_grad_constant_cotangent(fgraph, node):
        # The cotangent of sum(log p) is a constant array of N ones. The numba backend
        # pays for every constant array on every call, so pass one value instead; the
        # kernels broadcast a cotangent of length 1.
        g = node.inputs[4]
        if not isinstance(g, Constant) or g.data.shape[0] == 1:
            return None
        first = g.data.reshape(-1)[:1]
        if not np.all(g.data == first):
            return None
        return node.op(*node.inputs[:4], pt.constant(first), return_list=True)

    @register_specialize
    @node_rewriter([MixtureLogpGradParams])
    def local_mixture_fuse_logp_and_grad(fgraph, node):
        # NUTS asks for log p and its gradient together: when both are in the graph (same
        # inputs; the cotangent one value), compute them in one pass over the data.
        x, log_w, means, obs_sd, g = node.inputs
        if not isinstance(g, Constant) or g.data.shape[0] != 1:
            return None
        for client, _ in fgraph.clients.get(x, ()):
            if (not isinstance(client, str) and isinstance(client.op, MixtureLogp)
                    and list(client.inputs) == [x, log_w, means, obs_sd]):
                fused = MixtureLogpAndGrad(x, log_w, means, obs_sd, g, return_list=True)
                return {client.outputs[0]: fused[0], node.outputs[0]: fused[1],
                        node.outputs[1]: fused[2], node.outputs[2]: fused[3]}
        return None

    MixtureLogpAndGrad = MixtureLogpAndGradParams()

    registrations = ((MixtureLogp, kernels.logp_kernel),
                     (MixtureLogpAndGradParams, kernels.logp_and_grad_parameters_kernel),
                     (MixtureLogpGradParams, kernels.grad_parameters_kernel),
                     (MixtureLogpGradValue, kernels.grad_value_kernel))
    for cls, kernel in registrations:
        cls.__module__ = __name__  # picklable by reference (module __getattr__)
        cls.__qualname__ = cls.__name__
        register_funcify_default_op_cache_key(cls)(
            lambda op, node=None, _kernel=kernel, **kwargs: (_kernel, _kernel_version()))
    _FUSED["ops"] = (MixtureLogp(), MixtureLogpGradParams(), MixtureLogpGradValue(),
                     MixtureLogpAndGrad)
    return _FUSED["ops"]


_FUSED: dict = {}


def _kernel_version() -> int:
    """A number that changes with the kernels' source (``kernels/density.py`` and the
    ``kernels/numba_math.py`` it imports): part of PyTensor's numba cache key, so a compiled
    graph cached on disk is never reused with older kernels."""
    if "version" not in _FUSED:
        import hashlib
        from pathlib import Path

        kernels = Path(__file__).resolve().parent.parent / "kernels"
        source = b"".join((kernels / name).read_bytes()
                          for name in ("density.py", "numba_math.py"))
        _FUSED["version"] = int(hashlib.sha256(source).hexdigest()[:12], 16)
    return _FUSED["version"]


def fused_mixture_logp(value, log_weights, means, obs_sd):
    """Eq. (1) as one PyTensor Op with numba kernels for the value and the gradient.

    Parameters
    ----------
    value : TensorVariable of shape (n_samples, n_features)
    log_weights : TensorVariable of shape (n_components,)
    means, obs_sd : TensorVariable of shape (n_components, n_features)

    Returns
    -------
    TensorVariable of shape (n_samples,)
    """
    from pytensor.graph.basic import Constant

    if isinstance(value, Constant):
        value = shared_data(value)
    return _fused_ops()[0](value, log_weights, means, obs_sd)


def shared_data(constant):
    """The shared variable :func:`fused_mixture_logp` reads in place of the data ``constant``.

    The numba backend embeds constant arrays in the compiled function and pays for that on
    every call (about 1.3 ms at N = 100,000 here); a shared variable holding the same
    (borrowed, not copied) data is passed by reference instead. It is made once per
    constant and kept on the constant's ``tag``, so code that substitutes the observed data
    in a graph (ADVI's cached objective) can substitute this variable too.
    """
    import pytensor

    shared = getattr(constant.tag, "fused_shared_data", None)
    if shared is None:
        shared = pytensor.shared(constant.data, borrow=True, shape=constant.type.shape)
        constant.tag.fused_shared_data = shared
    return shared


def __getattr__(name: str):
    # The Op classes are built on first use (they subclass PyTensor's Op); this makes
    # ``ppl_mixtures.model.density.MixtureLogp`` resolvable, e.g. when a compiled model is
    # unpickled in a sampling subprocess.
    names = ("MixtureLogp", "MixtureLogpGradParams", "MixtureLogpGradValue",
             "MixtureLogpAndGradParams")
    if name in names:
        return type(_fused_ops()[names.index(name)])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
