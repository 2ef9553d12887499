"""insights.json `customers.files` names the files of the run's customers/ directory, yet on every
run with truth it left out `truth_scores.json`, which the directory holds (default, small and
random-world runs alike): a reader walking the list never found the truth scores."""

from __future__ import annotations

import json

from shocklab.cli import run_cli


def test_customers_files_lists_every_file_of_the_directory(tiny_world, tmp_path):
    from run_analysis import main

    out = tmp_path / "run"
    assert run_cli(main, ["--data", str(tiny_world), "--out", str(out), "--quiet"]) == 0
    listed = json.loads((out / "insights.json").read_text())["customers"]["files"]
    held = sorted(p.name for p in (out / "customers").iterdir()
                  if p.suffix in (".csv", ".json", ".jsonl"))
    assert "truth_scores.json" in held
    assert listed == held
