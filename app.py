"""ShockLab dashboard: ``streamlit run app.py`` (or ``shocklab dashboard``).

Reads run directories from ``SHOCKLAB_REPORTS`` (default ``reports/``) and experiments from
``SHOCKLAB_RUNS`` (default ``runs/``).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from dashboard.app import main  # noqa: E402

main()
