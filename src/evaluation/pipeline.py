"""The analysis run plus the evaluation stages: analytics' ``STAGES`` with ``score`` after
consensus and ``insight_scoring`` after insights. Entry points that may have truth (run_analysis,
sweeps, tests) run these; analytics alone never sees a scorecard.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from analytics import pipeline as ap
from analytics.config import AnalysisConfig
from analytics.context import RunContext

from .scoring import build_scorecard, format_table


def stage_score(ctx: RunContext) -> None:
    if not ctx.data.has_truth:
        ctx.scorecard = None
        return
    cfg: AnalysisConfig = ctx.config
    vs = ap.voters(ctx)
    levels = ctx.consensus_levels
    settings = {**cfg.scoring.model_dump(exclude={"include_oracle"}),
                "merge_gap_days": cfg.consensus.merge_gap_days, "tolerance_days": cfg.consensus.tolerance_days,
                "min_votes": cfg.consensus.min_votes, "required": list(cfg.consensus.required),
                "count_by": cfg.consensus.count_by, "voters": vs}
    oracle = next((n for n, d in cfg.detectors.items() if d.type == "oracle" and n in ctx.detector_incidents), None)
    failed = {n: st["error"] for n, st in ctx.detector_status.items() if not st.get("ok") and not st.get("skipped")}
    ctx.scorecard = build_scorecard(ctx.data.truth_events or [], ctx.detector_incidents, ctx.incidents, levels,
                                    settings, oracle_name=oracle, failed=failed)


def stage_insight_scoring(ctx: RunContext) -> None:
    if ctx.scorecard is not None and ctx.insights is not None:
        from .insight_scoring import stage as score_insights

        score_insights(ctx)


def _with_evaluation(stages: Sequence[tuple[str, ap.Stage]]) -> list[tuple[str, ap.Stage]]:
    out: list[tuple[str, ap.Stage]] = []
    for name, fn in stages:
        out.append((name, fn))
        if name == "consensus":
            out.append(("score", stage_score))
        elif name == "insights":
            out.append(("insight_scoring", stage_insight_scoring))  # scorecard["insights"]
    return out


STAGES: list[tuple[str, ap.Stage]] = _with_evaluation(ap.STAGES)


def run(ctx: RunContext, stages: Sequence[tuple[str, ap.Stage]] | None = None) -> RunContext:
    return ap.run(ctx, STAGES if stages is None else stages)


def analyse(data_dir: str | Path, raw_config: dict[str, Any] | None = None, out_dir: str | Path | None = None,
            detectors: Sequence[str] | None = None, config_path: str | Path | None = None,
            stages: Sequence[tuple[str, ap.Stage]] | None = None) -> dict[str, Any]:
    """``analytics.pipeline.analyse`` with the evaluation stages: returns the scorecard dict."""
    return ap.analyse(data_dir, raw_config, out_dir, detectors, config_path, STAGES if stages is None else stages)


__all__ = ["STAGES", "analyse", "format_table", "run", "stage_insight_scoring", "stage_score"]
