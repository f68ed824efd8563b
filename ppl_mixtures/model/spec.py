"""`MixtureSpec`: the one Gaussian-mixture model every engine fits.

For data x_1..x_N in R^D and K components::

    means_k   ~ Normal(mean_prior_mean, diag(mean_prior_sd^2))          k = 1..K
    weights   ~ Dirichlet(dirichlet_alpha)          or fixed at 1/K
    tau_kd    ~ Gamma(precision_prior_shape, precision_prior_rate)      only if obs_sd="learned"
    z_i       ~ Categorical(weights)                                    (marginalized in PyMC)
    x_id | z_i ~ Normal(means_{z_i, d}, obs_sd_{z_i, d})                obs_sd = tau^{-1/2} if learned

The Gamma is in the shape/rate parameterization (mean shape/rate), the same in every engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ppl_mixtures import validation as v

__all__ = ["MixtureSpec"]

WEIGHTS_CHOICES = ("dirichlet", "fixed")
TRANSFORM_CHOICES = ("stick_breaking", "simplex")


@dataclass(frozen=True)
class MixtureSpec:
    """A Gaussian mixture with diagonal covariances, and its priors.

    Parameters
    ----------
    n_components : int
        K >= 1, the number of mixture components (numpy integers accepted).
    mean_prior_mean : float or sequence of shape (n_features,)
        Prior mean of every component mean, ``abs(value) <= 1e6``.
    mean_prior_sd : float or sequence of shape (n_features,)
        Prior standard deviation of the component means, in [1e-6, 1e6].
    weights : {"dirichlet", "fixed"}
        "dirichlet": weights ~ Dirichlet(dirichlet_alpha). "fixed": every weight is 1/K
        (the model of Blei et al. 2017 §3 and of seed 000).
    dirichlet_alpha : float or sequence of shape (n_components,)
        Dirichlet concentration, in [1e-6, 1e6]. Ignored when ``weights="fixed"``.
    obs_sd : float, sequence of shape (n_features,), or "learned"
        Known observation standard deviation (in [1e-6, 1e6]) shared by all components, or
        "learned": one sd per component and feature with a Gamma prior on the precision
        1/sd^2.
    precision_prior_shape, precision_prior_rate : float
        Gamma(shape, rate) prior on each learned precision, each in [1e-6, 1e6]; used only when
        ``obs_sd="learned"``. The default Gamma(2, 2) has mean 1 (sd near 1 on standardized
        data) and keeps a component that holds few points away from zero variance.
    ordered : bool
        Identifiability: constrain the components so that ``means[:, 0]`` increases. Only
        feature 0 is ordered; ordering a (K, D) array with PyMC's transform would order the
        features within each component instead.
    weights_transform : {"stick_breaking", "simplex"}
        The unconstrained parameterization of the Dirichlet weights for gradient engines:
        our Stan-style stick-breaking transform (default) or PyMC's own simplex transform.

    Prior bounds: every scale and concentration lies in ``validation.PRIOR_SCALE_RANGE``
    = [1e-6, 1e6] and ``abs(mean_prior_mean) <= 1e6``; outside them float64 log-densities
    overflow (e.g. 1/obs_sd^2 for obs_sd=1e-170) and fits would come back NaN. Rescale the data
    (``datasets.standardize``) instead. Out-of-range values raise a ValueError naming the
    argument.

    Examples
    --------
    >>> spec = MixtureSpec(n_components=2, mean_prior_sd=1.0, dirichlet_alpha=0.1, obs_sd=1.0)
    >>> spec.alpha()
    array([0.1, 0.1])
    """

    n_components: int
    mean_prior_mean: float | tuple[float, ...] = 0.0
    mean_prior_sd: float | tuple[float, ...] = 1.0
    weights: Literal["dirichlet", "fixed"] = "dirichlet"
    dirichlet_alpha: float | tuple[float, ...] = 1.0
    obs_sd: float | tuple[float, ...] | Literal["learned"] = 1.0
    precision_prior_shape: float = 2.0
    precision_prior_rate: float = 2.0
    ordered: bool = False
    weights_transform: Literal["stick_breaking", "simplex"] = "stick_breaking"

    def __post_init__(self) -> None:
        setattr_ = object.__setattr__  # frozen: normalize fields in place once
        setattr_(
            self,
            "n_components",
            v.check_int(
                "n_components",
                self.n_components,
                minimum=1,
                hint="A mixture needs at least one component, e.g. n_components=2",
            ),
        )
        # prior bounds (v.PRIOR_SCALE_RANGE, v.PRIOR_LOCATION_MAX): the comment there says
        # why; outside them float64 log-densities overflow and fits come back NaN
        setattr_(
            self,
            "mean_prior_mean",
            v.check_vector("mean_prior_mean", self.mean_prior_mean, max_abs=v.PRIOR_LOCATION_MAX),
        )
        setattr_(
            self,
            "mean_prior_sd",
            v.check_positive_vector(
                "mean_prior_sd",
                self.mean_prior_sd,
                bounds=v.PRIOR_SCALE_RANGE,
                hint="The prior sd of the means must be > 0, e.g. mean_prior_sd=1.0",
            ),
        )
        v.check_choice("weights", self.weights, WEIGHTS_CHOICES)
        setattr_(
            self,
            "dirichlet_alpha",
            v.check_positive_vector(
                "dirichlet_alpha",
                self.dirichlet_alpha,
                bounds=v.PRIOR_SCALE_RANGE,
                hint="Dirichlet concentrations must be > 0, e.g. dirichlet_alpha=1.0",
            ),
        )
        if (
            isinstance(self.dirichlet_alpha, tuple)
            and len(self.dirichlet_alpha) != self.n_components
        ):
            raise ValueError(
                f"dirichlet_alpha: expected a scalar or {self.n_components} values "
                f"(one per component), got {len(self.dirichlet_alpha)} values. "
                f"Pass one concentration per component or a single number."
            )
        if isinstance(self.obs_sd, str):
            if self.obs_sd != "learned":
                raise ValueError(
                    f"obs_sd: expected a positive number, one per feature, or "
                    f"'learned', got {self.obs_sd!r}. Use e.g. obs_sd=1.0 or "
                    f"obs_sd='learned'."
                )
        else:
            setattr_(
                self,
                "obs_sd",
                v.check_positive_vector(
                    "obs_sd",
                    self.obs_sd,
                    bounds=v.PRIOR_SCALE_RANGE,
                    hint="Observation sds must be > 0, e.g. obs_sd=1.0, or obs_sd='learned'",
                ),
            )
        for name in ("precision_prior_shape", "precision_prior_rate"):
            setattr_(self, name, v.check_positive(name, getattr(self, name)))
            v.check_positive_vector(name, getattr(self, name), bounds=v.PRIOR_SCALE_RANGE)
        if not isinstance(self.ordered, bool | np.bool_):
            raise TypeError(
                f"ordered: expected True or False, got {v.describe(self.ordered)}. "
                f"Pass ordered=True to order components by feature 0."
            )
        setattr_(self, "ordered", bool(self.ordered))
        v.check_choice("weights_transform", self.weights_transform, TRANSFORM_CHOICES)

    # ----------------------------------------------------------------- derived arrays
    @property
    def learned_obs_sd(self) -> bool:
        """True when the observation sds are parameters (with a Gamma prior on precision)."""
        return self.obs_sd == "learned"

    @property
    def fixed_weights(self) -> bool:
        """True when the weights are not learned (fixed at 1/K, or K == 1)."""
        return self.weights == "fixed" or self.n_components == 1

    def alpha(self) -> np.ndarray:
        """Dirichlet concentration, shape (n_components,)."""
        return np.broadcast_to(np.asarray(self.dirichlet_alpha, float), (self.n_components,)).copy()

    def fixed_weight_values(self) -> np.ndarray:
        """The weights 1/K, shape (n_components,)."""
        return np.full(self.n_components, 1.0 / self.n_components)

    def prior_mean(self, n_features: int) -> np.ndarray:
        """Prior mean of each component mean, shape (n_features,)."""
        return self._per_feature("mean_prior_mean", self.mean_prior_mean, n_features)

    def prior_sd(self, n_features: int) -> np.ndarray:
        """Prior sd of each component mean, shape (n_features,)."""
        return self._per_feature("mean_prior_sd", self.mean_prior_sd, n_features)

    def known_obs_sd(self, n_features: int) -> np.ndarray:
        """The known observation sd, shape (n_components, n_features).

        Raises
        ------
        ValueError
            When ``obs_sd="learned"`` (there is no known value).
        """
        if isinstance(self.obs_sd, str):  # "learned": there is no known value
            raise ValueError(
                "obs_sd: expected a known value, got 'learned'. Read the learned "
                "sd from the fit's posterior ('obs_sd') instead."
            )
        per_feature = self._per_feature("obs_sd", self.obs_sd, n_features)
        return np.broadcast_to(per_feature, (self.n_components, n_features)).copy()

    def check_features(self, n_features: int) -> None:
        """Raise when a per-feature field has a length other than ``n_features``."""
        self.prior_mean(n_features)
        self.prior_sd(n_features)
        if not self.learned_obs_sd:
            self.known_obs_sd(n_features)

    @staticmethod
    def _per_feature(name: str, value: float | tuple[float, ...], n_features: int) -> np.ndarray:
        arr = np.asarray(value, dtype=float)
        if arr.ndim == 1 and arr.shape[0] != n_features:
            raise ValueError(
                f"{name}: expected a scalar or {n_features} values (one per "
                f"feature of the data), got {arr.shape[0]} values. Match the "
                f"number of data columns or pass a single number."
            )
        return np.broadcast_to(arr, (n_features,)).copy()

    def describe(self) -> str:
        """The model in words and formulas, for reports."""
        K = self.n_components
        lines = [
            f"K = {K} components, diagonal Gaussian components",
            f"means_k ~ Normal({self.mean_prior_mean}, sd={self.mean_prior_sd})",
        ]
        if self.fixed_weights:
            lines.append(f"weights fixed at 1/{K}")
        else:
            lines.append(
                f"weights ~ Dirichlet({self.dirichlet_alpha}) [{self.weights_transform} transform]"
            )
        if self.learned_obs_sd:
            lines.append(
                f"obs_sd_kd = tau_kd^(-1/2), tau_kd ~ Gamma(shape={self.precision_prior_shape}, "
                f"rate={self.precision_prior_rate})"
            )
        else:
            lines.append(f"obs_sd = {self.obs_sd} (known)")
        if self.ordered:
            lines.append("components ordered by means[:, 0]")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (round-trips through ``MixtureSpec(**d)``)."""
        return {
            name: (list(val) if isinstance(val, tuple) else val)
            for name, val in self.__dict__.items()
        }
