"""Oracle: NUTS on our marginal density and NUTS on pm.Mixture give the same posterior.

Seed 001's 100-point data and priors (means ~ N(0, 1) per coordinate, Dirichlet(0.1),
obs_sd 1). Both posteriors are relabeled to the same reference, then every scalar
parameter's posterior mean must agree within a few Monte Carlo standard errors.
"""

import numpy as np
import pytest

import ppl_mixtures as pmx
from ppl_mixtures import MixtureSpec, datasets, relabel
from ppl_mixtures.analysis.diagnostics import mcmc_summary

SPEC = MixtureSpec(n_components=2, mean_prior_sd=1.0, dirichlet_alpha=0.1, obs_sd=1.0)
REFERENCE = np.array([[-0.8, -1.5], [0.8, 1.0]])
OPTIONS = {
    "draws": 500,
    "tune": 500,
    "chains": 2,
    "cores": 1,
    "progressbar": False,
    "log_likelihood": False,
}


@pytest.fixture(scope="module")
def fits():
    points = datasets.advi_notebook_points(100)
    ours = pmx.fit(points, SPEC, engine="nuts", model="marginal", random_seed=11, **OPTIONS)
    builtin = pmx.fit(points, SPEC, engine="nuts", model="builtin", random_seed=12, **OPTIONS)
    return relabel(ours, reference=REFERENCE), relabel(builtin, reference=REFERENCE)


@pytest.mark.slow
def test_marginal_density_matches_pm_mixture_within_mcse(fits):
    ours, builtin = (mcmc_summary(f) for f in fits)
    for summary in (ours, builtin):
        assert summary.rhat_max < 1.05 and summary.ess_bulk_min > 100
        assert summary.divergences == 0
    table_a, table_b = ours.table, builtin.table
    assert list(table_a.index) == list(table_b.index)
    gap = (table_a["mean"] - table_b["mean"]).abs()
    mcse = np.sqrt(table_a["mcse_mean"] ** 2 + table_b["mcse_mean"] ** 2)
    # 4 MCSEs of the difference: P(|z| > 4) = 6e-5 per parameter for a normal deviate
    assert (gap < 4 * mcse).all(), f"posterior means differ by {(gap / mcse).max():.1f} MCSE"


@pytest.mark.slow
def test_posterior_sds_agree(fits):
    # the sds' own Monte Carlo errors (arviz's mcse_sd) set the tolerance: 4 standard
    # errors of the difference, as for the means
    table_a, table_b = (mcmc_summary(f).table for f in fits)
    gap = (table_a["sd"] - table_b["sd"]).abs()
    mcse = np.sqrt(table_a["mcse_sd"] ** 2 + table_b["mcse_sd"] ** 2)
    assert (gap < 4 * mcse).all(), f"posterior sds differ by {(gap / mcse).max():.1f} MCSE"
