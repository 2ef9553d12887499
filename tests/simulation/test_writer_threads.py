"""The data directory's writer threads never use pyarrow while Arrow's compute kernels are being
registered (``shocklab.fastcsv.init_compute``).

The first import of ``pyarrow._compute`` adds ~300 functions to Arrow's process-wide function
registry, whose lookups take no lock: a Parquet writer on another thread looking up ``unique``
(a dictionary column's statistics) meanwhile could miss it, and ``generate_data.py --format
parquet`` failed about once in a hundred runs with ``ArrowKeyError: No function registered with
name: unique`` when the CSV writer thread's first compute call imported it. The race itself is a
few microseconds wide inside Arrow's C++ and cannot be forced from Python; what is asserted here,
deterministically, is the condition that rules it out: each table write starts with the kernels
already registered. The writer threads register them before their first file
(``simulation.io.data_dir_writer``), which suffices as long as the main thread writes no table
itself while they run: that is asserted too. Both tests run in a fresh interpreter (the test
process has long imported pandas, which imports ``pyarrow._compute``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.simulation.simtools import tiny_config

ROOT = Path(__file__).resolve().parents[2]
ENV = {"PATH": "/usr/bin:/bin", "SHOCKLAB_LOG_DIR": "", "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"}

WRITES = """
import json, sys, threading
from simulation import coltable as ct

def registered():
    # in sys.modules from the start of its import: done only when its spec says so
    m = sys.modules.get("pyarrow._compute")
    return m is not None and not getattr(m.__spec__, "_initializing", False)

seen = []
for name in ("write_parquet", "write_csv"):
    def wrapped(*args, _write=getattr(ct, name), _name=name):
        seen.append([_name, threading.current_thread().name, registered()])
        return _write(*args)
    setattr(ct, name, wrapped)

from simulation.api import generate
# the condition under test: nothing on the way has registered the kernels already
assert "pyarrow._compute" not in sys.modules and "pandas" not in sys.modules
generate(json.loads(sys.argv[1]), sys.argv[2], fmt=sys.argv[3])
print(json.dumps(seen))
"""


def _writes(tmp_path: Path, fmt: str) -> list[list]:
    p = subprocess.run(
        [sys.executable, "-c", WRITES, json.dumps(tiny_config()), str(tmp_path / fmt), fmt],
        cwd=ROOT, capture_output=True, text=True, env=ENV)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_every_table_write_starts_with_compute_kernels_registered(tmp_path):
    for fmt in ("parquet", "csv"):
        seen = _writes(tmp_path, fmt)
        # every observable table and truth CSV, written on the writer threads
        assert len(seen) >= 8, seen
        assert {kind for kind, _, _ in seen} == (
            {"write_parquet", "write_csv"} if fmt == "parquet" else {"write_csv"})
        assert all(thread != "MainThread" for _, thread, _ in seen), seen
        late = [(kind, thread) for kind, thread, ready in seen if not ready]
        assert late == [], f"{fmt}: written before Arrow's compute kernels were registered: {late}"


def test_init_compute_registers_kernels_without_pandas_or_pyarrow_compute():
    """The start-up it costs: ``pyarrow._compute`` only (not ``pyarrow.compute``'s docstrings
    for every kernel, nor pandas); afterwards the kernels the writers use are registered."""
    code = """
import sys
from shocklab.fastcsv import init_compute
assert "pyarrow._compute" not in sys.modules
init_compute()
from pyarrow._compute import get_function
for name in ("unique", "take", "cast", "dictionary_encode", "binary_join_element_wise"):
    get_function(name)
print("pandas" in sys.modules, "pyarrow.compute" in sys.modules)
"""
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       env=ENV)
    assert p.stdout.strip() == "False False", p.stderr
