"""shocklab.cli.skip_pydantic_plugins: models build without pydantic's plugin lookup."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CODE = """
import sys
from shocklab.cli import skip_pydantic_plugins
skip_pydantic_plugins()
import pydantic

class M(pydantic.BaseModel):
    x: int

assert M(x="3").x == 3
try:
    M(x="a")
except pydantic.ValidationError as exc:
    assert "x" in str(exc)
print("metadata", "importlib.metadata" in sys.modules)
from pydantic.plugin._loader import get_plugins
print("plugins", list(get_plugins()))
from pydantic.plugin import _loader
print("entry_points", callable(getattr(_loader, "entry_points", None)))
"""


def _run(env_extra: dict[str, str]) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    env.update(PYTHONPATH=f"{ROOT / 'src'}:{ROOT}", **env_extra)
    p = subprocess.run([sys.executable, "-c", CODE], cwd=ROOT, capture_output=True, text=True,
                       env=env)
    assert p.returncode == 0, p.stderr
    return p.stdout.split("\n")


def test_models_build_and_validate_without_importlib_metadata():
    out = _run({})
    # no importlib.metadata before the first model; none of pydantic's plugins; the real
    # loader's other names still answer (the stand-in hands over to it)
    assert out[:3] == ["metadata False", "plugins []", "entry_points True"]


def test_a_users_plugin_setting_is_kept():
    out = _run({"PYDANTIC_DISABLE_PLUGINS": "some_plugin"})
    assert out[0] == "metadata True"   # pydantic's own lookup ran
