"""Python entry points used by the CLI and by experiment sweeps."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from shocklab.configio import CONFIG_DIR, load_yaml
from shocklab.errors import InputError

from .config import SimulationConfig, build_config, config_hash
from .engine import World, simulate
from .io import data_dir_writer

DEFAULT_CONFIG = CONFIG_DIR / "simulation.yaml"


def load_scenario(path: str | Path) -> dict[str, Any]:
    """The raw YAML mapping of a scenario file (apply overrides, then pass to ``generate``)."""
    return load_yaml(path)


def scenario_hash(raw_config: dict[str, Any]) -> str:
    """Stable hash of the validated scenario (seed included): a cache key for generated worlds."""
    return config_hash(build_config(raw_config, "<scenario>"))


def simulate_config(
    raw_config: dict[str, Any] | SimulationConfig, source: str = "<config>"
) -> World:
    cfg = (
        raw_config if isinstance(raw_config, SimulationConfig) else build_config(raw_config, source)
    )
    with _named(source):
        return simulate(cfg)


@contextmanager
def _named(source: str) -> Iterator[None]:
    """A request only the simulation finds infeasible (random_events with no room left) is
    named with the config it came from, as every validation error is."""
    try:
        yield
    except InputError as exc:
        raise InputError(f"{source}: {exc}") from None


def generate(
    raw_config: dict[str, Any] | SimulationConfig,
    out_dir: str | Path,
    fmt: str = "csv",
    source: str = "<config>",
) -> dict[str, Any]:
    """Validate, simulate and write a data directory atomically. Returns the manifest plus
    ``timings`` (seconds; not written to disk, so files stay byte-identical)."""
    t0 = time.perf_counter()
    cfg = (
        raw_config if isinstance(raw_config, SimulationConfig) else build_config(raw_config, source)
    )
    tv = time.perf_counter()
    with data_dir_writer(out_dir, fmt) as writer:
        # the observable tables are written while the counterfactual twins are simulated
        with _named(source):
            world = simulate(cfg, sink=writer)
        t1 = time.perf_counter()
        manifest = writer.finish(world)
    t2 = time.perf_counter()
    return {
        **manifest,
        # validate_s: the config (pydantic); simulate_s: from then on, twins included;
        # write_s: after the simulation (the tables' writing overlaps the twins); files_s:
        # seconds per file on the writer threads
        "timings": {"validate_s": tv - t0, "simulate_s": t1 - tv, "write_s": t2 - t1,
                    "twin_runs": world.runs - 1, "files_s": dict(writer.file_times)},
    }
