"""Simulation layer: a seeded, YAML-configured e-commerce world with injected shocks and exact
truth.

Entry points: ``simulation.api.generate`` (Python) and ``generate_data.py`` (CLI).
"""
