"""Configuration of the analysis (config/analysis.yaml), validated once at load.

Detectors are a mapping ``name -> settings`` whose ``type`` selects the detector class (a
discriminated union built from the registry), so one type can run twice under two names with
different settings, and sweeps override ``--set detectors.<name>.threshold=4``.

Size (~540 lines, one module on purpose): the top-level model and its section models (consensus,
scoring, external, output) with the checks across sections (a name in one section that another
must configure) — the schema export reads them as one model; customers and insights have their
own modules.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shocklab import configio
from shocklab.catalogue import DIMENSIONS, KPI_NAMES
from shocklab.configio import CONFIG_DIR, first_repeat, layered, load_config, load_yaml, validate
from shocklab.errors import InputError

from .config_checks import check_detector_lists
from .consensus import parse_duration
from .customers.config import CustomersConfig
from .detectors import REGISTRY
from .detectors.base import DEFAULT_SENSITIVITY
from .detectors.likelihood import LikelihoodSettings
from .insights_config import InsightsConfig

DEFAULT_CONFIG_PATH = CONFIG_DIR / "analysis.yaml"

DetectorSettings = Annotated[Union[tuple(cls.config_class for cls in REGISTRY.values())],  # noqa: UP007
                             Field(discriminator="type")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConsensusConfig(_Strict):
    tolerance_days: int = Field(
        2, ge=0, le=30, description="a vote counts within ± this many periods"
    )
    min_votes: int = Field(2, ge=1, le=20, description="k of n voting detectors must agree")
    required: list[str] = Field(
        default_factory=list, description="detectors that must be among the voters"
    )
    count_by: Literal["detector", "type"] = Field(
        "detector",
        description="type: detectors of the same type (e.g. two z-score variants) are one vote",
    )
    merge_gap_days: int = Field(
        1, ge=0, le=100_000, description="flagged periods this close form one incident"
    )
    onset_back: int = Field(
        0, ge=0, le=366,
        description="days an incident's onset may move back from its first consensus period "
        "along its voters' run of same-direction flags (each within merge_gap_days + 1 periods "
        "of the next; never onto a planned day or next to the series' previous incident): the "
        "day the move began, not the day the evidence crossed; the incident's `confirmed` keeps "
        "the day the rule held (detection delays count from it). 0 = the first consensus "
        "period; --kpis runs always use 0 (an alarm's time is its onset there)",
    )
    vote_sensitivity: float | None = Field(
        None,
        gt=0,
        le=90,
        description="votes on calibrated scores: a detector also votes where its score "
        "reaches the threshold of this sensitivity (false alerts per series per 90 days), "
        "flagged or not; "
        "a consensus period still needs one flag. null = only flags vote",
    )
    solo_sensitivity: float | None = Field(
        None,
        gt=0,
        le=90,
        description="strong evidence alone: a flagged period whose calibrated score reaches the "
        "threshold of this sensitivity (false alerts per series per 90 days, e.g. 0.003) is a "
        "consensus period without a second vote. null = off",
    )
    combine: Literal["vote", "stouffer"] = Field(
        "vote",
        description="vote: a consensus period needs min_votes detectors flagging within "
        "tolerance_days; stouffer: a flagged period whose combined calibrated evidence (its own "
        "score plus every other voter's best score within tolerance_days, Sidak-corrected, "
        "Stouffer-summed with correlation combine_rho) reaches the threshold of "
        "combine_sensitivity (min_votes and required unused; solo_sensitivity still applies)",
    )
    combine_sensitivity: float = Field(
        0.02,
        gt=0,
        le=90,
        description="stouffer: expected false alerts per series per 90 days of the combined "
        "evidence (Bonferroni over the voters as anchors; the solo path adds at most "
        "solo_sensitivity per voter)",
    )
    anchors: list[str] | None = Field(
        None,
        min_length=1,
        description="stouffer: the voters whose flag may anchor the combined test, by detector "
        "name or type (the Bonferroni of combine_sensitivity is over these); the others still "
        "add their evidence. If none of them votes in a run, every voter anchors (a warning). "
        "null = every voter",
    )
    combine_tolerance: int | None = Field(
        None,
        ge=0,
        le=30,
        description="stouffer: the other voters' evidence is their best score within ± this many "
        "periods (Sidak-corrected for the looks); null = tolerance_days",
    )
    combine_rho: float = Field(
        1.0,
        ge=0,
        le=1,
        description="stouffer: null correlation between the voters' calibrated scores "
        "(1 = safe whatever it is; fitted on shock-free train worlds)",
    )
    mute_calendar: bool = Field(
        True,
        description="drop consensus days that are in the observable marketing "
        "calendar (planned campaigns, holidays) on the series the day's scope concerns",
    )
    suppress: str | None = Field(
        "1d",
        description="alarm suppression: after a consensus incident starts on a series, "
        "incidents on the same series starting later but within this duration of it (e.g. 1d, "
        "6h) are dropped and counted in incidents.json 'suppressed'; null = off. 1d never drops "
        "anything on daily data",
    )

    @field_validator("suppress")
    @classmethod
    def _duration(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            td = parse_duration(str(v))
        except (ValueError, TypeError):
            raise ValueError(f"not a duration: {v!r} (e.g. 1d, 6h, 30min)") from None
        if td.value < 0:
            raise ValueError(f"negative duration: {v!r}")
        return str(v)


class ExternalConfig(_Strict):
    """Settings for external series (``--kpis`` input) only: real machine and business metrics at
    any step. Store data (``--data``, ``--transactions``) never reads them. The defaults are the
    grid point of ``bench/bench_nab.py --cv`` (without an extra detector) best on all NAB files
    (in-sample); the leave-one-category-out figures are in the README."""

    tail: Literal["pot", "fixed"] = Field(
        "fixed",
        description="calibrator tail of detectors whose calibration.tail is auto: pot (a "
        "generalized Pareto tail fitted on each series' own past) or fixed (the store-fitted "
        "Student-t)",
    )
    sensitivity: float | None = Field(
        3.0,
        gt=0,
        le=90,
        description="expected false alerts per series per 90 days on SUB-DAILY --kpis input "
        "(a step under one day; chosen on NAB's files, all sub-daily); daily or coarser input "
        "uses the analysis-wide `sensitivity` (null: every step does)",
    )
    suppress: str | None = Field(
        "6h",
        description="consensus alarm suppression on --kpis input (a duration, null = off)",
    )
    min_votes: int | None = Field(
        1, ge=1, le=20, description="consensus k on --kpis input (null = consensus.min_votes)"
    )
    merge_gap: str | None = Field(
        "1h",
        description="on --kpis input, flagged periods this close in time (a duration, e.g. 1h) "
        "form one incident: an alarm re-arms only after the series was quiet this long "
        "(null = consensus.merge_gap_days periods)",
    )

    solo: bool = Field(
        True,
        description="on --kpis input, keep consensus.solo_sensitivity as configured (null, off, "
        "in the shipped config: a single detector's flag reaching it is an incident without a "
        "second vote); false: forced off, every incident needs min_votes detectors",
    )
    detectors: dict[str, DetectorSettings] = Field(
        default_factory=dict,
        description="detectors added on --kpis input only (name -> settings as under "
        "`detectors`; switched on unless `enabled: false`; a name already under `detectors` is "
        "replaced), e.g. {level_shift: {type: level_shift}}",
    )
    likelihood: LikelihoodSettings | None = Field(
        None,
        description="on --kpis input, judge every voting detector's calibrated score against "
        "the series' own recent scores (detectors/likelihood.py: a spiky series needs a larger "
        "score); null = off",
    )

    early_min: int | None = Field(
        24,
        ge=2,
        le=10_000,
        description="on --kpis input, rolling_zscore scores sub-daily series before the seasonal "
        "factor exists (first two days; slots without one, e.g. a mostly-zero series) from this "
        "many reference periods of the file's step, on unadjusted values with a Student-t tail "
        "for the short reference (detectors/short_history.py); null = off (two-day warm-up)",
    )
    flat_floor: float | None = Field(
        1.0,
        ge=0,
        le=10,
        description="on --kpis input, rolling_zscore's spread never falls below this fraction of "
        "the std of the previous day of periods, and a departure from a perfectly flat reference "
        "scores a fixed large value (detectors/short_history.py); null = off (a flat reference "
        "gives no score)",
    )

    @field_validator("suppress", "merge_gap")
    @classmethod
    def _duration(cls, v: str | None) -> str | None:
        return ConsensusConfig._duration(v)


class ScoringConfig(_Strict):
    mode: Literal["strict", "lenient"] = Field(
        "strict", description="which mode gates and the headline use"
    )
    early_days: int = Field(
        1, ge=0, le=60, description="an incident may start this many days before the event"
    )
    late_days: int = Field(
        3, ge=0, le=60, description="… or start up to this many days after it ends"
    )
    min_effect: float = Field(
        0.03, ge=0, le=10, description="strict: the KPI moved at least this much (relative)"
    )
    include_oracle: bool = Field(True, description="run the oracle when truth exists")
    warmup_days: int = Field(
        0,
        ge=0,
        le=3650,
        description="unexpected events starting in the data's first "
        "days are scored apart (scorecard 'warmup'); 0 = none",
    )


class OutputConfig(_Strict):
    write_detections: bool = True
    float_digits: int = Field(6, ge=1, le=17, description="significant digits in CSV outputs")


# the schema's view of a list of KPI names (the models check them in validators, which JSON Schema
# does not see: an editor passed `kpis: [ordrs]`)
KPI_LIST_SCHEMA: dict[str, Any] = {"type": "array", "items": {"enum": list(KPI_NAMES)}}


def _on_off_schema(schema: dict[str, Any]) -> None:
    """A bare on / off is a YAML 1.1 boolean to PyYAML, and this model reads it (``_on_off``):
    the schema lets a file that says ``product_prices: on`` pass (it refused the documented
    value)."""
    schema["anyOf"] = [{"enum": schema.pop("enum")}, {"type": "boolean"}]
    schema.pop("type", None)


_DETECTOR_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")


def _check_detector_name(where: str, name: str, dtype: str) -> None:
    """A detector's name keys its rows in detections.csv, its scorecard entry, metric names
    (``detectors.<name>.f1``: a dot would split it), ``--detectors a,b`` and the run store, beside
    the consensus' own entries: an empty name ran under its type's name (its rows doubled that
    detector's) and ``consensus`` took the consensus' place in the scorecard's events."""
    if not _DETECTOR_NAME.fullmatch(name):
        raise ValueError(f"{where}: detector name {name!r} must start with a letter and hold only "
                         "letters, digits, '_' or '-' (at most 64)")
    if name == "consensus" or (name == "oracle" and dtype != "oracle"):
        raise ValueError(f"{where}.{name}: the name {name!r} is kept for the "
                         f"{'consensus' if name == 'consensus' else 'oracle (type oracle)'}")


class AnalysisConfig(_Strict):
    seed: int = Field(0, ge=0, le=2**32 - 1, description="master seed for seeded detectors")
    kpis: list[str] = Field(
        default_factory=lambda: ["revenue", "orders", "sessions", "conversion_rate", "aov"],
        json_schema_extra=KPI_LIST_SCHEMA,
    )
    dimensions: list[
        Literal["overall", "channel", "country", "category", "channel_country", "product"]
    ] = Field(
        default_factory=lambda: ["overall", "channel", "country", "category"],
        json_schema_extra={"contains": {"const": "overall"}},   # _check_names
        description="slices watched: overall plus channel, country, category, "
        "channel_country (every channel x country cell, see `pair_min_share`) and product "
        "(orders and list price of each product, see `product_min_orders`; watched by the "
        "product_watch detector only)",
    )
    pair_min_share: float = Field(
        0.0,
        ge=0,
        le=1,
        description="channel_country: watch only cells with at least this share of the orders",
    )
    product_min_orders: float = Field(
        1.0,
        ge=0,
        le=1_000_000,
        description="product: watch only products with at least this many orders a day on "
        "average over the data",
    )
    product_prices: Literal["auto", "on", "off"] = Field(
        "auto",
        json_schema_extra=_on_off_schema,
        description="product: watch each product's own price (its price test). auto = on for a "
        "store's list prices, off for a --transactions file, whose prices are what customers "
        "paid (discounts, quantity tiers move them every day: on the default world's orders as "
        "a transactions file ~9,100 price alarms, every one a discount). The list-price indexes "
        "of each category and of the store (a median over its products) are watched either way",
    )
    slice_kpis: dict[
        Literal["channel", "country", "category", "channel_country"], list[str]
    ] = Field(
        default_factory=dict,
        json_schema_extra={"additionalProperties": KPI_LIST_SCHEMA},
        description="KPIs watched per non-overall dimension (default: all of `kpis`)",
    )
    sensitivity: float = Field(
        DEFAULT_SENSITIVITY,
        gt=0,
        le=90,
        description="expected false alerts per series per 90 days of each "
        "detector on normal data (sets every detector's threshold on the calibrated scale)",
    )
    slice_threshold_add: float = Field(
        0.0,
        ge=0,
        le=50,
        description="on non-overall slices a flag needs |score| >= threshold + this (legacy; "
        "calibrated scores make it unnecessary)",
    )
    detectors: dict[str, DetectorSettings] = Field(
        default_factory=lambda: {name: cls.config_class() for name, cls in REGISTRY.items()}
    )
    consensus: ConsensusConfig = Field(default_factory=ConsensusConfig)
    external: ExternalConfig = Field(default_factory=ExternalConfig)
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    customers: CustomersConfig = Field(default_factory=CustomersConfig)
    insights: InsightsConfig = Field(default_factory=InsightsConfig)

    @field_validator("product_prices", mode="before")
    @classmethod
    def _on_off(cls, v: object) -> object:
        """YAML 1.1 reads a bare on / off (in a file, or ``--set product_prices=on``) as a
        boolean: those are the documented values, not an error."""
        return ("on" if v else "off") if isinstance(v, bool) else v

    @model_validator(mode="after")
    def _check_names(self) -> AnalysisConfig:
        for where, dets in (("detectors", self.detectors), ("external.detectors",
                                                            self.external.detectors)):
            for name, det in dets.items():
                _check_detector_name(where, name, det.type)
        lists = [("kpis", self.kpis), ("dimensions", self.dimensions),
                 ("consensus.required", self.consensus.required),
                 ("consensus.anchors", self.consensus.anchors or []),
                 *((f"slice_kpis.{d}", ks) for d, ks in self.slice_kpis.items()),
                 *((f"detectors.{n}.kpis", d.kpis or []) for n, d in self.detectors.items())]
        for where, names in lists:   # a repeated KPI: its series watched twice, the oracle failed
            if (twice := first_repeat(names)) is not None:
                raise ValueError(f"{where}: {twice!r} is listed twice")
        for k in self.kpis:
            if k not in KPI_NAMES:
                raise ValueError(f"kpis: unknown KPI {k!r} (known: {', '.join(KPI_NAMES)})")
        if not self.kpis:
            raise ValueError("kpis: at least one KPI is needed")
        if "overall" not in self.dimensions:
            raise ValueError("dimensions: must include 'overall'")
        for d in self.dimensions:
            assert d in (*DIMENSIONS, "channel_country", "product")
        for dim, ks in self.slice_kpis.items():
            for k in ks:
                if k not in self.kpis:
                    raise ValueError(
                        f"slice_kpis.{dim}: {k!r} is not an analysed KPI ({', '.join(self.kpis)})"
                    )
        check_detector_lists(self.kpis, self.detectors)
        for name in self.consensus.required:
            if name not in self.detectors:
                raise ValueError(
                    f"consensus.required: unknown detector {name!r} "
                    f"(configured: {', '.join(self.detectors)})"
                )
        for name in self.consensus.anchors or []:   # a name or a type: the shipped anchors
            if name not in self.detectors and name not in REGISTRY:   # survive `detectors={}`
                raise ValueError(
                    f"consensus.anchors: {name!r} is neither a configured detector "
                    f"({', '.join(self.detectors) or 'none'}) nor a detector type "
                    f"({', '.join(REGISTRY)})"
                )
        return self

    def voting_detectors(self) -> list[str]:
        return [n for n, d in self.detectors.items() if d.enabled and REGISTRY[d.type].votes]


def config_from_raw(raw: dict[str, Any] | None, source: str = "analysis config") -> AnalysisConfig:
    """Validate an already-loaded mapping (None = the shipped config/analysis.yaml)."""
    if raw is None:
        return load_analysis_config(DEFAULT_CONFIG_PATH)
    return validate(AnalysisConfig, raw, source)


def load_analysis_config(path: str | Path | None = None, overrides: list[str] | None = None,
                         label: Callable[[str], str] = configio.set_label) -> AnalysisConfig:
    """Load (``analysis_yaml``), override (``dotted.key=value``) and validate an analysis YAML
    file (``label``: how an error names an override; the command line's ``--set '…'``)."""
    model, _raw = load_analysis_config_raw(path, overrides, label)
    return model


def load_analysis_config_raw(
    path: str | Path | None = None, overrides: list[str] | None = None,
    label: Callable[[str], str] = configio.set_label) -> tuple[AnalysisConfig, dict[str, Any]]:
    """The model and the raw mapping it was validated from (``analysis_yaml``, overrides
    applied)."""
    for item in overrides or []:
        if item.partition("=")[0].strip() == BASE_KEY:   # was "base: unknown key (check spelling)"
            raise InputError(f"{label(item)}: {BASE_KEY} is read from a file before anything is "
                             f"layered, not set: put '{BASE_KEY}: none' at the top of a --config "
                             "file")
    return load_config(AnalysisConfig, path or DEFAULT_CONFIG_PATH,
                       None if overrides is None else [new_name_override(o) for o in overrides],
                       read=analysis_yaml, label=label)


def _old_names() -> dict[str, str]:
    """Old names of detector settings that are still read (``retrain_every``) -> the name."""
    out: dict[str, str] = {}
    for cls in REGISTRY.values():
        for name, fld in cls.config_class.model_fields.items():
            for alias in getattr(fld.validation_alias, "choices", ()):
                if isinstance(alias, str) and alias != name:
                    out[alias] = name
    return out


# Layered over the shipped file (which says refit_every), a file's or a --set's old name was a
# second key beside it: 'detectors.isolation_forest.retrain_every: unknown key (check spelling)'
# for the name the docs call accepted. Old names become the name before anything is layered.
OLD_NAMES = _old_names()


def _detector_maps(raw: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    ext = raw.get("external")
    sections = [("detectors", raw.get("detectors")),
                ("external.detectors", ext.get("detectors") if isinstance(ext, dict) else None)]
    return [(f"{where}.{name}", det) for where, dets in sections if isinstance(dets, dict)
            for name, det in dets.items() if isinstance(det, dict)]


def with_new_names(raw: dict[str, Any], source: str) -> dict[str, Any]:
    """``raw`` (one file's mapping, changed in place) with each detector's old setting names
    (``OLD_NAMES``) renamed; both names in one entry is an InputError naming it."""
    for where, det in _detector_maps(raw):
        for old, new in OLD_NAMES.items():
            if old in det:
                if new in det:
                    raise InputError(f"{source}: {where}: {old} is the old name of {new}; "
                                     "give one of them")
                det[new] = det.pop(old)
    return raw


def new_name_override(item: str) -> str:
    """``detectors.x.retrain_every=30`` -> ``detectors.x.refit_every=30`` (``OLD_NAMES``)."""
    key, sep, value = item.partition("=")
    parts = key.strip().split(".")
    at = 3 if parts[:1] == ["external"] else 2
    if sep and len(parts) == at + 1 and parts[at - 2] == "detectors" and parts[at] in OLD_NAMES:
        return ".".join([*parts[:at], OLD_NAMES[parts[at]]]) + "=" + value
    return item


# read by the loader before validation (analysis_yaml), so not a field of AnalysisConfig: the
# model, and with it every run id, is the same whatever the file says
BASE_KEY = "base"
BASE_SCHEMA = {
    "enum": ["shipped", "none"],
    "default": "shipped",
    "description": "shipped: this file changes the shipped config/analysis.yaml only where it "
    "says something (mappings merge key by key, a detector of another type replaces the shipped "
    "one, lists and values replace); none: this file is the whole config, the code's defaults "
    "fill what it omits",
}


def analysis_json_schema() -> dict[str, Any]:
    """AnalysisConfig's JSON Schema for a file as ``analysis_yaml`` reads it (schemas/, for
    editors): the ``base`` key, and a detector entry that names only what it changes. Layered
    over the shipped file, ``detectors: {rolling_zscore: {window: 21}}`` keeps the shipped
    detector's type, so an entry named like a shipped detector may leave ``type`` out (it is then
    read as that type); any other entry, ``external.detectors`` and every entry of a ``base: none``
    file need their ``type``, as the loader does. (The plain model schema flagged every partial
    entry: valid under several detector types at once, so none of its ``oneOf``.)"""
    schema = AnalysisConfig.model_json_schema()
    schema["properties"] = {BASE_KEY: BASE_SCHEMA, **schema["properties"]}
    ref = {"$ref": "#/$defs/DetectorSettings"}
    union = schema["properties"]["detectors"]["additionalProperties"]
    schema["$defs"]["DetectorSettings"] = {**union, "required": ["type"]}
    by_type = union["discriminator"]["mapping"]
    shipped = load_yaml(DEFAULT_CONFIG_PATH).get("detectors") or {}
    schema["properties"]["detectors"]["additionalProperties"] = ref
    schema["properties"]["detectors"]["properties"] = {
        name: {"if": {"required": ["type"]}, "then": ref, "else": {"$ref": by_type[d["type"]]}}
        for name, d in shipped.items()
    }
    schema["$defs"]["ExternalConfig"]["properties"]["detectors"]["additionalProperties"] = ref
    schema["if"] = {"required": [BASE_KEY], "properties": {BASE_KEY: {"const": "none"}}}
    schema["then"] = {"properties": {"detectors": {"additionalProperties": ref}}}
    return schema


def analysis_yaml(path: str | Path) -> dict[str, Any]:
    """The analysis mapping a YAML file stands for: the file layered over the shipped
    config/analysis.yaml (``layered``), so a file naming only what it changes keeps the shipped
    detection everywhere else; with ``base: none`` the file alone (what it omits takes the code's
    defaults, which are not the shipped settings). The shipped file itself is read as it is."""
    raw = with_new_names(load_yaml(path), str(path))
    base = raw.pop(BASE_KEY, "shipped")
    if base is None or base == "none":
        return raw
    if base != "shipped":
        raise InputError(f"{path}: {BASE_KEY}: must be 'shipped' (layer this file over "
                         f"config/analysis.yaml, the default) or 'none', got {base!r}")
    if Path(path).resolve() == DEFAULT_CONFIG_PATH.resolve():
        return raw
    return layered(load_yaml(DEFAULT_CONFIG_PATH), raw)
