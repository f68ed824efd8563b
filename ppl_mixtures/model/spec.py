"""`MixtureSpec`: the one Gaussian-mixture model every engine fits.

(Longer than ~400 lines on purpose: one dataclass whose checks and derived arrays sit beside
the fields they belong to; splitting it would scatter one model's definition.)

For data x_1..x_N in R^D and K components::

    means_k   ~ Normal(mean_prior_mean, diag(mean_prior_sd^2))          k = 1..K
    weights   ~ Dirichlet(dirichlet_alpha)          or fixed at 1/K, or DP stick-breaking
    tau_kd    ~ Gamma(precision_prior_shape, precision_prior_rate)      only if obs_sd="learned"
    z_i       ~ Categorical(weights)                                    (marginalized in PyMC)
    x_id | z_i ~ Normal(means_{z_i, d}, obs_sd_{z_i, d})                obs_sd = tau^{-1/2} if learned

That is ``covariance="diag"`` (the default). The other covariance types replace the last
two lines::

    "full":      x_i | z_i ~ MvNormal(means_{z_i}, Sigma_{z_i})   Sigma_k = obs_cov (known), or
                 Lambda_k = Sigma_k^{-1} ~ Wishart(precision_prior_dof, precision_prior_scale)
    "tied":      one Sigma shared by every component, its precision ~ Wishart(dof, scale)
    "spherical": Sigma_k = sigma_k^2 I, tau_k = sigma_k^{-2} ~ Gamma(shape, rate)

The Gamma is in the shape/rate parameterization (mean shape/rate), the same in every engine.
The Wishart has mean dof * scale. With D = 1, Wishart(dof, scale) is Gamma(shape = dof / 2,
rate = 1 / (2 scale)); so the defaults ``dof = 2 shape + D - 1`` and ``scale = I / (2 rate)``
reduce to the diagonal model's Gamma(shape, rate) prior when D = 1, and in any D keep its
prior mean of the precision, E[Lambda] = (2 shape + D - 1) / (2 rate) I.

``weights="dp"`` replaces the Dirichlet by truncated Dirichlet-process (stick-breaking)
weights, with T = K = ``n_components`` the truncation level (Ishwaran & James 2001, JASA
96:161; Blei & Jordan 2006, Bayesian Analysis 1:121)::

    v_k ~ Beta(1, alpha)   k = 1..T-1,   v_T = 1
    w_k = v_k prod_{j<k} (1 - v_j)
    alpha = dp_alpha (fixed)  or  alpha ~ Gamma(shape, rate) = dp_alpha_prior

The order of the components is part of this prior (w_k decreases in k on average), so
``ordered=True`` is refused with it. The truncation is adequate when the last weight w_T is
small in the posterior.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ppl_mixtures import validation as v

__all__ = ["MixtureSpec"]

WEIGHTS_CHOICES = ("dirichlet", "fixed", "dp")
COVARIANCE_CHOICES = ("diag", "full", "tied", "spherical")
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
    weights : {"dirichlet", "fixed", "dp"}
        "dirichlet": weights ~ Dirichlet(dirichlet_alpha). "fixed": every weight is 1/K
        (the model of Blei et al. 2017 §3 and of seed 000). "dp": truncated
        Dirichlet-process (stick-breaking) weights with truncation level T = n_components
        (see the module docs); ``ordered``, ``dirichlet_alpha`` and ``weights_transform``
        must keep their defaults then.
    dirichlet_alpha : float or sequence of shape (n_components,)
        Dirichlet concentration, in [1e-6, 1e6]. Ignored when ``weights="fixed"``.
    dp_alpha : float
        Only for ``weights="dp"``: the DP concentration alpha in [1e-6, 1e6] (default 1.0),
        sticks v_k ~ Beta(1, alpha); the value used when ``dp_alpha_prior`` is None.
    dp_alpha_prior : None or (shape, rate)
        Only for ``weights="dp"``: None (alpha fixed at ``dp_alpha``) or a Gamma(shape, rate)
        prior on alpha (shape/rate parameterization, mean shape/rate), each in [1e-6, 1e6].
    obs_sd : float, sequence of shape (n_features,), "learned", or None
        For ``covariance="diag"``: the known observation standard deviation (in [1e-6, 1e6])
        shared by all components, or "learned": one sd per component and feature with a
        Gamma prior on the precision 1/sd^2. None (the default) means 1.0 there; any other
        covariance type takes no ``obs_sd`` (a value is an error, never ignored).
    covariance : {"diag", "full", "tied", "spherical"}
        The components' covariance: diagonal (today's model, the default), full
        (``obs_cov`` known or learned), tied (one learned full covariance shared by every
        component) or spherical (one learned variance per component).
    obs_cov : None, "learned", array-like of shape (D, D) or (K, D, D)
        Only for ``covariance="full"`` (required there): a known covariance, symmetric and
        positive definite, shared by the components or one per component; or "learned"
        with a Wishart prior on each component's precision matrix.
    precision_prior_dof : float or None
        Wishart degrees of freedom (> D - 1) for learned full or tied precisions; None:
        ``2 * precision_prior_shape + D - 1`` (see the module docs).
    precision_prior_scale : float, array of shape (D, D), or None
        Wishart scale matrix (a float s means s * I); None: ``I / (2 * precision_prior_rate)``.
    precision_prior_shape, precision_prior_rate : float
        Gamma(shape, rate) prior on each learned precision, each in [1e-6, 1e6]; used only when
        ``obs_sd="learned"`` or ``covariance="spherical"`` (and as the default of the Wishart
        prior). The default Gamma(2, 2) has mean 1 (sd near 1 on standardized data) and keeps
        a component that holds few points away from zero variance.
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
    weights: Literal["dirichlet", "fixed", "dp"] = "dirichlet"
    dirichlet_alpha: float | tuple[float, ...] = 1.0
    obs_sd: float | tuple[float, ...] | Literal["learned"] | None = None
    precision_prior_shape: float = 2.0
    precision_prior_rate: float = 2.0
    ordered: bool = False
    weights_transform: Literal["stick_breaking", "simplex"] = "stick_breaking"
    covariance: Literal["diag", "full", "tied", "spherical"] = "diag"
    obs_cov: Any = None
    precision_prior_dof: float | None = None
    precision_prior_scale: Any = None
    dp_alpha: float = 1.0
    dp_alpha_prior: tuple[float, float] | None = None

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
        v.check_choice("covariance", self.covariance, COVARIANCE_CHOICES)
        if self.covariance != "diag" and self.obs_sd is not None:
            raise ValueError(
                f"obs_sd: expected None with covariance={self.covariance!r}, got "
                f"{v.describe(self.obs_sd)}. obs_sd belongs to covariance='diag'; for 'full' "
                f"pass obs_cov (a matrix or 'learned'); 'tied' and 'spherical' are learned."
            )
        if self.covariance == "diag" and self.obs_sd is None:
            setattr_(self, "obs_sd", 1.0)
        self._check_covariance_fields()
        if isinstance(self.obs_sd, str):
            if self.obs_sd != "learned":
                raise ValueError(
                    f"obs_sd: expected a positive number, one per feature, or "
                    f"'learned', got {self.obs_sd!r}. Use e.g. obs_sd=1.0 or "
                    f"obs_sd='learned'."
                )
        elif self.obs_sd is not None:
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
        self._check_dp_fields()

    def _check_dp_fields(self) -> None:
        """dp_alpha / dp_alpha_prior: only with weights="dp", which refuses Dirichlet options."""
        setattr_ = object.__setattr__
        if self.weights != "dp":
            if not (isinstance(self.dp_alpha, numbers.Real) and self.dp_alpha == 1.0):
                raise ValueError(
                    f"dp_alpha: expected the default 1.0 with weights={self.weights!r}, got "
                    f"{v.describe(self.dp_alpha)}. dp_alpha belongs to weights='dp'; pass "
                    f"weights='dp' with it, or drop it."
                )
            if self.dp_alpha_prior is not None:
                raise ValueError(
                    f"dp_alpha_prior: expected None with weights={self.weights!r}, got "
                    f"{v.describe(self.dp_alpha_prior)}. dp_alpha_prior belongs to "
                    f"weights='dp'; pass weights='dp' with it, or drop it."
                )
            setattr_(self, "dp_alpha", 1.0)
            return
        refused = (
            ("ordered", self.ordered, False, "the stick order is part of the DP prior"),
            ("dirichlet_alpha", self.dirichlet_alpha, 1.0, "use dp_alpha for the DP"),
            (
                "weights_transform",
                self.weights_transform,
                "stick_breaking",
                "the DP has its own sticks",
            ),
        )
        for name, value, default, why in refused:
            if value != default:
                raise ValueError(
                    f"{name}: expected the default {default!r} with weights='dp', got "
                    f"{v.describe(value)} ({why}). Drop {name}, or use weights='dirichlet'."
                )
        alpha = v.check_positive(
            "dp_alpha", self.dp_alpha, hint="The DP concentration must be > 0, e.g. dp_alpha=1.0"
        )
        v.check_positive_vector("dp_alpha", alpha, bounds=v.PRIOR_SCALE_RANGE)
        setattr_(self, "dp_alpha", alpha)
        prior = self.dp_alpha_prior
        if prior is None:
            return
        if isinstance(prior, str) or not isinstance(prior, tuple | list) or len(prior) != 2:
            raise ValueError(
                f"dp_alpha_prior: expected None or a (shape, rate) pair for a Gamma prior on "
                f"alpha, got {v.describe(prior)}. Use e.g. dp_alpha_prior=(1.0, 1.0)."
            )
        low, high = v.PRIOR_SCALE_RANGE
        for value in prior:
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(
                    f"dp_alpha_prior: expected two positive numbers (shape, rate), got "
                    f"{v.describe(prior)}. Use e.g. dp_alpha_prior=(1.0, 1.0)."
                )
            if not low <= float(value) <= high:
                raise ValueError(
                    f"dp_alpha_prior: expected shape and rate in [{low:g}, {high:g}], got "
                    f"{[float(x) for x in prior]}. Use e.g. dp_alpha_prior=(1.0, 1.0)."
                )
        setattr_(self, "dp_alpha_prior", (float(prior[0]), float(prior[1])))

    def _check_covariance_fields(self) -> None:
        """obs_cov and the Wishart prior: present only where the covariance type uses them."""
        setattr_ = object.__setattr__
        if self.covariance == "full":
            if self.obs_cov is None:
                raise ValueError(
                    "obs_cov: expected a (D, D) or (K, D, D) covariance matrix or 'learned' "
                    "with covariance='full', got None. Pass obs_cov='learned' to learn each "
                    "component's covariance (Wishart prior), or a known matrix."
                )
            if isinstance(self.obs_cov, str):
                if self.obs_cov != "learned":
                    raise ValueError(
                        f"obs_cov: expected a covariance matrix or 'learned', got "
                        f"{self.obs_cov!r}. Use obs_cov='learned' or e.g. obs_cov=[[1, 0.5], "
                        f"[0.5, 1]]."
                    )
            else:
                matrices = _check_covariances(self.obs_cov, self.n_components)
                setattr_(self, "obs_cov", _nested_tuple(matrices))
        elif self.obs_cov is not None:
            raise ValueError(
                f"obs_cov: expected None with covariance={self.covariance!r}, got "
                f"{v.describe(self.obs_cov)}. obs_cov belongs to covariance='full'; pass "
                f"covariance='full' with it, or drop it."
            )
        uses_wishart = self.covariance == "tied" or (
            self.covariance == "full" and self.obs_cov == "learned"
        )
        for name in ("precision_prior_dof", "precision_prior_scale"):
            if getattr(self, name) is not None and not uses_wishart:
                raise ValueError(
                    f"{name}: expected None with covariance={self.covariance!r}"
                    f"{' and a known obs_cov' if self.covariance == 'full' else ''}, got "
                    f"{v.describe(getattr(self, name))}. The Wishart prior is used only by "
                    f"covariance='full' with obs_cov='learned' and by covariance='tied'."
                )
        if self.precision_prior_dof is not None:
            setattr_(
                self,
                "precision_prior_dof",
                v.check_positive(
                    "precision_prior_dof",
                    self.precision_prior_dof,
                    hint="Wishart degrees of freedom must exceed D - 1, e.g. "
                    "precision_prior_dof=5.0",
                ),
            )
        if self.precision_prior_scale is not None:
            scale = self.precision_prior_scale
            if np.ndim(scale) == 0:
                setattr_(
                    self,
                    "precision_prior_scale",
                    v.check_positive(
                        "precision_prior_scale",
                        scale,
                        hint="A scalar Wishart scale s means s * I, e.g. precision_prior_scale=0.25",
                    ),
                )
            else:
                if np.ndim(scale) != 2:
                    raise ValueError(
                        f"precision_prior_scale: expected a float or one (D, D) matrix, got "
                        f"an array of shape {np.shape(scale)}. Pass one scale matrix shared "
                        f"by the components."
                    )
                matrices = _check_covariances(scale, 1, name="precision_prior_scale")
                setattr_(self, "precision_prior_scale", _nested_tuple(matrices))

    # ----------------------------------------------------------------- derived arrays
    @property
    def learned_obs_sd(self) -> bool:
        """True when the diagonal model's observation sds are parameters (Gamma prior)."""
        return self.covariance == "diag" and self.obs_sd == "learned"

    @property
    def learned_covariance(self) -> bool:
        """True when the covariances are parameters (every type but a known diag or full)."""
        if self.covariance == "diag":
            return self.obs_sd == "learned"
        return self.covariance != "full" or self.obs_cov == "learned"

    def typical_obs_sd(self, n_features: int) -> np.ndarray:
        """Per feature, the largest known observation sd, or for learned ones the sd at the
        prior mean of the precision; shape (n_features,). The data-scale check reads it."""
        if self.covariance == "diag" and not self.learned_obs_sd:
            return self.known_obs_sd(n_features).max(axis=0)
        if self.covariance == "full" and not self.learned_covariance:
            return np.sqrt(np.diagonal(self.known_obs_cov(n_features), axis1=1, axis2=2)).max(0)
        if self.covariance in ("full", "tied"):
            mean_precision = self.wishart_dof(n_features) * self.wishart_scale(n_features)
            return np.sqrt(np.diag(np.linalg.inv(mean_precision)))
        shape, rate = self.precision_prior_shape, self.precision_prior_rate
        return np.full(n_features, np.sqrt(rate / shape))

    def wishart_dof(self, n_features: int) -> float:
        """The Wishart prior's degrees of freedom (> D - 1) for D = ``n_features``."""
        dof = self.precision_prior_dof
        if dof is None:
            return 2.0 * self.precision_prior_shape + n_features - 1.0
        if dof <= n_features - 1:
            raise ValueError(
                f"precision_prior_dof: expected a value > D - 1 = {n_features - 1} for data with "
                f"{n_features} features, got {dof}. Use at least D, e.g. "
                f"precision_prior_dof={float(n_features + 1)}."
            )
        return float(dof)

    def wishart_scale(self, n_features: int) -> np.ndarray:
        """The Wishart prior's scale matrix, shape (D, D) (its mean is dof * scale)."""
        scale = self.precision_prior_scale
        if scale is None:
            return np.eye(n_features) / (2.0 * self.precision_prior_rate)
        if np.ndim(scale) == 0:
            return float(scale) * np.eye(n_features)
        matrix = np.asarray(scale, dtype=float)
        if matrix.shape != (n_features, n_features):
            raise ValueError(
                f"precision_prior_scale: expected a ({n_features}, {n_features}) matrix for "
                f"data with {n_features} features, got shape {matrix.shape}. Match the number "
                f"of data columns or pass a float."
            )
        return matrix.copy()

    def known_obs_cov(self, n_features: int) -> np.ndarray:
        """The known full covariance, shape (n_components, D, D).

        Raises
        ------
        ValueError
            When the spec has no known full covariance.
        """
        if self.covariance != "full" or isinstance(self.obs_cov, str):
            raise ValueError(
                f"obs_cov: expected a known full covariance, got covariance={self.covariance!r}"
                f", obs_cov={self.obs_cov!r}. Read a learned covariance from the fit's "
                f"posterior ('obs_cov') instead."
            )
        cov = np.asarray(self.obs_cov, dtype=float)
        if cov.shape[-1] != n_features:
            raise ValueError(
                f"obs_cov: expected ({n_features}, {n_features}) matrices for data with "
                f"{n_features} features, got shape {cov.shape}. Match the number of data "
                f"columns."
            )
        return np.broadcast_to(cov, (self.n_components, n_features, n_features)).copy()

    @property
    def fixed_weights(self) -> bool:
        """True when the weights are not learned (fixed at 1/K, or K == 1)."""
        return self.weights == "fixed" or self.n_components == 1

    @property
    def is_dp(self) -> bool:
        """True for truncated Dirichlet-process (stick-breaking) weights, ``weights="dp"``."""
        return self.weights == "dp"

    @property
    def learned_dp_alpha(self) -> bool:
        """True when the DP concentration has a Gamma prior (``dp_alpha_prior`` given)."""
        return self.is_dp and self.dp_alpha_prior is not None

    def alpha(self) -> np.ndarray:
        """Dirichlet concentration, shape (n_components,).

        Raises
        ------
        ValueError
            For ``weights="dp"`` (no Dirichlet; read ``dp_alpha`` / ``dp_alpha_prior``).
        """
        if self.is_dp:
            raise ValueError(
                "weights: expected 'dirichlet' or 'fixed' for a Dirichlet concentration, got "
                "'dp'. A DP spec's concentration is spec.dp_alpha (or its Gamma prior "
                "spec.dp_alpha_prior)."
            )
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
        if self.covariance != "diag":
            raise ValueError(
                f"obs_sd: expected a known diagonal sd, got covariance={self.covariance!r} "
                f"(no obs_sd). Use known_obs_cov for a known full covariance."
            )
        if isinstance(self.obs_sd, str):  # "learned": there is no known value
            raise ValueError(
                "obs_sd: expected a known value, got 'learned'. Read the learned "
                "sd from the fit's posterior ('obs_sd') instead."
            )
        assert self.obs_sd is not None  # __post_init__ sets 1.0 for a diagonal spec
        per_feature = self._per_feature("obs_sd", self.obs_sd, n_features)
        return np.broadcast_to(per_feature, (self.n_components, n_features)).copy()

    def check_features(self, n_features: int) -> None:
        """Raise when a per-feature field has a length other than ``n_features``."""
        self.prior_mean(n_features)
        self.prior_sd(n_features)
        if self.covariance == "diag" and not self.learned_obs_sd:
            self.known_obs_sd(n_features)
        if self.covariance == "full" and not self.learned_covariance:
            self.known_obs_cov(n_features)
        if self.covariance in ("full", "tied") and self.learned_covariance:
            self.wishart_dof(n_features)
            self.wishart_scale(n_features)

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
            f"K = {K} components, {_COVARIANCE_WORDS[self.covariance]} Gaussian components",
            f"means_k ~ Normal({self.mean_prior_mean}, sd={self.mean_prior_sd})",
        ]
        if self.is_dp:
            lines.append(
                f"weights by stick-breaking, truncated at T = {K}: v_k ~ Beta(1, alpha), "
                f"w_k = v_k prod_(j<k) (1 - v_j)"
            )
            if self.dp_alpha_prior is None:
                lines.append(f"alpha = {self.dp_alpha} (fixed)")
            else:
                shape, rate = self.dp_alpha_prior
                lines.append(f"alpha ~ Gamma(shape={shape}, rate={rate})")
        elif self.fixed_weights:
            lines.append(f"weights fixed at 1/{K}")
        else:
            lines.append(
                f"weights ~ Dirichlet({self.dirichlet_alpha}) [{self.weights_transform} transform]"
            )
        if self.covariance == "full" and not self.learned_covariance:
            lines.append("covariance known (obs_cov)")
        elif self.covariance in ("full", "tied"):
            dof = (
                "2*shape + D - 1" if self.precision_prior_dof is None else self.precision_prior_dof
            )
            scale = (
                "I / (2*rate)" if self.precision_prior_scale is None else "precision_prior_scale"
            )
            who = "Lambda_k" if self.covariance == "full" else "Lambda (shared)"
            lines.append(f"{who} ~ Wishart(dof={dof}, scale={scale}), Sigma = Lambda^-1")
        elif self.covariance == "spherical":
            lines.append(
                f"Sigma_k = tau_k^-1 I, tau_k ~ Gamma(shape={self.precision_prior_shape}, "
                f"rate={self.precision_prior_rate})"
            )
        elif self.learned_obs_sd:
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
        """Plain-JSON form (round-trips through ``MixtureSpec(**d)``); the covariance fields
        appear only when they differ from the diagonal default and the DP fields only when
        ``weights="dp"``, so a diagonal Dirichlet spec reads (and fingerprints) as it always
        did."""
        out = {}
        for name, val in self.__dict__.items():
            if name in _COVARIANCE_FIELDS and val == _COVARIANCE_DEFAULTS[name]:
                continue
            if name in _DP_FIELDS and not self.is_dp:
                continue
            out[name] = _nested_list(val) if isinstance(val, tuple) else val
        return out


_COVARIANCE_WORDS = {
    "diag": "diagonal",
    "full": "full-covariance",
    "tied": "tied-covariance",
    "spherical": "spherical",
}
_COVARIANCE_DEFAULTS: dict[str, Any] = {
    "covariance": "diag",
    "obs_cov": None,
    "precision_prior_dof": None,
    "precision_prior_scale": None,
}
_COVARIANCE_FIELDS = tuple(_COVARIANCE_DEFAULTS)
_DP_FIELDS = ("dp_alpha", "dp_alpha_prior")


def _check_covariances(value: Any, n_components: int, name: str = "obs_cov") -> np.ndarray:
    """A (D, D) or (K, D, D) array of symmetric positive-definite matrices, read-only."""
    try:
        cov = np.array(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name}: expected a (D, D) or (K, D, D) array of numbers, got "
            f"{v.describe(value)}. Pass e.g. [[1.0, 0.5], [0.5, 1.0]]."
        ) from None
    if cov.ndim not in (2, 3) or cov.shape[-1] != cov.shape[-2] or cov.shape[-1] == 0:
        raise ValueError(
            f"{name}: expected a square (D, D) matrix or (K, D, D) matrices, got shape "
            f"{cov.shape}. Pass one covariance matrix, or one per component."
        )
    if cov.ndim == 3 and cov.shape[0] != n_components:
        raise ValueError(
            f"{name}: expected {n_components} matrices (one per component), got "
            f"{cov.shape[0]}. Pass one (D, D) matrix for all components or K of them."
        )
    if not np.all(np.isfinite(cov)):
        raise ValueError(f"{name}: expected finite numbers, got NaN or inf. Pass a finite matrix.")
    if not np.allclose(cov, np.swapaxes(cov, -1, -2), rtol=1e-10, atol=1e-12):
        raise ValueError(
            f"{name}: expected a symmetric matrix, got one whose largest asymmetry is "
            f"{np.max(np.abs(cov - np.swapaxes(cov, -1, -2))):.3g}. Symmetrize it, e.g. "
            f"(S + S.T) / 2."
        )
    eigenvalues = np.linalg.eigvalsh(cov)
    if np.min(eigenvalues) <= 0:
        raise ValueError(
            f"{name}: expected a positive-definite matrix, got smallest eigenvalue "
            f"{np.min(eigenvalues):.3g}. Add a small multiple of the identity, or check "
            f"that no feature is a combination of the others."
        )
    return cov


def _nested_list(value: Any) -> Any:
    return [_nested_list(item) for item in value] if isinstance(value, tuple) else value


def _nested_tuple(array: np.ndarray) -> Any:
    """A float array as nested tuples: hashable and comparable, like the spec's other fields."""
    if array.ndim == 0:
        return float(array)
    return tuple(_nested_tuple(row) for row in array)
