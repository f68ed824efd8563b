"""The inference layer: the engine registry, ``fit``, and the engines themselves
(:mod:`.conjugate`: CAVI, SVI, EM in numpy/numba; :mod:`.pymc`: NUTS, Metropolis, SMC,
ADVI, latent Gibbs on PyMC models)."""
