"""Shared infrastructure for ShockLab's layers: errors and exit codes, config loading,
atomic output directories, seeding, hashing, logging and the CLI wrapper.

Nothing here knows about e-commerce; `simulation`, `analytics` and `experiments` build on it.
"""

__version__ = "0.1.0"
