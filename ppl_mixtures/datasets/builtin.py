"""The data shipped with the package: the seeds' examples and Old Faithful (nothing is
downloaded)."""

from __future__ import annotations

from importlib import resources
from typing import Any

import numpy as np

from ppl_mixtures import validation as v
from ppl_mixtures.datasets.files import load_points

__all__ = [
    "ADVI_NOTEBOOK_MEANS",
    "ADVI_NOTEBOOK_OBS_SD",
    "ADVI_NOTEBOOK_WEIGHTS",
    "OLD_FAITHFUL_COLUMNS",
    "OLD_FAITHFUL_FEATURES",
    "OLD_FAITHFUL_UNITS",
    "THREE_CLUSTERS_1D_MEANS",
    "THREE_CLUSTERS_2D_MEANS",
    "THREE_CLUSTERS_2D_OBS_SD",
    "THREE_CLUSTERS_2D_SIZES",
    "advi_notebook_large_points",
    "advi_notebook_points",
    "old_faithful",
    "three_clusters_1d",
    "three_clusters_2d",
]


def _frozen(values: Any) -> np.ndarray:
    arr = np.array(values, dtype=np.float64)
    arr.setflags(write=False)
    return arr


#: Seed 001's true component means, shape (2, 2); component 0 is the small lower-left one.
ADVI_NOTEBOOK_MEANS = _frozen([[-1.0, -1.5], [1.0, 1.0]])
#: Seed 001's true weights, shape (2,).
ADVI_NOTEBOOK_WEIGHTS = _frozen([0.2, 0.8])
#: Seed 001's observation sd (identity covariance).
ADVI_NOTEBOOK_OBS_SD = 1.0

#: Seed 000's cluster centres (sd 1 each), shape (3,).
THREE_CLUSTERS_1D_MEANS = _frozen([-10.0, 0.25, 5.0])
_THREE_CLUSTERS_1D_SIZES = (333, 333, 334)

#: Our seed-002-style clusters: means (3, 2), per-feature sds (3, 2), cluster sizes.
THREE_CLUSTERS_2D_MEANS = _frozen([[1.5, 2.5], [7.5, 7.5], [8.0, 1.5]])
THREE_CLUSTERS_2D_OBS_SD = _frozen(np.sqrt([[1.2, 0.8], [0.75, 0.5], [0.6, 0.8]]))
THREE_CLUSTERS_2D_SIZES = (150, 50, 100)

#: Column names of :func:`old_faithful`: eruption duration (minutes), waiting time (minutes).
OLD_FAITHFUL_COLUMNS = ("eruptions", "waiting")
#: What the columns of :func:`old_faithful` measure, for axis labels and tables.
OLD_FAITHFUL_FEATURES = ("eruption duration", "waiting time")
#: The unit of both columns of :func:`old_faithful`: minutes.
OLD_FAITHFUL_UNITS = "min"


# --------------------------------------------------------------------------- seed 001
def _advi_notebook_draw(
    rng: np.random.RandomState, n_samples: int
) -> tuple[np.ndarray, np.ndarray]:
    """Seed 001's generator, call for call (the order of RandomState calls is the data).

    Returns
    -------
    data : ndarray of shape (n_samples, 2)
    labels : ndarray of int, shape (n_samples,)
    """
    ms = np.array(ADVI_NOTEBOOK_MEANS)
    ps = np.array(ADVI_NOTEBOOK_WEIGHTS)
    zs = np.array([rng.multinomial(1, ps) for _ in range(n_samples)]).T  # (K, N) one-hot
    xs = [
        z[:, np.newaxis] * rng.multivariate_normal(m, np.eye(2), size=n_samples)
        for z, m in zip(zs, ms, strict=True)
    ]  # K x (N, 2)
    data = np.sum(np.dstack(xs), axis=2)
    return data, np.argmax(zs, axis=0)


def advi_notebook_points(
    n_samples: int = 100, random_seed: int = 123, *, return_labels: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Seed 001's data (the PyMC3 ADVI mixture notebook), reproduced bit for bit.

    Two 2-D Gaussians with identity covariance, means :data:`ADVI_NOTEBOOK_MEANS`
    ((-1, -1.5) and (1, 1)) and weights :data:`ADVI_NOTEBOOK_WEIGHTS` (0.2, 0.8). With the
    defaults the drawn proportions are (0.13, 0.87), as printed in the notebook.

    Parameters
    ----------
    n_samples : int
        Number of points.
    random_seed : int
        Seed of the ``np.random.RandomState`` (the notebook's 123).
    return_labels : bool
        Also return the true component of each point.

    Returns
    -------
    points : ndarray of shape (n_samples, 2)
    labels : ndarray of int, shape (n_samples,)
        Only with ``return_labels=True``; 0 is the component at (-1, -1.5).

    Examples
    --------
    >>> points, labels = advi_notebook_points(return_labels=True)
    >>> points.shape, float(labels.mean())
    ((100, 2), 0.87)
    """
    n_samples = v.check_int("n_samples", n_samples, minimum=1)
    random_seed = v.check_int("random_seed", random_seed, minimum=0)
    data, labels = _advi_notebook_draw(np.random.RandomState(random_seed), n_samples)
    return (data, labels) if return_labels else data


def advi_notebook_large_points(
    n_samples: int = 100_000,
    random_seed: int = 123,
    *,
    return_labels: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Seed 001's large (minibatch) dataset: the same RandomState, continued.

    The notebook draws its 100,000 points from the generator that already drew the 100-point
    set, so this draws the 100 points first (and discards them), then ``n_samples`` more.

    Parameters
    ----------
    n_samples : int
        Number of points (the notebook's 100,000).
    random_seed : int
        Seed of the ``np.random.RandomState``.
    return_labels : bool
        Also return the true component of each point.

    Returns
    -------
    points : ndarray of shape (n_samples, 2)
    labels : ndarray of int, shape (n_samples,)
        Only with ``return_labels=True``.
    """
    n_samples = v.check_int("n_samples", n_samples, minimum=1)
    random_seed = v.check_int("random_seed", random_seed, minimum=0)
    rng = np.random.RandomState(random_seed)
    _advi_notebook_draw(rng, 100)
    data, labels = _advi_notebook_draw(rng, n_samples)
    return (data, labels) if return_labels else data


def three_clusters_1d(random_seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seed 000's 1-D data: 333, 333 and 334 points from N(-10, 1), N(0.25, 1), N(5, 1).

    The seed drew them with torch; we use ``np.random.default_rng(random_seed)``, so the
    numbers differ from the blog's but the distribution is the same. The points are in
    cluster order, as in the seed.

    Returns
    -------
    points : ndarray of shape (1000,)
    labels : ndarray of int, shape (1000,)
        0, 1, 2 for the clusters at -10, 0.25 and 5 (:data:`THREE_CLUSTERS_1D_MEANS`).
    """
    random_seed = v.check_int("random_seed", random_seed, minimum=0)
    rng = np.random.default_rng(random_seed)
    points = np.concatenate(
        [
            rng.normal(mean, 1.0, size=size)
            for mean, size in zip(THREE_CLUSTERS_1D_MEANS, _THREE_CLUSTERS_1D_SIZES, strict=True)
        ]
    )
    labels = np.repeat(np.arange(3), _THREE_CLUSTERS_1D_SIZES)
    return points, labels


def three_clusters_2d(random_seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seed 002's kind of data: three 2-D Gaussian clusters with different diagonal spreads.

    150, 50 and 100 points around :data:`THREE_CLUSTERS_2D_MEANS` ((1.5, 2.5), (7.5, 7.5),
    (8, 1.5)) with per-feature variances (1.2, 0.8), (0.75, 0.5) and (0.6, 0.8) (sds in
    :data:`THREE_CLUSTERS_2D_OBS_SD`), drawn with ``np.random.default_rng(random_seed)``, in
    cluster order. The clusters differ in size and in spread, so a model with one known
    ``obs_sd`` is misspecified here: use ``obs_sd="learned"``.

    Returns
    -------
    points : ndarray of shape (300, 2)
    labels : ndarray of int, shape (300,)
    """
    random_seed = v.check_int("random_seed", random_seed, minimum=0)
    rng = np.random.default_rng(random_seed)
    points = np.concatenate(
        [
            mean + sd * rng.standard_normal((size, 2))
            for mean, sd, size in zip(
                THREE_CLUSTERS_2D_MEANS,
                THREE_CLUSTERS_2D_OBS_SD,
                THREE_CLUSTERS_2D_SIZES,
                strict=True,
            )
        ]
    )
    labels = np.repeat(np.arange(3), THREE_CLUSTERS_2D_SIZES)
    return points, labels


# --------------------------------------------------------------------------- real data
def old_faithful() -> np.ndarray:
    """The Old Faithful geyser data: 272 eruptions, shipped with the package.

    Returns
    -------
    ndarray of shape (272, 2)
        Columns :data:`OLD_FAITHFUL_COLUMNS`: eruption duration and waiting time to the
        next eruption, both in minutes. The scales differ by ~20x: :func:`standardize`
        before using priors such as ``mean_prior_sd=1``.
    """
    source = resources.files("ppl_mixtures").joinpath("data", "old_faithful.csv")
    with resources.as_file(source) as path:
        return load_points(path)
