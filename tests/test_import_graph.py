"""Tests of the import-graph checker behind ``test_layering.py``, on tiny fake packages.

A layering test that cannot fail checks nothing: each kind of breach the real-tree tests look for
(forbidden import written absolutely or relatively, circle inside a package, circle between
packages) is built here and must be caught, and a clean tree must pass.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.support.imports import (
    ImportGraph,
    forbidden_imports,
    layer_cycles,
    module_cycles,
)

ROOT = "fakepkg"


def build(tmp_path: Path, files: dict[str, str]) -> ImportGraph:
    """Write ``fakepkg`` under ``tmp_path`` (every folder gets an ``__init__.py``) and scan it."""
    root_dir = tmp_path / ROOT
    for name, source in files.items():
        path = root_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source), encoding="utf-8")
    for folder in [root_dir, *(p for p in root_dir.rglob("*") if p.is_dir())]:
        (folder / "__init__.py").touch()
    return ImportGraph.scan(root_dir, ROOT)


CLEAN = {
    "acp/y.py": """
        from fakepkg.rpc.peer import Peer

        class Z(Peer): ...
    """,
    "acp/__init__.py": "from .y import Z\n",
    "rpc/peer.py": "class Peer: ...\n",
    "transports/x.py": """
        from typing import TYPE_CHECKING

        from ..rpc import peer

        if TYPE_CHECKING:
            from fakepkg.rpc.peer import Peer
    """,
}


def test_clean_tree_passes(tmp_path: Path) -> None:
    graph = build(tmp_path, CLEAN)

    assert forbidden_imports(graph, "transports", {"acp"}, {"websockets"}) == []
    assert forbidden_imports(graph, "rpc", {"acp", "transports"}) == []
    assert graph.layers() == {"acp", "rpc", "transports"}
    assert not any(module_cycles(graph, layer) for layer in graph.layers())
    assert layer_cycles(graph) == []


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param("from fakepkg.acp.y import Z", id="absolute-from"),
        pytest.param("import fakepkg.acp.y", id="absolute-import"),
        pytest.param("from ..acp.y import Z", id="relative-from"),
        pytest.param("from ..acp import y", id="relative-submodule"),
        pytest.param(
            "import importlib\nimportlib.import_module('fakepkg.acp.y')", id="import_module"
        ),
        pytest.param("def later():\n    from ..acp.y import Z", id="deferred"),
        pytest.param(
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..acp.y import Z",
            id="type-only",
        ),
    ],
)
def test_forbidden_import_is_caught_however_written(tmp_path: Path, statement: str) -> None:
    """The breach of (a) an absolute and (b) a relative import, and their other spellings."""
    graph = build(tmp_path, {**CLEAN, "transports/x.py": statement + "\n"})

    violations = forbidden_imports(graph, "transports", {"acp"})

    assert len(violations) == 1
    assert violations[0].startswith("fakepkg/transports/x.py:")
    assert ": imports fakepkg.acp.y" in violations[0]


def test_import_of_a_package_name_resolves_to_its_init(tmp_path: Path) -> None:
    """``from .. import acp`` and ``from ..acp import Z`` both load ``fakepkg.acp`` itself."""
    graph = build(
        tmp_path, {**CLEAN, "transports/x.py": "from .. import acp\nfrom ..acp import Z\n"}
    )

    assert forbidden_imports(graph, "transports", {"acp"}) == [
        "fakepkg/transports/x.py:1: imports fakepkg.acp",
        "fakepkg/transports/x.py:2: imports fakepkg.acp",
    ]


def test_type_only_imports_are_marked(tmp_path: Path) -> None:
    source = """
        import typing
        if typing.TYPE_CHECKING:
            from ..acp import y
        else:
            from ..acp.y import Z
    """
    graph = build(tmp_path, {**CLEAN, "transports/x.py": source})

    assert forbidden_imports(graph, "transports", {"acp"}) == [
        "fakepkg/transports/x.py:4: imports fakepkg.acp.y (type-only)",
        "fakepkg/transports/x.py:6: imports fakepkg.acp.y",
    ]


def test_forbidden_third_party_module_is_caught(tmp_path: Path) -> None:
    graph = build(tmp_path, {**CLEAN, "acp/y.py": "from websockets.frames import CloseCode\n"})

    assert forbidden_imports(graph, "acp", set(), {"websockets"}) == [
        "fakepkg/acp/y.py:1: imports websockets.frames"
    ]


def test_type_only_cycle_inside_a_package_is_caught(tmp_path: Path) -> None:
    """(c) Two modules that import each other only for annotations still form a circle."""
    graph = build(
        tmp_path,
        {
            **CLEAN,
            "acp/a.py": """
                from typing import TYPE_CHECKING
                if TYPE_CHECKING:
                    from .b import B
            """,
            "acp/b.py": """
                from typing import TYPE_CHECKING
                if TYPE_CHECKING:
                    from fakepkg.acp.a import A
            """,
        },
    )

    [cycle] = module_cycles(graph, "acp")

    assert cycle.path == ("fakepkg.acp.a", "fakepkg.acp.b", "fakepkg.acp.a")
    assert [graph.describe(edge) for edge in cycle.edges] == [
        "fakepkg/acp/a.py:4: imports fakepkg.acp.b (type-only)",
        "fakepkg/acp/b.py:4: imports fakepkg.acp.a (type-only)",
    ]
    assert module_cycles(graph, "transports") == []


def test_cycle_through_the_package_init_is_caught(tmp_path: Path) -> None:
    """A submodule importing a name from its own package, whose ``__init__`` imports it back."""
    graph = build(
        tmp_path,
        {
            **CLEAN,
            "acp/__init__.py": "from .w import W\nfrom .y import Z\n",
            "acp/w.py": "from fakepkg.acp import Z\nclass W: ...\n",
        },
    )

    [cycle] = module_cycles(graph, "acp")

    assert cycle.path == ("fakepkg.acp", "fakepkg.acp.w", "fakepkg.acp")


def test_longer_cycle_reports_its_whole_group(tmp_path: Path) -> None:
    graph = build(
        tmp_path,
        {
            **CLEAN,
            "acp/a.py": "from . import b\n",
            "acp/b.py": "from . import c\n",
            "acp/c.py": "def f():\n    from .a import A\n",
        },
    )

    [cycle] = module_cycles(graph, "acp")

    assert cycle.path == ("fakepkg.acp.a", "fakepkg.acp.b", "fakepkg.acp.c", "fakepkg.acp.a")
    assert cycle.members == ("fakepkg.acp.a", "fakepkg.acp.b", "fakepkg.acp.c")


def test_cycle_between_packages_is_caught(tmp_path: Path) -> None:
    graph = build(
        tmp_path, {**CLEAN, "rpc/peer.py": "from ..transports import x\nclass Peer: ...\n"}
    )

    [cycle] = layer_cycles(graph)

    assert cycle.path == ("rpc", "transports", "rpc")
    assert module_cycles(graph, "rpc") == []


def test_relative_import_above_the_root_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="beyond the top-level package"):
        build(tmp_path, {"acp/y.py": "from ... import elsewhere\n"})
