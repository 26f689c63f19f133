"""Reading Harn JSONL event logs: names, rotation chains, lines, decoding, and following live files.

The format is the one :class:`~acp_bridge.sinks.jsonl.JsonlEventSink` (and Harn's sink of the same
name) writes: one ``{index, emitted_at_ms, frame_depth, ...event}`` envelope per line, rotated at
100 MiB to ``<stem>-000001.<ext>``, ``<stem>-000002.<ext>``… with the index continuing. With
``HARN_EVENT_LOG_DIR`` a runtime names each session's log ``event_log-<session id>.jsonl``.

Shared by the ``replay`` backend (a finished recording, streamed once per prompt) and the ``tail``
backend (live logs, followed while a runtime writes them). Nothing here holds more than one line, or
one bounded read, in memory.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson

from acp_bridge.events.errors import EventDecodeError
from acp_bridge.events.harn import PersistedAgentEvent, parse_record
from acp_bridge.events.session_event import SessionEvent, SessionRuntimeEvent
from acp_bridge.sinks.jsonl import rotated_path

__all__ = [
    "DEFAULT_MAX_LINE_BYTES",
    "LOG_PREFIX",
    "LOG_SUFFIX",
    "BadLineReporter",
    "FileFollower",
    "FollowResult",
    "Line",
    "LogName",
    "Record",
    "decode_line",
    "iter_lines",
    "parse_log_name",
    "rotation_files",
    "session_log_name",
]

LOG_PREFIX: Final = "event_log-"
LOG_SUFFIX: Final = ".jsonl"
DEFAULT_MAX_LINE_BYTES: Final = 64 * 1024 * 1024
"""Longest line accepted while following a file; a longer one is dropped (Harn rotates at 100 MiB)."""

_ENVELOPE_KEYS: Final = ("index", "emitted_at_ms", "frame_depth")
_ROTATED: Final = re.compile(r"(.+)-(\d{6})\Z", re.DOTALL)
_HEAD_BYTES: Final = 64
"""How much of a followed file's start is remembered to notice that it was rewritten in place."""


# --- names ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LogName:
    """What a file name in a ``HARN_EVENT_LOG_DIR`` says.

    ``event_log-abc-000002.jsonl`` is either the second rotation of session ``abc`` or the base log of
    a session literally named ``abc-000002``; the name alone cannot tell, so both readings are given
    and the caller decides (the ``tail`` backend: a rotation when ``abc``'s base log exists or ``abc``
    is already followed).
    """

    session_id: str
    """The session id if this is a base log (everything between the prefix and ``.jsonl``)."""
    rotation_of: tuple[str, int] | None
    """``(session id, rotation number)`` if the name also reads as a rotated file."""


def session_log_name(session_id: str) -> str:
    """``event_log-<session_id>.jsonl``, the base log name Harn uses in ``HARN_EVENT_LOG_DIR``."""
    return f"{LOG_PREFIX}{session_id}{LOG_SUFFIX}"


def parse_log_name(name: str) -> LogName | None:
    """Read a file name as a Harn event log name; ``None`` if it is not one."""
    if not (name.startswith(LOG_PREFIX) and name.endswith(LOG_SUFFIX)):
        return None
    middle = name[len(LOG_PREFIX) : -len(LOG_SUFFIX)]
    if not middle:
        return None
    match = _ROTATED.match(middle)
    rotation = int(match[2]) if match else 0
    return LogName(middle, (match[1], rotation) if match and rotation > 0 else None)


def rotation_files(base: Path) -> list[Path]:
    """``base`` and the rotated files after it that exist, in order (stops at the first gap).

    ``base`` itself is always first, existing or not: callers report a missing base their own way.
    """
    files = [base]
    rotation = 1
    while (candidate := rotated_path(base, rotation)).is_file():
        files.append(candidate)
        rotation += 1
    return files


# --- lines and records -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Line:
    """One line of a log file, without its newline."""

    path: Path
    number: int
    """1-based line number in ``path``."""
    offset: int
    """Byte offset of the line's first byte in ``path``."""
    data: bytes


def iter_lines(path: Path, *, offset: int = 0, number: int = 1) -> Generator[Line, None, None]:
    """Stream the lines of a finished file from byte ``offset`` (line ``number``); lazily.

    A last line without a newline is yielded too (a finished recording may lack the final newline);
    blank lines are skipped. Raises ``OSError`` if the file cannot be opened.
    """
    with open(path, "rb") as file:
        file.seek(offset)
        for raw in file:
            length = len(raw)
            data = raw.rstrip(b"\r\n")
            if data.strip():
                yield Line(path, number, offset, data)
            offset += length
            number += 1


@dataclass(frozen=True, slots=True)
class Record:
    """One decoded line: the event, and the envelope fields that came with it (if any)."""

    event: SessionEvent
    emitted_at_ms: int | None
    """When the sink received the event (ms since the epoch); ``None`` for a bare event line."""
    index: int | None
    """The sink's contiguous index; ``None`` for a bare event line."""


def decode_line(data: bytes | str, *, session_id: str | None = None) -> Record:
    """Decode one log line: a Harn envelope (or bare event), or a runtime-dialect envelope.

    With ``session_id`` the event is rebuilt for that session (the id is replaced before validation,
    so no second copy is made). Raises :class:`~acp_bridge.events.errors.EventDecodeError`.
    """
    try:
        obj: Any = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise EventDecodeError(f"not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise EventDecodeError(f"a log line must be a JSON object, got {type(obj).__name__}")
    if session_id is not None:
        obj["session_id"] = session_id
    # What JsonlEventSink writes for a runtime-dialect event: the envelope around
    # {"session_id", "runtime": {...}} (no "type": the variant is inside "runtime").
    if "type" not in obj and isinstance(obj.get("runtime"), dict):
        envelope = {key: obj.pop(key, None) for key in _ENVELOPE_KEYS}
        event: SessionEvent = SessionRuntimeEvent.from_dict(obj)
        return Record(
            event, _int_or_none(envelope["emitted_at_ms"]), _int_or_none(envelope["index"])
        )
    record = parse_record(obj)
    if isinstance(record, PersistedAgentEvent):
        return Record(record.event, record.emitted_at_ms, record.index)
    return Record(record, None, None)


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass
class BadLineReporter:
    """Logs undecodable lines with their file and line number; at most ``limit`` lines per file.

    A damaged recording could hold millions of bad lines; past the limit they are only counted, and
    :meth:`summary` logs the count.
    """

    logger: logging.Logger
    limit: int = 20
    counts: dict[Path, int] = field(default_factory=dict)

    def report(self, path: Path, number: int, reason: object) -> None:
        """One bad line: logged (while under the limit) and counted."""
        count = self.counts.get(path, 0) + 1
        self.counts[path] = count
        if count <= self.limit:
            self.logger.warning("%s:%d: skipping a bad line: %s", path, number, _short(reason))
            if count == self.limit:
                self.logger.warning("%s: further bad lines are only counted", path)

    def summary(self) -> None:
        """Log how many bad lines went unlogged, per file, and start counting afresh."""
        for path, count in self.counts.items():
            if count > self.limit:
                self.logger.warning(
                    "%s: %d bad lines skipped in all (%d not logged)",
                    path,
                    count,
                    count - self.limit,
                )
        self.counts.clear()


def _short(reason: object, limit: int = 300) -> str:
    text = str(reason)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- following a live file -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FollowResult:
    """What one :meth:`FileFollower.read` found."""

    lines: list[Line]
    """Complete lines read, in order (blank ones left out)."""
    at_end: bool = False
    """Everything the file held when it was looked at has been read (a partial last line aside)."""
    missing: bool = False
    """The file does not exist (now)."""
    rewritten: bool = False
    """The file was truncated or replaced since the last read; ``lines`` are from its new start."""
    dropped: list[tuple[int, int]] = field(default_factory=list)
    """``(line number, length)`` of lines longer than the limit, which were skipped."""


class FileFollower:
    """Reads the complete lines appended to one file since the previous call.

    A partially written last line stays buffered until its newline arrives. The file is opened only
    while reading (never held open, so a runtime can rotate or delete it on any platform) and each
    read is bounded. A file that shrinks below what was read, is replaced by another file (new inode),
    or whose first bytes changed is reported as ``rewritten`` and read again from its start. A line
    longer than ``max_line_bytes`` is skipped (and reported in ``dropped``) without being buffered.
    """

    def __init__(self, path: Path, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        self.path = path
        self.max_line_bytes = max_line_bytes
        self.position = 0
        """Bytes of the file consumed so far (complete lines plus the buffered partial one)."""
        self.line_number = 0
        """Lines completed so far (the next complete line is ``line_number + 1``)."""
        self._pending = bytearray()
        self._pending_start = 0
        self._skipping = False
        self._skipped = 0
        self._identity: tuple[int, int] | None = None
        self._missing = False
        self._mtime: int | None = None
        self._head = b""

    @property
    def pending(self) -> bytes:
        """The partial last line read so far (no newline yet)."""
        return bytes(self._pending)

    def _reset(self) -> None:
        self.position = 0
        self.line_number = 0
        self._pending.clear()
        self._pending_start = 0
        self._skipping = False
        self._skipped = 0
        self._head = b""

    def read(self, max_bytes: int) -> FollowResult:
        """Read at most ``max_bytes`` new bytes and return the lines they complete."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            # Whatever appears under this name later is another file, even if the inode is reused.
            self._missing = True
            return FollowResult([], missing=True)
        identity = (stat.st_dev, stat.st_ino)
        rewritten = False
        if self._identity is not None and (
            self._missing or identity != self._identity or stat.st_size < self.position
        ):
            rewritten = True
            self._reset()
        self._identity = identity
        self._missing = False
        if stat.st_size == self.position and (stat.st_mtime_ns == self._mtime or not self._head):
            return FollowResult([], at_end=True, rewritten=rewritten)
        try:
            with open(self.path, "rb") as file:
                if self._head and not rewritten and file.read(len(self._head)) != self._head:
                    # Truncated and written again up to (or past) our position between two reads:
                    # size and inode look fine, but the first envelope (with its timestamp) differs.
                    rewritten = True
                    self._reset()
                file.seek(self.position)
                data = file.read(max(1, min(max_bytes, stat.st_size - self.position)))
        except FileNotFoundError:
            self._missing = True
            return FollowResult([], missing=True)
        self._mtime = stat.st_mtime_ns
        base = self.position
        if base < _HEAD_BYTES:
            self._head = (self._head + data)[:_HEAD_BYTES]
        self.position += len(data)
        lines, dropped = self._split(data, base)
        # at_end is judged against the size seen before reading: what was appended since is for the
        # next call.
        return FollowResult(
            lines, at_end=self.position >= stat.st_size, rewritten=rewritten, dropped=dropped
        )

    def _split(self, data: bytes, base: int) -> tuple[list[Line], list[tuple[int, int]]]:
        """Cut ``data`` (read at file offset ``base``) into lines, continuing the buffered one."""
        lines: list[Line] = []
        dropped: list[tuple[int, int]] = []
        start = 0
        while (newline := data.find(b"\n", start)) >= 0:
            self.line_number += 1
            piece = data[start:newline]
            if self._skipping:
                dropped.append((self.line_number, self._skipped + len(piece)))
                self._skipping = False
                self._skipped = 0
            else:
                line_start = self._pending_start if self._pending else base + start
                if self._pending:
                    self._pending += piece
                    piece = bytes(self._pending)
                    self._pending.clear()
                raw = piece.rstrip(b"\r")
                if len(raw) > self.max_line_bytes:
                    dropped.append((self.line_number, len(raw)))
                elif raw.strip():
                    lines.append(Line(self.path, self.line_number, line_start, raw))
            start = newline + 1
        rest = data[start:]
        if rest:
            if self._skipping:
                self._skipped += len(rest)
            elif len(self._pending) + len(rest) > self.max_line_bytes:
                # Too long to buffer: remember only how much was skipped, until its newline.
                self._skipping = True
                self._skipped = len(self._pending) + len(rest)
                self._pending.clear()
            else:
                if not self._pending:
                    self._pending_start = base + start
                self._pending += rest
        return lines, dropped

    def finish(self) -> bytes:
        """The file is complete (a rotation followed it): return and forget any partial last line."""
        rest = bytes(self._pending)
        self._pending.clear()
        self._skipping = False
        self._skipped = 0
        return rest
