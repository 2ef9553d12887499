"""The truth wall, enforced on the import graph (docs/ARCHITECTURE.md import rule 3, issue 14).

1. No module under src/analytics imports ``evaluation`` (the package that knows the truth): the
   dependency points one way, evaluation -> analytics.
2. No module under src/analytics reads truth — names a ``truth/`` path, touches a ``.truth`` (the
   run context's ``Truth``, handed to evaluation stages only) or one of the old ``truth_*``
   fields, or imports ``shocklab.truth`` outside an ``if TYPE_CHECKING:`` block — except the
   modules listed in ``TRUTH_READERS_DEBT``: readers that predate the wall and are still to be
   moved behind it. The list may only shrink; a new reader fails.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ANALYTICS = ROOT / "src" / "analytics"

TRUTH_FIELDS = {
    "truth", "truth_events", "truth_baseline", "truth_counterfactual", "truth_customers"
}
TRUTH_MODULES = ("shocklab.truth",)
# Known readers still to be moved behind the wall: none since issue 14. Do not add to it.
TRUTH_READERS_DEBT: set[str] = set()


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body
        ):
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def _type_checking_only(tree: ast.AST) -> set[int]:
    """ids of the nodes inside ``if TYPE_CHECKING:`` blocks (type-only imports)."""
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for stmt in node.body:
                ids |= {id(n) for n in ast.walk(stmt)}
    return ids


def violations(source: str, filename: str) -> tuple[list[str], list[str]]:
    """(imports of evaluation, truth reads) in one module's source, as 'file:line: what'."""
    tree = ast.parse(source, filename)
    docs = _docstrings(tree)
    typing_only = _type_checking_only(tree)
    imports, reads = [], []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", ""))
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            names = [str(node.args[0].value)]
        imports += [f"{filename}:{node.lineno}: imports {n}" for n in names
                    if n == "evaluation" or n.startswith("evaluation.")]
        if id(node) not in typing_only:
            reads += [f"{filename}:{node.lineno}: imports {n}" for n in names
                      if n in TRUTH_MODULES or n.startswith(tuple(m + "." for m in TRUTH_MODULES))]
        if isinstance(node, ast.Attribute) and node.attr in TRUTH_FIELDS:
            reads.append(f"{filename}:{node.lineno}: reads .{node.attr}")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docs
            and (node.value == "truth" or node.value.startswith("truth/"))
        ):
            reads.append(f"{filename}:{node.lineno}: names {node.value!r}")
    return imports, reads


def _modules() -> list[Path]:
    return sorted(ANALYTICS.rglob("*.py"))


def test_analytics_never_imports_evaluation():
    found = [
        v
        for p in _modules()
        for v in violations(p.read_text(encoding="utf-8"), str(p.relative_to(ANALYTICS)))[0]
    ]
    assert not found, "analytics must not import evaluation:\n" + "\n".join(found)


def test_no_new_truth_readers_in_analytics():
    found = []
    for p in _modules():
        rel = p.relative_to(ANALYTICS).as_posix()
        if rel not in TRUTH_READERS_DEBT:
            found += violations(p.read_text(encoding="utf-8"), rel)[1]
    assert not found, (
        "analytics must not read truth (hand it to an evaluation stage):\n" + "\n".join(found)
    )


@pytest.mark.parametrize(("source", "kind"), [
    ("from evaluation.scoring import build_scorecard\n", 0),
    ("import evaluation\n", 0),
    ("import importlib\nimportlib.import_module('evaluation.truth')\n", 0),
    ("def f(ds):\n    return ds.truth_events\n", 1),
    ("from pathlib import Path\np = Path('x') / 'truth' / 'events.json'\n", 1),
    ("def f(d):\n    return open(d + '/' + 'truth/baseline_daily.csv')\n", 1),
    ("def f(ctx):\n    return ctx.truth.events\n", 1),
    ("from shocklab.truth import TruthEvent\n", 1),
    ("import shocklab.truth\n", 1),
])
def test_the_checker_catches_a_violation(source, kind):
    """The wall test would fail on each of these (shown in the issue note)."""
    assert violations(source, "bad.py")[kind], source


def test_docstrings_mentioning_truth_are_not_reads():
    assert violations('"""Reads nothing from truth/ at all."""\nX = 1\n', "ok.py") == ([], [])


def test_a_type_only_import_is_not_a_read():
    src = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from shocklab.truth import Truth\n"
    )
    assert violations(src, "ok.py") == ([], [])
