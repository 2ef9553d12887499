"""Plots of a sweep (metric vs each numeric parameter; precision–recall per setting) and of a
detectability experiment (recall vs magnitude per type and duration). matplotlib, Agg backend."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from shocklab.figures import house_style, missing_glyphs_quiet
from shocklab.filenames import file_name

from .grid import short_names


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path: Path) -> Path:
    with missing_glyphs_quiet():
        fig.tight_layout()
        fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


@house_style
def sweep_plots(
    board: pd.DataFrame,
    params: list[str],
    metric: str,
    out_dir: Path,
    precision: str = "consensus.precision",
    recall: str = "consensus.recall",
) -> list[Path]:
    """``metric`` (mean with its interval) against each numeric parameter — one line per value
    of the other parameters — and a precision–recall scatter of the settings."""
    plt = _pyplot()
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    params = [p for p in params if p in board.columns]
    names = short_names(params)
    mean, lo, hi = f"{metric}.mean", f"{metric}.ci_low", f"{metric}.ci_high"
    if mean in board.columns:
        for p in params:
            if not pd.api.types.is_numeric_dtype(board[p]) or board[p].nunique() < 2:
                continue
            others = [o for o in params if o != p and board[o].astype(str).nunique() > 1]
            fig, ax = plt.subplots(figsize=(7, 4.5))
            groups = (
                board.groupby([board[o].astype(str) for o in others], sort=True)
                if others
                else [("", board)]
            )
            for label, g in groups:
                g = g.sort_values(p)
                yerr = [(g[mean] - g[lo]).clip(lower=0), (g[hi] - g[mean]).clip(lower=0)]
                ax.errorbar(
                    g[p],
                    g[mean],
                    yerr=yerr,
                    marker="o",
                    capsize=3,
                    label=", ".join(
                        f"{names[o]}={v}"
                        for o, v in zip(
                            others, label if isinstance(label, tuple) else (label,), strict=False
                        )
                    )
                    or None,
                )
            ax.set_xlabel(p)
            ax.set_ylabel(f"{metric} (mean, 95% CI over seeds)")
            ax.set_title(f"{metric} vs {names[p]}")
            if others:
                ax.legend(fontsize=7)
            ax.grid(alpha=0.3)
            written.append(_save(plt, fig, out_dir / file_name("{}_vs_{}.png", metric, p)))
    pm, rm = f"{precision}.mean", f"{recall}.mean"
    if pm in board.columns and rm in board.columns and board[[pm, rm]].notna().any().all():
        fig, ax = plt.subplots(figsize=(6, 5))
        ax.errorbar(board[rm], board[pm],
                    xerr=[(board[rm] - board[f"{recall}.ci_low"]).clip(lower=0),
                          (board[f"{recall}.ci_high"] - board[rm]).clip(lower=0)],
                    yerr=[(board[pm] - board[f"{precision}.ci_low"]).clip(lower=0),
                          (board[f"{precision}.ci_high"] - board[pm]).clip(lower=0)],
                    fmt="o", capsize=2, alpha=0.8)
        for _, row in board.head(10).iterrows():  # label the top of the ranking only
            ax.annotate(f"#{row['rank']}", (row[rm], row[pm]), fontsize=7,
                        xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel(f"{recall} (mean over seeds)")
        ax.set_ylabel(f"{precision} (mean over seeds)")
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.set_title("precision–recall per setting (#rank, see leaderboard.csv)")
        ax.grid(alpha=0.3)
        written.append(_save(plt, fig, out_dir / "precision_recall.png"))
    return written


@house_style
def detectability_plots(
    curve: pd.DataFrame, mde: pd.DataFrame, min_recall: float, out_dir: Path
) -> list[Path]:
    """One figure per (event type, duration): recall vs magnitude, a line per entity, the
    ``min_recall`` line and each entity's MDE in the legend."""
    plt = _pyplot()
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    if curve.empty:
        return written
    for (etype, dur), g in curve.groupby(["event_type", "duration_days"], sort=True, dropna=False):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for entity, e in g.groupby("entity", sort=True):
            m = mde[
                (mde["event_type"] == etype)
                & (mde["entity"] == entity)
                & ((mde["duration_days"] == dur) | (mde["duration_days"].isna() & pd.isna(dur)))
            ]
            v = m["mde"].iloc[0] if len(m) else math.nan
            label = f"{entity} (MDE {'—' if math.isnan(v) else f'{v:g}'})"
            ax.errorbar(e["magnitude"], e["recall"],
                        yerr=[(e["recall"] - e["recall_ci_low"]).clip(lower=0),
                              (e["recall_ci_high"] - e["recall"]).clip(lower=0)],
                        marker="o", capsize=3, label=label)
        ax.axhline(min_recall, color="grey", linestyle="--", linewidth=1)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("magnitude")
        ax.set_ylabel("recall (mean over seeds, 95% CI)")
        dur_txt = "" if pd.isna(dur) else f", {int(dur)} day(s)"
        ax.set_title(f"detectability: {etype}{dur_txt}")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        name = file_name(f"detectability_{{}}{'' if pd.isna(dur) else f'_{int(dur)}d'}.png",
                         str(etype))
        written.append(_save(plt, fig, out_dir / name))
    return written
