"""The mapping tables in docs/ are the ones the code renders."""

from __future__ import annotations

from pathlib import Path

from acp_bridge.translate.harn import ROWS
from acp_bridge.translate.tables import render_event_mapping, render_runtime_mapping

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_event_mapping_doc_matches_the_code() -> None:
    assert (DOCS / "event-mapping.md").read_text() == render_event_mapping(), (
        "docs/event-mapping.md is stale: run python -m acp_bridge.translate.tables"
    )


def test_runtime_mapping_doc_matches_the_code() -> None:
    assert (DOCS / "runtime-mapping.md").read_text() == render_runtime_mapping(), (
        "docs/runtime-mapping.md is stale: run python -m acp_bridge.translate.tables"
    )


def test_event_mapping_lists_every_variant() -> None:
    text = render_event_mapping()
    for event_type in ROWS:
        assert f"| `{event_type}` |" in text


def test_every_stable_session_update_kind_has_a_documented_path() -> None:
    from tests.support.acp_schema import acp_schema

    kinds = {
        branch["properties"]["sessionUpdate"]["const"]
        for branch in acp_schema().defs["SessionUpdate"]["oneOf"]
    }
    assert len(kinds) == 11
    # Some kinds have no runtime-dialect source (thoughts, plans): the two tables together show all.
    docs = render_event_mapping() + render_runtime_mapping()
    for kind in kinds:
        assert f"`{kind}`" in docs, kind
