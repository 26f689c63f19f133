"""The session-scoped sink registry and MultiSink (seed 002 semantics)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

from acp_bridge import sinks
from acp_bridge.events import harn as h
from acp_bridge.events.harn import AgentEventBase, PersistedAgentEvent
from acp_bridge.sinks import MultiSink, SinkRegistry


class CountingSink:
    def __init__(self) -> None:
        self.events: list[AgentEventBase] = []

    def handle_event(self, event: AgentEventBase) -> None:
        self.events.append(event)


class FailingSink:
    def handle_event(self, event: AgentEventBase) -> None:
        raise RuntimeError("sink exploded")


def turn_start(session_id: str, iteration: int = 0) -> h.TurnStart:
    return h.TurnStart(session_id=session_id, iteration=iteration)


@pytest.fixture
def default_registry() -> Iterator[None]:
    sinks.reset_all_sinks()
    yield
    sinks.reset_all_sinks()


def test_multi_sink_fans_out_in_order() -> None:
    order: list[str] = []

    class Named:
        def __init__(self, name: str) -> None:
            self.name = name

        def handle_event(self, event: AgentEventBase) -> None:
            order.append(self.name)

    multi = MultiSink()
    assert multi.is_empty()
    multi.push(Named("a"))
    multi.push(Named("b"))
    assert len(multi) == 2
    multi.handle_event(turn_start("s1", 1))
    assert order == ["a", "b"]


@pytest.mark.usefixtures("default_registry")
def test_session_scoped_sink_routing() -> None:
    a, b = CountingSink(), CountingSink()
    sinks.register_sink("session-a", a)
    sinks.register_sink("session-b", b)
    sinks.emit_event(turn_start("session-a"))
    assert (len(a.events), len(b.events)) == (1, 0)
    sinks.emit_event(h.TurnEnd(session_id="session-b", iteration=0, turn_info={}))
    assert (len(a.events), len(b.events)) == (1, 1)
    sinks.clear_session_sinks("session-a")
    assert sinks.session_external_sink_count("session-a") == 0
    assert sinks.session_external_sink_count("session-b") == 1


def test_registration_order_and_duplicates() -> None:
    registry = SinkRegistry()
    calls: list[int] = []

    class Tag:
        def __init__(self, n: int) -> None:
            self.n = n

        def handle_event(self, event: AgentEventBase) -> None:
            calls.append(self.n)

    first, second = Tag(1), Tag(2)
    registry.register_sink("s", first)
    registry.register_sink("s", second)
    registry.register_sink("s", first)
    registry.emit_event(turn_start("s"))
    assert calls == [1, 2, 1]
    assert registry.unregister_sink("s", first)
    calls.clear()
    registry.emit_event(turn_start("s"))
    assert calls == [2, 1]
    assert not registry.unregister_sink("other", first)


def test_emit_to_session_without_sinks_is_a_no_op() -> None:
    SinkRegistry().emit_event(turn_start("nobody"))


def test_failing_sink_is_logged_and_contained(caplog: pytest.LogCaptureFixture) -> None:
    registry = SinkRegistry()
    before, after = CountingSink(), CountingSink()
    registry.register_sink("s", before)
    registry.register_sink("s", FailingSink())
    registry.register_sink("s", after)
    with caplog.at_level(logging.ERROR, logger="acp_bridge.sinks.registry"):
        registry.emit_event(turn_start("s"))
    assert len(before.events) == len(after.events) == 1
    assert "sink exploded" in caplog.text


def test_multi_sink_contains_failures(caplog: pytest.LogCaptureFixture) -> None:
    after = CountingSink()
    multi = MultiSink([FailingSink(), after])
    with caplog.at_level(logging.ERROR):
        multi.handle_event(turn_start("s"))
    assert len(after.events) == 1


def test_emit_is_reentrant_and_snapshots_sinks() -> None:
    registry = SinkRegistry()
    late = CountingSink()
    seen: list[str] = []

    class Reentrant:
        def handle_event(self, event: AgentEventBase) -> None:
            seen.append(event.type)
            if event.type == "turn_start":
                # Registering and emitting from inside a sink must not deadlock; the sink registered
                # now is not part of the current snapshot.
                registry.register_sink("s", late)
                registry.emit_event(h.TurnEnd(session_id="s", iteration=0, turn_info={}))

    registry.register_sink("s", Reentrant())
    registry.emit_event(turn_start("s"))
    assert seen == ["turn_start", "turn_end"]
    assert [e.type for e in late.events] == ["turn_end"]


def test_persisted_envelope_is_unwrapped() -> None:
    registry = SinkRegistry()
    sink = CountingSink()
    registry.register_sink("s", sink)
    registry.emit_event(PersistedAgentEvent(index=0, emitted_at_ms=1, event=turn_start("s")))
    assert isinstance(sink.events[0], h.TurnStart)


def test_concurrent_emitters_from_several_threads() -> None:
    registry = SinkRegistry()
    lock = threading.Lock()
    received: list[tuple[str, int]] = []

    class Recording:
        def handle_event(self, event: AgentEventBase) -> None:
            with lock:
                received.append((event.session_id, event.iteration))  # type: ignore[attr-defined]

    for n in range(4):
        registry.register_sink(f"s{n}", Recording())
    per_thread = 500

    def emitter(n: int) -> None:
        for i in range(per_thread):
            registry.emit_event(turn_start(f"s{n}", i))

    def churn() -> None:
        # Registrations changing concurrently must not break delivery to the stable sinks.
        for _ in range(200):
            extra = CountingSink()
            registry.register_sink("s0", extra)
            registry.unregister_sink("s0", extra)

    threads = [threading.Thread(target=emitter, args=(n,)) for n in range(4)]
    threads.append(threading.Thread(target=churn))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
        assert not t.is_alive()
    assert len(received) == 4 * per_thread
    for n in range(4):
        # Per emitter, order is preserved.
        assert [i for s, i in received if s == f"s{n}"] == list(range(per_thread))
