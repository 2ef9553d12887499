#!/usr/bin/env python3
"""Insight quality over run directories (prints, never asserts): type accuracy of the episodes'
diagnosis, root cause and magnitude error (in the event's scope, and overall) pooled over every
matched event (all and per injected type), grounding mismatches, and the sizes of insights.json /
insights.md / the brief. ``--misreads`` also lists what each type was read as when misread and
every root-cause miss (the slice the event acted on against the one the episode named).

    python bench/bench_insights.py RUN_DIR [RUN_DIR ...] [--misreads]

Each RUN_DIR is a run_analysis.py output of simulated data (scorecard.json holds the insight
scores). Report held-out worlds only, e.g. the random-world test seeds::

    for s in $(seq 101 110); do
      python generate_data.py --config config/scenarios/random_world.yaml --seed $s --out /tmp/w$s
      python run_analysis.py --data /tmp/w$s --out /tmp/r$s --set scoring.warmup_days=90
    done

(``scoring.warmup_days=90`` is what the benchmark experiment scores with: no shock is drawn in
the worlds' 90-day warm-up.)
    python bench/bench_insights.py /tmp/r1[01]?
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import _common  # noqa: E402  (this script's folder is on sys.path)

from analytics.insights.grounding import check  # noqa: E402


def _agg(rows: list[dict]) -> str:
    def frac(xs: list[bool]) -> str:
        return f"{sum(xs) / len(xs):.2f} ({sum(xs)}/{len(xs)})" if xs else "n/a"

    ty = [r["type_ok"] for r in rows if r["type_ok"] is not None]   # None: labels without a type
    rc = [r["root_cause_ok"] for r in rows if r["root_cause_ok"] is not None]

    def med(key: str) -> str:
        xs = [r[key] for r in rows if r.get(key) is not None]
        return f"{statistics.median(xs):.3f} (n={len(xs)})" if xs else "n/a"

    return (f"events {len(rows):3d} · type accuracy {frac(ty)} · root cause {frac(rc)} · "
            f"magnitude error median {med('magnitude_error')} in scope, "
            f"{med('magnitude_error_overall')} overall")


def main() -> int:
    ap = _common.parser(__doc__)
    ap.add_argument("runs", nargs="+", type=_common.path_arg)
    ap.add_argument("--misreads", action="store_true",
                    help="list type confusions and root-cause misses per event")
    args = ap.parse_args()
    missing = [r for r in args.runs if not (r / "insights.json").is_file()
               or not (r / "insights.md").is_file()]
    if missing:  # a shell glob that also caught logs: one line, not a traceback
        print(f"error: {missing[0]}: not a run directory (no insights.json and insights.md); "
              f"{len(missing)} of {len(args.runs)} arguments are not", file=sys.stderr)
        return 2
    rows, mismatches = [], 0
    for run in args.runs:
        doc = json.loads((run / "insights.json").read_text(encoding="utf-8"))
        bad = check(doc)
        mismatches += len(bad)
        md = (run / "insights.md").read_text(encoding="utf-8")
        print(
            f"{run}: insights.json {(run / 'insights.json').stat().st_size / 1024:.1f} KB · "
            "insights.md "
            f"{len(md.encode()) / 1024:.1f} KB · brief "
            f"~{len(json.dumps(doc.get('brief') or {})) // 4} tokens · "
            f"{len(doc['episodes'])} episodes · grounding mismatches {len(bad)}"
        )
        card = run / "scorecard.json"
        if card.is_file():
            rows += [{**r, "run": run.name} for r in (json.loads(card.read_text(
                encoding="utf-8")).get("insights") or {}).get("per_event", [])]
    if rows:
        print(f"\nALL   {_agg(rows)}")
        by_type: dict[str, list[dict]] = defaultdict(list)
        for r in rows:
            by_type[str(r["type"])].append(r)
        for t, rs in sorted(by_type.items()):
            print(f"  {t:16s} {_agg(rs)}")
    if args.misreads and rows:
        _misreads(rows)
    print(f"\ngrounding mismatches: {mismatches}")
    return 0


def _misreads(rows: list[dict]) -> None:
    """Type confusions (true type -> read as, counts) and root-cause misses, one line each."""
    confused: dict[str, Counter] = defaultdict(Counter)
    for r in rows:
        if r["type_ok"] is False:
            confused[str(r["type"])][str(r["diagnosis"])] += 1
    print("\nmisread types (true -> read as):")
    for t, c in sorted(confused.items()):
        print(f"  {t:16s} " + ", ".join(f"{k} {n}" for k, n in c.most_common()))
    print("\nroot-cause misses (run event type: acted on -> named):")
    for r in rows:
        if r["root_cause_ok"] is False:
            named = "/".join(r["top_driver"]) if r["top_driver"] else "none (broad)"
            print(f"  {r['run']} {r['event_id']} {r['type']}: "
                  f"{'/'.join(r['expected_driver'])} -> {named}")


if __name__ == "__main__":
    raise SystemExit(_common.run(main))
