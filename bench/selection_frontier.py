"""Is the consensus' choice of incidents the gap? What any rule over the voters' incidents can do.

The consensus keeps some of the incidents its voters raise. Could a better rule keep better ones?
For each generated world (with truth/) this runs the scoring stages (kpis, detect, oracle,
consensus, score: the shipped config plus ``--set``), takes every incident any voter raised (the
``k1`` level: one voter is enough), labels it by whether it strictly matches an unexpected event,
and describes it by what a rule could read:

- each voter's peak calibrated score on it (its own incidents overlapping it on the same series
  and direction), how many voters flagged it, its length, KPI, dimension, direction and size;
- its **corroboration**: how many *other* series have an any-voter incident starting within ±1
  day of its start (a shock moves several series at once; a null exceedance mostly one).

Then it prints
- the share of true incidents by corroboration, for the consensus' incidents and the voters';
- a **selector**: a gradient-boosted classifier (scikit-learn ``HistGradientBoostingClassifier``)
  over those features, trained by 5-fold cross-validation grouped by world (each world's
  incidents are scored by a model that never saw that world), its incidents kept at several
  probability cuts, with the event-level F1 / precision / recall / false positives per pool (the
  world directory names' leading letters: ``s1``, ``s2`` → pool ``s``) beside the consensus'.
  Precision counts incidents, recall events, as the scorecard does.

A selector no better than the consensus says the rule is not where the gap is: the evidence the
voters carry is (docs/history/detection.md, "Twenty-first session"). Tune on TRAIN worlds only.

    PYTHONPATH=$PWD/src:$PWD python bench/selection_frontier.py /tmp/w/s{1..20} /tmp/w/p{1..20} \
        --set scoring.warmup_days=90 --dump /tmp/sel.json
    PYTHONPATH=$PWD/src:$PWD python bench/selection_frontier.py --load /tmp/sel.json
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT), str(ROOT / "bench")]

import _common  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

KPIS = ("sessions", "orders", "revenue", "conversion_rate", "aov", "price")
DIMS = ("overall", "channel", "country", "category", "product", "channel_country")
CUTS = (0.3, 0.4, 0.5, 0.6, 0.7)
BINS = (-1, 0, 1, 2, 4, 8, 16, 10**9)
FEATURES_CATEGORICAL = ("kpi", "dim")


def _rows(incidents, events, settings) -> list[dict]:
    """Incidents as plain rows with the unexpected events each strictly matches."""
    from evaluation.scoring import match_matrix

    mm = match_matrix(incidents, events, "strict", settings["early_days"], settings["late_days"],
                      settings["min_effect"])
    return [dict(kpi=i.kpi, dim=i.dimension, seg=str(i.segment), dir=i.direction,
                 start=str(i.start.date()), end=str(i.end.date()), det=list(i.detectors),
                 peak=float(i.peak_score),
                 mag=float(i.magnitude_pct) if np.isfinite(i.magnitude_pct) else None,
                 ev=[events[j].event_id for j in r.nonzero()[0]])
            for i, r in zip(incidents, mm, strict=True)]


def dump_world(data_dir: Path, sets: list[str]) -> dict:
    """One world's consensus, k1 and per-voter incidents, labelled (runs the scoring stages)."""
    from analytics.config import load_analysis_config
    from analytics.context import RunContext
    from analytics.loading import load_data_dir
    from analytics.watch import product_categories
    from evaluation.pipeline import STAGES, run
    from evaluation.scoring import Event
    from evaluation.truth import attach, find_truth

    ds, truth = load_data_dir(data_dir), find_truth(data_dir)
    cfg = load_analysis_config(None, sets)
    with tempfile.TemporaryDirectory() as tmp:
        ctx = attach(RunContext(config=cfg, data=ds, out_dir=Path(tmp)), truth)
        run(ctx, [s for s in STAGES if s[0] in ("kpis", "detect", "oracle", "consensus", "score")])
    card = ctx.scorecard
    settings = card["settings"]
    members = product_categories((ds.tables or {}).get("products")) or None
    warm = set(card.get("warmup", {}).get("event_ids", []))
    events = [e for e in (Event.from_dict(d).with_members(members) for d in truth.events)
              if e.event_id not in warm and not e.expected]
    return {"events": [e.event_id for e in events],
            "consensus": _rows(ctx.incidents, events, settings),
            "k1": _rows(ctx.consensus_levels.get("k1", []), events, settings),
            "voters": {v: _rows(ctx.detector_incidents.get(v, []), events, settings)
                       for v in ctx.voters}}


def _key(i: dict) -> tuple:
    return i["dim"], i["seg"], i["kpi"], i["dir"]


def _overlaps(a: dict, b: dict) -> bool:
    return not (a["end"] < b["start"] or a["start"] > b["end"])  # ISO dates compare as text


def corroboration(incidents: list[dict], pool: list[dict], days: int = 1) -> list[int]:
    """Per incident: how many other series (dimension, segment, KPI; either direction) have an
    incident of ``pool`` starting within ± ``days`` of its start."""
    by_day: dict[pd.Timestamp, set] = defaultdict(set)
    for j in pool:
        by_day[pd.Timestamp(j["start"])].add((j["dim"], j["seg"], j["kpi"]))
    out = []
    for i in incidents:
        t, me = pd.Timestamp(i["start"]), (i["dim"], i["seg"], i["kpi"])
        near = set().union(*(by_day.get(t + pd.Timedelta(days=k), set())
                             for k in range(-days, days + 1)))
        out.append(len(near - {me}))
    return out


def features(world: dict) -> pd.DataFrame:
    """One row per k1 incident: the voters' peaks, votes, length, KPI, dimension, direction,
    |magnitude|, corroboration, and the label ``true`` (it matches an event)."""
    k1 = world["k1"]
    own: dict[str, dict[tuple, list[dict]]] = {
        v: defaultdict(list) for v in world["voters"]}
    for v, incs in world["voters"].items():
        for j in incs:
            own[v][_key(j)].append(j)
    rows = []
    for i, corr in zip(k1, corroboration(k1, k1), strict=True):
        row = {f"peak_{v}": max((j["peak"] for j in own[v][_key(i)] if _overlaps(i, j)),
                                default=0.0) for v in sorted(own)}
        row.update(peak=i["peak"], votes=len(i["det"]),
                   days=(pd.Timestamp(i["end"]) - pd.Timestamp(i["start"])).days + 1,
                   corroboration=corr,
                   kpi=KPIS.index(i["kpi"]) if i["kpi"] in KPIS else len(KPIS),
                   dim=DIMS.index(i["dim"]) if i["dim"] in DIMS else len(DIMS),
                   up=float(i["dir"] == "up"),
                   size=abs(i["mag"]) if i["mag"] is not None else np.nan,
                   true=bool(i["ev"]))
        rows.append(row)
    return pd.DataFrame(rows)


def event_scores(incidents: list[dict], events: list[str]) -> tuple[float, float, float, int]:
    """(F1, precision, recall, false positives): precision over incidents, recall over events."""
    tp = sum(1 for i in incidents if i["ev"])
    found = {e for i in incidents for e in i["ev"]} & set(events)
    p = tp / len(incidents) if incidents else 0.0
    r = len(found) / len(events) if events else 0.0
    return (2 * p * r / (p + r) if p + r else 0.0), p, r, len(incidents) - tp


def pool_of(name: str) -> str:
    m = re.match(r"[A-Za-z_]*", name)
    return m.group(0) if m and m.group(0) else "all"


def selector(worlds: dict[str, dict], folds: int = 5, seed: int = 0) -> dict[str, np.ndarray]:
    """Cross-validated probability that each k1 incident is true, per world (grouped folds: a
    world's incidents are scored by a model fitted on the other folds' worlds only)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    tables = {w: features(d) for w, d in worlds.items()}
    names = sorted(tables)
    order = np.random.default_rng(seed).permutation(len(names))
    fold = {names[k]: n % folds for n, k in enumerate(order)}
    cols = [c for c in pd.concat(tables.values()).columns if c != "true"]
    out: dict[str, np.ndarray] = {}
    for f in range(folds):
        train = [tables[w] for w in names if fold[w] != f and len(tables[w])]
        test = [w for w in names if fold[w] == f]
        if not train or not test:
            continue
        tr = pd.concat(train).reindex(columns=[*cols, "true"], fill_value=0.0)
        model = HistGradientBoostingClassifier(
            max_iter=200, learning_rate=0.05, max_leaf_nodes=15, random_state=seed,
            categorical_features=[cols.index(c) for c in FEATURES_CATEGORICAL])
        model.fit(tr[cols].to_numpy(float), tr["true"].to_numpy(bool))
        for w in test:
            x = tables[w].reindex(columns=cols, fill_value=0.0).to_numpy(float)
            out[w] = model.predict_proba(x)[:, 1] if len(x) else np.zeros(0)
    return out


def report(worlds: dict[str, dict], cuts=CUTS) -> dict[str, dict[str, list[float]]]:
    """Print the corroboration table and the selector against the consensus, per pool; returns
    {pool: {rule: [F1, precision, recall, FP per world]}}."""
    for level in ("consensus", "k1"):
        rows = [(c, bool(i["ev"])) for d in worlds.values()
                for i, c in zip(d[level], corroboration(d[level], d["k1"]), strict=True)]
        if not rows:
            continue
        t = pd.DataFrame(rows, columns=["corroboration", "true"])
        g = t.groupby(pd.cut(t["corroboration"], BINS), observed=False)["true"]
        print(f"{level}: share true by corroboration (other series within ±1 day)")
        print("   " + "  ".join(f"{str(b):>10}" for b in g.size().index))
        print("   " + "  ".join(f"{m:10.3f}" for m in g.mean().fillna(0)))
        print("   " + "  ".join(f"{n:10d}" for n in g.size()))
    prob = selector(worlds)
    res: dict[str, dict[str, list[list[float]]]] = defaultdict(lambda: defaultdict(list))
    for w, d in worlds.items():
        pool = pool_of(w)
        res[pool]["consensus"].append(event_scores(d["consensus"], d["events"]))
        p = prob.get(w, np.zeros(len(d["k1"])))
        for cut in cuts:
            kept = [i for i, q in zip(d["k1"], p, strict=True) if q >= cut]
            res[pool][f"selector {cut:.1f}"].append(event_scores(kept, d["events"]))
    out: dict[str, dict[str, list[float]]] = {}
    for pool in sorted(res):
        out[pool] = {}
        print(f"pool {pool} ({len(res[pool]['consensus'])} worlds): F1 / precision / recall / "
              "FP per world")
        for rule, vals in res[pool].items():
            m = np.mean(np.array(vals, float), axis=0)
            out[pool][rule] = [round(float(x), 4) for x in m]
            print(f"   {rule:<14} {m[0]:.4f} / {m[1]:.4f} / {m[2]:.4f} / {m[3]:.1f}")
    return out


def _load(path: Path) -> dict[str, dict]:
    """An earlier ``--dump``; a file that is missing or not such a dump is bad input (one line,
    exit 2)."""
    from diagnose_detect import json_input

    def read(worlds):
        if not isinstance(worlds, dict) or not worlds:
            raise ValueError("no worlds")
        for w, d in worlds.items():
            missing = {"events", "consensus", "k1", "voters"} - set(d)
            if missing:
                raise KeyError(f"world {w} lacks {sorted(missing)}")
        return worlds

    return json_input(path, "--load", "selection_frontier --dump file", read)


def main(argv: list[str] | None = None) -> int:
    ap = _common.parser(__doc__.splitlines()[0])
    ap.add_argument("data", nargs="*", type=_common.path_arg, help="generated world directories")
    ap.add_argument("--set", action="append", default=[], help="analysis config override")
    ap.add_argument("--dump", type=_common.path_arg,
                    help="also write the labelled incidents here (JSON)")
    ap.add_argument("--load", type=_common.path_arg,
                    help="read an earlier --dump instead of analysing")
    a = ap.parse_args(argv)
    if a.load:
        worlds = _load(a.load)
    else:
        if not a.data:
            ap.error("give world directories or --load")
        _common.need_dirs(a.data)
        if a.dump:
            _common.need_parent(a.dump, "--dump")
        worlds = {}
        for d in a.data:
            worlds[d.name] = dump_world(d, a.set)
            print(f"# {d.name}: {len(worlds[d.name]['consensus'])} consensus / "
                  f"{len(worlds[d.name]['k1'])} any-voter incidents", flush=True)
        if a.dump:
            a.dump.write_text(json.dumps(worlds))
    report(worlds)
    return 0


if __name__ == "__main__":
    from shocklab.cli import run_cli

    raise SystemExit(run_cli(main))
