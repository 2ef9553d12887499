"""Suite-wide fixtures: a headless matplotlib backend, logs kept out of the repo, and
``make_config`` (real analysis configs, tests/configs.py); and the suite without pytest-xdist."""

import os

import matplotlib
import pytest

matplotlib.use("Agg", force=True)


def _native_threads_per_worker():
    """Under pytest-xdist (one worker per core, pyproject's addopts) each worker's native thread
    pools (OpenMP: scikit-learn's gradient boosting and k-means; BLAS) get cores / workers
    threads, as ``run_experiment``'s workers do (experiments.runner.WORKER_ENVIRON): with the
    default, every worker spun one thread per core and two workers on two cores fought over them
    (the selection frontier's cross-validation, 5 small fits: 26 s -> 1.5 s). Results do not
    depend on it (same bytes on any thread count: the determinism tests set their own counts).
    The variables also reach the CLI runs the tests start; one the caller set is kept."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 0)
    if workers <= 1:
        return None
    n = max(1, (os.cpu_count() or 1) // workers)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(n))
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=int(os.environ["OMP_NUM_THREADS"]))


_THREAD_LIMITS = _native_threads_per_worker()   # held: the limits last the worker's life


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
