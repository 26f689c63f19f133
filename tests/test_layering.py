"""docs/architecture.md: each layer is a package and imports only point down the table. Checked here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import acp_bridge

# Top to bottom, as in docs/architecture.md.
LAYERS = [
    "cli",
    "app",
    "transports",
    "acp",
    "agents",
    "rpc",
    "translate",
    "sinks",
    "eventlog",
    "events",
]
SHARED = {"_version", "schema"}  # usable from anywhere
ROOT = Path(acp_bridge.__file__).parent


def imported_layers(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "acp_bridge" and len(parts) > 1:
                found.add(parts[1])
    return found


@pytest.mark.parametrize("layer", LAYERS)
def test_imports_point_down(layer: str) -> None:
    allowed = set(LAYERS[LAYERS.index(layer) :]) | SHARED
    violations = {
        f"{path.relative_to(ROOT)} imports acp_bridge.{imported}"
        for path in sorted((ROOT / layer).rglob("*.py"))
        for imported in imported_layers(path) - allowed
    }
    assert not violations


def test_every_package_has_a_place() -> None:
    packages = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages <= set(LAYERS) | SHARED
