"""The inspector: a read-only view of the bridge's sessions over HTTP, and a WebSocket for live updates.

Mounted by the WebSocket server under ``/inspect`` (see ``docs/inspector.md`` for the API). It reads
the session manager (who is attached, whether a turn runs) and the event log (what happened), and
writes nothing anywhere. Live updates come from the log's commit listener and the session manager's
listeners: only committed events are shown, the ones a client may have been sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Final
from urllib.parse import unquote

import orjson

from acp_bridge._version import __version__
from acp_bridge.acp import AcpBridge
from acp_bridge.acp.presence import client_entry
from acp_bridge.acp.sessions import SESSION_INDEX_TOPIC, SessionRecord
from acp_bridge.rpc.principal import Principal
from acp_bridge.rpc.transport import Malformed, Transport
from acp_bridge.sinks import agent_events_topic
from acp_bridge.transports.http_routes import HttpRequest, HttpResponse

from .records import RecordReader, export_line
from .redact import redact

__all__ = ["INSPECT_PATH", "Inspector"]

logger = logging.getLogger(__name__)

INSPECT_PATH: Final = "/inspect"
LIST_LIMIT: Final = 200
"""Sessions in a list: the most recently updated (the index keeps closed sessions forever)."""
PAGE_SIZE: Final = 500
"""Records per ``events`` answer (and per live message) unless asked for fewer."""

_STATIC: Final = {
    "inspector.js": "text/javascript; charset=utf-8",
    "inspector.css": "text/css; charset=utf-8",
}


def _json(status: int, value: Any) -> HttpResponse:
    return HttpResponse(status, orjson.dumps(value))


def _static(name: str) -> bytes:
    return resources.files(__package__).joinpath("static", name).read_bytes()


@dataclass(eq=False)
class _Watch:
    """One live stream: which session it follows, from where, and whether the list changed."""

    wake: asyncio.Event = field(default_factory=asyncio.Event)
    sessions_dirty: bool = True
    session_id: str | None = None
    cursor: int = 0
    reader: RecordReader | None = None


class Inspector:
    """The ``/inspect`` app (a :class:`~acp_bridge.transports.http_routes.MountedApp`)."""

    def __init__(self, bridge: AcpBridge) -> None:
        self.bridge = bridge
        self._watches: set[_Watch] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def prefix(self) -> str:
        """``/inspect``."""
        return INSPECT_PATH

    @property
    def stream_path(self) -> str:
        """``/inspect/stream``."""
        return f"{INSPECT_PATH}/stream"

    # --- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> None:
        """Follow the log's commits and the sessions' changes (call on the event loop)."""
        self._loop = asyncio.get_running_loop()
        self.bridge.log.add_commit_listener(self._on_commit)
        self.bridge.sessions.add_listener(self._on_session_changed)

    def stop(self) -> None:
        """Stop following them; streams still open end with their sockets."""
        if self._loop is None:
            return
        self.bridge.log.remove_commit_listener(self._on_commit)
        self.bridge.sessions.remove_listener(self._on_session_changed)
        self._loop = None

    def _on_commit(self, heads: Mapping[str, int]) -> None:
        """The log's commit listener (any thread)."""
        loop = self._loop
        if loop is not None and self._watches:
            with contextlib.suppress(RuntimeError):  # the loop closed under us
                loop.call_soon_threadsafe(self._poke, tuple(heads))

    def _on_session_changed(self, session_id: str) -> None:
        self._poke(None)

    def _poke(self, topics: Iterable[str] | None) -> None:
        """Wake every stream; the list is re-sent when the sessions changed (``None``) or their
        index did (titles, ``updatedAt``), not for every event (each stream re-checks its own
        session's head, which is cheap and never misses one)."""
        list_changed = topics is None or SESSION_INDEX_TOPIC in topics
        for watch in self._watches:
            watch.sessions_dirty = watch.sessions_dirty or list_changed
            watch.wake.set()

    # --- what it shows ---------------------------------------------------------------------------------

    def sessions(self) -> list[dict[str, Any]]:
        """The sessions the bridge knows (at most :data:`LIST_LIMIT`), most recently updated first."""
        records = sorted(
            self.bridge.sessions.index.values(),
            key=lambda r: (r.updated_at, r.session_id),
            reverse=True,
        )
        return [self.summary(record) for record in records[:LIST_LIMIT]]

    def summary(self, record: SessionRecord) -> dict[str, Any]:
        """One session: its record, event count, whether a turn runs, who is attached."""
        live = self.bridge.sessions.live(record.session_id)
        clients = [client_entry(p) for p in live.attached()] if live is not None else []
        return {
            "sessionId": record.session_id,
            "title": record.title,
            "cwd": record.cwd,
            "createdAt": record.created_at,
            "updatedAt": record.updated_at,
            "closed": record.closed,
            "live": live is not None,
            "running": live is not None and live.current_turn is not None,
            "eventCount": self.bridge.sessions.committed_event_id(record.session_id),
            "clients": redact(clients),
        }

    def records(self, session_id: str, after: int, limit: int) -> list[dict[str, Any]]:
        """The session's committed records after ``after`` (at most ``limit``), rendered.

        Rendering keeps state (the ordering rules), so the records before ``after`` are read too.
        """
        reader = RecordReader(session_id)
        topic = agent_events_topic(session_id)
        upto = self.bridge.sessions.committed_event_id(session_id)
        items: list[dict[str, Any]] = []
        last = 0
        while last < upto and len(items) < limit:
            entries = self.bridge.log.read_range(
                topic, after=last, limit=min(PAGE_SIZE, upto - last)
            )
            if not entries:
                break
            for entry in entries:
                last = entry.id
                item = reader.item(entry)
                if entry.id > after and len(items) < limit:
                    items.append(item)
        return items

    def export(self, session_id: str) -> bytes:
        """The session's committed records as JSONL (one record a line)."""
        topic = agent_events_topic(session_id)
        upto = self.bridge.sessions.committed_event_id(session_id)
        lines: list[bytes] = []
        last = 0
        while last < upto:
            entries = self.bridge.log.read_range(
                topic, after=last, limit=min(PAGE_SIZE, upto - last)
            )
            if not entries:
                break
            lines.extend(export_line(entry) for entry in entries)
            last = entries[-1].id
        return b"".join(lines)

    # --- HTTP ------------------------------------------------------------------------------------------

    def handle(self, request: HttpRequest) -> HttpResponse:
        """Route one GET: the page and its files are public, the API needs the credentials of /acp."""
        path = request.path.removeprefix(INSPECT_PATH)
        if path in ("", "/"):
            return HttpResponse(200, _static("index.html"), "text/html; charset=utf-8")
        if path.startswith("/static/"):
            name = path.removeprefix("/static/")
            if name not in _STATIC:
                return _json(404, {"error": "not found"})
            return HttpResponse(200, _static(name), _STATIC[name])
        if not path.startswith("/api/"):
            return _json(404, {"error": "not found"})
        if request.principal is None:
            return _json(401, {"error": "a token is required"})
        return self._api([unquote(part) for part in path.removeprefix("/api/").split("/")], request)

    def _api(self, parts: list[str], request: HttpRequest) -> HttpResponse:
        if parts == ["sessions"]:
            return _json(200, {"version": __version__, "sessions": self.sessions()})
        if len(parts) < 2 or parts[0] != "sessions":
            return _json(404, {"error": "not found"})
        record = self.bridge.sessions.index.get(parts[1])
        if record is None:
            return _json(404, {"error": "no such session"})
        rest = parts[2:]
        if not rest:
            return _json(200, self.summary(record))
        if rest == ["events"]:
            try:
                after = max(0, int(request.query.get("after", "0")))
                limit = min(max(1, int(request.query.get("limit", str(PAGE_SIZE)))), 5000)
            except ValueError:
                return _json(400, {"error": "after and limit must be integers"})
            items = self.records(record.session_id, after, limit)
            last = items[-1]["id"] if items else after
            more = last < self.bridge.sessions.committed_event_id(record.session_id)
            return _json(200, {"events": items, "next": last if more else None})
        if rest == ["export"]:
            filename = "".join(c if c.isalnum() or c in "-_." else "_" for c in record.session_id)
            return HttpResponse(
                200,
                self.export(record.session_id),
                "application/x-ndjson",
                {"Content-Disposition": f'attachment; filename="session-{filename}.jsonl"'},
            )
        return _json(404, {"error": "not found"})

    # --- live stream -----------------------------------------------------------------------------------

    async def stream(self, transport: Transport, principal: Principal) -> None:
        """Serve one ``/inspect/stream`` WebSocket until it closes.

        The server sends ``{"type": "sessions"}`` now and whenever the list changes, and
        ``{"type": "events", "sessionId", "events"}`` for the session the client watches
        (``{"type": "watch", "sessionId", "after"}``), from ``after`` on, live.
        """
        del principal  # any authenticated principal may watch: the inspector is read-only
        watch = _Watch()
        self._watches.add(watch)
        commands = asyncio.create_task(self._read_commands(transport, watch))
        try:
            while not commands.done():
                await self._push(transport, watch)
                woken = asyncio.create_task(watch.wake.wait())
                await asyncio.wait({commands, woken}, return_when=asyncio.FIRST_COMPLETED)
                woken.cancel()
        finally:
            commands.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await commands
            self._watches.discard(watch)

    async def _read_commands(self, transport: Transport, watch: _Watch) -> None:
        while True:
            message = await transport.receive()
            if message is None:
                return
            if isinstance(message, Malformed) or not isinstance(message, dict):
                continue
            if message.get("type") == "watch":
                session_id = message.get("sessionId")
                after = message.get("after", 0)
                watch.session_id = session_id if isinstance(session_id, str) else None
                watch.cursor = after if isinstance(after, int) and after >= 0 else 0
                watch.reader = None
                watch.wake.set()

    async def _push(self, transport: Transport, watch: _Watch) -> None:
        watch.wake.clear()
        if watch.sessions_dirty:
            watch.sessions_dirty = False
            await transport.send({"type": "sessions", "sessions": self.sessions()})
        session_id = watch.session_id
        if session_id is None:
            return
        upto = self.bridge.sessions.committed_event_id(session_id)
        topic = agent_events_topic(session_id)
        reader = watch.reader
        if reader is None:
            reader = watch.reader = RecordReader(session_id)
            # What precedes the cursor goes through the reader too, so that its rules see it.
            last, target = 0, min(watch.cursor, upto)
            while last < target:
                entries = self.bridge.log.read_range(topic, after=last, limit=target - last)
                if not entries:
                    break
                for entry in entries:
                    reader.item(entry)
                last = entries[-1].id
        while watch.cursor < upto and watch.reader is reader:
            entries = self.bridge.log.read_range(
                topic, after=watch.cursor, limit=min(PAGE_SIZE, upto - watch.cursor)
            )
            if not entries:
                break
            items = [reader.item(entry) for entry in entries]
            watch.cursor = entries[-1].id
            await transport.send({"type": "events", "sessionId": session_id, "events": items})
