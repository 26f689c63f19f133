"""Property tests: any sequence of operations matches a dict-of-lists model of the log."""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acp_bridge.eventlog import EventLog, LogRecord

from .eventlog_support import BACKENDS, new_log

TOPICS = ["a", "b.1", "c-2"]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=["Cs"]), max_size=8),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(st.characters(exclude_categories=["Cs"]), max_size=4), children)
    ),
    max_leaves=6,
)

records = st.builds(
    LogRecord,
    kind=st.sampled_from(["k", "agent.event", ""]),
    payload=json_values,
    headers=st.dictionaries(st.sampled_from(["trace", "x"]), st.text(max_size=4), max_size=2),
    occurred_at_ms=st.integers(min_value=0, max_value=2**53),
)

topics = st.sampled_from(TOPICS)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("append"), topics, records),
        st.tuples(
            st.just("read"),
            topics,
            st.integers(min_value=0, max_value=12),
            st.none() | st.integers(min_value=0, max_value=5),
        ),
        st.tuples(st.just("flush")),
        st.tuples(st.just("reopen")),
    ),
    max_size=40,
)

property_settings = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


class Model:
    """What the log should contain: a list of records per topic."""

    def __init__(self) -> None:
        self.topics: dict[str, list[LogRecord]] = {}

    def append(self, topic: str, record: LogRecord) -> int:
        self.topics.setdefault(topic, []).append(record)
        return len(self.topics[topic])

    def check(self, log: EventLog) -> None:
        assert log.topics() == sorted(self.topics)
        for topic in TOPICS:
            expected = self.topics.get(topic, [])
            assert log.latest(topic) == (len(expected) or None)
            got = log.read_range(topic)
            assert [e.id for e in got] == list(range(1, len(expected) + 1))
            assert [e.record for e in got] == expected


@pytest.mark.parametrize("backend", BACKENDS)
@property_settings
@given(ops=operations)
def test_operations_match_the_model(backend: str, ops: list[tuple[Any, ...]]) -> None:
    model = Model()
    with tempfile.TemporaryDirectory() as directory:
        log = new_log(backend, Path(directory))
        try:
            for op in ops:
                if op[0] == "append":
                    _, topic, record = op
                    assert log.append(topic, record) == model.append(topic, record)
                elif op[0] == "read":
                    _, topic, after, limit = op
                    expected = model.topics.get(topic, [])[after:]
                    if limit is not None:
                        expected = expected[:limit]
                    got = log.read_range(topic, after, limit)
                    assert [e.id for e in got] == list(range(after + 1, after + 1 + len(expected)))
                    assert [e.record for e in got] == expected
                    assert {e.topic for e in got} <= {topic}
                elif op[0] == "flush":
                    log.flush()
                elif backend == "sqlite":  # reopen: only a file outlives its log
                    log.close()
                    log = new_log(backend, Path(directory))
            model.check(log)
        finally:
            log.close()


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=15, deadline=None)
@given(plans=st.lists(st.lists(topics, max_size=60), min_size=2, max_size=4))
def test_concurrent_appenders_keep_their_own_order(backend: str, plans: list[list[str]]) -> None:
    """Each thread appends its plan; per topic, ids are gap-free and each thread's order holds."""
    with tempfile.TemporaryDirectory() as directory:
        log = new_log(backend, Path(directory))
        try:
            barrier = threading.Barrier(len(plans))
            returned: list[list[tuple[str, int]]] = [[] for _ in plans]

            def run(k: int) -> None:
                barrier.wait(5)
                for n, topic in enumerate(plans[k]):
                    returned[k].append((topic, log.append(topic, LogRecord(f"t{k}", n))))

            threads = [threading.Thread(target=run, args=(k,)) for k in range(len(plans))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(10)
                assert not thread.is_alive()
            log.flush()

            for topic in TOPICS:
                entries = log.read_range(topic)
                wanted = sum(plan.count(topic) for plan in plans)
                assert [e.id for e in entries] == list(range(1, wanted + 1))
                for k, plan in enumerate(plans):
                    mine = [e for e in entries if e.record.kind == f"t{k}"]
                    # Appends by one thread to one topic get increasing ids, in program order.
                    assert [e.record.payload for e in mine] == [
                        n for n, t in enumerate(plan) if t == topic
                    ]
                    assert [e.id for e in mine] == [i for t, i in returned[k] if t == topic]
        finally:
            log.close()
