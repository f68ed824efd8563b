"""The package's warnings and errors, and :func:`describe`, which every message uses."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["DataScaleWarning", "EvidenceWarning", "NumericalError", "describe"]


class NumericalError(RuntimeError):
    """An engine produced non-finite numbers (NaN/inf means, weights, obs_sd or ELBO).

    Raised by :func:`ppl_mixtures.fit` instead of returning such a fit. The usual cause is
    data far from the priors' scale or extreme priors: standardize the data
    (``ppl_mixtures.datasets.standardize``) and use priors on the unit scale.
    """


class DataScaleWarning(UserWarning):
    """The data sit far from the scale the spec's priors assume (see :func:`check_data_scale`)."""


class EvidenceWarning(UserWarning):
    """SMC's log-evidence estimate is not trustworthy (below an ELBO, or runs disagree)."""


def describe(value: Any) -> str:
    """A short description of ``value`` for error messages (type, shape, a few entries)."""
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    if isinstance(value, str):
        return repr(value) if len(value) <= 40 else repr(value[:37] + "...")
    if isinstance(value, list | tuple) and len(value) > 6:
        return f"{type(value).__name__} of length {len(value)}"
    return repr(value)
