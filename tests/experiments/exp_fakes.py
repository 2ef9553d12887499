"""Cheap, deterministic stand-ins for the simulator and the pipeline, importable by worker
processes (``tests.experiments.exp_fakes``). Calls are counted in files, so counts survive
process pools and Dask workers."""

from __future__ import annotations

import json
import math
import os
import tempfile
from functools import partial
from pathlib import Path

from experiments.cell import run_cell
from shocklab.hashing import sha256_json
from shocklab.seeding import rng

SCENARIO = {
    "scenario": "fake", "seed": 0, "noise": 0.1,
    "events": [{"type": "channel_outage", "start": "2025-01-10", "duration_days": 2,
                "params": {"drop_pct": 0.3}}],
}
ANALYSIS = {"threshold": 3.0, "fail_seed": None, "full_disk_seed": None, "empty_seed": None}


def _log(path: Path, line: str) -> None:
    with open(path, "a", encoding="utf-8") as f:  # O_APPEND: whole short lines, any process
        f.write(line + "\n")


def count_lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def fake_hash(raw: dict) -> str:
    return sha256_json(raw)[:16]


def fake_generate(raw: dict, out_dir, fmt: str = "parquet", source: str = "") -> dict:
    out_dir = Path(out_dir)
    _log(out_dir.parent / "generate_calls.log", fake_hash(raw))
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=".gen-"))
    (tmp / "world.json").write_text(json.dumps(raw, sort_keys=True))
    os.replace(tmp, out_dir)
    return {"seed": raw["seed"]}


def fake_analyse(data_dir, analysis: dict | None) -> dict:
    """Recall rises with the event magnitude and duration and falls with the threshold; seeded
    noise per world, so seeds differ and reruns agree."""
    world = json.loads((Path(data_dir) / "world.json").read_text())
    analysis = analysis or ANALYSIS
    seed = world["seed"]
    if analysis.get("fail_seed") == seed:
        raise ValueError(f"detector exploded on seed {seed}")
    if analysis.get("full_disk_seed") == seed:   # the environment, not a bug
        import errno

        raise OSError(errno.ENOSPC, "No space left on device", str(data_dir))
    if analysis.get("empty_seed") == seed:   # the world is valid, its data unanalysable
        from shocklab.errors import InputError

        raise InputError(f"{data_dir}/orders.parquet: table is empty")
    if analysis.get("log"):
        _log(Path(analysis["log"]), str(seed))
    ev = world["events"][0]
    strength = ev["params"]["drop_pct"] * math.sqrt(ev["duration_days"])
    g = rng(seed, "fake.analyse")
    detectors = {}
    for name, skill in (("fast", 8.0), ("slow", 5.0)):
        noise = world["noise"] * float(g.standard_normal())
        recall = 1.0 / (1.0 + math.exp(-(skill * strength - analysis["threshold"] + noise) * 3))
        detectors[name] = {
            "recall": round(recall, 6),
            "precision": round(1 - recall / 3, 6),
            "f1": round(recall * 0.8, 6),
            "median_delay_days": None if recall < 0.2 else 1.0,
        }
    rec = max(d["recall"] for d in detectors.values())
    detectors["oracle"] = {"recall": min(1.0, rec + 0.1)}
    consensus = {"recall": rec, "precision": 0.9 - analysis["threshold"] / 30,
                 "f1": round(rec * 0.85, 6), "median_delay_days": 1.5}
    # the layout of evaluation.scoring: headline mode section, settings echo, per-event detail
    return {"schema": "shocklab.scorecard/1", "settings": {"mode": "strict", "early_days": 1},
            "headline": {"mode": "strict", "recall": rec}, "failed_detectors": {},
            "strict": {"detectors": detectors, "consensus": consensus},
            "lenient": {"consensus": {**consensus, "recall": min(1.0, rec * 1.1)}},
            "event_detail": [{"event_id": "E01", "detected_by": {"fast": 1}}]}


def interrupting_analyse(data_dir, analysis: dict | None, stop_seed: int = 2) -> dict:
    world = json.loads((Path(data_dir) / "world.json").read_text())
    if world["seed"] == stop_seed:
        raise KeyboardInterrupt
    return fake_analyse(data_dir, analysis)


fake_cell = partial(run_cell, generate=fake_generate, analyse=fake_analyse, scenario_hash=fake_hash)
interrupting_cell = partial(run_cell, generate=fake_generate, analyse=interrupting_analyse,
                            scenario_hash=fake_hash)


def sleepy_analyse(data_dir, analysis: dict | None) -> dict:
    """fake_analyse that takes ``analysis["sleep"]`` seconds (for interrupting a pool by hand)."""
    import time

    time.sleep((analysis or {}).get("sleep", 0.0))
    return fake_analyse(data_dir, analysis)


def slow_in_except_cell(marks: Path, i: int) -> int:
    """A cell that spends its first second in an except block (where a SIGTERM only sets the
    worker's stop flag), then, for i > 0, marks that it went on and runs 3 s more."""
    import time

    try:
        raise ValueError("handled")
    except ValueError:
        time.sleep(1.0)
    if i:
        (marks / f"started-{i}").touch()
        time.sleep(3)
    return i
