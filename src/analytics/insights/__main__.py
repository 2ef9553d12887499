"""``python -m analytics.insights`` (see ``cli``)."""

from .cli import main

raise SystemExit(main())
