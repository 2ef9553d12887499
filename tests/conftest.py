"""Suite-wide fixtures: a headless matplotlib backend, logs kept out of the repo, and
``make_config`` (real analysis configs, tests/configs.py); and the suite without pytest-xdist."""

import os

import matplotlib
import pytest

matplotlib.use("Agg", force=True)


def pytest_addoption(parser, pluginmanager):
    """With pytest-xdist off (``-p no:xdist``) or not installed, the suite runs in one process:
    the ``--numprocesses``/``--dist`` of pyproject's addopts are then accepted and unused instead
    of being an "unrecognized arguments" error."""
    if pluginmanager.has_plugin("xdist"):
        return
    group = parser.getgroup("xdist-off", "pytest-xdist is off: these are accepted and unused")
    group.addoption("--numprocesses", dest="numprocesses", default=None)
    group.addoption("--dist", dest="dist", default="no")


@pytest.fixture(autouse=True, scope="session")
def _quiet_logs(tmp_path_factory):
    """CLI runs in tests write their rotating log to a temp dir, not to the repo's logs/."""
    old = os.environ.get("SHOCKLAB_LOG_DIR")
    os.environ["SHOCKLAB_LOG_DIR"] = str(tmp_path_factory.mktemp("logs"))
    yield
    if old is None:
        os.environ.pop("SHOCKLAB_LOG_DIR", None)
    else:
        os.environ["SHOCKLAB_LOG_DIR"] = old


@pytest.fixture
def make_config():
    """``make_config(**overrides)`` -> AnalysisConfig (defaults plus nested overrides)."""
    from tests.configs import make_config as make

    return make
