"""Diagnostics for any fit: responsibilities, MCMC summaries, LOO and posterior predictive.

Everything here works from the posterior draws in ``fit.idata`` with numpy, so it serves
every engine (NUTS, Metropolis, the latent-z Gibbs engine, ADVI, CAVI, EM) the same way:

- :func:`responsibilities`: posterior mean (and sd) of p(z_i = k | x_i, theta);
- :func:`log_likelihood` / :func:`add_log_likelihood`: per-observation log p(x_i | theta)
  for every draw (what ``az.loo`` needs), for fits that did not store it;
- :func:`mcmc_summary`: ``az.summary`` of the model parameters plus the sampler's own
  health (divergences, tree depth, acceptance);
- :func:`loo`: ``az.loo`` on the fit, with a clear error when there is no log-likelihood;
- :func:`posterior_predictive`: replicated data sets, one per posterior draw;
- :func:`coclustering` and :func:`predictive_logpdf`: label-invariant grades of any fit
  (P(z_i = z_j | x) and log p(x_new | x)), comparable with ``evidence.exact_posterior``;
- :func:`vi_khat`: the PSIS Pareto k-hat of p/q for a variational fit (Yao et al. 2018);
  :func:`vi_log_ratios` gives the log ratios themselves;
  :func:`unconstrained_log_joint` is the p of ADVI's k-hat.

This module is the public face; the code lives by meaning in
:mod:`~ppl_mixtures.analysis.assignments` (responsibilities, co-clustering),
:mod:`~ppl_mixtures.analysis.predictive` (log-likelihood, LOO, predictive),
:mod:`~ppl_mixtures.analysis.mcmc` (the MCMC summary), :mod:`~ppl_mixtures.analysis.khat`
and :mod:`~ppl_mixtures.analysis.log_joint` (k-hat and its log p(x, theta)), on top of
:mod:`~ppl_mixtures.analysis.draws` (flat draws, processed in chunks so that memory stays
bounded whatever the number of draws and observations).
"""

from ppl_mixtures.analysis.assignments import (
    MAX_COCLUSTERING_POINTS,
    coclustering,
    responsibilities,
)
from ppl_mixtures.analysis.khat import VI_ENGINES, pareto_khat, vi_khat, vi_log_ratios
from ppl_mixtures.analysis.log_joint import unconstrained_log_joint
from ppl_mixtures.analysis.mcmc import McmcSummary, mcmc_summary
from ppl_mixtures.analysis.predictive import (
    add_log_likelihood,
    log_likelihood,
    loo,
    posterior_predictive,
    predictive_logpdf,
)

__all__ = [
    "MAX_COCLUSTERING_POINTS",
    "VI_ENGINES",
    "McmcSummary",
    "add_log_likelihood",
    "coclustering",
    "log_likelihood",
    "loo",
    "mcmc_summary",
    "pareto_khat",
    "posterior_predictive",
    "predictive_logpdf",
    "responsibilities",
    "unconstrained_log_joint",
    "vi_khat",
    "vi_log_ratios",
]
