"""ReplayCompactor: which runs of chunks merge, what the merged event carries, what ends a run."""

from __future__ import annotations

from typing import Any

from acp_bridge.translate.compaction import MAX_MERGED_CHARS, ReplayCompactor


def msg(text: str, session: str | None = "s", kind: str = "agent_message_chunk") -> dict[str, Any]:
    raw: dict[str, Any] = {"type": kind, "content": text}
    if session is not None:
        raw["session_id"] = session
    return raw


def run(events: list[tuple[str, Any]]) -> list[tuple[int, str, Any]]:
    compactor = ReplayCompactor()
    out: list[tuple[int, str, Any]] = []
    for event_id, (kind, raw) in enumerate(events, start=1):
        out.extend(compactor.feed(event_id, kind, raw))
    out.extend(compactor.finish())
    return out


def test_a_run_of_message_chunks_becomes_one_event_with_the_last_id() -> None:
    chunks = [("agent_message_chunk", msg(t)) for t in ("Hel", "lo, ", "world")]
    assert run(chunks) == [(3, "agent_message_chunk", msg("Hello, world"))]


def test_thoughts_and_messages_are_separate_runs_and_other_events_end_a_run() -> None:
    tool = {"type": "tool_call", "session_id": "s", "tool_call_id": "t1"}
    events = [
        ("agent_thought_chunk", msg("think ", kind="agent_thought_chunk")),
        ("agent_thought_chunk", msg("hard", kind="agent_thought_chunk")),
        ("agent_message_chunk", msg("a")),
        ("agent_message_chunk", msg("b")),
        ("tool_call", tool),
        ("agent_message_chunk", msg("c")),
    ]
    assert run(events) == [
        (2, "agent_thought_chunk", msg("think hard", kind="agent_thought_chunk")),
        (4, "agent_message_chunk", msg("ab")),
        (5, "tool_call", tool),
        (6, "agent_message_chunk", msg("c")),
    ]


def test_chunks_of_another_session_or_with_extra_fields_do_not_merge() -> None:
    extra = {**msg("y"), "future_field": 1}
    events = [
        ("agent_message_chunk", msg("a")),
        ("agent_message_chunk", msg("b", session="other")),
        ("agent_message_chunk", extra),
        ("agent_message_chunk", {"type": "agent_message_chunk", "content": 5}),
    ]
    assert [event_id for event_id, _, _ in run(events)] == [1, 2, 3, 4]


def test_stored_chunks_without_their_session_id_merge_too() -> None:
    events = [("agent_message_chunk", msg(t, session=None)) for t in "abc"]
    assert run(events) == [(3, "agent_message_chunk", msg("abc", session=None))]


def text_delta(run_id: str, delta: str, ts: str) -> dict[str, Any]:
    return {
        "session_id": "s",
        "runtime": {"TextDelta": {"run_id": run_id, "delta": delta, "timestamp": ts}},
    }


def test_runtime_text_deltas_of_one_run_merge_with_the_last_timestamp() -> None:
    kind = "runtime.TextDelta"
    events = [
        (kind, text_delta("r1", "a", "t1")),
        (kind, text_delta("r1", "b", "t2")),
        (kind, text_delta("r2", "c", "t3")),
    ]
    assert run(events) == [
        (2, kind, text_delta("r1", "ab", "t2")),
        (3, kind, text_delta("r2", "c", "t3")),
    ]


def test_a_merged_event_stops_growing_at_the_size_cap() -> None:
    piece = "x" * 1000
    count = MAX_MERGED_CHARS // 1000 + 5
    out = run([("agent_message_chunk", msg(piece)) for _ in range(count)])
    assert len(out) == 2
    first, second = out
    assert len(first[2]["content"]) <= MAX_MERGED_CHARS
    assert first[2]["content"] + second[2]["content"] == piece * count
    assert (first[0], second[0]) == (MAX_MERGED_CHARS // 1000, count)


def test_nothing_in_nothing_out() -> None:
    assert run([]) == []
    assert ReplayCompactor().finish() == ()


def upd(call: str, status: str, **fields: Any) -> tuple[str, dict[str, Any]]:
    raw = {"type": "tool_call_update", "session_id": "s", "tool_call_id": call, "status": status}
    return ("tool_call_update", {**raw, **fields})


def test_one_calls_consecutive_updates_replay_as_its_final_state() -> None:
    call = ("tool_call", {"type": "tool_call", "session_id": "s", "tool_call_id": "t1"})
    events = [
        call,
        upd("t1", "in_progress", raw_input={"path": "a"}, raw_output=None),
        upd("t1", "completed", raw_output={"text": "done"}, raw_input=None),
    ]
    assert run(events) == [
        (1, *call),
        (
            3,
            "tool_call_update",
            {
                "type": "tool_call_update",
                "session_id": "s",
                "tool_call_id": "t1",
                "status": "completed",
                "raw_input": {"path": "a"},  # set earlier, not unset by the later None
                "raw_output": {"text": "done"},
            },
        ),
    ]


def test_updates_of_another_call_or_anything_between_end_the_run() -> None:
    events = [
        upd("t1", "in_progress"),
        upd("t2", "in_progress"),
        upd("t2", "completed"),
        ("agent_message_chunk", msg("x")),
        upd("t2", "failed"),
    ]
    assert [(event_id, raw.get("tool_call_id")) for event_id, _, raw in run(events)] == [
        (1, "t1"),
        (3, "t2"),
        (4, None),
        (5, "t2"),
    ]


def test_what_held_at_one_moment_is_not_carried_into_the_final_state() -> None:
    events = [
        upd("t1", "in_progress", parsing=True, raw_input_partial='{"a', error="retrying"),
        upd("t1", "completed", raw_output={"text": "done"}),
    ]
    ((_, _, merged),) = run(events)
    assert "parsing" not in merged
    assert "raw_input_partial" not in merged
    assert "error" not in merged
    assert merged["raw_output"] == {"text": "done"}
