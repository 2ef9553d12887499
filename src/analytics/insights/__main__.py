"""``python -m analytics.insights`` (see ``cli``)."""

from shocklab.cli import run_cli

from .cli import main

raise SystemExit(run_cli(main))  # an unexpected error is exit 3 (1 means "mismatches found")
