"""ppl-mixtures: one Gaussian mixture model, many inference engines, compared side by side.

    from ppl_mixtures import MixtureSpec, fit, compare, datasets
    spec = MixtureSpec(n_components=2, mean_prior_sd=1.0, dirichlet_alpha=0.1, obs_sd=1.0)
    points = datasets.advi_notebook_points(n_samples=100)
    nuts = fit(points, spec, engine="nuts", draws=1000, chains=4, random_seed=1)
"""

from . import datasets
from .compare import Comparison, compare
from .diagnostics import responsibilities
from .engines import available_engines
from .fit import fit
from .relabel import relabel
from .results import ConvergenceWarning, MixtureFit, Timings
from .spec import MixtureSpec
from .validation import DataScaleWarning, EvidenceWarning, NumericalError

__version__ = "0.1.0"


def __getattr__(name: str):
    """Import ``BayesianMixture`` on first use: scikit-learn takes ~2 s to import, which
    ``import ppl_mixtures`` (and so every CLI call) should not pay when it is not used."""
    if name == "BayesianMixture":
        from .estimator import BayesianMixture

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
    "Timings",
    "__version__",
    "available_engines",
    "compare",
    "datasets",
    "fit",
    "relabel",
    "responsibilities",
]
