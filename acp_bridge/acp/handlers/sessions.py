"""``session/new``, ``load``, ``resume``, ``close``, ``delete`` and ``list``: sessions on a connection.

A new/load/resume attaches the connection to the session before anything else, so nothing the
session emits meanwhile is lost; the attachment's gate opens right after the response is queued
(ACP: no ``session/update`` before the response), and a failure undoes the attachment.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from acp_bridge.eventlog import EventLogError
from acp_bridge.rpc.errors import InternalError, InvalidParams, ResourceNotFound
from acp_bridge.rpc.peer import Reply, RequestContext

from ..connection import AcpConnection, AcpMethods
from ..delivery import Attachment
from ..params import (
    additional_directories_of,
    cwd_of,
    mcp_servers_of,
    replay_mode_of,
    session_id_of,
)
from ..presence import clients_meta
from ..replay import replay_history
from ..sessions import Session, SessionRecord
from ._common import agent_failure, refuse_when_closing, session_setup, session_update

__all__ = [
    "register",
    "session_close",
    "session_delete",
    "session_list",
    "session_load",
    "session_new",
    "session_resume",
]


def register(conn: AcpMethods) -> None:
    """Serve the session family on every connection."""
    conn.add_method("session/new", session_new)
    conn.add_method("session/load", session_load)
    conn.add_method("session/resume", session_resume)
    conn.add_method("session/close", session_close)
    conn.add_method("session/list", session_list)
    conn.add_method("session/delete", session_delete)


async def session_new(conn: AcpConnection, params: dict[str, Any], ctx: RequestContext) -> Any:
    """Create a session, tell the backend, attach this connection to it."""
    cwd = cwd_of(params)
    assert cwd is not None
    mcp_servers = mcp_servers_of(params)
    directories = additional_directories_of(params)
    refuse_when_closing(conn)
    try:
        session = await conn.sessions.acreate(cwd, additional_directories=directories)
    except EventLogError as exc:
        raise InternalError(
            f"the event log cannot record a new session: {exc}", data={"reason": "event_log"}
        ) from None
    session.mcp_servers = mcp_servers or ()
    attachment = conn.attach(session)
    with _opening(conn, session, "session/new", new=True):
        await conn.sessions.start_backend(session, new=True)
        # The client learns the session id only once a restarted bridge would still know it.
        try:
            await conn.sessions.flush()
        except EventLogError as exc:
            raise InternalError(
                f"the event log cannot commit, so no session can start: {exc}",
                data={"reason": "event_log"},
            ) from None
    result = {
        "sessionId": session.session_id,
        **session_setup(conn.host.backend, session, conn.client_capabilities),
        "_meta": {"harn": {"epoch": session.record.epoch, "lastEventId": 0}},
    }
    return Reply(result, then=lambda: _opened(conn, session, attachment))


async def session_load(conn: AcpConnection, params: dict[str, Any], ctx: RequestContext) -> Any:
    """Replay the session's history (after ``lastAckedEventId``), then follow it live."""
    after = params.get("lastAckedEventId", 0)
    if not isinstance(after, int) or isinstance(after, bool) or after < 0:
        raise InvalidParams("lastAckedEventId must be a non-negative integer")
    epoch = params.get("epoch")
    if epoch is not None and not isinstance(epoch, str):
        raise InvalidParams("epoch must be a string", data={"field": "epoch"})
    compact = replay_mode_of(params, conn.profile) == "compact"
    session = _existing_session(conn, params)
    # Ids of another epoch (the log was recreated) say nothing about this history: all of it.
    epoch_reset = epoch is not None and epoch != session.record.epoch
    if epoch_reset:
        after = 0
    attachment = conn.attach(session)
    with _opening(conn, session, "session/load"):
        # The history is what was appended before the load: committed now, so all of it can be
        # shown (a failed log shows what it committed).
        with contextlib.suppress(EventLogError):
            await conn.sessions.flush()
        replayed, last = await replay_history(
            conn.sessions.log,
            session.session_id,
            attachment,
            conn.profile,
            after,
            upto=conn.sessions.committed_event_id(session.session_id),
            compact=compact,
            context_window=conn.sessions.context_window,
        )
        attachment.replayed_through = last
        await conn.sessions.start_backend(session, new=False)
    harn: dict[str, Any] = {
        "replay": "compact" if compact else "exact",
        "replayedEvents": replayed,
        "lastEventId": last,
        "epoch": session.record.epoch,
    }
    if epoch_reset:
        harn["epochReset"] = True
    result = {
        **session_setup(conn.host.backend, session, conn.client_capabilities),
        "_meta": {"harn": harn, "acp_bridge": _presence(conn, session)},
    }
    return Reply(result, then=lambda: _opened(conn, session, attachment))


async def session_resume(conn: AcpConnection, params: dict[str, Any], ctx: RequestContext) -> Any:
    """Follow the session live from now on, without its history."""
    session = _existing_session(conn, params)
    attachment = conn.attach(session)
    # Live from what any client could have been sent so far: events still on their way to the
    # disk reach this client too, once committed.
    attachment.replayed_through = conn.sessions.committed_event_id(session.session_id)
    with _opening(conn, session, "session/resume"):
        await conn.sessions.start_backend(session, new=False)
    result = {
        **session_setup(conn.host.backend, session, conn.client_capabilities),
        "_meta": {
            "harn": {"epoch": session.record.epoch, "lastEventId": attachment.replayed_through},
            "acp_bridge": _presence(conn, session),
        },
    }
    return Reply(result, then=lambda: _opened(conn, session, attachment))


async def session_close(conn: AcpConnection, params: dict[str, Any], ctx: RequestContext) -> Any:
    """Close the session for every client (its history stays in the log)."""
    session_id = session_id_of(params)
    session = conn.sessions.get(session_id)
    if session is None:
        raise ResourceNotFound("unknown session", data={"sessionId": session_id})
    if conn.sessions.forwards(session):
        await conn.sessions.forward_close(session)  # another node runs it (shared log)
    else:
        await conn.sessions.close_for_client(session)
    return {}


async def session_delete(conn: AcpConnection, params: dict[str, Any], ctx: RequestContext) -> Any:
    """Delete the session for every client (decision 0025): a running turn is cancelled first,
    attached clients see it close, and it is gone from ``session/list`` and ``session/load``."""
    session_id = session_id_of(params)
    session = conn.sessions.live(session_id)
    if session is not None and conn.sessions.forwards(session):
        await conn.sessions.forward_close(session, delete=True)  # another node runs it
        return {}
    if not await conn.sessions.delete_for_client(session_id):
        raise ResourceNotFound("unknown session", data={"sessionId": session_id})
    return {}


async def session_list(conn: AcpConnection, params: dict[str, Any], ctx: RequestContext) -> Any:
    """One page of open sessions."""
    cwd = cwd_of(params, required=False)
    cursor = params.get("cursor")
    if cursor is not None and not isinstance(cursor, str):
        raise InvalidParams("cursor must be a string")
    try:
        records, next_cursor = conn.sessions.list(cwd, cursor)
    except ValueError as exc:
        raise InvalidParams(str(exc)) from None
    result: dict[str, Any] = {"sessions": [_list_item(conn, r) for r in records]}
    if next_cursor is not None:
        result["nextCursor"] = next_cursor
    return result


def _list_item(conn: AcpConnection, record: SessionRecord) -> dict[str, Any]:
    """A ``SessionInfo``, with the clients attached to it (when it is live) in ``_meta``."""
    info = record.info()
    session = conn.sessions.live(record.session_id)
    if session is not None:
        info["_meta"] = {"acp_bridge": clients_meta(session.attached())}
    return info


def _presence(conn: AcpConnection, session: Session) -> dict[str, Any]:
    """The clients attached to ``session``, this one included (its response is on its way)."""
    others = [p for p in session.attached() if p is not conn]
    return clients_meta([*others, conn])


def _existing_session(conn: AcpConnection, params: Mapping[str, Any]) -> Session:
    """The session a load/resume names (``-32002`` if unknown), with its new ``mcpServers`` and
    ``additionalDirectories`` (a controller's: an observer only watches)."""
    refuse_when_closing(conn)
    session_id = session_id_of(params)
    cwd_of(params, required=False)
    mcp_servers = mcp_servers_of(params)
    directories = additional_directories_of(params)
    session = conn.sessions.get(session_id)
    if session is None:
        raise ResourceNotFound("unknown session", data={"sessionId": session_id})
    if mcp_servers is not None and conn.principal.controls:
        # An observer watches the agent; the MCP servers it lists do not reconfigure it.
        session.mcp_servers = mcp_servers
    if conn.principal.controls:
        # ACP: the list given is the complete list of roots for the session from now on.
        conn.sessions.set_additional_directories(session, directories)
    return session


@contextlib.contextmanager
def _opening(
    conn: AcpConnection, session: Session, method: str, *, new: bool = False
) -> Iterator[None]:
    """Undo a failed new/load/resume: detach (the attachment would hold messages forever), drop
    a new session (it never existed for the client), and map the backend's exception."""
    try:
        yield
    except BaseException as exc:
        conn.detach(session.session_id)
        if new:
            conn.sessions.discard(session)
        if isinstance(exc, Exception):
            raise agent_failure(exc, session.session_id, method) from None
        raise


def _opened(conn: AcpConnection, session: Session, attachment: Attachment) -> None:
    """Right after a new/load/resume response: release held messages, announce commands, tell
    the other clients, and ask this one what the session's controllers are being asked."""
    attachment.open_gate()
    _announce_commands(conn, session, attachment)
    session.joined(attachment)


def _announce_commands(conn: AcpConnection, session: Session, attachment: Attachment) -> None:
    commands = conn.host.backend.commands()
    if not commands:
        return
    available = []
    for command in commands:
        entry: dict[str, Any] = {"name": command.name, "description": command.description}
        if command.input_hint:
            entry["input"] = {"hint": command.input_hint}
        available.append(entry)
    update = {"sessionUpdate": "available_commands_update", "availableCommands": available}
    attachment.deliver(session_update(session.session_id, update))
