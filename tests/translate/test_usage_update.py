"""``usage_update`` from token-counting events (decision 0027), valid per the schema."""

from __future__ import annotations

from typing import Any

import pytest

from acp_bridge.events import harn as h
from acp_bridge.events.runtime import parse_runtime_event
from acp_bridge.translate import Profile, translate
from acp_bridge.translate.runtime import RuntimeTranslator
from acp_bridge.translate.usage import context_used
from tests.support.acp_schema import acp_schema

TS = "2026-06-25T15:12:51.123456789Z"


def usage_updates(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for message in messages:
        if message["method"] == "session/update":
            acp_schema().check("SessionNotification", message["params"])
            if message["params"]["update"]["sessionUpdate"] == "usage_update":
                found.append(message["params"]["update"])
    return found


def usage_recorded(**usage: int) -> Any:
    return parse_runtime_event({"UsageRecorded": {"run_id": "r", "usage": usage, "timestamp": TS}})


def test_runtime_usage_becomes_usage_update_when_the_window_is_known() -> None:
    translator = RuntimeTranslator(session_id="s", context_window=128_000)
    result = translator.translate(
        usage_recorded(input_tokens=1200, output_tokens=300, total_tokens=1500)
    )
    kinds = [m["params"].get("kind") for m in result.messages]
    assert kinds == ["usage_recorded", None]  # the extension keeps its full counts
    assert usage_updates(result.messages) == [
        {"sessionUpdate": "usage_update", "used": 1500, "size": 128_000}
    ]


def test_runtime_usage_without_a_window_sends_no_usage_update() -> None:
    result = RuntimeTranslator(session_id="s").translate(
        usage_recorded(input_tokens=1, output_tokens=1, total_tokens=2)
    )
    assert usage_updates(result.messages) == []
    assert [m["params"]["kind"] for m in result.messages] == ["usage_recorded"]


def test_replayed_usage_update_is_marked() -> None:
    translator = RuntimeTranslator(session_id="s", context_window=1000)
    result = translator.translate(
        usage_recorded(input_tokens=1, output_tokens=1, total_tokens=2), replay=True
    )
    assert usage_updates(result.messages)[0]["_meta"]["acp_bridge"]["replayed"] is True


@pytest.mark.parametrize(
    ("usage", "used"),
    [
        ({"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}, 15),
        ({"input_tokens": 10, "output_tokens": 5}, 15),
        (
            {"total_tokens": 15, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 7},
            122,
        ),
        ({"total_tokens": 15, "cached_input_tokens": 8}, 15),  # part of the input already
        ({"input_tokens": 10}, None),
        ({"total_tokens": -1}, None),
    ],
)
def test_context_used(usage: dict[str, Any], used: int | None) -> None:
    assert context_used(usage) == used


def iteration_end(info: dict[str, Any]) -> h.IterationEnd:
    return h.IterationEnd(session_id="s", iteration=1, iteration_info=info)


def test_harn_iteration_end_in_strict_profile() -> None:
    info = {"input_tokens": 900, "output_tokens": 100, "model": "m"}
    named = translate(iteration_end({**info, "context_window": 200_000}))
    assert usage_updates(named) == [
        {"sessionUpdate": "usage_update", "used": 1000, "size": 200_000}
    ]
    configured = translate(iteration_end(info), context_window=8192)
    assert usage_updates(configured)[0]["size"] == 8192
    assert usage_updates(translate(iteration_end(info))) == []
    # The extension notification is still there, first.
    assert named[0]["method"] == "_harn/agentEvent"


def test_harn_profile_is_harns_wire_unchanged() -> None:
    event = iteration_end({"input_tokens": 1, "output_tokens": 1, "context_window": 10})
    messages = translate(event, profile=Profile.HARN, context_window=10)
    assert [m["method"] for m in messages] == ["_harn/agentEvent"]


def test_transcript_compacted_reports_what_is_left_in_context() -> None:
    event = h.TranscriptCompacted(
        session_id="s",
        mode="auto",
        reason="budget",
        strategy="summarize",
        archived_messages=12,
        estimated_tokens_before=90_000,
        estimated_tokens_after=20_000,
    )
    assert usage_updates(translate(event, context_window=100_000)) == [
        {"sessionUpdate": "usage_update", "used": 20_000, "size": 100_000}
    ]
