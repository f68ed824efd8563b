"""ppl-mixtures: one Gaussian mixture model, many inference engines, compared side by side.

The package is layered; each layer imports only the layers below it (``.importlinter``
checks this in CI)::

    app        the ppl-mixtures command, the demo, the reference cache
    estimator  BayesianMixture, the scikit-learn estimator
    present    figures, tables, report folders
    analysis   relabeling, diagnostics, comparisons (data only)
    inference  the registry, fit(), engines (conjugate/: CAVI, SVI, EM; pymc/: the rest)
    results    MixtureFit and its typed records
    model      the spec, densities, transforms, exact evidence | datasets
    kernels    numba math
    validation argument checks and the package's warnings and errors

    from ppl_mixtures import MixtureSpec, fit, compare, datasets
    spec = MixtureSpec(n_components=2, mean_prior_sd=1.0, dirichlet_alpha=0.1, obs_sd=1.0)
    points = datasets.advi_notebook_points(n_samples=100)
    nuts = fit(points, spec, engine="nuts", draws=1000, chains=4, random_seed=1)
"""

from ppl_mixtures import datasets
from ppl_mixtures.analysis import diagnostics
from ppl_mixtures.analysis.compare import Comparison, compare
from ppl_mixtures.analysis.diagnostics import responsibilities
from ppl_mixtures.analysis.relabel import relabel
from ppl_mixtures.analysis.select_k import SelectK, select_k
from ppl_mixtures.inference.fit import fit
from ppl_mixtures.inference.registry import available_engines
from ppl_mixtures.model import evidence
from ppl_mixtures.model.spec import MixtureSpec
from ppl_mixtures.results import ConvergenceWarning, MixtureFit, Timings
from ppl_mixtures.validation import DataScaleWarning, EvidenceWarning, NumericalError

__version__ = "0.1.0"


def __getattr__(name: str):
    """Import ``BayesianMixture`` on first use: scikit-learn takes ~2 s to import, which
    ``import ppl_mixtures`` (and so every CLI call) should not pay when it is not used."""
    if name == "BayesianMixture":
        from ppl_mixtures.estimator import BayesianMixture

        return BayesianMixture
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | {"BayesianMixture"})


__all__ = [
    "BayesianMixture",
    "Comparison",
    "ConvergenceWarning",
    "DataScaleWarning",
    "EvidenceWarning",
    "MixtureFit",
    "MixtureSpec",
    "NumericalError",
    "SelectK",
    "Timings",
    "__version__",
    "available_engines",
    "compare",
    "datasets",
    "diagnostics",
    "evidence",
    "fit",
    "relabel",
    "responsibilities",
    "select_k",
]
