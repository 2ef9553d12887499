"""Hostile YAML configs (audit-hostile): each was an internal error (exit 3) or ran for ever."""

from __future__ import annotations

import pytest
import yaml
from tests.simulation.simtools import tiny_config


def _experiment(*args):
    import run_experiment

    from shocklab.cli import run_cli

    return run_cli(run_experiment.main, [str(a) for a in args])


def _one_line(err: str, *needles: str) -> None:
    line = err.strip()
    assert len(line.splitlines()) == 1 and "internal error" not in line, line
    for n in needles:
        assert n in line, line


def _bomb(levels: int = 9) -> str:
    lines = ["_l0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    lines += [f"_l{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_in_an_experiment_is_refused_at_once(tmp_path, capsys):
    """9 lines of aliases of aliases (9^9 values): the experiment's first walk over the config
    (ISO dates) never ended."""
    sim = tmp_path / "sim.yaml"
    sim.write_text(yaml.safe_dump(tiny_config()))
    exp = tmp_path / "exp.yaml"
    exp.write_text(f"name: x\nkind: sweep\nscenario: {sim}\nseeds: [1]\n" + _bomb())
    assert _experiment("--config", exp, "--out", tmp_path / "runs") == 2
    _one_line(capsys.readouterr().err, str(exp), "aliases")
    assert not (tmp_path / "runs").exists()


def test_a_config_may_still_reuse_an_anchor(cli, tmp_path):
    raw = tiny_config()
    shared = {"share": 0.5, "conversion": 0.03, "new_customer_share": 0.3}
    raw["channels"] = {"organic": shared, "email": shared}   # dumped as &id001 / *id001
    cfg = tmp_path / "sim.yaml"
    cfg.write_text(yaml.safe_dump(raw, sort_keys=False))
    assert "*id001" in cfg.read_text()
    r = cli("generate", "--config", cfg, "--out", tmp_path / "data")
    assert r.returncode == 0, r.stderr


def test_a_yaml_nested_thousands_deep_is_one_line(cli, tmp_path):
    for name, text in (("brackets.yaml", "seed: " + "[" * 50_000 + "]" * 50_000 + "\n"),
                       ("indents.yaml", "x:\n" + "".join(" " * (i + 1) + f"k{i}:\n"
                                                         for i in range(3000)))):
        cfg = tmp_path / name
        cfg.write_text(text)
        r = cli("generate", "--config", cfg, "--out", tmp_path / "data")
        assert r.returncode == 2, r.stderr   # RecursionError: exit 3
        _one_line(r.stderr, str(cfg), "nested too deep")
    assert not (tmp_path / "data").exists()


def test_a_yaml_integer_of_5000_digits_is_one_line(cli, tmp_path):
    raw = yaml.safe_dump(tiny_config(), sort_keys=False)
    cfg = tmp_path / "sim.yaml"
    cfg.write_text(raw.replace("seed:", "seed: 1" + "0" * 5000 + " #", 1))
    r = cli("generate", "--config", cfg, "--out", tmp_path / "data")
    assert r.returncode == 2, r.stderr   # int() refuses > 4300 digits: ValueError, exit 3
    _one_line(r.stderr, str(cfg), "digits")


def test_a_set_value_nested_thousands_deep_is_one_line(cli, tmp_path):
    cfg = tmp_path / "sim.yaml"
    cfg.write_text(yaml.safe_dump(tiny_config()))
    r = cli("generate", "--config", cfg, "--out", tmp_path / "data",
            "--set", "seed=" + "[" * 30_000 + "]" * 30_000)
    assert r.returncode == 2, r.stderr   # RecursionError parsing the value: exit 3
    _one_line(r.stderr, "seed")



def test_an_alias_inside_what_it_names_is_one_line(tmp_path, capsys):
    """``seeds: &s [1, *s]`` is a list that contains itself: the experiment's first walk over the
    config (ISO dates) recursed to Python's limit (exit 3, RecursionError); a mapping the same."""
    from shocklab.yamlio import CyclicAliasError, safe_load

    sim = tmp_path / "sim.yaml"
    sim.write_text(yaml.safe_dump(tiny_config()))
    for key, text, where in (
            ("seeds", "seeds: &s [1, *s]\n", "seeds.1"),
            ("overrides", "seeds: [1]\nanalysis_overrides: &o {consensus: *o}\n",
             "analysis_overrides.consensus")):
        exp = tmp_path / f"{key}.yaml"
        exp.write_text(f"name: x\nkind: sweep\nscenario: {sim}\n" + text)
        assert _experiment("--config", exp, "--out", tmp_path / "runs") == 2
        _one_line(capsys.readouterr().err, str(exp), where, "contain itself")
    assert not (tmp_path / "runs").exists()
    # an anchor used twice is not a cycle; a cycle deeper down is named by its path
    assert safe_load("a: &x [1]\nb: *x\nc: *x\n") == {"a": [1], "b": [1], "c": [1]}
    with pytest.raises(CyclicAliasError, match=r"k\.0\.m"):
        safe_load("k:\n  - &m {n: 1, m: *m}\n")


def test_a_cyclic_config_is_refused_by_every_command(cli, tmp_path):
    raw = yaml.safe_dump(tiny_config(), sort_keys=False)
    cfg = tmp_path / "sim.yaml"
    cfg.write_text(raw + "extra: &e {again: *e}\n")
    r = cli("generate", "--config", cfg, "--out", tmp_path / "data")
    assert r.returncode == 2, r.stderr
    _one_line(r.stderr, str(cfg), "extra.again")
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(("name", "escaped"), [("VIP\n# Injected heading", "\\n"),
                                               ("At\x00Risk", "\\x00")])
def test_a_segment_name_with_a_control_character_is_one_line(cli, tiny_world, tmp_path, name,
                                                             escaped):
    """An RFM segment 'VIP\\n# Injected heading' was analysed, exit 0: the name in the customer
    CSVs, the monitor's SQLite and insights.md (a heading of its own); another key naming it
    split the error in two lines. Refused as a channel's is: one line naming the key."""
    segments = [{"name": name, "r": {"min": 4}, "f": {"min": 3}},
                {"name": "At Risk", "f": {"min": 3}, "overdue": {"min": 4, "max": 10}},
                {"name": "Lapsing", "f": {"min": 2}, "overdue": {"min": 1, "max": 4}}]
    raw = {"customers": {"plots": False, "rfm": {"segments": segments},
                         "actions": {"rules": [{"action": "call", "segments": [name]}]}},
           "insights": {"plots": False}}
    cfg = tmp_path / "analysis.yaml"
    cfg.write_text(yaml.safe_dump(raw, allow_unicode=True))
    out = tmp_path / "r"
    r = cli("analysis", "--data", tiny_world, "--config", cfg, "--out", out,
            "--detectors", "rolling_zscore", "--quiet")
    assert r.returncode == 2
    _one_line(r.stderr, f"error: {cfg}: customers.rfm.segments[0].name: {name!r} holds a control "
                        f"character {escaped} (names go into file names, JSON and Markdown); "
                        "choose another name")
    assert not out.exists()
    # a printable name (not ASCII only, '#' inside) is written as it is
    segments[0]["name"] = raw["customers"]["actions"]["rules"][0]["segments"][0] = "VIP – Q4 #1"
    cfg.write_text(yaml.safe_dump(raw, allow_unicode=True))
    r = cli("analysis", "--data", tiny_world, "--config", cfg, "--out", out,
            "--detectors", "rolling_zscore", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "VIP – Q4 #1" in (out / "customers" / "segments.csv").read_text(encoding="utf-8")
