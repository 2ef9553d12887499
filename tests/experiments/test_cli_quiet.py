"""run_experiment.py's --quiet and --no-progress both turn the progress bar off (it writes to the
console what --quiet promises to keep off it). A mutant that dropped --quiet from the rule
survived tests/experiments/test_cli.py (audit-mutcli)."""

from __future__ import annotations

from functools import partial

import pytest
from tests.experiments.exp_fakes import fake_cell

import experiments.experiment as experiment
from shocklab.cli import run_cli


@pytest.mark.parametrize("flags, progress", [(["--quiet"], False), (["--no-progress"], False),
                                             ([], None)])
def test_quiet_turns_the_progress_bar_off(write_experiment, tmp_path, monkeypatch, flags,
                                          progress):
    from run_experiment import main

    seen = {}
    real = partial(experiment.run, cell_fn=fake_cell)

    def run(*args, **kw):
        seen["progress"] = kw.get("progress")
        return real(*args, **kw)

    monkeypatch.setattr(experiment, "run", run)
    exp = write_experiment(seeds=[1])
    code = run_cli(main, ["--config", str(exp), "--out", str(tmp_path / "out"), "--executor",
                          "serial", "--no-plots", *flags])
    assert code == 0 and seen["progress"] is progress
