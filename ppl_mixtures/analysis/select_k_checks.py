"""The checks of :func:`ppl_mixtures.select_k`'s arguments, made once before any fit
(:func:`check_arguments`; the CLI calls it too, so a bad argument costs no fit)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ppl_mixtures.analysis.select_k_criteria import CRITERIA
from ppl_mixtures.model.spec import MixtureSpec
from ppl_mixtures.validation import check_points, describe

__all__ = [
    "DEFAULT_CRITERIA",
    "DP_EXTRA_COMPONENTS",
    "check_arguments",
    "check_options",
    "spec_for",
]

#: The criteria computed by default: the conjugate ones (seconds) and the exact evidence
#: when the data are tiny. ``"smc"`` and ``"loo"`` run a sampler per K: ask for them.
DEFAULT_CRITERIA = ("elbo", "elbo_logk", "exact", "bic", "aic", "icl", "dp")
#: The DP's truncation level is max(ks) + this (the occupied count can exceed max(ks)).
DP_EXTRA_COMPONENTS = 4


def _check_ks(ks: Any, n_samples: int) -> tuple[int, ...]:
    hint = "Pass e.g. ks=range(1, 7)"
    if isinstance(ks, str | bytes) or not isinstance(ks, Iterable):
        raise TypeError(f"ks: expected a sequence of integers >= 1, got {describe(ks)}. {hint}.")
    values = list(ks)
    if not values:
        raise ValueError(f"ks: expected at least one K, got an empty sequence. {hint}.")
    for k in values:
        if isinstance(k, bool) or not isinstance(k, int | np.integer):
            raise TypeError(f"ks: expected integers, got {describe(k)}. {hint}.")
        if k < 1:
            raise ValueError(f"ks: expected integers >= 1, got {int(k)}. {hint}.")
        if k > n_samples:
            raise ValueError(
                f"ks: expected every K at most the number of points N = {n_samples}, got "
                f"{int(k)}. Drop the larger K, or use more data."
            )
    repeated = sorted({int(k) for k in values if values.count(k) > 1})
    if repeated:
        raise ValueError(
            f"ks: expected distinct values, got {repeated[0]} more than once. List each K once."
        )
    return tuple(sorted(int(k) for k in values))


def _check_criteria(criteria: Any) -> tuple[str, ...]:
    names = ", ".join(repr(c) for c in CRITERIA)
    if isinstance(criteria, str):
        criteria = tuple(CRITERIA) if criteria == "all" else (criteria,)
    if not isinstance(criteria, Iterable):
        raise TypeError(
            f"criteria: expected names among {names} (or 'all'), got {describe(criteria)}. "
            f"Pass e.g. criteria=('elbo', 'bic')."
        )
    chosen = list(dict.fromkeys(criteria))
    if not chosen:
        raise ValueError(
            f"criteria: expected at least one of {names}, got an empty sequence. Pass e.g. "
            f"criteria=('elbo', 'bic')."
        )
    for name in chosen:
        if name not in CRITERIA:
            raise ValueError(
                f"criteria: expected names among {names} (or 'all'), got {describe(name)}. "
                f"Pick from those."
            )
    return tuple(c for c in CRITERIA if c in chosen)  # the table's column order


def check_options(name: str, options: Any) -> dict[str, Any]:
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise TypeError(
            f"{name}: expected a dict of engine options or None, got {describe(options)}. "
            f"Pass e.g. {name}={{'random_seed': 1}}."
        )
    return dict(options)


def spec_for(spec: MixtureSpec, k: int) -> MixtureSpec:
    try:
        return dataclasses.replace(spec, n_components=k)
    except ValueError as err:
        raise ValueError(
            f"spec: expected a spec that holds for every K in ks, got one that fails at "
            f"n_components={k} ({err}). Use a scalar dirichlet_alpha and one obs_cov matrix "
            f"shared by the components."
        ) from err


def check_arguments(
    points: Any,
    spec: Any,
    ks: Any,
    criteria: Any = DEFAULT_CRITERIA,
    dp_truncation: Any = None,
) -> tuple[np.ndarray, tuple[int, ...], tuple[str, ...], int]:
    """:func:`select_k`'s checks of its data, model, ks, criteria and truncation, before any
    fit: (points as float64, sorted ks, criteria in table order, the DP's truncation)."""
    data = check_points(points)
    if not isinstance(spec, MixtureSpec):
        raise TypeError(
            f"spec: expected a MixtureSpec, got {type(spec).__name__}. Build one with "
            f"MixtureSpec(n_components=...) (its n_components is replaced by each K)."
        )
    if spec.weights == "dp":
        raise ValueError(
            "spec: expected Dirichlet or fixed weights (each row is a finite K-component "
            "mixture), got weights='dp'. Pass the finite spec; the 'dp' criterion builds "
            "the DP version of it."
        )
    ks_ = _check_ks(ks, data.shape[0])
    chosen = _check_criteria(criteria)
    n_samples = data.shape[0]
    default = min(max(ks_) + DP_EXTRA_COMPONENTS, n_samples)
    truncation = default if dp_truncation is None else dp_truncation
    if "dp" in chosen and (isinstance(truncation, bool) or not isinstance(truncation, int)):
        raise TypeError(
            f"dp_truncation: expected an integer from max(ks) = {max(ks_)} to the number of "
            f"points N = {n_samples}, got {describe(dp_truncation)}. Pass e.g. "
            f"dp_truncation={default}."
        )
    if "dp" in chosen and not max(ks_) <= truncation <= n_samples:
        raise ValueError(
            f"dp_truncation: expected an integer from max(ks) = {max(ks_)} to the number of "
            f"points N = {n_samples}, got {truncation}. Pass e.g. dp_truncation={default}."
        )
    for k in ks_:
        spec_for(spec, k)
    spec.check_features(data.shape[1])
    return data, ks_, chosen, int(truncation)
