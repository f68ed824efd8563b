"""Datasets: the seeds' examples, synthetic mixtures, Old Faithful, and reading user files.

Built-in data (nothing is downloaded)::

    advi_notebook_points()        seed 001's 100 2-D points, bit for bit (np.random.RandomState(123))
    advi_notebook_large_points()  seed 001's 100,000-point set (the same RandomState, continued)
    three_clusters_1d()           seed 000's 1000 points around -10, 0.25 and 5
    three_clusters_2d()           seed 002's kind of data: three 2-D clusters, unequal spreads
    old_faithful()                272 eruptions of Old Faithful (duration, waiting time)

Helpers::

    make_mixture(n_samples, means, weights, obs_sd, random_seed)   points and true labels
    standardize(points)                                           (z, center, scale)
    load_points(path, columns=None, dropna=False)                 CSV (header optional) or .npy

Modules (import from ``ppl_mixtures.datasets``, which re-exports every public name):
:mod:`.builtin` (the shipped data), :mod:`.synthetic` (``make_mixture``, ``standardize``),
:mod:`.files` (``load_points``, ``load_table``) and :mod:`.readers` (CSV and .npy parsing).
"""

from ppl_mixtures.datasets.builtin import (
    ADVI_NOTEBOOK_MEANS,
    ADVI_NOTEBOOK_OBS_SD,
    ADVI_NOTEBOOK_WEIGHTS,
    OLD_FAITHFUL_COLUMNS,
    OLD_FAITHFUL_FEATURES,
    OLD_FAITHFUL_UNITS,
    THREE_CLUSTERS_1D_MEANS,
    THREE_CLUSTERS_2D_MEANS,
    THREE_CLUSTERS_2D_OBS_SD,
    THREE_CLUSTERS_2D_SIZES,
    advi_notebook_large_points,
    advi_notebook_points,
    old_faithful,
    three_clusters_1d,
    three_clusters_2d,
)
from ppl_mixtures.datasets.files import load_points, load_table
from ppl_mixtures.datasets.synthetic import make_mixture, standardize

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
    "load_points",
    "load_table",
    "make_mixture",
    "old_faithful",
    "standardize",
    "three_clusters_1d",
    "three_clusters_2d",
]
