"""Compiled Monte Carlo engines: exact (Gaussian conditioning) and dense (materialised weights)."""
