"""Label switching: align components across draws, chains and engines.

A mixture's likelihood is unchanged when its components are permuted, so a sampler may
visit any of the K! labelings (across chains, or within one). Averages over such draws mix
components, and R-hat across chains that chose different labelings is large even when each
chain converged. Two remedies:

- prevention: ``MixtureSpec(ordered=True)`` constrains ``means[:, 0]`` to increase;
- cure (this module): permute each draw's components to match a reference, by the
  minimum-cost assignment on the means (``scipy.optimize.linear_sum_assignment``), first
  per chain (on the chain's mean), then per draw, iterating until no label moves.

A permutation is applied to the whole draw at once, to every posterior variable with a
``component`` dimension (means, weights, obs_sd, ...), so a draw's components are never
mixed; responsibilities computed from the relabeled fit follow the same labels.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from .results import MixtureFit

__all__ = ["align_permutations", "apply_permutations", "relabel"]

logger = logging.getLogger(__name__)


def _best_permutation(means: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """perm such that means[perm] is closest to reference (squared Euclidean), shape (K,)."""
    cost = ((reference[:, None, :] - means[None, :, :]) ** 2).sum(-1)  # (K_ref, K)
    _, perm = linear_sum_assignment(cost)
    return perm


def align_permutations(means: np.ndarray, reference: np.ndarray | None = None,
                       max_iter: int = 20) -> np.ndarray:
    """Permutations that align every draw's components to a reference.

    Parameters
    ----------
    means : ndarray of shape (n_chains, n_draws, n_components, n_features)
    reference : ndarray of shape (n_components, n_features), optional
        Target labeling. By default a single draw (the middle draw of chain 0) starts
        the iteration, and the reference is then refined to the mean of the aligned draws
        (a draw is a sharp configuration; a chain average may blur components together).
    max_iter : int
        Refinement rounds when ``reference`` is None.

    Returns
    -------
    perms : ndarray of int, shape (n_chains, n_draws, n_components)
        ``means[c, s, perms[c, s]]`` is draw (c, s) in the reference's labels.
    """
    n_chains, n_draws, n_components, _ = means.shape
    identity = np.broadcast_to(np.arange(n_components), (n_chains, n_draws, n_components))
    if n_components == 1:
        return identity.copy()
    fixed_reference = reference is not None
    ref = np.asarray(reference, float) if fixed_reference else means[0, n_draws // 2]
    perms = identity.copy()
    for _ in range(1 if fixed_reference else max_iter):
        # per chain: move each chain as a block onto the reference
        chain_perm = np.stack([_best_permutation(means[c].mean(0), ref) for c in range(n_chains)])
        by_chain = np.take_along_axis(means, chain_perm[:, None, :, None], axis=2)
        # per draw: fix the switches that happen inside a chain
        draw_perm = np.empty_like(perms)
        for c in range(n_chains):
            for s in range(n_draws):
                draw_perm[c, s] = _best_permutation(by_chain[c, s], ref)
        new_perms = np.take_along_axis(np.broadcast_to(chain_perm[:, None, :], perms.shape),
                                       draw_perm, axis=2)
        aligned = np.take_along_axis(means, new_perms[..., None], axis=2)
        converged = np.array_equal(new_perms, perms)
        perms = new_perms
        if fixed_reference or converged:
            break
        ref = aligned.mean(axis=(0, 1))
    return perms


def apply_permutations(posterior: Any, perms: np.ndarray) -> Any:
    """Permute every variable with a ``component`` dim of an xarray Dataset, per draw."""
    import xarray as xr

    perm_da = xr.DataArray(perms, dims=("chain", "draw", "_component_to"))
    out = posterior.copy()
    for name, var in posterior.data_vars.items():
        if "component" not in var.dims:
            continue
        permuted = var.isel(component=perm_da).rename({"_component_to": "component"})
        out[name] = permuted.transpose(*var.dims).assign_coords(component=var["component"].values)
    return out


def _rhat_max(fit: MixtureFit) -> float | None:
    if fit.n_chains < 2 or fit.n_draws < 4:
        return None
    import arviz as az

    names = list(fit.parameter_names())
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
        Same engine, timings and options; ``extras["relabel"]`` holds the permutations,
        how many draws changed labels, and the max R-hat over the parameters before and
        after (None with one chain).
    """
    if isinstance(reference, MixtureFit):
        reference = reference.posterior_mean("means")
    means = fit.draws("means")
    if reference is not None:
        reference = np.asarray(reference, dtype=float)
        if reference.shape != means.shape[2:]:
            raise ValueError(f"reference: expected means of shape {means.shape[2:]} "
                             f"(n_components, n_features), got {reference.shape}. Align fits "
                             f"of the same K and data.")
    perms = align_permutations(means, reference)
    identity = np.arange(fit.n_components)
    n_moved = int((perms != identity).any(-1).sum())
    idata = fit.idata.copy()
    if n_moved:
        idata["posterior"] = apply_permutations(fit.idata["posterior"].to_dataset(), perms)
    relabeled = fit.replace(idata=idata)
    info = {"permutations": perms, "draws_relabeled": n_moved,
            "rhat_before": _rhat_max(fit), "rhat_after": _rhat_max(relabeled)}
    logger.debug("relabel %s: %d draws relabeled, rhat %s -> %s", fit.engine, n_moved,
                 info["rhat_before"], info["rhat_after"])
    return relabeled.replace(extras={**fit.extras, "relabel": info})
