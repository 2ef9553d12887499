from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from tests.experiments.exp_fakes import ANALYSIS, SCENARIO


@pytest.fixture
def write_experiment(tmp_path: Path):
    """Write a fake scenario, analysis and an experiment file; return the experiment path."""
    (tmp_path / "scenario.yaml").write_text(yaml.safe_dump(SCENARIO))
    (tmp_path / "analysis.yaml").write_text(yaml.safe_dump(ANALYSIS))

    def write(name: str = "exp.yaml", **fields) -> Path:
        doc = {
            "name": "t",
            "scenario": str(tmp_path / "scenario.yaml"),
            "analysis": str(tmp_path / "analysis.yaml"),
            "seeds": [1, 2, 3],
            "metrics": [
                "consensus.recall",
                "consensus.precision",
                "consensus.f1",
                "consensus.median_delay_days",
            ],
            "bootstrap": {"resamples": 500},
        }
        doc.update(fields)
        path = tmp_path / name
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    return write


@pytest.fixture
def tiny_experiment(tmp_path):
    """Write an experiment file over the tiny world (one seed, a cell in about a second) with
    the shipped analysis, Prophet off; ``write(name, **fields)`` returns its path."""
    from tests.simulation.simtools import tiny_config

    root = Path(__file__).resolve().parents[2]
    (tmp_path / "tiny_world.yaml").write_text(yaml.safe_dump(tiny_config()))

    def write(name: str, **fields) -> Path:
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({
            "name": name, "scenario": str(tmp_path / "tiny_world.yaml"),
            "analysis": str(root / "config/analysis.yaml"), "seeds": [1],
            "analysis_overrides": {"detectors.prophet_residual.enabled": False}, **fields}))
        return path

    return write


@pytest.fixture
def pool_sizes(monkeypatch) -> list[int]:
    """The max_workers of every process pool the runner starts (the pool is the real one)."""
    import experiments.runner as runner

    sizes: list[int] = []
    real = runner.ProcessPoolExecutor

    def spy(*args, **kwargs):
        sizes.append(kwargs["max_workers"])
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "ProcessPoolExecutor", spy)
    return sizes
