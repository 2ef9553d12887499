"""The README's benchmark commands run, at a small size, and print the figures the README quotes.

Benchmarks print and never assert (no timing assertion here either): these tests check that each
command still runs end to end on real inputs and prints its figure lines with numbers in them, so
a benchmark cannot rot unseen. Running ``bench/bench_scale.py`` at a small size is how a crash of
``run_analysis.py --transactions`` on a file whose countries first trade after the first day was
found (tests/analytics/test_drivers_arrays.py). The inputs are the API tests' real run and data
directories (tests/servefix.py). Benchmarks with their own tests are not repeated here
(bench_nab, bench_channels, bench_forecast, bench_actions: tests/evaluation/test_*bench*.py).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from tests.servefix import build

ROOT = Path(__file__).resolve().parents[2]
NUM = r"[0-9][0-9,]*(?:\.[0-9]+)?"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    return build(tmp_path_factory)


def _bench(script: str, *args: str, cwd: Path | None = None) -> str:
    """Run ``bench/<script>`` as the README does; exit 0, no internal error; its stdout."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    out = subprocess.run([sys.executable, str(ROOT / "bench" / script), *args], cwd=cwd or ROOT,
                         env=env, capture_output=True, text=True, timeout=900)
    text = out.stdout + out.stderr
    assert out.returncode == 0, f"{script} exited {out.returncode}:\n{text[-3000:]}"
    assert "internal error" not in text and "Traceback" not in text, text[-3000:]
    return out.stdout


def _figure(pattern: str, text: str) -> float:
    m = re.search(pattern, text)
    assert m, f"no line matching {pattern!r} in:\n{text[-2000:]}"
    return float(m.group(1).replace(",", ""))


def test_bench_detect_prints_each_voters_throughput(roots):
    out = _bench("bench_detect.py", "--data", str(roots.data / "small"))
    assert _figure(rf"detection ({NUM}) s, peak RSS", out) > 0
    for name in ("rolling_zscore", "count_likelihood", "isolation_forest"):
        assert _figure(rf"{name}\s+{NUM} s\s+{NUM} rows\s+({NUM}) rows/s", out) > 0


def test_bench_detect_names_a_missing_data_directory_in_one_line(tmp_path):
    """`python bench/bench_detect.py` before any data was generated printed a child's traceback."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_detect.py"), "--data",
                          str(tmp_path / "nope")], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip().splitlines() == [
        f"--data {tmp_path / 'nope'}: no such directory "
        f"(python generate_data.py --out {tmp_path / 'nope'})"]


def test_bench_analysis_prints_the_stage_table(roots):
    out = _bench("bench_analysis.py", "--data", str(roots.data / "small"),
                 "--set", "insights.plots=false", "--set", "customers.plots=false")
    assert _figure(rf"TOTAL \(wall\)\s+({NUM}) s", out) > 0
    assert _figure(rf"peak memory: ({NUM}) MB", out) > 0


def test_bench_customers_prints_the_stage_summary(roots):
    out = _bench("bench_customers.py", "--repeat", "1", str(roots.data / "small"))
    summary = json.loads(out[out.index("{"):out.rindex("}") + 1])
    assert summary["clv_status"] in ("ok", "fallback", "off") and "alerts" in summary


def test_bench_insights_scores_a_run_against_its_truth(roots):
    out = _bench("bench_insights.py", str(roots.reports / "sim"))
    n = _figure(rf"ALL\s+events\s+({NUM})", out)
    assert n > 0 and 0 <= _figure(rf"type accuracy ({NUM})", out) <= 1
    assert _figure(rf"grounding mismatches: ({NUM})", out) == 0


def test_bench_insights_lists_the_misreads_of_the_scorecard(roots):
    rows = json.loads((roots.reports / "sim" / "scorecard.json").read_text())["insights"][
        "per_event"]
    out = _bench("bench_insights.py", str(roots.reports / "sim"), "--misreads")
    types, causes = out[out.index("misread types"):out.index("grounding mismatches: ")].split(
        "root-cause misses")
    wrong = [r for r in rows if r["type_ok"] is False]
    for r in wrong:   # each misread type on its line, with what it was read as
        line = next(x for x in types.splitlines() if x.strip().startswith(r["type"] + " "))
        assert r["diagnosis"] in line, (r, line)
    assert len(types.strip().splitlines()) == 1 + len({r["type"] for r in wrong})
    misses = [r for r in rows if r["root_cause_ok"] is False]
    assert len(causes.strip().splitlines()) == 1 + len(misses)   # the header, one line each


def test_bench_insights_refuses_a_path_that_is_not_a_run(roots, tmp_path):
    # `bench_insights.py /tmp/r/s*` also caught each run's .log file: a NotADirectoryError traceback
    log = tmp_path / "s1.log"
    log.write_text("run log\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_insights.py"),
                          str(roots.reports / "sim"), str(log)], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip() == (f"error: {log}: not a run directory (no insights.json and "
                                  "insights.md); 1 of 2 arguments are not")
    assert out.stdout == ""  # nothing printed for the good run before the refusal


def test_bench_api_times_a_real_server(roots):
    out = _bench("bench_api.py", "--reports", str(roots.reports), "--run", "sim",
                 "--requests", "3")
    assert _figure(rf"warm median ({NUM}) ms", out) > 0


def test_bench_api_reads_a_relative_reports_dir_from_the_callers_directory(roots):
    """README: `python bench/bench_api.py --reports reports/` from wherever the runs are; the
    server it starts runs in the checkout, so a relative --reports used to be read there."""
    out = _bench("bench_api.py", "--reports", roots.reports.name, "--run", "sim",
                 "--requests", "2", cwd=roots.reports.parent)
    assert _figure(rf"GET /runs/\{{id\}}/insights: first after start-up ({NUM}) ms", out) > 0


def test_bench_generate_and_profile_time_the_small_scenario(tmp_path):
    small = str(ROOT / "config/scenarios/small.yaml")
    out = _bench("bench_generate.py", "--repeat", "1", "--scenario", small, "--skip-core",
                 cwd=tmp_path)
    assert _figure(rf"end to end .*?\) ({NUM}) s, peak RSS", out) > 0
    out = _bench("bench_profile.py", "--scenario", small, "--repeat", "1", "--skip-startup",
                 cwd=tmp_path)
    assert _figure(rf"generate_data.py --format parquet\s+this\s+({NUM}) s", out) > 0


@pytest.mark.parametrize("day_first", [False, True])
def test_bench_scale_runs_the_transactions_path(tmp_path, day_first):
    work = tmp_path / "scale"
    # a relative --work is read from the caller's directory (it was read from the checkout, where
    # the timed children run, and the analysis died on a file it could not find)
    out = _bench("bench_scale.py", "--skip-store", "--transactions-lines", "20000",
                 "--work", "scale", *(["--day-first"] if day_first else []), cwd=tmp_path)
    name = f"online_retail_ii_{'dmy_' if day_first else ''}20000.csv"
    assert _figure(rf"transactions: {name} .*whole analysis\s+({NUM}) s wall", out) > 0
    first = (work / name).read_text().splitlines()[1].split(",")[4]
    assert re.fullmatch(r"\d\d/\d\d/20\d\d \d\d:\d\d" if day_first
                        else r"20\d\d-\d\d-\d\d \d\d:\d\d:\d\d", first), first
    dates = json.loads((work / "tx_run" / "run.json").read_text())["input_checks"]["cleaning"][
        "dates"]
    assert dates["layout"] == ("day-first" if day_first else "iso") and not dates["unparsed_rows"]
    if day_first:   # the same file, the loader alone
        out = _bench("bench_scale.py", "--skip-store", "--transactions-lines", "20000",
                     "--work", str(work), "--day-first", "--load-only")
        assert _figure(rf"transactions: {name} .*load_transactions\s+({NUM}) s wall", out) > 0
        assert "whole analysis" not in out


def test_bench_customer_truth_writes_a_relative_out_in_the_callers_directory(tmp_path):
    """generate_data.py runs from the checkout: a relative --out used to land there, and the
    bench then looked for the world in the caller's directory and died."""
    out = _bench("bench_customer_truth.py", "--config", str(ROOT / "config/scenarios/small.yaml"),
                 "--no-monitor", "--out", "worlds", "7", cwd=tmp_path)
    assert (tmp_path / "worlds" / "s7" / "manifest.json").is_file()
    assert not (ROOT / "worlds").exists()
    assert 0 < _figure(rf'"p_alive_auc": ({NUM})', out) <= 1


def test_bench_sweep_and_benchmark_run_their_cells(tmp_path):
    out = _bench("bench_sweep.py", "--cells", "2", "--workers", "1", "--repeat", "1",
                 "--executors", "serial", cwd=tmp_path)
    assert re.search(r"serial 1 worker : 2/2 ok", out), out
    out = _bench("bench_benchmark.py", "--seeds", "1", "--workers", "1", "--executors",
                 "serial", cwd=tmp_path)
    assert _figure(rf"serial x1:\s+({NUM}) s wall", out) > 0


def test_bench_visibility_reports_each_seeds_events(tmp_path):
    out = _bench("bench_visibility.py", "--seeds", "1", "--cache", str(tmp_path / "worlds"))
    assert _figure(rf"1: ({NUM}) ev", out) > 0


def test_expected_error_by_event_places_the_error_by_region(roots):
    """`bench/expected_error.py --by-event` on a real world with truth: a line per world with the
    rest days' error variance per unit of noise variance, and the pooled table per KPI."""
    out = _bench("expected_error.py", "--by-event", "--skip", "30", str(roots.data / "small"))
    assert _figure(rf"small: error variance / noise variance by region:.* rest ({NUM})", out) > 0
    assert "-- pooled over worlds" in out
    assert re.search(rf"^\s+all\s+.*rest {NUM} \([+-]{NUM}, {NUM}; [0-9]+\)", out, re.M), out


def test_diagnose_detect_with_a_known_expected_value_changes_count_likelihood_only(roots):
    """`bench/diagnose_detect.py --expected truth` on a real world: count_likelihood's expected
    value is the truth's (its false alerts move: 0.044 -> 0.102 per series per 90 days on the
    small world, its knob 0.1), the other voters are untouched."""
    def rates(*extra: str) -> dict[str, float]:
        out = _bench("diagnose_detect.py", "--set", "scoring.warmup_days=30", *extra,
                     str(roots.data / "small"))
        line = next(x for x in out.splitlines() if "false alerts / series / 90 d:" in x)
        return {k: float(v) for k, v in re.findall(rf"(\w+) ({NUM})", line.split(":", 1)[1])}

    own, known = rates(), rates("--expected", "truth")
    assert known["count_likelihood"] != own["count_likelihood"]
    for other in ("rolling_zscore", "isolation_forest", "oracle"):
        assert known[other] == own[other]
