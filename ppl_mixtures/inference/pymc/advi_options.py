"""The options of the ADVI engines (``"advi"`` and ``"fullrank_advi"`` share them).

:class:`Options` is what ``fit(points, spec, engine="advi", **options)`` accepts: every field
with its type, default and one line of help (the CLI's ``--help`` is generated from it); its
``__post_init__`` checks each value with the messages of :mod:`ppl_mixtures.validation`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ppl_mixtures.inference.pymc.advi_objective import OPTIMIZERS
from ppl_mixtures.inference.pymc.advi_schedule import (
    AVERAGE,
    LEARNING_RATE,
    SCHEDULES,
    auto_elbo_draws,
    resolve_n_iter,
)
from ppl_mixtures.validation import (
    check_bool,
    check_choice,
    check_int,
    check_positive,
    check_seed,
    describe,
)

__all__ = ["Options"]


def _check_unit(name: str, value: Any, example: str, *, closed: bool) -> float:
    """A number in [0, 1) (``closed=False``) or [0, 1] (``closed=True``)."""
    interval = f"[0, 1{']' if closed else ')'}"
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(
            f"{name}: expected a number in {interval}, got {describe(value)}. "
            f"Use e.g. {name}={example}."
        )
    value = float(value)
    if not (0.0 <= value <= 1.0 if closed else 0.0 <= value < 1.0):
        raise ValueError(
            f"{name}: expected a number in {interval}, got {value!r}. Use e.g. {name}={example}."
        )
    return value


@dataclass(frozen=True, kw_only=True)
class Options:
    """The options of the ``"advi"`` and ``"fullrank_advi"`` engines.

    ``fit(points, spec, engine="advi", **options)`` builds this (``__post_init__`` checks
    every value and stores it normalised: ints as int, rates as float, ``average=None``
    resolved by ``schedule``). Two checks need the data and run in the fit: ``batch_size``
    at most n_samples; ``n_iter=None`` and ``elbo_draws=None`` resolved from n_samples
    (:func:`~.advi_schedule.resolve_n_iter`, :func:`~.advi_schedule.auto_elbo_draws`).
    """

    n_iter: int | None = field(
        default=None,
        metadata={
            "help": "optimiser iterations per restart; None: 10,000 on full data, "
            "max(10000, ceil(100 N / B)) with minibatches (100 passes)"
        },
    )
    batch_size: int | None = field(
        default=None,
        metadata={
            "help": "minibatch size (the batch log-likelihood is scaled by N/B); "
            "None: all the data in every step"
        },
    )
    optimizer: str = field(
        default="adagrad_window",
        metadata={"help": f"PyMC optimiser, one of {', '.join(OPTIMIZERS)}"},
    )
    learning_rate: float = field(
        default=LEARNING_RATE,
        metadata={"help": "base step size (of the warm phase); changing it does not recompile"},
    )
    schedule: str = field(
        default="decay",
        metadata={
            "help": "'decay': base rate for the warmup fraction, then Robbins-Monro decay; "
            "'constant': the base rate throughout (PyMC's behaviour)"
        },
    )
    warmup: float = field(
        default=0.1, metadata={"help": "fraction of the run at the base rate, in [0, 1)"}
    )
    decay_scale: float = field(
        default=0.05, metadata={"help": "decay time scale tau as a fraction of n_iter, > 0"}
    )
    decay_power: float = field(default=0.6, metadata={"help": "decay exponent kappa, in (0.5, 1]"})
    average: float | None = field(
        default=None,
        metadata={
            "help": "fraction of the run (its end) whose iterates are averaged into q; "
            "0: the last iterate; None: 0.8 with schedule='decay', 0 with 'constant'"
        },
    )
    tolerance: float | None = field(
        default=None,
        metadata={
            "help": "stop when the 100-iteration mean ELBO changes by less than this, "
            "relative (only with schedule='constant', average=0)"
        },
    )
    random_seed: int | None = field(
        default=None, metadata={"help": "seed of starts, q's noise, minibatches and draws"}
    )
    progressbar: bool = field(default=True, metadata={"help": "show a progress bar"})
    draws: int = field(
        default=1000, metadata={"help": "draws from q stored in the posterior (one chain)"}
    )
    n_init: int = field(
        default=1, metadata={"help": "restarts; the one with the best final ELBO is kept"}
    )
    elbo_draws: int | None = field(
        default=None,
        metadata={
            "help": "Monte Carlo draws of the final full-data ELBO; None: "
            "min(500, max(100, 1e7 / N))"
        },
    )
    reuse_compiled: bool = field(
        default=True,
        metadata={"help": "reuse the compiled objective of an earlier fit of the same shape"},
    )

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        if self.n_iter is not None:
            put(
                "n_iter",
                check_int(
                    "n_iter",
                    self.n_iter,
                    minimum=1,
                    hint="Use e.g. n_iter=10000, or None for the default",
                ),
            )
        if self.batch_size is not None:
            put(
                "batch_size",
                check_int(
                    "batch_size",
                    self.batch_size,
                    minimum=1,
                    hint="Use a positive batch size, or batch_size=None",
                ),
            )
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        put(
            "learning_rate",
            check_positive("learning_rate", self.learning_rate, hint="Use e.g. learning_rate=0.05"),
        )
        check_choice("schedule", self.schedule, SCHEDULES)
        put("warmup", _check_unit("warmup", self.warmup, "0.2", closed=False))
        put(
            "decay_scale",
            check_positive(
                "decay_scale",
                self.decay_scale,
                hint="Use e.g. decay_scale=0.05 (tau = 5% of n_iter)",
            ),
        )
        put(
            "decay_power",
            check_positive("decay_power", self.decay_power, hint="Use e.g. decay_power=0.6"),
        )
        if not 0.5 < self.decay_power <= 1.0:
            raise ValueError(
                f"decay_power: expected a number in (0.5, 1] (Robbins-Monro: the rates must "
                f"sum to infinity and their squares must not), got {self.decay_power!r}. "
                f"Use e.g. decay_power=0.6."
            )
        if self.average is None:
            put("average", AVERAGE if self.schedule == "decay" else 0.0)
        else:
            put("average", _check_unit("average", self.average, "0.5", closed=True))
        if self.tolerance is not None:
            put(
                "tolerance",
                check_positive(
                    "tolerance", self.tolerance, hint="Use e.g. tolerance=0.001, or None"
                ),
            )
            if self.schedule != "constant" or (self.average or 0.0) > 0:
                raise ValueError(
                    f"tolerance: early stopping on the relative ELBO change works only with "
                    f"schedule='constant' and average=0 (the decay schedule and the averaging "
                    f"window are laid out over all n_iter iterations), got tolerance="
                    f"{self.tolerance!r} with schedule={self.schedule!r}, average="
                    f"{self.average!r}. Pass tolerance=None (the convergence test runs "
                    f"anyway), or schedule='constant', average=0."
                )
        put("random_seed", check_seed(self.random_seed))
        put("progressbar", check_bool("progressbar", self.progressbar))
        put("reuse_compiled", check_bool("reuse_compiled", self.reuse_compiled))
        put("draws", check_int("draws", self.draws, minimum=1, hint="Use e.g. draws=1000"))
        put("n_init", check_int("n_init", self.n_init, minimum=1, hint="Use e.g. n_init=4"))
        if self.elbo_draws is not None:
            put(
                "elbo_draws",
                check_int(
                    "elbo_draws",
                    self.elbo_draws,
                    minimum=2,
                    hint="Use e.g. elbo_draws=500 (at least 2 for a "
                    "standard error), or None for the default",
                ),
            )

    def for_data(self, n_samples: int) -> Options:
        """These options with the data-dependent ones checked and resolved: ``batch_size``
        at most ``n_samples``, ``n_iter`` and ``elbo_draws`` set when None."""
        if self.batch_size is not None:
            check_int(
                "batch_size",
                self.batch_size,
                minimum=1,
                maximum=n_samples,
                hint=f"Use a batch of at most n_samples={n_samples}, or batch_size=None",
            )
        elbo_draws = auto_elbo_draws(n_samples) if self.elbo_draws is None else self.elbo_draws
        return dataclasses.replace(
            self,
            n_iter=resolve_n_iter(self.n_iter, n_samples, self.batch_size),
            elbo_draws=elbo_draws,
        )
