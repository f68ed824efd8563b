"""PyMC builders for the mixture of :class:`~ppl_mixtures.model.spec.MixtureSpec`.

(Longer than our ~400-line guide: the three builders and the start values belong together,
since the start values are keyed by the builders' variable names and transforms and every
engine needs both; the numbers live in numpydoc blocks, not in code.)

Three models of the same data and priors, with the same variable names:

- :func:`build_marginal_model` — the assignments z summed out by our density
  (:func:`ppl_mixtures.model.density.mixture_logp_pt`) in a ``pm.CustomDist``. Every PyMC engine
  samples or fits this one.
- :func:`build_builtin_model` — the likelihood by ``pm.Mixture`` / ``pm.NormalMixture``:
  the oracle our density is tested against, and the peer in benchmarks.
- :func:`build_latent_model` — explicit ``z`` ~ Categorical(weights), for teaching why we
  marginalize (discrete z needs Gibbs-type steps and mixes slowly).

Variables (constrained space; names shared by the three models):

=================  ==========================  =============================================
name               dims                        when
=================  ==========================  =============================================
``means``          (component, feature)        always (a Deterministic when ``ordered``)
``means_first``    (component,)                ``spec.ordered``: feature 0, ordered transform
``means_rest``     (component, feature_rest)   ``spec.ordered`` and D > 1
``weights``        (component,)                Dirichlet, or a Deterministic 1/K when fixed,
                                               or a Deterministic of the DP sticks
``dp_sticks``      (component_stick,)          ``spec.is_dp``: Beta(1, alpha) sticks (:mod:`.dp`)
``dp_alpha``       ()                          ``spec.is_dp`` with ``dp_alpha_prior``: Gamma
``obs_precision``  (component, feature)        ``spec.learned_obs_sd``: Gamma(shape, rate)
``obs_sd``         (component, feature)        ``spec.learned_obs_sd``: precision^(-1/2)
``x``              (obs, feature)              the observed data
=================  ==========================  =============================================

For ``covariance="full" | "tied" | "spherical"`` the ``obs_precision`` / ``obs_sd`` rows are
replaced by the variables of :mod:`ppl_mixtures.inference.pymc.cov_models` (the Bartlett
variables of a Wishart prior and the Deterministic ``obs_cov``; spherical: ``obs_precision``
(component,) and ``obs_sd``), and ``x`` reads the full-covariance density
(:func:`ppl_mixtures.model.density_full.full_mixture_logp_pt`) for full and tied.
:func:`build_latent_model` serves "diag" only.

The marginal model observes its data through a shared variable named :data:`DATA_NAME`
(the numba backend passes it by reference instead of embedding a constant array in every
compiled function); :func:`observed_data` returns it, so code that reuses a compiled graph
on new data (ADVI's cached objective) substitutes exactly that variable.

Input checks: the builders and start-value functions validate ``points`` and the spec's
dimension, like any public function. Engines receive data that ``ppl_mixtures.fit`` has
validated already, and pass ``check_input=False`` (scikit-learn's name for the same switch)
so a fit checks its data once.

Do not set model-level ``initval=`` (it breaks ``pm.compute_log_likelihood``); engines pass
:func:`initial_point` as ``pm.sample(initvals=...)`` or ``pm.fit(start=...)`` instead
(:func:`initial_points`: one overdispersed start per chain, for samplers). The
ordered model *needs* it: its default start (all means at the prior mean) is not ordered.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
from numpy.typing import ArrayLike
from pymc.distributions.transforms import ordered
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Variable
from pytensor.graph.traversal import ancestors

from ppl_mixtures.inference.pymc import cov_models, dp
from ppl_mixtures.model.density import mixture_logp_pt
from ppl_mixtures.model.spec import MixtureSpec
from ppl_mixtures.model.transforms import StickBreaking
from ppl_mixtures.validation import check_int, check_points

__all__ = [
    "DATA_NAME",
    "SIGNATURE",
    "build_builtin_model",
    "build_latent_model",
    "build_marginal_model",
    "initial_point",
    "initial_points",
    "mixture_random",
    "observed_data",
]

#: gufunc signature of the observed CustomDist: weights (K), means (K, D), obs_sd (K, D).
SIGNATURE = "(k),(k,d),(k,d)->(d)"
#: Name of the shared variable through which the marginal model observes its data.
DATA_NAME = "x_data"


# --------------------------------------------------------------------------- shared pieces
def _checked(points: ArrayLike, spec: MixtureSpec, check_input: bool) -> np.ndarray:
    """``points`` validated (float64, (n_samples, n_features)) when ``check_input``; else as
    given (the caller validated it)."""
    if not check_input:
        return points
    points = check_points(points, n_components=spec.n_components)
    spec.check_features(points.shape[1])
    return points


def _coords(points: np.ndarray, spec: MixtureSpec, *, with_obs: bool = True) -> dict:
    n_samples, n_features = points.shape
    coords: dict[str, Any] = {
        "component": np.arange(spec.n_components),
        "feature": np.arange(n_features),
    }
    if spec.ordered and n_features > 1:
        coords["feature_rest"] = np.arange(1, n_features)
    coords.update(cov_models.covariance_coords(spec, n_features))
    coords.update(dp.dp_coords(spec))
    if with_obs:
        coords["obs"] = np.arange(n_samples)
    return coords


def _add_means(spec: MixtureSpec, n_features: int) -> Variable:
    """The component means, (K, D); feature 0 ordered when ``spec.ordered``."""
    prior_mean, prior_sd = spec.prior_mean(n_features), spec.prior_sd(n_features)
    if not spec.ordered:
        return pm.Normal("means", mu=prior_mean, sigma=prior_sd, dims=("component", "feature"))
    # Ordering a (K, D) array would order the D features of each component (API_NOTES §2);
    # order feature 0 along K and leave the others free.
    first = pm.Normal(
        "means_first", mu=prior_mean[0], sigma=prior_sd[0], dims="component", transform=ordered
    )
    columns = [first[:, None]]
    if n_features > 1:
        columns.append(
            pm.Normal(
                "means_rest",
                mu=prior_mean[1:],
                sigma=prior_sd[1:],
                dims=("component", "feature_rest"),
            )
        )
    return pm.Deterministic("means", pt.concatenate(columns, axis=1), dims=("component", "feature"))


def _add_weights(spec: MixtureSpec) -> Variable:
    """The mixture weights, (K,): Dirichlet, fixed, or DP stick-breaking (:mod:`.dp`)."""
    if spec.fixed_weights:
        return pm.Deterministic(
            "weights", pt.as_tensor(spec.fixed_weight_values()), dims="component"
        )
    if dp.is_dp(spec):
        return dp.add_dp_weights(spec)
    if spec.weights_transform == "stick_breaking":
        return pm.Dirichlet(
            "weights", a=spec.alpha(), dims="component", default_transform=StickBreaking()
        )
    return pm.Dirichlet("weights", a=spec.alpha(), dims="component")  # PyMC's simplex


def _add_obs_sd(spec: MixtureSpec, n_features: int) -> Variable:
    """The observation sds, (K, D): a constant, or precision^(-1/2) with a Gamma prior; for
    the other covariance types the parameter :func:`cov_models.add_covariance` returns
    (spherical: sds (K, D); full and tied: precision Cholesky factors (K, D, D))."""
    if spec.covariance != "diag":
        return cov_models.add_covariance(spec, n_features)
    if not spec.learned_obs_sd:
        return pt.as_tensor(spec.known_obs_sd(n_features))
    precision = pm.Gamma(
        "obs_precision",
        alpha=spec.precision_prior_shape,
        beta=spec.precision_prior_rate,
        dims=("component", "feature"),
    )
    return pm.Deterministic("obs_sd", 1.0 / pt.sqrt(precision), dims=("component", "feature"))


def _add_parameters(points: np.ndarray, spec: MixtureSpec) -> tuple[Variable, Variable, Variable]:
    n_features = points.shape[1]
    return _add_weights(spec), _add_means(spec, n_features), _add_obs_sd(spec, n_features)


def mixture_random(
    weights: ArrayLike,
    means: ArrayLike,
    obs_sd: ArrayLike,
    rng: np.random.Generator | int | None = None,
    size: int | tuple[int, ...] | None = None,
) -> np.ndarray:
    """Draw observations from the mixture (the ``random`` of the observed CustomDist).

    Parameters
    ----------
    weights : ndarray of shape (..., n_components)
    means, obs_sd : ndarray of shape (..., n_components, n_features)
    rng : numpy.random.Generator
    size : tuple of int, optional
        Batch shape of the draws (``(n_samples,)`` for the observed variable).

    Returns
    -------
    ndarray of shape size + (n_features,)
    """
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    weights, means, obs_sd = (np.asarray(a, dtype=np.float64) for a in (weights, means, obs_sd))
    if size is None:
        size = np.broadcast_shapes(weights.shape[:-1], means.shape[:-2], obs_sd.shape[:-2])
    size = tuple(np.atleast_1d(size).astype(int)) if np.ndim(size) else (int(size),)
    n_components, n_features = means.shape[-2:]
    weights = np.broadcast_to(weights, (*size, n_components))
    means = np.broadcast_to(means, (*size, n_components, n_features))
    obs_sd = np.broadcast_to(obs_sd, (*size, n_components, n_features))
    cdf = np.cumsum(weights, axis=-1)
    z = np.minimum((rng.random(size)[..., None] > cdf).sum(-1), n_components - 1)  # size
    pick = z[..., None, None]
    loc = np.take_along_axis(means, pick, axis=-2)[..., 0, :]
    scale = np.take_along_axis(obs_sd, pick, axis=-2)[..., 0, :]
    return rng.normal(loc, scale)


# --------------------------------------------------------------------------- builders
def build_marginal_model(
    points: ArrayLike, spec: MixtureSpec, batch_size: int | None = None, *, check_input: bool = True
) -> pm.Model:
    """The mixture with z marginalized by our density; what the PyMC engines fit.

    Parameters
    ----------
    points : array-like of shape (n_samples, n_features) or (n_samples,)
    spec : MixtureSpec
    batch_size : int, optional
        When given, the observed variable sees ``pm.Minibatch(points, batch_size=...)``
        with ``total_size=n_samples``, so its logp is rescaled to the full data (for
        ADVI/SVI). The model then has no ``obs`` dimension on ``x``.
    check_input : bool
        False skips validating ``points`` (the engines pass validated data).

    Returns
    -------
    pm.Model
        Variables as in the module table; ``x`` is a ``pm.CustomDist`` whose logp is
        :func:`~ppl_mixtures.model.density.mixture_logp_pt` (one value per observation) and whose
        ``random`` is :func:`mixture_random`, so ``pm.compute_log_likelihood`` and
        ``pm.sample_posterior_predictive`` work. The data are the shared variable
        :func:`observed_data` returns (all rows, also when minibatched).
    """
    points = _checked(points, spec, check_input)
    n_samples = points.shape[0]
    if batch_size is not None:
        batch_size = check_int(
            "batch_size",
            batch_size,
            minimum=1,
            maximum=n_samples,
            hint="Use a batch no larger than the data, or batch_size=None",
        )
    # borrowed, not copied: the model reads the caller's (validated) array
    data = pytensor.shared(points, name=DATA_NAME, borrow=True, shape=points.shape)
    with pm.Model(coords=_coords(points, spec, with_obs=batch_size is None)) as model:
        weights, means, obs_sd = _add_parameters(points, spec)
        common = dict(logp=mixture_logp_pt, random=mixture_random, signature=SIGNATURE)
        if spec.covariance in cov_models.FULL_TYPES:  # obs_sd holds precision Cholesky factors
            common = dict(
                logp=cov_models.full_logp,
                random=cov_models.full_random,
                signature=cov_models.FULL_SIGNATURE,
            )
        if batch_size is None:
            pm.CustomDist(
                "x", weights, means, obs_sd, observed=data, dims=("obs", "feature"), **common
            )
        else:
            batch = pm.Minibatch(data, batch_size=batch_size)
            pm.CustomDist(
                "x", weights, means, obs_sd, observed=batch, total_size=n_samples, **common
            )
    return model


def observed_data(model: pm.Model) -> SharedVariable:
    """The shared variable holding the data a :func:`build_marginal_model` model observes.

    Every row of the data, also when the model observes minibatches of it. To evaluate a
    compiled graph of the model on other data of the same shape, substitute this variable
    (``graph_replace(graph, {observed_data(model): new_data})``) or ``set_value`` it.

    Raises
    ------
    ValueError
        When ``model`` was not built by :func:`build_marginal_model`.
    """
    observed = model.rvs_to_values.get(model.named_vars.get("x"))
    if observed is not None:
        for var in ancestors([observed]):
            if isinstance(var, SharedVariable) and var.name == DATA_NAME:
                return var
    raise ValueError(
        f"model: expected a model from build_marginal_model (its observed 'x' "
        f"reads the shared variable {DATA_NAME!r}), got one without it. Build "
        f"the model with ppl_mixtures.inference.pymc.models.build_marginal_model."
    )


def build_builtin_model(
    points: ArrayLike, spec: MixtureSpec, *, check_input: bool = True
) -> pm.Model:
    """The same model with PyMC's own mixture likelihood (the oracle).

    D = 1 uses ``pm.NormalMixture`` (observed ``x`` of dims (obs,)); D > 1 uses
    ``pm.Mixture`` over a batch of K diagonal ``pm.MvNormal`` components (observed ``x`` of
    dims (obs, feature)). Parameters and priors are those of :func:`build_marginal_model`;
    ``check_input=False`` skips validating ``points``.
    """
    points = _checked(points, spec, check_input)
    n_features = points.shape[1]
    with pm.Model(coords=_coords(points, spec)) as model:
        weights, means, obs_sd = _add_parameters(points, spec)
        if spec.covariance in cov_models.FULL_TYPES:  # obs_sd: precision Cholesky factors
            tau = pt.matmul(obs_sd, pt.swapaxes(obs_sd, -1, -2))  # Lambda_k = L_k L_k^T
            pm.Mixture(
                "x",
                w=weights,
                comp_dists=pm.MvNormal.dist(mu=means, tau=tau),
                observed=points,
                dims=("obs", "feature"),
            )
        elif n_features == 1:
            pm.NormalMixture(
                "x",
                w=weights,
                mu=means[:, 0],
                sigma=obs_sd[:, 0],
                observed=points[:, 0],
                dims="obs",
            )
        else:
            cov = pt.eye(n_features) * (obs_sd**2)[:, :, None]  # (K, D, D), diagonal
            pm.Mixture(
                "x",
                w=weights,
                comp_dists=pm.MvNormal.dist(mu=means, cov=cov),
                observed=points,
                dims=("obs", "feature"),
            )
    return model


def build_latent_model(
    points: ArrayLike, spec: MixtureSpec, *, check_input: bool = True
) -> pm.Model:
    """The mixture with explicit assignments ``z`` (dims obs), for teaching.

    ``z_i ~ Categorical(weights)`` and ``x_id ~ Normal(means[z_i, d], obs_sd[z_i, d])``.
    Gradient samplers cannot move ``z``; sample it with ``pm.CategoricalGibbsMetropolis``.
    ``check_input=False`` skips validating ``points``. Diagonal covariances only.
    """
    if spec.covariance != "diag":
        raise NotImplementedError(
            f"spec: build_latent_model serves covariance='diag' only, got "
            f"covariance={spec.covariance!r}. Use build_marginal_model for that spec."
        )
    points = _checked(points, spec, check_input)
    with pm.Model(coords=_coords(points, spec)) as model:
        weights, means, obs_sd = _add_parameters(points, spec)
        z = pm.Categorical("z", p=weights, dims="obs")
        pm.Normal("x", mu=means[z], sigma=obs_sd[z], observed=points, dims=("obs", "feature"))
    return model


# --------------------------------------------------------------------------- start values
def initial_point(
    spec: MixtureSpec,
    points: ArrayLike,
    random_seed: int | None = None,
    *,
    check_input: bool = True,
) -> dict[str, np.ndarray]:
    """Constrained starting values, valid for every spec (including ``ordered``).

    The means start at K data points spread along feature 0 (the points at the
    (k + 1/2)/K quantiles of feature 0, or K distinct random points when ``random_seed``
    is given), sorted so that ``means[:, 0]`` strictly increases; the weights at 1/K (DP
    specs: the sticks v_k = 1 / (K - k + 1) that give weights 1/K, and a learned alpha at
    its prior mean); the learned precisions at 1 / var(points) per feature.

    Parameters
    ----------
    spec : MixtureSpec
    points : array-like of shape (n_samples, n_features) or (n_samples,)
    random_seed : int, optional
    check_input : bool
        False skips validating ``points``.

    Returns
    -------
    dict
        By free-variable name (``means`` or ``means_first``/``means_rest``, ``weights`` or
        ``dp_sticks``/``dp_alpha``, ``obs_precision``), for ``pm.sample(initvals=...)`` / ``pm.fit(start=...)``.
    """
    points = _checked(points, spec, check_input)
    n_samples, n_features = points.shape
    K = spec.n_components
    by_first = np.argsort(points[:, 0], kind="stable")
    if random_seed is None:
        rows = by_first[((np.arange(K) + 0.5) / K * n_samples).astype(int)]
    else:
        rows = np.random.default_rng(random_seed).choice(n_samples, size=K, replace=False)
        rows = rows[np.argsort(points[rows, 0], kind="stable")]
    # rows are sorted by feature 0: strictly increasing there even with ties (the ordered
    # transform needs log(diff) > -inf)
    start = _means_start(spec, _ordered_means(points[rows], points))
    if dp.is_dp(spec):  # the sticks of equal weights: v_k = 1 / (K - k + 1)
        start.update(dp.dp_start(spec, np.full(K, 1.0 / K)))
    elif not spec.fixed_weights:
        start["weights"] = np.full(K, 1.0 / K)
    if spec.learned_obs_sd:
        var = np.clip(points.var(axis=0), 1e-6, 1e6) if n_samples > 1 else np.ones(n_features)
        start["obs_precision"] = np.broadcast_to(1.0 / var, (K, n_features)).copy()
    start.update(cov_models.covariance_start(spec, points))
    return start


def _means_start(spec: MixtureSpec, means: np.ndarray) -> dict[str, np.ndarray]:
    """The means (K, D) as the free variables of the spec's model (split when ordered)."""
    if not spec.ordered:
        return {"means": means}
    start = {"means_first": means[:, 0]}
    if means.shape[1] > 1:
        start["means_rest"] = means[:, 1:]
    return start


def _ordered_means(means: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Means (K, D) sorted by feature 0, made strictly increasing there (ties nudged)."""
    means = means[np.argsort(means[:, 0], kind="stable")].copy()
    spread = max(float(np.ptp(points[:, 0])), 1.0) * 1e-3
    for k in range(1, means.shape[0]):
        means[k, 0] = max(means[k, 0], means[k - 1, 0] + spread)
    return means


def _kmeans_pp_rows(points: np.ndarray, n_components: int, rng: np.random.Generator) -> np.ndarray:
    """K row indices chosen by k-means++ seeding (D^2 sampling), shape (K,).

    The first row is uniform; each next row is drawn with probability proportional to its
    squared distance from the rows already chosen, so the K points spread over the data
    (and different seeds choose different points). Rows are distinct while the data have
    that many distinct points.
    """
    n_samples = points.shape[0]
    rows = [int(rng.integers(n_samples))]
    dist2 = np.sum((points - points[rows[0]]) ** 2, axis=1)
    for _ in range(1, n_components):
        total = float(dist2.sum())
        if total > 0 and np.isfinite(total):
            row = int(rng.choice(n_samples, p=dist2 / total))
        else:  # every point coincides with a chosen one: any unchosen row
            free = np.setdiff1d(np.arange(n_samples), rows)
            row = int(rng.choice(free)) if free.size else int(rng.integers(n_samples))
        rows.append(row)
        dist2 = np.minimum(dist2, np.sum((points - points[row]) ** 2, axis=1))
    return np.asarray(rows)


#: initial_points: Lloyd iterations, rows used for k-means, and the jitter in data sds.
_KMEANS_ITERS = 10
_KMEANS_ROWS = 10_000
_JITTER_SCALE = 0.25


def _kmeans_centers(points: np.ndarray, n_components: int, rng: np.random.Generator) -> np.ndarray:
    """k-means centers (K, D): k-means++ seeds, then ``_KMEANS_ITERS`` Lloyd iterations.

    Runs on at most ``_KMEANS_ROWS`` rows drawn with ``rng`` (cheap at any N); an empty
    cluster keeps its previous center.
    """
    if points.shape[0] > _KMEANS_ROWS:
        points = points[rng.choice(points.shape[0], size=_KMEANS_ROWS, replace=False)]
    centers = points[_kmeans_pp_rows(points, n_components, rng)].copy()
    for _ in range(_KMEANS_ITERS):
        dist2 = ((points[:, None, :] - centers[None]) ** 2).sum(-1)  # (n, K)
        label = dist2.argmin(1)
        for k in range(n_components):
            members = points[label == k]
            if members.shape[0]:
                centers[k] = members.mean(0)
    return centers


def initial_points(
    spec: MixtureSpec,
    points: ArrayLike,
    n_chains: int,
    random_seed: int | None = None,
    *,
    check_input: bool = True,
) -> list[dict[str, np.ndarray]]:
    """One overdispersed start per chain, reproducible from ``random_seed``.

    Chain c draws its own start from its own stream (``SeedSequence(random_seed)
    .spawn(n_chains)[c]``):

    - means: k-means centers (``_KMEANS_ITERS`` Lloyd iterations from k-means++ seeds,
      on at most ``_KMEANS_ROWS`` rows drawn for the chain), plus Normal jitter of
      ``_JITTER_SCALE`` x the data's sd per feature, sorted by feature 0 (strictly
      increasing, so the ``ordered`` transform is finite). Different seeds can end in
      different k-means optima, and the jitter alone is a quarter of the data's spread,
      many posterior sds once N is more than a few dozen (the posterior sd shrinks like
      1/sqrt(N)); chains that end in different modes then show up in R-hat, instead of all
      starting at one point. Starting at the centers (not at raw k-means++ points) keeps
      a chain out of the minor modes an ``ordered`` spec has when the ordering on feature
      0 puts a cluster's other features in the wrong component;
    - weights (Dirichlet specs): a draw from Dirichlet(1, ..., 1) (uniform on the simplex),
      floored at 0.1/K and renormalized so no component starts empty; DP specs start at
      the sticks of such a draw, and a learned alpha at its prior mean times exp(u),
      u ~ Uniform(-1, 1) (drawn after everything else, so other specs' streams are unchanged);
    - learned precisions: 1 / var(points) per feature times exp(u), u ~ Uniform(-1, 1) per
      component and feature (sds from 0.6x to 1.6x the data's sd).

    ``pm.sample`` (NUTS) adds its own uniform jitter in [-1, 1] on the unconstrained scale
    on top of these.

    Parameters
    ----------
    spec : MixtureSpec
    points : array-like of shape (n_samples, n_features) or (n_samples,)
    n_chains : int
    random_seed : int, optional
    check_input : bool
        False skips validating ``points`` and ``n_chains``.

    Returns
    -------
    list of dict
        ``n_chains`` dicts keyed like :func:`initial_point`, for
        ``pm.sample(initvals=...)`` (a list holds one dict per chain).
    """
    if check_input:
        points = _checked(points, spec, check_input)
        n_chains = check_int("n_chains", n_chains, minimum=1, hint="Pass the number of chains")
    K = spec.n_components
    n_samples, n_features = points.shape
    # the deterministic start (data quantiles; random_seed=None) and the jitter scale are
    # the same for every chain; each chain replaces all of the start's values below
    base = initial_point(spec, points, check_input=False)
    scale = _JITTER_SCALE * (points.std(axis=0) if n_samples > 1 else np.ones(n_features))
    starts = []
    for seq in np.random.SeedSequence(random_seed).spawn(n_chains):
        rng = np.random.default_rng(seq)
        start = dict(base)
        centers = _kmeans_centers(points, K, rng)
        means = _ordered_means(centers + scale * rng.standard_normal(centers.shape), points)
        start.update(_means_start(spec, means))
        if not spec.fixed_weights:
            weights = np.maximum(rng.dirichlet(np.ones(K)), 0.1 / K)
            weights = weights / weights.sum()
            if dp.is_dp(spec):  # the same weights as sticks (and alpha drawn last)
                start.update(dp.dp_start(spec, weights))
            else:
                start["weights"] = weights
        if spec.learned_obs_sd:
            start["obs_precision"] = start["obs_precision"] * np.exp(
                rng.uniform(-1.0, 1.0, size=(K, n_features))
            )
        if spec.covariance != "diag":  # drawn last: the diag streams above stay as they were
            start.update(cov_models.covariance_start(spec, points, rng))
        if dp.is_dp(spec) and spec.dp_alpha_prior is not None:
            start.update(dp.dp_start(spec, weights, rng))  # same sticks, alpha overdispersed
        starts.append(start)
    return starts
