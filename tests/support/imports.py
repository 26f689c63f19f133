"""A static import graph of one Python package, for layering tests.

Every ``.py`` file under the package is parsed with :mod:`ast` (nothing is imported, so a broken or
slow module cannot hide its imports) and every import statement anywhere in it is collected: module
level, inside functions, under ``if TYPE_CHECKING:``, plus ``importlib.import_module("literal")``.
A deferred or type-only import still ties two modules together in the design, which is why none is
skipped; each is marked so that reports can say which kind it is.

Imports are resolved to the absolute name of the module they load:

* relative imports are anchored at the importing file's package (``from ..acp import y``);
* ``from pkg import name`` means the submodule ``pkg.name`` when that module exists in the tree, and
  ``pkg`` itself (its ``__init__``) otherwise, since then ``name`` is an attribute of ``pkg``.

The graph is scanned from a directory and a root package name given by the caller, so tests can run
the same checks against tiny fake packages built in a temporary directory.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Collection, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

__all__ = [
    "Cycle",
    "Import",
    "ImportGraph",
    "find_cycles",
    "forbidden_imports",
    "layer_cycles",
    "module_cycles",
]


@dataclass(frozen=True)
class Import:
    """One import statement (or one name of it), resolved to the absolute module it loads."""

    path: Path
    """The file holding the statement."""
    lineno: int
    importer: str
    """Absolute name of the importing module."""
    target: str
    """Absolute name of the imported module."""
    type_only: bool
    """Whether the statement sits under ``if TYPE_CHECKING:`` and so never runs."""


@dataclass(frozen=True)
class Cycle:
    """Modules (or layers) that import each other in a circle."""

    path: tuple[str, ...]
    """One shortest circle through the group, first node repeated at the end."""
    members: tuple[str, ...]
    """Every node of the strongly connected group the circle was found in, sorted."""
    edges: tuple[Import, ...]
    """For each step of ``path``, one import statement that makes it."""
    inner: tuple[Import, ...]
    """Every import between members of the group: what has to change to break all its circles."""


@dataclass(frozen=True, repr=False)
class ImportGraph:
    """The modules of one package tree and every import made by them."""

    root: str
    """Name of the root package, e.g. ``acp_bridge``."""
    root_dir: Path
    """Directory of the root package (the one holding its ``__init__.py``)."""
    modules: Mapping[str, Path]
    """Absolute module name → file, for every ``.py`` file under ``root_dir``."""
    imports: Sequence[Import]

    @classmethod
    def scan(cls, root_dir: Path, root: str | None = None) -> ImportGraph:
        """Parse every ``.py`` file under ``root_dir``, a package importable as ``root``.

        ``root`` defaults to the directory's name. Raises :class:`SyntaxError` for a file that does
        not parse and :class:`ValueError` for a relative import reaching above ``root``.
        """
        root = root or root_dir.name
        modules = {
            _module_name(root, root_dir, path): path for path in sorted(root_dir.rglob("*.py"))
        }
        imports: list[Import] = []
        for module, path in modules.items():
            collector = _Collector(path, module, _is_package(path), set(modules))
            collector.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
            imports.extend(collector.found)
        return cls(root=root, root_dir=root_dir, modules=modules, imports=tuple(imports))

    def __repr__(self) -> str:
        # The default repr lists every import; pytest prints it in each failing test's header.
        return (
            f"ImportGraph({self.root!r}, {len(self.modules)} modules, {len(self.imports)} imports)"
        )

    def layer_of(self, module: str) -> str | None:
        """The top-level package or module of ``root`` that ``module`` belongs to.

        ``None`` for the root package itself and for modules outside the tree (third-party ones).
        """
        parts = module.split(".")
        if parts[0] != self.root or len(parts) < 2:
            return None
        return parts[1]

    def layers(self) -> set[str]:
        """Every top-level package and module present in the tree."""
        return {layer for module in self.modules if (layer := self.layer_of(module)) is not None}

    def imports_from(self, layer: str) -> Iterator[Import]:
        """Imports made by the modules of ``layer``."""
        return (imp for imp in self.imports if self.layer_of(imp.importer) == layer)

    def where(self, imp: Import) -> str:
        """``file:line`` of an import, the file relative to the root's parent directory."""
        return f"{imp.path.relative_to(self.root_dir.parent).as_posix()}:{imp.lineno}"

    def describe(self, imp: Import) -> str:
        """One line naming an import statement: ``pkg/x.py:3: imports pkg.y (type-only)``."""
        kind = " (type-only)" if imp.type_only else ""
        return f"{self.where(imp)}: imports {imp.target}{kind}"


def forbidden_imports(
    graph: ImportGraph,
    layer: str,
    forbidden_layers: Collection[str],
    forbidden_third_party: Collection[str] = (),
) -> list[str]:
    """Lines describing each import by ``layer`` of a forbidden layer or third-party module.

    ``forbidden_third_party`` names top-level distributions' modules (``websockets``); a submodule
    of one (``websockets.frames``) is forbidden with it.
    """
    return [
        graph.describe(imp)
        for imp in graph.imports_from(layer)
        if graph.layer_of(imp.target) in forbidden_layers
        or (
            imp.target.split(".")[0] in forbidden_third_party and graph.layer_of(imp.target) is None
        )
    ]


def module_cycles(graph: ImportGraph, layer: str) -> list[Cycle]:
    """Import circles among the modules of one layer (type-only and deferred imports included).

    A package's ``__init__`` is a module like any other: a submodule importing a name from its own
    package, whose ``__init__`` imports that submodule, is a circle.
    """
    edges: dict[tuple[str, str], list[Import]] = {}
    for imp in graph.imports_from(layer):
        if graph.layer_of(imp.target) == layer:
            edges.setdefault((imp.importer, imp.target), []).append(imp)
    return find_cycles(edges)


def layer_cycles(graph: ImportGraph) -> list[Cycle]:
    """Import circles between the top-level packages and modules of the tree.

    The root package itself is left out: as the public API it may import every layer.
    """
    edges: dict[tuple[str, str], list[Import]] = {}
    for imp in graph.imports:
        source, target = graph.layer_of(imp.importer), graph.layer_of(imp.target)
        if source is not None and target is not None:
            edges.setdefault((source, target), []).append(imp)
    return find_cycles(edges)


def find_cycles(edges: Mapping[tuple[str, str], Sequence[Import]]) -> list[Cycle]:
    """One shortest circle per strongly connected group of the graph made of ``edges``.

    ``edges`` maps each (importer, imported) pair to the import statements that make it.

    Self-edges are ignored: a module importing itself finds itself in ``sys.modules`` and runs
    nothing again, so it is no circle worth reporting.
    """
    successors: dict[str, set[str]] = {}
    for source, target in edges:
        successors.setdefault(source, set())
        successors.setdefault(target, set())
        if source != target:
            successors[source].add(target)
    cycles = []
    for group in _strongly_connected(successors):
        if len(group) < 2:
            continue
        path = _shortest_circle(min(group), group, successors)
        steps = tuple(edges[step][0] for step in pairwise(path))
        inner = tuple(
            imp
            for (source, target), imps in edges.items()
            if source != target and {source, target} <= group
            for imp in imps
        )
        cycles.append(Cycle(path=path, members=tuple(sorted(group)), edges=steps, inner=inner))
    return sorted(cycles, key=lambda cycle: cycle.members)


def _module_name(root: str, root_dir: Path, path: Path) -> str:
    parts = path.relative_to(root_dir).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join((root, *parts))


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _is_type_checking(test: ast.expr) -> bool:
    """``TYPE_CHECKING`` or ``typing.TYPE_CHECKING`` (any ``x.TYPE_CHECKING``)."""
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _is_import_module(func: ast.expr) -> bool:
    """``importlib.import_module`` or a bare ``import_module`` taken from it."""
    return (isinstance(func, ast.Name) and func.id == "import_module") or (
        isinstance(func, ast.Attribute)
        and func.attr == "import_module"
        and isinstance(func.value, ast.Name)
        and func.value.id == "importlib"
    )


class _Collector(ast.NodeVisitor):
    """Collects the resolved imports of one module, remembering whether each is type-only."""

    def __init__(self, path: Path, module: str, is_package: bool, known: AbstractSet[str]) -> None:
        self.path = path
        self.module = module
        # Relative imports count from the package holding the file; for an __init__ that is the
        # module itself.
        self.package = module if is_package else module.rpartition(".")[0]
        self.known = known
        self.type_only = False
        self.found: list[Import] = []

    def visit_If(self, node: ast.If) -> None:
        if not _is_type_checking(node.test):
            self.generic_visit(node)
            return
        outer = self.type_only
        self.type_only = True
        for statement in node.body:
            self.visit(statement)
        self.type_only = outer
        # The else branch of `if TYPE_CHECKING:` is what runs.
        for statement in node.orelse:
            self.visit(statement)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(node, alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = self._absolute(node)
        targets = []
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            targets.append(submodule if submodule in self.known else base)
        # One entry per module a statement loads: `from .x import A, B` is one import of `.x`.
        for target in dict.fromkeys(targets):
            self._add(node, target)

    def visit_Call(self, node: ast.Call) -> None:
        # Only an absolute name written as one literal is followed; a computed name (f-string,
        # lookup table) cannot be resolved without running the code.
        if (
            _is_import_module(node.func)
            and len(node.args) == 1
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and not node.args[0].value.startswith(".")
        ):
            self._add(node, node.args[0].value)
        self.generic_visit(node)

    def _absolute(self, node: ast.ImportFrom) -> str:
        if node.level == 0:
            return node.module or ""
        anchor = self.package.split(".")
        if node.level - 1 >= len(anchor):
            raise ValueError(
                f"{self.path}:{node.lineno}: relative import beyond the top-level package"
            )
        base = ".".join(anchor[: len(anchor) - (node.level - 1)])
        return f"{base}.{node.module}" if node.module else base

    def _add(self, node: ast.stmt | ast.expr, target: str) -> None:
        self.found.append(
            Import(
                path=self.path,
                lineno=node.lineno,
                importer=self.module,
                target=target,
                type_only=self.type_only,
            )
        )


def _strongly_connected(successors: Mapping[str, AbstractSet[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative so that a long import chain cannot hit the recursion limit."""
    index: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    groups: list[set[str]] = []
    for start in sorted(successors):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(successors[start])))]
        index[start] = lowlink[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    parent = work[-1][0]
                    lowlink[parent] = min(lowlink[parent], lowlink[node])
                if lowlink[node] == index[node]:
                    group: set[str] = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.add(member)
                        if member == node:
                            break
                    groups.append(group)
            elif child not in index:
                index[child] = lowlink[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(successors[child]))))
            elif child in on_stack:
                lowlink[node] = min(lowlink[node], index[child])
    return groups


def _shortest_circle(
    start: str, group: AbstractSet[str], successors: Mapping[str, AbstractSet[str]]
) -> tuple[str, ...]:
    """Breadth-first from ``start`` back to itself, staying inside ``group``."""
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for child in sorted(successors[node] & group):
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return (*reversed(path), start)
            if child not in came_from:
                came_from[child] = node
                queue.append(child)
    raise AssertionError(f"{start} is in a strongly connected group but on no circle")
