"""Event model and sink throughput: ``python bench/events_bench.py``.

* JSON line → model → JSON line over a realistic Harn mix (target ≥ 50,000 events/s);
* ``emit_event`` through the registry to two sinks: the JSONL file sink and the event-log sink on a
  SQLite log (the persistence pair a live session has), including the final flush.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from acp_bridge.eventlog import SqliteEventLog
from acp_bridge.events import parse_event
from acp_bridge.sinks import EventLogSink, JsonlEventSink, SinkRegistry
from bench._machine import machine
from bench._mix import harn_lines

N = 100_000


def best_of(runs: int, fn: object) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    lines = harn_lines(N)

    def roundtrip() -> None:
        for line in lines:
            parse_event(line).to_json()

    rt = best_of(3, roundtrip)
    events = [parse_event(line) for line in lines]
    for event in events:
        object.__setattr__(event, "session_id", "bench")

    with tempfile.TemporaryDirectory() as tmp:
        log = SqliteEventLog(Path(tmp) / "log.sqlite")
        registry = SinkRegistry()
        jsonl = JsonlEventSink(Path(tmp) / "event_log-bench.jsonl")
        registry.register_sink("bench", jsonl)
        registry.register_sink("bench", EventLogSink(log, "bench"))

        def emit() -> None:
            for event in events:
                registry.emit_event(event)
            log.flush()

        emit_s = best_of(1, emit)
        jsonl.close()
        log.close()

    print("### Events and sinks (`bench/events_bench.py`)")
    print()
    print(f"- machine: {machine()}")
    print(f"- {N:,} events of a realistic Harn mix (golden fixtures, weighted)")
    print()
    print("| measurement | events/s | µs/event | target |")
    print("| --- | ---: | ---: | --- |")
    print(f"| JSON line → model → JSON line | {N / rt:,.0f} | {rt / N * 1e6:.1f} | ≥ 50,000/s |")
    print(
        f"| `emit_event` → JSONL sink + event-log sink (SQLite, flushed) | {N / emit_s:,.0f} | "
        f"{emit_s / N * 1e6:.1f} | — |"
    )


if __name__ == "__main__":
    main()
