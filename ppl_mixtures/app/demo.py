"""``ppl-mixtures demo``: its datasets, its plans and its settings, and the command itself.

The demo policy lives here as data, not in the engines: the ``--quick`` settings, the
settings the demo runs instead of an engine's defaults, the settings for 1e5+ points,
and the data sizes above which an engine is skipped. An engine these tables do not name
runs with its own defaults. Every fit's options are listed in the report.

Only the standard library is imported at module level (``--help`` stays instant).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ppl_mixtures.app import runner
from ppl_mixtures.app.errors import UsageError, input_checks, internal
from ppl_mixtures.app.inputs import check_out
from ppl_mixtures.app.options import engine_options
from ppl_mixtures.app.ui import PROG, UI

__all__ = [
    "DEMO_CACHED_ENGINES",
    "DEMO_COMMON",
    "DEMO_OPTIONS",
    "LARGE_DATA_COMMON",
    "LARGE_DATA_NUTS",
    "LARGE_DATA_OPTIONS",
    "MAX_SAMPLES",
    "QUICK_OPTIONS",
    "DemoDataset",
    "demo_datasets",
    "demo_plan",
    "drop_too_slow",
    "run_demo",
]

Options = Mapping[str, Any]

#: ``--quick`` (``fit``, ``compare`` and ``demo``): small settings that finish in seconds on
#: ~100 points, for smoke runs and tests; rough numbers, not a reference.
QUICK_OPTIONS: Mapping[str, Options] = MappingProxyType(
    {
        # 2 chains, the fewest R-hat can compare; 200 + 200 draws; one core, as in the demo
        "nuts": {"draws": 200, "tune": 200, "chains": 2, "cores": 1},
        # random-walk steps are cheap but mix slowly: more draws than NUTS for a usable run
        "metropolis": {"draws": 300, "tune": 300, "chains": 2},
        # 500 particles; 4 independent runs, whose spread gives log p(x) its standard error
        "smc": {"draws": 500, "runs": 4},
        # the z sweep costs one model evaluation per point: the fewest draws of the samplers
        "latent_gibbs": {"draws": 200, "tune": 200, "chains": 2},
        # 3000 optimizer steps instead of 10,000; fewer draws from q and for the final ELBO
        "advi": {"n_iter": 3000, "draws": 200, "elbo_draws": 100},
        "fullrank_advi": {"n_iter": 3000, "draws": 200, "elbo_draws": 100},
        # 2 starts instead of 5 (the best kept), 200 sweeps at most, 200 draws from q
        "cavi": {"max_iter": 200, "n_draws": 200, "n_init": 2, "progressbar": False},
        # 300 minibatch steps of 50 points, 2 starts, 200 draws from q
        "svi": {"n_iter": 300, "batch_size": 50, "n_draws": 200, "n_init": 2, "progressbar": False},
        # 2 starts instead of 5, 200 iterations at most
        "em": {"max_iter": 200, "n_init": 2, "progressbar": False},
    }
)

#: What the demo runs instead of an engine's defaults (``fit`` and ``compare`` keep them).
DEMO_OPTIONS: Mapping[str, Options] = MappingProxyType(
    {
        # the demo runs fits side by side in worker processes: one core per fit
        "nuts": {"cores": 1},
        # the demo's contrast run: 2 x (300 + 300) draws, about 1/3 of the default's time
        "latent_gibbs": {"draws": 300, "tune": 300, "chains": 2},
        # metropolis keeps its defaults: with 2 x (1000 + 1000) the chains on the 1-D data
        # disagreed (R-hat 1.07), an artefact of the shorter run rather than the recipe's verdict
    }
)

#: Settings on 1e5+ points (the demo's large dataset), for the scalable engines.
LARGE_DATA_OPTIONS: Mapping[str, Options] = MappingProxyType(
    {
        # only the batch changes: the default schedule (warm phase, Robbins-Monro decay, Polyak
        # averaging) and n_iter (100 passes over the data) converge on seed 001's 100,000
        # points (reports/benchmarks/advi.md); constant steps leave the means several
        # posterior sds off
        "advi": {"batch_size": 200},
        "fullrank_advi": {"batch_size": 200},
        # every sweep touches all 1e5 points: at most 300 of them
        "cavi": {"max_iter": 300},
        "em": {"max_iter": 300},
        # 2000 natural-gradient steps on batches of 1000 points: 20 passes over the data
        "svi": {"n_iter": 2000, "batch_size": 1000},
    }
)

#: Above this many points an engine is impractically slow (its cost per draw grows faster
#: than linearly) and the demo skips it, saying why.
MAX_SAMPLES: Mapping[str, int] = MappingProxyType(
    {
        "latent_gibbs": 150,  # the z sweep evaluates the model once per observation: O(N^2)
    }
)

#: NUTS settings on the 100k-point dataset: a reference worth the name (4 chains from
#: overdispersed starts x 1000 draws; compare calls it strong only with R-hat <= 1.01 and
#: bulk ESS >= 400 on every parameter). 500 tuning steps are enough there: measured with
#: random_seed 1 (the demo's), max R-hat 1.0014 and min bulk ESS 3,918 after relabeling,
#: no divergences (docs/mcmc.md). Each gradient touches every point, so this is the
#: demo's longest fit; it goes through the reference cache (--no-cache to re-run it).
LARGE_DATA_NUTS: Options = MappingProxyType({"draws": 1000, "tune": 500, "chains": 4})
#: Demo fits that go through the reference cache besides each dataset's reference: SMC,
#: the demo's log p(x) estimate (a reference for the ELBOs), and its slowest fit after the
#: 100k NUTS run (6 independent runs: 30-80 s per dataset on the shared 2-core machine).
DEMO_CACHED_ENGINES: tuple[str, ...] = ("smc",)
#: On 1e5 points the pointwise log-likelihood (chain x draw x obs) would take ~1 GB.
LARGE_DATA_COMMON: Options = MappingProxyType({"log_likelihood": False})
#: Every demo fit: the report neither uses nor stores the pointwise log-likelihood
#: (``diagnostics.add_log_likelihood`` recomputes it from a saved posterior), so the MCMC
#: engines skip computing it (and the workers skip sending it back).
DEMO_COMMON: Options = MappingProxyType({"log_likelihood": False})


@dataclass(frozen=True, eq=False)
class DemoDataset:
    """One demo dataset: its points (n_samples, n_features), the model, whether it is the
    large one (scalable engines and NUTS only), a sentence about it, and for a
    standardized dataset how to show it in its own units (``compare``'s arguments)."""

    name: str
    points: Any
    spec: Any
    large: bool
    about: str
    feature_names: Sequence[str] | None = None
    units: str | Sequence[str] | None = None
    data_transform: tuple[Any, Any] | None = None


def demo_datasets() -> list[DemoDataset]:
    """The demo's four datasets, in report order."""
    import numpy as np

    from ppl_mixtures import datasets
    from ppl_mixtures.model.spec import MixtureSpec

    faithful, center, scale = datasets.standardize(datasets.old_faithful())
    return [
        DemoDataset(
            "advi_notebook_100",
            datasets.advi_notebook_points(100),
            MixtureSpec(n_components=2, mean_prior_sd=1.0, dirichlet_alpha=0.1, obs_sd=1.0),
            large=False,
            about="seed 001's 100 points: two 2-D Gaussians (weights 0.2/0.8), "
            "identity covariance, the PyMC3 ADVI notebook's model.",
        ),
        DemoDataset(
            "advi_notebook_100k",
            datasets.advi_notebook_large_points(),
            MixtureSpec(
                n_components=2, mean_prior_sd=float(np.sqrt(10.0)), dirichlet_alpha=0.1, obs_sd=1.0
            ),
            large=True,
            about="seed 001's 100,000 points (prior precision 0.1 on the means, as "
            "in the notebook): scalable engines (minibatch or cheap passes) "
            "and NUTS.",
        ),
        DemoDataset(
            "three_clusters_1d",
            datasets.three_clusters_1d()[0],
            MixtureSpec(
                n_components=3, mean_prior_sd=float(np.sqrt(10.0)), weights="fixed", obs_sd=1.0
            ),
            large=False,
            about="seed 000's 1000 1-D points around -10, 0.25 and 5; Blei et al.'s "
            "model (fixed weights 1/K, unit sd), prior variance 10 on the "
            "means (sd sqrt(10) = 3.16).",
        ),
        DemoDataset(
            "old_faithful",
            faithful,
            MixtureSpec(n_components=2, obs_sd="learned"),
            large=False,
            feature_names=datasets.OLD_FAITHFUL_FEATURES,
            units=datasets.OLD_FAITHFUL_UNITS,
            data_transform=(center, scale),
            about="Old Faithful (eruption duration, waiting time), standardized; "
            "K=2 with a learned sd per component and feature.",
        ),
    ]


def demo_plan(large: bool, quick: bool, seed: int | None) -> list[tuple[str, dict[str, Any]]]:
    """(engine, options) for one demo dataset: every registered engine, or on the large
    dataset the scalable ones and NUTS; options the engine does not take are dropped."""
    from ppl_mixtures.inference.registry import available_engines

    plan = []
    for name, engine in available_engines().items():
        if large and not (engine.scalable or name == "nuts"):
            continue
        base = dict((QUICK_OPTIONS if quick else DEMO_OPTIONS).get(name, {}))
        base.update(DEMO_COMMON)
        if large:
            base.update(LARGE_DATA_NUTS if name == "nuts" and not quick else {})
            base.update(LARGE_DATA_OPTIONS.get(name, {}))
            base.update(LARGE_DATA_COMMON)
        requested = {} if seed is None else {"random_seed": seed}
        plan.append((name, engine_options(engine, base, requested, strict=False)))
    return plan


def drop_too_slow(
    plan: Sequence[tuple[str, dict[str, Any]]],
    n_samples: int,
) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, str]]:
    """Split off the engines whose :data:`MAX_SAMPLES` is below ``n_samples`` (with why)."""
    kept, skipped = [], {}
    for name, options in plan:
        limit = MAX_SAMPLES.get(name)
        if limit is not None and n_samples > limit:
            skipped[name] = (
                f"impractically slow above {limit} points (this dataset has {n_samples})"
            )
        else:
            kept.append((name, options))
    return kept, skipped


def _reference(names: Sequence[str]) -> str:
    """NUTS when it runs, else the first MCMC engine, else the first engine."""
    from ppl_mixtures.inference.registry import available_engines

    if "nuts" in names:
        return "nuts"
    registry = available_engines()
    mcmc = [n for n in names if n in registry and registry[n].family == "mcmc"]
    return (mcmc or list(names))[0]


def _work(
    args: argparse.Namespace,
) -> tuple[list[runner.Work], dict[str, DemoDataset], dict[str, dict[str, str]]]:
    """The fits to run per dataset, the datasets by name, and the engines skipped on each."""
    work, by_name, skipped = [], {}, {}
    for item in demo_datasets():
        plan, skipped[item.name] = drop_too_slow(
            demo_plan(item.large, args.quick, args.random_seed), n_samples=len(item.points)
        )
        reference = _reference([name for name, _ in plan])
        cached = () if args.no_cache else (reference, *DEMO_CACHED_ENGINES)
        work.append(
            runner.Work(item.name, item.points, item.spec, plan, reference, cached, item.large)
        )
        by_name[item.name] = item
    return work, by_name, skipped


def run_demo(args: argparse.Namespace, ui: UI) -> int:
    """The ``demo`` command: fit, compare, write the report, print the headline table."""
    from ppl_mixtures.analysis.compare import compare
    from ppl_mixtures.present.report import ReportStage, headline_table

    with input_checks():
        check_out(args)
        jobs = runner.default_jobs() if args.jobs is None else args.jobs
        if jobs < 1:
            raise UsageError(
                f"--jobs: expected a positive number of worker processes, got "
                f"{jobs}. Use --jobs 1 to fit in this process."
            )
    work, datasets, skipped = _work(args)
    comparisons: dict[str, Any] = {}
    failures: dict[str, str] = {}
    with input_checks():  # the --out checks again, as the folder is made
        stage = ReportStage(
            args.out,
            force=args.force,
            command=args.command_line,
            name="--out",
            force_hint="Add --force",
        )
    with stage, internal():  # built-in data and settings: any failure is ours

        def dataset_done(
            item: runner.Work, fits: dict[str, Any], not_applicable: dict[str, str]
        ) -> None:
            """Compare a dataset's fits and start its report section."""
            shown = datasets[item.label]
            comparisons[item.label] = compare(
                fits,
                reference=item.reference,
                name=item.label,
                not_applicable={**not_applicable, **skipped[item.label]},
                feature_names=shown.feature_names,
                units=shown.units,
                data_transform=shown.data_transform,
            )
            stage.add(item.label, comparisons[item.label])

        with runner.worker_pool(jobs) as pool:
            if pool is not None:
                stage.executor = pool  # sections render in the workers, between fits
                runner.run_parallel(work, pool, jobs, ui, failures, on_done=dataset_done)
            else:
                for item in work:
                    fits, not_applicable = runner.run_serial(item, ui, failures)
                    with ui.status(f"[{item.label}] comparing and drawing ..."):
                        dataset_done(item, fits, not_applicable)
            with ui.status("writing the report ..."):
                ordered = {item.label: comparisons[item.label] for item in work}
                stage.finish(
                    ordered,
                    command=args.command_line,
                    title="ppl-mixtures demo: one mixture model, many inference engines",
                )
    ui.result(headline_table(ordered))
    ui.note(f"report written to {args.out}/report.md")
    if failures:
        listed = "; ".join(f"{where}: {why}" for where, why in failures.items())
        print(
            f"{PROG}: internal error: {len(failures)} engine run(s) failed ({listed}); "
            f"the report lists them (run with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1
    return 0
