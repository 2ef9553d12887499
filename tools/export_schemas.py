#!/usr/bin/env python3
"""Write JSON Schemas of the config files to schemas/ so editors can validate YAML.

    python tools/export_schemas.py          # rewrite schemas/{simulation,analysis,experiment,
                                            # world}.schema.json
    python tools/export_schemas.py --check  # exit 1 if a committed schema differs from the models
                                            # (an unknown flag is exit 2, nothing written;
                                            # an internal error 3)

In VS Code (YAML extension) put
``# yaml-language-server: $schema=../schemas/simulation.schema.json``
at the top of a scenario file. (schemas/insights.schema.json is the output contract, written by
``python -m analytics.insights --write-schema``.)
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from analytics.config import AnalysisConfig, analysis_json_schema  # noqa: E402
from experiments.config import ExperimentConfig  # noqa: E402
from shocklab.cli import ArgumentParser, run_cli  # noqa: E402
from shocklab.hashing import canonical_json  # noqa: E402
from simulation.config import SimulationConfig  # noqa: E402
from simulation.world_sampler import WorldScenario  # noqa: E402

MODELS = {
    "simulation": SimulationConfig,
    "analysis": AnalysisConfig,
    "experiment": ExperimentConfig,
    "world": WorldScenario,
}


def schema_text(name: str) -> str:
    # analysis: the file as the loader reads it (base:, partial detector entries)
    schema = analysis_json_schema() if name == "analysis" else MODELS[name].model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://shocklab.dev/schemas/{name}.schema.json"
    return canonical_json(schema)


def main(argv: list[str]) -> int:
    # argparse: --help answers (it used to rewrite every schema) and a typo such as --chek is
    # exit 2 (one line) instead of a silent rewrite
    p = ArgumentParser(prog="tools/export_schemas.py",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 if a committed schema differs from the models")
    check = p.parse_args(argv).check
    stale = []
    for name in MODELS:
        path = ROOT / "schemas" / f"{name}.schema.json"
        text = schema_text(name)
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path.relative_to(ROOT)))
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print(f"stale: {', '.join(stale)} (run python tools/export_schemas.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))  # an unexpected error is exit 3: 1 means "a schema is stale"
