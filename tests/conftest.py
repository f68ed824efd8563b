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


def pytest_collection_modifyitems(config, items):
    """Group tests for ``pytest -n 2 --dist loadgroup`` (what ``make test`` runs).

    A test module stays on one worker, so the compiled PyMC models its module-scoped
    fixtures share are built once; each notebook execution is a group of its own, so the
    five notebooks (the longest tests) spread over both workers.
    """
    import pytest

    for item in items:
        if item.get_closest_marker("xdist_group") is not None:
            continue
        module = item.nodeid.split("::")[0]
        notebook_run = module.endswith("test_notebooks.py") and "executes" in item.name
        item.add_marker(pytest.mark.xdist_group(item.name if notebook_run else module))
