"""A replay after retention deleted the oldest events stops at what was committed when it began."""

from __future__ import annotations

from typing import Any

import pytest

from acp_bridge.acp.replay import replay_history
from acp_bridge.eventlog import MemoryEventLog
from acp_bridge.events import harn as h
from acp_bridge.sinks import EventLogSink
from acp_bridge.translate import Profile


class Collected:
    """Just the part of an Attachment a replay writes to."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def write_replayed(self, message: dict[str, Any]) -> None:
        self.messages.append(message)


@pytest.mark.parametrize("compact", [False, True])
async def test_replay_from_before_the_first_kept_event_stops_at_upto(compact: bool) -> None:
    log = MemoryEventLog()
    sink = EventLogSink(log, "s")
    for i in range(120):
        sink.append(
            h.ToolCallUpdate(
                session_id="s", tool_call_id=f"t{i}", tool_name="x", status="completed"
            )
        )
    log.prune(sink.topic, 90)
    attachment = Collected()
    # The load began when 100 was the last committed id; 101..120 came after it.
    count, last = await replay_history(
        log,
        "s",
        attachment,
        Profile.STRICT,
        0,
        upto=100,
        compact=compact,  # type: ignore[arg-type]
    )
    ids = [m["params"]["_meta"]["harn"]["eventId"] for m in attachment.messages]
    assert (count, last) == (10, 100)
    assert ids == list(range(91, 101))
