"""bench_sweep / bench_benchmark work in a scratch folder that is removed however the script ends:
SIGTERM (``timeout``, a CI runner's cancel) left the worlds and runs in the temporary directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("script", "args", "prefix"), [
    ("bench_sweep.py", ["--cells", "40", "--executors", "serial", "--workers", "1",
                        "--repeat", "1"], "bench-sweep-"),
    ("bench_benchmark.py", ["--seeds", "6", "--executors", "serial"],
     "shocklab-bench-benchmark-"),
])
def test_sigterm_removes_the_scratch_folder(tmp_path, script, args, prefix):
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}",
           "SHOCKLAB_LOG_DIR": ""}
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / script), *args], cwd=tmp_path,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not any(tmp_path.glob(f"{prefix}*/*")) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.1)
        assert any(tmp_path.glob(f"{prefix}*/*")), "the scratch folder never filled"
        time.sleep(1.0)                      # into the run: worlds and cells being written
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    assert not list(tmp_path.glob(f"{prefix}*")), sorted(p.name for p in tmp_path.iterdir())
