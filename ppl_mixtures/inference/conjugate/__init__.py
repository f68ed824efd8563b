"""Conjugate-exponential engines on numpy/numba: CAVI, SVI and EM."""
