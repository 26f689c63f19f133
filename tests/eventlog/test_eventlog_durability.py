"""The durability half of the EventLog contract: ``committed``, commit listeners, and kill -9.

An id the log reports committed (through ``committed`` or a commit listener) is durable: it survives
the process being killed at any instant, with the same content, and is never handed out again. That
is what lets the bridge send an event to a client as soon as, and not before, it is committed. Every
test runs against every backend; the kill test against every backend whose records outlive the
process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

import pytest

from acp_bridge.eventlog import EventLog, LogRecord, RedisEventLog, SqliteEventLog

from .eventlog_support import BACKENDS, MakeLog, WriterGate, new_log, rec, spec_for

DURABLE_BACKENDS = [b for b in BACKENDS if b != "memory"]
"""Backends whose records outlive the process (the kill test needs a reopen)."""


class Recorder:
    """A commit listener that remembers every ``{topic: id}`` it is told, and the thread."""

    def __init__(self) -> None:
        self.heads: list[dict[str, int]] = []
        self.threads: set[int] = set()
        self.told = threading.Condition()

    def __call__(self, heads: Mapping[str, int]) -> None:
        with self.told:
            self.heads.append(dict(heads))
            self.threads.add(threading.get_ident())
            self.told.notify_all()

    def last(self, topic: str) -> int:
        return max((h[topic] for h in self.heads if topic in h), default=0)


def test_committed_never_passes_latest_and_reaches_it_on_flush(log: EventLog) -> None:
    assert log.committed("a") is None
    for i in range(50):
        log.append("a", rec(i))
        latest, committed = log.latest("a"), log.committed("a")
        assert latest is not None
        assert committed is None or committed <= latest
    log.flush()
    assert log.committed("a") == log.latest("a") == 50


def test_listeners_hear_every_commit_before_flush_returns(log: EventLog) -> None:
    recorder = Recorder()
    log.add_commit_listener(recorder)
    for i in range(300):
        log.append("a", rec(i))
        log.append("b", rec(i))
    log.flush()
    # Told before flush returned: no waiting here.
    assert recorder.last("a") == 300
    assert recorder.last("b") == 300
    # Per topic, heads only grow.
    for topic in ("a", "b"):
        told = [h[topic] for h in recorder.heads if topic in h]
        assert told == sorted(told)


async def test_listeners_hear_every_commit_before_aflush_returns(log: EventLog) -> None:
    recorder = Recorder()
    log.add_commit_listener(recorder)
    for i in range(100):
        log.append("a", rec(i))
    await log.aflush()
    assert recorder.last("a") == 100


def test_a_listener_may_use_the_log(log: EventLog) -> None:
    # Listeners run outside the log's lock: calling back into the log must not deadlock.
    seen: list[tuple[int | None, int | None]] = []

    def listener(heads: Mapping[str, int]) -> None:
        seen.append((log.committed("a"), log.latest("a")))

    log.add_commit_listener(listener)
    worker = threading.Thread(target=lambda: [log.append("a", rec(i)) for i in range(20)])
    worker.start()
    worker.join(5)
    assert not worker.is_alive(), "append deadlocked with a listener that reads the log"
    log.flush()
    assert seen
    assert all(c is not None and c >= 1 for c, _ in seen)


def test_a_removed_listener_is_not_called(log: EventLog) -> None:
    recorder = Recorder()
    log.add_commit_listener(recorder)
    log.remove_commit_listener(recorder)
    log.append("a", rec(0))
    log.flush()
    assert recorder.heads == []


def test_a_failing_listener_does_not_stop_the_others(log: EventLog) -> None:
    def failing(heads: Mapping[str, int]) -> None:
        raise RuntimeError("listener failed on purpose")

    recorder = Recorder()
    log.add_commit_listener(failing)
    log.add_commit_listener(recorder)
    log.append("a", rec(0))
    log.flush()
    assert recorder.last("a") == 1
    assert log.append("a", rec(1)) == 2


@pytest.mark.parametrize("backend", DURABLE_BACKENDS)
def test_nothing_is_reported_committed_before_its_transaction_is(
    backend: str, tmp_path: Path
) -> None:
    gate = WriterGate()
    log = new_log(backend, tmp_path)
    assert isinstance(log, SqliteEventLog | RedisEventLog)
    log._before_write = gate
    recorder = Recorder()
    log.add_commit_listener(recorder)
    log.append("a", rec(0))
    assert gate.entered.wait(5)
    # The writer holds the batch: it is readable, but neither committed nor reported.
    assert log.latest("a") == 1
    assert log.committed("a") is None
    assert recorder.heads == []
    gate.release()
    log.flush()
    assert recorder.last("a") == 1
    log.close()


CHILD = """
import os, sys, json, random, signal
from acp_bridge.eventlog import open_event_log, LogRecord
spec, seed, stop_after = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
log = open_event_log(spec)
rng = random.Random(seed)
out = os.fdopen(1, "w", buffering=1)
told = 0
def listener(heads):
    global told
    head = heads.get("t")
    if head is not None and head > told:
        told = head
        out.write(f"{head}\\n")  # line-buffered: the parent has it before the kill can come
        if head >= stop_after:
            os.kill(os.getpid(), signal.SIGKILL)  # mid-stream, with more appends in flight
log.add_commit_listener(listener)
i = 0
while True:
    i += 1
    log.append("t", LogRecord("k", {"i": i, "pad": "x" * rng.randrange(200)}, occurred_at_ms=i))
"""


@pytest.mark.parametrize("backend", DURABLE_BACKENDS)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_committed_ids_survive_kill_9_and_are_never_reused(
    backend: str, seed: int, tmp_path: Path
) -> None:
    spec = spec_for(backend, tmp_path)
    stop_after = 2_000 + 1_000 * seed
    child = subprocess.run(
        [sys.executable, "-c", CHILD, spec, str(seed), str(stop_after)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    told = [int(line) for line in child.stdout.split()]
    assert told
    assert told[-1] >= stop_after
    reopened = new_log(backend, tmp_path)
    try:
        # Everything reported committed is there, with the content it was appended with.
        stored = reopened.read_range("t")
        assert len(stored) >= told[-1]
        assert [e.record.payload["i"] for e in stored] == list(range(1, len(stored) + 1))
        # The next id is past every id anybody was told about: none is handed out twice.
        next_id = reopened.append("t", LogRecord("k", {"i": "after"}))
        assert next_id == len(stored) + 1 > told[-1]
    finally:
        reopened.close()


async def test_listeners_run_off_the_event_loop_for_a_writer_thread(make_log: MakeLog) -> None:
    log = make_log()
    recorder = Recorder()
    log.add_commit_listener(recorder)
    log.append("a", rec(0))
    await log.aflush()
    assert recorder.heads
    if isinstance(log, SqliteEventLog | RedisEventLog):
        # The writer thread commits, so it tells: a listener must be ready for any thread.
        assert threading.get_ident() not in recorder.threads
    else:
        assert recorder.threads == {threading.get_ident()}
