"""The bench scripts answer bad input as the CLIs do: one line on stderr naming the flag, value
or path and what is wrong, exit 2, nothing printed on stdout and nothing written. An unexpected
error is exit 3, never 1 (1 is a failed quality gate). Each case is one the audit of 2026-12-05
(or trying the flags after it) found ending in a traceback, in exit 1, or running anyway."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
           "SHOCKLAB_LOG_DIR": ""}
    return subprocess.run([sys.executable, str(ROOT / "bench" / script), *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=300)


def _refused(out: subprocess.CompletedProcess, *says: str) -> str:
    """Exit 2, one line on stderr holding each of ``says``, nothing on stdout; the line."""
    assert out.returncode == 2, (out.returncode, out.stderr[-2000:])
    assert "Traceback" not in out.stderr and out.stdout == "", (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    for s in says:
        assert s in lines[0], (s, lines[0])
    return lines[0]


@pytest.mark.parametrize("files", ["0", "-4"])
def test_bench_nab_refuses_a_files_count_below_one(tmp_path, files):
    """--files 0 was "no CSV file in …/data/<category>/ to run" (the flag unnamed); --files -4
    sliced from the end and ran every file but the last four of each category. (An empty --nab
    folder: the old code's answer comes at once, and names --nab, not --files.)"""
    out = tmp_path / "out"
    line = _refused(_run("bench_nab.py", "--files", files, "--nab", str(tmp_path),
                         "--out", str(out), cwd=tmp_path),
                    "--files", f"must be at least 1, got {files}")
    assert line.startswith("error: bench_nab.py: argument --files")
    assert not out.exists()


def _small_world(tmp_path: Path, name: str = "w", scenario: str | None = None) -> Path:
    """config/scenarios/small.yaml generated (2025-01-01 … 2025-06-29); ``scenario``: the name
    its manifest.json then gives it."""
    world = tmp_path / name
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
           "SHOCKLAB_LOG_DIR": ""}
    subprocess.run([sys.executable, str(ROOT / "generate_data.py"), "--config",
                    str(ROOT / "config/scenarios/small.yaml"), "--out", str(world), "--quiet"],
                   env=env, check=True, capture_output=True, timeout=300)
    if scenario:
        m = world / "manifest.json"
        m.write_text(m.read_text().replace('"scenario": "small"', f'"scenario": "{scenario}"'))
    return world


def test_bench_forecast_cuts_by_the_worlds_scenario_not_its_folder_name(monkeypatch, tmp_path):
    """A folder whose name started with "d" (data/, demo) was cut at 2025-12-31, the default
    scenario's end, whatever it held; a default-scenario world named otherwise was not."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import bench_forecast as bf

    y = pd.Series(1.0, index=pd.date_range("2025-01-01", "2026-04-30"))
    for name, scenario, cut in (("data", "small", "2025-12-31"), ("demo", None, "2025-12-31"),
                                ("r301", "default", "2025-12-31")):
        world = tmp_path / name
        world.mkdir()
        if scenario:
            (world / "manifest.json").write_text(json.dumps({"scenario": scenario}))
        expected = (pd.Timestamp(cut) if scenario == "default"
                    else y.index.max() - pd.Timedelta(days=90))
        assert bf._cut(world, y) == expected, name


def test_bench_forecast_names_a_missing_data_directory(tmp_path):
    """Was load_data_dir's InputError as a traceback, exit 1."""
    nope = tmp_path / "nope"
    assert _refused(_run("bench_forecast.py", str(nope), cwd=tmp_path)) == (
        f"error: {nope}: no such data directory")


def test_bench_forecast_a_default_world_too_short_to_compare_is_exit_2(tmp_path):
    """A default-scenario world ending by 2026-01-07 has under 7 days after the cut: it was
    SystemExit(message), exit 1 (a failed gate's code)."""
    world = _small_world(tmp_path, scenario="default")
    assert _refused(_run("bench_forecast.py", str(world), cwd=tmp_path)) == (
        f"error: {world}: fewer than 7 days after 2025-12-31 to compare with")


SMALL = str(ROOT / "config/scenarios/small.yaml")
# (script, its flags, what the one line must say): each was a traceback (exit 1), exit 1, or ran
# with the value. "{tmp}" is the test's tmp_path, "{nope}" a path in it that does not exist.
REFUSED = [
    # statistics.median of no runs: StatisticsError traceback after the runs that do not count
    ("bench_generate.py", ["--repeat", "0", "--skip-core", "--scenario", SMALL],
     ["argument --repeat: must be at least 1, got 0"]),
    # the first generate_data.py child's CalledProcessError traceback
    ("bench_generate.py", ["--repeat", "1", "--skip-core", "--scenario", "{nope}"],
     ["error: --scenario {nope}: no such file"]),
    ("bench_profile.py", ["--repeat", "0", "--skip-startup", "--scenario", SMALL],
     ["argument --repeat: must be at least 1, got 0"]),
    ("bench_profile.py", ["--analysis-repeat", "0", "--skip-startup", "--skip-generate",
                          "--analysis", "--data", "{tmp}"],
     ["argument --analysis-repeat: must be at least 1, got 0"]),
    ("bench_profile.py", ["--repeat", "1", "--skip-startup", "--scenario", "{nope}"],
     ["error: --scenario {nope}: no such file"]),
    # run_analysis.py's failure as the profile's sys.exit(message): exit 1
    ("bench_profile.py", ["--skip-startup", "--skip-generate", "--analysis", "--data", "{nope}"],
     ["error: --data {nope}: no such data directory"]),
    # --cells 0 ran one cell (max(1, …)), --repeat 0 / --rounds 0 a min() / median() of nothing
    # (ValueError, StatisticsError tracebacks), --workers 0 run()'s InputError as a traceback
    # (no --executors given: only the worlds are generated, should the flag be taken)
    ("bench_sweep.py", ["--cells", "0", "--executors"],
     ["argument --cells: must be at least 1, got 0"]),
    ("bench_sweep.py", ["--workers", "0", "--cells", "1", "--executors", "serial"],
     ["argument --workers: must be at least 1, got 0"]),
    ("bench_sweep.py", ["--repeat", "0", "--cells", "1", "--executors", "serial"],
     ["argument --repeat: must be at least 1, got 0"]),
    ("bench_sweep.py", ["--rounds", "0", "--other", str(ROOT)],
     ["argument --rounds: must be at least 1, got 0"]),
    # run_experiment's exit 2 became this script's SystemExit(message): exit 1, per executor
    ("bench_benchmark.py", ["--seeds", "0", "--executors", "serial"],
     ["argument --seeds: must be at least 1, got 0"]),
    ("bench_benchmark.py", ["--workers", "-1", "--executors", "local"],
     ["argument --workers: must be at least 1, got -1"]),
    ("bench_benchmark.py", ["--executors", "serial,bogus", "--seeds", "1"],
     ["error: --executors serial,bogus: 'bogus' is not one of local, dask, serial"]),
    # no input: TypeError traceback; a missing one: load_data_dir's InputError as a traceback;
    # both: the data directory ignored; --repeat 0 run as 1 (max(1, …))
    ("bench_customers.py", [], ["error: data: give a data directory, or --transactions FILE"]),
    ("bench_customers.py", ["{nope}"], ["error: {nope}: no such data directory"]),
    ("bench_customers.py", ["{tmp}", "--transactions", "{nope}"],
     ["and --transactions {nope}: give one of them, not both"]),
    ("bench_customers.py", ["--transactions", "{nope}"],
     ["error: --transactions {nope}: no such file"]),
    ("bench_customers.py", ["--repeat", "0", "{nope}"],
     ["argument --repeat: must be at least 1, got 0"]),
    # load_data_dir's / the config's InputError as a traceback, exit 1
    ("bench_analysis.py", ["--data", "{nope}"], ["error: --data {nope}: no such data directory"]),
    ("bench_analysis.py", ["--data", "{tmp}", "--config", "{nope}"],
     ["error: --config {nope}: no such file"]),
    ("bench_analysis.py", ["--data", "{tmp}", "--set", "nope=1"],
     ["error: ", "nope: unknown key"]),
    # --lines 0 was taken (a store of 0 copies: a traceback after generating bench_1m; with both
    # parts skipped, exit 0); --transactions-lines -5 a numpy ValueError traceback; a --work that
    # is a file mkdir's FileExistsError traceback
    ("bench_scale.py", ["--lines", "0", "--skip-store", "--skip-transactions", "--work",
                        "{tmp}/w"], ["argument --lines: must be at least 1, got 0"]),
    ("bench_scale.py", ["--transactions-lines", "-5", "--skip-store", "--work", "{tmp}/w"],
     ["argument --transactions-lines: must be at least 1, got -5"]),
    ("bench_scale.py", ["--skip-store", "--skip-transactions", "--work", "{tmp}/a_file"],
     ["error: --work {tmp}/a_file: is not a directory"]),
    # --seeds x a ValueError traceback, 3-1 an IndexError one (the cache made first); a
    # --sensitivity of 0 or below a nan threshold, reported as figures; a --csv in no directory
    # an OSError after every seed had run; a --cache that is a file a FileExistsError traceback
    ("bench_visibility.py", ["--seeds", "x", "--cache", "{tmp}/w"],
     ["argument --seeds: 'x' is neither a seed nor a range of seeds"]),
    ("bench_visibility.py", ["--seeds", "3-1", "--cache", "{tmp}/w"],
     ["argument --seeds: the range 3-1 holds no seed"]),
    ("bench_visibility.py", ["--sensitivity", "-1", "--seeds", "3-1", "--cache", "{tmp}/w"],
     ["argument --sensitivity: must be a number above 0, got -1"]),
    ("bench_visibility.py", ["--seeds", "0", "--csv", "{nope}/e.csv", "--cache", "{tmp}/w"],
     ["error: --csv {nope}/e.csv: no directory {nope} to write it in"]),
    ("bench_visibility.py", ["--seeds", "0", "--cache", "{tmp}/a_file"],
     ["error: --cache {tmp}/a_file: is not a directory"]),
    # the research scripts: argparse's usage block (several lines), tracebacks (exit 1) of a
    # missing world or file, exit 3 (FileNotFoundError, ValueError) under run_cli, or an OSError
    # on the output file after every world had been analysed. ({tmp} is a directory but no
    # world: the old code's answer comes at once, naming the world, not the flag at fault.)
    ("diagnose_detect.py", ["--fp-kinds", "-3", "{nope}"],
     ["argument --fp-kinds: must be at least 1, got -3"]),
    ("diagnose_detect.py", [], ["error: diagnose_detect.py: give data directories"]),
    ("diagnose_detect.py", ["--paired", "{nope}"], ["error: --paired {nope}: no such file"]),
    ("diagnose_detect.py", ["{tmp}", "--json", "{nope}/c.json"],
     ["error: --json {nope}/c.json: no directory {nope} to write it in"]),
    ("diagnose_detect.py", ["{tmp}", "--expected", "shape:3"],
     ["error: diagnose_detect.py: --expected 'shape:3': give truth or shape:W with W >= 7 days"]),
    ("forest_bench.py", ["run", "{nope}", "--out", "{tmp}/w"],
     ["error: {nope}: no such data directory"]),
    ("forest_bench.py", ["summary", "{nope}"], ["error: {nope}: no such file"]),
    ("rz_rho.py", ["{nope}"], ["error: {nope}: no such data directory"]),
    ("rz_views.py", ["{nope}"], ["error: {nope}: no such data directory"]),
    ("world_factors.py", ["run", "{nope}", "--out", "{tmp}/w"],
     ["error: {nope}: no such data directory"]),
    ("world_factors.py", ["analyse", "{nope}"], ["error: {nope}/worlds.csv: no such file"]),
    # --out a file: mkdir's error after every world; forest_bench's --out in a missing folder:
    # a FileNotFoundError traceback
    ("world_factors.py", ["run", "{tmp}", "--out", "{tmp}/a_file"],
     ["error: --out {tmp}/a_file: is not a directory"]),
    ("forest_bench.py", ["run", "{tmp}", "--out", "{nope}/s.jsonl"],
     ["error: --out {nope}/s.jsonl: no directory {nope} to write it in"]),
    ("expected_error.py", ["--skip", "-5", "{nope}"],
     ["argument --skip: must be 0 or more, got -5"]),
    ("cl_windows.py", ["--summary", "{nope}"], ["error: --summary {nope}: no such file"]),
    ("cl_windows.py", ["{tmp}"], ["give world directories and --out CSV, or --summary CSV"]),
    ("cl_windows.py", ["{tmp}", "--out", "{nope}/e.csv"],
     ["error: --out {nope}/e.csv: no directory {nope} to write it in"]),
    # --rows 0 timed an empty series, -5 and --freq bogus were the child's failure as a
    # CalledProcessError traceback (exit 1), as was a --set the config refuses
    ("bench_detect.py", ["--rows", "0"], ["argument --rows: must be at least 1, got 0"]),
    ("bench_detect.py", ["--rows", "-5"], ["argument --rows: must be at least 1, got -5"]),
    ("bench_detect.py", ["--rows", "100", "--freq", "bogus"],
     ["error: --freq bogus: not a pandas frequency"]),
    ("bench_detect.py", ["--rows", "100", "--set", "nope=1"],
     ["error: rows 100: ", "nope: unknown key"]),
    # generate_data.py's exit 2 (a seed that is no number, a missing or invalid --config) was
    # a CalledProcessError traceback, exit 1
    ("bench_customer_truth.py", ["--out", "{tmp}/w", "x"],
     ["argument seeds: 'x' is not a whole number"]),
    ("bench_customer_truth.py", ["--out", "{tmp}/w", "--config", "{nope}", "1"],
     ["error: --config {nope}: no such file"]),
    ("bench_customer_truth.py", ["--out", "{tmp}/w", "--config", "{tmp}/a_file", "1"],
     ["error: generate_data.py --seed 1: "]),
    # argparse's usage block (two lines) where the CLIs say one
    ("bench_insights.py", [], ["error: bench_insights.py: the following arguments are required"]),
    ("bench_actions.py", [], ["error: bench_actions.py: the following arguments are required"]),
    ("bench_channels.py", ["{tmp}", "--bogus"],
     ["error: bench_channels.py: unrecognized arguments: --bogus"]),
    # an --out that is a file: mkdir's FileExistsError traceback, after the labels were checked
    ("bench_nab.py", ["--nab", "{tmp}", "--out", "{tmp}/a_file"],
     ["error: --out {tmp}/a_file: is not a directory"]),
    # an empty path ("$DIR" unset) was the current directory: a store cached there, runs
    # written there, "." analysed as a world (tracebacks or another flag's complaint)
    ("bench_scale.py", ["--work", "", "--skip-store", "--skip-transactions"],
     ["argument --work: is empty; give a path"]),
    ("bench_nab.py", ["--out", "", "--summary-only"], ["argument --out: is empty; give a path"]),
    ("bench_forecast.py", [""], ["argument worlds: is empty; give a path"]),
    ("bench_detect.py", ["--data", ""], ["argument --data: is empty; give a path"]),
    ("bench_customer_truth.py", ["--out", "", "--config", "{nope}", "1"],
     ["argument --out: is empty; give a path"]),
    # a flag that acts only with another was ignored without a word (exit 0, nothing measured
    # that was asked); an empty --categories ran every category
    ("bench_profile.py", ["--skip-startup", "--skip-generate", "--reference", str(ROOT)],
     ["error: --reference: has no effect without --analysis"]),
    ("bench_profile.py", ["--skip-startup", "--skip-generate", "--sequential"],
     ["error: --sequential: has no effect without --analysis"]),
    ("bench_scale.py", ["--skip-store", "--skip-transactions", "--pandas", "--work", "{tmp}/w"],
     ["error: --pandas: has no effect without the store (--skip-store given)"]),
    ("bench_scale.py", ["--skip-store", "--skip-transactions", "--day-first", "--work",
                        "{tmp}/w"],
     ["error: --day-first: has no effect without the transactions file"]),
    ("bench_sweep.py", ["--rounds", "2", "--cells", "1", "--executors"],
     ["error: --rounds: has no effect without --other"]),
    ("bench_nab.py", ["--grid", "5", "--nab", "{tmp}", "--out", "{tmp}/w"],
     ["error: --grid: has no effect without --cv"]),
    ("bench_nab.py", ["--categories", "", "--nab", "{tmp}", "--out", "{tmp}/w"],
     ["error: --categories '': names no category"]),
    ("selection_frontier.py", [], ["error: selection_frontier.py: give world directories"]),
    ("selection_frontier.py", ["{tmp}", "--dump", "{nope}/d.json"],
     ["error: --dump {nope}/d.json: no directory {nope} to write it in"]),
]


@pytest.mark.parametrize(("script", "flags", "says"), REFUSED,
                         ids=[f"{s}:{' '.join(f[:2])}" for s, f, _ in REFUSED])
def test_bad_flags_are_one_line_and_exit_2(tmp_path, script, flags, says):
    work = tmp_path / "cwd"
    work.mkdir()
    nope = str(tmp_path / "nope")
    (tmp_path / "a_file").write_text("x")
    fill = [a.replace("{tmp}", str(tmp_path)).replace("{nope}", nope) for a in flags]
    line = _refused(_run(script, *fill, cwd=work),
                    *(s.replace("{nope}", nope).replace("{tmp}", str(tmp_path)) for s in says))
    if says[0].startswith("argument "):   # an argparse type refused the value
        assert line.startswith(f"error: {script}: argument ") and line.endswith("(see --help)")
    assert not any(work.iterdir()) and not (tmp_path / "w").exists()   # nothing written


def test_bench_generate_reads_a_relative_scenario_from_the_callers_directory(tmp_path):
    """It was read from the checkout (ROOT / path): the generation child's traceback, exit 1."""
    (tmp_path / "mine.yaml").write_text(Path(SMALL).read_text())
    out = _run("bench_generate.py", "--repeat", "1", "--skip-core", "--scenario", "mine.yaml",
               cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "mine: end to end (parquet" in out.stdout


def test_bench_benchmark_passes_on_a_refused_set_as_exit_2(tmp_path):
    """run_experiment.py's exit 2 (a --set its config refuses) was re-raised as exit 1."""
    out = _run("bench_benchmark.py", "--executors", "serial", "--seeds", "1", "--set",
               "nope.key=1", cwd=tmp_path)
    assert out.returncode == 2, out.stderr[-2000:]
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: run_experiment.py (serial): ")
    assert "nope: unknown key" in lines[0] and not any(tmp_path.iterdir())


@pytest.mark.parametrize(("flags", "says"), [
    # said on stdout, stderr empty
    (["--reports", "{tmp}/nope"], "error: --reports {tmp}/nope: no such directory"),
    (["--reports", "{tmp}/empty"], "error: --reports {tmp}/empty: no run directories (run "
     "generate_data.py and run_analysis.py first)"),
    # the server was started, then an HTTPError 404 traceback (exit 1)
    (["--reports", "{tmp}/reports", "--run", "nope"],
     "error: --run nope: no such run under {tmp}/reports (newest: r1)"),
    # the server was started, then no median of no requests
    (["--reports", "{tmp}/reports", "--requests", "0"],
     "error: bench_api.py: argument --requests: must be at least 1, got 0 (see --help)"),
])
def test_bench_api_names_a_bad_reports_run_or_requests(tmp_path, flags, says):
    (tmp_path / "empty").mkdir()
    (tmp_path / "reports" / "r1").mkdir(parents=True)
    (tmp_path / "reports" / "r1" / "run.json").write_text("{}")
    fill = [a.replace("{tmp}", str(tmp_path)) for a in flags]
    assert _refused(_run("bench_api.py", *fill, cwd=tmp_path)) == says.replace(
        "{tmp}", str(tmp_path))


def test_bench_scale_passes_on_a_file_too_small_to_analyse_as_exit_2(tmp_path):
    """run_analysis.py's exit 2 (no data rows in a 1-line file) was this script's
    sys.exit(message): exit 1, the child's stderr in several lines."""
    out = _run("bench_scale.py", "--skip-store", "--transactions-lines", "1", "--work",
               str(tmp_path), cwd=tmp_path)
    assert out.returncode == 2, out.stderr[-2000:]
    assert out.stderr.strip() == (f"error: run_analysis.py: {tmp_path}/online_retail_ii_1.csv: "
                                  "no data rows")


def test_bench_customer_truth_reads_a_relative_config_from_the_callers_directory(tmp_path):
    """generate_data.py runs from the checkout: a relative --config was read there (the child's
    exit 2 as a CalledProcessError traceback)."""
    (tmp_path / "mine.yaml").write_text(Path(SMALL).read_text())
    out = _run("bench_customer_truth.py", "--config", "mine.yaml", "--no-monitor", "--out",
               "worlds", "3", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout)["seed"] == 3
    assert (tmp_path / "worlds" / "s3" / "manifest.json").is_file()


def test_common_run_ends_as_the_clis_do(monkeypatch, capsys):
    """The scripts' ends: bad input 2 in one line, a failed gate 1, anything else 3 — a traceback
    (Python's exit 1) read as a failed quality gate."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import _common

    from shocklab.errors import GateFailure, InputError

    def raising(exc: BaseException):
        def main() -> int:
            raise exc
        return main

    assert _common.run(raising(InputError("--x 1: bad"))) == 2
    assert capsys.readouterr().err == "error: --x 1: bad\n"
    assert _common.run(raising(GateFailure("recall 0.1 < 0.5"))) == 1
    assert capsys.readouterr().err == "FAILED: recall 0.1 < 0.5\n"
    assert _common.run(raising(ZeroDivisionError("boom"))) == 3
    err = capsys.readouterr().err
    assert "Traceback" in err and err.splitlines()[-1].startswith("internal error in ")
    assert _common.run(raising(SystemExit("a child failed"))) == 3
    assert capsys.readouterr().err == "a child failed\n"
    assert _common.run(raising(SystemExit(2))) == 2 and _common.run(lambda: None) == 0
    full = OSError(errno.ENOSPC, "No space left on device", "/tmp/x")
    assert _common.run(raising(full)) == 2
    assert capsys.readouterr().err == "error: /tmp/x: no space left on device\n"
    assert _common.run(raising(FileNotFoundError(errno.ENOENT, "gone", "/tmp/y"))) == 3


@pytest.mark.parametrize(("script", "flags", "says"), [
    ("bench_generate.py", ["--skip-core", "--repeat", "1", "--scenario", "{tmp}/bad.yaml"],
     "error: generate_data.py ({root}): {tmp}/bad.yaml: invalid YAML"),
    ("bench_profile.py", ["--skip-startup", "--repeat", "1", "--scenario", "{tmp}/bad.yaml"],
     "error: generate_data.py ({root}): {tmp}/bad.yaml: invalid YAML"),
    ("bench_profile.py", ["--skip-startup", "--skip-generate", "--analysis", "--data", "{tmp}"],
     "error: run_analysis.py ({root}): {tmp}: missing file orders.csv"),
])
def test_a_childs_refusal_is_passed_on_as_exit_2(tmp_path, script, flags, says):
    """The CLI a benchmark times refused its input (exit 2, one line): that was a
    CalledProcessError traceback or sys.exit(message), both exit 1, the child's stderr in
    several lines. Now its line, named by the child, and exit 2."""
    (tmp_path / "bad.yaml").write_text("scenario: [\n")
    fill = [a.replace("{tmp}", str(tmp_path)) for a in flags]
    out = _run(script, *fill, cwd=tmp_path)
    assert out.returncode == 2, (out.returncode, out.stderr[-2000:])
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, lines
    assert lines[0].startswith(says.replace("{tmp}", str(tmp_path)).replace("{root}", str(ROOT)))
