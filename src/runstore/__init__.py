"""Read-only access to run directories (``reports/``) and experiment directories (``runs/``),
shared by the dashboard (``src/dashboard``) and the HTTP API (``src/api``).

A run directory may lack any file (a ``--kpis`` run has no customers, a ``--transactions`` run no
scorecard) or hold one that cannot be parsed (cut short, edited): every reader returns ``None``
for such a file, :meth:`Run.missing` says which files are absent and :meth:`Run.unreadable` which
cannot be read and why, so callers can show what is missing instead of failing.
"""

from .store import (
    EXPERIMENT_FILES,
    RUN_FILES,
    Experiment,
    Run,
    RunStore,
    StoreError,
    safe_child,
    shown,
    valid_id,
)

__all__ = ["EXPERIMENT_FILES", "RUN_FILES", "Experiment", "Run", "RunStore", "StoreError",
           "safe_child", "shown", "valid_id"]
