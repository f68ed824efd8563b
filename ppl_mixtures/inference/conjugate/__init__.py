"""Conjugate-exponential engines on numpy/numba: CAVI, SVI and EM.

Read the core in this order (Bishop 2006, §10.2; Blei et al. 2017, §3):

1. ``stats.py``: responsibilities -> sufficient statistics N_k, x̄_k, S_k (plain numpy;
   ``kernels/estep.py`` is the fast pass that returns the same ``SufficientStats``);
2. ``meanfield.py``: q's expectations and the updates ``update_weights``, ``update_means``,
   ``update_precisions``;
3. ``elbo.py``: the ELBO as named terms, and the priors' log-densities;
4. ``pointmass.py``: EM's M-step, the point-mass case of the same statistics;
5. ``driver.py``: restarts and convergence, written once for all three engines;
6. the engines: ``cavi.py``, ``svi.py``, ``em.py`` (``init`` / ``step`` / ``fit``).
"""
