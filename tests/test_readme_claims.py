"""The README's mechanical claims hold: every relative link in README.md and docs/ resolves (its
file, and its #anchor to a heading of that file), every ``--flag`` shown after a command
(``python run_analysis.py …``, ``shocklab serve …``, ``python bench/….py …``) is one that
command's parser defines, every ``--flag`` named anywhere is defined by some command, and every
config key set (``--set key=value``, ``--analysis-set``) or written as ``key: value`` is a key of
a config schema (schemas/*.schema.json) — in the README and the docs of the current code
(docs/ARCHITECTURE.md, real-series.md, customers.md; docs/history/ quotes old flags on purpose).

The user's audit of session 38 found the README's flags and keys right and docs/history/'s links
dead (their text was moved out of the README with links still relative to the repository's root);
these checks keep both true without anyone re-reading 1,700 lines. Static: no command is run."""

from __future__ import annotations

import ast
import functools
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
# the docs that describe the current code (docs/history/ quotes earlier flags on purpose)
CURRENT = "\n".join((ROOT / p).read_text(encoding="utf-8") for p in (
    "README.md", "docs/ARCHITECTURE.md", "docs/real-series.md", "docs/customers.md"))
# options of tools the README quotes that are not ShockLab's (pytest, pytest-xdist)
OTHER_TOOLS = {"--pdb", "--numprocesses", "--dist"}
# a command as the README writes it, and the files whose parsers define its flags
COMMAND = re.compile(
    r"python3?(?: -m (analytics\.insights)| ((?:bench/|tools/)?\w+\.py))"
    r"|\bshocklab (generate|analyse|experiment|dashboard|serve)\b")
SCRIPT_OF = {"generate": "generate_data.py", "analyse": "run_analysis.py",
             "experiment": "run_experiment.py", "dashboard": "src/shocklab/main.py",
             "serve": "src/shocklab/main.py", "analytics.insights": "src/analytics/insights/cli.py"}
FLAG = re.compile(r"(?<![\w-])--[a-z][\w-]*")


# --- links ----------------------------------------------------------------------------------

def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as dashes."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _links() -> list[tuple[str, str]]:
    out = []
    for md in DOCS:
        text = re.sub(r"```.*?```", "", md.read_text(encoding="utf-8"), flags=re.S)
        for link in re.findall(r"\]\(([^)\s]+)\)", text):
            if not re.match(r"[a-z]+:", link):  # http:, https:, mailto:
                out.append((md.relative_to(ROOT).as_posix(), link))
    return out


@pytest.mark.parametrize(("doc", "link"), _links())
def test_every_relative_link_resolves(doc, link):
    path, _, anchor = link.partition("#")
    target = (ROOT / doc).parent / path if path else ROOT / doc
    assert target.exists(), f"{doc}: the link {link} leads nowhere ({target} does not exist)"
    if anchor and target.suffix == ".md":
        heads = re.findall(r"^#+ (.*)$", target.read_text(encoding="utf-8"), re.M)
        assert anchor in {_anchor(h) for h in heads}, f"{doc}: {link}: no such heading"


def test_the_link_check_sees_a_dead_link_and_a_bad_anchor(tmp_path):
    assert _anchor("Random worlds, the oracle and the benchmark (issue 9)") == \
        "random-worlds-the-oracle-and-the-benchmark-issue-9"
    assert ("README.md", "#performance") in _links()
    with pytest.raises(AssertionError, match="leads nowhere"):
        test_every_relative_link_resolves("README.md", "docs/no-such-file.md")
    with pytest.raises(AssertionError, match="no such heading"):
        test_every_relative_link_resolves("README.md", "#no-such-section")


# --- flags ----------------------------------------------------------------------------------

@functools.cache
def _literals(rel: str) -> frozenset[str]:
    """Every string constant of the file that is a whole ``--flag``: its parser's options."""
    tree = ast.parse((ROOT / rel).read_text(encoding="utf-8"))
    return frozenset(n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)
                     and isinstance(n.value, str) and re.fullmatch(r"--[a-z][\w-]*", n.value))


def _flags_of(command: str) -> frozenset[str]:
    rel = SCRIPT_OF.get(command, command)
    common = _literals("src/shocklab/cli.py")  # --set, --debug, --quiet, --force
    return _literals(rel) | common | {"--help"}


def _snippets() -> list[str]:
    """Command lines of the docs' code blocks (continuations joined) and their inline code."""
    out = []
    for lang, block in re.findall(r"```(\w*)\n(.*?)```", CURRENT, re.S):
        if lang in ("", "bash"):
            out += block.replace("\\\n", " ").splitlines()
    prose = re.sub(r"```.*?```", "", CURRENT, flags=re.S)
    out += [" ".join(s.split()) for s in re.findall(r"`([^`]+)`", prose)]
    return out


def shown_flags() -> list[tuple[str, str, str]]:
    """(command, flag, snippet) for each flag written after a command, up to the next command
    or shell separator; quoted values (``--gate "…"``, ``--set '…'``) are not read as flags."""
    out = []
    for snippet in _snippets():
        for part in re.split(r"&&|;|\$\(| # ", snippet):
            found = list(COMMAND.finditer(part))
            for i, m in enumerate(found):
                command = m.group(1) or m.group(2) or m.group(3)
                end = found[i + 1].start() if i + 1 < len(found) else len(part)
                args = re.sub(r"'[^']*'|\"[^\"]*\"", "", part[m.end():end])
                out += [(command, f, snippet) for f in FLAG.findall(args)]
    return out


def test_the_flag_scan_finds_the_readmes_commands():
    seen = {(c, f) for c, f, _ in shown_flags()}
    assert {("run_analysis.py", "--kpis"), ("run_experiment.py", "--gate"),
            ("dashboard", "--runs"), ("bench/bench_nab.py", "--cv"),
            ("analytics.insights", "--check")} <= seen


@pytest.mark.parametrize(("command", "flag", "snippet"), sorted(set(shown_flags())))
def test_every_flag_shown_after_a_command_is_that_commands(command, flag, snippet):
    assert (ROOT / SCRIPT_OF.get(command, command)).is_file(), f"{command}: no such script"
    assert flag in _flags_of(command), f"{command} has no {flag} (README: {snippet!r})"


def test_every_flag_the_readme_names_is_some_commands():
    defined = set(OTHER_TOOLS)
    for path in [*ROOT.glob("*.py"), *(ROOT / "bench").glob("*.py"), *(ROOT / "src").rglob("*.py")]:
        defined |= _literals(path.relative_to(ROOT).as_posix())
    assert sorted(set(FLAG.findall(CURRENT)) - defined) == []


# --- config keys ----------------------------------------------------------------------------

@functools.cache
def _schemas() -> dict[str, dict]:
    return {p.name: json.loads(p.read_text(encoding="utf-8"))
            for p in sorted((ROOT / "schemas").glob("*.schema.json")) if "insights" not in p.name}


def _branches(schema: dict, node: dict) -> list[dict]:
    while "$ref" in node:
        node = schema["$defs"][node["$ref"].rsplit("/", 1)[1]]
    out = [node]
    for key in ("anyOf", "oneOf", "allOf"):
        for b in node.get(key, []):
            out += _branches(schema, b)
    if isinstance(node.get("items"), dict):
        out += _branches(schema, node["items"])
    return out


def _resolves(schema: dict, node: dict, parts: list[str]) -> bool:
    if not parts:
        return True
    for b in _branches(schema, node):
        if parts[0] in b.get("properties", {}) and _resolves(schema, b["properties"][parts[0]],
                                                              parts[1:]):
            return True
        extra = b.get("additionalProperties")  # a mapping by name (detectors.<name>.…)
        if isinstance(extra, dict) and _resolves(schema, extra, parts[1:]):
            return True
        if parts[0].isdigit() and b.get("type") == "array" and _resolves(
                schema, b.get("items", {}), parts[1:]):  # a list element (events.2.drop_pct)
            return True
    return False


def _nodes(schema: dict) -> list[dict]:
    out, todo, seen = [], [schema], set()
    while todo:
        for b in _branches(schema, todo.pop()):
            if id(b) not in seen:
                seen.add(id(b))
                out.append(b)
                todo += list(b.get("properties", {}).values())
                if isinstance(b.get("additionalProperties"), dict):
                    todo.append(b["additionalProperties"])
    return out


def is_config_key(key: str) -> bool:
    """From a config's root (``--set consensus.combine_rho=…``), or from a section the text
    names it in (``shortfall.judge_before_baseline: true`` in Customers)."""
    parts = key.split(".")
    return any(_resolves(s, node, parts) for s in _schemas().values() for node in _nodes(s))


def config_keys() -> list[str]:
    keys = set(re.findall(r"--(?:analysis-)?set '?([a-z_][\w.]*)=", CURRENT))
    for tick in set(re.findall(r"`([^`\n]+)`", CURRENT)):
        keys |= set(re.findall(r"(?:^|[{,] *)([a-z_][a-z_0-9.]*): (?=\S)", tick))
    # `base: none` is read before the schema (analysis files); the rest are placeholders
    return sorted(keys - {"base", "key", "dotted.key"})


def test_the_key_scan_finds_the_readmes_keys():
    keys = config_keys()
    assert {"detectors.rolling_zscore.sensitivity", "world.magnitude.mode", "split.run",
            "consensus.combine", "events.2.drop_pct"} <= set(keys)
    assert not is_config_key("consensus.no_such_key") and not is_config_key("no_such_section.x")


@pytest.mark.parametrize("key", config_keys())
def test_every_config_key_the_readme_sets_is_in_a_schema(key):
    assert is_config_key(key), f"README names the config key {key!r}; no schema has it"
