"""End to end in a real browser: ``streamlit run app.py`` on a free local port, the OS Chromium
driven by Playwright opens every page and finds a scorecard number on it.

Screenshots go to the test's temp dir; with ``SHOCKLAB_UPDATE_SCREENSHOTS=1`` they also replace
``docs/screenshots/*.png`` (the committed ones were made this way). Skips, saying why, when
Chromium or Playwright is missing (``.ci/run`` installs Chromium with apt-get). Playwright never
downloads a browser here: it is pointed at the OS executable.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from tests import localserver
from tests.servefix import ROOT

from dashboard.widgets import fmt

pytestmark = pytest.mark.slow

CHROMIUM = next(
    (
        p
        for p in (
            os.environ.get("SHOCKLAB_CHROMIUM"),
            shutil.which("chromium"),
            shutil.which("chromium-browser"),
            "/usr/bin/chromium",
        )
        if p and Path(p).is_file()
    ),
    None,
)
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TITLES = {
    "overview": "Overview",
    "kpis": "KPI explorer",
    "episodes": "Episodes",
    "customers": "Customers",
    "experiments": "Experiments",
    "compare": "Compare runs",
}
WAIT_S = 120  # bounds on waiting for a loaded machine, not speed assertions
# metric labels and values the browser cuts to one line with an ellipsis (only a browser lays them
# out): the CLV model's name read "pareto_nbd+gamm…", an episode's matched events "W02, W0…", and
# at a 960 px window Overview's "Consensus r…" and Compare's "1.…"
CUT_METRICS = """() => Array.from(document.querySelectorAll(
    '[data-testid="stMetricLabel"], [data-testid="stMetricValue"]'))
  .filter(e => e.offsetParent !== null)
  .filter(e => [e, ...e.querySelectorAll('*')].some(d => d.scrollWidth > d.clientWidth + 1))
  .map(e => e.textContent)"""
SHOWN_METRICS = """() => Array.from(document.querySelectorAll('[data-testid="stMetricValue"]'))
  .filter(e => e.offsetParent !== null).length"""
# boxes of the shown elements matching a selector (document order), with the main area's content
# box and the window's width; ``cut``: descendants (wider than 2 px, not the 1 px screen-reader
# ones) whose content is wider than they are — a chip cut to "c…", chips scrolled out of their
# box, a checkbox label "Un…"
BOXES = """(sel) => {
  const main = document.querySelector('[data-testid="stMainBlockContainer"]');
  const m = main.getBoundingClientRect(), cs = getComputedStyle(main);
  const box = e => { const r = e.getBoundingClientRect();
    return {left: r.left, right: r.right, top: r.top, bottom: r.bottom}; };
  return {
    window: window.innerWidth,
    main: {left: m.left + parseFloat(cs.paddingLeft), right: m.right - parseFloat(cs.paddingRight)},
    boxes: Array.from(document.querySelectorAll(sel)).filter(e => e.offsetParent !== null)
      .map(e => ({...box(e), text: e.innerText.split('\\n')[0],
                  cut: Array.from(e.querySelectorAll('*'))
                    .filter(d => d.clientWidth > 2 && d.scrollWidth > d.clientWidth + 1).length})),
  };
}"""
FILTERS = ('[data-testid="stMain"] [data-testid="stMultiSelect"], '
           '[data-testid="stMain"] [data-testid="stTextInput"], '
           '[data-testid="stMain"] [data-testid="stCheckbox"]')
METRICS = '[data-testid="stMain"] [data-testid="stMetric"]'
EP_FILTERS = ["Severity", "KPI", "Slice contains", "Unplanned only"]
CMP_METRICS = ["Recall", "Precision", "F1"]


def _outside(geo: dict) -> list[str]:
    """The boxes that stick out of the window or of the main area's content box."""
    lo, hi = max(0, geo["main"]["left"]), min(geo["main"]["right"], geo["window"])
    return [b["text"] for b in geo["boxes"] if b["left"] < lo - 1 or b["right"] > hi + 1]


def _overlapping(geo: dict) -> list[tuple[str, str]]:
    bs = geo["boxes"]
    return [(a["text"], b["text"]) for i, a in enumerate(bs) for b in bs[i + 1:]
            if a["left"] < b["right"] - 1 and b["left"] < a["right"] - 1
            and a["top"] < b["bottom"] - 1 and b["top"] < a["bottom"] - 1]


def _rows(geo: dict) -> list[list[str]]:
    """The boxes' texts in rows, top to bottom: a box whose top is above the bottom of the row's
    first box is on that row (a checkbox aligned to the bottom of the text boxes beside it)."""
    rows: list[list[dict]] = []
    for b in sorted(geo["boxes"], key=lambda b: (b["top"], b["left"])):
        if rows and b["top"] < rows[-1][0]["bottom"] - 1:
            rows[-1].append(b)
        else:
            rows.append([b])
    return [[b["text"] for b in sorted(r, key=lambda b: b["left"])] for r in rows]


@pytest.fixture()
def dashboard_url(roots, tmp_path):
    from shocklab.main import dashboard_argv  # the command line `shocklab dashboard` runs

    log = (tmp_path / "streamlit.log").open("w")

    def launch(port: int) -> subprocess.Popen:
        argv, env = dashboard_argv(str(roots.reports), str(roots.runs), "127.0.0.1", port)
        env["SHOCKLAB_DATA"] = str(roots.data)  # the run's data directory: its calendar is read
        return subprocess.Popen([*argv, "--server.fileWatcherType", "none"], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT)

    def healthy(url: str) -> bool:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                return r.read().strip() == b"ok"
        except OSError:
            return False

    try:
        proc, url = localserver.start(launch, healthy, wait_s=WAIT_S)
    except (RuntimeError, TimeoutError) as e:
        log.close()
        pytest.fail(f"streamlit did not start ({e}): "
                    f"{(tmp_path / 'streamlit.log').read_text()[-2000:]}")
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


# the app's run state, which Streamlit's frontend writes on its root element ("initial" before
# the first run, "running", "notRunning" once the script is done and every element was sent)
SCRIPT_STATE = """() => document.querySelector('[data-testid="stApp"]')
  ?.getAttribute('data-test-script-state') ?? null"""


def _wait_for_text(page, texts: list[str]) -> str:
    """The body's text once ``texts`` are on the page and the script has finished its run.

    The finished run is read from the app's own mark: the "Running…" status widget shows only
    after a delay, so a page still running passed a wait on its absence. (Elements the frontend
    draws after the run are waited for where they are measured: ``_boxes``.) The mark is a
    frontend attribute Streamlit writes for its own tests (1.67 has it); were a later version to
    drop it, the wait falls back to the status widget rather than time out on every page."""
    deadline = time.monotonic() + WAIT_S
    body, state = "", None
    while time.monotonic() < deadline:
        body = page.inner_text("body")
        state = page.evaluate(SCRIPT_STATE)
        running = page.locator('[data-testid="stStatusWidget"]').count() > 0
        # a Streamlit without the mark (None) falls back to the status widget alone
        if all(t in body for t in texts) and state in ("notRunning", None) and not running:
            return body
        time.sleep(0.5)
    missing = [t for t in texts if t not in body]
    raise AssertionError(f"not on the page after {WAIT_S} s: {missing} (script state {state!r})"
                         f"\n---\n{body[:1500]}")


def _boxes(page, sel: str, least: int) -> dict:
    """BOXES for ``sel`` once at least ``least`` of them are shown and two reads 0.25 s apart
    agree. Streamlit's frontend draws some elements after the run is over: the Episodes filter
    row's text box and checkbox (a horizontal container) came 0.3–1 s after the run's end here,
    when the expanders below them were already drawn — CI, under load, met the row without its
    checkbox."""
    deadline = time.monotonic() + WAIT_S
    last = None
    while time.monotonic() < deadline:
        geo = page.evaluate(BOXES, sel)
        if len(geo["boxes"]) >= least and geo == last:
            return geo
        last = geo
        time.sleep(0.25)
    raise AssertionError(f"fewer than {least} shown, or still moving, after {WAIT_S} s: {last}")


def test_every_page_in_chromium(roots, dashboard_url, tmp_path):
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install chromium; .ci/run does it as root)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright package is not installed"
    )
    sc = json.loads((roots.reports / "sim" / "scorecard.json").read_text())
    cons = sc[sc["headline"]["mode"]]["consensus"]
    card = [
        f"{cons['incidents']} incidents, {cons['fp']} false alarms",
        fmt(sc["headline"]["recall"]),
    ]
    lb = (roots.runs / "sweep" / "leaderboard.csv").read_text().splitlines()
    import pandas as pd
    lbd = pd.read_csv(roots.runs / "sweep" / "leaderboard.csv")
    exp_number = fmt(lbd["consensus.precision.mean"].iloc[0])
    assert len(lb) > 1
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1500})
            page.set_default_timeout(WAIT_S * 1000)
            for name, title in TITLES.items():
                query = {
                    "experiments": "page=experiments&exp=sweep",
                    "compare": "page=compare&run=sim&other=sim-k1",
                }.get(name, f"page={name}&run=sim")
                page.goto(f"{dashboard_url}/?{query}")
                want = [title] + ([exp_number, "Gate PASSED"] if name == "experiments" else card)
                body = _wait_for_text(page, want)
                assert "Traceback" not in body and "Error" not in body.split("\n")[0]
                if name in ("kpis", "customers", "episodes", "experiments"):
                    page.wait_for_selector(".js-plotly-plot, [data-testid='stExpander']")
                time.sleep(1.0)  # let Plotly finish drawing before the picture
                assert page.evaluate(CUT_METRICS) == [], f"metric values cut short on {name}"
                if name == "episodes":  # the four filters in one row
                    assert _rows(_boxes(page, FILTERS, len(EP_FILTERS))) == [EP_FILTERS]
                if name == "compare":  # the runs side by side, each one's metrics in a row
                    assert _rows(_boxes(page, METRICS, 2 * len(CMP_METRICS))) == [CMP_METRICS * 2]
                page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
        finally:
            browser.close()
    pngs = sorted(shots.glob("*.png"))
    assert [p.stem for p in pngs] == sorted(TITLES)
    assert all(p.stat().st_size > 10_000 for p in pngs)
    if os.environ.get("SHOCKLAB_UPDATE_SCREENSHOTS") == "1":
        dest = ROOT / "docs" / "screenshots"
        dest.mkdir(parents=True, exist_ok=True)
        for png in pngs:
            shutil.copyfile(png, dest / png.name)


def test_nothing_is_cut_at_960px(roots, dashboard_url, tmp_path):
    """At a 960 px window the metric rows were cut: Overview's five columns showed "Consensus r…",
    "Median dela…", "Events (une…", Compare's half-page columns "1.…" for 1.000, an episode card
    "+169.2…". Metrics now wrap onto another row instead: on every page with metrics, none of the
    shown labels or values is wider than its box (and there are metrics to check).

    Then the Episodes filters, four columns of 131 px: the Severity box showed one of its three
    chips, cut to "c…", and the checkbox "Un…" (every box was inside the window: that alone
    passed). Now each filter lies inside the main area, none overlaps another, none is cut. And
    Compare's metrics, 2 + 1 in each 242 px half (Recall and Precision, F1 below): each run's
    three now sit in one row, B's below A's."""
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install chromium; .ci/run does it as root)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright package is not installed"
    )
    # page query, text that is there once the page is drawn, metrics it shows at least
    views = {
        "overview": ("page=overview&run=sim", "Median delay (days)", 5),
        "compare": ("page=compare&run=sim&other=sim-k1", "Differences (B − A)", 6),
        "episodes": ("page=episodes&run=sim", "Window (days)", 4),
        "customers": ("page=customers&run=sim", "Historical value", 2),
    }
    cut, geo = {}, {}
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 960, "height": 1200})
            page.set_default_timeout(WAIT_S * 1000)
            for name, (query, text, least) in views.items():
                page.goto(f"{dashboard_url}/?{query}")
                _wait_for_text(page, [text])
                time.sleep(1.0)  # let the layout settle
                if name in ("episodes", "compare"):  # drawn in full first (see _boxes)
                    geo[name] = (_boxes(page, FILTERS, len(EP_FILTERS)) if name == "episodes"
                                 else _boxes(page, METRICS, 2 * len(CMP_METRICS)))
                page.screenshot(path=str(tmp_path / f"{name}-960.png"), full_page=True)
                assert page.evaluate(SHOWN_METRICS) >= least, name
                cut[name] = page.evaluate(CUT_METRICS)
        finally:
            browser.close()
    assert cut == {name: [] for name in views}, f"metrics cut short at 960 px (see {tmp_path})"
    filters = geo["episodes"]
    assert sorted(b["text"] for b in filters["boxes"]) == sorted(EP_FILTERS), filters
    assert _outside(filters) == [] and _overlapping(filters) == [], filters
    assert [b["text"] for b in filters["boxes"] if b["cut"]] == [], filters
    assert _rows(geo["compare"]) == [CMP_METRICS, CMP_METRICS], geo["compare"]
    assert _outside(geo["compare"]) == [], geo["compare"]


def test_a_run_without_truth_shows_one_notice(roots, dashboard_url):
    """Overview of a --transactions run (no truth): a warning that scorecard.json is missing sat
    over an info saying there is no truth to score against — one thing said twice. One box."""
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install chromium; .ci/run does it as root)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright package is not installed"
    )
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1200})
            page.set_default_timeout(WAIT_S * 1000)
            page.goto(f"{dashboard_url}/?page=overview&run=tx")
            _wait_for_text(page, ["Overview · tx", "Detectors"])  # drawn to the Run section
            boxes = page.locator('[data-testid="stAlert"]').all_inner_texts()
        finally:
            browser.close()
    assert len(boxes) == 1 and "has no truth to score against" in boxes[0], boxes
