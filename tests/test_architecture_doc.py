"""docs/ARCHITECTURE.md names real things: every path, module, function and config key it cites
exists, its stage order is the pipelines', import rules 2 and 4 hold, and every citation of it in
the code names a section it has (the doc is the repository's reference; code cites it).

A rename that leaves the doc behind fails here, naming the stale reference."""

from __future__ import annotations

import ast
import functools
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC_PATH = ROOT / "docs" / "ARCHITECTURE.md"
DOC = DOC_PATH.read_text(encoding="utf-8")
TICKED = sorted(set(re.findall(r"`([^`\n]+)`", DOC)))
PACKAGES = ("shocklab", "simulation", "analytics", "evaluation", "experiments", "runstore",
            "dashboard", "api")
# short prefixes the prose uses for a module or class named nearby
ALIASES = {
    "hashing": "shocklab.hashing", "catalogue": "shocklab.catalogue", "draw": "simulation.draw",
    "baseline": "analytics.detectors.baseline", "products": "analytics.insights.products",
    "scoring": "evaluation.scoring", "Detector": "analytics.detectors.base.Detector",
    "DetectorInput": "analytics.detectors.base.DetectorInput",
    "RunContext": "analytics.context.RunContext", "Votes": "analytics.consensus.Votes",
}
CODE_DIRS = ("src", "tests", "tools", "bench", "config")
FILE_SUFFIXES = ("py", "json", "jsonl", "csv", "md", "yaml", "png", "sqlite", "parquet")


def _resolve(dotted: str) -> None:
    """Import the longest module prefix of ``dotted`` and getattr the rest; a class's annotated
    (dataclass or pydantic) field counts as an attribute."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        break
    else:
        raise AssertionError(f"{dotted}: no such module")
    for name in parts[i:]:
        if isinstance(obj, type) and name in _fields(obj):
            return  # a field of a dataclass / pydantic model: nothing further to follow
        assert hasattr(obj, name), f"{dotted}: {'.'.join(parts[:i])} has no {name!r}"
        obj = getattr(obj, name)


def _fields(cls: type) -> set[str]:
    out: set[str] = set()
    for c in cls.__mro__:
        out |= set(getattr(c, "__annotations__", {}))
        out |= set(getattr(c, "model_fields", {}))
    return out


@functools.cache
def _config_fields() -> dict[str, set[str]]:
    """Dotted config key -> its model's field names, for the sections the doc names, plus the
    fields of every detector type (a detector's key is ``detectors.<name>.<field>``)."""
    from analytics.config import AnalysisConfig
    from analytics.detectors import REGISTRY

    top = AnalysisConfig.model_fields
    out = {"": set(top)}
    for name, f in top.items():
        ann = f.annotation
        if isinstance(ann, type) and hasattr(ann, "model_fields"):
            out[name] = set(ann.model_fields)
    det: set[str] = set()
    for cls in REGISTRY.values():
        det |= _fields(cls.config_class)
        for f in cls.config_class.model_fields.values():  # nested models (expected: {...})
            if isinstance(f.annotation, type) and hasattr(f.annotation, "model_fields"):
                det |= set(f.annotation.model_fields)
    out["detectors.*"] = det
    return out


def _is_config_key(name: str) -> bool:
    section, _, field = name.partition(".")
    return field in _config_fields().get(section, ())


def dotted_names() -> list[str]:
    out = []
    for t in TICKED:
        m = re.fullmatch(r"([A-Za-z_][\w.]*\.[A-Za-z_]\w*)(\(.*\))?", t)
        if not m:
            continue
        name = m.group(1)
        if name.rsplit(".", 1)[1] in FILE_SUFFIXES:
            continue  # a file name (baseline.py, insights.json)
        head = name.split(".")[0]
        if head in PACKAGES:
            out.append(name)
        elif head in ALIASES and not _is_config_key(name):  # `scoring.x`: code or config
            out.append(ALIASES[head] + name[len(head):])
    return out


@pytest.mark.parametrize("dotted", dotted_names())
def test_every_module_class_and_function_the_doc_names_exists(dotted):
    _resolve(dotted)


def test_the_name_scan_finds_the_doc_names():
    names = dotted_names()
    assert "analytics.pipeline.STAGES" in names and "analytics.detectors.base.Detector.fit_blocks" \
        in names and len(names) > 30


def _path_candidates(t: str) -> list[Path]:
    if t.startswith(tuple(d + "/" for d in (*CODE_DIRS, "docs", "schemas"))):
        return [ROOT / t]
    # a module path relative to src/ or a package under it
    return [ROOT / "src" / t, ROOT / "src" / "analytics" / t]


def source_paths() -> list[str]:
    ticked = [t for t in TICKED if "*" not in t and "…" not in t and " " not in t
              and (t.endswith(".py") and "/" in t
                   or t.startswith(tuple(d + "/" for d in (*CODE_DIRS, "docs", "schemas"))))]
    # docs cited in prose (docs/history/detection.md "Sixth session: …")
    prose = re.findall(r"\bdocs/[\w/.-]+\.md\b", DOC)
    return sorted(set(ticked) | set(prose))


@pytest.mark.parametrize("path", source_paths())
def test_every_source_file_and_folder_the_doc_names_exists(path):
    assert any(p.exists() for p in _path_candidates(path)), f"{path} does not exist"


def _layers() -> str:
    block = DOC.split("## Layers", 1)[1].split("```", 2)[1]
    return block


def test_the_layers_name_every_package_and_only_real_folders():
    layers = _layers()
    named = set(re.findall(r"^(src/\w+)/", layers, re.M))
    have = {f"src/{p.name}" for p in (ROOT / "src").iterdir() if (p / "__init__.py").exists()}
    assert have - named == set(), f"packages missing from the Layers block: {have - named}"
    assert named - have == set(), f"Layers names folders that are not packages: {named - have}"
    for name in re.findall(r"^([\w.]+\.py)\b", layers, re.M) + ["app.py"]:
        assert (ROOT / name).exists(), name


def _arrows(text: str) -> list[str]:
    return [w.strip() for w in text.split("→")]


def test_the_stage_orders_are_the_pipelines():
    import analytics.pipeline as ap
    import evaluation.pipeline as ep
    from experiments.cell import SCORING_STAGES

    flow = DOC.split("## Data flow of one analysis run", 1)[1].split("\n## ", 1)[0]
    flow = " ".join(flow.split())
    m = re.search(r"(kpis → detect → consensus[^(]*?)\(`analytics\.pipeline\.STAGES`\)", flow)
    assert m, "the doc's analysis stage order is gone"
    assert _arrows(m.group(1)) == [n for n, _ in ap.STAGES]
    m = re.search(r"Experiment sweeps run only ([a-z_ →]+) per cell", flow)
    assert m and _arrows(m.group(1)) == list(SCORING_STAGES)
    # every stage the evaluation pipeline adds is documented where it is placed
    for name in [n for n, _ in ep.STAGES if n not in dict(ap.STAGES)]:
        assert re.search(rf"\b{name} (after|before) \w+", flow), f"stage {name} is not in the doc"


# knobs the prose names bare (no section prefix) — each must be a field somewhere in the config
BARE_KEYS = ("combine_rho", "combine_sensitivity", "combine_tolerance", "solo_sensitivity",
             "tolerance_days", "merge_gap_days", "early_days", "min_effect", "refit_every",
             "min_train", "max_train_days", "product_min_orders", "threshold", "sensitivity")


def test_every_config_key_the_doc_names_is_in_the_models():
    fields = _config_fields()
    every = set().union(*fields.values())
    sections = {k for k in fields if k and k != "detectors.*"}
    missing = []
    for t in TICKED:
        for key in re.findall(r"(?:^|[{,] *)([a-z_][a-z_.]*):(?= )", t):  # `key: value` forms
            if key != "base" and key.split(".")[-1] not in every:
                missing.append(t)
        m = re.fullmatch(r"([a-z_]+)\.([a-z_]+)(?:\.([a-z_]+))?(?:: .*)?", t)
        if m and m.group(2) in FILE_SUFFIXES:
            continue  # a file (insights.json)
        if m and m.group(1) in ALIASES and not _is_config_key(t.split(":")[0]):
            continue  # code (scoring.is_product: test_every_module_… resolves it)
        if m and m.group(1) in sections:
            if m.group(2) not in fields[m.group(1)]:
                missing.append(t)
        elif m and m.group(1) == "detectors":
            assert m.group(3) in fields["detectors.*"], t
    missing += [k for k in BARE_KEYS if k not in every]
    assert missing == []


def _imports(path: Path) -> list[tuple[str, int]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.module, node.lineno))
    return out


def _cross_imports(package: str, forbidden: set[str], allowed_files: set[str] = frozenset(),
                   src: Path = ROOT / "src") -> list[str]:
    bad = []
    for p in sorted((src / package).rglob("*.py")):
        rel = p.relative_to(src).as_posix()
        for mod, line in _imports(p):
            if mod.split(".")[0] in forbidden and rel not in allowed_files:
                bad.append(f"{rel}:{line} imports {mod}")
    return bad


# import rule 1, data flows one way: a layer imports only the layers upstream of it
UPSTREAM = {
    "simulation": {"shocklab"},
    "analytics": {"shocklab"},
    "evaluation": {"shocklab", "analytics"},
    "experiments": {"shocklab", "simulation", "analytics", "evaluation"},
    "runstore": {"shocklab"},
    "dashboard": {"shocklab", "runstore"},
    "api": {"shocklab", "runstore", "analytics", "evaluation"},
}


@pytest.mark.parametrize("package", sorted(UPSTREAM))
def test_import_rule_1_data_flows_one_way(package):
    assert _cross_imports(package, set(PACKAGES) - UPSTREAM[package] - {package}) == []


def test_import_rule_2_analytics_never_imports_simulation():
    assert _cross_imports("analytics", {"simulation"}) == []


def test_import_rule_4_plumbing_imports_no_other_package():
    others = set(PACKAGES) - {"shocklab"}
    # shocklab.main is the installed command: it dispatches to the CLIs and the API (rule 4)
    assert _cross_imports("shocklab", others, {"shocklab/main.py"}) == []


def test_the_import_check_sees_a_violation(tmp_path):
    pkg = tmp_path / "analytics"
    pkg.mkdir()
    (pkg / "x.py").write_text("import numpy\nfrom simulation.engine import run\n")
    assert _cross_imports("analytics", {"simulation"}, src=tmp_path) == [
        "analytics/x.py:2 imports simulation.engine"]


def _sections() -> tuple[set[str], int, int]:
    """The doc's headings and bold terms (what a quoted citation may name), and how many
    principles and import rules it numbers."""
    names = {h.strip() for h in re.findall(r"^#+ (.+)$", DOC, re.M)}
    names |= {re.split(r" \(| —", h)[0] for h in names}  # "Scoring (definitions …)": "Scoring"
    names |= {" ".join(b.split()) for b in re.findall(r"\*\*([^*]+)\*\*", DOC)}
    principles = DOC.split("## Principles", 1)[1].split("\n## ", 1)[0]
    rules = DOC.split("### Import rules", 1)[1].split("\n## ", 1)[0]
    count = lambda text: len(re.findall(r"^\d+\. ", text, re.M))  # noqa: E731
    return names, count(principles), count(rules)


def _citing_files() -> list[Path]:
    files = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    for d in CODE_DIRS:
        files += sorted(p for p in (ROOT / d).rglob("*") if p.suffix in (".py", ".yaml", ".md"))
    files += sorted(ROOT.glob("*.py"))
    return [f for f in files
            if f not in (DOC_PATH, Path(__file__).resolve()) and f.is_file()]


def citations() -> list[tuple[str, str]]:
    out = []
    quoted = r"\"[A-Z][^\"()=]*\""  # a section's name: "Scoring", "Data directory"
    pat = re.compile(rf"ARCHITECTURE(?:\.md)?`?,? *\(?({quoted}(?:, *{quoted})*|"
                     r"principle \d+|import rule \d+)")
    for f in _citing_files():
        text = " ".join(f.read_text(encoding="utf-8", errors="replace").split())
        for m in pat.finditer(text):
            out.append((f.relative_to(ROOT).as_posix(), m.group(1)))
    return out


def test_every_citation_of_the_doc_names_a_section_it_has():
    names, n_principles, n_rules = _sections()
    bad = []
    for where, cited in citations():
        if m := re.search(r"principle (\d+)", cited):
            ok = 1 <= int(m.group(1)) <= n_principles
        elif m := re.search(r"import rule (\d+)", cited):
            ok = 1 <= int(m.group(1)) <= n_rules
        else:
            ok = all(q.strip() in names for q in re.findall(r"\"([^\"]+)\"", cited))
        if not ok:
            bad.append(f"{where}: ARCHITECTURE {cited}")
    assert bad == []
    assert len(citations()) > 10  # the scan still finds the citations


def test_nothing_cites_the_team_design_contract_instead_of_this_doc():
    """The repository's own reference is docs/ARCHITECTURE.md; ../shared/DESIGN.md is not part of
    a checkout."""
    bad = [f.relative_to(ROOT).as_posix() for f in _citing_files()
           if f.suffix != ".md" and re.search(r"shared/DESIGN|DESIGN\.md",
                                                f.read_text(encoding="utf-8", errors="replace"))]
    assert bad == []


def test_the_detections_columns_are_the_detectors_output():
    from analytics.detectors.base import OUTPUT_COLUMNS

    m = re.search(r"`detections\.csv` \(([^·]+)\) ·", " ".join(DOC.split()))
    named = [re.sub(r" \(.*", "", c.strip()) for c in m.group(1).split(", ")]
    assert named == OUTPUT_COLUMNS


def test_the_docs_the_doc_cites_have_the_sections_it_names():
    """`docs/customers.md "Files"`, `docs/history/detection.md "Sixth session: the vote"`: a
    heading or a bold paragraph lead of the cited file starts with the quoted name."""
    text = " ".join(DOC.split())
    cited = re.findall(r"(docs/[\w/.-]+\.md)[`,]?,? *\(?\"([^\"]+)\"", text)
    assert len(cited) >= 3
    for path, name in cited:
        other = (ROOT / path).read_text(encoding="utf-8")
        leads = re.findall(r"^#+ (.+)$", other, re.M) + re.findall(r"\*\*([^*]+)\*\*", other)
        assert any(" ".join(lead.split()).startswith(name) for lead in leads), f"{path} {name!r}"
