"""numba kernels of the fused full-covariance mixture density (value; gradients), one pass.

Private to :mod:`ppl_mixtures.kernels.density_full_op`. Inputs: x (N, D), log_w (K,),
means (K, D), prec_chol (K, D, D) -- L_k, the lower Cholesky factor of the precision
Lambda_k = L_k L_k^T (the upper triangle is never read) -- float64. With d = x_n - mu_k and
z = L_k^T d (z_j = sum_{i >= j} L_k,ij d_i)::

    l_nk       = log w_k - D/2 log 2 pi + sum_i log L_k,ii - 1/2 ||z||^2                  (1)
    log p(x_n) = logsumexp_k l_nk                                                          (2)

With g_n the incoming gradient of log p(x_n) and r_nk = p(z_n = k | x_n) (d l / d mu = L z,
d l / d L_ij = [i = j] / L_ii - d_i z_j), the gradient of sum_n g_n log p(x_n) is::

    d/dlog w_k = s0_k = sum_n g_n r_nk                                                     (3)
    d/dmu_k    = L_k s1_k,       s1_k = sum_n g_n r_nk z_nk                                (4)
    d/dL_k,ij  = [i = j] s0_k / L_k,ii - sum_n g_n r_nk d_nki z_nkj   (i >= j; 0 above)     (5)
    d/dx_n     = -sum_k g_n r_nk L_k z_nk                                                  (6)

Layout (as :mod:`ppl_mixtures.kernels.density`): rows are processed in blocks of ``BLOCK``
held transposed in small scratch arrays, every inner loop runs over the rows of a block
(unit stride, vectorized by LLVM), exp / log are the branch-free versions of
:mod:`ppl_mixtures.kernels.numba_math`, and the log-sum-exp subtracts the row maximum, so
points far from every mean stay finite. Differences x - mu are formed directly.

Determinism: the data are cut into chunks of ``CHUNK`` rows (a constant, not the thread
count). Each chunk sums its statistics in per-lane accumulators reduced in a fixed order,
and the chunks' sums are added in chunk order, so the serial kernels and the parallel ones
(``parallel=True``: chunks spread over numba's threads with ``prange``) return the same
bits on any number of threads.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from ppl_mixtures.kernels.numba_math import exp_nonpositive, log_positive

LOG_2PI = float(np.log(2.0 * np.pi))
BLOCK = 256
CHUNK = 16 * BLOCK  # rows per chunk: the unit of parallel work and of the fixed reduction order

_JIT: dict[str, Any] = dict(cache=True, error_model="numpy")


@numba.njit(**_JIT)
def _check_shapes(x, log_w, means, prec_chol, g):
    """The kernels index without bounds checks: refuse inputs whose shapes disagree."""
    n_components, n_features = means.shape
    if x.shape[1] != n_features or log_w.shape[0] != n_components:
        raise ValueError("full mixture density: x (N, D), log_w (K,), means (K, D) disagree")
    if prec_chol.shape[0] != n_components or prec_chol.shape[1] != n_features:
        raise ValueError("full mixture density: prec_chol must be (K, D, D) like means (K, D)")
    if prec_chol.shape[2] != n_features:
        raise ValueError("full mixture density: prec_chol must be (K, D, D) like means (K, D)")
    if g.shape[0] != 1 and g.shape[0] != x.shape[0]:
        raise ValueError("full mixture density: the cotangent g must have length 1 or N")


@numba.njit(**_JIT)
def _component_constants(log_w, prec_chol):
    """log w_k - D/2 log 2 pi + sum_i log L_k,ii, shape (K,)."""
    n_components, n_features, _ = prec_chol.shape
    const = np.empty(n_components)
    for k in range(n_components):
        acc = log_w[k] - 0.5 * n_features * LOG_2PI
        for i in range(n_features):
            acc += np.log(prec_chol[k, i, i])
        const[k] = acc
    return const


@numba.njit(**_JIT)
def _block_log_joint(x, start, n_rows, means, prec_chol, const, xb, db, zb, joint, top):
    """joint[k, j] = l_{start+j, k} of eq. (1), zb[k] = z (D, BLOCK), top[j] = max_k joint.

    xb receives the block of x transposed (D, BLOCK); db is scratch for x - mu_k.
    """
    n_components, n_features = means.shape
    for i in range(n_features):
        column = xb[i]
        for j in range(n_rows):
            column[j] = x[start + j, i]
    for k in range(n_components):
        for i in range(n_features):
            mu = means[k, i]
            column = xb[i]
            diff = db[i]
            for j in range(n_rows):
                diff[j] = column[j] - mu
        row = joint[k]
        c = const[k]
        for j in range(n_rows):
            row[j] = c
        for a in range(n_features):  # z_a = sum_{i >= a} L_ia d_i
            za = zb[k, a]
            lia = prec_chol[k, a, a]
            diff = db[a]
            for j in range(n_rows):
                za[j] = lia * diff[j]
            for i in range(a + 1, n_features):
                lia = prec_chol[k, i, a]
                diff = db[i]
                for j in range(n_rows):
                    za[j] += lia * diff[j]
            for j in range(n_rows):
                row[j] -= 0.5 * za[j] * za[j]
    first = joint[0]
    for j in range(n_rows):
        top[j] = first[j]
    for k in range(1, n_components):
        row = joint[k]
        for j in range(n_rows):
            if row[j] > top[j]:
                top[j] = row[j]


@numba.njit(**_JIT)
def _block_normalize(n_rows, joint, top, total, raw_top):
    """joint <- exp(joint - top), total = sum_k of it (in [1, K]); raw_top keeps the max."""
    for j in range(n_rows):
        raw_top[j] = top[j]
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
def _block_write_logp(start, n_rows, top, total, raw_top, out):
    for j in range(n_rows):
        value = top[j] + log_positive(total[j])
        out[start + j] = value if raw_top[j] != -np.inf else -np.inf


@numba.njit(**_JIT)
def _block_weights(g, start, n_rows, joint, total):
    """joint[k, j] <- g_n r_nk (g of length 1 is broadcast; 0 where total is 0)."""
    for j in range(n_rows):
        gn = g[0] if g.shape[0] == 1 else g[start + j]
        total[j] = gn / total[j] if total[j] > 0.0 else 0.0
    for k in range(joint.shape[0]):
        row = joint[k]
        for j in range(n_rows):
            row[j] *= total[j]


@numba.njit(**_JIT)
def _block_accumulate(n_rows, means, xb, db, zb, joint, s0, s1, s2):
    """Add g r, g r z_a and g r d_i z_a (i >= a, packed row-major) to the per-lane sums."""
    n_components, n_features = means.shape
    for k in range(n_components):
        row = joint[k]
        lane0 = s0[k]
        for j in range(n_rows):
            lane0[j] += row[j]
        for i in range(n_features):
            mu = means[k, i]
            column = xb[i]
            diff = db[i]
            for j in range(n_rows):
                diff[j] = column[j] - mu
        t = 0
        for i in range(n_features):
            diff = db[i]
            for a in range(i + 1):
                za = zb[k, a]
                lane2 = s2[k, t]
                for j in range(n_rows):
                    lane2[j] += row[j] * diff[j] * za[j]
                t += 1
        for a in range(n_features):
            za = zb[k, a]
            lane1 = s1[k, a]
            for j in range(n_rows):
                lane1[j] += row[j] * za[j]


@numba.njit(**_JIT)
def _chunk_pass(x, log_w, means, prec_chol, g, const, chunk, with_logp, with_grad, out, stats):
    """Rows [chunk * CHUNK, ...) of eq. (2) into ``out`` and/or the sums s0, s1, s2 of this
    chunk into ``stats[chunk]`` (K, 1 + D + D (D + 1) / 2)."""
    n_samples = x.shape[0]
    n_components, n_features = means.shape
    n_tri = n_features * (n_features + 1) // 2
    xb = np.empty((n_features, BLOCK))
    db = np.empty((n_features, BLOCK))
    zb = np.empty((n_components, n_features, BLOCK))
    joint = np.empty((n_components, BLOCK))
    top = np.empty(BLOCK)
    total = np.empty(BLOCK)
    raw_top = np.empty(BLOCK)
    n_lanes = BLOCK if with_grad else 1
    s0 = np.zeros((n_components, n_lanes))
    s1 = np.zeros((n_components, n_features, n_lanes))
    s2 = np.zeros((n_components, n_tri, n_lanes))
    stop = min(n_samples, (chunk + 1) * CHUNK)
    for start in range(chunk * CHUNK, stop, BLOCK):
        n_rows = min(BLOCK, stop - start)
        _block_log_joint(x, start, n_rows, means, prec_chol, const, xb, db, zb, joint, top)
        _block_normalize(n_rows, joint, top, total, raw_top)
        if with_logp:
            _block_write_logp(start, n_rows, top, total, raw_top, out)
        if with_grad:
            _block_weights(g, start, n_rows, joint, total)
            _block_accumulate(n_rows, means, xb, db, zb, joint, s0, s1, s2)
    if with_grad:
        for k in range(n_components):
            stats[chunk, k, 0] = s0[k].sum()
            for a in range(n_features):
                stats[chunk, k, 1 + a] = s1[k, a].sum()
            for t in range(n_tri):
                stats[chunk, k, 1 + n_features + t] = s2[k, t].sum()


@numba.njit(**_JIT)
def _chunks_serial(x, log_w, means, prec_chol, g, const, with_logp, with_grad, out, stats):
    for chunk in range(stats.shape[0]):
        _chunk_pass(x, log_w, means, prec_chol, g, const, chunk, with_logp, with_grad, out, stats)


@numba.njit(parallel=True, **_JIT)
def _chunks_parallel(x, log_w, means, prec_chol, g, const, with_logp, with_grad, out, stats):
    for chunk in numba.prange(stats.shape[0]):
        _chunk_pass(x, log_w, means, prec_chol, g, const, chunk, with_logp, with_grad, out, stats)


@numba.njit(**_JIT)
def _run(x, log_w, means, prec_chol, g, with_logp, with_grad, parallel):
    """Eq. (2) per row (if with_logp) and the sums s0, s1, s2 over all rows (K, n_stats)."""
    n_samples = x.shape[0]
    n_components, n_features = means.shape
    n_chunks = (n_samples + CHUNK - 1) // CHUNK
    _check_shapes(x, log_w, means, prec_chol, g)
    const = _component_constants(log_w, prec_chol)
    out = np.empty(n_samples if with_logp else 0)
    n_stats = 1 + n_features + n_features * (n_features + 1) // 2
    n_kept = n_components if with_grad else 0  # one row per chunk in every case
    stats = np.zeros((n_chunks, n_kept, n_stats if with_grad else 0))
    if parallel:
        _chunks_parallel(x, log_w, means, prec_chol, g, const, with_logp, with_grad, out, stats)
    else:
        _chunks_serial(x, log_w, means, prec_chol, g, const, with_logp, with_grad, out, stats)
    total = np.zeros((n_components, n_stats))
    if with_grad:
        for chunk in range(n_chunks):  # fixed order: the same bits serial or parallel
            total += stats[chunk]
    return out, total


@numba.njit(**_JIT)
def _finish_gradients(prec_chol, total):
    """Eqs. (3)-(5) from the summed statistics."""
    n_components, n_features, _ = prec_chol.shape
    g_log_w = np.empty(n_components)
    g_means = np.zeros((n_components, n_features))
    g_chol = np.zeros((n_components, n_features, n_features))
    for k in range(n_components):
        s0 = total[k, 0]
        g_log_w[k] = s0
        for i in range(n_features):
            acc = 0.0
            for a in range(i + 1):
                acc += prec_chol[k, i, a] * total[k, 1 + a]
            g_means[k, i] = acc
        t = 0
        for i in range(n_features):
            for a in range(i + 1):
                g_chol[k, i, a] = -total[k, 1 + n_features + t]
                t += 1
            g_chol[k, i, i] += s0 / prec_chol[k, i, i]
    return g_log_w, g_means, g_chol


@numba.njit(**_JIT)
def logp_kernel(x, log_w, means, prec_chol, parallel=False):
    """Eq. (2) for every observation, shape (N,)."""
    out, _ = _run(x, log_w, means, prec_chol, np.ones(1), True, False, parallel)
    return out


@numba.njit(**_JIT)
def grad_parameters_kernel(x, log_w, means, prec_chol, g, parallel=False):
    """Eqs. (3)-(5): gradients w.r.t. (log_w, means, prec_chol) of sum_n g_n log p(x_n).

    ``g`` has length N, or 1 (the same cotangent for every observation).
    """
    _, total = _run(x, log_w, means, prec_chol, g, False, True, parallel)
    return _finish_gradients(prec_chol, total)


@numba.njit(**_JIT)
def logp_and_grad_parameters_kernel(x, log_w, means, prec_chol, g, parallel=False):
    """Eq. (2) per observation and eqs. (3)-(5), in one pass over the data."""
    out, total = _run(x, log_w, means, prec_chol, g, True, True, parallel)
    g_log_w, g_means, g_chol = _finish_gradients(prec_chol, total)
    return out, g_log_w, g_means, g_chol


@numba.njit(**_JIT)
def grad_value_kernel(x, log_w, means, prec_chol, g):
    """Eq. (6): gradient w.r.t. x of sum_n g_n log p(x_n), (N, D). Serial (no reduction)."""
    n_samples, n_features = x.shape
    n_components = means.shape[0]
    _check_shapes(x, log_w, means, prec_chol, g)
    const = _component_constants(log_w, prec_chol)
    xb = np.empty((n_features, BLOCK))
    db = np.empty((n_features, BLOCK))
    zb = np.empty((n_components, n_features, BLOCK))
    joint = np.empty((n_components, BLOCK))
    top = np.empty(BLOCK)
    total = np.empty(BLOCK)
    raw_top = np.empty(BLOCK)
    acc = np.empty(BLOCK)
    g_x = np.empty((n_samples, n_features))
    for start in range(0, n_samples, BLOCK):
        n_rows = min(BLOCK, n_samples - start)
        _block_log_joint(x, start, n_rows, means, prec_chol, const, xb, db, zb, joint, top)
        _block_normalize(n_rows, joint, top, total, raw_top)
        _block_weights(g, start, n_rows, joint, total)
        for i in range(n_features):
            for j in range(n_rows):
                acc[j] = 0.0
            for k in range(n_components):
                row = joint[k]
                for a in range(i + 1):  # (L z)_i = sum_{a <= i} L_ia z_a
                    lia = prec_chol[k, i, a]
                    za = zb[k, a]
                    for j in range(n_rows):
                        acc[j] -= row[j] * lia * za[j]
            for j in range(n_rows):
                g_x[start + j, i] = acc[j]
    return g_x
