"""``python -m analytics.insights``: schema tools and the grounding check of a run directory.

    python -m analytics.insights                  # print the JSON Schema of insights.json
    python -m analytics.insights --write-schema   # regenerate schemas/insights.schema.json
    python -m analytics.insights --check RUN_DIR  # every number/date/direction in the text
                                                  # vs its fields

Exit codes: 0 ok · 1 the check found mismatches · 2 bad input (no such file, not JSON, not an
insights.json or not one that matches schemas/insights.schema.json, an unknown flag: one line on
stderr) · 3 internal error (``python -m analytics.insights`` runs ``main`` through
``shocklab.cli.run_cli``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from shocklab.cli import ArgumentParser, path_arg
from shocklab.errors import InputError

from .grounding import check
from .schema import SCHEMA_PATH, schema_text, validate_json, write_schema


def main(argv: Sequence[str] | None = None) -> int:
    p = ArgumentParser(  # a bad flag: one line, exit 2
        prog="python -m analytics.insights", description="insights schema tools and checks"
    )
    p.add_argument("--write-schema", action="store_true", help=f"regenerate {SCHEMA_PATH}")
    p.add_argument(
        "--check", type=path_arg, metavar="RUN_DIR",
        help="grounding check of RUN_DIR/insights.json (or a file)"
    )
    p.add_argument("--debug", action="store_true", help="show the traceback of an internal error")
    args = p.parse_args(argv)
    if args.check:
        path = Path(args.check)
        path = path / "insights.json" if path.is_dir() else path
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            print(f"--check: cannot read {path}: {exc}", file=sys.stderr)
            return 2
        if not isinstance(doc, dict) or "schema_version" not in doc:
            # run.json or incidents.json passed as "0 mismatch(es)"; a JSON list was a traceback
            print(f"--check: {path} is not an insights.json (no schema_version); give a run "
                  "directory or its insights.json", file=sys.stderr)
            return 2
        try:  # the checker reads the fields the schema promises (a hand-edited file may lack them)
            validate_json(doc)
        except InputError as exc:
            print(f"--check: {path}: {exc}", file=sys.stderr)
            return 2
        bad = check(doc)
        for line in bad:
            print(line)
        n_text = 1 + 3 * len(doc.get("episodes", [])) + 2 * len(doc.get("incidents", []))
        print(f"grounding: {len(bad)} mismatch(es) in {n_text} texts of {path}", file=sys.stderr)
        return 1 if bad else 0
    if args.write_schema:
        print(write_schema())
    else:
        print(schema_text(), end="")
    return 0
