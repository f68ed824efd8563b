"""Shared test settings. Module- and session-scoped fixtures live beside the tests that use them."""

import matplotlib
from hypothesis import HealthCheck, settings

matplotlib.use("Agg")  # headless: figures are written, never shown

# Hypothesis: deterministic and without wall-clock deadlines (2 shared cores, numba JIT).
settings.register_profile(
    "ppl-mixtures",
    derandomize=True,
    deadline=None,
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile("ppl-mixtures")
