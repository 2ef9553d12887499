"""Read-only access to run directories (``reports/``) and experiment directories (``runs/``),
shared by the dashboard (``src/dashboard``) and the HTTP API (``src/api``).

A run directory may lack any file (a ``--kpis`` run has no customers, a ``--transactions`` run no
scorecard): every reader returns ``None`` for a missing file and :meth:`Run.missing` says which
files are absent, so callers can show what is missing instead of failing.
"""

from .store import (
    EXPERIMENT_FILES,
    RUN_FILES,
    Experiment,
    Run,
    RunStore,
    StoreError,
    safe_child,
    valid_id,
)

__all__ = ["EXPERIMENT_FILES", "RUN_FILES", "Experiment", "Run", "RunStore", "StoreError",
           "safe_child", "valid_id"]
