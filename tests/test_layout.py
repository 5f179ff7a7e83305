"""The package layout (issue 34): no import circles in evo/, domains/ and archives/; the
engine never imports the domain plugins; plugins never import the CLI; and ``import evo``
keeps matplotlib (evo.visualize) optional.

The graph is read from the source with ``ast``: top-level, function-level and
``TYPE_CHECKING`` imports all count, since a circle hidden in a function body is still a
circle (it only fails later, or at the first call).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("evo", "domains", "archives")


def _modules() -> dict[str, Path]:
    mods = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = path
    return mods


def _owner(name: str, mods: dict[str, Path]) -> str | None:
    """The module of ours that ``name`` (a module or a name in one) lives in."""
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    """module -> the modules of ours it imports (anywhere in its body)."""
    mods = _modules()
    graph: dict[str, set[str]] = {}
    for module, path in mods.items():
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                edges.update(filter(None, (_owner(a.name, mods) for a in node.names)))
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package[: len(package) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                for alias in node.names:  # "from evo.sandbox import batch" imports the module
                    full = f"{source}.{alias.name}"
                    owner = full if full in mods else _owner(source, mods)
                    if owner:
                        edges.add(owner)
        edges.discard(module)
        graph[module] = edges
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_circle_finder_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_every_kind_of_import():
    graph = import_graph()
    assert "evo.sandbox.pool" in graph["evo.sandbox.batch"]  # from evo.sandbox import pool
    assert "evo.rundir" in graph["evo.campaign"]  # top level
    assert "domains.p3.heldout" in graph["domains.p3.domain"]  # inside a method


def test_no_import_circles():
    found = circles(import_graph())
    assert not found, "import circles: " + "; ".join(" <-> ".join(c) for c in found)


def test_the_engine_does_not_import_the_domains():
    graph = import_graph()
    bad = {m: sorted(t for t in ts if t.startswith("domains")) for m, ts in graph.items() if m.startswith("evo")}
    assert not {m: ts for m, ts in bad.items() if ts}


def test_plugins_and_archives_do_not_import_the_cli():
    graph = import_graph()
    bad = {m: sorted(t for t in ts if t == "evo.cli" or t.startswith("evo.cli."))
           for m, ts in graph.items() if m.startswith(("domains", "archives"))}
    assert not {m: ts for m, ts in bad.items() if ts}


def test_archives_do_not_import_the_domains():
    graph = import_graph()
    bad = {m: sorted(t for t in ts if t.split(".")[0] == "domains")
           for m, ts in graph.items() if m.startswith("archives")}
    assert not {m: ts for m, ts in bad.items() if ts}


def test_import_evo_keeps_matplotlib_optional():
    probe = ("import sys, evo, evo.campaign\n"
             "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib' "
             "or m == 'evo.visualize' or m.startswith('evo.visualize.'))\n"
             "print(bad)")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout


def test_tests_are_grouped_by_the_package_they_test():
    """Every test module sits in a group folder (tests/engine, tests/llm, ...), each a package
    with an ``__init__`` that says what it covers, so two groups may hold equal basenames; only
    this file, about the whole layout, stays at the top."""
    tests = ROOT / "tests"
    loose = sorted(p.name for p in tests.glob("test_*.py") if p.name != Path(__file__).name)
    assert not loose, f"test modules outside a group folder: {loose}"
    groups = [d for d in tests.iterdir() if d.is_dir() and any(d.glob("test_*.py"))]
    assert len(groups) >= 8
    for d in groups:
        init = d / "__init__.py"
        assert init.is_file() and ast.get_docstring(ast.parse(init.read_text())), d.name
