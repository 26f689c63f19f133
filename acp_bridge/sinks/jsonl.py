"""``JsonlEventSink``: Harn's JSONL event log (one ``PersistedAgentEvent`` envelope per line).

The on-disk format is Harn's (``HARN_EVENT_LOG_DIR``): ``{"index","emitted_at_ms","frame_depth",...event}``
per line, the file truncated on open, a contiguous ``index`` from 0, rotation at 100 MiB to
``<stem>-000001.<ext>``, ``<stem>-000002.<ext>``… with the index continuing across files.

Writes never raise into the emitter: an I/O error is logged and counted (``write_errors``), and the index
only advances for lines actually written, so the file's indices stay contiguous.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import BinaryIO

from acp_bridge.events.session_event import SessionEvent

__all__ = ["DEFAULT_ROTATE_BYTES", "JsonlEventSink", "rotated_path"]

logger = logging.getLogger(__name__)

DEFAULT_ROTATE_BYTES = 100 * 1024 * 1024
"""Harn's ``JsonlEventSink::ROTATE_BYTES``."""


def rotated_path(base: Path, rotation: int) -> Path:
    """The path of the ``rotation``-th file after ``base`` (``event_log-abc.jsonl`` → ``event_log-abc-000001.jsonl``)."""
    if rotation == 0:
        return base
    stem = base.stem or "event_log"
    ext = base.suffix[1:] or "jsonl"
    return base.with_name(f"{stem}-{rotation:06d}.{ext}")


class JsonlEventSink:
    """Writes every event it receives as one envelope line; thread-safe.

    ``flush_each_line`` (default) makes each line reach the OS before ``handle_event`` returns, so a crash
    of the bridge loses nothing already emitted (Harn's later behaviour); turn it off for raw speed.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        rotate_bytes: int = DEFAULT_ROTATE_BYTES,
        flush_each_line: bool = True,
    ) -> None:
        self.path = Path(path)
        self.rotate_bytes = rotate_bytes
        self.flush_each_line = flush_each_line
        self.write_errors = 0
        self._lock = threading.Lock()
        self._index = 0
        self._bytes_written = 0
        self._rotation = 0
        self._last_ms = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: BinaryIO | None = open(self.path, "wb")  # noqa: SIM115 - owned until close()

    @property
    def event_count(self) -> int:
        """How many events have been written (the next line's ``index``)."""
        return self._index

    @property
    def current_path(self) -> Path:
        """The file currently being written."""
        return rotated_path(self.path, self._rotation)

    def handle_event(self, event: SessionEvent) -> None:
        """Append one envelope line for ``event``."""
        body = event.to_json()
        with self._lock:
            if self._file is None:
                self._count_error(ValueError("sink is closed"))
                return
            # The wall clock can step back; Harn's readers expect non-decreasing timestamps.
            now = max(time.time_ns() // 1_000_000, self._last_ms)
            line = b'{"index":%d,"emitted_at_ms":%d,"frame_depth":null,%s\n' % (
                self._index,
                now,
                body[1:],
            )
            try:
                self._file.write(line)
                if self.flush_each_line:
                    self._file.flush()
            except OSError as exc:
                self._count_error(exc)
                return
            self._last_ms = now
            self._index += 1
            self._bytes_written += len(line)
            if self._bytes_written >= self.rotate_bytes:
                self._rotate()

    def _count_error(self, exc: BaseException) -> None:
        self.write_errors += 1
        if self.write_errors == 1 or self.write_errors % 1000 == 0:
            logger.error(
                "JSONL event sink %s: write failed (%d so far): %s",
                self.path,
                self.write_errors,
                exc,
            )

    def _rotate(self) -> None:
        assert self._file is not None
        try:
            self._file.flush()
            self._file.close()
            self._rotation += 1
            self._file = open(rotated_path(self.path, self._rotation), "wb")  # noqa: SIM115
        except OSError as exc:
            self._file = None
            self._count_error(exc)
        self._bytes_written = 0

    def flush(self) -> None:
        """Push buffered lines to the OS."""
        with self._lock:
            if self._file is not None:
                self._file.flush()

    def close(self) -> None:
        """Flush and close; later events are counted as write errors. Idempotent."""
        with self._lock:
            if self._file is not None:
                try:
                    self._file.flush()
                finally:
                    self._file.close()
                    self._file = None

    def __enter__(self) -> JsonlEventSink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
