"""What the side-by-side benchmarks share: the check of a checkout given to compare with
(``--other``, ``--reference``). A path that was no ShockLab checkout (missing, a file, a folder
without the scripts) ended bench_sweep.py / bench_generate.py / bench_profile.py in a traceback
from the first subprocess started there, bench_generate.py after its own tree's runs."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

# what every checkout the benchmarks run has: the CLIs and the package sources
CHECKOUT = ("generate_data.py", "run_analysis.py", "src/shocklab")


def checkout(path: Path, flag: str, needs: Sequence[str] = ()) -> Path:
    """``path`` resolved, when it is a ShockLab checkout (``CHECKOUT``, plus ``needs``: files the
    script runs there); otherwise one line on stderr naming ``flag``, the path and what is wrong,
    and exit 2."""
    p = path.expanduser().resolve()
    if not p.exists():
        problem = "does not exist"
    elif not p.is_dir():
        problem = "is not a directory"
    else:
        missing = [n for n in (*CHECKOUT, *needs) if not (p / n).exists()]
        problem = f"is not a ShockLab checkout (no {', '.join(missing)})" if missing else ""
    if problem:
        print(f"{Path(sys.argv[0]).name}: {flag} {path}: {problem}", file=sys.stderr, flush=True)
        raise SystemExit(2)
    return p
