"""Bytes per stored event: ``python bench/storage_bench.py``.

N events of the benchmark's Harn mix (``bench/_mix.py``) for one session go through the real path to
disk (``EventLogSink`` into a ``SqliteEventLog``), the file is closed and VACUUMed, and its size is
divided by N. Target (issue 10): at most 200 bytes per event.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from acp_bridge.eventlog import SqliteEventLog
from acp_bridge.events import decode_session_event
from acp_bridge.sinks import EventLogSink
from bench._machine import machine
from bench._mix import harn_mix

SESSION = "3f1c2b9e-8a47-4c8e-9d2a-5b6f7e8d9c0a"  # a uuid, as session ids are


def bytes_per_event(count: int, directory: str) -> tuple[float, float]:
    """(bytes per stored event, bytes of event JSON per event) for ``count`` events of the mix."""
    events = [
        decode_session_event(raw["type"], {**raw, "session_id": SESSION}) for raw in harn_mix(count)
    ]
    path = os.path.join(directory, "storage.db")
    log = SqliteEventLog(path)
    sink = EventLogSink(log, SESSION)
    for event in events:
        sink.append(event)
    log.close()
    with sqlite3.connect(path) as conn:
        conn.execute("VACUUM")
    json_bytes = sum(len(event.to_json()) for event in events)
    return os.path.getsize(path) / count, json_bytes / count


def main() -> None:
    count = 100_000
    with tempfile.TemporaryDirectory() as tmp:
        stored, raw = bytes_per_event(count, tmp)
    print("### Storage (`bench/storage_bench.py`)")
    print()
    print(f"- machine: {machine()}")
    print(
        f"- {count:,} events of the Harn mix for one session through `EventLogSink` into SQLite, file"
        " size after VACUUM; target ≤ 200 bytes per event"
    )
    print()
    print("| bytes per stored event | event JSON per event (with its session id) |")
    print("|---:|---:|")
    print(f"| {stored:.1f} | {raw:.1f} |")


if __name__ == "__main__":
    main()
