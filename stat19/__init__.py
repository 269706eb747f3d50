"""Stat19: register linkage and statistics pipeline for Norwegian health registers."""

__version__ = "0.1.0"
