"""Engines on the PyMC model: NUTS, Metropolis, SMC, latent-z Gibbs, mean-field and full-rank ADVI."""
