"""Measure event log append throughput in bursts: ``python bench/eventlog_bench.py``.

Each run appends N realistic agent-event records (about 300 bytes of JSON each) to one topic as
fast as one thread can, then flushes. The rate counts the final flush, so for SQLite it is the
rate of *durable* appends. A second table gives the SQLite writer thread's CPU time per event when
every 1, 32 or 512 appends are flushed (one commit each, as an agent yielding every 32 events
makes them): what the commits cost the process's core. Prints markdown tables and the machine.
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
HEADERS = {"session_id": "s"}  # the agent-event sink gives every record of a session this header
WRITER_BATCHES = (1, 32, 512)


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


def writer_cpu_us(batch: int, appends: int, directory: str) -> float:
    """The SQLite writer thread's CPU time per event, in µs, flushing every ``batch`` appends."""
    records = [LogRecord("agent_message_chunk", agent_event(i), HEADERS) for i in range(appends)]
    for record in records:
        record.payload_json  # noqa: B018 - encode now: the appending thread's work, not the writer's
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        log = SqliteEventLog(Path(tmp) / "writer.db")
        try:
            writer = log._writer.ident
            assert writer is not None
            clock = time.pthread_getcpuclockid(writer)
            start = time.clock_gettime(clock)
            for i, record in enumerate(records, 1):
                log.append(TOPIC, record)
                if i % batch == 0:
                    log.flush()
            log.flush()
            return (time.clock_gettime(clock) - start) / appends * 1e6
        finally:
            log.close()


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
        writer = {
            batch: sorted(
                writer_cpu_us(batch, min(args.appends, 4_096 * batch), tmp)
                for _ in range(args.repeat)
            )[(args.repeat - 1) // 2]
            for batch in WRITER_BATCHES
        }

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
    print()
    print(
        "SQLite writer thread CPU per event, flushing every N appends (one commit each;"
        f" synchronous=NORMAL; median of {args.repeat}):"
    )
    print()
    print("| appends per commit | " + " | ".join(f"{batch:,}" for batch in WRITER_BATCHES) + " |")
    print("|---|" + "---:|" * len(WRITER_BATCHES))
    print(
        "| writer CPU per event | "
        + " | ".join(f"{writer[batch]:.2f} µs" for batch in WRITER_BATCHES)
        + " |"
    )


if __name__ == "__main__":
    main()
