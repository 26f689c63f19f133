"""The design's layers, checked on the real tree: each package imports none of what it must know nothing of.

The table below states the "knows nothing of" column of the design's Layers table as forbidden
imports, so it also forbids imports that merely look downward (a transport reaching into ``acp``).
Every import counts: relative ones, deferred ones inside functions and those under
``if TYPE_CHECKING:`` (a type-only import still couples the two packages). The import graph comes
from ``tests/support/imports.py``, whose own tests are in ``tests/test_import_graph.py``.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import acp_bridge
from tests.support.imports import Cycle, ImportGraph, forbidden_imports, layer_cycles, module_cycles

ROOT_DIR = Path(acp_bridge.__file__).parent

PACKAGES = (
    "cli",
    "app",
    "transports",
    "acp",
    "rpc",
    "translate",
    "sinks",
    "eventlog",
    "events",
    "agents",
)
SHARED = frozenset({"_version", "schema"})
"""Shared modules: usable from any layer, so they import no layer themselves."""
ENTRY_POINTS = frozenset({"__main__"})
"""Besides the root ``__init__``: the public API and entry point, which may import anything."""


@dataclass(frozen=True)
class Rule:
    """What one package must never import, and why (from the design's "knows nothing of")."""

    reason: str
    forbids: AbstractSet[str]
    """Packages of ``acp_bridge`` it must not import."""
    forbids_third_party: AbstractSet[str] = field(default_factory=frozenset)
    """Third-party top-level modules it must not import."""


RULES: dict[str, Rule] = {
    "cli": Rule(
        "the `acp-bridge` command sits on top: it may use every layer",
        forbids=frozenset(),
    ),
    "app": Rule(
        "the composition root builds every layer from options; only the command drives it",
        forbids={"cli"},
    ),
    "transports": Rule(
        "transports move decoded messages and know nothing of ACP semantics",
        forbids={"acp", "agents", "translate", "sinks", "eventlog", "events", "app", "cli"},
    ),
    "acp": Rule(
        "the ACP agent side knows nothing of how bytes move",
        forbids={"transports", "app", "cli"},
        forbids_third_party={"websockets"},
    ),
    "rpc": Rule(
        "a JSON-RPC 2.0 peer over any message transport knows nothing of ACP",
        forbids={
            "acp",
            "agents",
            "translate",
            "sinks",
            "eventlog",
            "events",
            "transports",
            "app",
            "cli",
        },
    ),
    "translate": Rule(
        "pure functions from events to wire messages know nothing of I/O or sessions",
        forbids={"acp", "agents", "rpc", "sinks", "eventlog", "transports", "app", "cli"},
    ),
    "sinks": Rule(
        "the sink registry and its sinks know nothing of ACP",
        forbids={"acp", "agents", "rpc", "translate", "transports", "app", "cli"},
    ),
    "eventlog": Rule(
        "the append-only per-session log knows nothing of events' meaning",
        forbids={
            "events",
            "acp",
            "agents",
            "rpc",
            "translate",
            "sinks",
            "transports",
            "app",
            "cli",
        },
    ),
    "events": Rule(
        "the input vocabularies know nothing of everything above them",
        forbids=frozenset(PACKAGES) - {"events"},
    ),
    "agents": Rule(
        "backends know nothing of transports, nor of the ACP layer or JSON-RPC",
        forbids={"transports", "rpc", "acp", "app", "cli"},
    ),
}


@pytest.fixture(scope="module")
def graph() -> ImportGraph:
    """The import graph of the installed ``acp_bridge`` tree."""
    return ImportGraph.scan(ROOT_DIR, "acp_bridge")


def _packages_on_disk() -> list[str]:
    # Listed at collection time, without parsing, so that each package gets its own test id.
    return sorted(
        path.name for path in ROOT_DIR.iterdir() if path.is_dir() and any(path.rglob("*.py"))
    )


def _fail_if(problems: list[str], heading: str) -> None:
    # pytest.fail without a traceback: the listed imports are the whole story, and an assert would
    # print them a second time as the repr of the list.
    if problems:
        pytest.fail("\n".join([heading, *problems]), pytrace=False)


def _describe(graph: ImportGraph, cycles: list[Cycle]) -> list[str]:
    lines = []
    for cycle in cycles:
        lines.append(" -> ".join(cycle.path))
        lines.append(f"  strongly connected: {', '.join(cycle.members)}; the imports among them:")
        lines.extend(f"    {graph.describe(imp)}" for imp in cycle.inner)
    return lines


def test_rules_cover_exactly_the_packages() -> None:
    """The table has one row per package and forbids only packages it knows (no typo passes)."""
    assert set(RULES) == set(PACKAGES)
    for package, rule in RULES.items():
        assert rule.forbids <= set(PACKAGES) - {package}, package


def test_every_package_has_a_row(graph: ImportGraph) -> None:
    """Each top-level package or module is a layer of the table, shared, or the entry point."""
    unknown = graph.layers() - set(RULES) - SHARED - ENTRY_POINTS
    _fail_if(sorted(unknown), "acp_bridge packages with no row in the layers table:")


@pytest.mark.parametrize("package", PACKAGES)
def test_no_forbidden_import(graph: ImportGraph, package: str) -> None:
    """The package imports nothing its row forbids."""
    if package not in graph.layers():
        pytest.skip(f"acp_bridge/{package} does not exist yet")
    rule = RULES[package]
    violations = forbidden_imports(graph, package, rule.forbids, rule.forbids_third_party)
    _fail_if(violations, f"{package} must not import these ({rule.reason}):")


@pytest.mark.parametrize("shared", sorted(SHARED))
def test_shared_modules_import_no_layer(graph: ImportGraph, shared: str) -> None:
    """A shared module is usable from anywhere only if it pulls no layer in with it."""
    violations = forbidden_imports(graph, shared, set(PACKAGES) | ENTRY_POINTS)
    _fail_if(violations, f"{shared} is shared, yet imports a layer:")


def test_no_layer_imports_the_public_api(graph: ImportGraph) -> None:
    """``acp_bridge`` (``__init__``) and ``__main__`` may import anything, so no layer imports them.

    An import of the root package from inside a layer would reach every layer through it.
    """
    violations = [
        graph.describe(imp)
        for imp in graph.imports
        if graph.layer_of(imp.importer) not in (None, *ENTRY_POINTS)
        and (imp.target == graph.root or graph.layer_of(imp.target) in ENTRY_POINTS)
    ]
    _fail_if(violations, "a layer imports the public API or entry point:")


@pytest.mark.parametrize("package", _packages_on_disk())
def test_no_cycle_inside_package(graph: ImportGraph, package: str) -> None:
    """Modules of one package do not import each other in a circle, not even for types."""
    cycles = module_cycles(graph, package)
    _fail_if(_describe(graph, cycles), f"import cycles inside acp_bridge/{package}:")


def test_no_cycle_between_packages(graph: ImportGraph) -> None:
    """Packages do not import each other in a circle."""
    cycles = layer_cycles(graph)
    _fail_if(_describe(graph, cycles), "import cycles between acp_bridge packages:")


# The three breaches the issue that introduced this table named, each caught by the real rules.
BREACHES = {
    "transports": ("transports/server.py", "from fakepkg.acp.bridge import Bridge\n", "acp"),
    "rpc": ("rpc/peer.py", "from ..translate import wire\n", "translate"),
    "agents": (
        "agents/backend.py",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from fakepkg.rpc import peer\n",
        "rpc",
    ),
}


@pytest.mark.parametrize("package", sorted(BREACHES))
def test_the_real_rules_catch_the_breaches_the_old_test_allowed(
    tmp_path: Path, package: str
) -> None:
    path, source, target = BREACHES[package]
    root = tmp_path / "fakepkg"
    for name in ("acp/bridge.py", "translate/wire.py", "rpc/peer.py", path):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).touch()
    (root / path).write_text(source)
    for folder in [root, *(p for p in root.rglob("*") if p.is_dir())]:
        (folder / "__init__.py").touch()
    graph = ImportGraph.scan(root, "fakepkg")
    rule = RULES[package]
    violations = forbidden_imports(graph, package, rule.forbids, rule.forbids_third_party)
    assert len(violations) == 1
    assert f"fakepkg.{target}" in violations[0]
