"""The engine registry: every inference engine, one module per algorithm.

Each engine module in :mod:`ppl_mixtures.inference.conjugate` and
:mod:`ppl_mixtures.inference.pymc` exposes ``fit(points, spec, **options) -> MixtureFit`` (and,
for CAVI/EM/SVI, ``init`` / ``step``), and registers itself by defining a module-level
``ENGINES`` tuple of :class:`Engine` records. The registry discovers modules by listing
those two packages, so adding an engine means adding one module: nothing else changes.

Engine modules never import each other, nor anything above the inference layer.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

__all__ = [
    "Engine",
    "available_engines",
    "check_covariance_served",
    "check_weights_served",
    "get_engine",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Engine:
    """A registered inference engine.

    The demo's settings per engine (quick, large-data, skip limits) live with the demo in
    :mod:`ppl_mixtures.app.demo`, not here.

    Attributes
    ----------
    name : str
        The name users pass as ``fit(..., engine=name)``.
    fit : callable
        ``fit(points, spec, **options) -> MixtureFit``; ``points`` arrives validated, as a
        float64 array of shape (n_samples, n_features).
    options : type or None
        The engine's options: a frozen, keyword-only dataclass whose fields (name, type,
        default, ``metadata["help"]``) are the valid options and whose ``__post_init__``
        checks their values. ``fit`` builds it with ``validation.build_options``; the CLI
        generates its help from it. None: the valid options are ``fit``'s keyword-only
        parameters.
    summary : str
        One line for ``--help`` and reports.
    family : {"mcmc", "vi", "point"}
        Samplers, variational methods, point estimators.
    scalable : bool
        Suited to 1e5+ points (minibatch or one cheap pass per iteration).
    covariances : tuple of str
        The ``MixtureSpec.covariance`` types the engine serves; ``fit`` refuses the others
        with a NotImplementedError naming the engines that serve them.
    weights : tuple of str
        The ``MixtureSpec.weights`` kinds the engine serves ("dirichlet", "fixed", "dp" for
        truncated Dirichlet-process weights); ``fit`` refuses the others with a
        NotImplementedError naming the engines that serve them. Engines without DP support
        declare ``weights=("dirichlet", "fixed")``.
    """

    name: str
    fit: Callable[..., Any]
    summary: str
    family: Literal["mcmc", "vi", "point"]
    options: type | None = None
    scalable: bool = False
    covariances: tuple[str, ...] = ("diag",)
    weights: tuple[str, ...] = ("dirichlet", "fixed", "dp")


_REGISTRY: dict[str, Engine] | None = None
#: Engine modules that failed to import, with the error (shown when an engine is missing).
_IMPORT_ERRORS: dict[str, BaseException] = {}


#: The packages whose modules may define ``ENGINES``.
ENGINE_PACKAGES = ("ppl_mixtures.inference.conjugate", "ppl_mixtures.inference.pymc")


def _engine_modules() -> list[str]:
    names = []
    for package in ENGINE_PACKAGES:
        path = importlib.import_module(package).__path__
        names += [
            f"{package}.{info.name}"
            for info in pkgutil.iter_modules(path)
            if not info.name.startswith("_")
        ]
    return sorted(names, key=lambda name: name.rsplit(".", 1)[1])


def _discover() -> dict[str, Engine]:
    registry: dict[str, Engine] = {}
    for module_name in _engine_modules():
        info_name = module_name.rsplit(".", 1)[1]
        try:
            module = importlib.import_module(module_name)
        except Exception as err:  # one broken engine must not take the others down
            _IMPORT_ERRORS[info_name] = err
            logger.warning(
                "engine module %s failed to import: %s: %s", info_name, type(err).__name__, err
            )
            continue
        for engine in getattr(module, "ENGINES", ()):
            if engine.name in registry:
                raise RuntimeError(
                    f"engine name {engine.name!r} registered twice "
                    f"(second time by {module.__name__})"
                )
            registry[engine.name] = engine
    return registry


def available_engines() -> Mapping[str, Engine]:
    """All registered engines by name (modules are imported on first call)."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = _discover()
    return MappingProxyType(_REGISTRY)


def get_engine(name: str) -> Engine:
    """The engine registered as ``name``; a ValueError listing the valid names otherwise."""
    engines = available_engines()
    if not isinstance(name, str) or name not in engines:
        listed = ", ".join(sorted(engines))
        broken = "".join(
            f" Engine module {mod!r} failed to import ({type(err).__name__}: {err})."
            for mod, err in _IMPORT_ERRORS.items()
        )
        raise ValueError(
            f"engine: expected one of {listed}, got {name!r}. "
            f"Pick one of those (ppl-mixtures fit --help describes each).{broken}"
        )
    return engines[name]


def check_covariance_served(name: str, covariance: str) -> None:
    """Raise NotImplementedError when engine ``name`` does not serve ``covariance``."""
    _check_served(name, "covariance", covariance)


def check_weights_served(name: str, weights: str) -> None:
    """Raise NotImplementedError when engine ``name`` does not serve ``spec.weights``."""
    _check_served(name, "weights", weights)


def _check_served(name: str, field: str, value: str) -> None:
    """The refusal of a spec field's value (``Engine.covariances`` / ``Engine.weights``),
    naming the engines that do serve it."""
    engines = available_engines()
    served = {"covariance": "covariances", "weights": "weights"}[field]
    own = getattr(engines[name], served)
    if value in own:
        return
    serving = sorted(n for n, e in engines.items() if value in getattr(e, served))
    can = ", ".join(serving) if serving else "none yet"
    raise NotImplementedError(
        f"engine {name!r} does not serve {field}={value!r} (it serves "
        f"{', '.join(own)}). Engines that do: {can}."
    )
