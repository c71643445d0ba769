"""The house rules that keep the rooms apart: read from the source, so a wrong import fails here first.

* data flows one way: no two top-level packages import each other, directly or round a longer loop;
* the data room (``data/``) stands on the runtime contract alone, and nothing in ``train/`` or ``data/``
  reaches into ``fer_edge.evaluation``;
* one metrics module: accuracy and macro-F1 are defined once (``runtime/metrics.py``).
"""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path
from typing import Dict, Set, Tuple

import pytest

REPO = Path(__file__).resolve().parents[1]
#: top-level folder → the ``fer_edge`` sub-package it installs as (setup.py's STAGES)
FOLDERS = {"runtime": "runtime", "data": "data", "train": "train", "export": "export", "calibration": "calibration"}
#: the fer_edge/ package's own rooms; its loose modules (config, cli, …) form the room "fer_edge".
FER_EDGE_ROOMS = ("evaluation", "pipeline", "commands", "stages")


def _room_of_module(dotted: str) -> str:
    """``fer_edge.train.methods.dann`` → ``train``; ``fer_edge.config`` → ``fer_edge``; root → ``""``."""
    parts = dotted.split(".")
    if parts[0] != "fer_edge" or len(parts) == 1:
        return ""
    if parts[1] in FOLDERS or parts[1] in FER_EDGE_ROOMS:
        return parts[1]
    return "fer_edge"


def _modules():
    """(dotted module name, path) of every module of the installed namespace."""
    for folder, sub in FOLDERS.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            rel = path.relative_to(REPO / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            yield ".".join(["fer_edge", sub, *parts]), path
    for path in sorted((REPO / "fer_edge").rglob("*.py")):
        rel = path.relative_to(REPO / "fer_edge").with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        yield ".".join(["fer_edge", *parts]), path


def _imports(dotted: str, path: Path):
    """Every module ``path`` imports (absolute names), with the line, anywhere in the file (lazy ones too)."""
    package = dotted if path.name == "__init__.py" else dotted.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            yield name, node.lineno
            for alias in node.names:  # ``from fer_edge import evaluation`` names a package too
                yield f"{name}.{alias.name}", node.lineno


def room_graph() -> Dict[str, Dict[str, Set[Tuple[str, int]]]]:
    """room → imported room → {(module, line)}."""
    graph: Dict[str, Dict[str, Set[Tuple[str, int]]]] = defaultdict(lambda: defaultdict(set))
    known = {dotted for dotted, _ in _modules()}
    for dotted, path in _modules():
        src = _room_of_module(dotted)
        for name, line in _imports(dotted, path):
            if name.startswith("fer_edge.") and name not in known and name.rsplit(".", 1)[0] in known:
                name = name.rsplit(".", 1)[0]  # ``from pkg.mod import function``
            dst = _room_of_module(name)
            if src and dst and dst != src:
                graph[src][dst].add((f"{dotted}:{line}", line))
    return graph


def _cycle(graph) -> list:
    """One cycle of rooms, or []."""
    state: Dict[str, int] = {}
    stack: list = []

    def visit(node: str) -> list:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, {})):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if state.get(nxt) is None:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if state.get(node) is None:
            found = visit(node)
            if found:
                return found
    return []


def test_no_circular_imports_between_top_level_packages():
    graph = room_graph()
    cycle = _cycle(graph)
    where = [sorted(m for m, _ in graph[a][b])[:3] for a, b in zip(cycle, cycle[1:])]
    assert not cycle, f"rooms import each other in a loop: {' → '.join(cycle)}; first imports: {where}"


def test_the_cycle_finder_finds_a_loop():
    assert _cycle({"a": {"b": set()}, "b": {"c": set()}, "c": {"a": set()}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b": set()}, "b": {}}) == []


def test_data_stands_on_the_runtime_contract_alone():
    graph = room_graph()
    assert set(graph.get("data", {})) <= {"runtime"}, {k: sorted(m for m, _ in v)[:3] for k, v in graph["data"].items()}


@pytest.mark.parametrize("room", ["train", "data"])
def test_train_and_data_never_reach_into_evaluation(room):
    graph = room_graph()
    assert "evaluation" not in graph.get(room, {}), sorted(m for m, _ in graph[room]["evaluation"])


def test_setup_installs_data_as_a_stage():
    text = (REPO / "setup.py").read_text()
    assert 'STAGES = ("train", "export", "calibration", "runtime", "data")' in text


def test_accuracy_and_macro_f1_are_defined_once():
    """``def accuracy``/``def macro_f1`` anywhere but runtime/metrics.py is a second implementation."""
    found = []
    for dotted, path in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found += [f"{dotted}.{n.name}" for n in tree.body if isinstance(n, ast.FunctionDef)
                  and n.name in ("accuracy", "macro_f1", "confusion_matrix")]
    assert sorted(found) == ["fer_edge.runtime.metrics.accuracy", "fer_edge.runtime.metrics.confusion_matrix",
                             "fer_edge.runtime.metrics.macro_f1"]


def _relative_links(path: Path):
    import re

    for m in re.finditer(r"\]\((?!https?:|#|/|mailto:)([^)\s#]+)(#[^)]*)?\)", path.read_text(encoding="utf-8")):
        yield m.group(1)


def test_docs_for_users_and_results_for_readers_apart_and_every_link_resolves():
    """User pages in docs/, measured pages in docs/results/ (named by what they measure, all assembled into
    BENCHMARKS.md by benchmarks/run_all.py), and no relative link in README, docs or BENCHMARKS.md is dead."""
    import importlib.util
    import sys

    assert not sorted((REPO / "docs").glob("bench-*.md")), "measured pages belong in docs/results/"
    spec = importlib.util.spec_from_file_location("run_all_pages", REPO / "benchmarks" / "run_all.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["run_all_pages"] = mod
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.modules.pop("run_all_pages", None)
    pages = {p.stem for p in (REPO / "docs" / "results").glob("*.md")}
    assert pages == {name for name, _ in mod.PAGES}, "every results page is listed (and titled) in run_all.PAGES"
    dead = [(str(p.relative_to(REPO)), link) for p in [REPO / "README.md", REPO / "BENCHMARKS.md",
                                                       *(REPO / "docs").rglob("*.md")]
            for link in _relative_links(p) if not (p.parent / link).exists()]
    assert not dead, dead
