#!/usr/bin/env python
r"""Run an experiment: a sweep of overrides × seeds, a detectability study, or a multi-seed gate.

    python run_experiment.py --config config/experiments/detector_sweep.yaml \
        --executor local --workers 2
    python run_experiment.py --config config/experiments/ci_gate.yaml --gate "consensus.recall>=0.9"
    python run_experiment.py --config config/experiments/ci_gate.yaml \
        --baseline runs/base/results.parquet
    python run_experiment.py --config … --executor dask --scheduler tcp://10.0.0.5:8786

Exit codes: 0 ok · 1 a gate check failed beyond seed-to-seed noise · 2 bad experiment file or flags
· 3 internal error (the traceback is in the log file), or every cell failed (2 when each failed on
bad input, e.g. worlds the analysis refuses, or on the environment: disk full, out of memory).
Gate metric names are checked before any cell runs (a typo is exit 2 naming the closest name).
A rerun with the same --out resumes: finished cells of the same configs are not run again
(--fresh reruns them all, e.g. after a change of code). --out must be missing, empty or an
earlier run of the same experiment (same name and kind); another experiment, a data set, a report
or a folder of yours there is exit 2 (--force moves it aside to <out>.kept-N, never deletes it),
and so is --out inside another ShockLab output, or a --baseline inside --out (it would be
overwritten by this run's results). A damaged earlier run there (a file of it replaced by a
directory, cells/ or worlds/ a file or a dangling link, an experiment.json that is not an
experiment record) is exit 2 naming it, before any cell runs or anything there is changed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from shocklab.atomic import check_not_nested, check_resumable  # noqa: E402
from shocklab.cli import (  # noqa: E402
    ENV_ERRNOS,
    ArgumentParser,
    add_common_flags,
    add_force_flag,
    exit_process,
    path_arg,
    run_cli,
    setup_logging,
)
from shocklab.errors import AllCellsFailed, InputError  # noqa: E402


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="run_experiment.py", description=__doc__.split("\n\n")[0],
                       epilog="\n\n".join(__doc__.split("\n\n")[1:]),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--config", type=path_arg,
        required=True,
        metavar="FILE",
        help="experiment YAML (config/experiments/*.yaml)",
    )
    p.add_argument("--executor", choices=("serial", "local", "dask"), default=None,
                   help="where cells run: in this process, a local process pool (default), or Dask")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="worker processes (local, or a Dask LocalCluster; at most one per cell "
                        "to run); default: CPU count")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="an existing Dask scheduler (implies --executor dask), e.g. tcp://host:8786")
    p.add_argument(
        "--out", type=path_arg,
        metavar="DIR",
        default=None,
        help="output directory (default runs/experiments/<name>)",
    )
    p.add_argument(
        "--cache-dir", type=path_arg,
        metavar="DIR",
        default=None,
        help="generated-world cache (default <out>/worlds; share it between experiments)",
    )
    p.add_argument(
        "--gate",
        action="append",
        default=None,
        metavar="EXPR",
        help='quality gate, e.g. "consensus.recall>=0.9" (repeatable; replaces the file\'s '
             'gate.checks)',
    )
    p.add_argument("--baseline", type=path_arg, metavar="RESULTS", default=None,
                   help="compare against an earlier results.parquet (or the experiment output "
                        "directory holding it); fail on a drop beyond noise")
    p.add_argument(
        "--fresh",
        action="store_true",
        help="rerun every cell and regenerate <out>/worlds (resume cannot see code changes)",
    )
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_force_flag(p, "--out holds another experiment (or a data set, a report, a folder "
                      "ShockLab did not write): move it aside to <out>.kept-N and start afresh "
                      "(nothing is deleted; the same experiment's directory is resumed as always)")
    # an experiment file has seeds, not seed: "--set seed=7" was "unknown key"
    add_common_flags(p, example="seeds=[1,2,3]")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    log = setup_logging("experiments", args.debug, args.quiet)

    from experiments import gate as gating
    from experiments.cache import check_cache_dir
    from experiments.config import load_experiment, parse_check
    from experiments.experiment import other_experiment, run, summary_lines

    if args.scheduler is not None and not args.scheduler.strip():
        # --scheduler "$DASK_SCHEDULER" with the variable unset ran every cell on this machine
        raise InputError("--scheduler is empty; give the scheduler's address "
                         "(tcp://host:8786) or leave the flag out")
    executor = args.executor or ("dask" if args.scheduler else "local")
    if args.scheduler and executor != "dask":
        raise InputError(f"--scheduler needs --executor dask (got --executor {executor})")
    if executor == "serial" and args.workers not in (None, 1):
        # it was ignored without a word; a warning, not a refusal: the results are the same
        log.warning("--workers %d has no effect with --executor serial: the cells run one by one "
                    "in this process (--executor local runs them in %d processes)",
                    args.workers, args.workers)
    workers = args.workers if args.workers is not None else max(1, os.cpu_count() or 1)
    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    # everything is read and validated before anything is written
    checks = [parse_check(g) for g in args.gate] if args.gate is not None else None
    overrides = list(args.overrides or [])
    if args.gate is not None:   # --gate replaces gate.checks: gate.max_drop may name its metrics
        overrides.append(f"gate.checks={json.dumps(list(args.gate))}")
    exp = load_experiment(args.config, overrides, from_gate=int(args.gate is not None))
    baseline = gating.load_baseline(args.baseline, exp.config.kind) if args.baseline else None
    if args.scheduler:   # before --out is created or --force moves a folder aside
        from experiments.runner import probe_scheduler

        probe_scheduler(args.scheduler)
    out_path = _without_dotdot(args.out or Path("runs") / "experiments" / exp.config.name)
    for inp in (args.config, exp.scenario_path, exp.analysis_path):
        # before --force could move it aside with the folder (exit 0, the config gone with it)
        if inp is not None and Path(inp).resolve() != out_path.resolve() and _within(
                Path(inp), out_path):
            raise InputError(f"--out {out_path}: contains the input {inp}; replacing it would "
                             "delete the input (write the experiment elsewhere)")
    out, replace_other = check_resumable(
        out_path,
        "experiment", other=other_experiment(exp), force=args.force)
    check_not_nested(out)
    if args.baseline and _within(Path(args.baseline), out):   # read, then overwritten by this run
        raise InputError(f"--baseline {args.baseline}: is inside --out {out}, whose results this "
                         "run replaces; copy the baseline elsewhere first, or give another --out")
    cache_dir = _without_dotdot(args.cache_dir) if args.cache_dir else None
    if cache_dir:
        check_cache_dir(cache_dir, out)

    outcome = run(
        exp,
        out,
        executor=executor,
        workers=workers,
        scheduler=args.scheduler,
        cache_dir=cache_dir,
        checks=checks,
        baseline=baseline,
        progress=False if (args.no_progress or args.quiet) else None,
        plots=not args.no_plots,
        fresh=args.fresh,
        replace_other=replace_other,
    )
    for line in summary_lines(outcome, exp.config.rank_metric):
        log.info(line)
    res = outcome.results
    if len(res) and (res["status"] != "ok").all():   # a full disk ended "4 failed", exit 0
        errors = res["error"].dropna()
        first = str(errors.iloc[0]) if len(errors) else "unknown"
        msg = (f"every cell failed ({len(res)}), nothing was measured; first error: {first} "
               f"(all in {outcome.out_dir / 'results.parquet'})")
        # the environment (disk full, out of memory) is exit 2 as in this process (run_cli), and
        # so is bad input every cell met: a valid scenario whose worlds the analysis refuses
        # (a store without one order: 'orders.parquet: table is empty') was exit 3
        bad_input = len(errors) == len(res) and all(
            str(e).startswith(f"{InputError.__name__}: ") for e in errors)
        raise (InputError if _environment_error(first) or bad_input else AllCellsFailed)(msg)
    gating.enforce(outcome.gate)
    return 0


def _without_dotdot(path: str | Path) -> Path:
    """``path`` resolved when its last part is ``..`` (``--out runs/x/..``): an output is moved
    aside and claimed by its name, and a directory named '..' cannot be renamed (--force was
    exit 3, 'Device or resource busy')."""
    path = Path(path)
    return path.resolve() if path.name == ".." else path


def _within(path: Path, directory: Path) -> bool:
    """``path`` is ``directory`` or inside it (both resolved)."""
    path, directory = path.resolve(), directory.resolve()
    return path == directory or directory in path.parents


def _environment_error(error: str) -> bool:
    """A cell's one-line error (``Type: message``) that is the environment's, not a bug."""
    m = re.match(r"\w+: \[Errno (\d+)\]", error)
    return error.startswith("MemoryError") or (m is not None and int(m.group(1)) in ENV_ERRNOS)


if __name__ == "__main__":
    exit_process(run_cli(main))  # no interpreter teardown: everything is written
