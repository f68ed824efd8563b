"""``ppl-mixtures bench``: run the ``benchmarks/bench_*.py`` scripts of a source checkout.

Each script defines ``run(quick: bool) -> str`` (a markdown report) and optionally
``NAME``; the report is written to ``reports/benchmarks/<NAME>.md``. Only the standard
library is imported at module level.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path
from types import ModuleType

from ppl_mixtures.app.errors import UsageError
from ppl_mixtures.app.ui import UI

__all__ = ["benchmarks_dir", "run_bench"]


def benchmarks_dir(given: str | None) -> Path:
    """``given``, or the checkout's ``benchmarks/`` folder; a FileNotFoundError when absent."""
    folder = Path(given) if given else Path(__file__).resolve().parents[2] / "benchmarks"
    if not folder.is_dir():
        raise FileNotFoundError(
            f"bench: expected a benchmarks folder at {str(folder)!r}, got "
            f"none. Benchmarks ship with the source checkout: run from a "
            f"git clone of ppl-mixtures."
        )
    return folder


def _load(script: Path) -> ModuleType:
    name = f"_ppl_mixtures_bench_{script.stem}"
    spec = importlib.util.spec_from_file_location(name, script)
    if spec is None or spec.loader is None:
        raise ImportError(f"bench: cannot load {str(script)!r} as a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_bench(args: argparse.Namespace, ui: UI) -> int:
    """The ``bench`` command: every benchmark (or ``--only NAME``), one report each."""
    folder = benchmarks_dir(args.dir)
    out = Path(args.out) if args.out else folder.parent / "reports" / "benchmarks"
    scripts = sorted(folder.glob("bench_*.py"))
    if not scripts:
        raise FileNotFoundError(
            f"bench: expected bench_*.py files in {str(folder)!r}, got "
            f"none. Add a benchmark (see the developers' guide)."
        )
    ran = 0
    for script in scripts:
        module = _load(script)
        name = getattr(module, "NAME", script.stem.removeprefix("bench_"))
        if args.only and name != args.only:
            continue
        start = time.perf_counter()
        with ui.status(f"benchmark {name} ..."):
            body = module.run(quick=args.quick)
        out.mkdir(parents=True, exist_ok=True)
        target = out / f"{name}.md"
        target.write_text(body if body.endswith("\n") else body + "\n", encoding="utf-8")
        ui.note(f"benchmark {name}: {time.perf_counter() - start:.1f} s -> {target}")
        ran += 1
    if args.only and not ran:
        raise UsageError(
            f"--only: expected a benchmark NAME in {str(folder)!r}, got "
            f"{args.only!r}. Run `ppl-mixtures bench` to run them all."
        )
    return 0
