"""numba kernels of the fused mixture density (value; gradients), one pass over the data each.

Private to :mod:`ppl_mixtures.model.density`, which imports this module lazily (numba is slow to
import). Inputs: x (N, D), log_w (K,), means (K, D), obs_sd (K, D), float64.

    log p(x_i) = logsumexp_k [log w_k + sum_d log N(x_id | mu_kd, sd_kd^2)]          (1)

With g_i the incoming gradient of log p(x_i) and r_ik = p(z_i = k | x_i) the
responsibilities, the gradient of sum_i g_i log p(x_i) is::

    d/dlog w_k = sum_i g_i r_ik                                                      (2)
    d/dmu_kd   = sum_i g_i r_ik (x_id - mu_kd) / sd_kd^2                             (3)
    d/dsd_kd   = sum_i g_i r_ik ((x_id - mu_kd)^2 / sd_kd^2 - 1) / sd_kd             (4)
    d/dx_id    = -sum_k g_i r_ik (x_id - mu_kd) / sd_kd^2                            (5)

Why it is fast: the data are processed in blocks of ``BLOCK`` rows held in small scratch
arrays (no (N, K) temporaries, so no fresh pages to fault in on every call), each step is a
loop over the rows of a block that LLVM vectorizes, and exp / log are the branch-free
polynomial versions of :mod:`ppl_mixtures.kernels.numba_math`, which vectorize where the libm
calls do not. Differences x - mu are formed directly (no expanded
x^2 - 2 x mu + mu^2), so data far from the origin lose no precision.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from ppl_mixtures.kernels.numba_math import exp_nonpositive, log_positive

LOG_2PI = float(np.log(2.0 * np.pi))
BLOCK = 512

_JIT: dict[str, Any] = dict(cache=True, error_model="numpy")  # numpy errors: no branch per division


@numba.njit(**_JIT)
def _component_constants(log_w, obs_sd):
    """log w_k - D/2 log 2 pi - sum_d log sd_kd, (K,), and 1 / (2 sd^2), (K, D)."""
    n_components, n_features = obs_sd.shape
    const = np.empty(n_components)
    half_prec = np.empty((n_components, n_features))
    for k in range(n_components):
        acc = log_w[k] - 0.5 * n_features * LOG_2PI
        for d in range(n_features):
            acc -= np.log(obs_sd[k, d])
            half_prec[k, d] = 0.5 / (obs_sd[k, d] * obs_sd[k, d])
        const[k] = acc
    return const, half_prec


@numba.njit(**_JIT)
def _block_log_joint(x, start, n_rows, means, const, half_prec, xb, joint, top):
    """joint[k, j] = log w_k + log N(x_{start+j} | mu_k, sd_k) and top[j] = max_k joint.

    Scratch arrays are full-size C-contiguous blocks (not slices), so the row loops have a
    unit stride LLVM can vectorize; only the first ``n_rows`` entries are used. ``xb``
    receives the block of x transposed, (D, BLOCK), for the same reason.
    """
    for d in range(x.shape[1]):
        column = xb[d]
        for j in range(n_rows):
            column[j] = x[start + j, d]
    for k in range(means.shape[0]):
        row = joint[k]
        c = const[k]
        for j in range(n_rows):
            row[j] = c
        for d in range(means.shape[1]):
            mu = means[k, d]
            h = half_prec[k, d]
            column = xb[d]
            for j in range(n_rows):
                diff = column[j] - mu
                row[j] -= diff * diff * h
    first = joint[0]
    for j in range(n_rows):
        top[j] = first[j]
    for k in range(1, means.shape[0]):
        row = joint[k]
        for j in range(n_rows):
            if row[j] > top[j]:
                top[j] = row[j]


@numba.njit(**_JIT)
def _block_normalize(n_rows, joint, top, total):
    """joint <- exp(joint - top) and total = sum_k of it (in [1, K]); -inf rows give 0."""
    for j in range(n_rows):
        total[j] = 0.0
        if top[j] == -np.inf:  # every term -inf (zero weights): keep the row finite
            top[j] = 0.0
    for k in range(joint.shape[0]):
        row = joint[k]
        for j in range(n_rows):
            term = exp_nonpositive(row[j] - top[j])
            row[j] = term
            total[j] += term


@numba.njit(**_JIT)
def _block_logp(x, start, n_rows, means, const, half_prec, xb, joint, top, total, raw_top):
    """The block's responsibilities (unnormalized, in ``joint``), ``total`` and ``top``."""
    _block_log_joint(x, start, n_rows, means, const, half_prec, xb, joint, top)
    for j in range(n_rows):
        raw_top[j] = top[j]
    _block_normalize(n_rows, joint, top, total)


@numba.njit(**_JIT)
def _block_cotangent_over_total(g, start, n_rows, total):
    """total[j] <- g_i / total_i (0 where total is 0); a g of length 1 is broadcast."""
    if g.shape[0] == 1:
        for j in range(n_rows):
            total[j] = g[0] / total[j] if total[j] > 0.0 else 0.0
    else:
        for j in range(n_rows):
            total[j] = g[start + j] / total[j] if total[j] > 0.0 else 0.0


@numba.njit(**_JIT)
def logp_kernel(x, log_w, means, obs_sd):
    """Eq. (1) for every observation, shape (N,)."""
    n_samples = x.shape[0]
    const, half_prec = _component_constants(log_w, obs_sd)
    joint = np.empty((means.shape[0], BLOCK))
    top = np.empty(BLOCK)
    total = np.empty(BLOCK)
    raw_top = np.empty(BLOCK)
    xb = np.empty((x.shape[1], BLOCK))
    out = np.empty(n_samples)
    for start in range(0, n_samples, BLOCK):
        n_rows = min(BLOCK, n_samples - start)
        _block_logp(x, start, n_rows, means, const, half_prec, xb, joint, top, total, raw_top)
        for j in range(n_rows):
            value = top[j] + log_positive(total[j])
            out[start + j] = value if raw_top[j] != -np.inf else -np.inf
    return out


@numba.njit(**_JIT)
def _block_accumulate(n_rows, means, xb, joint, total, s0, s1, s2):
    """Add the block's g_i r_ik, g_i r_ik (x - mu) and g_i r_ik (x - mu)^2 to the lanes.

    ``joint`` holds exp(joint - top) and ``total`` holds g_i / total_i on entry.
    """
    for k in range(means.shape[0]):
        row = joint[k]
        lane0 = s0[k]
        for j in range(n_rows):
            row[j] *= total[j]  # g_i r_ik
            lane0[j] += row[j]
        for d in range(means.shape[1]):
            mu = means[k, d]
            column = xb[d]
            lane1 = s1[k, d]
            lane2 = s2[k, d]
            for j in range(n_rows):
                weighted = row[j] * (column[j] - mu)
                lane1[j] += weighted
                lane2[j] += weighted * (column[j] - mu)


@numba.njit(**_JIT)
def _finish_gradients(half_prec, obs_sd, s0, s1, s2):
    """Eqs. (2)-(4) from the lane sums."""
    n_components, n_features = obs_sd.shape
    g_log_w = s0.sum(axis=1)
    g_means = np.empty((n_components, n_features))
    g_sd = np.empty((n_components, n_features))
    for k in range(n_components):
        for d in range(n_features):
            prec = 2.0 * half_prec[k, d]
            g_means[k, d] = prec * s1[k, d].sum()
            g_sd[k, d] = (prec * s2[k, d].sum() - g_log_w[k]) / obs_sd[k, d]
    return g_log_w, g_means, g_sd


@numba.njit(**_JIT)
def _gradients_and_maybe_logp(x, log_w, means, obs_sd, g, with_logp):
    n_samples, n_features = x.shape
    n_components = means.shape[0]
    const, half_prec = _component_constants(log_w, obs_sd)
    joint = np.empty((n_components, BLOCK))
    top = np.empty(BLOCK)
    total = np.empty(BLOCK)
    raw_top = np.empty(BLOCK)
    xb = np.empty((n_features, BLOCK))
    out = np.empty(n_samples if with_logp else 0)
    # per-lane partial sums (reduced once at the end): the row loops stay vectorizable
    # (a scalar float accumulator would need reassociation, i.e. fastmath)
    s0 = np.zeros((n_components, BLOCK))  # sum_i g_i r_ik
    s1 = np.zeros((n_components, n_features, BLOCK))  # sum_i g_i r_ik (x_id - mu_kd)
    s2 = np.zeros((n_components, n_features, BLOCK))  # sum_i g_i r_ik (x_id - mu_kd)^2
    for start in range(0, n_samples, BLOCK):
        n_rows = min(BLOCK, n_samples - start)
        _block_logp(x, start, n_rows, means, const, half_prec, xb, joint, top, total, raw_top)
        if with_logp:
            for j in range(n_rows):
                value = top[j] + log_positive(total[j])
                out[start + j] = value if raw_top[j] != -np.inf else -np.inf
        _block_cotangent_over_total(g, start, n_rows, total)
        _block_accumulate(n_rows, means, xb, joint, total, s0, s1, s2)
    g_log_w, g_means, g_sd = _finish_gradients(half_prec, obs_sd, s0, s1, s2)
    return out, g_log_w, g_means, g_sd


@numba.njit(**_JIT)
def grad_parameters_kernel(x, log_w, means, obs_sd, g):
    """Eqs. (2)-(4): gradients w.r.t. (log_w, means, obs_sd) of sum_i g_i log p(x_i).

    ``g`` has length N, or 1 (the same cotangent for every observation).
    """
    _, g_log_w, g_means, g_sd = _gradients_and_maybe_logp(x, log_w, means, obs_sd, g, False)
    return g_log_w, g_means, g_sd


@numba.njit(**_JIT)
def logp_and_grad_parameters_kernel(x, log_w, means, obs_sd, g):
    """Eq. (1) per observation and eqs. (2)-(4), in one pass over the data."""
    return _gradients_and_maybe_logp(x, log_w, means, obs_sd, g, True)


@numba.njit(**_JIT)
def grad_value_kernel(x, log_w, means, obs_sd, g):
    """Eq. (5): gradient w.r.t. x of sum_i g_i log p(x_i), (N, D)."""
    n_samples, n_features = x.shape
    n_components = means.shape[0]
    const, half_prec = _component_constants(log_w, obs_sd)
    joint = np.empty((n_components, BLOCK))
    top = np.empty(BLOCK)
    total = np.empty(BLOCK)
    raw_top = np.empty(BLOCK)
    xb = np.empty((x.shape[1], BLOCK))
    g_x = np.zeros((n_samples, n_features))
    for start in range(0, n_samples, BLOCK):
        n_rows = min(BLOCK, n_samples - start)
        _block_logp(x, start, n_rows, means, const, half_prec, xb, joint, top, total, raw_top)
        resp, tot = joint, total
        _block_cotangent_over_total(g, start, n_rows, tot)
        for d in range(n_features):
            column = xb[d]
            acc = top  # reused as scratch: sum over k
            for j in range(n_rows):
                acc[j] = 0.0
            for k in range(n_components):
                row = resp[k]
                mu = means[k, d]
                prec = 2.0 * half_prec[k, d]
                for j in range(n_rows):
                    acc[j] -= row[j] * tot[j] * (column[j] - mu) * prec  # g_i r_ik ...
            for j in range(n_rows):
                g_x[start + j, d] = acc[j]
    return g_x
