"""Boundary checks, in one place.

Every public entry point (``MixtureSpec``, ``fit``, ``load_points``, the CLI) validates its
input here, once. Messages follow one pattern so users can act on them::

    <argument>: expected <what>, got <what came>. <what to try>.

Library code raises ``ValueError`` for a value of the right kind that is wrong, and
``TypeError`` for a value of the wrong kind. Nothing here uses ``assert``.

The checks live in four modules, all re-exported here (import them from
``ppl_mixtures.validation``): :mod:`.errors` (the package's warnings and errors, and
``describe``), :mod:`.scalars` (counts, seeds, flags, scales, choices, and the prior
bounds), :mod:`.points` (``check_points``, ``check_data_scale``) and :mod:`.options`
(``check_engine_options``, ``build_options``).
"""

from ppl_mixtures.validation.errors import (
    DataScaleWarning,
    EvidenceWarning,
    NumericalError,
    describe,
)
from ppl_mixtures.validation.options import build_options, check_engine_options
from ppl_mixtures.validation.points import (
    DATA_LOCATION_FACTOR,
    DATA_SPREAD_FACTOR,
    check_data_scale,
    check_points,
    parse_float_text,
)
from ppl_mixtures.validation.scalars import (
    MAX_STORED_VALUES,
    PRIOR_LOCATION_MAX,
    PRIOR_SCALE_RANGE,
    check_bool,
    check_choice,
    check_draws,
    check_fraction,
    check_int,
    check_positive,
    check_positive_vector,
    check_real,
    check_seed,
    check_vector,
)

__all__ = [
    "DATA_LOCATION_FACTOR",
    "DATA_SPREAD_FACTOR",
    "MAX_STORED_VALUES",
    "PRIOR_LOCATION_MAX",
    "PRIOR_SCALE_RANGE",
    "DataScaleWarning",
    "EvidenceWarning",
    "NumericalError",
    "build_options",
    "check_bool",
    "check_choice",
    "check_data_scale",
    "check_draws",
    "check_engine_options",
    "check_fraction",
    "check_int",
    "check_points",
    "check_positive",
    "check_positive_vector",
    "check_real",
    "check_seed",
    "check_vector",
    "describe",
    "parse_float_text",
]
