"""The committed config JSON Schemas match the pydantic models, and every shipped YAML validates
against its schema (what an editor with the schema would say)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import export_schemas  # noqa: E402


@pytest.mark.parametrize("name", sorted(export_schemas.MODELS))
def test_committed_schema_matches_model(name):
    committed = (ROOT / "schemas" / f"{name}.schema.json").read_text(encoding="utf-8")
    assert committed == export_schemas.schema_text(name), "run: python tools/export_schemas.py"


def _sim_schema(path: Path) -> str:
    """Random-world scenarios (a top-level world: section) have their own schema."""
    return "world" if "world" in (yaml.safe_load(path.read_text()) or {}) else "simulation"


FILES = (
    [
        (_sim_schema(p), p)
        for p in [
            ROOT / "config" / "simulation.yaml",
            *sorted((ROOT / "config" / "scenarios").glob("*.yaml")),
        ]
    ]
    + [("analysis", ROOT / "config" / "analysis.yaml")]
    + [("experiment", p) for p in sorted((ROOT / "config" / "experiments").glob("*.yaml"))]
)


@pytest.mark.parametrize(("name", "path"), FILES, ids=[str(p.relative_to(ROOT)) for _, p in FILES])
def test_shipped_configs_validate_against_schema(name, path):
    schema = json.loads((ROOT / "schemas" / f"{name}.schema.json").read_text())
    # YAML dates become date objects; JSON has strings
    data = json.loads(json.dumps(yaml.safe_load(path.read_text()) or {}, default=str))
    jsonschema.validate(data, schema)


def test_schema_rejects_a_misspelt_key():
    schema = json.loads((ROOT / "schemas" / "simulation.schema.json").read_text())
    data = json.loads(
        json.dumps(yaml.safe_load((ROOT / "config" / "simulation.yaml").read_text()), default=str)
    )
    data["traffic"]["base_sesions"] = 1
    with pytest.raises(jsonschema.ValidationError, match="base_sesions"):
        jsonschema.validate(data, schema)


def _analysis_errors(data: dict) -> list[str]:
    schema = json.loads((ROOT / "schemas" / "analysis.schema.json").read_text())
    return [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(data)]


def _loads(load, arg) -> bool:
    """Whether the loader accepts it (InputError: refused)."""
    from shocklab.errors import InputError

    try:
        load(arg)
    except InputError:
        return False
    return True


def test_analysis_schema_reads_a_file_as_the_loader_layers_it(tmp_path):
    """A --config file names only what it changes (layered over config/analysis.yaml): the
    schema flagged `detectors: {rolling_zscore: {window: 21}}` — valid under several detector
    types, so under none of the schema's oneOf — where the loader runs it. Entries the loader
    refuses (a new name without its type, any entry of a `base: none` file without one, a
    misspelt key) stay refused."""
    from analytics.config import load_analysis_config

    cases = [
        ({"detectors": {"rolling_zscore": {"window": 21}}}, True),
        ({"detectors": {"isolation_forest": {"n_estimators": 50, "sensitivity": 0.3}}}, True),
        ({"detectors": {"rolling_zscore": {"type": "count_likelihood"}}}, True),
        ({"detectors": {"rz2": {"type": "rolling_zscore", "window": 21}}}, True),
        ({"external": {"detectors": {"ls": {"type": "level_shift"}}}}, True),
        ({"detectors": {"rolling_zscore": {"windw": 21}}}, False),
        ({"detectors": {"rolling_zscore": {"type": "count_likelihood", "method": "mean_std"}}},
         False),
        ({"detectors": {"rz2": {"n_estimators": 50}}}, False),
        ({"external": {"detectors": {"ls": {"window": 3}}}}, False),
        ({"base": "none", "detectors": {"rolling_zscore": {"window": 21}}}, False),
        ({"base": "none", "detectors": {"rolling_zscore": {"type": "rolling_zscore"}}}, True),
    ]
    for i, (data, ok) in enumerate(cases):
        path = tmp_path / f"c{i}.yaml"
        path.write_text(yaml.safe_dump(data))
        assert _loads(load_analysis_config, path) is ok, data
        assert (not _analysis_errors(data)) is ok, (data, _analysis_errors(data)[:1])


def test_analysis_schema_checks_kpi_names_and_reads_on_off_as_the_loader_does():
    """The schema passed `kpis: [ordrs]`, `dimensions: [channel]` and `insights.plot_kpis:
    [foo]` (the models refuse them in validators, which it did not see) and refused the
    documented `product_prices: on` (a YAML 1.1 boolean to PyYAML, read as 'on' by the model)."""
    from analytics.config import config_from_raw

    shipped = yaml.safe_load((ROOT / "config" / "analysis.yaml").read_text())
    cases = [({"kpis": ["ordrs"]}, False), ({"dimensions": ["channel"]}, False),
             ({"insights": {**shipped["insights"], "plot_kpis": ["foo"]}}, False),
             ({"slice_kpis": {"category": ["ordrs"]}}, False),
             ({"kpis": ["revenue", "units"]}, True), ({"product_prices": True}, True),
             ({"product_prices": False}, True), ({"product_prices": "on"}, True),
             ({"product_prices": "maybe"}, False)]
    for change, ok in cases:
        data = json.loads(json.dumps({**shipped, **change}, default=str))
        assert _loads(config_from_raw, data) is ok, change
        assert (not _analysis_errors(data)) is ok, (change, _analysis_errors(data)[:1])


def test_experiment_schema_refuses_what_the_experiment_model_refuses():
    """The experiment schema passed a grid key without its 'analysis.' / 'scenario.' (and
    'scenario.seed', which seeds: sets), repeated or no seeds and a gate check that is not
    'metric>=number': the model refuses them in validators the schema did not see."""
    from experiments.config import ExperimentConfig
    from shocklab.configio import validate

    schema = json.loads((ROOT / "schemas" / "experiment.schema.json").read_text())
    base = json.loads(json.dumps(yaml.safe_load(
        (ROOT / "config" / "experiments" / "detector_sweep.yaml").read_text()), default=str))
    cases = [({"grid": {"detectors.rolling_zscore.threshold": [3]}}, False),
             ({"grid": {"scenario.seed": [1, 2]}}, False),
             ({"grid": {"scenario.events.0.drop_pct": [0.5]}}, True),
             ({"settings": [{"consensus.combine": "vote"}]}, False),
             ({"settings": [{"analysis.consensus.combine": "vote"}]}, True),
             ({"seeds": [1, 1]}, False), ({"seeds": []}, False), ({"seeds": [1, 2]}, True),
             ({"gate": {"checks": ["consensus.recall>>0.9"]}}, False),
             ({"gate": {"checks": ["consensus.recall >= 0.9"]}}, True)]
    for change, ok in cases:
        data = {**base, **change}
        assert _loads(lambda d: validate(ExperimentConfig, d, "x"), data) is ok, change
        errors = list(jsonschema.Draft202012Validator(schema).iter_errors(data))
        assert (not errors) is ok, (change, [e.message for e in errors][:1])


@pytest.mark.parametrize("argv", [["--help"], ["--chek"]])
def test_export_tool_writes_nothing_on_help_or_an_unknown_flag(tmp_path, argv, capsys,
                                                               monkeypatch):
    """`tools/export_schemas.py --help` rewrote every schema (any argument but --check did)."""
    monkeypatch.setattr(export_schemas, "ROOT", tmp_path)
    (tmp_path / "schemas").mkdir()
    with pytest.raises(SystemExit) as exc:
        export_schemas.main(argv)
    assert exc.value.code == (0 if argv == ["--help"] else 2)
    assert list((tmp_path / "schemas").iterdir()) == []
    out = capsys.readouterr()
    if argv == ["--help"]:
        assert "--check" in out.out
    else:
        assert out.err.count("\n") == 1 and "--chek" in out.err


def test_export_tool_check_reports_a_stale_schema_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(export_schemas, "ROOT", tmp_path)
    (tmp_path / "schemas").mkdir()
    assert export_schemas.main(["--check"]) == 1
    assert list((tmp_path / "schemas").iterdir()) == []
    assert export_schemas.main([]) == 0
    assert sorted(p.name for p in (tmp_path / "schemas").iterdir()) == sorted(
        f"{n}.schema.json" for n in export_schemas.MODELS)
    assert export_schemas.main(["--check"]) == 0


def test_export_tool_maps_an_internal_error_to_exit_3(monkeypatch, capsys):
    """A crash ended the tool with Python's exit 1, which --check uses for "a schema is stale"."""
    import runpy

    import analytics.config

    def boom():
        raise RuntimeError("boom")

    monkeypatch.setattr(analytics.config, "analysis_json_schema", boom)
    monkeypatch.setattr(sys, "argv", ["export_schemas.py", "--check"])
    with pytest.raises(SystemExit) as exc:
        runpy.run_path(str(ROOT / "tools" / "export_schemas.py"), run_name="__main__")
    assert exc.value.code == 3
    assert "internal error: RuntimeError: boom" in capsys.readouterr().err
