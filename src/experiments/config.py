"""Experiment files (``config/experiments/*.yaml``): pydantic models, loading and path resolution.

An experiment names a base scenario and a base analysis config, the overrides to sweep (a
``grid`` crossed with an optional explicit list of ``settings``), the seeds, the metrics to
collect and rank by, and — for ``kind: detectability`` — the shocks whose magnitude and
duration are swept. Override keys are dotted paths prefixed by the config they change:
``scenario.events.0.params.drop_pct`` or ``analysis.detectors.rolling_zscore.threshold``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shocklab.configio import apply_overrides, load_yaml, validate
from shocklab.errors import InputError

from .drops import drops_as_mapping, is_fraction, max_drop_problem

OVERRIDE_TARGETS = ("scenario", "analysis")
# the file's mappings keyed by dotted paths: ``--set analysis_overrides.detectors.x.window=3`` sets
# the key ``detectors.x.window`` there (it nested a ``detectors`` mapping, which replaced the whole
# detectors section of the analysis: every other detector was gone without a word); a per-metric
# gate.max_drop is keyed by metric names, which hold dots too
DOTTED_KEY_MAPPINGS = (("grid",), ("scenario_overrides",), ("analysis_overrides",),
                       ("settings", int), ("gate", "max_drop"))
DEFAULT_METRICS = [
    "consensus.recall",
    "consensus.precision",
    "consensus.f1",
    "consensus.median_delay_days",
]
# One experiment's size, counted from the file before anything is expanded: a grid of a few long
# lists multiplies into millions of settings, which ``grid_settings`` would build (and hash) one
# by one — minutes and gigabytes before any message (98 M settings: 5 GB, no output after 5 min).
MAX_CELLS = 100_000
_CHECK_RE = re.compile(r"^\s*([A-Za-z0-9_.\-\[\]]+)\s*(>=|<=|>|<)\s*([-+0-9.eE]+)\s*$")


# for the schema (editors): what check_override_key and the seed validators refuse, which
# JSON Schema does not see otherwise (a grid key without its 'analysis.' passed)
OVERRIDE_KEY_SCHEMA = {"pattern": r"^(analysis\.(?!base$).+|scenario\.(?!seed$).+)$"}
SEED_LIST_SCHEMA = {"minItems": 1, "uniqueItems": True}   # applies to the list form only


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_override_key(key: str) -> str:
    """``scenario.x.y`` / ``analysis.x.y``; the scenario seed comes from ``seeds:``, never a
    grid."""
    target, _, rest = key.partition(".")
    if target not in OVERRIDE_TARGETS or not rest:
        raise ValueError(f"override key {key!r} must start with 'scenario.' or 'analysis.'")
    if key == "scenario.seed":
        raise ValueError("scenario.seed is set by 'seeds:', not by an override")
    if key == "analysis.base":   # read from the file before any override: 'base: unknown key'
        raise ValueError("analysis.base is read from the analysis file itself; put 'base: none' "
                         "in that file, or point analysis: at another file")
    return key


def higher_is_better(metric: str) -> bool:
    """Delays, false-positive counts, false-alert rates (``false_alerts.consensus``,
    ``false_alerts.detectors.<name>``, ``false_alerts.by_dimension.<dim>.consensus`` / ``…
    .detectors.<name>``; false positives per dimension, ``….fp_by_dimension.<dim>``) and the
    events the bound lost (``oracle_equal_fp.seen_at_cut``) improve downwards; every other metric
    upwards."""
    parts = metric.split(".")
    last = parts[-1]
    if parts[0] == "false_alerts" and len(parts) > 1 and parts[1] in ("consensus", "detectors"):
        return False
    if parts[:2] == ["false_alerts", "by_dimension"] and len(parts) > 3 \
            and parts[3] in ("consensus", "detectors"):
        return False
    return not ("delay" in last or last.startswith(("fp", "false_positive"))
                or last in ("count", "seen_at_cut")
                or (len(parts) > 1 and parts[-2] == "fp_by_dimension"))   # fp_by_dimension.<dim>


# A seed is an integer as written: YAML ``true`` (pydantic's lax int read it as seed 1) or
# ``2.0`` is refused, not converted.
Seed = Annotated[int, Field(ge=0, strict=True)]


class SeedRange(Strict):
    count: Annotated[int, Field(ge=1, le=10_000, strict=True)]
    start: Seed = 0


class Bootstrap(Strict):
    resamples: Annotated[int, Field(ge=100, le=100_000)] = 2000
    confidence: Annotated[float, Field(gt=0.5, lt=1.0)] = 0.95
    seed: Annotated[int, Field(ge=0)] = 0


class Gate(Strict):
    checks: list[str] = Field(default_factory=list, description='e.g. "consensus.recall>=0.9"',
                              json_schema_extra={"items": {"pattern": _CHECK_RE.pattern}})
    max_drop: float | dict[str, float] = Field(
        0.0, description="baseline mode: tolerated worsening of a metric's mean beyond the "
        "noise, in the metric's own units (0.05: five points of recall); one number for every "
        "compared metric, or per metric ({consensus.recall: 0.02, "
        "consensus.median_delay_days: 1}; 'default' for the others, else 0); below 1 for a "
        "recall, precision or F1",
        json_schema_extra={"anyOf": [
            {"type": "number", "minimum": 0},
            {"type": "object", "additionalProperties": {"type": "number", "minimum": 0}}]})

    @field_validator("max_drop", mode="before")
    @classmethod
    def _drops(cls, v: Any) -> Any:
        def bad(x: Any) -> bool:
            return (isinstance(x, bool) or not isinstance(x, int | float)
                    or not math.isfinite(x) or x < 0)

        if isinstance(v, dict):
            for k, x in v.items():
                if not isinstance(k, str) or bad(x):
                    raise ValueError(f"{k!r}: {x!r} is not a drop (a number >= 0 in the "
                                     "metric's own units)")
        elif bad(v):
            raise ValueError(f"{v!r} is not a drop: give a number >= 0 (every compared metric) "
                             "or a mapping of metric to number (consensus.recall: 0.05)")
        return v

    @field_validator("checks")
    @classmethod
    def _syntax(cls, v: list[str]) -> list[str]:
        for text in v:
            check = _check(text)
            if isinstance(check, str):
                raise ValueError(f"{text!r}: {check}")
        return v


class DetectabilityTarget(Strict):
    """One event type whose magnitude (× duration) is swept. ``events`` are complete event
    mappings of the scenario format (put several, spaced apart, for more power per world); the
    swept values are written into each at ``magnitude_key`` / ``duration_key`` (dotted, relative
    to the event)."""

    event_type: str = Field(min_length=1)
    magnitude_key: str = Field(min_length=1)
    magnitudes: list[float] = Field(min_length=1, description="weakest first")
    duration_key: str = "duration_days"
    durations: list[Annotated[int, Field(ge=1, le=120)]] = Field(default_factory=list)
    events: list[dict[str, Any]] = Field(min_length=1)

    @field_validator("magnitudes")
    @classmethod
    def _distinct(cls, v: list[float]) -> list[float]:
        if len(set(v)) != len(v):
            raise ValueError("magnitudes must be distinct")
        return v

    @model_validator(mode="after")
    def _types(self) -> DetectabilityTarget:
        for i, ev in enumerate(self.events):
            if ev.get("type") != self.event_type:
                raise ValueError(
                    f"events[{i}].type is {ev.get('type')!r}, expected {self.event_type!r}"
                )
        return self

    @model_validator(mode="after")
    def _swept_keys(self) -> DetectabilityTarget:
        """``magnitude_key`` names the shock's size (``detectability.swept_key_problem``)."""
        from .detectability import swept_key_problem

        if why := swept_key_problem(self.event_type, self.magnitude_key, self.duration_key,
                                    bool(self.durations)):
            raise ValueError(why)
        return self


class Detectability(Strict):
    targets: list[DetectabilityTarget] = Field(min_length=1)
    min_recall: Annotated[float, Field(gt=0.0, le=1.0)] = 0.8
    recall_metrics: list[str] | None = Field(
        None, description="recall columns to draw; default: consensus.recall and every "
                          "detectors.<name>.recall (the oracle included)")
    keep_scenario_events: bool = Field(
        False,
        description="keep the scenario's own events beside the swept ones (default: only the swept "
                    "type)",
    )

    @field_validator("targets")
    @classmethod
    def _one_target_per_type(cls, v: list[DetectabilityTarget]) -> list[DetectabilityTarget]:
        """Curves and the MDE are per event type: two targets of one type (a channel outage on
        paid_search and one on email) were pooled into one curve, their seeds counted twice."""
        first: dict[str, int] = {}
        for i, target in enumerate(v):
            if target.event_type in first:
                raise ValueError(
                    f"targets[{i}]: event_type {target.event_type!r} is swept by "
                    f"targets[{first[target.event_type]}] already (curves are per event type: "
                    "put both targets' events in one, or run two experiments)")
            first[target.event_type] = i
        return v


class Split(Strict):
    """Train/test split of seeds: tune on ``train``, report ``test`` (the leaderboard and
    ``summary.csv`` use test seeds only; ``leaderboard_train.csv`` shows the train seeds)."""

    train: list[Seed] | SeedRange = Field(json_schema_extra=SEED_LIST_SCHEMA)
    test: list[Seed] | SeedRange = Field(json_schema_extra=SEED_LIST_SCHEMA)
    run: Literal["both", "train", "test"] = Field("both", description="which seeds to run")

    @staticmethod
    def _list(v: list[int] | SeedRange) -> list[int]:
        return list(range(v.start, v.start + v.count)) if isinstance(v, SeedRange) else list(v)

    @property
    def train_seeds(self) -> list[int]:
        return self._list(self.train)

    @property
    def test_seeds(self) -> list[int]:
        return self._list(self.test)

    @model_validator(mode="after")
    def _disjoint(self) -> Split:
        both = set(self.train_seeds) & set(self.test_seeds)
        if both:
            raise ValueError(
                f"train and test share seed {min(both)}: a seed tuned on cannot be reported"
            )
        for name in ("train", "test"):
            seeds = self._list(getattr(self, name))
            if not seeds or len(set(seeds)) != len(seeds):
                raise ValueError(f"{name}: needs distinct seeds")
        return self


class ExperimentConfig(Strict):
    # not '.' / '..' (nor hidden): the default --out is runs/experiments/<name>; '..' wrote the
    # experiment over runs/ and '.' over runs/experiments, every other experiment's parent
    name: str = Field(pattern=r"^[A-Za-z0-9_\-][A-Za-z0-9_.\-]*$")
    kind: Literal["sweep", "detectability"] = "sweep"
    description: str = ""
    scenario: str = Field(min_length=1, description="scenario YAML (relative to cwd or this file)")
    analysis: str | None = Field(None, description="analysis YAML; the pipeline default if omitted")
    scenario_overrides: dict[str, Any] = Field(
        default_factory=dict, description="fixed, dotted keys (a mapping value merges into the "
        "mapping it names, as grid and settings values do)"
    )
    analysis_overrides: dict[str, Any] = Field(
        default_factory=dict, description="fixed, dotted keys (a mapping value merges into the "
        "mapping it names: consensus: {min_votes: 3} keeps the rest of the consensus)"
    )
    grid: dict[str, Annotated[list[Any], Field(min_length=1)]] = Field(
        default_factory=dict, json_schema_extra={"propertyNames": OVERRIDE_KEY_SCHEMA})
    settings: list[dict[str, Any]] = Field(
        json_schema_extra={"items": {"propertyNames": OVERRIDE_KEY_SCHEMA}},
        default_factory=list, description="explicit override sets, crossed with grid"
    )
    seeds: list[Seed] | SeedRange = Field(
        json_schema_extra=SEED_LIST_SCHEMA,
        default_factory=lambda: SeedRange(count=3)
    )
    split: Split | None = Field(None, description="train/test seeds (replaces seeds:)")
    metrics: list[str] = Field(default_factory=lambda: list(DEFAULT_METRICS), min_length=1)
    rank_by: str | None = None
    bootstrap: Bootstrap = Field(default_factory=Bootstrap)
    gate: Gate = Field(default_factory=Gate)
    detectability: Detectability | None = None

    @field_validator("grid")
    @classmethod
    def _grid_keys(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key in v:
            check_override_key(key)
        return v

    @field_validator("scenario_overrides")
    @classmethod
    def _no_seed(cls, v: dict[str, Any]) -> dict[str, Any]:
        if "seed" in v:   # every cell's seed replaced it: the run said nothing
            raise ValueError("seed: the scenario seed is set by 'seeds:', not by an override")
        return v

    @field_validator("analysis_overrides")
    @classmethod
    def _no_base(cls, v: dict[str, Any]) -> dict[str, Any]:
        for key in v:
            check_override_key(f"analysis.{key}")
        return v

    @field_validator("settings")
    @classmethod
    def _settings_keys(cls, v: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for i, entry in enumerate(v):
            for key in entry:
                try:
                    check_override_key(key)
                except ValueError as exc:
                    raise ValueError(f"settings[{i}]: {exc}") from None
        return v

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int] | SeedRange) -> list[int] | SeedRange:
        if isinstance(v, list) and (not v or len(set(v)) != len(v)):
            raise ValueError(
                "seeds must be a non-empty list of distinct integers (or {count, start})"
            )
        return v

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentConfig:
        if self.kind == "detectability" and self.detectability is None:
            raise ValueError("kind: detectability needs a 'detectability:' section")
        if self.kind == "sweep" and self.detectability is not None:
            raise ValueError("detectability: only allowed with kind: detectability")
        swept = list(self.grid) + [k for entry in self.settings for k in entry]
        if self.analysis is None and any(k.startswith("analysis.") for k in swept):
            raise ValueError(
                "grid/settings: overrides of 'analysis.' keys need an analysis: file to apply to"
            )
        if self.split is not None and "seeds" in self.model_fields_set:
            raise ValueError("seeds: give either seeds: or split: (train and test seeds), "
                             "not both")
        n_settings, what = self.setting_count()
        n_cells = n_settings * len(self.seed_list)
        if n_cells > MAX_CELLS:
            raise ValueError(
                f"{what}: {n_settings:,} settings × {len(self.seed_list):,} seeds = {n_cells:,} "
                f"cells, more than the {MAX_CELLS:,} one experiment may run; shorten the lists "
                "or split the sweep into several experiments"
            )
        if self.rank_by is not None and self.rank_by not in self.metrics:
            raise ValueError(
                f"rank_by: {self.rank_by!r} is not one of metrics ({', '.join(self.metrics)})"
            )
        gated = [c[0] for c in map(_check, self.gate.checks) if not isinstance(c, str)]
        problem = max_drop_problem(self.gate.max_drop, [*self.metrics, *gated])
        if problem:
            raise ValueError(problem)
        return self

    def setting_count(self) -> tuple[int, str]:
        """(at most how many settings the file expands to, the key that sets it) — counted, not
        built (duplicates, which the expansion drops, are counted)."""
        if self.detectability is not None:
            return sum(len(t.magnitudes) * max(1, len(t.durations))
                       for t in self.detectability.targets), "detectability.targets"
        return (max(1, len(self.settings)) * math.prod(len(v) for v in self.grid.values()),
                "grid/settings" if self.settings else "grid")

    @property
    def seed_list(self) -> list[int]:
        if self.split is not None:
            sp = self.split
            return (sp.train_seeds if sp.run != "test" else []) + (
                sp.test_seeds if sp.run != "train" else []
            )
        if isinstance(self.seeds, SeedRange):
            return list(range(self.seeds.start, self.seeds.start + self.seeds.count))
        return list(self.seeds)

    @property
    def rank_metric(self) -> str:
        return self.rank_by or self.metrics[0]


def _finite_bar(text: str) -> bool:
    """A gate's bar is a finite number: ``1e999`` reads as inf, a bar no mean can reach (the
    gate failed, exit 1, where the check itself was wrong)."""
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _bar_outside(metric: str, op: str, bar: float) -> str | None:
    """Why a bar on a figure between 0 and 1 cannot judge it (None when it can): above 1 no
    mean meets it (every run failed the gate, exit 1, for a mistyped check, as run_analysis.py's
    --min-recall refuses), below 0 every mean does."""
    if not is_fraction(metric):
        return None
    up = op in (">=", ">")
    # strictly above 1 or below 0 can never be met either (a mistyped ">1" failed every run)
    never = bar > 1 or (bar == 1 and op == ">") if up else bar < 0 or (bar == 0 and op == "<")
    always = bar < 0 if up else bar > 1
    if not (never or always):
        return None
    return (f"{metric} is between 0 and 1, so the bar {bar:g} can "
            f"{'never be met' if never else 'never be missed'}")


def _check(text: str) -> tuple[str, str, float] | str:
    """One gate check parsed, or what is wrong with it (the rules of ``gate.checks`` and
    ``--gate`` alike)."""
    m = _CHECK_RE.match(text)
    if not m:
        return "expected metric>=number (operators >=, >, <=, <)"
    if not _finite_bar(m.group(3)):
        return f"{m.group(3)!r} is not a finite number"
    return _bar_outside(m.group(1), m.group(2), float(m.group(3))) or (
        m.group(1), m.group(2), float(m.group(3)))


def parse_check(text: str) -> tuple[str, str, float]:
    """``"consensus.recall>=0.9"`` -> ``("consensus.recall", ">=", 0.9)``; InputError otherwise."""
    check = _check(text)
    if isinstance(check, str):
        raise InputError(f"--gate {text!r}: {check}")
    return check


def resolve_path(ref: str, experiment_file: Path) -> Path:
    """A path in an experiment file: as given (relative to cwd), else relative to the file's
    folder or the nearest folder above it that has it — so ``config/scenarios/small.yaml`` in
    ``config/experiments/x.yaml`` works from any working directory."""
    p = Path(ref)
    if p.is_absolute() or p.exists():
        return p
    for folder in experiment_file.resolve().parents:
        if (folder / p).exists():
            return folder / p
    return p


def _named_file(ref: str, experiment_file: Path, source: str, key: str) -> Path:
    """``resolve_path`` of the file the experiment's ``key`` names; one that exists nowhere is
    an error naming the experiment file and the key (it said only 'nope.yaml: not found')."""
    p = resolve_path(ref, experiment_file)
    if not p.exists():
        raise InputError(f"{source}: {key}: {ref}: config file not found (looked in the working "
                         f"directory and beside {experiment_file} and the folders above it)")
    if p.is_dir():  # was '<dir>: cannot read config file (IsADirectoryError)', neither file nor key
        raise InputError(f"{source}: {key}: {ref}: is a directory, not a config file")
    return p


class Experiment:
    """A validated experiment file with its base configs loaded (raw mappings, overrides
    applied)."""

    def __init__(self, config: ExperimentConfig, path: Path, scenario: dict[str, Any],
                 analysis: dict[str, Any] | None, scenario_path: Path, analysis_path: Path | None):
        self.config = config
        self.path = path
        self.scenario = scenario
        self.analysis = analysis
        self.scenario_path = scenario_path
        self.analysis_path = analysis_path


def load_experiment(path: str | Path, overrides: list[str] | None = None,
                    from_gate: int = 0) -> Experiment:
    """Load and validate an experiment file and the scenario/analysis files it names.

    ``overrides`` are ``--set`` strings on the experiment file itself (``seeds.count=2``), the
    last ``from_gate`` of them from ``--gate`` (errors name the flags given). Raises
    InputError naming the file and key on any problem; reads only, writes nothing.
    """
    path = Path(path)
    data, sets = drops_as_mapping(load_yaml(path), overrides)
    raw = plain(apply_overrides(data, sets, dotted=DOTTED_KEY_MAPPINGS))
    flags = (["--set"] if len(overrides or []) > from_gate else []) + (
        ["--gate"] if from_gate else [])   # --gate alone said "(with --set overrides)"
    source = str(path) + (f" (with {' and '.join(flags)} overrides)" if flags else "")
    cfg = validate(ExperimentConfig, raw, source)
    scenario_path = _named_file(cfg.scenario, path, source, "scenario")
    scenario = plain(load_yaml(scenario_path))
    from .grid import named_overrides

    scenario = named_overrides(
        scenario, [override_text(k, v) for k, v in cfg.scenario_overrides.items()],
        f"{source}: scenario_overrides")
    analysis = None
    analysis_path = None
    if cfg.analysis is not None:
        analysis_path = _named_file(cfg.analysis, path, source, "analysis")
        # layered over the shipped one, as --config
        from analytics.config import analysis_yaml, new_name_override

        analysis = plain(analysis_yaml(analysis_path))
        analysis = named_overrides(
            analysis,
            [new_name_override(override_text(k, v)) for k, v in cfg.analysis_overrides.items()],
            f"{source}: analysis_overrides")
    elif cfg.analysis_overrides:
        raise InputError(f"{source}: analysis_overrides: needs an 'analysis:' file to apply to")
    return Experiment(cfg, path, scenario, analysis, scenario_path, analysis_path)


def plain(obj: Any) -> Any:
    """YAML dates as ISO strings, so a mapping hashes as canonical JSON (the config models parse
    ISO strings back into dates)."""
    import datetime as dt

    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [plain(v) for v in obj]
    if isinstance(obj, (dt.date, dt.datetime)):
        return obj.isoformat()
    return obj


def override_text(key: str, value: Any) -> str:
    """One ``key=value`` string for ``apply_overrides``; JSON is valid YAML and keeps types
    (``"2025-06-10"`` stays a string, lists of event mappings survive)."""
    import json

    return f"{key}={json.dumps(value, sort_keys=True)}"

