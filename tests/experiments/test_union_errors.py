"""A wrong value inside a field that takes either a list or a mapping (`seeds`, `split.train`,
`split.test`) named pydantic's union branch instead of the problem:
`split.test.list[constrained-int]: Input should be a valid list (+1 more error)` for
`count: 0`. The one line now names the key and the bound."""

from __future__ import annotations

from pathlib import Path

import pytest

from shocklab.cli import run_cli

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("config", "override", "expected"),
    [
        ("null_world.yaml", "split.test.count=0",
         "split.test.count: Input should be greater than or equal to 1 (got 0)"),
        ("ci_gate.yaml", "seeds={count: 0}",
         "seeds.count: Input should be greater than or equal to 1 (got 0)"),
        ("ci_gate.yaml", "seeds=[1, -2]",
         "seeds[1]: Input should be greater than or equal to 0 (got -2)"),
    ],
)
def test_a_bad_value_in_a_list_or_mapping_field_names_the_key(
    config, override, expected, tmp_path, capsys
):
    from run_experiment import main

    out = tmp_path / "out"
    code = run_cli(main, ["--config", str(ROOT / "config/experiments" / config), "--set",
                          override, "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and expected in err, err
    assert "list[" not in err and "SeedRange" not in err
    assert not out.exists()
