"""generate_data.py: bad input gives exit 2 and one line naming file and YAML path, and leaves no
output behind (and an earlier output untouched)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tests.simulation.simtools import tiny_config

ROOT = Path(__file__).resolve().parents[2]


def subprocess_run(*args):
    """The real script in a fresh interpreter (exit code and streams as a user sees them)."""
    return subprocess.run(
        [sys.executable, str(ROOT / "generate_data.py"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "SHOCKLAB_LOG_DIR": ""},
    )


@pytest.fixture
def run(capsys):
    """The same entry point in-process (fast): returns an object like CompletedProcess."""
    import generate_data

    from shocklab.cli import run_cli

    def _run(*args):
        code = run_cli(generate_data.main, list(args))
        out = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out.out, out.err)

    return _run


def write(tmp_path, raw, name="scenario.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(raw, sort_keys=False))
    return p


def test_generates_and_prints_summary(tmp_path):
    run = subprocess_run
    cfg = write(tmp_path, tiny_config())
    r = run("--config", str(cfg), "--out", str(tmp_path / "d"), "--set", "seed=5")
    assert r.returncode == 0, r.stderr
    assert "orders" in r.stdout and "events" in r.stdout
    assert (tmp_path / "d" / "truth" / "events.json").exists()
    assert '"seed": 5' in (tmp_path / "d" / "manifest.json").read_text()


def _bad(raw_changes):
    raw = tiny_config()
    for path, value in raw_changes.items():
        node = raw
        keys = path.split(".")
        for k in keys[:-1]:
            node = node[int(k)] if isinstance(node, list) else node[k]
        last = keys[-1]
        if value is KeyError:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return raw


CASES = [
    ({"colour": "red"}, r"colour: unknown key"),
    ({"traffic.base_sessions": "many"}, r"traffic\.base_sessions: .*number"),
    ({"traffic.base_sessions": -5}, r"traffic\.base_sessions: .*greater than 0"),
    ({"period.end": "2024-12-01"}, r"period: .*end .* is before start"),
    ({"events.0.start": "2026-02-01"}, r"events\[0\]\.start: 2026-02-01 is outside the period"),
    (
        {"events.0.scope": {"channel": "tiktok"}},
        r"events\[0\]\.scope\.channel: 'tiktok' is not a configured channel \(organic, email\)",
    ),
    (
        {"events.0.scope": {"country": "XX"}},
        r"events\[0\]\.scope: .*not supported by channel_outage",
    ),
    (
        {"events.1.scope": {"country": "XX"}},
        r"events\[1\]\.scope\.country: 'XX' is not a configured country",
    ),
    ({"events.0.type": "alien_invasion"}, r"events\[0\]: .*alien_invasion.*flash_sale"),
    ({"events.0.drop_pct": 1.5}, r"events\[0\]\.drop_pct: .*less than or equal to 1"),
    ({"events.0.dropp_pct": 0.5}, r"events\[0\]\.dropp_pct: unknown key"),
    ({"customers.mean_lifetime_days": 0}, r"customers\.mean_lifetime_days"),
    # event ids key the twins and the truth: a shared id measured both events against a twin that
    # kept both (a 80 % outage recorded with no effect); '' was an internal error (exit 3)
    ({"events.0.id": "X", "events.1.id": "X"},
     r"events\[1\]\.id: 'X' is also the id of events\[0\]; ids must be unique"),
    ({"events.1.id": "P01"}, r"events\[1\]\.id: 'P01' has the form of a planned calendar"),
    ({"events.0.id": ""}, r"events\[0\]\.id: '' is empty or blank"),
    # two events of one type on one scope at once: the twin of each kept the other, so a nested
    # stockout (or a second 100 % outage) was recorded with no effect at all
    ({"events.1": {"type": "channel_outage", "start": "2025-02-12", "drop_pct": 0.5,
                   "scope": {"channel": "email"}}},
     r"events\[1\]\.start: channel_outage on channel=email 2025-02-12 … 2025-02-14 overlaps "
     r"events\[0\] \(2025-02-10 … 2025-02-12\), the same type on the same scope"),
    # random_events whose draws a type refuses: an internal error (exit 3), for some seeds only
    ({"random_events": {"count": 2, "magnitude": [0.0, 0.3]}},
     r"random_events: magnitude: low 0\.0 draws magnitudes that round to 0"),
    ({"random_events": {"count": 2, "types": ["pricing_error"], "magnitude": [0.5, 1.0]}},
     r"random_events: magnitude: 1\.0 would be drawn for pricing_error, whose price_drop_pct "
     r"must be less than 1"),
    ({"random_events": {"count": 2, "types": ["level_shift"], "magnitude": [0.5, 0.96]}},
     r"random_events: magnitude: -0\.96 would be drawn for level_shift, whose change_pct must "
     r"be greater than or equal to -0\.95"),
    # a pricing error whose demand boost outweighs its price cut raised the scope's AOV while the
    # truth recorded its primary KPI as aov down (boost 20, cut 0.5: AOV +58 % in the truth)
    ({"events.1": {"type": "pricing_error", "start": "2025-02-20", "price_drop_pct": 0.5,
                   "demand_boost": 20, "scope": {"category": "books"}}},
     r"events\[1\]\.demand_boost: 20(\.0)? with price_drop_pct 0\.5 \(step\) and "
     r"basket\.quantity_mean 1\.25 raises the AOV of the scope instead of lowering it .*; need "
     r"demand_boost below 10$"),
    ({"events.1": {"type": "pricing_error", "start": "2025-02-20", "price_drop_pct": 0.5,
                   "duration_days": 3, "profile": "ramp", "demand_boost": 7}},
     r"events\[1\]\.demand_boost: 7(\.0)? with price_drop_pct 0\.5 \(ramp\) .* below 6$"),
    ({"random_events": {"count": 2, "types": []}},
     r"random_events: types: at least one event type is required when count > 0"),
    # a channel "e,m" was never planned on its own calendar days (its scope channel=e,m read back
    # as channel=e and m); a country "a|b" split its channel x country cells wrongly
    ({"channels.e,m": {"share": 0.2, "conversion": 0.03, "new_customer_share": 0.1}},
     r"channels: 'e,m' holds ',', '=' or '\|' \(calendar scopes and channel\|country cells use "
     r"them\); choose another name$"),
    ({"countries.a|b": 0.1}, r"countries: 'a\|b' holds ','"),
    ({"products.categories.x=y": {"weight": 0.1, "price_median": 10.0, "price_sigma": 0.3}},
     r"products\.categories: 'x=y' holds ','"),
    # dates the analysis cannot read (pandas' nanosecond years): the world was written, then
    # refused by run_analysis ("out of range")
    ({"period": {"start": "1600-01-01", "end": "1600-03-31"}, "calendar": [], "events": []},
     r"period: start 1600-01-01 is too early: the initial customers sign up as early as "
     r"customers\.initial_max_age_days \(720\) before it, on 1598-01-11, and the analysis "
     r"reads dates from 1678-01-01$"),
    ({"period": {"start": "2261-11-01", "end": "2262-01-31"}, "calendar": [], "events": []},
     r"period: end 2262-01-31 is after 2261-12-31 \(the analysis reads dates from 1678 to "
     r"2261\)$"),
    # one calendar entry's occurrences sharing a day: its uplift was multiplied in twice there
    # (+50 % became +125 %) and the day written twice to marketing_calendar.csv
    ({"calendar.0.dates": ["2025-03-03", "2025-03-03"]},
     r"calendar\[0\]\.dates: 2025-03-03 is listed twice$"),
    ({"calendar.0.dates": ["2025-03-10", "2025-03-03", "2025-03-04"]},
     r"calendar\[0\]\.dates: the occurrences starting 2025-03-03 and 2025-03-04 overlap \(each "
     r"lasts duration_days 2\)"),
    # numbers with no upper bound: two 1e308 shares summed to inf (a world of 0 sessions, exit
    # 0); 1e308 country or category weights and a price_median of 1e200 failed inside numpy
    # (exit 3); a price_median of 1e20 was written, then refused by run_analysis (|x| > 1e12)
    ({"channels.organic.share": 1e308, "channels.email.share": 1e308},
     r"channels\.organic\.share: Input should be less than or equal to 1000000 "),
    ({"countries": {"US": 1e308, "DE": 1e308}},
     r"countries\.US: Input should be less than or equal to 1000000 "),
    ({"products.categories.gadgets.weight": 1e308, "products.categories.books.weight": 1e308},
     r"products\.categories\.gadgets\.weight: Input should be less than or equal to 1000000 "),
    ({"products.categories.books.price_median": 1e200},
     r"products\.categories\.books\.price_median: Input should be less than or equal to 1000000 "),
    ({"products.categories.books.price_median": 1e20},
     r"products\.categories\.books\.price_median: Input should be less than or equal to 1000000 "),
    ({"products.categories.books.price_sigma": 3.0},
     r"products\.categories\.books: price_median: 15 with price_sigma 3 lists products at up to "
     r"984,899,537 \(the median x exp\(6 x price_sigma\)\), above 1,000,000; lower "),
    ({"traffic.weekly": [1e308, 1e308, 1, 1, 1, 1, 1]},
     r"traffic\.weekly\[0\]: Input should be less than or equal to 1000000 "),
    ({"basket": {"discount_levels": [0.0, 0.1], "discount_probs": [1e308, 1e308]}},
     r"basket\.discount_probs\[0\]: Input should be less than or equal to 1000000 "),
    ({"basket": {"hour_profile": [1e308] * 2 + [1.0] * 22}},
     r"basket\.hour_profile\[0\]: Input should be less than or equal to 1000000 "),
    # at the other end, 5e-324 weights underflowed to a sum of 0 (numpy: invalid value in divide)
    ({"countries": {"US": 5e-324, "DE": 1e-323}},
     r"countries\.US: Input should be greater than or equal to 0\.000001 "),
    ({"channels.email.conversion": 5e-324},
     r"channels\.email\.conversion: Input should be greater than or equal to 0\.000001 "),
    # an event id holding a tab or newline broke the truth's and the reports' lines
    ({"events.0.id": "out\tage"}, r"events\[0\]\.id: 'out\\tage' holds a control character \\t"),
]


@pytest.mark.parametrize(("changes", "message"), CASES, ids=[c[1][:30] for c in CASES])
def test_bad_config_exits_2_with_one_line_and_writes_nothing(tmp_path, run, changes, message):
    import re

    cfg = write(tmp_path, _bad(changes))
    out = tmp_path / "out"
    r = run("--config", str(cfg), "--out", str(out))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"error: {cfg}"), lines[0]
    assert re.search(message, lines[0]), lines[0]
    assert not out.exists() and list(tmp_path.iterdir()) == [cfg]


def test_category_reference_is_checked(tmp_path, run):
    raw = tiny_config(
        events=[{"type": "stockout", "start": "2025-02-01", "scope": {"category": "toys"}}]
    )
    r = run("--config", str(write(tmp_path, raw)), "--out", str(tmp_path / "o"))
    assert (
        r.returncode == 2
        and "events[0].scope.category: 'toys' is not a configured category (gadgets, books)"
        in r.stderr
    )


def test_unreadable_yaml_and_missing_file(tmp_path):
    run = subprocess_run  # also proves no traceback reaches a user
    bad = tmp_path / "bad.yaml"
    bad.write_text("period: {start: 2025-01-01\nchannels: [")
    r = run("--config", str(bad), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "invalid YAML at line" in r.stderr and "Traceback" not in r.stderr
    r = run("--config", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "nope.yaml: config file not found" in r.stderr
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    r = run("--config", str(empty), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "channels: Field required" in r.stderr
    assert not (tmp_path / "o").exists()


def test_bad_flags(tmp_path, run):
    cfg = write(tmp_path, tiny_config())
    r = run("--config", str(cfg), "--format", "xlsx")
    assert (
        r.returncode == 2
        and "invalid choice" in r.stderr
        and len(r.stderr.strip().splitlines()) == 1
    )
    r = run("--config", str(cfg), "--out", str(tmp_path / "o"), "--set", "noequals")
    assert r.returncode == 2 and "expected dotted.key=value" in r.stderr
    r = run(
        "--config", str(cfg), "--out", str(tmp_path / "o"), "--set", "events.7.start=2025-01-01"
    )
    assert r.returncode == 2 and "out of range" in r.stderr


def test_unwritable_output_and_earlier_output_survives(tmp_path, run):
    cfg = write(tmp_path, tiny_config())
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = run("--config", str(cfg), "--out", str(blocker / "data"))
    assert r.returncode == 2 and "not a directory" in r.stderr
    good = tmp_path / "good"
    assert run("--config", str(cfg), "--out", str(good)).returncode == 0
    before = (good / "manifest.json").read_bytes()
    r = run("--config", str(cfg), "--out", str(good), "--set", "traffic.base_sessions=-1")
    assert r.returncode == 2
    assert (good / "manifest.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "good", "scenario.yaml"]


@pytest.mark.parametrize(("key", "name", "message"), [
    ("countries", "NA", "countries: 'NA' reads back from CSV as a missing value"),
    ("channels", "null", "channels: 'null' reads back from CSV as a missing value"),
    ("channels", "", "channels: '' is empty or blank"),
    ("channels", "  ", "channels: '  ' is empty or blank"),
    ("categories", "None", "products.categories: 'None' reads back from CSV as a missing value"),
    ("calendar", "N/A", "calendar[0].name: 'N/A' reads back from CSV as a missing value"),
    ("countries", "G\tB", "countries: 'G\\tB' holds a control character \\t (names go into "
                          "file names, JSON and Markdown); choose another name"),
    ("countries", "DE\n", "countries: 'DE\\n' holds a control character \\n"),
    ("channels", "e\x85mail", "channels: 'e\\x85mail' holds a control character \\x85"),
    ("categories", "bo\x1boks", "products.categories: 'bo\\x1boks' holds a control character"),
    ("calendar", "promo\r", "calendar[0].name: 'promo\\r' holds a control character \\r"),
])
def test_a_name_the_data_files_cannot_carry_is_refused(tmp_path, run, key, name, message):
    """A segment named '' or 'NA' (Namibia's code) was generated, exit 0, and run_analysis then
    refused ShockLab's own data set: "orders.csv: column 'country' has an empty/NaN value". A tab
    or newline in one ('G\\tB', 'DE\\n') was generated and analysed, exit 0, with insights.md's
    headings and the error lines naming it broken across lines."""
    raw = tiny_config()
    if key == "countries":
        raw["countries"] = {name: 0.6, "DE": 0.4}
    elif key == "channels":
        raw["channels"] = {name: raw["channels"]["organic"], "email": raw["channels"]["email"]}
    elif key == "categories":
        raw["products"]["categories"] = {name: {"weight": 0.5, "price_median": 80.0},
                                         "books": {"weight": 0.5, "price_median": 15.0}}
    else:
        raw["calendar"][0]["name"] = name
    out = tmp_path / "data"
    r = run("--config", str(write(tmp_path, raw)), "--out", str(out), "--quiet")
    assert r.returncode == 2 and message in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert not out.exists()


@pytest.mark.parametrize(("how", "name", "escaped"), [
    ("yaml", "a\n# Injected heading\n", "\\n"),
    ("yaml", "ti\x00ny", "\\x00"),
    ("set", "x\ty", "\\t"),
    ("random_world", "a\nb", "\\n"),
])
def test_a_scenario_name_with_a_control_character_is_refused(tmp_path, run, how, name, escaped):
    """The scenario's name heads insights.md ("Data: <scenario> · …"): a newline in it was
    generated, exit 0, and the analysis wrote it raw there, a Markdown heading of its own; a
    NUL or tab went through as well. A random world's was an internal error (exit 3): its
    store is validated while it is drawn."""
    import json

    raw = tiny_config()
    args = []
    if how == "yaml":
        raw["scenario"] = name
    elif how == "set":
        args = ["--set", f"scenario={json.dumps(name)}"]
    else:
        raw = {"scenario": name, "seed": 3, "world": {}}
    out = tmp_path / "data"
    r = run("--config", str(write(tmp_path, raw)), "--out", str(out), "--quiet", *args)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert f"scenario: {name!r} holds a control character {escaped} (names go into file " \
        "names, JSON and Markdown); choose another name" in lines[0], lines[0]
    assert not out.exists()
    # a name of any printable text (not ASCII only) is still a name
    raw = tiny_config()
    raw["scenario"] = "Café – Q4 #2"
    assert run("--config", str(write(tmp_path, raw)), "--out", str(out), "--quiet").returncode == 0
    assert json.loads((out / "manifest.json").read_text())["scenario"] == "Café – Q4 #2"


def test_numbers_at_their_bounds_generate_data_the_analysis_reads(tmp_path, run):
    """Every relative weight at 1e-6 or 1e6 and list prices up to the dearest allowed (1e6): the
    sums stay finite and positive (no numpy warning, no empty world), and the analysis' loader
    takes every amount (none above its 1e12)."""
    import math
    import warnings

    from analytics.loading import MAX_ABS, load_data_dir

    raw = tiny_config(events=[], calendar=[])
    raw["channels"]["organic"]["share"] = 1e6
    raw["channels"]["email"].update(share=1e-6, conversion=1e-6)
    raw["countries"] = {"US": 1e6, "DE": 1e-6}
    raw["products"]["categories"] = {
        "gadgets": {"weight": 1e6, "price_median": 1e6, "price_sigma": 0.0},
        "books": {"weight": 1e-6, "price_median": math.floor(1e6 / math.exp(6 * 0.5))}}
    raw["traffic"].update(weekly=[1e-6] * 6 + [1e6])
    raw["basket"] = {"items_mean": 20, "quantity_mean": 20, "discount_levels": [0.0, 0.5],
                     "discount_probs": [1e6, 1e-6], "hour_profile": [0.0] * 23 + [1e6]}
    out = tmp_path / "data"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = run("--config", str(write(tmp_path, raw)), "--out", str(out), "--quiet")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    orders = load_data_dir(out).tables["orders"]
    assert len(orders) > 100 and set(orders.country) == {"US"}
    assert 1e8 < orders.gross_revenue.max() < MAX_ABS


@pytest.mark.parametrize("seed", [0, 2**44 + 1, 2**63 - 1])
def test_extreme_seeds_generate_without_warnings(tmp_path, run, seed):
    """Seeds above ~1.8e13 printed numpy's 'overflow encountered in scalar multiply' on stderr
    (even with --quiet), from the product keys' uint64 arithmetic; the keys were right."""
    import warnings

    out = tmp_path / "data"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = run("--config", str(write(tmp_path, tiny_config())), "--out", str(out), "--quiet",
                f"--seed={seed}")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert yaml.safe_load((out / "manifest.json").read_text())["seed"] == seed


def test_the_default_config_is_found_from_any_directory(tmp_path, run, monkeypatch, capsys):
    """`shocklab generate` anywhere but the repository root said 'config/simulation.yaml: config
    file not found' (the default was read against the current directory), while `analyse` finds
    config/analysis.yaml from anywhere. An explicit relative --config stays relative to it."""
    from shocklab import main as cli

    monkeypatch.chdir(tmp_path)
    out = tmp_path / "data"
    # the shipped file is read (a --set that cannot fit its calendar names it and the YAML path)
    r = run("--out", str(out), "--set", "period.end=2024-02-29")
    shipped = ROOT / "config" / "simulation.yaml"
    assert r.returncode == 2 and r.stderr.startswith(f"error: {shipped} (with --set/--seed): "
                                                     "calendar[0]"), r.stderr
    assert r.stderr.count("\n") == 1
    assert cli.main(["generate", "--out", str(out), "--set", "period.end=2024-02-29"]) == 2
    assert capsys.readouterr().err == r.stderr and not out.exists()
    # from the repository root it is named as before (README: the 'tiktok' message)
    monkeypatch.chdir(ROOT)
    r = run("--out", str(out), "--set", "events.2.scope.channel=tiktok")
    assert r.stderr.startswith("error: config/simulation.yaml (with --set/--seed): events[2]")
    # an explicit relative --config: the current directory's, not the repository's
    monkeypatch.chdir(tmp_path)
    r = run("--config", "config/simulation.yaml", "--out", str(out))
    assert r.returncode == 2 and "config/simulation.yaml: config file not found" in r.stderr
    write(tmp_path, tiny_config())
    r = run("--config", "scenario.yaml", "--out", "data", "--quiet")
    assert r.returncode == 0, r.stderr
    assert (out / "manifest.json").is_file()


def test_the_size_guard_counts_the_events_and_calendar_uplifts(tmp_path, run):
    """The ceiling was checked on base sessions x profile x conversion only: a 20-fold fraud wave
    (or a +500 % level shift, a x121 calendar entry) over the period went past it and allocated
    20 times the orders the guard had allowed."""
    from simulation.config import build_config, estimate_size

    quiet = estimate_size(build_config(tiny_config(events=[], calendar=[])))["orders"]
    fraud = {"type": "fraud_orders", "start": "2025-01-01", "duration_days": 90,
             "extra_orders_pct": 20.0}
    with_fraud = estimate_size(build_config(tiny_config(events=[fraud], calendar=[])))["orders"]
    assert with_fraud > 15 * quiet
    ceiling = str(round(3 * quiet))
    for raw, code in ((tiny_config(events=[], calendar=[]), 0),
                      (tiny_config(events=[fraud], calendar=[]), 2)):
        out = tmp_path / f"d{code}"
        r = run("--config", str(write(tmp_path, raw)), "--out", str(out), "--max-orders", ceiling,
                "--quiet")
        assert r.returncode == code, r.stderr
        assert out.exists() == (code == 0)
    assert "traffic.base_sessions: the world would hold about" in r.stderr
    assert "the calendar's and events' uplifts on top" in r.stderr
    # a fraud wave on a small channel weighs by that channel's share of the orders
    scoped = {**fraud, "scope": {"channel": "email"}}
    with_scoped = estimate_size(build_config(tiny_config(events=[scoped], calendar=[])))["orders"]
    assert quiet < with_scoped < with_fraud


def test_the_size_guard_names_memory_below_a_gigabyte_in_mb(tmp_path, run):
    """A small --max-orders (or SHOCKLAB_MAX_ORDERS) ceiling said the machine needed '~0 GB of
    memory to spare': the estimate below 1 GB was rounded to 0."""
    from simulation.config import build_config, estimate_size

    orders = estimate_size(build_config(tiny_config()))["orders"]
    r = run("--config", str(write(tmp_path, tiny_config())), "--out", str(tmp_path / "d"),
            "--max-orders", str(round(orders / 2)), "--quiet")
    assert r.returncode == 2, r.stderr
    assert "~0 GB" not in r.stderr and f"~{max(orders * 3e-4, 1):,.0f} MB of memory" in r.stderr
    from simulation.config import _memory

    assert _memory(604_820) == "181 MB" and _memory(1_000) == "1 MB"
    assert _memory(120_963_984) == "36 GB" and _memory(3_200_000) == "1 GB"


def test_calendar_occurrences_that_only_touch_are_one_entry_and_apply_once():
    """The overlap rule is about shared days: occurrences back to back (3 and 5 March, two days
    each) are valid, and each day is planned once with the entry's uplift applied once."""
    from simulation.calendar import calendar_multipliers, marketing_calendar_table
    from simulation.config import build_config

    cfg = build_config(_bad({"calendar.0.dates": ["2025-03-05", "2025-03-03"]}), "test")
    traffic, _ = calendar_multipliers(cfg, (cfg.period.end - cfg.period.start).days + 1)
    planned = (traffic[:, 0] != 1).nonzero()[0]
    assert planned.tolist() == [61, 62, 63, 64]   # 3-6 March, day 0 = 1 January
    assert set(traffic[planned, 0]) == {1.5}      # traffic_uplift 0.5, once
    dates = marketing_calendar_table(cfg).to_pandas()["date"].astype(str).tolist()
    assert dates == ["2025-03-03", "2025-03-04", "2025-03-05", "2025-03-06"]
