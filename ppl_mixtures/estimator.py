"""`BayesianMixture`: a scikit-learn estimator over ``ppl_mixtures.fit``.

The estimator builds a :class:`~ppl_mixtures.model.spec.MixtureSpec` from its constructor
arguments, fits it with the chosen engine, and answers scikit-learn's questions from the
posterior draws::

    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from ppl_mixtures import BayesianMixture, datasets

    model = make_pipeline(StandardScaler(),
                          BayesianMixture(n_components=2, obs_sd="learned", random_seed=0))
    labels = model.fit(datasets.old_faithful()).predict(datasets.old_faithful())

- ``predict_proba``: posterior mean responsibilities E[p(z = k | x, theta) | data];
- ``score_samples``: the posterior predictive log density log p(x_new | data), a Monte Carlo
  average over the draws (not a plug-in at the posterior mean), so ``score`` (its mean) is
  a held-out log predictive density that ``GridSearchCV`` can maximize over K or a prior;
- ``sample``: draws from the posterior predictive;
- ``bic`` / ``aic``: for the point-estimating engine ``"em"`` only.

docs/estimator.md lists the scikit-learn checks that do not apply and why.

The module is one class (scikit-learn's API with numpydoc on every method) and its few
helpers, about 470 lines; the math it calls lives in ``analysis.diagnostics``.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClusterMixin, DensityMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ppl_mixtures import validation as v
from ppl_mixtures.analysis.diagnostics import log_likelihood, predictive_logpdf, responsibilities
from ppl_mixtures.analysis.draws import parameter_draws
from ppl_mixtures.analysis.relabel import relabel
from ppl_mixtures.inference.fit import fit as fit_mixture
from ppl_mixtures.inference.registry import get_engine
from ppl_mixtures.model.spec import MixtureSpec
from ppl_mixtures.results import ConvergenceWarning, MixtureFit

__all__ = [
    "COVARIANCES_PLANNED",
    "COVARIANCES_SERVED",
    "RHAT_MAX",
    "BayesianMixture",
    "n_free_parameters",
]

#: Covariance structures the estimator fits (MixtureSpec(covariance=...)); an engine that
#: does not serve one raises NotImplementedError at ``fit`` naming the engines that do.
COVARIANCES_SERVED = ("diag", "full", "tied", "spherical")
#: Structures not served yet (none since issue #14; kept for code that reads it).
COVARIANCES_PLANNED: tuple[str, ...] = ()
#: Largest max R-hat (after relabeling) at which a sampler's fit counts as converged.
RHAT_MAX = 1.01


def n_free_parameters(spec: MixtureSpec, n_features: int) -> int:
    """Free parameters of the spec's model, as BIC and AIC count them.

    Means K*D, weights K-1 unless fixed (``weights="fixed"`` or K = 1), and the learned
    covariances: K*D sds for "diag" with ``obs_sd="learned"``, K*D(D+1)/2 for "full" with
    ``obs_cov="learned"``, D(D+1)/2 for "tied", K for "spherical" (none when known). With
    learned covariances and Dirichlet weights this is scikit-learn's count for
    ``GaussianMixture(covariance_type=spec.covariance)``.
    """
    n_components = spec.n_components
    count = n_components * n_features
    if not spec.fixed_weights:
        count += n_components - 1
    if spec.learned_covariance:
        per_matrix = n_features * (n_features + 1) // 2
        count += {
            "diag": n_components * n_features,
            "full": n_components * per_matrix,
            "tied": per_matrix,
            "spherical": n_components,
        }[spec.covariance]
    return count


class BayesianMixture(ClusterMixin, DensityMixin, BaseEstimator):
    """A Bayesian Gaussian mixture fitted by any ppl-mixtures engine.

    Parameters
    ----------
    n_components : int, default=2
        K, the number of components.
    covariance : {"diag", "full", "tied", "spherical"}, default="diag"
        Covariance structure (``MixtureSpec(covariance=...)``): "diag" (``obs_sd`` known or
        learned), "full" (one covariance per component: learned with a Wishart prior unless
        ``obs_cov`` gives it), "tied" (one learned full covariance shared by the
        components), "spherical" (one learned variance per component). Every engine but
        "latent_gibbs" serves all four; an engine that does not raises NotImplementedError
        at ``fit`` naming those that do.
    mean_prior_mean, mean_prior_sd, weights, dirichlet_alpha, obs_sd, obs_cov, \
precision_prior_shape, precision_prior_rate, precision_prior_dof, precision_prior_scale, \
ordered, weights_transform
        The :class:`~ppl_mixtures.model.spec.MixtureSpec` fields, with its defaults: means
        ~ Normal(mean_prior_mean, mean_prior_sd^2) per feature; weights ~ Dirichlet(
        dirichlet_alpha) or fixed at 1/K (``weights="fixed"``); for "diag", ``obs_sd`` a
        known sd (number or one per feature; None means 1.0) or ``"learned"`` with a
        Gamma(precision_prior_shape, precision_prior_rate) prior on each precision (the
        other types take no ``obs_sd``); for "full", ``obs_cov`` a known (D, D) or (K, D, D)
        matrix, or None / "learned" (a Wishart(precision_prior_dof, precision_prior_scale)
        prior on each precision matrix, defaults reducing to the Gamma prior at D = 1; also
        the prior of "tied"). The priors assume standardized data: put a ``StandardScaler``
        in front of the estimator (in a ``Pipeline``).
    engine : str, default="cavi"
        The inference engine (``ppl_mixtures.available_engines()`` lists them).
    engine_options : dict or None, default=None
        Options for the engine's ``fit`` (e.g. ``{"draws": 500, "chains": 2}`` for "nuts",
        ``{"n_init": 2, "progressbar": False}`` for "cavi"); unknown names raise a TypeError
        listing the valid ones. The seed is not set here but by ``random_seed``.
    random_seed : int or None, default=None
        Seeds the engine and :meth:`sample`: the same seed gives the same numbers. None
        draws fresh entropy (refits then differ).

    Attributes
    ----------
    fit_ : MixtureFit
        The engine's result; for samplers (family "mcmc") relabeled with
        :func:`ppl_mixtures.analysis.relabel.relabel` so that every draw uses the same component labels.
    n_features_in_ : int
    feature_names_in_ : ndarray of str, shape (n_features,)
        Only when ``X`` was a DataFrame with string column names.
    converged_ : bool or None
        ``fit_.converged`` (the engine's own test) for optimizers and VI; for samplers,
        whether the max R-hat over the parameters after relabeling is <= ``RHAT_MAX`` (1.01),
        None with a single chain.
    labels_ : ndarray of int, shape (n_samples,)
        ``predict`` on the training data.
    weights_ : ndarray of shape (n_components,)
        Posterior mean of the weights (1/K each when fixed).
    means_ : ndarray of shape (n_components, n_features)
        Posterior mean of the component means.
    obs_sd_ : ndarray of shape (n_components, n_features)
        Posterior mean of the observation sds (the known value when not learned; for a
        known full covariance the square roots of its diagonal).
    covariances_ : ndarray of shape (n_components, n_features, n_features)
        Posterior mean of each component's covariance matrix (E[obs_sd^2] on the diagonal
        for "diag" and "spherical"; the known matrix when not learned), as scikit-learn's
        ``GaussianMixture.covariances_`` for ``covariance_type="full"``.

    Notes
    -----
    Label switching: a sampler may visit any of the K! labelings of the components, across
    chains or within one; an average of responsibilities over such draws mixes components
    (unrelabeled NUTS argmax labels once matched the truth for 3% of points). ``fit``
    therefore relabels MCMC fits before anything is averaged, so ``predict_proba``,
    ``predict``, ``means_`` and ``sample``'s labels use one labeling. ``score_samples`` does
    not depend on labels.
    """

    def __init__(
        self,
        n_components=2,
        *,
        covariance="diag",
        mean_prior_mean=0.0,
        mean_prior_sd=1.0,
        weights="dirichlet",
        dirichlet_alpha=1.0,
        obs_sd=None,
        obs_cov=None,
        precision_prior_shape=2.0,
        precision_prior_rate=2.0,
        precision_prior_dof=None,
        precision_prior_scale=None,
        ordered=False,
        weights_transform="stick_breaking",
        engine="cavi",
        engine_options=None,
        random_seed=None,
    ):
        self.n_components = n_components
        self.covariance = covariance
        self.mean_prior_mean = mean_prior_mean
        self.mean_prior_sd = mean_prior_sd
        self.weights = weights
        self.dirichlet_alpha = dirichlet_alpha
        self.obs_sd = obs_sd
        self.obs_cov = obs_cov
        self.precision_prior_shape = precision_prior_shape
        self.precision_prior_rate = precision_prior_rate
        self.precision_prior_dof = precision_prior_dof
        self.precision_prior_scale = precision_prior_scale
        self.ordered = ordered
        self.weights_transform = weights_transform
        self.engine = engine
        self.engine_options = engine_options
        self.random_seed = random_seed

    # ------------------------------------------------------------------ tags
    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_seed is None
        return tags

    # ------------------------------------------------------------------ building the fit
    def _spec(self) -> MixtureSpec:
        """The MixtureSpec of the constructor arguments (validated by MixtureSpec); for
        covariance="full" an ``obs_cov`` of None means "learned"."""
        covariance = self.covariance
        if not isinstance(covariance, str) or covariance not in COVARIANCES_SERVED:
            raise ValueError(
                f"covariance: expected one of {', '.join(map(repr, COVARIANCES_SERVED))}, got "
                f"{v.describe(covariance)}. Use covariance='diag' (scikit-learn's "
                f"covariance_type names: 'full', 'tied', 'diag', 'spherical')."
            )
        obs_cov = self.obs_cov
        if covariance == "full" and obs_cov is None:
            obs_cov = "learned"
        return MixtureSpec(
            n_components=self.n_components,
            mean_prior_mean=self.mean_prior_mean,
            mean_prior_sd=self.mean_prior_sd,
            weights=self.weights,
            dirichlet_alpha=self.dirichlet_alpha,
            obs_sd=self.obs_sd,
            precision_prior_shape=self.precision_prior_shape,
            precision_prior_rate=self.precision_prior_rate,
            ordered=self.ordered,
            weights_transform=self.weights_transform,
            covariance=covariance,
            obs_cov=obs_cov,
            precision_prior_dof=self.precision_prior_dof,
            precision_prior_scale=self.precision_prior_scale,
        )

    def _engine_options(self) -> dict[str, Any]:
        """engine_options plus the seed, checked (the engine checks the names)."""
        options = self.engine_options
        if options is None:
            options = {}
        if not isinstance(options, Mapping):
            raise TypeError(
                f"engine_options: expected a dict of engine options or None, got "
                f"{v.describe(options)}. Pass e.g. engine_options={{'n_init': 2}}."
            )
        if any(not isinstance(key, str) for key in options):
            raise TypeError(
                f"engine_options: expected option names as str keys, got "
                f"{sorted(map(repr, options))}. Use e.g. {{'max_iter': 100}}."
            )
        if "random_seed" in options:
            raise ValueError(
                "engine_options: expected no 'random_seed' key, got one. Pass "
                "the seed as BayesianMixture(random_seed=...), which also seeds "
                "sample()."
            )
        return {**options, "random_seed": v.check_seed(self.random_seed)}

    def fit(self, X: ArrayLike, y: None = None) -> BayesianMixture:
        """Fit the mixture to X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Finite numbers (a DataFrame's column names are remembered).
        y : None
            Ignored (scikit-learn's signature).

        Returns
        -------
        self

        Raises
        ------
        NotImplementedError
            An engine that does not serve ``covariance`` (the message names those that do).
        ValueError, TypeError
            Bad data, priors or engine options, naming the argument.
        """
        spec = self._spec()
        engine = get_engine(self.engine)
        options = self._engine_options()
        X = validate_data(self, X, dtype=np.float64, ensure_min_features=1)
        result = fit_mixture(X, spec, engine=engine.name, **options)
        converged = result.converged
        if engine.family == "mcmc":
            result = relabel(result)
            converged = _rhat_converged(result)
        self.fit_ = result
        self.converged_ = converged
        self.weights_ = _posterior_mean_weights(result)
        self.means_ = result.posterior_mean("means")
        self.covariances_ = _posterior_mean_covariances(result)
        self.obs_sd_ = (
            result.posterior_mean("obs_sd")
            if spec.learned_covariance
            else np.sqrt(np.diagonal(self.covariances_, axis1=1, axis2=2))
        )
        self.labels_ = self._responsibilities(X).argmax(axis=1)
        return self

    # ------------------------------------------------------------------ predictions
    def _check_X(self, X: ArrayLike) -> np.ndarray:
        check_is_fitted(self, "fit_")
        return validate_data(self, X, dtype=np.float64, reset=False)

    def _responsibilities(self, X: np.ndarray) -> np.ndarray:
        return responsibilities(self.fit_, X)

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Posterior mean responsibilities p(z = k | x, data).

        The mean over the posterior draws theta_s of w_k N(x | mu_k, Sigma_k) / sum_j w_j
        N(x | mu_j, Sigma_j) (``ppl_mixtures.analysis.diagnostics.responsibilities``; Sigma_k
        = diag(sd_k^2) for "diag" and "spherical", the full matrix for "full" and "tied"),
        in the labels of ``fit_`` (MCMC fits are relabeled at ``fit``, so draws agree on
        labels).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_components)
            Rows sum to 1.
        """
        return self._responsibilities(self._check_X(X))

    def predict(self, X: ArrayLike) -> np.ndarray:
        """The most probable component of each point: argmax of :meth:`predict_proba`.

        Returns
        -------
        ndarray of int, shape (n_samples,)
        """
        return self.predict_proba(X).argmax(axis=1)

    def score_samples(self, X: ArrayLike) -> np.ndarray:
        """Posterior predictive log density log p(x | data) of each point, in nats.

        log (1/S) sum_s p(x | theta_s) over the fit's S posterior draws (logsumexp), with
        p(x | theta) = sum_k w_k N(x | mu_k, Sigma_k): the Bayesian predictive, not a
        plug-in at a point estimate (for engine "em", whose fit is one point, it is the
        plug-in). Label-invariant.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        X = self._check_X(X)
        return predictive_logpdf(self.fit_, X)

    def score(self, X: ArrayLike, y: None = None) -> float:
        """Mean posterior predictive log density of X (nats per point; higher is better).

        On held-out data this is the log predictive density that ``GridSearchCV`` maximizes
        to choose ``n_components`` or a prior.

        Returns
        -------
        float
        """
        return float(np.mean(self.score_samples(X)))

    def sample(self, n_samples: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Draw points from the posterior predictive.

        For each point: a posterior draw theta_s = (weights, means, covariances) chosen
        uniformly from the fit's draws (all chains), then z ~ Categorical(weights), then
        x ~ Normal(means_z, Sigma_z) (Sigma_z = diag(obs_sd_z^2), or the full matrix). Seeded by ``random_seed``: with a seed every
        call returns the same points (as scikit-learn's ``GaussianMixture.sample``).

        Parameters
        ----------
        n_samples : int, default=1

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of int, shape (n_samples,)
            The component each point came from (in ``fit_``'s labels).
        """
        check_is_fitted(self, "fit_")
        n_samples = v.check_int(
            "n_samples", n_samples, minimum=1, hint="Ask for at least one point, e.g. sample(100)"
        )
        rng = np.random.default_rng(v.check_seed(self.random_seed))
        draws = parameter_draws(self.fit_)
        draw = rng.integers(draws.n_total, size=n_samples)
        cdf = np.cumsum(draws.weights[draw], axis=1)  # (n, K)
        u = rng.random(n_samples)
        # the first k with u < cdf_k (clipped for round-off in the last cumulative sum)
        labels = np.minimum((u[:, None] >= cdf).sum(axis=1), draws.n_components - 1)
        loc = draws.means[draw, labels]  # (n, D)
        noise = draws.select(draw).noise(labels[:, None], slice(None), rng)  # (n, 1, D)
        return loc + noise[:, 0], labels

    # ------------------------------------------------------------------ information criteria
    def _log_likelihood_and_count(self, X: ArrayLike) -> tuple[float, int, int]:
        check_is_fitted(self, "fit_")
        if self.fit_.engine != "em":
            raise ValueError(
                f"engine: expected 'em' for bic/aic (they need a maximum-"
                f"likelihood point estimate), got {self.fit_.engine!r}. Refit with "
                f"engine='em' (and obs_sd='learned' to match scikit-learn's "
                f"GaussianMixture), or compare models by score() on held-out "
                f"data."
            )
        X = self._check_X(X)
        total = float(log_likelihood(self.fit_, X).sum())
        return total, n_free_parameters(self.fit_.spec, X.shape[1]), X.shape[0]

    def bic(self, X: ArrayLike) -> float:
        """Bayesian information criterion -2 log L + p log n (lower is better).

        log L is the log-likelihood of X at the EM estimate, p :func:`n_free_parameters`,
        n the number of rows of X. Only for ``engine="em"`` (ValueError otherwise).
        """
        log_lik, n_params, n_samples = self._log_likelihood_and_count(X)
        return float(-2.0 * log_lik + n_params * np.log(n_samples))

    def aic(self, X: ArrayLike) -> float:
        """Akaike information criterion -2 log L + 2 p (lower is better); ``engine="em"`` only."""
        log_lik, n_params, _ = self._log_likelihood_and_count(X)
        return -2.0 * log_lik + 2.0 * n_params


# ---------------------------------------------------------------------- helpers
def _rhat_converged(result: MixtureFit) -> bool | None:
    """max R-hat after relabeling <= RHAT_MAX (None with one chain); warn when above."""
    rhat = result.relabeling.rhat_after if result.relabeling is not None else None
    if rhat is None or not isinstance(rhat, numbers.Real):
        return None
    if not rhat <= RHAT_MAX:
        warnings.warn(
            f"{result.engine}: max R-hat {rhat:.3f} > {RHAT_MAX} after relabeling; "
            f"the chains disagree. Draw more (engine_options={{'draws': ..., "
            f"'tune': ...}}) or check ppl_mixtures.analysis.diagnostics.mcmc_summary("
            f"estimator.fit_).",
            ConvergenceWarning,
            stacklevel=3,
        )
        return False
    return True


def _posterior_mean_weights(result: MixtureFit) -> np.ndarray:
    if "weights" in result.idata["posterior"].data_vars:
        return result.posterior_mean("weights")
    return result.spec.fixed_weight_values()


def _posterior_mean_covariances(result: MixtureFit) -> np.ndarray:
    """E[Sigma_k] over the draws, (K, D, D): the mean of obs_cov, or diag(E[obs_sd^2])."""
    draws = parameter_draws(result)
    if draws.obs_cov is not None:
        cov = draws.obs_cov
        return cov if cov.ndim == 3 else cov.mean(axis=0)
    assert draws.obs_sd is not None  # every ParameterDraws has obs_sd or obs_cov
    var = draws.obs_sd**2 if draws.obs_sd.ndim == 2 else (draws.obs_sd**2).mean(axis=0)
    return var[..., None] * np.eye(var.shape[-1])
