"""Label switching: align components across draws, chains and engines.

A mixture's likelihood is unchanged when its components are permuted, so a sampler may
visit any of the K! labelings (across chains, or within one). Averages over such draws mix
components, and R-hat across chains that chose different labelings is large even when each
chain converged. Two remedies:

- prevention: ``MixtureSpec(ordered=True)`` constrains ``means[:, 0]`` to increase;
- cure (this module): permute each draw's components to match a reference, by the
  minimum-cost assignment on the means (squared Euclidean distance).

The algorithm (a k-means-like relabeling in the spirit of Stephens 2000 and Celeux 1998):

1. start from a reference: the given one, or a single draw (the middle draw of chain 0);
2. give every draw the permutation of its components closest to the reference; a chain
   that sits in another labeling as a whole is moved as a block, a switch inside a chain
   is fixed from the draw where it happens;
3. without a given reference, replace it by the mean of the aligned draws and repeat 2
   until no label moves (a single draw is a sharp start; the mean is a stable target).

The assignment enumerates the K! permutations, vectorized over draws, for K <= 6, and
calls ``scipy.optimize.linear_sum_assignment`` per draw for larger K. On exact ties the
identity wins, so an aligned posterior is returned bit for bit.

Truncated Dirichlet-process fits (``spec.weights == "dp"``). Their components are not
exchangeable a priori (stick k is broken before stick k + 1), but the likelihood is, and
samplers still swap sticks of similar size (across chains, and within one when two
weights are close), so DP fits are relabeled like the others, with two changes:

- the cost of giving draw s's component j a label is its squared distance times its
  weight w_sj. An unoccupied component (weight near 0) has a mean drawn from the prior,
  anywhere; unweighted, its distance would pull occupied components out of place. With
  the weight, occupied components are matched by their means and unoccupied ones are
  labeled at (almost) no cost;
- a variational fit (one chain of independent draws from q) is permuted as a block: q
  has no label switching inside it, and per-draw assignments would only reorder the
  unoccupied components' prior draws, which changes their marginals.

Overfitted finite mixtures (a sparse Dirichlet, e.g. ``dirichlet_alpha=0.01`` with more
components than clusters) have the same unoccupied components with prior-drawn means, so
they get the same two changes whenever, in at least half the draws, some component is
empty: its expected count N w_k is below 1 (:func:`_has_empty_components`). A fit whose every
component holds points is relabeled exactly as before.

After relabeling, the components carry the reference's labels, not stick positions:
``weights[k]`` is no longer the k-th stick's weight, so the stick variables
(``dp_sticks``, ``dp_neg_log_rest``, dims ``component_stick``) are dropped from a
relabeled posterior when any draw moved (they describe the original stick order);
``dp_alpha`` does not depend on labels and is kept.

A permutation is applied to the whole draw at once, to every posterior variable with a
``component`` dimension (means, weights, obs_sd, ...), so a draw's components are never
mixed. Latent assignments ``z`` (dims chain, draw, obs; values are component labels, as
the ``latent_gibbs`` engine stores them) are mapped to the new labels too, and
responsibilities computed from the relabeled fit follow the same labels.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from ppl_mixtures.results import MixtureFit, Relabeling

__all__ = ["align_permutations", "apply_permutations", "relabel"]

logger = logging.getLogger(__name__)

#: Largest K for which all K! permutations are enumerated (720 at K = 6).
_MAX_ENUMERATED_K = 6
#: Elements of the (draws, K!, K) cost array built at once.
_CHUNK_ELEMENTS = 2**21
#: Posterior variables whose *values* are component labels (dims chain, draw, obs).
LABEL_VARIABLES = ("z",)


def _assign_enumerated(cost: np.ndarray) -> np.ndarray:
    """Minimum-cost permutation per draw by enumeration.

    Parameters
    ----------
    cost : ndarray of shape (n, K, K)
        ``cost[s, i, j]``: cost of giving draw s's component j the reference label i.

    Returns
    -------
    ndarray of int, shape (n, K)
        ``perm[s, i]`` is the component of draw s that takes label i.
    """
    n, n_components, _ = cost.shape
    candidates = np.array(list(itertools.permutations(range(n_components))))  # identity first
    rows = np.arange(n_components)
    perms = np.empty((n, n_components), dtype=np.intp)
    step = max(1, _CHUNK_ELEMENTS // (candidates.size))
    for start in range(0, n, step):
        block = cost[start : start + step]  # (b, K, K)
        total = block[:, rows, candidates].sum(-1)  # (b, K!)
        perms[start : start + step] = candidates[np.argmin(total, axis=-1)]
    return perms


def _assign_hungarian(cost: np.ndarray) -> np.ndarray:
    """Same contract as :func:`_assign_enumerated`, one Hungarian solve per draw."""
    perms = np.empty(cost.shape[:2], dtype=np.intp)
    for s in range(cost.shape[0]):
        _, perms[s] = linear_sum_assignment(cost[s])
    return perms


def _assign(
    means: np.ndarray,
    reference: np.ndarray,
    weights: np.ndarray | None = None,
    block: bool = False,
) -> np.ndarray:
    """Permutations (n_chains, n_draws, K) taking every draw's means closest to ``reference``.

    ``weights`` (n_chains, n_draws, K): each draw component's squared distance is scaled by
    its weight (DP fits). ``block``: one permutation per chain, minimizing the summed cost
    over its draws."""
    n_chains, n_draws, n_components, _ = means.shape
    cost = (
        (
            reference[None, :, None, :]
            - means.reshape(-1, n_components, 1, means.shape[-1]).swapaxes(1, 2)
        )
        ** 2
    ).sum(-1)  # (n, K_ref, K)
    if weights is not None:
        cost = cost * weights.reshape(-1, 1, n_components)
    solve = _assign_enumerated if n_components <= _MAX_ENUMERATED_K else _assign_hungarian
    if block:
        per_chain = solve(cost.reshape(n_chains, n_draws, n_components, n_components).sum(1))
        return np.repeat(per_chain[:, None, :], n_draws, axis=1)
    return solve(cost).reshape(n_chains, n_draws, n_components)


def _permute(draws: np.ndarray, perms: np.ndarray) -> np.ndarray:
    """``draws[c, s, perms[c, s]]`` for draws of shape (C, S, K, ...)."""
    index = perms.reshape(perms.shape + (1,) * (draws.ndim - 3))
    return np.take_along_axis(draws, index, axis=2)


def align_permutations(
    means: np.ndarray,
    reference: np.ndarray | None = None,
    max_iter: int = 20,
    *,
    weights: np.ndarray | None = None,
    block: bool = False,
) -> np.ndarray:
    """Permutations that align every draw's components to a reference.

    Parameters
    ----------
    means : ndarray of shape (n_chains, n_draws, n_components, n_features)
    reference : ndarray of shape (n_components, n_features), optional
        Target labeling. By default a single draw (the middle draw of chain 0) starts
        the iteration, and the reference is then refined to the mean of the aligned draws
        until no label moves.
    max_iter : int
        Refinement rounds when ``reference`` is None.
    weights : ndarray of shape (n_chains, n_draws, n_components), optional
        Scale each draw component's squared distance by its weight (what :func:`relabel`
        does for DP fits: unoccupied components, whose means are prior draws, then cost
        almost nothing wherever they are). None: unweighted distances.
    block : bool
        One permutation per chain (the minimum of the cost summed over its draws) instead
        of one per draw: for independent draws from a variational q.

    Returns
    -------
    perms : ndarray of int, shape (n_chains, n_draws, n_components)
        ``means[c, s, perms[c, s]]`` is draw (c, s) in the reference's labels.

    Examples
    --------
    >>> means = np.array([[[[0.0], [5.0]], [[5.0], [0.0]]]])   # (1 chain, 2 draws, K=2, D=1)
    >>> align_permutations(means, reference=np.array([[0.0], [5.0]]))[0].tolist()
    [[0, 1], [1, 0]]
    """
    means = np.asarray(means, dtype=np.float64)
    if means.ndim != 4:
        raise ValueError(
            f"means: expected an array of shape (n_chains, n_draws, n_components, "
            f"n_features), got shape {means.shape}. Pass fit.draws('means')."
        )
    n_chains, n_draws, n_components, _ = means.shape
    if n_components == 1:
        return np.zeros((n_chains, n_draws, 1), dtype=np.intp)
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != means.shape[:3]:
            raise ValueError(
                f"weights: expected an array of shape {means.shape[:3]} (n_chains, "
                f"n_draws, n_components) like means, got shape {weights.shape}. Pass "
                f"fit.draws('weights')."
            )
    if reference is not None:
        return _assign(means, np.asarray(reference, dtype=np.float64), weights, block)
    if block and n_chains == 1:  # one block aligned with itself: nothing moves
        return np.broadcast_to(np.arange(n_components), (1, n_draws, n_components)).copy()
    perms = _assign(means, means[0, n_draws // 2], weights, block)
    for _ in range(max_iter - 1):  # max_iter assignments in all, the first from one draw
        new_perms = _assign(means, _permute(means, perms).mean(axis=(0, 1)), weights, block)
        if np.array_equal(new_perms, perms):
            break
        perms = new_perms
    return perms


def apply_permutations(posterior: Any, perms: np.ndarray) -> Any:
    """Permute the components of every draw of an xarray posterior Dataset.

    Parameters
    ----------
    posterior : xarray.Dataset
        Dims ``chain`` and ``draw`` first for the variables that carry them.
    perms : ndarray of int, shape (n_chains, n_draws, n_components)
        From :func:`align_permutations`.

    Returns
    -------
    xarray.Dataset
        A new Dataset: variables with a ``component`` dim are permuted along it; label
        variables (``z``) get their values mapped, ``new = inverse(perm)[old]``; everything
        else is unchanged.
    """
    out = posterior.copy()
    inverse = np.argsort(perms, axis=-1)  # inverse[c, s, perms[c, s, j]] = j
    for name, var in posterior.data_vars.items():
        if "component" in var.dims:
            moved = var.transpose("chain", "draw", "component", ...)
            values = _permute(np.asarray(moved.values), perms)
            out[name] = moved.copy(data=values).transpose(*var.dims)
        elif name in LABEL_VARIABLES and var.dims[:2] == ("chain", "draw"):
            labels = np.asarray(var.values)
            flat = labels.reshape(labels.shape[0], labels.shape[1], -1)
            mapped = np.take_along_axis(inverse, flat, axis=2).reshape(labels.shape)
            out[name] = var.copy(data=mapped.astype(labels.dtype))
    return out


def _rhat_max(fit: MixtureFit) -> float | None:
    if fit.n_chains < 2 or fit.n_draws < 4:
        return None
    import arviz as az

    names = [
        *fit.parameter_names(),
        *(["dp_alpha"] if "dp_alpha" in fit.idata["posterior"] else []),
    ]
    rhat = az.rhat(fit.idata, var_names=names)
    return float(max(np.nanmax(np.asarray(rhat[n].values)) for n in names))


def relabel(fit: MixtureFit, reference: MixtureFit | np.ndarray | None = None) -> MixtureFit:
    """Return a copy of ``fit`` whose draws all use the same component labels.

    Parameters
    ----------
    fit : MixtureFit
    reference : MixtureFit or ndarray of shape (n_components, n_features), optional
        Labels to align to: another fit's posterior-mean means (compare aligns every
        engine to its reference engine this way), explicit means, or None to align the fit
        with itself.

    Returns
    -------
    MixtureFit
        Same engine, timings and options; ``relabeling`` (a
        :class:`~ppl_mixtures.results.Relabeling`) holds the permutations (n_chains,
        n_draws, n_components), how many draws changed labels, and the max R-hat over
        the parameters before and after (None with one chain). The input fit
        is not modified; when no draw moves, the posterior values are the original ones.
        DP fits: weighted costs, a variational fit as one block, and the stick variables
        dropped when draws moved (module docstring).

    Examples
    --------
    >>> aligned = relabel(fit)                                   # doctest: +SKIP
    >>> aligned.relabeling.rhat_before, aligned.relabeling.rhat_after  # doctest: +SKIP
    """
    if not isinstance(fit, MixtureFit):
        raise TypeError(
            f"fit: expected a MixtureFit, got {type(fit).__name__}. Pass the result "
            f"of ppl_mixtures.fit(...)."
        )
    if isinstance(reference, MixtureFit):
        reference = reference.posterior_mean("means")
    means = fit.draws("means")
    if reference is not None:
        reference = np.asarray(reference, dtype=float)
        if reference.shape != means.shape[2:]:
            raise ValueError(
                f"reference: expected means of shape {means.shape[2:]} "
                f"(n_components, n_features), got {reference.shape}. Align fits "
                f"of the same K and data."
            )
    dp = bool(fit.spec.is_dp) and fit.n_components > 1
    weighted = dp or _has_empty_components(fit)  # DP, or an overfitted (sparse) mixture
    perms = align_permutations(
        means,
        reference,
        weights=fit.draws("weights") if weighted else None,
        block=weighted and fit.family == "vi" and fit.n_chains == 1,
    )
    identity = np.arange(fit.n_components)
    n_moved = int((perms != identity).any(-1).sum())
    idata = fit.idata.copy()
    if n_moved:
        posterior = apply_permutations(fit.idata["posterior"].to_dataset(), perms)
        if dp:  # the sticks describe the original stick order (module docstring)
            posterior = posterior.drop_vars(
                [n for n, v in posterior.data_vars.items() if "component_stick" in v.dims]
            )
        idata["posterior"] = posterior
    relabeled = fit.replace(idata=idata)
    info = Relabeling(
        permutations=perms,
        draws_relabeled=n_moved,
        rhat_before=_rhat_max(fit),
        rhat_after=_rhat_max(relabeled),
    )
    logger.debug(
        "relabel %s: %d draws relabeled, rhat %s -> %s",
        fit.engine,
        n_moved,
        info.rhat_before,
        info.rhat_after,
    )
    return relabeled.replace(relabeling=info)


def _has_empty_components(fit: MixtureFit) -> bool:
    """True when, in at least half the draws, some component's expected count N w_k is
    below 1 (an overfitted mixture's unoccupied component, whichever label it has in that
    draw: labels may switch); False without stored points."""
    if fit.spec.fixed_weights or "observed_data" not in fit.idata.children:
        return False
    n_samples = fit.idata["observed_data"]["x"].shape[0]
    expected = n_samples * fit.draws("weights")  # (chain, draw, K)
    return bool(np.median(expected.min(axis=-1)) < 1.0)
