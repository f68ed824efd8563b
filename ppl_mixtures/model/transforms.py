"""Stan-style stick-breaking: the unconstrained parameterization of the mixture weights.

A point ``w`` of the (K-1)-simplex is mapped to ``y`` in R^(K-1) by breaking a stick of
length 1 into K pieces, left to right. With the offsets of Stan's reference manual
(section "Unit simplex"), ``y = 0`` is the centre of the simplex (all weights 1/K)::

    z_k = logistic(y_k - log(K - k))                         k = 1..K-1       (1)
    w_k = (1 - sum_{j<k} w_j) z_k,    w_K = 1 - sum_{j<K} w_j                  (2)

The inverse (``forward`` in PyMC's naming: constrained -> unconstrained) is::

    y_k = logit(w_k / sum_{j>=k} w_j) + log(K - k)
        = log w_k - log(sum_{j>k} w_j) + log(K - k)                            (3)

and the log absolute Jacobian determinant of the map y -> (w_1..w_{K-1}) is::

    log|J| = sum_{k<K} [ log z_k + log(1 - z_k) + log(1 - sum_{j<k} w_j) ]     (4)

Everything is computed in log space: ``log z = -softplus(-x)``, ``log(1 - z) = -softplus(x)``
and ``log(1 - sum_{j<k} w_j) = sum_{j<k} log(1 - z_j)``, so no weight is subtracted from
1 and tiny weights keep their relative precision.

The module holds the PyMC transform :class:`StickBreaking` (attach with
``pm.Dirichlet(..., default_transform=StickBreaking())``) and numpy mirrors used to
back-transform variational results without PyMC. PyTensor is imported lazily, so the numpy
functions stay cheap to import.

The truncated Dirichlet-process weights (``MixtureSpec(weights="dp")``) break the same stick
with the sticks themselves as parameters (no offsets): for v in (0, 1)^(T-1) and v_T = 1::

    w_k = v_k prod_{j<k} (1 - v_j)                                              (5)

:func:`stick_weights` computes (5) and :func:`expected_log_stick_weights` its expected
logarithm under independent stick factors (Blei & Jordan 2006, §3).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "StickBreaking",  # noqa: F822 (built lazily by __getattr__)
    "expected_log_stick_weights",
    "log_stick_weights",
    "stick_breaking_backward",
    "stick_breaking_forward",
    "stick_breaking_log_jac_det",
    "stick_weights",
]


# --------------------------------------------------------------------------- numpy mirrors
def _softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + exp(x)) without overflow."""
    return np.logaddexp(0.0, x)


def _offsets(n_components: int) -> np.ndarray:
    """log(K - k) for k = 1..K-1, shape (K-1,): Stan's centring offsets of eq. (1)."""
    return np.log(np.arange(n_components - 1, 0, -1, dtype=np.float64))


def _np_log_pieces(y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """log z_k, log(1 - z_k) and log(stick left before break k), each (..., K-1)."""
    x = y - _offsets(y.shape[-1] + 1)
    log_z = -_softplus(-x)
    log_1mz = -_softplus(x)
    log_left = np.cumsum(log_1mz, axis=-1) - log_1mz  # exclusive cumulative sum
    return log_z, log_1mz, log_left


def stick_breaking_forward(weights) -> np.ndarray:
    """Simplex -> unconstrained, eq. (3).

    Parameters
    ----------
    weights : array-like of shape (..., n_components)
        Points of the simplex (non-negative, summing to 1 along the last axis).

    Returns
    -------
    ndarray of shape (..., n_components - 1)
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 0 or w.shape[-1] < 2:
        raise ValueError(
            f"weights: expected an array whose last axis has >= 2 entries, got "
            f"shape {w.shape}. Pass the K weights of a K >= 2 mixture."
        )
    tail = np.cumsum(w[..., ::-1], axis=-1)[..., ::-1][..., 1:]  # sum_{j>k} w_j, (..., K-1)
    with np.errstate(divide="ignore"):
        return np.log(w[..., :-1]) - np.log(tail) + _offsets(w.shape[-1])


def stick_breaking_backward(y) -> np.ndarray:
    """Unconstrained -> simplex, eqs. (1)-(2).

    Parameters
    ----------
    y : array-like of shape (..., n_components - 1)

    Returns
    -------
    ndarray of shape (..., n_components)
        Non-negative weights that sum to 1 (to rounding) along the last axis.
    """
    y = np.asarray(y, dtype=np.float64)
    if y.ndim == 0 or y.shape[-1] < 1:
        raise ValueError(
            f"y: expected an array whose last axis has >= 1 entries, got shape "
            f"{y.shape}. Pass the K-1 unconstrained coordinates."
        )
    log_z, log_1mz, log_left = _np_log_pieces(y)
    log_last = log_left[..., -1:] + log_1mz[..., -1:]  # the stick that is left, w_K
    return np.exp(np.concatenate([log_z + log_left, log_last], axis=-1))


def stick_breaking_log_jac_det(y) -> np.ndarray:
    """log|det d(w_1..w_{K-1}) / dy|, eq. (4).

    Parameters
    ----------
    y : array-like of shape (..., n_components - 1)

    Returns
    -------
    ndarray of shape (...)
    """
    y = np.asarray(y, dtype=np.float64)
    if y.ndim == 0 or y.shape[-1] < 1:
        raise ValueError(
            f"y: expected an array whose last axis has >= 1 entries, got shape "
            f"{y.shape}. Pass the K-1 unconstrained coordinates."
        )
    log_z, log_1mz, log_left = _np_log_pieces(y)
    return np.sum(log_z + log_1mz + log_left, axis=-1)


# --------------------------------------------------------------------------- PyMC transform
def log_stick_weights(sticks) -> np.ndarray:
    """log w of eq. (5): sticks of shape (..., T-1) in [0, 1] -> log-weights (..., T).

    ``log w_k = log v_k + sum_{j<k} log1p(-v_j)`` and ``log w_T = sum_{j<T} log1p(-v_j)``;
    no weight is formed by subtracting from 1, so a tiny last weight keeps its relative
    precision.
    """
    v = np.asarray(sticks, dtype=np.float64)
    with np.errstate(divide="ignore"):  # a stick of exactly 0 or 1 gives log 0 = -inf
        log_v = np.log(v)
        log_1mv = np.log1p(-v)
    left = np.cumsum(log_1mv, axis=-1)  # log of the stick left after break k
    zeros = np.zeros((*v.shape[:-1], 1))
    before = np.concatenate([zeros, left], axis=-1)  # log of the stick left before break k
    return np.concatenate([log_v, zeros], axis=-1) + before


def stick_weights(sticks) -> np.ndarray:
    """The stick-breaking weights of eq. (5), shape (..., T), from sticks of shape (..., T-1).

    Examples
    --------
    >>> stick_weights([0.5, 0.5])
    array([0.5 , 0.25, 0.25])
    """
    return np.exp(log_stick_weights(sticks))


def expected_log_stick_weights(e_log_v, e_log_1mv) -> np.ndarray:
    """E[log w_k] under independent sticks, shape (..., T), from E[log v_k] and E[log(1 - v_k)]
    of shape (..., T-1).

    ``E[log w_k] = E[log v_k] + sum_{j<k} E[log(1 - v_j)]`` with ``E[log v_T] = 0`` (v_T = 1);
    for Beta(a_k, b_k) sticks, ``E[log v_k] = psi(a_k) - psi(a_k + b_k)`` and
    ``E[log(1 - v_k)] = psi(b_k) - psi(a_k + b_k)`` (Blei & Jordan 2006, §3).
    """
    e_log_v = np.asarray(e_log_v, dtype=np.float64)
    e_log_1mv = np.asarray(e_log_1mv, dtype=np.float64)
    zeros = np.zeros((*e_log_v.shape[:-1], 1))
    before = np.concatenate([zeros, np.cumsum(e_log_1mv, axis=-1)], axis=-1)
    return np.concatenate([e_log_v, zeros], axis=-1) + before


def _make_transform_class():
    import pytensor.tensor as pt
    from pymc.logprob.transforms import Transform

    def offsets(n_components):
        # log(K - k), k = 1..K-1, symbolic in K
        return pt.log(pt.arange(n_components - 1, 0, -1).astype("float64"))

    def log_pieces(y):
        x = y - offsets(y.shape[-1] + 1)
        log_z = -pt.softplus(-x)
        log_1mz = -pt.softplus(x)
        log_left = pt.cumsum(log_1mz, axis=-1) - log_1mz
        return log_z, log_1mz, log_left

    class StickBreaking(Transform):
        """Stan-style stick-breaking transform of a Dirichlet (K weights <-> K-1 reals).

        ``forward`` maps weights (..., K) to y (..., K-1) (eq. 3), ``backward`` maps back
        (eqs. 1-2) and ``log_jac_det`` is the analytic eq. (4), reduced over the last axis.
        The value variable of ``pm.Dirichlet("weights", a, default_transform=StickBreaking())``
        is named ``weights_stickbreaking__``.
        """

        name = "stickbreaking"
        ndim_supp = 1

        def forward(self, value, *inputs):
            value = pt.as_tensor(value)
            tail = pt.cumsum(value[..., ::-1], axis=-1)[..., ::-1][..., 1:]
            return pt.log(value[..., :-1]) - pt.log(tail) + offsets(value.shape[-1])

        def backward(self, value, *inputs):
            value = pt.as_tensor(value)
            log_z, log_1mz, log_left = log_pieces(value)
            log_last = log_left[..., -1:] + log_1mz[..., -1:]
            return pt.exp(pt.concatenate([log_z + log_left, log_last], axis=-1))

        def log_jac_det(self, value, *inputs):
            value = pt.as_tensor(value)
            log_z, log_1mz, log_left = log_pieces(value)
            return pt.sum(log_z + log_1mz + log_left, axis=-1)

        def __eq__(self, other):
            return type(other) is type(self)

        def __hash__(self):
            return hash(type(self))

    StickBreaking.__module__ = __name__
    StickBreaking.__qualname__ = "StickBreaking"  # pickles by reference via __getattr__
    return StickBreaking


_CLASS_CACHE: dict[str, type] = {}


def __getattr__(name: str):
    # ``StickBreaking`` subclasses PyMC's Transform; build it on first access so that
    # importing this module (for the numpy mirrors) does not import PyMC.
    if name == "StickBreaking":
        if name not in _CLASS_CACHE:
            _CLASS_CACHE[name] = _make_transform_class()
        return _CLASS_CACHE[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
