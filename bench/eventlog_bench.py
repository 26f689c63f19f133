"""Measure event log append throughput in bursts: ``python bench/eventlog_bench.py``.

Each run appends N realistic agent-event records (about 300 bytes of JSON each) to one topic as
fast as one thread can, then flushes. The rate counts the final flush, so for SQLite it is the
rate of *durable* appends. Prints a markdown table and the machine it ran on.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from acp_bridge.eventlog import EventLog, LogRecord, MemoryEventLog, SqliteEventLog
from bench._machine import machine

TOPIC = "observability.agent_events.s"


def agent_event(index: int) -> dict[str, Any]:
    """A payload shaped like what the agent-event sink stores."""
    return {
        "index_hint": index,
        "session_id": "s",
        "event": {
            "type": "agent_message_chunk",
            "turn_id": "turn-0007",
            "message_id": "msg-01J9ZQ3K4X8V2B7N5M6C1D0E9F",
            "content": {
                "type": "text",
                "text": "Looking at the failing test: the fixture closes the log before "
                "the subscriber has drained it.",
            },
            "timestamp": "2025-06-01T12:34:56.789Z",
        },
    }


@dataclass(frozen=True)
class Result:
    name: str
    appends: int
    append_s: float  # time spent in append() calls
    total_s: float  # append() calls plus the final flush()

    @property
    def rate(self) -> float:
        return self.appends / self.total_s


def run(name: str, make_log: Callable[[], EventLog], appends: int) -> Result:
    records = [LogRecord("agent_message_chunk", agent_event(i)) for i in range(appends)]
    log = make_log()
    try:
        append = log.append
        start = time.perf_counter()
        for record in records:
            append(TOPIC, record)
        appended = time.perf_counter()
        log.flush()
        flushed = time.perf_counter()
        assert log.latest(TOPIC) == appends
    finally:
        log.close()
    return Result(name, appends, appended - start, flushed - start)


def median_of(repeat: int, name: str, make_log: Callable[[], EventLog], appends: int) -> Result:
    """The median run by total time: steadier than the best one, fairer than the mean."""
    results = sorted((run(name, make_log, appends) for _ in range(repeat)), key=lambda r: r.total_s)
    return results[(len(results) - 1) // 2]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--appends", type=int, default=100_000, help="appends per burst")
    parser.add_argument("-r", "--repeat", type=int, default=3, help="runs per backend (median)")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the SQLite files")
    args = parser.parse_args(argv)

    payload_bytes = len(orjson.dumps(agent_event(99_999)))
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        counter = iter(range(1_000_000))

        def sqlite(synchronous: str) -> Callable[[], EventLog]:
            def make() -> EventLog:
                path = Path(tmp) / f"bench-{next(counter)}.db"
                return SqliteEventLog(path, synchronous=synchronous)  # type: ignore[arg-type]

            return make

        results = [
            median_of(args.repeat, "memory", MemoryEventLog, args.appends),
            median_of(args.repeat, "sqlite, synchronous=NORMAL", sqlite("NORMAL"), args.appends),
            median_of(args.repeat, "sqlite, synchronous=FULL", sqlite("FULL"), args.appends),
        ]

    print("### Event log (`bench/eventlog_bench.py`)")
    print()
    print(f"- machine: {machine()}")
    print(
        f"- {args.appends:,} appends of a {payload_bytes}-byte agent-event payload to one topic in a"
        f" burst, then `flush()`; median of {args.repeat} runs per backend; target ≥ 20,000 durable"
        " appends/s"
    )
    print(f"- sqlite {sqlite3.sqlite_version}, orjson {orjson.__version__}")
    print()
    print("| backend | appends/s incl. flush | append() calls only | flush wait | total |")
    print("|---|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r.name} | {r.rate:,.0f} | {r.appends / r.append_s:,.0f}/s"
            f" | {(r.total_s - r.append_s) * 1e3:,.0f} ms | {r.total_s * 1e3:,.0f} ms |"
        )


if __name__ == "__main__":
    main()
