"""The action engine against the simulator's truth, on worlds its thresholds were not chosen on.

    python generate_data.py --config config/scenarios/random_world.yaml --seed 540 --out /tmp/w540
    python run_analysis.py --data /tmp/w540 --out /tmp/r540
    python bench/bench_actions.py /tmp/r540 [/tmp/r541 …]

Reads each run's customers/segments.csv and customers/actions.csv and its data directory's
truth/customers.csv (the path is in run.json). Per action and world: its share of the customers,
the share truly alive at the data's end (no churn date, or one after it) and truly in the high
value tier, each as a lift over the world's base rate; then the rules' own promises checked on
every world: no urgent call to a customer inside their usual gap (overdue < 1) or with P(alive)
> 0.9, no win-back offer as far back as "Lost" (the shortest recency with R = 1). Prints the
median over worlds per action, the range of the lifts, and one line per broken promise; exit 1
when a promise is broken on any world. Figures: README "Customers" (Actions).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
from _common import parser, path_arg  # this script's folder is on sys.path

COLS = ["share", "alive", "alive_lift", "high", "high_lift", "recency_le_30"]


def world_table(run: Path) -> tuple[pd.DataFrame, list[str]]:
    """Per-action targeting figures of one run directory, and the promises it breaks."""
    from evaluation.truth import run_data_dir

    data = run_data_dir(run, ("customers/segments.csv", "customers/actions.csv"),
                        ("customers.csv",))
    seg = pd.read_csv(run / "customers" / "segments.csv", dtype={"customer_id": str})
    act = pd.read_csv(run / "customers" / "actions.csv", dtype={"customer_id": str})
    tru = pd.read_csv(data / "truth" / "customers.csv", dtype={"customer_id": str})
    df = seg.merge(act[["customer_id", "action"]], on="customer_id").merge(
        tru, on="customer_id", how="left")
    end = pd.to_datetime(df["last_order_date"]).max()
    churn = pd.to_datetime(df["churn_date"], errors="coerce")
    df["alive"] = churn.isna() | (churn > end)
    df["high"] = df["value_tier"].eq("high")
    df["recency_le_30"] = df["recency_days"] <= 30
    g = df.groupby("action")
    out = pd.DataFrame({"n": g.size(), "share": g.size() / len(df), "alive": g["alive"].mean(),
                        "high": g["high"].mean(), "recency_le_30": g["recency_le_30"].mean()})
    out["alive_lift"] = out["alive"] / df["alive"].mean()
    out["high_lift"] = out["high"] / df["high"].mean()
    broken = []
    urgent = df[df["action"] == "urgent VIP call"]
    if (urgent["overdue"] < 1).any() or urgent["overdue"].isna().any():
        broken.append(f"{run}: an urgent call inside the customer's usual gap")
    if (urgent["p_alive"] > 0.9).any() or urgent["p_alive"].isna().any():
        broken.append(f"{run}: an urgent call with P(alive) > 0.9")
    lost = df.loc[df["r_score"] == 1, "recency_days"].min()
    win = df.loc[df["action"] == "win-back offer", "recency_days"]
    if len(win) and pd.notna(lost) and win.max() >= lost:
        broken.append(f"{run}: a win-back offer at recency {win.max()} (Lost from {lost})")
    return out.assign(world=run.name).reset_index(), broken


def main(argv: list[str] | None = None) -> int:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=path_arg,
                    help="run directories (run_analysis.py --out)")
    a = ap.parse_args(argv)
    tables, broken = [], []
    for run in a.runs:
        t, b = world_table(run)
        tables.append(t)
        broken += b
    allt = pd.concat(tables, ignore_index=True)
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(f"median over {len(a.runs)} worlds per action:")
        print(allt.groupby("action")[["n", *COLS]].median().round(3).to_string())
        print("lift ranges over the worlds:")
        print(allt.groupby("action")[["alive_lift", "high_lift"]].agg(["min", "max"]).round(2)
              .to_string())
    for line in broken:
        print("BROKEN", line)
    print(f"promises kept on {len(a.runs) - len({b.split(':')[0] for b in broken})} of "
          f"{len(a.runs)} worlds")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "src")]
    from shocklab.cli import run_cli

    raise SystemExit(run_cli(main))
