"""The stage scheduler (``analytics.schedule``): the customers branch in a forked worker gives the
same run directory, byte for byte, as running every stage in order; the worker's errors surface in
the parent as the same exception; the branch really runs in another process."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import run_analysis
from tests.configs import make_config
from tests.procs import alive, all_ended

from analytics import schedule
from analytics.context import DataSet, RunContext
from analytics.pipeline import _run_one
from shocklab.cli import run_cli
from shocklab.errors import InputError

FAST = ["--detectors", "rolling_zscore,isolation_forest,oracle"]

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def _analyse(data: Path, out: Path, parallel: str, monkeypatch) -> int:
    monkeypatch.setenv("SHOCKLAB_PARALLEL", parallel)
    return run_cli(run_analysis.main, ["--data", str(data), "--out", str(out), *FAST])


def _run_json(path: Path) -> dict:
    doc = json.loads(path.read_text())
    doc.pop("timings_seconds")
    for st in doc["detector_status"].values():
        st.pop("seconds", None)
    doc.pop("argv")
    return doc


@pytest.fixture(scope="module")
def sequential(synth_dir, tmp_path_factory) -> Path:
    """The synthetic run analysed in order in one process (SHOCKLAB_PARALLEL=0), once for both
    cases below: an in-order run starts no worker, so ``worker_done`` cannot change it."""
    seq = tmp_path_factory.mktemp("sequential") / "seq"
    with pytest.MonkeyPatch.context() as mp:
        assert _analyse(synth_dir, seq, "0", mp) == 0
    return seq


@pytest.mark.parametrize(("worker_done", "ahead"), [(False, None), (True, "worker"),
                                                    (False, "here")])
def test_parallel_run_directory_is_byte_identical_to_sequential(synth_dir, sequential, tmp_path,
                                                                monkeypatch, worker_done, ahead):
    # the early KPI plots: all drawn while the worker runs, or (worker done) all beside insights
    monkeypatch.setattr(schedule._Worker, "finished", lambda self: worker_done)
    # the ahead work (the isolation forest, the insights' forecast): in the worker (this process
    # never takes it back), in this process before the join (the worker takes none), or as the
    # race goes
    if ahead == "worker":
        monkeypatch.setattr(schedule, "_take_back", lambda *a: None)
    elif ahead == "here":
        monkeypatch.setattr(schedule._Worker, "_run_ahead", lambda self, ctx, run_one: None)
    seq, par = sequential, tmp_path / "par"
    assert _analyse(synth_dir, par, "1", monkeypatch) == 0
    files = sorted(p.relative_to(seq) for p in seq.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(par) for p in par.rglob("*") if p.is_file())
    assert any(f.parts[0] == "customers" for f in files)  # the branch wrote its files
    assert Path("plots/kpi_revenue.png") in files  # an early plot
    for f in files:
        if f.name != "run.json":
            assert (seq / f).read_bytes() == (par / f).read_bytes(), f
    a, b = _run_json(seq / "run.json"), _run_json(par / "run.json")
    assert a == b
    timings = json.loads((par / "run.json").read_text())["timings_seconds"]
    assert "parallel.wait" in timings and "customers.rfm" in timings  # merged from the worker
    # the tables were written, and insight scoring's event windows computed, as jobs shared by
    # two processes beside and after insights (each job once)
    assert {"outputs.detections", "outputs.customers.segments", "insight_windows",
            "parallel.wait_side", "report.mid"} <= set(timings)
    assert ("report.beside.kpi_revenue" in timings) is worker_done
    # the forecast fitted ahead and the isolation forest run beside the chain, in either process
    assert {"insights.ahead", "detect.isolation_forest"} <= set(timings)
    assert "parallel.wait" not in json.loads((seq / "run.json").read_text())["timings_seconds"]


def _ctx(tmp_path: Path) -> RunContext:
    ds = DataSet(path=None, tables={})
    return RunContext(config=make_config(), data=ds, out_dir=tmp_path, has_truth=True)


def _stages(log: list[str]):
    def kpis(ctx):
        ctx.kpi_tables["k"] = os.getpid()

    def score(ctx):
        ctx.scorecard = {"headline": 1}

    def customers(ctx):
        ctx.customers = {"pid": os.getpid(), "saw_scorecard": ctx.scorecard is not None}
        ctx.customer_models["clv"] = [1, 2, 3]
        (Path(ctx.out_dir) / "customers.txt").write_text("c")

    def customer_scoring(ctx):
        if ctx.scorecard is not None:
            ctx.scorecard["customers"] = {"n": 3}

    def insights(ctx):
        ctx.insights = {"customers": ctx.customers["pid"], "card": sorted(ctx.scorecard)}

    return [("kpis", kpis), ("score", score), ("customers", customers),
            ("customer_scoring", customer_scoring), ("insights", insights)]


@pytest.mark.parametrize("parallel", ["0", "1"])
def test_branch_results_are_merged_by_field(tmp_path, monkeypatch, parallel):
    monkeypatch.setenv("SHOCKLAB_PARALLEL", parallel)
    ctx = schedule.run_stages(_ctx(tmp_path), _stages([]), _run_one)
    in_child = parallel == "1"
    assert (ctx.customers["pid"] != os.getpid()) is in_child
    assert ctx.kpi_tables["k"] == os.getpid()  # the chain stays in this process
    assert ctx.customer_models == {"clv": [1, 2, 3]}
    assert ctx.scorecard == {"headline": 1, "customers": {"n": 3}}
    assert ctx.insights["card"] == ["customers", "headline"]
    assert (tmp_path / "customers.txt").read_text() == "c"
    assert {"kpis", "score", "customers", "customer_scoring", "insights"} <= set(ctx.timings)
    assert ("parallel.wait" in ctx.timings) is in_child


@pytest.mark.parametrize("exc", [InputError("orders.csv: bad"), KeyError("no such column")])
def test_worker_errors_surface_in_the_parent(tmp_path, monkeypatch, exc):
    monkeypatch.setenv("SHOCKLAB_PARALLEL", "1")
    ran: list[str] = []

    def customers(ctx):
        raise exc

    stages = [("kpis", lambda c: ran.append("kpis")), ("customers", customers),
              ("insights", lambda c: ran.append("insights"))]
    with pytest.raises(type(exc)) as info:
        schedule.run_stages(_ctx(tmp_path), stages, _run_one)
    assert str(info.value) == str(exc)
    assert ran == ["kpis"]  # the chain ran; nothing after the join
    assert any("customers worker" in n for n in getattr(info.value, "__notes__", []))


def test_a_failing_chain_stops_the_worker(tmp_path, monkeypatch):
    import time

    monkeypatch.setenv("SHOCKLAB_PARALLEL", "1")
    pid_file = tmp_path / "worker.pid"

    def customers(ctx):
        pid_file.write_text(str(os.getpid()))
        time.sleep(60)

    def kpis(ctx):
        for _ in range(200):  # until the worker runs
            if pid_file.exists() and pid_file.read_text():
                break
            time.sleep(0.05)
        raise InputError("kpis: boom")

    with pytest.raises(InputError, match="boom"):
        schedule.run_stages(_ctx(tmp_path), [("kpis", kpis), ("customers", customers)], _run_one)
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):  # killed and reaped, not left sleeping
        os.kill(pid, 0)


def test_switch(monkeypatch):
    monkeypatch.setenv("SHOCKLAB_PARALLEL", "0")
    assert not schedule.parallel_enabled()
    monkeypatch.setenv("SHOCKLAB_PARALLEL", "1")
    assert schedule.parallel_enabled()


def test_a_stale_log_handler_with_a_closed_stream_does_not_stop_the_fork(tmp_path, monkeypatch):
    import io
    import logging

    monkeypatch.setenv("SHOCKLAB_PARALLEL", "1")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    stream.close()  # as a test's captured stream left behind
    logging.getLogger("shocklab").addHandler(handler)
    try:
        ctx = schedule.run_stages(_ctx(tmp_path), _stages([]), _run_one)
    finally:
        logging.getLogger("shocklab").removeHandler(handler)
    assert ctx.customers["pid"] != os.getpid()


def _wait_for(path: Path) -> None:
    import time

    for _ in range(2400):  # until the other process has taken the job (up to 120 s: 20 s ran
        if path.exists():  # out on a loaded 2-core machine, and the test read a race it lost)
            return
        time.sleep(0.05)


def _side_stages(tmp_path: Path, windows, wait: bool):
    stages = _stages([])
    insights = stages[-1][1]

    def slow_insights(ctx):
        if wait:  # let the side worker take the beside job first
            _wait_for(tmp_path / "taken")
        insights(ctx)

    stages[-1] = ("insights", slow_insights)
    stages[-1:-1] = [("windows", windows)]
    return stages


@pytest.mark.parametrize(("parallel", "side"), [("0", "1"), ("1", "1"), ("1", "0")])
def test_beside_stages_run_next_to_the_first_stage_after_the_join(tmp_path, monkeypatch,
                                                                  parallel, side):
    monkeypatch.setenv("SHOCKLAB_PARALLEL", parallel)
    monkeypatch.setenv("SHOCKLAB_PARALLEL_SIDE", side)  # 0: beside stages in order, here
    ran: list[int] = []

    @schedule.beside
    def windows(ctx):
        (tmp_path / "taken").write_text(str(os.getpid()))
        ran.append(os.getpid())
        ctx.ahead["w"] = os.getpid()

    def scoring(ctx):
        ctx.scorecard["w"] = ctx.ahead["w"]   # merged before the stage after insights

    stages = _side_stages(tmp_path, windows, wait=parallel == side == "1")
    ctx = schedule.run_stages(_ctx(tmp_path), [*stages, ("scoring", scoring)], _run_one)
    assert (ctx.scorecard["w"] != os.getpid()) is (parallel == side == "1")
    assert ctx.insights["customers"] == ctx.customers["pid"]
    assert ran == ([] if parallel == side == "1" else [os.getpid()])  # once, in one process


def test_jobs_left_by_the_side_worker_run_here_once(tmp_path, monkeypatch):
    """After insights this process takes the beside jobs the side worker has not taken yet."""
    monkeypatch.setenv("SHOCKLAB_PARALLEL", "1")
    runs = tmp_path / "runs"
    runs.mkdir()

    def job(name):
        @schedule.beside
        def fn(ctx):
            (runs / f"{name}-{os.getpid()}").write_text("")
            (tmp_path / "taken").write_text("")
            ctx.ahead[name] = os.getpid()
        return fn

    stages = _side_stages(tmp_path, job("a"), wait=True)
    stages[-1:-1] = [(f"j{i}", job(f"j{i}")) for i in range(6)]
    ctx = schedule.run_stages(_ctx(tmp_path), stages, _run_one)
    names = sorted(p.name.split("-")[0] for p in runs.iterdir())
    assert names == sorted(["a", *(f"j{i}" for i in range(6))])  # each job exactly once
    assert set(ctx.ahead) == {"a", *(f"j{i}" for i in range(6))}  # all merged here
    assert ctx.ahead["a"] != os.getpid()  # the side worker took the first


def test_a_run_killed_beside_insights_leaves_nothing_in_the_temporary_directory(tmp_path):
    """kill -9 of an analysis while its second process ran the jobs beside insights left the
    jobs' claim directory (``shocklab-jobs-*``) in the temporary directory for good (audit-crash
    leftover); the claims are a pipe now."""

    tmp, pid_file = tmp_path / "tmp", tmp_path / "worker.pid"
    tmp.mkdir()
    code = ("import os, sys, time\n"
            "from pathlib import Path\n"
            "from analytics import schedule\n"
            "from analytics.pipeline import _run_one\n"
            "from tests.analytics.test_schedule import _ctx, _side_stages\n"
            "@schedule.beside\n"
            "def windows(ctx):\n"
            "    Path(sys.argv[1]).write_text(str(os.getpid()))\n"
            "    Path(sys.argv[2], 'taken').write_text('')\n"
            "    time.sleep(120)\n"
            "stages = _side_stages(Path(sys.argv[2]), windows, wait=True)\n"
            "schedule.run_stages(_ctx(Path(sys.argv[2])), stages, _run_one)\n")
    _kill_and_check_nothing_left(tmp_path, code, tmp, pid_file, {"SHOCKLAB_PARALLEL_SIDE": "1"})


def test_side_worker_errors_surface_in_the_parent(tmp_path, monkeypatch):
    monkeypatch.setenv("SHOCKLAB_PARALLEL", "1")

    @schedule.beside
    def windows(ctx):
        (tmp_path / "taken").write_text("")
        raise OSError(28, "No space left on device")

    stages = _side_stages(tmp_path, windows, wait=True)
    with pytest.raises(OSError, match="No space") as info:
        schedule.run_stages(_ctx(tmp_path), stages, _run_one)
    assert any("side worker" in n for n in getattr(info.value, "__notes__", []))


@pytest.mark.parametrize("how", ["unpicklable", "exits"])
def test_a_worker_without_a_usable_result_fails_the_run(tmp_path, monkeypatch, how):
    """The worker pickles its result straight into a file: a value that cannot be pickled, or a
    worker gone before writing it, is one clear error in the parent."""
    monkeypatch.setenv("SHOCKLAB_PARALLEL", "1")

    def customers(ctx):
        if how == "exits":
            os._exit(7)
        ctx.customers = {"f": lambda: None}  # a lambda does not pickle

    stages = [("kpis", lambda c: None), ("customers", customers), ("insights", lambda c: None)]
    want = "cannot return its result" if how == "unpicklable" else "died without a result"
    with pytest.raises(RuntimeError, match=want):
        schedule.run_stages(_ctx(tmp_path), stages, _run_one)


def test_what_the_first_stage_shares_is_built_here_while_the_side_worker_starts(
        tmp_path, monkeypatch):
    """``prepare`` of the first stage after the join (insights: the slice panel) runs here after
    the side worker has forked (it starts on the plots at once); the ``beside`` stages, which
    may read what it built, run here after that stage; the later stages do not wait for the side
    worker's plots (no stage reads them), which are merged at the end; ``release`` once the
    beside stages are done."""
    monkeypatch.setenv("SHOCKLAB_PARALLEL", "1")
    monkeypatch.setenv("SHOCKLAB_PARALLEL_SIDE", "1")
    events: list[tuple[str, int]] = []

    @schedule._leaf
    @schedule.beside
    def plot(ctx):
        (tmp_path / "plotting").write_text("")
        ctx.figures["plots/p.png"] = str(os.getpid()).encode()
        _wait_for(tmp_path / "later-done")

    @schedule.beside
    def windows(ctx):
        ctx.ahead["w"] = (ctx.panel, os.getpid())

    stages = _stages([])
    insights = stages[-1][1]

    def first(ctx):
        events.append(("insights", os.getpid()))
        ctx.ahead["seen"] = ctx.panel
        insights(ctx)

    def prepare(ctx):
        _wait_for(tmp_path / "plotting")   # the side worker runs already
        events.append(("prepare", os.getpid()))
        ctx.panel = "built"

    def later(ctx):
        events.append(("later", os.getpid()))
        ctx.ahead["later saw"] = "plots/p.png" in ctx.figures
        (tmp_path / "later-done").write_text("")

    first.prepare = prepare
    first.release = lambda ctx: (events.append(("release", os.getpid())),
                                 setattr(ctx, "panel", None))
    stages[-1:] = [("p", plot), ("insights", first), ("windows", windows), ("later", later)]
    ctx = schedule.run_stages(_ctx(tmp_path), stages, _run_one)
    assert [e for e, _ in events] == ["prepare", "insights", "release", "later"]
    assert {pid for _, pid in events} == {os.getpid()}
    assert ctx.ahead["w"] == ("built", os.getpid())   # here, after prepare
    assert ctx.ahead["seen"] == "built" and ctx.panel is None
    assert ctx.ahead["later saw"] is False   # it did not wait for the side worker's plot
    assert int(ctx.figures["plots/p.png"]) != os.getpid()   # merged at the end
    assert "parallel.wait_side" in ctx.timings


def test_freed_memory_handed_back_after_each_stage_and_job(tmp_path, monkeypatch):
    """Both processes hand their freed heap back (glibc's and Arrow's pool) after every stage of
    the chain and every job they drain (their peaks add up); the results are the same."""
    monkeypatch.setenv("SHOCKLAB_PARALLEL", "1")
    monkeypatch.setenv("SHOCKLAB_PARALLEL_SIDE", "1")
    released = tmp_path / "released"
    released.mkdir()
    monkeypatch.setattr(schedule, "_release_arrow",
                        lambda: (released / f"{os.getpid()}-{len(list(released.iterdir()))}")
                        .write_text(""))

    @schedule.beside
    def windows(ctx):
        (tmp_path / "taken").write_text("")
        ctx.ahead["w"] = os.getpid()

    stages = _side_stages(tmp_path, windows, wait=True)
    ctx = schedule.run_stages(_ctx(tmp_path), [*stages, ("after", lambda c: None)], _run_one)
    pids = {p.name.split("-")[0] for p in released.iterdir()}
    assert str(os.getpid()) in pids and str(ctx.ahead["w"]) in pids  # this process and the side
    assert ctx.insights["customers"] == ctx.customers["pid"]


@pytest.mark.parametrize(("parallel", "side"), [("0", "1"), ("1", "0")])
def test_what_a_stage_shares_is_released_after_it_in_order(tmp_path, monkeypatch, parallel,
                                                            side):
    """In order (``SHOCKLAB_PARALLEL=0``, or without the side worker) a stage's ``release``
    runs right after it: what it shared (insights' panel) is not kept to the end of the run."""
    monkeypatch.setenv("SHOCKLAB_PARALLEL", parallel)
    monkeypatch.setenv("SHOCKLAB_PARALLEL_SIDE", side)
    stages = _stages([])
    insights = stages[-1][1]
    seen = {}

    def first(ctx):
        ctx.panel = "built"
        insights(ctx)

    first.release = lambda ctx: setattr(ctx, "panel", None)

    def later(ctx):
        seen["panel"] = ctx.panel

    stages[-1] = ("insights", first)
    ctx = schedule.run_stages(_ctx(tmp_path), [*stages, ("later", later)], _run_one)
    assert seen == {"panel": None} and ctx.panel is None


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_the_worker_ends_with_a_run_killed_with_sigkill_and_leaves_no_file(tmp_path):
    """kill -9 of an analysis (the out-of-memory killer): its customers worker ran on to its end
    (holding the run directory's write lock meanwhile) and left its result file, ~100 MB on a
    large data set, in the temporary directory for good."""

    tmp, pid_file = tmp_path / "tmp", tmp_path / "worker.pid"
    tmp.mkdir()
    code = ("import os, sys, time\n"
            "from pathlib import Path\n"
            "from analytics import schedule\n"
            "from analytics.pipeline import _run_one\n"
            "from tests.analytics.test_schedule import _ctx\n"
            "def customers(ctx):\n"
            "    Path(sys.argv[1]).write_text(str(os.getpid()))\n"
            "    time.sleep(120)\n"
            "def kpis(ctx):\n"
            "    time.sleep(120)\n"
            "schedule.run_stages(_ctx(Path(sys.argv[2])), [('kpis', kpis), "
            "('customers', customers)], _run_one)\n")
    _kill_and_check_nothing_left(tmp_path, code, tmp, pid_file)


def _kill_and_check_nothing_left(tmp_path: Path, code: str, tmp: Path, pid_file: Path,
                                 env: dict[str, str] | None = None) -> None:
    """Run ``code`` (argv: pid file, tmp_path) with TMPDIR ``tmp``; once its worker has written
    its pid, kill -9 the run: the worker must end with it and ``tmp`` stay empty."""
    import signal
    import subprocess
    import sys
    import time

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": f"{root / 'src'}{os.pathsep}{root}", "TMPDIR": str(tmp),
           "SHOCKLAB_PARALLEL": "1", **(env or {})}
    p = subprocess.Popen([sys.executable, "-c", code, str(pid_file), str(tmp_path)], env=env)
    worker = None
    try:
        deadline = time.monotonic() + 120
        while worker is None and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.05)
            text = pid_file.read_text() if pid_file.exists() else ""
            worker = int(text) if text else None
        assert worker is not None and worker != p.pid, "the worker did not start"
        p.send_signal(signal.SIGKILL)
        p.wait(60)
        assert all_ended([worker])
        assert list(tmp.iterdir()) == []
    finally:
        p.kill()
        p.wait(60)
        if worker is not None and alive(worker):
            os.kill(worker, signal.SIGKILL)


def _ahead_stages(tmp_path: Path, chain=None, customers_wait=None, hands_over=True):
    """kpis (``hands_over``) → chain → the customers branch → insights, whose ``ahead`` work
    (as the forecast) the worker does after its branch; each records what it saw and the process
    it ran in."""
    def kpis(ctx):
        ctx.kpi_tables["k"] = os.getpid()

    kpis.hands_over = hands_over

    def customers(ctx):
        if customers_wait is not None:
            _wait_for(customers_wait)
        ctx.customers = {"pid": os.getpid(), "saw_kpis": "k" in ctx.kpi_tables}

    def forecast(ctx):
        ctx.ahead["forecast"] = (os.getpid(), ctx.kpi_tables.get("k"))
        (tmp_path / "ahead-done").write_text("")

    def insights(ctx):
        ctx.insights = {"forecast": ctx.ahead.get("forecast", "fitted by insights")}

    insights.ahead = forecast
    return [("kpis", kpis), ("chain", chain or (lambda c: None)), ("customers", customers),
            ("insights", insights)]


def test_the_worker_does_the_ahead_work_while_the_chain_runs(tmp_path, monkeypatch):
    """Once its branch is done the worker runs the stages' ahead work (the insights' forecast)
    while this process still runs the chain; what the ahead work reads and this process
    computed after the fork (kpis) is handed over to it; the result is merged at the join and
    used by the stage."""
    monkeypatch.setenv("SHOCKLAB_PARALLEL", "1")
    stages = _ahead_stages(tmp_path, chain=lambda c: _wait_for(tmp_path / "ahead-done"))
    ctx = schedule.run_stages(_ctx(tmp_path), stages, _run_one)
    worker = ctx.customers["pid"]
    assert worker != os.getpid() and not ctx.customers["saw_kpis"]  # kpis: after the fork
    assert ctx.kpi_tables["k"] == os.getpid()
    # the worker's forecast, on the KPIs this process handed over, used by insights
    assert ctx.insights == {"forecast": (worker, os.getpid())}
    assert "insights.ahead" in ctx.timings


def test_without_what_it_reads_the_worker_leaves_the_ahead_work_to_this_process(
        tmp_path, monkeypatch):
    """No stage hands over what the ahead work reads: the worker waits until the chain is done
    and leaves the ahead jobs, which this process then runs before the join."""
    monkeypatch.setenv("SHOCKLAB_PARALLEL", "1")
    ctx = schedule.run_stages(_ctx(tmp_path), _ahead_stages(tmp_path, hands_over=False),
                              _run_one)
    assert ctx.customers["pid"] != os.getpid()
    assert ctx.insights == {"forecast": (os.getpid(), os.getpid())}


def _say_when_taken_back(tmp_path: Path, monkeypatch) -> Path:
    """A file this process writes once it has taken back the ahead jobs left (``_take_back``):
    a worker stage that waits for it has started none of them."""
    taken = tmp_path / "taken-back"
    take_back = schedule._take_back

    def take_back_and_say(*args):
        ran = take_back(*args)
        taken.write_text("")
        return ran

    monkeypatch.setattr(schedule, "_take_back", take_back_and_say)
    return taken


def test_ahead_work_the_worker_has_not_started_is_taken_back_when_the_chain_ends(
        tmp_path, monkeypatch):
    """The chain done first (the worker is the longer path): this process takes the ahead jobs
    back and runs them at once, before the join; none runs in the worker, none twice."""
    monkeypatch.setenv("SHOCKLAB_PARALLEL", "1")
    stages = _ahead_stages(tmp_path, customers_wait=_say_when_taken_back(tmp_path, monkeypatch))
    ctx = schedule.run_stages(_ctx(tmp_path), stages, _run_one)
    assert ctx.customers["pid"] != os.getpid()
    assert ctx.insights == {"forecast": (os.getpid(), os.getpid())}
    assert "insights.ahead" in ctx.timings


def test_in_order_no_work_is_done_ahead(tmp_path, monkeypatch):
    monkeypatch.setenv("SHOCKLAB_PARALLEL", "0")
    ctx = schedule.run_stages(_ctx(tmp_path), _ahead_stages(tmp_path), _run_one)
    assert ctx.insights == {"forecast": "fitted by insights"}
    assert not (tmp_path / "ahead-done").exists()


def _deferred_stages(tmp_path: Path, customers_wait=None, job_error=None, ran=None,
                     oracle_wait=None, forecast_wait=None):
    """kpis (hands over) → detect, which defers a job (the isolation forest's part) → oracle →
    consensus (``needs_deferred``: reads the job's result) → score → the customers branch with
    its part of the scorecard → insights. Each records what it saw and where it ran."""
    def kpis(ctx):
        ctx.kpi_tables["k"] = os.getpid()

    kpis.hands_over = True

    def job(ctx):
        if job_error is not None:
            raise job_error
        ctx.ahead["forest"] = (os.getpid(), ctx.kpi_tables.get("k"))
        ctx.ahead["forest.saw"] = (ctx.watched, "d" in ctx.kpi_tables)
        (tmp_path / "job-done").write_text("")

    def defer(ctx):
        ctx.ahead["deferred"] = True
        return [("detect.forest", job)]

    def detect(ctx):
        ctx.watched = ("watched", os.getpid())
        ctx.kpi_tables["d"] = 1   # not handed over: only the fields ``hands_over`` names
        if "deferred" not in ctx.ahead:   # in order: the stage runs it itself
            job(ctx)

    detect.hands_over = ("watched",)

    def settle(ctx):
        ctx.ahead["settled"] = ctx.ahead.pop("forest")

    detect.defer, detect.settle = defer, settle

    ran = [] if ran is None else ran

    def consensus(ctx):
        ran.append("consensus")
        ctx.incidents = [ctx.ahead.get("settled", ctx.ahead.get("forest"))]
        (tmp_path / "consensus-ran").write_text("")

    consensus.needs_deferred = True

    def score(ctx):
        ctx.scorecard = {"headline": 1}

    def customers(ctx):
        if customers_wait is not None:
            _wait_for(customers_wait)
        ctx.customers = {"pid": os.getpid()}

    def customer_scoring(ctx):
        if ctx.scorecard is not None:
            ctx.scorecard["customers"] = {"n": 3}

    def insights(ctx):
        ctx.insights = {"card": list(ctx.scorecard), "forecast": ctx.ahead.get("forecast")}

    def forecast(ctx):   # the later ahead work (``forecast_wait``: until consensus has run)
        (tmp_path / "forecast-started").write_text("")   # claimed: by the worker, in parallel
        if forecast_wait is not None:
            _wait_for(forecast_wait)
        ctx.ahead["forecast"] = (os.getpid(), (tmp_path / "consensus-ran").exists())

    insights.ahead = forecast

    def oracle(ctx):
        if oracle_wait is not None:
            _wait_for(oracle_wait)
        ran.append("oracle")

    return [("kpis", kpis), ("detect", detect), ("oracle", oracle),
            ("consensus", consensus), ("score", score), ("customers", customers),
            ("customer_scoring", customer_scoring), ("insights", insights)]


def test_deferred_chain_work_runs_in_the_worker_and_is_settled_before_its_reader(
        tmp_path, monkeypatch):
    """A chain stage's deferred job (the isolation forest) runs in the worker after its branch,
    on the KPIs handed over; the join comes before the first stage that reads it (consensus),
    the stage's ``settle`` puts it in place, and the branch's part of the scorecard is added
    after score as in order (its keys in the same order)."""
    monkeypatch.setenv("SHOCKLAB_PARALLEL", "1")
    # the chain waits (in oracle) until the worker has claimed the forecast, not only until the
    # deferred job is done: between the two the parent at its join point could claim the forecast
    # itself (``_take_back``) and wait there for a consensus that only it would run (seen on a
    # loaded 2-core machine: the forecast ran in the parent after a 120 s wait)
    stages = _deferred_stages(tmp_path, oracle_wait=tmp_path / "forecast-started",
                              forecast_wait=tmp_path / "consensus-ran")
    ctx = schedule.run_stages(_ctx(tmp_path), stages, _run_one)
    worker = ctx.customers["pid"]
    assert worker != os.getpid()
    assert ctx.incidents == [(worker, os.getpid())]
    # on what this process handed over: kpis' result, then only the field detect names
    assert ctx.ahead["forest.saw"] == (("watched", os.getpid()), False)
    assert ctx.scorecard == {"headline": 1, "customers": {"n": 3}}
    # the deferred job's result taken as soon as the worker wrote it: consensus ran while the
    # worker still did its later ahead work (the forecast, which waited for it)
    assert ctx.insights == {"card": ["headline", "customers"], "forecast": (worker, True)}
    assert {"detect.forest", "parallel.wait", "parallel.wait_deferred"} <= set(ctx.timings)
    monkeypatch.setenv("SHOCKLAB_PARALLEL", "0")
    seq = schedule.run_stages(_ctx(tmp_path), _deferred_stages(tmp_path), _run_one)
    assert seq.incidents == [(os.getpid(), os.getpid())]
    assert seq.scorecard == ctx.scorecard and seq.insights["card"] == ctx.insights["card"]


def test_deferred_work_the_worker_has_not_started_runs_here_before_its_reader(
        tmp_path, monkeypatch):
    """The worker still in its branch when the chain needs the deferred result: this process
    takes the job back and runs it itself; the worker runs none."""
    monkeypatch.setenv("SHOCKLAB_PARALLEL", "1")
    taken = _say_when_taken_back(tmp_path, monkeypatch)
    ctx = schedule.run_stages(_ctx(tmp_path), _deferred_stages(tmp_path, customers_wait=taken),
                              _run_one)
    assert ctx.customers["pid"] != os.getpid()
    assert ctx.incidents == [(os.getpid(), os.getpid())]
    assert ctx.scorecard == {"headline": 1, "customers": {"n": 3}}


def test_a_deferred_job_failing_in_the_worker_fails_the_run_before_its_reader(
        tmp_path, monkeypatch):
    monkeypatch.setenv("SHOCKLAB_PARALLEL", "1")
    monkeypatch.setattr(schedule, "_take_back", lambda *a: None)   # the worker runs the job
    ran: list[str] = []
    stages = _deferred_stages(tmp_path, job_error=InputError("kpis: no forest"), ran=ran)
    with pytest.raises(InputError, match="no forest") as info:
        schedule.run_stages(_ctx(tmp_path), stages, _run_one)
    assert any("customers worker" in n for n in getattr(info.value, "__notes__", []))
    assert ran == ["oracle"]   # the chain up to the join; not the stage that reads the job


# the customers worker's own modules: imported by the worker after the fork (the parent runs the
# detection chain meanwhile), never by the parent before it; scikit-learn too (the customer
# models' and the isolation forest's, which the worker runs beside the chain)
WORKER_ONLY = ("analytics.customers.pipeline", "analytics.customers.churn",
               "analytics.customers.clv", "analytics.customers.monitor",
               "evaluation.customer_scores", "prophet", "sklearn")


@pytest.mark.parametrize("parallel", ["1", "0"])
def test_what_the_cli_imports_before_the_fork(synth_dir, tmp_path, parallel):
    """An import audit of ``run_analysis.py`` in a fresh interpreter: at the customers worker's
    fork the parent has matplotlib (both processes draw: imported once, shared) but not the
    customer models or Prophet (the worker's alone; the parent would pay them on the critical
    path); the worker imports them itself and the run is whole. In order the models are
    imported ahead, while the data directory is read."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    seen, out = tmp_path / "seen.json", tmp_path / "run"
    code = ("import json, sys\n"
            "import run_analysis\n"
            "from analytics import schedule\n"
            "from shocklab.cli import run_cli\n"
            "init = schedule._Worker.__init__\n"
            "def audit(self, *a, **k):\n"
            "    if k.get('role', 'customers') == 'customers':\n"
            "        open(sys.argv[1], 'w').write(json.dumps(sorted(sys.modules)))\n"
            "    init(self, *a, **k)\n"
            "schedule._Worker.__init__ = audit\n"
            "pre = schedule.preload\n"
            "def audit_in_order(stages):\n"
            "    pre(stages)\n"
            "    open(sys.argv[1] + '.order', 'w').write(json.dumps(sorted(sys.modules)))\n"
            "schedule.preload = audit_in_order\n"
            "sys.exit(run_cli(run_analysis.main, ['--data', sys.argv[2], '--out', sys.argv[3], "
            "'--quiet', *sys.argv[4:]]))\n")
    env = {**os.environ, "PYTHONPATH": f"{root / 'src'}{os.pathsep}{root}",
           "SHOCKLAB_PARALLEL": parallel}
    p = subprocess.run([sys.executable, "-c", code, str(seen), str(synth_dir), str(out), *FAST],
                       env=env, cwd=root, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    assert (out / "customers" / "segments.csv").is_file()
    if parallel == "1":
        mods = set(json.loads(seen.read_text()))
        assert "matplotlib.figure" in mods and "analytics.report" in mods
        assert not mods & set(WORKER_ONLY), sorted(mods & set(WORKER_ONLY))
    else:
        assert not seen.exists()   # no worker
        mods = set(json.loads(Path(f"{seen}.order").read_text()))
        assert "analytics.customers.pipeline" in mods and "matplotlib.figure" in mods


def test_what_a_branch_stage_hands_back_is_merged_and_no_longer_held_by_the_worker(
        tmp_path, monkeypatch):
    """A branch stage's ``hands_back`` (the customers stage: its tables) goes back to the parent
    as soon as the stage is done and the worker drops it (the later branch stages and the ahead
    work never read it, and the worker's memory adds to the parent's); the parent has every entry,
    as in order."""
    monkeypatch.setenv("SHOCKLAB_PARALLEL", "1")

    def customers(ctx):
        ctx.customer_tables["segments"] = [os.getpid()] * 3
        ctx.customers = {"pid": os.getpid()}

    customers.hands_back = ("customer_tables",)

    def customer_scoring(ctx):
        ctx.customer_tables["scored"] = sorted(ctx.customer_tables)   # what is still held here

    stages = [("kpis", lambda c: None), ("customers", customers),
              ("customer_scoring", customer_scoring), ("insights", lambda c: None)]
    ctx = schedule.run_stages(_ctx(tmp_path), stages, _run_one)
    assert ctx.customers["pid"] != os.getpid()
    assert ctx.customer_tables["segments"] == [ctx.customers["pid"]] * 3
    assert ctx.customer_tables["scored"] == []   # dropped in the worker once handed back


def test_trimmed_maps_big_blocks_apart_only_during_its_lean_stages(monkeypatch):
    """The oracle / customer scoring run with glibc's mmap threshold at LEAN_MMAP, set back after
    (also when the stage fails); other stages leave it alone."""
    calls: list[tuple[str, int, int]] = []
    monkeypatch.setattr(schedule, "_mallopt", lambda: lambda p, v: calls.append(("opt", p, v)))
    ran: list[str] = []
    run = schedule._trimmed(lambda ctx, name, fn: (ran.append(name), fn(ctx)), ("oracle",))
    run(None, "detect", lambda ctx: None)
    assert calls == [] and ran == ["detect"]
    run(None, "oracle", lambda ctx: calls.append(("stage", 0, 0)))
    assert calls == [("opt", -3, schedule.LEAN_MMAP), ("stage", 0, 0),
                     ("opt", -3, schedule.HEAP_MMAP)]
    calls.clear()

    def boom(ctx):
        raise ValueError("x")

    with pytest.raises(ValueError):
        run(None, "oracle", boom)
    assert calls == [("opt", -3, schedule.LEAN_MMAP), ("opt", -3, schedule.HEAP_MMAP)]


class _NoNote(ValueError):
    """An exception as Python 3.10 has them: no ``add_note`` (3.11+)."""

    def __getattribute__(self, name):
        if name == "add_note":
            raise AttributeError(name)
        return super().__getattribute__(name)


def test_a_worker_error_reaches_the_parent_as_itself_without_add_note(tmp_path):
    """The parent notes the worker's traceback on the error it raises; on Python 3.10 (no
    ``add_note``) that call was an AttributeError, so a bad monitor state (exit 2) became an
    internal error (exit 3) and the message was lost (audit 2026-12-05)."""
    import pickle

    from analytics.schedule import _Worker

    path = tmp_path / "result"
    with open(path, "wb") as fh:
        pickle.dump({"error": _NoNote("not a usable SQLite monitor state file"),
                     "traceback": "Traceback ...", "more": False}, fh)
    worker = object.__new__(_Worker)
    worker.file, worker.pos, worker.role, worker.pid = open(path, "rb"), 0, "customers", 1
    try:
        with pytest.raises(_NoNote, match="not a usable SQLite"):
            list(worker._records(None, None))
    finally:
        worker.file.close()
