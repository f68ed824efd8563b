"""Conjugate-exponential engines on numpy/numba: CAVI, SVI and EM.

Read the core in this order (Bishop 2006, §10.2; Blei et al. 2017, §3):

1. ``stats.py``: responsibilities -> sufficient statistics N_k, x̄_k, S_k (plain numpy;
   ``kernels/estep.py`` is the fast pass that returns the same ``SufficientStats``);
   ``stats_full.py`` is its twin for full covariances (``kernels/estep_full.py`` its pass);
2. ``meanfield.py``: q's expectations and the updates ``update_weights``, ``update_means``,
   ``update_precisions``; ``fullcov_meanfield.py`` for full and tied covariances (Wishart
   factors);
3. ``elbo.py``: the ELBO as named terms (``fullcov_elbo.py`` for full and tied); the priors'
   log-densities live in ``model/priors.py``;
4. ``pointmass.py``: EM's M-step, the point-mass case of the same statistics;
5. ``driver.py``: restarts and convergence, written once for all three engines;
6. the engines: ``cavi.py``, ``svi.py``, ``em.py`` (``init`` / ``step`` / ``fit``).
"""
