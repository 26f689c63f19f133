"""Helpers shared by the event log tests (a module of its own so test files can import it)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from pathlib import Path
from typing import Any

from acp_bridge.eventlog import (
    EventLog,
    LogEntry,
    LogRecord,
    MemoryEventLog,
    RedisEventLog,
    SqliteEventLog,
)
from tests.support.redis_server import redis_url

BACKENDS = ["memory", "sqlite", "redis"]

MakeLog = Callable[..., EventLog]


def rec(i: int, kind: str = "test.event") -> LogRecord:
    """A small record whose payload identifies it; deterministic, so records compare equal."""
    return LogRecord(kind, {"i": i}, occurred_at_ms=1_700_000_000_000 + i)


def ids(entries: list[LogEntry]) -> list[int]:
    return [entry.id for entry in entries]


def new_log(backend: str, directory: Path, **kwargs: Any) -> EventLog:
    if backend == "memory":
        return MemoryEventLog(**kwargs)
    if backend == "redis":
        # One server for the session; a namespace per directory keeps tests apart, and reopening
        # the same directory reopens the same log.
        return RedisEventLog(redis_url(), namespace=redis_namespace(directory), **kwargs)
    return SqliteEventLog(directory / "events.db", **kwargs)


def redis_namespace(directory: Path) -> str:
    """The key namespace of the Redis log that stands for ``directory``."""
    return "t" + hashlib.sha1(str(directory).encode()).hexdigest()[:16]


def spec_for(backend: str, directory: Path) -> str:
    """An ``open_event_log`` spec for the log :func:`new_log` opens on ``directory``."""
    if backend == "redis":
        return f"{redis_url()}?namespace={redis_namespace(directory)}"
    return f"sqlite:{directory / 'events.db'}"


class WriterGate:
    """A ``_before_write`` hook (SQLite and Redis logs) that holds the writer thread until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self._released = threading.Event()
        self.batch_sizes: list[int] = []

    def __call__(self, batch: list[LogEntry]) -> None:
        self.batch_sizes.append(len(batch))
        self.entered.set()
        if not self._released.wait(5):
            raise TimeoutError("writer gate never released")

    def release(self) -> None:
        self._released.set()


def hub_of(log: EventLog) -> Any:
    """The live hub of a log, to observe its subscribers."""
    assert isinstance(log, MemoryEventLog | SqliteEventLog | RedisEventLog)
    return log._hub


def subscription(
    log: EventLog, topic: str, after: int = 0
) -> aclosing[AsyncGenerator[LogEntry, None]]:
    """``log.subscribe(...)``, closed on leaving the ``async with`` block."""
    iterator = log.subscribe(topic, after)
    assert isinstance(iterator, AsyncGenerator)
    return aclosing(iterator)
