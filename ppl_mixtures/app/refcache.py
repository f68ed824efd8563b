"""A disk cache for expensive reference fits, keyed by everything that determines them.

A strong NUTS reference (4 chains x 1000 draws on 100,000 points) costs about a minute;
the demo and the CLI re-run it only when something that changes its numbers changed.
The key is a SHA-256 of:

- the data: dtype, shape and bytes of the validated points;
- the model: ``repr(spec)`` (a frozen dataclass: every prior and option);
- the engine name and every option it runs with (``random_seed`` included);
- the versions of ppl-mixtures, PyMC, PyTensor, NumPy and ArviZ, and the source of the
  ppl_mixtures package itself (an edited engine invalidates every entry).

Entries are pickles of the whole :class:`~ppl_mixtures.results.MixtureFit`, written
atomically (a temporary file in the same folder, then ``os.replace``), so a crash leaves
either the old entry or none. A file that cannot be read is treated as a miss and
replaced. The folder is ``$PPL_MIXTURES_CACHE`` when set, else
``~/.cache/ppl-mixtures/fits``; it holds only what this module wrote (pickles are
executable, so point it at a folder only you can write to).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import tempfile
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from ppl_mixtures.model.spec import MixtureSpec
from ppl_mixtures.results import MixtureFit

__all__ = ["cache_dir", "cache_key", "cached_fit"]

_SUFFIX = ".fit.pkl"


def cache_dir() -> Path:
    """Where entries live: ``$PPL_MIXTURES_CACHE`` or ``~/.cache/ppl-mixtures/fits``."""
    given = os.environ.get("PPL_MIXTURES_CACHE")
    if given:
        return Path(given).expanduser()
    return Path.home() / ".cache" / "ppl-mixtures" / "fits"


@cache
def _code_fingerprint() -> str:
    """Versions of the numeric stack plus a hash of this package's own source files."""
    from importlib.metadata import PackageNotFoundError, version

    digest = hashlib.sha256()
    for dist in ("ppl-mixtures", "pymc", "pytensor", "numpy", "arviz"):
        try:
            digest.update(f"{dist}={version(dist)};".encode())
        except PackageNotFoundError:
            digest.update(f"{dist}=?;".encode())
    root = Path(__file__).resolve().parents[1]  # the whole package's source
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def cache_key(
    points: np.ndarray, spec: MixtureSpec, engine: str, options: Mapping[str, Any]
) -> str:
    """The hex SHA-256 that names a fit's entry (see the module docs for what it covers)."""
    points = np.ascontiguousarray(points, dtype=np.float64)
    digest = hashlib.sha256()
    digest.update(f"{points.dtype.str}{points.shape}".encode())
    digest.update(points.tobytes())
    digest.update(repr(spec).encode())
    digest.update(engine.encode())
    digest.update(json.dumps(_jsonable(dict(options)), sort_keys=True, default=repr).encode())
    digest.update(_code_fingerprint().encode())
    return digest.hexdigest()


def _dump(fit: MixtureFit) -> bytes:
    return pickle.dumps(fit, protocol=pickle.HIGHEST_PROTOCOL)


def _load(path: Path) -> MixtureFit | None:
    try:
        with path.open("rb") as handle:
            fit = pickle.load(handle)
    except Exception:  # a truncated or foreign file is a miss, never an error
        return None
    return fit if isinstance(fit, MixtureFit) else None


def _store(path: Path, fit: MixtureFit) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(_dump(fit))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cached_fit(
    points: np.ndarray,
    spec: MixtureSpec,
    engine: str,
    options: Mapping[str, Any],
    run: Callable[[], MixtureFit],
    *,
    directory: str | os.PathLike | None = None,
) -> tuple[MixtureFit, bool]:
    """The fit for this (data, spec, engine, options): from the cache, or ``run()`` and store.

    Parameters
    ----------
    points : ndarray of shape (n_samples, n_features)
        The data exactly as the engine sees them.
    spec, engine, options
        What the fit answers and how; ``options`` must hold every option ``run`` uses.
    run : callable
        Computes the fit on a miss.
    directory : path, optional
        The cache folder (default :func:`cache_dir`).

    Returns
    -------
    fit : MixtureFit
    hit : bool
        True when the fit came from the cache.
    """
    folder = Path(directory) if directory is not None else cache_dir()
    path = folder / f"{cache_key(points, spec, engine, options)}{_SUFFIX}"
    if path.is_file():
        fit = _load(path)
        if fit is not None:
            return fit, True
    fit = run()
    try:
        _store(path, fit)
    except OSError:  # an unwritable cache only costs the next run its time
        pass
    return fit, False
