"""Which kinds of world (and of event) does detection underperform on, relative to the exact oracle?

Two modes.

``run``: for each world directory (generated, with truth/), runs the scoring stages once with the
shipped config (plus ``--set`` overrides, as bench/diagnose_detect.py; ``run`` has no
``--variant``) and writes one row per world (consensus F1 / P / R / FP, oracle recall at equal FP,
the ratio, and world features read from manifest.json and truth/: traffic, orders a day, trend,
yearly and weekly swing, day noise, cell dispersion, conversion noise, channels / countries /
categories, the smallest slice, history length, event mix) and one row per scored event (type,
scope kind, duration, profile, in-scope effect, the scoped slice's expected orders a day, each
detector's best calibrated score over the event's match window, found by consensus / by the
oracle at the consensus' false-positive budget)::

    PYTHONPATH=$PWD/src:$PWD python bench/world_factors.py run /tmp/j9/w/s{1..20} \
        --set scoring.warmup_days=90 --out /tmp/j9i/f_train

``analyse``: reads one or more such outputs and prints Spearman rank correlations of per-world
ratio / F1 / precision / FP with each feature (with a two-sided p-value and a Bonferroni count),
tercile splits, and the per-event gap (consensus-missed-oracle-found minus the reverse) by event
kind, size and slice size::

    python bench/world_factors.py analyse /tmp/j9i/f_train /tmp/j9i/f_val
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT), str(ROOT / "bench")]

import _common  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def world_features(d: Path) -> dict:
    """Features of the drawn store, from manifest.json and truth/config.json."""
    man = json.loads((d / "manifest.json").read_text())
    cfg = json.loads((d / "truth" / "config.json").read_text())
    tr, ch, co = cfg["traffic"], cfg["channels"], cfg["countries"]
    cats = cfg["products"]["categories"]
    ch_sh = np.array([v["share"] for v in ch.values()])
    ch_cv = np.array([v["conversion"] for v in ch.values()])
    ord_sh = ch_sh * ch_cv / (ch_sh * ch_cv).sum()
    conv = float((ch_sh * ch_cv).sum() / ch_sh.sum())
    co_sh = np.array(list(co.values()))
    co_sh = co_sh / co_sh.sum()
    cat_w = np.array([v["weight"] for v in cats.values()])
    cat_w = cat_w / cat_w.sum()
    wk = np.array(tr["weekly"])
    start, end = pd.Timestamp(cfg["period"]["start"]), pd.Timestamp(cfg["period"]["end"])
    orders = tr["base_sessions"] * conv
    ev = json.loads((d / "truth" / "events.json").read_text())
    unexp = [e for e in ev if not e.get("expected")]
    kinds = pd.Series([_scope_kind(e.get("scope") or {}) for e in unexp]).value_counts(
        normalize=True)
    return {
        "sessions": tr["base_sessions"], "log_sessions": np.log10(tr["base_sessions"]),
        "orders_day": orders, "log_orders": np.log10(orders), "conv": conv,
        "trend": tr["trend_annual"], "abs_trend": abs(tr["trend_annual"]),
        "yearly_amp": tr["yearly_amplitude"], "weekly_amp": float(wk.max() / wk.min() - 1),
        "day_cv": tr["day_noise_cv"], "cell_disp": tr["cell_dispersion"],
        "conv_cv": cfg["conversion"]["day_noise_cv"],
        "conv_season": cfg["conversion"]["seasonal_amplitude"],
        "n_channels": len(ch), "n_countries": len(co), "n_categories": len(cats),
        "n_slices": len(ch) + len(co) + len(cats),
        "min_ch_orders": orders * ord_sh.min(), "min_co_orders": orders * co_sh.min(),
        "min_cat_orders": orders * cat_w.min(),
        "log_min_slice_orders": np.log10(orders * min(ord_sh.min(), co_sh.min(), cat_w.min())),
        "hhi_channel": float((ord_sh**2).sum()), "hhi_country": float((co_sh**2).sum()),
        "days": int((end - start).days) + 1, "n_events": len(unexp),
        "n_calendar": len(cfg.get("calendar") or []),
        "share_overall": float(kinds.get("overall", 0.0)),
        "share_channel_country": float(kinds.get("channel_country", 0.0)),
        "share_product": float(kinds.get("product", 0.0)),
        "price_sigma": float(np.mean([v["price_sigma"] for v in cats.values()])),
        "items_mean": cfg["basket"]["items_mean"],
        "lifetime": cfg["customers"]["mean_lifetime_days"],
        "mode": man.get("magnitude_mode")
        or ("percent" if d.name.startswith("p") else "visibility"),
    }


def _scope_kind(scope: dict) -> str:
    from shocklab.truth import scope_kind
    return scope_kind({str(k): str(v) for k, v in scope.items() if v is not None})


def slice_orders(d: Path, scope: dict) -> float:
    """The scoped slice's expected orders a day at the base level (channel order share x country
    share x category weight of the store's)."""
    cfg = json.loads((d / "truth" / "config.json").read_text())
    ch = cfg["channels"]
    w = {k: v["share"] * v["conversion"] for k, v in ch.items()}
    tot = sum(w.values())
    co = cfg["countries"]
    cs = sum(co.values())
    cats = cfg["products"]["categories"]
    ws = sum(v["weight"] for v in cats.values())
    orders = cfg["traffic"]["base_sessions"] * tot / sum(v["share"] for v in ch.values())
    f = 1.0
    if scope.get("channel"):
        f *= w[scope["channel"]] / tot
    if scope.get("country"):
        f *= co[scope["country"]] / cs
    if scope.get("category"):
        f *= cats[scope["category"]]["weight"] / ws
    if scope.get("product"):
        f *= np.nan
    return orders * f


def run_worlds(dirs: list[Path], overrides: list[str], out: Path) -> None:
    import diagnose_detect as dd
    dd.WHY = True
    wrows, erows = [], []
    for d in dirs:
        r = dd.analyse_world(d, [overrides])[0]
        card = r["card"]
        s = card["strict"]
        c = s["consensus"]
        oe = s.get("oracle_equal_fp") or {}
        feats = world_features(d)
        wrows.append({"world": d.name, "f1": c["f1"], "precision": c["precision"],
                      "recall": c["recall"], "fp": c["fp"], "incidents": c["incidents"],
                      "events_scored": c["events"], "detected": c["detected"],
                      "oracle_eq": oe.get("oracle_recall"), "ratio": oe.get("ratio"),
                      "cons_only": len(oe.get("consensus_only", [])),
                      "orc_only": len(oe.get("oracle_only", [])),
                      "series": r["series"],
                      "false_alerts": (card.get("false_alerts") or {}).get("consensus"),
                      **feats})
        ev = {e["event_id"]: e for e in json.loads((d / "truth" / "events.json").read_text())}
        why = {w["event_id"]: w for w in r["why"]}
        co, oo = set(oe.get("consensus_only", [])), set(oe.get("oracle_only", []))
        for e in card["event_detail"]:
            if e["expected"] or e["in_warmup"]:
                continue
            t = ev[e["event_id"]]
            scope = {k: v for k, v in (t.get("scope") or {}).items() if v is not None}
            pk = t.get("primary_kpi")
            eff = (t.get("scope_effects") or {}).get(pk) if pk else None
            cons = "consensus" in e["detected_by"]
            w = why.get(e["event_id"], {})
            best = {f"best_{n}": v[0] for n, v in (w.get("best") or {}).items()}
            # found at equal FP: consensus found it and it is not consensus-only -> both
            orc_eq = (cons and e["event_id"] not in co) or e["event_id"] in oo
            erows.append({"world": d.name, "event_id": e["event_id"], "type": e["type"],
                          "scope_kind": e["scope_kind"], "primary_kpi": pk,
                          "profile": t.get("profile"), "persistent": t.get("persistent"),
                          "days": (pd.Timestamp(t["end"]) - pd.Timestamp(t["start"])).days + 1,
                          "effect": eff, "abs_effect": abs(eff) if eff is not None else None,
                          "direction": t.get("primary_direction"),
                          "slice_orders": slice_orders(d, scope), "cons": cons,
                          "oracle_eq": orc_eq, "oracle_own": "oracle" in e["detected_by"],
                          "why": w.get("why"), **best})
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(wrows).to_csv(out / "worlds.csv", index=False)
    pd.DataFrame(erows).to_csv(out / "events.csv", index=False)


def _spearman(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    from scipy.stats import spearmanr
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 5 or np.nanstd(x[ok]) == 0:
        return float("nan"), float("nan")
    r = spearmanr(x[ok], y[ok])
    return float(r.statistic), float(r.pvalue)


FEATS = ["log_sessions", "log_orders", "conv", "trend", "abs_trend", "yearly_amp", "weekly_amp",
         "day_cv", "cell_disp", "conv_cv", "conv_season", "n_channels", "n_countries",
         "n_categories", "n_slices", "log_min_slice_orders", "hhi_channel", "hhi_country",
         "days", "n_events", "n_calendar", "share_overall", "share_channel_country",
         "share_product", "price_sigma", "items_mean", "lifetime", "series", "share_border"]


def analyse(dirs: list[Path]) -> None:
    w = pd.concat([pd.read_csv(d / "worlds.csv").assign(pool=d.name) for d in dirs])
    e = pd.concat([pd.read_csv(d / "events.csv").assign(pool=d.name) for d in dirs])
    w["fp_per_series"] = w["fp"] / w["series"]
    # the event draw: share of a world's events the oracle sees only just (best score 3-5)
    border = e.assign(b=(e["best_oracle"] >= 3) & (e["best_oracle"] < 5)).groupby(
        ["pool", "world"])["b"].mean().rename("share_border")
    w = w.merge(border, left_on=["pool", "world"], right_index=True, how="left")
    targets = ["ratio", "f1", "precision", "recall", "fp", "oracle_eq"]
    print(f"== {len(w)} worlds ({', '.join(sorted(w['pool'].unique()))}); "
          f"ratio mean {w['ratio'].mean():.3f} sd {w['ratio'].std():.3f} "
          f"(min {w['ratio'].min():.2f}, max {w['ratio'].max():.2f}); pooled ratio "
          f"{w['detected'].sum() / (w['oracle_eq'] * w['events_scored']).sum():.3f}")
    n_tests = len(FEATS) * len(targets)
    print(f"Spearman rho (p) per feature; * p<0.05, ** Bonferroni over {n_tests} tests")
    print(f"{'feature':<24}" + "".join(f"{t:>16}" for t in targets))
    for f in FEATS:
        cells = []
        for t in targets:
            r, p = _spearman(w[f].to_numpy(float), w[t].to_numpy(float))
            mark = "**" if p < 0.05 / n_tests else "*" if p < 0.05 else ""
            cells.append(f"{r:+.2f} ({p:.3f}){mark:<2}")
        print(f"{f:<24}" + "".join(f"{c:>16}" for c in cells))
    print("terciles (low / mid / high) of ratio and F1 and FP per world:")
    for f in FEATS:
        try:
            q = pd.qcut(w[f].rank(method="first"), 3, labels=["lo", "mid", "hi"])
        except ValueError:
            continue
        g = w.groupby(q, observed=True)
        # the pooled ratio per tercile (events found by consensus / by the oracle at equal FP)
        pooled = g.apply(
            lambda x: x["detected"].sum() / (x["oracle_eq"] * x["events_scored"]).sum(),
            include_groups=False)
        print(f"  {f:<22} ratio " + " / ".join(f"{v:.3f}" for v in g["ratio"].mean())
              + "  pooled " + " / ".join(f"{v:.3f}" for v in pooled)
              + "  F1 " + " / ".join(f"{v:.3f}" for v in g["f1"].mean())
              + "  FP " + " / ".join(f"{v:.1f}" for v in g["fp"].mean())
              + "  range " + " / ".join(f"{x[f].min():.3g}-{x[f].max():.3g}" for _, x in g))
    # per event: the gap at equal FP
    e["gap"] = e["oracle_eq"].astype(int) - e["cons"].astype(int)  # +1 oracle-only, -1 cons-only
    tot_orc = e["oracle_eq"].sum()
    print(f"== {len(e)} events; consensus found {e['cons'].sum()}, oracle at equal FP "
          f"{tot_orc}; oracle-only {(e['gap'] == 1).sum()}, consensus-only {(e['gap'] == -1).sum()}"
          f"  (net gap / oracle's = 1 - pooled ratio: {e['gap'].sum() / tot_orc:.3f})")
    e["log_slice_orders"] = np.log10(e["slice_orders"])
    e["size_bin"] = pd.cut(e["log_slice_orders"], [-9, 1, 1.5, 2, 2.5, 3, 9],
                           labels=["<10", "10-32", "32-100", "100-316", "316-1k", ">1k"])
    e["eff_bin"] = pd.cut(e["abs_effect"], [0, 0.1, 0.2, 0.4, 0.8, 10])
    e["days_bin"] = pd.cut(e["days"], [0, 1, 3, 7, 14, 1000])
    e["orc_bin"] = pd.cut(e.get("best_oracle", pd.Series(np.nan, index=e.index)),
                          [-99, 3, 4, 5, 7, 10, 999])
    for col in ["scope_kind", "type", "primary_kpi", "profile", "direction", "size_bin", "eff_bin",
                "days_bin", "orc_bin", "persistent", "pool"]:
        g = e.groupby(col, observed=True)
        tab = pd.DataFrame({"n": g.size(), "cons": g["cons"].sum(), "orc_eq": g["oracle_eq"].sum(),
                            "orc_only": g["gap"].apply(lambda s: (s == 1).sum()),
                            "cons_only": g["gap"].apply(lambda s: (s == -1).sum())})
        tab["ratio"] = tab["cons"] / tab["orc_eq"]
        tab["share_of_gap"] = (tab["orc_only"] - tab["cons_only"]) / e["gap"].sum()
        print(f"-- by {col}")
        print(tab.round(3).to_string())
    vis = e[e["best_oracle"] >= 3.0] if "best_oracle" in e else e.iloc[:0]
    if len(vis):
        print("-- visible events (oracle best >= 3): median best score / oracle's by scope kind")
        for n in [c for c in e.columns if c.startswith("best_") and c != "best_oracle"]:
            r = (vis[n] / vis["best_oracle"]).replace([np.inf, -np.inf], np.nan)
            print(f"   {n:<26}" + "  ".join(
                f"{k} {r[vis['scope_kind'] == k].median():.2f}"
                for k in sorted(vis["scope_kind"].unique())))


def main(argv: list[str] | None = None) -> int:
    ap = _common.parser(__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("data", nargs="+", type=_common.path_arg)
    r.add_argument("--set", action="append", default=[])
    r.add_argument("--out", type=_common.path_arg, required=True)
    a_ = sub.add_parser("analyse")
    a_.add_argument("outs", nargs="+", type=_common.path_arg)
    a = ap.parse_args(argv)
    # tracebacks (InputError, FileNotFoundError) before: one line and exit 2, nothing written
    if a.cmd == "run":
        _common.need_dirs(a.data)
        if a.out.exists() and not a.out.is_dir():   # was mkdir's error after every world
            _common.fail(f"--out {a.out}", "is not a directory")
    else:
        _common.need_files([d / f for d in a.outs for f in ("worlds.csv", "events.csv")])
    if a.cmd == "run":
        run_worlds(a.data, a.set, a.out)
    else:
        analyse(a.outs)
    return 0


if __name__ == "__main__":
    raise SystemExit(_common.run(main))
