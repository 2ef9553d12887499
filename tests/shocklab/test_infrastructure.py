"""Shared infrastructure: config loading and error paths, overrides, atomic directories, seeding."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, Field

from shocklab.atomic import atomic_dir
from shocklab.configio import apply_overrides, format_path, load_yaml, validate
from shocklab.errors import InputError
from shocklab.seeding import derive_int_seed, rng


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rate: float = Field(gt=0)


class Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[Inner] = []


def test_format_path():
    assert format_path(("events", 2, "scope", "channel")) == "events[2].scope.channel"
    assert format_path(()) == "<root>"


def test_validate_names_file_and_path():
    with pytest.raises(
        InputError,
        match=r"^cfg\.yaml: items\[1\]\.rate: Input should be greater than 0 \(got -1\)$",
    ):
        validate(Outer, {"items": [{"rate": 1}, {"rate": -1}]}, "cfg.yaml")
    with pytest.raises(InputError, match=r"^cfg\.yaml: items\[0\]\.speed: unknown key"):
        validate(Outer, {"items": [{"rate": 1, "speed": 2}]}, "cfg.yaml")
    with pytest.raises(InputError, match=r"\(\+1 more error\)$"):
        validate(Outer, {"items": [{"rate": -1}, {"rate": -2}]}, "cfg.yaml")


def test_a_whole_model_rule_is_the_file_and_its_message_without_root():
    """A rule across keys (a model validator) has no location: 'cfg.yaml: <root>: …' named
    pydantic's placeholder instead of a key; its message names the keys."""
    from pydantic import model_validator

    class Both(Outer):
        @model_validator(mode="after")
        def _one(self) -> Both:
            if not self.items:
                raise ValueError("items: at least one item is required")
            return self

    with pytest.raises(InputError) as exc:
        validate(Both, {}, "cfg.yaml")
    assert str(exc.value) == "cfg.yaml: items: at least one item is required"


@pytest.mark.parametrize("raw", ["nan", "inf", "-Infinity", float("nan"), float("-inf")])
def test_a_non_finite_number_says_it_must_be_finite(raw):
    """'--set detectors.rolling_zscore.sensitivity=nan' said "should be ≤ 90 (got 'nan')" (every
    comparison with NaN is false); a field without bounds took it silently."""

    class Bounded(BaseModel):
        model_config = ConfigDict(extra="forbid")
        sensitivity: float = Field(1.0, gt=0, le=90)

    class Open(BaseModel):
        model_config = ConfigDict(extra="forbid")
        factor: float = 1.0
        nested: list[Bounded] = []

    class Strict(BaseModel):
        model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
        factor: float = 1.0

    shown = repr(raw)
    for model, data, key in [
        (Bounded, {"sensitivity": raw}, "sensitivity"),
        (Open, {"factor": raw}, "factor"),
        (Open, {"nested": [{}, {"sensitivity": raw}]}, "nested[1].sensitivity"),
        (Strict, {"factor": raw}, "factor"),
    ]:
        with pytest.raises(InputError) as exc:
            validate(model, data, "cfg.yaml")
        assert str(exc.value) == f"cfg.yaml: {key}: must be a finite number (got {shown})"
    # a text field may hold the word; a finite number is untouched
    class Named(BaseModel):
        name: str = "x"
        factor: float = 1.0

    assert validate(Named, {"name": "nan", "factor": "1e3"}, "cfg.yaml").factor == 1000.0


@pytest.mark.parametrize("word", ["on", "yes", "true", "off", "no"])
def test_a_yaml_boolean_in_a_number_field_is_refused(word):
    """pydantic reads a YAML boolean as 1 or 0 in a number field: '--set sensitivity=on' ran
    at sensitivity 1.0 and 'duration_days: on' lasted one day, exit 0. A yes/no field, a field
    that takes either, and a number written as a number are untouched."""
    from pydantic import AliasChoices

    class Leaf(BaseModel):
        model_config = ConfigDict(extra="forbid")
        days: int = 1
        every: int = Field(7, validation_alias=AliasChoices("every", "old_every"))
        enabled: bool = True
        either: bool | float = 1.0

    class Root(BaseModel):
        model_config = ConfigDict(extra="forbid")
        sensitivity: float = 0.1
        leaves: list[Leaf] = []
        named: dict[str, Leaf] = {}
        weights: dict[str, float] = {}

    value = apply_overrides({}, [f"x={word}"])["x"]
    assert isinstance(value, bool)
    for data, key in [
        ({"sensitivity": value}, "sensitivity"),
        ({"leaves": [{}, {"days": value}]}, "leaves[1].days"),
        ({"named": {"a": {"old_every": value}}}, "named.a.old_every"),
        ({"weights": {"US": 0.5, "GB": value}}, "weights.GB"),
    ]:
        with pytest.raises(InputError) as exc:
            validate(Root, data, "cfg.yaml")
        assert str(exc.value).startswith(
            f"cfg.yaml: {key}: must be a number, not a yes/no (got {value!r}")
    ok = validate(Root, {"sensitivity": 2, "leaves": [{"enabled": value, "either": value,
                                                       "days": "3"}]}, "cfg.yaml")
    assert ok.sensitivity == 2.0 and ok.leaves[0].enabled is value
    assert ok.leaves[0].either is value and ok.leaves[0].days == 3


def test_load_yaml_errors(tmp_path):
    with pytest.raises(InputError, match="config file not found"):
        load_yaml(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(InputError, match="top level must be a mapping"):
        load_yaml(tmp_path / "list.yaml")
    (tmp_path / "empty.yaml").write_text("")
    assert load_yaml(tmp_path / "empty.yaml") == {}
    (tmp_path / "bad.yaml").write_text("a: [1, 2\n")
    with pytest.raises(InputError, match=r"invalid YAML at line \d+, column \d+"):
        load_yaml(tmp_path / "bad.yaml")


def test_apply_overrides_parses_yaml_values_and_indices():
    raw = {"a": {"b": 1}, "events": [{"x": 1}, {"x": 2}]}
    out = apply_overrides(raw, ["a.b=2.5", "events[1].x=[1, 2]", "events.0.x=off", "new.key=hello"])
    assert out == {
        "a": {"b": 2.5},
        "events": [{"x": False}, {"x": [1, 2]}],
        "new": {"key": "hello"},
    }
    assert raw == {"a": {"b": 1}, "events": [{"x": 1}, {"x": 2}]}  # input untouched
    for bad, msg in [("novalue", "expected dotted.key=value"), ("events.5.x=1", "out of range"),
                     ("a.b.c=1", "is not a mapping"), ("a..b=1", "empty key segment")]:
        with pytest.raises(InputError, match=msg):
            apply_overrides(raw, [bad])


def test_set_addresses_an_existing_key_that_holds_dots():
    """An experiment's grid and *_overrides are keyed by dotted paths: '--set
    analysis_overrides.detectors.x.enabled=true' made a nested 'detectors' mapping beside the
    file's key (applied, it replaced the whole detectors section), and '--set
    grid.analysis.sensitivity=[0.2]' a nested grid entry ('grid.analysis: should be a list')."""
    data = {"grid": {"analysis.sensitivity": [0.1, 0.3]},
            "analysis_overrides": {"detectors.x.enabled": False, "detectors.x": {"k": 1}},
            "events": [{"drop.pct": 0.5}]}
    out = apply_overrides(data, ["grid.analysis.sensitivity=[0.2]",
                                 "analysis_overrides.detectors.x.enabled=true",
                                 "grid.analysis.sensitivity.0=0.4",
                                 "events.0.drop.pct=0.7", "seeds.count=2"])
    assert out == {"grid": {"analysis.sensitivity": [0.4]},
                   "analysis_overrides": {"detectors.x.enabled": True, "detectors.x": {"k": 1}},
                   "events": [{"drop.pct": 0.7}], "seeds": {"count": 2}}
    assert data["grid"] == {"analysis.sensitivity": [0.1, 0.3]}          # a copy was changed
    # the longest key that exists wins; a path with no dotted key nests as before
    assert apply_overrides(data, ["analysis_overrides.detectors.x.k=2"])[
        "analysis_overrides"]["detectors.x"] == {"k": 2}
    assert apply_overrides({}, ["a.b.c=1"]) == {"a": {"b": {"c": 1}}}


def test_set_names_a_new_dotted_key_in_a_dotted_mapping():
    """'--set analysis_overrides.detectors.x.window=3' where the file had no such key nested a
    'detectors' mapping into the overrides: applied, it replaced the analysis' whole detectors
    section (only x was left, at code defaults, without a word)."""
    dotted = (("grid",), ("analysis_overrides",), ("settings", int))
    data = {"analysis_overrides": {"customers.enabled": False}, "grid": {"analysis.a": [1]},
            "settings": [{"analysis.b": 1}], "other": {}}
    out = apply_overrides(data, ["analysis_overrides.detectors.x.window=3",
                                 "grid.analysis.detectors.y.k=[1, 2]",
                                 "settings.0.analysis.c.d=4",
                                 "other.e.f=5"], dotted=dotted)
    assert out["analysis_overrides"] == {"customers.enabled": False, "detectors.x.window": 3}
    assert out["grid"] == {"analysis.a": [1], "analysis.detectors.y.k": [1, 2]}
    assert out["settings"] == [{"analysis.b": 1, "analysis.c.d": 4}]
    assert out["other"] == {"e": {"f": 5}}           # not a dotted mapping: nests as before
    # a mapping the file does not have yet, and an existing key that starts the path
    assert apply_overrides({}, ["analysis_overrides.a.b=1"], dotted=dotted) == {
        "analysis_overrides": {"a.b": 1}}
    assert apply_overrides({"analysis_overrides": {"detectors.x": {"k": 1}}},
                           ["analysis_overrides.detectors.x.k=2"], dotted=dotted) == {
        "analysis_overrides": {"detectors.x": {"k": 2}}}


def test_atomic_dir_replaces_only_on_success(tmp_path):
    target = tmp_path / "out"
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("first")
    assert (target / "a.txt").read_text() == "first"
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("second")
        raise RuntimeError("boom")
    assert (target / "a.txt").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temp debris
    with atomic_dir(target) as tmp:
        (tmp / "b.txt").write_text("third")
    assert sorted(p.name for p in target.iterdir()) == [
        ".shocklab-output",
        "b.txt",
    ]  # the marker: a ShockLab output


def test_atomic_dir_rejects_paths_under_files(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(InputError, match="not a directory"), atomic_dir(tmp_path / "f" / "out"):
        pass


def test_seeding_is_stable_and_name_separated():
    assert rng(1, "a").random() == rng(1, "a").random()
    assert rng(1, "a").random() != rng(1, "b").random()
    assert rng(1, "a").random() != rng(2, "a").random()
    s = derive_int_seed(42, "isolation_forest")
    assert s == derive_int_seed(42, "isolation_forest") and 0 <= s < 2**31


def test_an_entry_without_its_type_says_so():
    """A misspelt detector name ('--set detectors.rolling_zscor.threshold=3') made a new entry
    without a type: "Unable to extract tag using discriminator 'type'"."""
    from typing import Annotated, Literal

    class A(BaseModel):
        model_config = ConfigDict(extra="forbid")
        type: Literal["a"] = "a"
        threshold: float = 1.0

    class B(BaseModel):
        model_config = ConfigDict(extra="forbid")
        type: Literal["b"] = "b"

    Tagged = Annotated[A | B, Field(discriminator="type")]

    class Root(BaseModel):
        model_config = ConfigDict(extra="forbid")
        detectors: dict[str, Tagged] = {}
        events: list[Tagged] = []

    with pytest.raises(InputError) as exc:
        validate(Root, {"detectors": {"a": {"type": "a"}, "aa": {"threshold": 3}}}, "cfg.yaml")
    assert str(exc.value) == ("cfg.yaml: detectors.aa: has no 'type' key (a misspelt name? 'aa' "
                              "is a new entry, and a new one needs its 'type')")
    with pytest.raises(InputError) as exc:
        validate(Root, {"events": [{"type": "b"}, {"threshold": 3}]}, "cfg.yaml")
    assert str(exc.value) == "cfg.yaml: events[1]: has no 'type' key"


def test_set_a_key_inside_a_list_names_the_list():
    """'--set seeds.count=2' where the file says 'seeds: [1, 2]' said "index 'count' out of
    range"."""
    for item in ("seeds.count=2", "seeds.x.y=1"):
        with pytest.raises(InputError) as exc:
            apply_overrides({"seeds": [1, 2]}, [item])
        assert str(exc.value).startswith(f"--set {item!r}: seeds is a list of 2, not a mapping: ")
    with pytest.raises(InputError, match=r"index 5 out of range"):
        apply_overrides({"seeds": [1, 2]}, ["seeds.5=1"])
