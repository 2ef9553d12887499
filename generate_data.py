#!/usr/bin/env python3
"""Generate a simulated e-commerce data directory with injected shocks and their ground truth.

    python generate_data.py [--config PATH] [--out DIR] [--seed N] [--format csv|parquet]
                            [--set key=value …]
"""

from __future__ import annotations

import gc
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from shocklab.cli import (  # noqa: E402
    ArgumentParser,
    add_common_flags,
    add_force_flag,
    exit_process,
    path_arg,
    reuse_freed_memory,
    run_cli,
    setup_logging,
    skip_pydantic_plugins,
)


def main(argv: Sequence[str] | None = None) -> int:
    t_main = time.perf_counter()
    parser = ArgumentParser(prog="generate_data.py", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", type=path_arg, default=None,
        help="scenario YAML (default: this checkout's config/simulation.yaml, from any directory; "
             "a relative path given here is relative to the current directory)",
    )
    parser.add_argument(
        "--out", type=path_arg, default="data", help="output data directory (default: %(default)s)"
    )
    parser.add_argument("--seed", type=int, help="master seed (overrides the config's seed)")
    parser.add_argument(
        "--format",
        choices=("csv", "parquet"),
        default="csv",
        help="table format (default: %(default)s)",
    )
    parser.add_argument("--max-orders", type=float, default=None, metavar="N",
                        help="refuse worlds estimated above N orders before allocating anything "
                             "(default 20,000,000 or SHOCKLAB_MAX_ORDERS)")
    add_force_flag(parser)
    add_common_flags(parser)
    args = parser.parse_args(argv)
    log = setup_logging("generate", debug=args.debug, quiet=args.quiet)

    # imported after argument parsing, so that --help answers without loading pydantic, numpy,
    # pyarrow; the generation path imports no pandas (simulation.coltable)
    reuse_freed_memory()      # fewer page faults for the simulation's temporary arrays
    skip_pydantic_plugins()   # no importlib.metadata walk before the first model
    from simulation.rand import preload_special_ufuncs

    preload_special_ufuncs()   # scipy.special's ufuncs without its ~0.2 s package import
    from shocklab.atomic import allow_replace, validate_out
    from shocklab.cli import held_console
    from shocklab.configio import apply_overrides, load_yaml, shipped_config
    from shocklab.errors import InputError
    from simulation.api import generate
    from simulation.config import build_config, size_ceiling

    t_imported = time.perf_counter()
    if args.max_orders is not None and not args.max_orders > 0:
        raise InputError(f"--max-orders: must be a positive number, got {args.max_orders}")
    # the default is found from any directory, as run_analysis.py finds config/analysis.yaml
    config = args.config if args.config is not None else str(shipped_config("simulation.yaml"))
    validate_out(args.out, [config], force=args.force, kind="data")

    overrides = list(args.overrides) + ([f"seed={args.seed}"] if args.seed is not None else [])
    t0 = time.perf_counter()
    with size_ceiling(args.max_orders):
        # a --set's warnings wait for the config's verdict: a refused config is its one error
        # line, not "--set traffic={…} replaces the whole mapping" followed by it
        with held_console():
            raw = apply_overrides(load_yaml(config), overrides)
            source = config + (" (with --set/--seed)" if overrides else "")
            cfg = build_config(raw, source)
        t_built = time.perf_counter()
        with allow_replace(args.force):
            manifest = generate(cfg, args.out, fmt=args.format, source=source)
    dt = time.perf_counter() - t0
    rc = manifest["row_counts"]
    ev = manifest["events"]
    log.info(
        "wrote %s/ (%s, scenario %r, seed %d)",
        args.out,
        args.format,
        manifest["scenario"],
        manifest["seed"],
    )
    log.info(
        "  %s … %s · %s orders · %s order lines · %s customers · %s products · %s traffic rows",
        manifest["period"]["start"],
        manifest["period"]["end"],
        f"{rc['orders']:,}",
        f"{rc['order_items']:,}",
        f"{rc['customers']:,}",
        f"{rc['products']:,}",
        f"{rc['website_traffic']:,}",
    )
    log.info(
        "  %d unexpected events, %d planned calendar events (truth/events.json)",
        ev["unexpected"],
        ev["expected"],
    )
    t = manifest["timings"]
    t["validate_s"] = t_built - t0   # the config was built before generate() (held warnings)
    # CLOCK_MONOTONIC marks (bench/bench_generate.py subtracts its own spawn time); the config
    # is read and validated before generate() (validate_s, set above)
    log.debug("phase marks: main %.6f imported %.6f generate %.6f validated %.6f simulated %.6f "
              "written %.6f", t_main, t_imported, t0, t0 + t["validate_s"],
              t0 + t["validate_s"] + t["simulate_s"], t0 + dt)
    log.debug("file times: %s", " ".join(f"{name}={sec:.4f}"
                                         for name, sec in sorted(t["files_s"].items())))
    log.info(
        "  %.2f s (simulate %.2f s incl. %d counterfactual twin(s), write %.2f s)",
        dt,
        t["simulate_s"],
        t["twin_runs"],
        t["write_s"],
    )
    return 0


if __name__ == "__main__":
    # The generator makes no BLAS call worth a thread (a few short dot products), and OpenBLAS
    # starts one per core when numpy is imported: ~0.05-0.1 s of a 0.7 s run. Set before numpy
    # loads (main imports it), as a script only; a value the user set is kept.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    # A short batch run frees its arrays by reference counting; the cycle collector's passes
    # over every object the imports created (~2-4 % of the run) buy nothing before the exit.
    gc.disable()
    exit_process(run_cli(main))  # no interpreter teardown: everything is written
