"""Numba kernels: vectorizable exp/log, the fused marginal-density kernels and the conjugate
engines' E-step pass. Pure numerical code: no knowledge of specs or results."""
