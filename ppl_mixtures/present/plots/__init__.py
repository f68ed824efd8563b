"""Figures for one :class:`~ppl_mixtures.results.MixtureFit` or a
:class:`~ppl_mixtures.analysis.compare.Comparison` (matplotlib, headless).

Every function returns a ``matplotlib.figure.Figure`` with a title, labelled axes (with
units) and a legend placed outside the axes, so it covers no data; nothing is shown (no
``plt.show()``), so the functions work under the Agg backend in tests, reports and CI.
Engines keep one colour across all figures.

- :func:`plot_data`: one panel per engine (equal aspect): the data, each component's
  posterior-mean mean, the 2-sd ellipse of that mean's posterior (its uncertainty) and the
  2-sd ellipse of the component density (``obs_sd``; for a full or tied covariance its 1-
  and 2-sd contours from the posterior-mean or known ``obs_cov``); for 1-D data a histogram
  with each engine's fitted density and, below it, intervals per engine;
- :func:`plot_elbo`: ELBO traces of the variational engines, in nats, with log p(x) (an
  estimate with its se unless exact) and each engine's exact final ELBO;
- :func:`plot_marginals`: each parameter's posterior marginal, one outline per engine;
- :func:`plot_forest`: 50 % and 89 % intervals, one panel per parameter group and feature;
- :func:`plot_trace`: per-chain densities and traces of one fit, with a chain colour key;
- :func:`plot_responsibilities`: points coloured by their component responsibilities
  (any covariance type);
- :func:`plot_select_k`: what :func:`ppl_mixtures.select_k` found, each criterion's
  difference from its best K (nats or BIC units) and the DP's P(K | x).

The correlations of a learned full or tied covariance (``obs_corr[k,i,j]``, i < j) are
parameters like the others in :func:`plot_marginals`, :func:`plot_trace` and
:func:`plot_forest` (one panel per feature pair; x axis "correlation (unitless)").

One fit needs no comparison: :func:`plot_fit_data`, :func:`plot_fit_marginals`,
:func:`plot_trace` and :func:`plot_responsibilities` take a ``MixtureFit`` (also as the
methods ``fit.plot_data()``, ``fit.plot_marginals()``, ``fit.plot_trace()``). The
comparison's :func:`plot_data` and :func:`plot_marginals` draw the same single-fit panel
for each engine (one drawing code path).

Feature names and units: every function takes ``feature_names`` (one name per feature),
``units`` (one string, or one per feature) and ``data_transform=(center, scale)``. With
``data_transform`` the fit is taken to be on standardized data ``(x - center) / scale``
(as from :func:`ppl_mixtures.datasets.standardize`) and everything is drawn in data units:
points and means as ``center + scale * value``, sds as ``scale * value``. When an argument
is not given, an attribute of the same name on the comparison is used if it has one
(``feature_names``, ``units``, ``data_transform``); otherwise "feature d (data units)".

The figures live one family per module (:mod:`.data`, :mod:`.elbo`, :mod:`.marginals`,
:mod:`.forest`, :mod:`.trace`, :mod:`.responsibilities`, :mod:`.select_k`; shared helpers in :mod:`.common`);
this package re-exports every public function, so ``plots.<name>`` is the API.
"""

from ppl_mixtures.present.plots.common import FeatureAxes, engine_colors
from ppl_mixtures.present.plots.data import plot_data, plot_fit_data
from ppl_mixtures.present.plots.elbo import plot_elbo
from ppl_mixtures.present.plots.forest import INTERVAL_PROBS, plot_forest
from ppl_mixtures.present.plots.marginals import plot_fit_marginals, plot_marginals
from ppl_mixtures.present.plots.responsibilities import plot_responsibilities
from ppl_mixtures.present.plots.select_k import plot_select_k
from ppl_mixtures.present.plots.trace import plot_trace

__all__ = [
    "INTERVAL_PROBS",
    "FeatureAxes",
    "engine_colors",
    "plot_data",
    "plot_elbo",
    "plot_fit_data",
    "plot_fit_marginals",
    "plot_forest",
    "plot_marginals",
    "plot_responsibilities",
    "plot_select_k",
    "plot_trace",
]
