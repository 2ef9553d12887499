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
