"""The side-by-side benchmarks' ``--other`` / ``--reference`` checkout: a path that is no ShockLab
checkout (missing, a file, a folder without the scripts) is one line on stderr naming the flag,
the path and what is wrong, and exit 2, before anything runs. It was a traceback from the first
subprocess started there (FileNotFoundError, NotADirectoryError; bench_sweep.py exit 1 with the
child's "can't open file"), bench_generate.py's only after its own tree's runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SMALL = str(ROOT / "config/scenarios/small.yaml")
# each command as cheap as the script allows: what runs before --other is used is skipped
COMMANDS = {
    "bench_sweep.py": ["--rounds", "1", "--cells", "1"],
    "bench_generate.py": ["--repeat", "1", "--skip-core", "--scenario", SMALL],
    "bench_profile.py": ["--repeat", "1", "--skip-startup", "--scenario", SMALL],
}


def _bad(tmp_path: Path, kind: str) -> tuple[Path, str]:
    if kind == "missing":
        return tmp_path / "nope", "does not exist"
    if kind == "file":
        f = tmp_path / "a_file"
        f.write_text("x")
        return f, "is not a directory"
    d = tmp_path / "empty"
    d.mkdir()
    return d, "is not a ShockLab checkout (no generate_data.py, run_analysis.py, src/shocklab"


def _run(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
           "SHOCKLAB_LOG_DIR": ""}
    return subprocess.run([sys.executable, str(ROOT / "bench" / script), *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("script", sorted(COMMANDS))
@pytest.mark.parametrize("kind", ["missing", "file", "folder"])
def test_an_other_that_is_no_checkout_is_one_line_and_exit_2(tmp_path, script, kind):
    path, problem = _bad(tmp_path, kind)
    out = _run(script, *COMMANDS[script], "--other", str(path), cwd=tmp_path)
    assert out.returncode == 2, (out.returncode, out.stderr[-2000:])
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{script}: --other {path}: {problem}"), lines
    assert out.stdout == ""   # nothing ran before the check


def test_a_sweep_other_without_the_sweep_script_names_it(tmp_path):
    """A checkout too old to hold bench/bench_sweep.py: the missing file is named."""
    tree = tmp_path / "old"
    (tree / "src" / "shocklab").mkdir(parents=True)
    for f in ("generate_data.py", "run_analysis.py"):
        (tree / f).write_text("")
    out = _run("bench_sweep.py", "--other", str(tree), cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip() == (f"bench_sweep.py: --other {tree}: is not a ShockLab checkout "
                                  "(no bench/bench_sweep.py)")


def test_a_profile_reference_that_is_no_checkout_is_exit_2(tmp_path):
    out = _run("bench_profile.py", "--skip-startup", "--skip-generate", "--reference",
               str(tmp_path / "nope"), cwd=tmp_path)
    assert out.returncode == 2, out.stderr[-2000:]
    nope = tmp_path / "nope"
    assert out.stderr.strip() == f"bench_profile.py: --reference {nope}: does not exist"
