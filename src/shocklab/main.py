"""The ``shocklab`` console command: one entry, subcommands from a registry.

    shocklab dashboard [--reports reports/] [--runs runs/] [--port 8501] [--data-root data/]
    shocklab serve [--reports reports/] [--runs runs/] [--port 8000]
                   [--allow-analysis --data-root data/]
    shocklab generate|analyse|experiment ...   (the same flags as generate_data.py, run_analysis.py,
                                                run_experiment.py)

A new subcommand is one function decorated with ``@command("name", "help")`` taking the remaining
argv and returning an exit code.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .cli import ArgumentParser, path_arg, run_cli

ROOT = Path(__file__).resolve().parents[2]
COMMANDS: dict[str, tuple[Callable[[list[str]], int], str]] = {}


def command(name: str, help_text: str):
    def deco(fn: Callable[[list[str]], int]):
        COMMANDS[name] = (fn, help_text)
        return fn
    return deco


def _script_main(module: str) -> Callable[[Sequence[str] | None], int]:
    """main() of a top-level script (generate_data.py, …) of this checkout."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import importlib
    return importlib.import_module(module).main


@command("generate", "simulate a store (generate_data.py)")
def _generate(argv: list[str]) -> int:
    return run_cli(_script_main("generate_data"), argv)


@command("analyse", "analyse a data directory (run_analysis.py)")
def _analyse(argv: list[str]) -> int:
    return run_cli(_script_main("run_analysis"), argv)


@command("experiment", "run a sweep or a detectability experiment (run_experiment.py)")
def _experiment(argv: list[str]) -> int:
    return run_cli(_script_main("run_experiment"), argv)


def _roots(p: ArgumentParser) -> None:
    p.add_argument("--reports", type=path_arg, default=None,
                   help="run directories (default: reports/)")
    p.add_argument("--runs", type=path_arg, default=None,
                   help="experiment directories: DIR/<name> and DIR/experiments/<name>, where "
                        "run_experiment.py writes by default (default: runs/)")
    p.add_argument(
        "--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1)"
    )


def _check_roots(args) -> None:  # noqa: ANN001
    """A root given on the command line must be a directory (a typo would otherwise serve an empty
    list silently); the defaults ``reports/`` and ``runs/`` may not exist yet (nothing run yet)."""
    from .errors import InputError

    roots = (("--reports", args.reports, "reports"), ("--runs", args.runs, "runs"))
    for flag, given, default in roots:
        path = Path(given if given is not None else default)
        if path.exists() and not path.is_dir():
            raise InputError(f"{flag} {path}: not a directory")
        if given is not None and not path.exists():
            raise InputError(f"{flag} {path}: no such directory")
    args.reports = args.reports if args.reports is not None else "reports"
    args.runs = args.runs if args.runs is not None else "runs"


def url(host: str, port: int) -> str:
    """The address to open: an IPv6 host in brackets ('http://::1:8000' opens nothing)."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _check_data_roots(args) -> None:  # noqa: ANN001
    """--data-root, like the other roots: a directory when given; and ``serve``'s has no use
    without --allow-analysis (a user passing it expects POST /runs to be on)."""
    from .errors import InputError

    for given in args.data_root or []:
        if not getattr(args, "allow_analysis", True):
            raise InputError(f"--data-root {given}: needs --allow-analysis (POST /runs is off "
                             "without it)")
        path = Path(given)
        if path.exists() and not path.is_dir():
            raise InputError(f"--data-root {path}: not a directory")
        if not path.exists():
            raise InputError(f"--data-root {path}: no such directory")


def _port(text: str) -> int:
    """argparse type of --port: an integer 1-65535 (99999 was an internal error, exit 3)."""
    import argparse

    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be 1-65535, got {port}")
    return port


def _listen(host: str, port: int):  # noqa: ANN202 — a bound, listening socket.socket
    """Bind ``host:port`` now, so an address in use or a host that does not resolve is bad input
    (exit 2, one line) instead of a server that logs a traceback and exits 1 or 3."""
    import socket

    from .errors import InputError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise InputError(f"--host {host}: cannot resolve it ({exc})") from None
    family, kind, proto, _, addr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise InputError(
            f"--host {host} --port {port}: cannot listen there ({exc.strerror or exc}); "
            "is another server on that port? pass another --port"
        ) from None
    return sock


def dashboard_argv(
    reports: str, runs: str, host: str, port: int, data_roots: list[str] | None = None
) -> tuple[list[str], dict[str, str]]:
    """The ``streamlit run`` command line and environment of ``shocklab dashboard``;
    ``data_roots`` (--data-root) become SHOCKLAB_DATA, where a run's planned calendar is read."""
    env = {
        **os.environ,
        "SHOCKLAB_REPORTS": str(Path(reports).resolve()),
        "SHOCKLAB_RUNS": str(Path(runs).resolve()),
    }
    if data_roots:
        env["SHOCKLAB_DATA"] = os.pathsep.join(str(Path(d).resolve()) for d in data_roots)
    argv = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(ROOT / "app.py"),
        "--server.headless",
        "true",
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
    ]
    return argv, env


@command("dashboard", "the Streamlit dashboard over reports/ and runs/")
def _dashboard(argv: list[str]) -> int:
    p = ArgumentParser(prog="shocklab dashboard", description="Start the Streamlit dashboard.")
    _roots(p)
    p.add_argument("--port", type=_port, default=8501, help="port to listen on (default: 8501)")
    p.add_argument("--data-root", type=path_arg, action="append", default=None, metavar="DIR",
                   help="data directories whose planned calendar a run's charts may read "
                   "(repeatable; default: SHOCKLAB_DATA, else data/)")
    args = p.parse_args(argv)
    _check_roots(args)
    _check_data_roots(args)
    _listen(args.host, args.port).close()  # streamlit binds it itself: only check it is free
    cmd, env = dashboard_argv(args.reports, args.runs, args.host, args.port, args.data_root)
    print(
        f"dashboard on {url(args.host, args.port)} (reports: {args.reports}, runs: {args.runs})",
        flush=True,
    )
    try:
        return subprocess.call(cmd, env=env)
    except KeyboardInterrupt:
        return 130


@command("serve", "the HTTP API (FastAPI) over reports/ and runs/")
def _serve(argv: list[str]) -> int:
    p = ArgumentParser(prog="shocklab serve", description="Start the HTTP API; docs at /docs.")
    _roots(p)
    p.add_argument("--port", type=_port, default=8000, help="port to listen on (default: 8000)")
    p.add_argument(
        "--allow-analysis",
        action="store_true",
        help="enable POST /runs (background analysis of a data directory under --data-root)",
    )
    p.add_argument("--data-root", type=path_arg, action="append", default=None, metavar="DIR",
                   help="directory POST /runs may read data from (repeatable; default: data/)")
    args = p.parse_args(argv)
    _check_roots(args)
    _check_data_roots(args)
    sock = _listen(args.host, args.port)
    import uvicorn

    from api.app import Settings, create_app

    settings = Settings(
        reports=Path(args.reports),
        runs=Path(args.runs),
        allow_analysis=args.allow_analysis,
        data_roots=[Path(d) for d in (args.data_root or ["data"])],
    )
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(app, host=args.host, port=args.port, log_level="info"))
    print(f"API on {url(args.host, args.port)} (docs: /docs; reports: {args.reports}, "
          f"runs: {args.runs})", flush=True)
    try:
        with sock:
            server.run(sockets=[sock])
    finally:   # the lifespan's shutdown did it, unless a second Ctrl-C forced the exit: its
        app.state.jobs.stop()   # analyses (and their workers) never outlive the server
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:   # bad input: one line on stderr (the usage went to stdout, exit 2)
        print(f"error: shocklab: give a command ({', '.join(COMMANDS)}); 'shocklab --help' says "
              "what each does", file=sys.stderr)
        return 2
    if args[0] in ("-h", "--help"):
        width = max(len(n) for n in COMMANDS)
        lines = "\n".join(f"  {n:<{width}}  {h}" for n, (_, h) in COMMANDS.items())
        print(
            f"usage: shocklab COMMAND [options]\n\ncommands:\n{lines}\n\n'shocklab COMMAND --help' "
            "for its options"
        )
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(
            f"error: shocklab: unknown command {name!r} (known: {', '.join(COMMANDS)})",
            file=sys.stderr,
        )
        return 2
    fn = COMMANDS[name][0]
    if name in ("generate", "analyse", "experiment"):
        return fn(rest)
    return run_cli(lambda a: fn(list(a or [])), rest)


if __name__ == "__main__":
    sys.exit(main())
