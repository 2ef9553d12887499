"""``python -m analytics.insights``: schema tools."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .schema import SCHEMA_PATH, schema_text, write_schema


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="insights schema tools")
    p.add_argument("--write-schema", action="store_true", help=f"regenerate {SCHEMA_PATH}")
    args = p.parse_args(argv)
    if args.write_schema:
        print(write_schema())
    else:
        print(schema_text(), end="")
    return 0
