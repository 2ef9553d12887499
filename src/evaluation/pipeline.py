"""The analysis run plus the evaluation stages: analytics' ``STAGES`` with ``oracle`` after detect
(the exact-null oracle reads truth: ``evaluation/oracle.py``), ``score`` after consensus,
``customer_scoring`` after customers, ``insight_windows`` before insights (it reads no insight,
so it runs beside them) and ``insight_scoring`` after insights. Entry points that may
have truth (run_analysis, sweeps, tests) attach it (``evaluation.truth.attach``) and run these;
analytics alone never sees a scorecard.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analytics import pipeline as ap
from analytics.config import AnalysisConfig
from analytics.context import RunContext
from analytics.kpis import key_codes
from analytics.schedule import beside
from analytics.watch import product_categories

from .bound_check import POINT_COLUMNS
from .oracle import stage_oracle
from .scoring import build_scorecard, format_table
from .truth import attach, find_truth


def with_revenue_impact(
    events: list[dict[str, Any]], counterfactual: pd.DataFrame | None
) -> list[dict[str, Any]]:
    """Events with ``impact_revenue``: the realized relative revenue effect times the counterfactual
    twin's overall revenue over the event's window (revenue lost or gained), when both are known."""
    if counterfactual is None or "revenue" not in counterfactual.columns or not events:
        return events
    cf = counterfactual
    if "channel" in cf.columns:
        cf = cf[cf["channel"].astype(str) == "all"]
    elif "dimension" in cf.columns:
        cf = cf[cf["dimension"] == "overall"]
    daily = cf.groupby(pd.to_datetime(cf["date"]))["revenue"].sum()
    out = []
    for e in events:
        rel = (e.get("effects") or {}).get("revenue")
        if e.get("expected") or rel is None:
            out.append(e)
            continue
        base = float(daily.loc[pd.Timestamp(e["start"]):pd.Timestamp(e["end"])].sum())
        out.append({**e, "impact_revenue": round(float(rel) * base, 2)})
    return out


def stage_score(ctx: RunContext) -> None:
    if ctx.truth is None:
        ctx.scorecard = None
        return
    cfg: AnalysisConfig = ctx.config
    vs = ap.voters(ctx)
    levels = ctx.consensus_levels
    settings = {
        **cfg.scoring.model_dump(exclude={"include_oracle"}),
        "data_start": ctx.kpis_daily["date"].min().date().isoformat()
        if ctx.kpis_daily is not None and len(ctx.kpis_daily)
        else None,
        "merge_gap_days": cfg.consensus.merge_gap_days,
        "tolerance_days": cfg.consensus.tolerance_days,
        "min_votes": cfg.consensus.min_votes,
        "required": list(cfg.consensus.required),
        "count_by": cfg.consensus.count_by,
        "combine": cfg.consensus.combine,  # stouffer: consensus_levels are still k-of-n votes
        "dimensions": list(cfg.dimensions),  # watched (events.unwatched: scoped elsewhere)
        "voters": vs,
    }
    oracle = next(
        (n for n, d in cfg.detectors.items() if d.type == "oracle" and n in ctx.detector_incidents),
        None,
    )
    failed = {
        n: st["error"]
        for n, st in ctx.detector_status.items()
        if not st.get("ok") and not st.get("skipped")
    }
    events = with_revenue_impact(ctx.truth.events, ctx.truth.counterfactual)
    products = (ctx.data.tables or {}).get("products") if ctx.data is not None else None
    product_category = product_categories(products) or None
    det = ctx.detections
    points = (det.loc[det["detector"] == oracle, list(POINT_COLUMNS)]   # bound_check
              if oracle and det is not None else None)
    ctx.scorecard = build_scorecard(events, ctx.detector_incidents, ctx.incidents, levels,
                                    settings, oracle_name=oracle, failed=failed,
                                    product_category=product_category,
                                    oracle_onsets=ctx.oracle_onsets if oracle else None,
                                    oracle_points=points)
    ctx.scorecard["false_alerts"] = false_alert_rates(ctx, ctx.scorecard, vs)


def false_alert_rates(ctx: RunContext, card: dict[str, Any], voters: list[str]) -> dict[str, Any]:
    """False alerts (incidents matching no unexpected event) per watched series per 90 days, per
    detector and for the consensus: the unit of the sensitivity knob. On a shock-free world every
    incident is one. ``by_dimension``: the same per watched dimension (each detector's false
    positives on that dimension's series over its series there), so a knob that holds over all
    series but not on one dimension -- the whole store's few series among many slices --
    shows (None where a detector watches no series of the dimension)."""
    det = ctx.detections
    if det is None or not len(det):
        return {"days": 0, "consensus": None, "detectors": {}, "by_dimension": {}}
    # distinct days and (detector, series) pairs from the distinct values and integer codes,
    # without copying the detections (drop_duplicates over every row of the frame)
    days = int(pd.DatetimeIndex(det["date"].unique()).normalize().nunique())
    combo = key_codes(det, ["kpi", "dimension", "segment"])
    d_code, d_names = pd.factorize(det["detector"])
    dim_code, dim_names = pd.factorize(det["dimension"])
    n_combo = int(combo.max()) + 1
    pair_key = d_code.astype(np.int64) * n_combo + combo
    pairs, first = np.unique(pair_key[d_code >= 0], return_index=True)
    pair_dim = dim_code[d_code >= 0][first]
    pair_det, pair_series = pairs // n_combo, pairs % n_combo
    counts = np.bincount(pair_det, minlength=len(d_names))
    series = {str(n): int(c) for n, c in zip(d_names, counts, strict=True) if c}
    mode = card["settings"]["mode"]

    def rate(fp: int, n_series: int) -> float | None:
        return round(fp / (n_series * days / 90.0), 4) if n_series and days else None

    per = {n: rate(m["fp"], int(series.get(n, 0))) for n, m in card[mode]["detectors"].items()}
    # the series any voter watches, from the (detector, series) pairs rather than every row
    of_voter = np.isin(pair_det, np.flatnonzero(d_names.isin(voters)))
    n_cons = len(np.unique(pair_series[of_voter]))
    dims = list(dict.fromkeys([*(card["settings"].get("dimensions") or []), *map(str, dim_names)]))
    by_dim: dict[str, Any] = {}
    for dim in dims:
        k = int(dim_names.get_loc(dim)) if dim in dim_names else -1
        in_dim = pair_dim == k
        n_dim = np.bincount(pair_det[in_dim], minlength=len(d_names))
        s_dim = {str(n): int(c) for n, c in zip(d_names, n_dim, strict=True) if c}
        cons_fp = card[mode]["consensus"]["fp_by_dimension"].get(dim, 0)
        by_dim[dim] = {
            "series": {n: int(s_dim.get(n, 0)) for n in card[mode]["detectors"]},
            "consensus": rate(cons_fp, len(np.unique(pair_series[of_voter & in_dim]))),
            "detectors": {n: rate(m["fp_by_dimension"].get(dim, 0), int(s_dim.get(n, 0)))
                          for n, m in card[mode]["detectors"].items()},
        }
    return {"days": days, "series": {n: int(series.get(n, 0)) for n in card[mode]["detectors"]},
            "consensus": rate(card[mode]["consensus"]["fp"], n_cons), "detectors": per,
            "by_dimension": by_dim}


def stage_insight_scoring(ctx: RunContext) -> None:
    if ctx.scorecard is not None and ctx.insights is not None:
        from .insight_scoring import stage as score_insights

        score_insights(ctx)


@beside  # reads the KPIs, detections and truth only: runs beside the insights stage
def stage_insight_windows(ctx: RunContext) -> None:
    """Insight scoring's attribution over the true event windows, computed ahead (it does not
    read the insights) into ``ctx.ahead``; ``insight_scoring`` reports it."""
    if ctx.scorecard is not None and ctx.truth is not None and ctx.kpis_daily is not None:
        from .insight_scoring import event_windows

        ctx.ahead["insight_windows"] = event_windows(ctx)


def stage_customer_scoring(ctx: RunContext) -> None:
    from .customer_scores import stage as score_customers

    score_customers(ctx)


def _with_evaluation(stages: Sequence[tuple[str, ap.Stage]]) -> list[tuple[str, ap.Stage]]:
    out: list[tuple[str, ap.Stage]] = []
    for name, fn in stages:
        out.append((name, fn))
        if name == "detect":
            out.append(("oracle", stage_oracle))  # detections of the oracle (reads truth)
        elif name == "consensus":
            out.append(("score", stage_score))
        elif name == "customers":
            out.append(("customer_scoring", stage_customer_scoring))  # scorecard["customers"]
        elif name == "insights":
            # the event windows first (beside insights in the parallel path), then the scores
            out.insert(-1, ("insight_windows", stage_insight_windows))
            out.append(("insight_scoring", stage_insight_scoring))  # scorecard["insights"]
    return out


STAGES: list[tuple[str, ap.Stage]] = _with_evaluation(ap.STAGES)


def run(ctx: RunContext, stages: Sequence[tuple[str, ap.Stage]] | None = None) -> RunContext:
    return ap.run(ctx, STAGES if stages is None else stages)


def analyse(
    data_dir: str | Path,
    raw_config: dict[str, Any] | None = None,
    out_dir: str | Path | None = None,
    detectors: Sequence[str] | None = None,
    config_path: str | Path | None = None,
    stages: Sequence[tuple[str, ap.Stage]] | None = None,
) -> dict[str, Any]:
    """``analytics.pipeline.analyse`` with the evaluation stages and the data directory's truth
    (``evaluation.truth.find_truth``) attached: returns the scorecard dict."""
    truth = find_truth(data_dir) if Path(data_dir).is_dir() else None
    return ap.analyse(
        data_dir, raw_config, out_dir, detectors, config_path,
        STAGES if stages is None else stages,
        attach=lambda ctx: attach(ctx, truth), has_truth=truth is not None,
    )


__all__ = [
    "STAGES", "analyse", "format_table", "run", "stage_insight_scoring", "stage_oracle",
    "stage_score",
]
