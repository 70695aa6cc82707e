"""Imports go down the layers only, and no import cycle anywhere (ARCHITECTURE: layers).

Every module under `src/learnlog` is parsed (never imported) and its imports, resolved to
full module names, make a graph. Every import counts: at the top of a module, inside a
function, and under `if TYPE_CHECKING:` (a type-checking import is a dependency of the
code all the same: the type checker follows it, and a reader must know the other module).

The layers, lowest first. A module may import from its own layer and from any layer of a
lower rank; layers of the same rank are separate layers (none imports another):

| rank | layer                                  | what it is                               |
| ---- | -------------------------------------- | ---------------------------------------- |
| 0    | `domain/`, `__init__.py` (the version) | pure rules, standard library only        |
| 1    | `settings.py`                          | configuration: a leaf every layer above  |
|      |                                        | the domain may import                    |
| 2    | `store/`                               | tables, unit of work, outbox, cache      |
| 3    | `service/`                             | use cases over the store's unit of work  |
| 4    | `analytics/`, `sync/`, `jobs/`         | log pipelines, the sync protocol, the    |
|      |                                        | outbox handlers: each over the services  |
| 5    | `bootstrap.py`                         | the composition root: builds a runtime   |
| 6    | `api/`                                 | the HTTP edge, built on the runtime      |
| 7    | `cli.py`, `writer_host.py`             | processes: commands, the writer host     |
| 8    | `__main__.py`                          | `python -m learnlog`                     |

`api|cli|jobs → service → domain` and `service → store` (ARCHITECTURE) fix most of it; the
rest is what the code is: analytics and sync call the services and the store, bootstrap
builds the outbox loop and the analytics engines, and the entry points (the app factory,
the CLI, the writer host) build their runtime with `bootstrap` (as in cosmicpython, the
entry points sit on the composition root, not under it). A new top-level module or
package must be given a row here before the test passes.

The modules of `benchmarks/` (`benchmarks/*.py`, `benchmarks/refs/*.py`; each script puts
its own folder on `sys.path` and imports its neighbours by bare name) have no layers, but
no cycle either.

An edge is the import of the most specific module named: `from learnlog.store import
schema` is an edge to `learnlog.store.schema`, `from learnlog.store.schema import meta` to
`learnlog.store.schema`; the parent packages Python also runs are not edges.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
BENCHMARKS = (ROOT / "benchmarks", ROOT / "benchmarks" / "refs")

RANKS: dict[str, int] = {
    "domain": 0, "__init__": 0,
    "settings": 1,
    "store": 2,
    "service": 3,
    "analytics": 4, "sync": 4, "jobs": 4,
    "bootstrap": 5,
    "api": 6,
    "cli": 7, "writer_host": 7,
    "__main__": 8,
}

# Imports the checks let pass, (importer, imported) -> why; fixed ones leave the list
# (a test fails on an entry that no longer occurs). Keep it empty.
KNOWN_EXCEPTIONS: dict[tuple[str, str], str] = {}


@dataclass(frozen=True, slots=True)
class Edge:
    """One import: `source` imports `target`, at `path`:`line`."""

    source: str
    target: str
    path: str
    line: int
    how: str = ""  # "in a function", "under TYPE_CHECKING", or "" (at the top)

    def __str__(self) -> str:
        where = f", {self.how}" if self.how else ""
        return f"{self.source} -> {self.target} ({self.path}:{self.line}{where})"


@dataclass(frozen=True, slots=True)
class Module:
    """A module's source: its name, its file as reported, whether it is a package."""

    name: str
    path: str
    source: str
    is_package: bool = False


def src_modules(top: Path = SRC / "learnlog") -> list[Module]:
    """Every module of the package, found by walking its tree."""
    found = []
    for path in sorted(top.rglob("*.py")):
        parts = list(path.relative_to(top.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        found.append(Module(name, str(path.relative_to(ROOT)),
                            path.read_text(encoding="utf-8"), is_package))
    return found


def benchmark_modules() -> list[Module]:
    """The benchmark scripts, named as they import each other: by bare name."""
    return [Module(path.stem, str(path.relative_to(ROOT)), path.read_text(encoding="utf-8"))
            for folder in BENCHMARKS for path in sorted(folder.glob("*.py"))]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _known(name: str, names: set[str]) -> str | None:
    """The longest prefix of the dotted `name` that is one of the modules, if any."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in names:
            return ".".join(parts[:end])
    return None


def _absolute(module: Module, node: ast.ImportFrom) -> str:
    """The module a `from … import` names, relative imports resolved."""
    if node.level == 0:
        return node.module or ""
    package = module.name.split(".")
    if not module.is_package:
        package = package[:-1]
    if node.level - 1 > len(package) - 1:
        raise ValueError(f"{module.path}:{node.lineno}: a relative import beyond the top")
    base = package[:len(package) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def edges_of(module: Module, known: Iterable[str]) -> list[Edge]:
    """The imports of one module's source that name one of the `known` modules."""
    names = set(known)
    found: list[Edge] = []

    def add(target: str | None, node: ast.stmt, how: str) -> None:
        if target is not None:
            found.append(Edge(module.name, target, module.path, node.lineno, how))

    def visit(node: ast.AST, how: str) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(_known(alias.name, names), node, how)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, node)
            for alias in node.names:
                add(_known(f"{base}.{alias.name}", names) if base else
                    _known(alias.name, names), node, how)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            how = how or "in a function"
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, "under TYPE_CHECKING")
            for child in node.orelse:
                visit(child, how)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, how)

    visit(ast.parse(module.source, module.path), "")
    return list(dict.fromkeys(found))  # `from x import a, b`: one edge


def graph(modules: Iterable[Module]) -> list[Edge]:
    """Every import between the modules, known exceptions left out."""
    listed = list(modules)
    names = {m.name for m in listed}
    return [edge for m in listed for edge in edges_of(m, names)
            if (edge.source, edge.target) not in KNOWN_EXCEPTIONS]


def layer(module: str) -> str:
    """The layer of a `learnlog…` module: its top-level module or package under learnlog."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def unplaced(modules: Iterable[str], ranks: Mapping[str, int] = RANKS) -> list[str]:
    """Modules whose layer has no rank in the table."""
    return sorted(m for m in modules if layer(m) not in ranks)


def upward(edges: Iterable[Edge], ranks: Mapping[str, int] = RANKS) -> list[Edge]:
    """Imports from a layer to a higher one, or to another layer of the same rank."""
    return [e for e in edges
            if layer(e.source) != layer(e.target)
            and ranks[layer(e.target)] >= ranks[layer(e.source)]]


def cycles(edges: Iterable[Edge]) -> list[list[Edge]]:
    """The imports inside each cycle: one list per strongly connected component of more
    than one module (or of one module importing itself), found with Tarjan's algorithm."""
    listed = list(edges)
    succ: dict[str, list[str]] = {}
    for e in listed:
        succ.setdefault(e.source, []).append(e.target)
        succ.setdefault(e.target, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in succ[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            components.append(component)

    for v in sorted(succ):
        if v not in index:
            connect(v)
    found = []
    for component in components:
        inside = [e for e in listed if e.source in component and e.target in component]
        if len(component) > 1 or inside:
            found.append(sorted(inside, key=lambda e: (e.source, e.target, e.line)))
    return sorted(found, key=lambda c: (c[0].source, c[0].target))


def report(found: list[list[Edge]]) -> str:
    return "\n".join(
        f"cycle of {', '.join(sorted({e.source for e in c}))}:\n"
        + "\n".join(f"  {e}" for e in c) for c in found)


# -- the checks ------------------------------------------------------------------------------

def test_every_module_has_a_layer() -> None:
    modules = src_modules()
    assert {"learnlog.domain.keys", "learnlog.store.schema", "learnlog.service.writer",
            "learnlog.api.app", "learnlog.bootstrap"} <= {m.name for m in modules}
    assert unplaced(m.name for m in modules) == [], "give these a row of the layer table"


def test_no_import_goes_up_a_layer() -> None:
    bad = upward(graph(src_modules()))
    assert bad == [], "imports from a lower layer to a higher one:\n" + "\n".join(
        f"  {e}  [{layer(e.source)} (rank {RANKS[layer(e.source)]}) -> {layer(e.target)} "
        f"(rank {RANKS[layer(e.target)]})]" for e in bad)


def test_no_import_cycle_in_learnlog() -> None:
    found = cycles(graph(src_modules()))
    assert found == [], "import cycles:\n" + report(found)


def test_no_import_cycle_in_benchmarks() -> None:
    modules = benchmark_modules()
    names = [m.name for m in modules]
    assert len(names) == len(set(names)), "two benchmark scripts of the same name"
    assert {"run", "seed", "export_bench", "sync_bench", "raw_ceiling"} <= set(names)
    found = cycles(graph(modules))
    assert found == [], "import cycles:\n" + report(found)


def test_known_exceptions_still_occur() -> None:
    modules = src_modules()
    names = {m.name for m in modules}
    present = {(e.source, e.target) for m in modules for e in edges_of(m, names)}
    assert set(KNOWN_EXCEPTIONS) <= present, "fixed: remove them from KNOWN_EXCEPTIONS"


# -- the checker itself ----------------------------------------------------------------------

def test_the_checker_reports_a_cycle_and_an_upward_import() -> None:
    modules = [
        Module("learnlog.store.db", "store/db.py",
               "from typing import TYPE_CHECKING\n"
               "if TYPE_CHECKING:\n"
               "    from ..service.writer import Writer\n"),
        Module("learnlog.service", "service/__init__.py", "", is_package=True),
        Module("learnlog.service.writer", "service/writer.py",
               "import os\nfrom learnlog.store import db\n"),
        Module("learnlog.service.reads", "service/reads.py",
               "def f():\n    from . import writer\n"),
        Module("learnlog.store", "store/__init__.py", "", is_package=True),
    ]
    edges = graph(modules)
    up = Edge("learnlog.store.db", "learnlog.service.writer", "store/db.py", 3,
              "under TYPE_CHECKING")
    down = Edge("learnlog.service.writer", "learnlog.store.db", "service/writer.py", 2)
    assert set(edges) == {up, down, Edge("learnlog.service.reads", "learnlog.service.writer",
                                         "service/reads.py", 2, "in a function")}
    assert upward(edges) == [up]
    assert cycles(edges) == [[down, up]] and "store/db.py:3" in report(cycles(edges))
    assert str(up) == ("learnlog.store.db -> learnlog.service.writer "
                       "(store/db.py:3, under TYPE_CHECKING)")


def test_the_checker_refuses_peers_and_unplaced_modules() -> None:
    peer = Edge("learnlog.jobs.outbox", "learnlog.sync.apply", "jobs/outbox.py", 1)
    assert upward([peer]) == [peer]
    assert unplaced(["learnlog.jobs.outbox", "learnlog.newthing"]) == ["learnlog.newthing"]


def test_a_module_importing_itself_is_a_cycle() -> None:
    me = Edge("learnlog.api", "learnlog.api", "api/__init__.py", 1)
    assert cycles([me]) == [[me]]
