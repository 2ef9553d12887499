"""What would strict scoring credit if a slice that contains a channel × country event were judged
by its own effect? A measurement for a scoring change (issue 9, seventeenth session).

Strict matching reads the scoped cell's effect (``scope_effects``) on every slice the scope names:
for a channel × country event, on the whole channel and the whole country too. Those contain the
cell without being it. For counts the cell's effect overstates theirs with the same sign, and for
ratios the mix can reverse it. Example: removing a high-converting channel lowers its country's
conversion, while the cell's own conversion rises.

A container's effect, from the cell's share ``w`` of the container's shock-free sessions, orders
and revenue over the event's days (truth/baseline_daily has the cells) and the cell's effects
``e``: counts ``w_x e_x``; conversion ``(1 + w_o e_o) / (1 + w_s e_s) - 1``; AOV
``(1 + w_r e_r) / (1 + w_o e_o) - 1``. For every consensus and oracle incident on a container
during the event's match window, the match is redone with that effect (the primary-KPI rule
unchanged), and the flips are counted:

- FP -> TP: it matches no event today and would match this one;
- TP -> FP: it matches only this event today and would not.

The other container, a product-scoped event's category (strict matching reads the store's
effect there, which understates the category's), is only counted: the false positives on that
category during the event's match window, and those with a peak of 5 or more.

    PYTHONPATH=$PWD/src:$PWD python bench/container_effects.py /tmp/w/s1 /tmp/w/s2 \\
        [--set scoring.warmup_days=90]

No scoring is changed by this script; it prints counts per world and in total.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from shocklab.catalogue import PAIR_SEP  # noqa: E402


def container_effects(cell: dict[str, float], container: dict[str, float],
                      effects: dict[str, float]) -> dict[str, float]:
    """Relative effects on a container slice from the cell's shock-free sums (``cell``,
    ``container``: sessions, orders, revenue over the event's days) and the cell's own relative
    ``effects`` (sessions, orders, revenue; the ratios follow from them)."""
    w = {x: (cell[x] / container[x] if container.get(x) else 0.0)
         for x in ("sessions", "orders", "revenue")}
    e = {x: float(effects.get(x, 0.0) or 0.0) for x in ("sessions", "orders", "revenue")}
    out = {x: w[x] * e[x] for x in w}
    out["conversion_rate"] = (1 + w["orders"] * e["orders"]) / (1 + w["sessions"]
                                                                * e["sessions"]) - 1
    out["aov"] = (1 + w["revenue"] * e["revenue"]) / (1 + w["orders"] * e["orders"]) - 1
    return out


def flips(incidents, events, ev, eff: dict[tuple[str, str], dict[str, float]],
          settings: dict) -> Counter:
    """Counter of ("FP->TP" | "TP->FP", kpi) over ``incidents`` on the containers in ``eff``
    ((dimension, segment) -> effects) of event ``ev``."""
    from evaluation.scoring import _window, match_matrix

    early, late, need = settings["early_days"], settings["late_days"], settings["min_effect"]
    lo, hi = _window(ev, early, late)
    mine = [i for i in incidents if (i.dimension, i.segment) in eff
            and i.start <= hi and i.end >= lo]
    out: Counter = Counter()
    if not mine:
        return out
    mm = match_matrix(mine, events, "strict", early, late, need)
    j = next(k for k, e in enumerate(events) if e.event_id == ev.event_id)
    for i, row in zip(mine, mm, strict=True):
        sign = 1.0 if i.direction == "up" else -1.0
        e = eff[(i.dimension, i.segment)].get(i.kpi, 0.0) * sign
        primary = i.kpi == ev.primary_kpi and (
            i.direction == ev.primary_direction if ev.primary_direction in ("up", "down")
            else e > 0)
        fixed = primary or e >= need
        if fixed and not row.any():
            out[("FP->TP", i.kpi)] += 1
        elif not fixed and row[j] and row.sum() == 1:
            out[("TP->FP", i.kpi)] += 1
    return out


def world(d: Path, sets: list[str]) -> dict[str, Counter]:
    from cl_windows import load_world  # bench/, the script's own directory

    from analytics.config import load_analysis_config
    from analytics.context import RunContext
    from analytics.watch import product_categories
    from evaluation.oracle import truth_baseline
    from evaluation.pipeline import STAGES, run
    from evaluation.scoring import Event, _window, match_matrix
    from evaluation.truth import attach
    from experiments.cell import _memoized_detectors

    ds, truth = load_world(d)
    cfg = load_analysis_config(None, ["customers.enabled=false", "insights.enabled=false", *sets])
    with tempfile.TemporaryDirectory(prefix="container-effects-") as tmp:
        ctx = attach(RunContext(config=cfg, data=ds, out_dir=Path(tmp)), truth)
        with _memoized_detectors():
            run(ctx, [s for s in STAGES if s[0] in ("kpis", "detect", "oracle", "consensus",
                                                      "score")])
        settings = ctx.scorecard["settings"]
        base = truth_baseline(ctx)
        warm = {e["event_id"] for e in ctx.scorecard["event_detail"] if e["in_warmup"]}
        events = [Event.from_dict(e) for e in truth.events]
        events = [e for e in events if e.event_id not in warm]
        incs = {"consensus": ctx.incidents, "oracle": ctx.detector_incidents.get("oracle", [])}
        products = (ctx.data.tables or {}).get("products")
        pcat = product_categories(products) or {}
    out = {k: Counter() for k in incs}
    early, late = settings["early_days"], settings["late_days"]
    for ev in events:  # a product's category: false positives during its event (not recomputed)
        cat = pcat.get(str(ev.scope.get("product"))) if "product" in ev.scope else None
        if ev.expected or cat is None:
            continue
        lo, hi = _window(ev, early, late)
        for name, inc in incs.items():
            mine = [i for i in inc if (i.dimension, i.segment) == ("category", cat)
                    and i.start <= hi and i.end >= lo]
            if mine:
                mm = match_matrix(mine, events, "strict", early, late, settings["min_effect"])
                for i, row in zip(mine, mm, strict=True):
                    if not row.any():
                        out[name][("category FP", i.kpi)] += 1
                        out[name][("category FP, peak >= 5", i.kpi)] += i.peak_score >= 5
    for ev in events:
        if ev.expected or not ev.scope_effects or set(ev.scope) != {"channel", "country"}:
            continue
        c, k = str(ev.scope["channel"]), str(ev.scope["country"])
        days = (base["date"] >= ev.start) & (base["date"] <= ev.end)
        b = base[days]

        def sums(dim: str, seg: str, b=b) -> dict[str, float]:
            rows = b[(b["dimension"] == dim) & (b["segment"].astype(str) == seg)]
            return {x: float(rows[x].sum()) for x in ("sessions", "orders", "revenue")}

        cell = sums("channel_country", f"{c}{PAIR_SEP}{k}")
        eff = {(dim, seg): container_effects(cell, sums(dim, seg), ev.scope_effects)
               for dim, seg in (("channel", c), ("country", k))}
        for name, inc in incs.items():
            out[name] += flips(inc, events, ev, eff, settings)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", nargs="+", type=Path, help="generated worlds (with truth/)")
    ap.add_argument("--set", action="append", default=[], help="analysis override (repeatable)")
    a = ap.parse_args(argv)
    total = {"consensus": Counter(), "oracle": Counter()}
    for d in a.data:
        res = world(d, a.set)
        for name, cnt in res.items():
            total[name] += cnt
        print(f"{d.name}: " + "  ".join(
            f"{name} FP->TP {sum(v for (f, _), v in cnt.items() if f == 'FP->TP')} "
            f"TP->FP {sum(v for (f, _), v in cnt.items() if f == 'TP->FP')}"
            for name, cnt in res.items()), flush=True)
    print("-- total (by KPI; 'category FP': false positives on a product-scoped event's category "
          "during its match window, the case not recomputed)")
    for name, cnt in total.items():
        for f in ("FP->TP", "TP->FP", "category FP", "category FP, peak >= 5"):
            by = {k: v for (g, k), v in sorted(cnt.items()) if g == f}
            print(f"   {name:<9} {f}: {sum(by.values()):4d}  {by}")
    return 0


if __name__ == "__main__":
    from shocklab.cli import run_cli

    raise SystemExit(run_cli(main))
