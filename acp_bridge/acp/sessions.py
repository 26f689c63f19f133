"""Sessions: their journal, their turns, and the index that lets them outlive sockets and restarts.

A :class:`Session` owns the one sink every live session has in the registry, its
:class:`~acp_bridge.acp.journal.SessionJournal` (append to the log, then publish to the session's
fan-out), and runs turns one at a time (decision 0003). The :class:`SessionManager` creates,
restores, lists and closes sessions and tells the backend about them; their metadata is kept in the
event log topic ``acp_bridge.sessions`` so a restarted bridge still knows them.

On a log several nodes share (:class:`~acp_bridge.eventlog.LeasedLog`, Redis) each session's
metadata has a topic of its own (``acp_bridge.sessions.<id>``) grouped with its events, one node at a
time owns the session (holds its lease) and writes both, and a node that loses the lease cancels the
session's turn (decision 0041).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import secrets
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from acp_bridge.agents.base import (
    CANCEL_GRACE_SECONDS,
    AgentBackend,
    SessionContext,
    SessionReadOnly,
    StopReason,
)
from acp_bridge.eventlog import (
    EventLog,
    EventLogError,
    LeasedLog,
    LogRecord,
    Prunable,
    sanitize_topic_component,
)
from acp_bridge.events import EventDecodeError, decode_session_event
from acp_bridge.events.harn import ControlOutcome, SessionClosed, UserMessage
from acp_bridge.rpc.errors import InternalError
from acp_bridge.sinks import (
    AGENT_EVENTS_TOPIC_PREFIX,
    EventLogSink,
    SinkRegistry,
    agent_events_topic,
    event_of,
)
from acp_bridge.translate import Profile
from acp_bridge.translate.wire import session_update

from . import presence
from .arbiter import Arbiter, Decision
from .config_options import wire_options
from .delivery import Attachment, SessionFanout
from .journal import SessionJournal
from .ports import Participant, TurnOwner

__all__ = [
    "SESSION_INDEX_PREFIX",
    "SESSION_INDEX_TOPIC",
    "PromptTicket",
    "Session",
    "SessionManager",
    "SessionOwnedElsewhere",
    "SessionRecord",
    "Turn",
]

logger = logging.getLogger(__name__)

SESSION_INDEX_TOPIC: Final = "acp_bridge.sessions"
SESSION_INDEX_PREFIX: Final = "acp_bridge.sessions."
"""On a shared (leased) log, session ``S``'s metadata is in topic ``acp_bridge.sessions.S``."""
_INDEX_PAGE: Final = 1000
"""Index records read per request."""


class _RemoteClient:
    """The turn owner of a prompt another node forwarded: its client is not reachable from here,
    so the turn asks nothing of it (no fs/terminal capabilities; permissions go to the session's
    controllers attached to this node)."""

    profile = Profile.STRICT
    client_capabilities: Mapping[str, Any] = {}
    closed = False

    def attachment(self, session_id: str) -> Attachment | None:
        """No attachment on this node."""
        return None

    async def request(
        self,
        method: str,
        params: Mapping[str, Any],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - never waits
    ) -> Any:
        """Refused: forwarding requests to the asking client is not implemented."""
        raise InternalError(f"{method}: the prompting client is on another node")


class SessionOwnedElsewhere(Exception):
    """Another node holds the session's lease, so this one may not run its turns."""

    def __init__(self, session_id: str, owner: str | None) -> None:
        super().__init__(f"session {session_id} is owned by node {owner or '(unknown)'}")
        self.session_id = session_id
        self.owner = owner


def session_group(session_id: str) -> str:
    """The lease group (and Redis hash tag) of a session's topics."""
    return sanitize_topic_component(session_id)


SETTLE_SECONDS: Final = 10.0
"""Longest wait, after a successful flush, for committed events to reach the outboxes (normally
one turn of the event loop)."""
ANSWER_WAIT_SECONDS: Final = 30.0
"""Longest a turn waits for the previous turn's response to be queued (normally microseconds)."""
LIST_PAGE_SIZE: Final = 50


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class SessionRecord:
    """What the bridge remembers about a session across restarts."""

    session_id: str
    cwd: str
    created_at: str
    updated_at: str
    title: str | None = None
    closed: bool = False
    epoch: str = ""
    """Random, made with the session's first record: event ids are only comparable within one
    epoch (a recreated log numbers a session's events from 1 again)."""
    additional_directories: tuple[str, ...] = ()
    """The workspace roots besides ``cwd`` of the latest new/load/resume (ACP
    ``additionalDirectories``)."""

    def info(self) -> dict[str, Any]:
        """ACP ``SessionInfo``."""
        info: dict[str, Any] = {
            "sessionId": self.session_id,
            "cwd": self.cwd,
            "updatedAt": self.updated_at,
        }
        if self.title:
            info["title"] = self.title
        if self.additional_directories:
            info["additionalDirectories"] = list(self.additional_directories)
        return info


@dataclass(eq=False)
class PromptTicket:
    """One ``session/prompt`` on its way through the session's queue.

    ``generation`` is the session's cancel generation when the prompt arrived (a later
    ``session/cancel`` cancels it too, even while queued). ``answered`` is set once the prompt's
    response is queued; the next turn starts only then. ``cancel()`` cancels this prompt alone
    (``$/cancel_request``): before it starts, or while it runs.
    """

    generation: int
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: bool = False
    turn: Turn | None = None


@dataclass(eq=False)
class Turn:
    """One running prompt turn."""

    owner: TurnOwner
    """The connection that sent the ``session/prompt``."""
    number: int
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    permission_requests: set[asyncio.Task[Any]] = field(default_factory=set)


class Session:
    """A live session: sinks, attachments, turns."""

    def __init__(
        self,
        record: SessionRecord,
        *,
        manager: SessionManager,
        context_factory: Callable[[Session], SessionContext],
    ) -> None:
        self.record = record
        self.manager = manager
        self.fanout = SessionFanout(record.session_id, context_window=manager.context_window)
        self.journal = SessionJournal(
            EventLogSink(manager.log, record.session_id),
            self.fanout,
            manager.loop,
            manager.loop_thread,
        )
        self.context = context_factory(self)
        self.participants: dict[Attachment, Participant] = {}
        """The connections attached to the session, by attachment."""
        self.arbiter = Arbiter(
            record.session_id,
            self.controllers,
            idle_timeout=manager.permission_timeout,
            record=self._record_decision,
        )
        self.turn_lock = asyncio.Lock()
        self.cancel_generation = 0
        self.current_turn: Turn | None = None
        self.turn_count = 0
        self.backend_started = False
        self.mode_id: str | None = None
        # From the latest session/new, load or resume; not persisted (env and headers may hold
        # secrets), so after a restart the next load supplies them again.
        self.mcp_servers: tuple[dict[str, Any], ...] = ()
        # Set once the last turn's prompt response is on the wire: the next turn waits for it, so
        # no update of a turn can follow another turn's response.
        self._answered: asyncio.Event | None = None
        # Backend tasks that did not stop after a cancel: whatever they still emit is dropped.
        self.abandoned: set[asyncio.Task[Any]] | None = None  # made by the first abandoned turn
        self.closed = False
        """Set when the session starts closing: no turn starts from then on."""
        self._announced_info = (record.title, record.updated_at)

    @property
    def session_id(self) -> str:
        """The ACP session id."""
        return self.record.session_id

    # --- turns -----------------------------------------------------------------------------------

    async def run_turn(
        self,
        owner: TurnOwner,
        prompt: list[dict[str, Any]],
        owner_attachment: Attachment | None,
        ticket: PromptTicket | None = None,
        *,
        message_id: str | None = None,
    ) -> StopReason:
        """Run one prompt turn (queued behind any running one) and return its stop reason.

        The caller sets ``ticket.answered`` once this turn's response is queued (or once it knows no
        response will be sent). Raises whatever the backend raised; the session stays usable.
        """
        if ticket is None:
            ticket = PromptTicket(self.cancel_generation)
            ticket.answered.set()
        read_only = getattr(self.manager.backend, "read_only_reason", None)
        reason = read_only(self.context) if read_only is not None else None
        if reason:
            # Refused before anything is recorded: the session's history only holds what happened.
            raise SessionReadOnly(reason)
        async with self.turn_lock:
            previous, self._answered = self._answered, ticket.answered
            if previous is not None:
                await self._wait_answered(previous)
            if ticket.cancelled or self.cancel_generation != ticket.generation or self.closed:
                # A prompt that got past session/close's cancel while the close was under way
                # must not run (or record anything) on a closed session.
                return StopReason.CANCELLED
            self.turn_count += 1
            turn = Turn(owner=owner, number=self.turn_count)
            ticket.turn = turn
            self.current_turn = turn
            self.manager.changed(self.session_id)
            try:
                self._record_prompt(prompt, exclude=owner_attachment, message_id=message_id)
                return await self._drive(turn, prompt)
            finally:
                self.current_turn = None
                self.manager.touch(self)
                self.manager.changed(self.session_id)

    async def _wait_answered(self, answered: asyncio.Event) -> None:
        """Wait until the previous turn's response is queued (bounded: a lost signal cannot wedge
        the session, it only loses the ordering guarantee for that one seam, with a warning)."""
        try:
            async with asyncio.timeout(ANSWER_WAIT_SECONDS):
                await answered.wait()
        except TimeoutError:
            logger.warning(
                "session %s: the previous prompt was not answered within %.0f s; starting the next"
                " turn anyway",
                self.session_id,
                ANSWER_WAIT_SECONDS,
            )

    async def _drive(self, turn: Turn, prompt: list[dict[str, Any]]) -> StopReason:
        backend = self.manager.backend
        task = asyncio.create_task(
            backend.prompt(self.context, prompt), name=f"turn-{self.session_id}-{turn.number}"
        )
        cancel_wait = asyncio.create_task(turn.cancelled.wait())
        try:
            await asyncio.wait({task, cancel_wait}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            cancel_wait.cancel()
        if task.done():
            if turn.cancelled.is_set():
                # ACP: after session/cancel the answer is "cancelled", even when cancelling made the
                # backend raise.
                if not task.cancelled() and task.exception() is not None:
                    logger.info(
                        "turn of session %s raised %r after cancel",
                        self.session_id,
                        task.exception(),
                    )
                return StopReason.CANCELLED
            return StopReason(task.result())  # re-raises the backend's exception
        # Cancelled: tell the backend, give it a moment to wind down, then cancel its task.
        try:
            async with asyncio.timeout(CANCEL_GRACE_SECONDS):
                await backend.cancel(self.context)
        except Exception:
            logger.exception("backend cancel() failed for session %s", self.session_id)
        done, _ = await asyncio.wait({task}, timeout=CANCEL_GRACE_SECONDS)
        if not done:
            task.cancel()
            await asyncio.wait({task}, timeout=CANCEL_GRACE_SECONDS)
        if not task.done():
            # It ignores cancellation too: give up on it, and make sure nothing it emits from now on
            # reaches a client after this turn's response.
            logger.warning(
                "backend turn of session %s did not stop; abandoning it", self.session_id
            )
            if self.abandoned is None:
                self.abandoned = set()
            self.abandoned.add(task)
            task.add_done_callback(self.abandoned.discard)
        if task.done() and not task.cancelled() and task.exception() is not None:
            logger.info(
                "turn of session %s ended with %r after cancel", self.session_id, task.exception()
            )
        return StopReason.CANCELLED

    def cancel(self) -> bool:
        """Cancel the running turn and every queued one; returns whether a turn was running."""
        self.cancel_generation += 1
        turn = self.current_turn
        if turn is None:
            return False
        return self._cancel_turn(turn)

    def cancel_prompt(self, ticket: PromptTicket) -> None:
        """Cancel one prompt: skip it if still queued, cancel its turn if running."""
        ticket.cancelled = True
        if ticket.turn is not None and ticket.turn is self.current_turn:
            self._cancel_turn(ticket.turn)

    def _cancel_turn(self, turn: Turn) -> bool:
        if turn.cancelled.is_set():
            return False
        turn.cancelled.set()
        for request in list(turn.permission_requests):
            request.cancel()
        return True

    def _record_prompt(
        self,
        prompt: list[dict[str, Any]],
        *,
        exclude: Attachment | None,
        message_id: str | None = None,
    ) -> None:
        """Persist the prompt as history, and show it to the other clients watching the session.

        ``message_id``: the id the echo carries (a forwarded prompt's asking node chose it, so its
        tail can spare the asking client the echo)."""
        if self.record.title is None:
            text = " ".join(b.get("text", "") for b in prompt if b.get("type") == "text").strip()
            if text:
                self.record.title = text if len(text) <= 80 else text[:79] + "…"
        event = UserMessage(
            session_id=self.session_id,
            message_id=message_id or f"user-{uuid.uuid4().hex}",
            content=prompt,
        )
        self.journal.handle_event(event, exclude)

    async def settle(self) -> str | None:
        """Wait until this session's events so far are committed and in its clients' outboxes.

        Anything sent to a client afterwards (a prompt's answer, a permission request) follows
        them on the wire. Returns the log's error text if committing failed.
        """
        return await self.manager.settle(self)

    def announce_info(self) -> None:
        """Tell the session's clients that its title or last activity changed since last told
        (ACP ``session_info_update``, the same values ``session/list`` shows)."""
        title, updated_at = self.record.title, self.record.updated_at
        if (title, updated_at) == self._announced_info:
            return
        self._announced_info = (title, updated_at)
        update: dict[str, Any] = {"sessionUpdate": "session_info_update", "updatedAt": updated_at}
        if title:
            update["title"] = title
        self.fanout.broadcast(session_update(self.session_id, update))

    def announce_config_options(self, *, exclude: Attachment | None = None) -> None:
        """Send the session's complete config option set (``config_option_update``) to every
        attached client but ``exclude``, each as it may see it (boolean options need a client
        that advertised them)."""
        options = self.manager.backend.config_options(self.context)
        for attachment, participant in list(self.participants.items()):
            if attachment is exclude or not attachment.open:
                continue
            visible = wire_options(options, participant.client_capabilities)
            if not visible:
                continue  # it is shown no option (booleans only, and it cannot show them)
            update = {"sessionUpdate": "config_option_update", "configOptions": visible}
            attachment.deliver(session_update(self.session_id, update))

    # --- attachments -------------------------------------------------------------------------------

    def attach(self, attachment: Attachment, participant: Participant | None = None) -> None:
        """Deliver this session's messages to ``attachment`` (gate closed until the response)."""
        self.fanout.attach(attachment)
        if participant is not None:
            self.participants[attachment] = participant

    def joined(self, attachment: Attachment) -> None:
        """Right after ``attachment``'s new/load/resume response: tell the others, and ask the
        newcomer what the session's controllers are being asked."""
        participant = self.participants.get(attachment)
        if participant is None:
            return
        presence.announce(self.session_id, participant, "attached", self.participants.items())
        self.arbiter.offer(participant)
        self.manager.changed(self.session_id)

    def detach(self, attachment: Attachment) -> None:
        """Stop delivering to ``attachment``."""
        self.fanout.detach(attachment)
        participant = self.participants.pop(attachment, None)
        if participant is not None and attachment.open:
            presence.announce(self.session_id, participant, "detached", self.participants.items())
        if participant is not None:
            self.manager.changed(self.session_id)

    def attached(self) -> list[Participant]:
        """The participants whose session response has been sent (the ones presence shows)."""
        return [p for a, p in self.participants.items() if a.open and not p.closed]

    def controllers(self) -> list[Participant]:
        """The attached participants that may answer the agent's questions."""
        return [p for p in self.attached() if p.principal.controls]

    def _record_decision(self, decision: Decision) -> None:
        """Log how a question ended, naming who answered (by token name) and what."""
        who = decision.answered_by
        actor = (
            {**who.principal.describe(), "connectionId": who.connection_id}
            if who is not None
            else {"name": "acp-bridge", "role": "bridge"}
        )
        value = decision.value if isinstance(decision.value, dict) else {}
        event = ControlOutcome(
            session_id=self.session_id,
            control_id=f"ctrl_{uuid.uuid4().hex}",
            method=decision.method,
            # A permission's answer has an ``outcome``, an elicitation's an ``action``.
            outcome=str(value.get("outcome", value.get("action", "cancelled"))),
            status="accepted" if decision.decided else "expired",
            actor=actor,
            target=dict(decision.target),
            reason=decision.reason,
            metadata={"decision": value, "decidedAtMs": decision.decided_at_ms},
        )
        self.manager.registry.emit_event(event)


class SessionManager:
    """Creates, restores, lists and closes sessions; wires their journals into the registry."""

    def __init__(
        self,
        *,
        log: EventLog,
        registry: SinkRegistry,
        backend: AgentBackend,
        context_factory: Callable[[Session], SessionContext],
        permission_timeout: float = 300.0,
        context_window: int | None = None,
    ) -> None:
        self.log = log
        self.context_window = context_window
        """The model's context window in tokens, if configured (``usage_update``, decision 0027)."""
        self.permission_timeout = permission_timeout
        """Seconds a question to the controllers waits for one to attach when none is."""
        self.registry = registry
        self.backend = backend
        self.context_factory = context_factory
        self.loop = asyncio.get_running_loop()
        self.loop_thread = threading.get_ident()
        self.sessions: dict[str, Session] = {}
        self.index: dict[str, SessionRecord] = {}
        # Topic → the journals that append to it (normally one; sanitised ids may collide).
        # Replaced, never mutated: the log's writer thread reads it.
        self._journals: dict[str, tuple[SessionJournal, ...]] = {}
        self._listeners: list[Callable[[str], None]] = []
        self.leases: LeasedLog | None = log if isinstance(log, LeasedLog) else None
        """The log's leases when several nodes share it; ``None`` when this process is alone."""
        self._index_read: dict[str, int] = {}  # index topic → last id applied
        # Live sessions another node runs: the task tailing their events, and the last id it published.
        self._tails: dict[str, _Tail] = {}
        # Owned sessions: the flag that stops serving the commands other nodes forward to them.
        self._serving: dict[str, _Tail] = {}
        self._forwarded: set[asyncio.Task[None]] = set()
        if self.leases is not None:
            self.leases.group_topics((AGENT_EVENTS_TOPIC_PREFIX, SESSION_INDEX_PREFIX))
            self.leases.add_lease_listener(self._on_lease_lost)
        self._load_index()
        log.add_commit_listener(self._on_commit)

    def _on_commit(self, heads: Mapping[str, int]) -> None:
        """The log's commit listener (any thread): tell each session's journal how far it is durable."""
        journals = self._journals
        for topic, head in heads.items():
            for journal in journals.get(topic, ()):
                journal.committed(head)

    def _watch(self, journal: SessionJournal) -> None:
        journals = dict(self._journals)
        journals[journal.topic] = (*journals.get(journal.topic, ()), journal)
        self._journals = journals

    def _unwatch(self, journal: SessionJournal) -> None:
        journals = dict(self._journals)
        rest = tuple(j for j in journals.get(journal.topic, ()) if j is not journal)
        if rest:
            journals[journal.topic] = rest
        else:
            journals.pop(journal.topic, None)
        self._journals = journals

    # --- observers ------------------------------------------------------------------------------------

    def add_listener(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(session_id)`` (on the event loop) when a session is created or closed,
        a client attaches or leaves, or a turn starts or ends (what the inspector shows live)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[str], None]) -> None:
        """Stop calling ``listener``; unknown listeners are ignored."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def changed(self, session_id: str) -> None:
        """Tell the listeners that ``session_id`` changed; a failing listener is logged and skipped."""
        for listener in list(self._listeners):
            try:
                listener(session_id)
            except Exception:
                logger.exception("session listener failed")

    # --- durability ----------------------------------------------------------------------------------

    def committed_event_id(self, session_id: str) -> int:
        """The id of the session's last committed event (0 if none): the last any client may see."""
        return self.log.committed(agent_events_topic(session_id)) or 0

    async def flush(self) -> None:
        """Wait until everything appended so far is committed (raises ``EventLogError``)."""
        await self.log.aflush()

    async def settle(self, session: Session) -> str | None:
        """Wait until the session's events so far are committed and handed to its clients' outboxes.

        Returns the log's error text if committing failed (those events were never sent).
        """
        try:
            await self.log.aflush()
        except Exception as exc:
            logger.error("event log flush failed: %s", exc)
            return str(exc)
        if session.journal not in self._journals.get(session.journal.topic, ()):
            return None  # closed: its clients are detached, nothing more is published
        try:
            async with asyncio.timeout(SETTLE_SECONDS):
                await session.journal.published()
        except TimeoutError:
            logger.warning(
                "session %s: committed events not published within %.0f s",
                session.session_id,
                SETTLE_SECONDS,
            )
        return None

    # --- index persistence ---------------------------------------------------------------------------

    def _index_topic(self, session_id: str) -> str:
        if self.leases is None:
            return SESSION_INDEX_TOPIC
        return SESSION_INDEX_PREFIX + session_group(session_id)

    def _load_index(self) -> None:
        """Apply the index records not applied yet (all of them at start)."""
        topics = [SESSION_INDEX_TOPIC]
        if self.leases is not None:
            topics += [t for t in self.log.topics() if t.startswith(SESSION_INDEX_PREFIX)]
        # A shared log keeps one index topic per session: read them all in one request when the
        # log can (the Redis log's read_ranges), not one round trip per session.
        read_ranges = getattr(self.log, "read_ranges", None)
        if read_ranges is None or len(topics) < 2:
            for topic in topics:
                self._read_index_topic(topic)
            return
        pages = read_ranges(
            {topic: self._index_read.get(topic, 0) for topic in topics}, _INDEX_PAGE
        )
        for topic in topics:
            entries = pages[topic]
            for entry in entries:
                self._apply(entry.record.kind, entry.record.payload)
            if entries:
                self._index_read[topic] = entries[-1].id
            if len(entries) == _INDEX_PAGE:
                self._read_index_topic(topic)  # more than a page: the rest, page by page

    def _read_index_topic(self, topic: str) -> None:
        after = self._index_read.get(topic, 0)
        while True:
            entries = self.log.read_range(topic, after=after, limit=_INDEX_PAGE)
            if not entries:
                break
            for entry in entries:
                self._apply(entry.record.kind, entry.record.payload)
            after = entries[-1].id
        self._index_read[topic] = after

    def refresh_index(self, session_id: str | None = None) -> None:
        """On a shared log, pick up what other nodes recorded: one session's metadata, or all."""
        if self.leases is None:
            return
        if session_id is None:
            self._load_index()
        else:
            self._read_index_topic(self._index_topic(session_id))

    # --- ownership (shared logs) -------------------------------------------------------------------

    async def claim(self, session_id: str) -> None:
        """Make this node the session's owner, taking it over if its lease expired.

        Does nothing when the log is not shared. Raises :exc:`SessionOwnedElsewhere` while another
        node holds the lease.
        """
        leases = self.leases
        if leases is None:
            return
        unreachable = getattr(self.log, "connection_error", None)
        if unreachable:
            raise EventLogError(f"the shared event log is unreachable: {unreachable}")
        group = session_group(session_id)
        if leases.holds(group):
            return
        token = await asyncio.to_thread(leases.claim, group)
        if token is None:
            owner = await asyncio.to_thread(leases.owner, group)
            raise SessionOwnedElsewhere(session_id, owner)
        logger.info("node %s owns session %s (token %d)", leases.node_id, session_id, token)
        await self._stop_following(session_id)
        session = self.sessions.get(session_id)
        if session is not None:
            self._serve(session)

    # --- commands forwarded between nodes (shared logs) ----------------------------------------------

    def _serve(self, session: Session) -> None:
        """Run the prompts and cancels other nodes forward to ``session``, which this node owns."""
        leases = self.leases
        sid = session.session_id
        if leases is None or sid in self._serving:
            return
        state = _Tail(0)
        state.task = asyncio.create_task(
            self._run_commands(leases, session, state), name=f"commands-{sid}"
        )
        self._serving[sid] = state

    def _unserve(self, session_id: str) -> None:
        state = self._serving.pop(session_id, None)
        if state is not None:
            state.stop()

    async def _run_commands(self, leases: LeasedLog, session: Session, state: _Tail) -> None:
        group = session_group(session.session_id)
        try:
            async for message in leases.commands(group, stopped=lambda: state.stopped):
                if state.stopped:
                    return
                command = orjson.loads(message)
                op = command.get("op") if isinstance(command, dict) else None
                if op == "prompt":
                    task = asyncio.create_task(self._run_forwarded(leases, session, command))
                    self._forwarded.add(task)
                    task.add_done_callback(self._forwarded.discard)
                elif op == "cancel":
                    session.cancel()
                elif op == "close":
                    task = asyncio.create_task(self._run_forwarded_close(leases, session, command))
                    self._forwarded.add(task)
                    task.add_done_callback(self._forwarded.discard)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("commands of session %s failed", session.session_id)

    async def _run_forwarded(
        self, leases: LeasedLog, session: Session, command: dict[str, Any]
    ) -> None:
        reply: dict[str, Any]
        try:
            message_id = command.get("messageId")
            stop = await session.run_turn(
                _RemoteClient(),
                command["prompt"],
                None,
                message_id=message_id if isinstance(message_id, str) else None,
            )
            reply = {"stopReason": stop.value}
            error = await self.settle(session)
            if error is not None:
                reply["persistenceError"] = error
            reply["lastEventId"] = self.committed_event_id(session.session_id)
        except Exception as exc:
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        await self._reply(leases, session, command, reply)

    async def _run_forwarded_close(
        self, leases: LeasedLog, session: Session, command: dict[str, Any]
    ) -> None:
        reply: dict[str, Any]
        try:
            if command.get("delete") is True:
                await self.delete_for_client(session.session_id, forwarded=True)
            else:
                await self.close_for_client(session, forwarded=True)
            reply = {"closed": True, "lastEventId": self.committed_event_id(session.session_id)}
        except Exception as exc:
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        await self._reply(leases, session, command, reply)

    @staticmethod
    async def _reply(
        leases: LeasedLog, session: Session, command: dict[str, Any], reply: dict[str, Any]
    ) -> None:
        """Answer a command another node forwarded (it waits for this, see :meth:`_ask_owner`)."""
        await asyncio.to_thread(
            leases.reply,
            session_group(session.session_id),
            str(command["reply"]),
            orjson.dumps(reply),
        )

    def _announce_closed(self, session: Session, status: str, method: str, forwarded: bool) -> None:
        session.cancel()
        metadata: dict[str, Any] = {"protocol": "acp", "method": method}
        if forwarded:
            metadata["forwarded"] = True
        session.context.emit(
            SessionClosed(
                session_id=session.session_id,
                reason="client_request",
                status=status,
                metadata=metadata,
            )
        )

    async def close_for_client(self, session: Session, *, forwarded: bool = False) -> None:
        """``session/close``: cancel the turn, tell every client (``session_closed``), close."""
        self._announce_closed(session, "closed", "session/close", forwarded)
        await self.close(session)

    async def delete_for_client(self, session_id: str, *, forwarded: bool = False) -> bool:
        """``session/delete``: cancel the turn, tell every client (``session_closed`` with status
        ``deleted``), delete; False if no such session is known."""
        session = self.live(session_id)
        if session is not None:
            self._announce_closed(session, "deleted", "session/delete", forwarded)
        return await self.delete(session_id)

    async def _ask_owner(
        self, session: Session, command: dict[str, Any], doing: str, failure_reason: str | None
    ) -> dict[str, Any]:
        """Send ``command`` (with its ``reply`` id) to the node that owns ``session`` and return its
        reply once this node's clients have every update up to it (they come through the tail)."""
        leases = self.leases
        assert leases is not None
        sid = session.session_id
        group = session_group(sid)
        command_id = await asyncio.to_thread(leases.send_command, group, orjson.dumps(command))
        raw = await leases.wait_reply(
            group, str(command["reply"]), gone=lambda: leases.owner(group) is None
        )
        if raw is None:
            # The owner died before answering: make sure the next owner won't run it as well.
            await asyncio.to_thread(leases.withdraw_command, group, command_id)
            raise InternalError(
                f"the node that owned session {sid} went away during {doing};"
                " send it again to have it done here",
                data={"reason": "owner_gone"},
            )
        reply: dict[str, Any] = orjson.loads(raw)
        if "error" in reply:
            data = None if failure_reason is None else {"reason": failure_reason}
            raise InternalError(f"the owning node failed {doing}: {reply['error']}", data=data)
        tail = self._tails.get(sid)
        if tail is not None:
            try:
                async with asyncio.timeout(SETTLE_SECONDS):
                    await tail.reached(int(reply.get("lastEventId", 0)))
            except TimeoutError:
                logger.warning("session %s: the updates of %s reached this node late", sid, doing)
        return reply

    async def forward_close(self, session: Session, *, delete: bool = False) -> None:
        """Have the owning node close (or ``delete``) ``session``; once this node's clients have its
        last updates (its ``session_closed``), forget it here too. The owner writes the index."""
        command = {"op": "close", "reply": uuid.uuid4().hex, "delete": delete}
        await self._ask_owner(session, command, "the close", None)
        sid = session.session_id
        self._unfollow(sid)
        session.closed = True
        self.registry.clear_session_sinks(sid)
        self._unwatch(session.journal)
        self.sessions.pop(sid, None)
        record = self.index.get(sid)
        if record is not None:
            record.closed = True
            if delete:
                self.index.pop(sid, None)
        session.fanout.close()

    async def forward_prompt(
        self,
        session: Session,
        prompt: list[dict[str, Any]],
        asker: Attachment | None = None,
    ) -> dict[str, Any]:
        """Have the owning node run a prompt turn; return its answer once this node's clients
        have every update of the turn (they come through the tail)."""
        reply_id = uuid.uuid4().hex
        message_id = f"user-{reply_id}"
        command = {"op": "prompt", "prompt": prompt, "reply": reply_id, "messageId": message_id}
        tail = self._tails.get(session.session_id)
        if tail is not None and asker is not None:
            tail.spare[message_id] = asker  # the asker has its prompt: no echo for it
        reply = await self._ask_owner(session, command, "the prompt", "agent")
        result: dict[str, Any] = {"stopReason": reply["stopReason"]}
        if "persistenceError" in reply:
            result["_meta"] = {"harn": {"persistenceError": reply["persistenceError"]}}
        return result

    def forwards(self, session: Session) -> bool:
        """Whether another node runs ``session`` (prompts and cancels go there)."""
        return session.session_id in self._tails

    async def forward_cancel(self, session: Session) -> None:
        """Cancel the turn the owning node runs for ``session``."""
        leases = self.leases
        if leases is not None:
            await asyncio.to_thread(
                leases.send_command,
                session_group(session.session_id),
                orjson.dumps({"op": "cancel"}),
            )

    # --- following sessions another node runs (shared logs) ------------------------------------------

    def _follow(self, session: Session, after: int) -> None:
        """Publish, to this node's clients of ``session``, the events another node appends to it."""
        leases = self.leases
        sid = session.session_id
        if leases is None or sid in self._tails or leases.holds(session_group(sid)):
            return
        tail = _Tail(after)
        tail.task = asyncio.create_task(self._run_tail(leases, session, tail), name=f"tail-{sid}")
        self._tails[sid] = tail

    async def _run_tail(self, leases: LeasedLog, session: Session, tail: _Tail) -> None:
        topic = agent_events_topic(session.session_id)
        try:
            async for entry in leases.tail(topic, tail.cursor, stopped=lambda: tail.stopped):
                # The flag, not only the cancel: redis-py may swallow a cancel while it connects.
                if tail.stopped:
                    return
                tail.cursor = entry.id
                self._publish_entry(session, entry.id, entry.record, tail)
                tail.advanced()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("tail of session %s failed", session.session_id)

    def _publish_entry(
        self, session: Session, event_id: int, record: LogRecord, tail: _Tail | None = None
    ) -> None:
        try:
            event = decode_session_event(record.kind, event_of(record))
        except EventDecodeError as exc:
            logger.warning("skipping undecodable event %d of %s: %s", event_id, session, exc)
            return
        if event.session_id != session.session_id:
            return
        exclude = None
        if tail is not None and isinstance(event, UserMessage):
            exclude = tail.spare.pop(event.message_id or "", None)
        session.fanout.publish(event, event_id, exclude)

    async def _stop_following(self, session_id: str) -> None:
        """Stop tailing a session this node now runs, after publishing what the tail had not yet."""
        tail = self._tails.pop(session_id, None)
        if tail is None:
            return
        tail.stop()
        cursor = tail.cursor  # final: a stopped tail publishes nothing more
        session = self.sessions.get(session_id)
        if session is None:
            return
        topic = agent_events_topic(session_id)
        entries = await asyncio.to_thread(self.log.read_range, topic, cursor)
        for entry in entries:
            self._publish_entry(session, entry.id, entry.record)

    def _unfollow(self, session_id: str) -> None:
        tail = self._tails.pop(session_id, None)
        if tail is not None:
            tail.stop()

    def owned(self) -> list[str]:
        """The live sessions whose lease this node holds (sorted; empty when the log is not shared)."""
        leases = self.leases
        if leases is None:
            return []
        return sorted(s for s in self.sessions if leases.holds(session_group(s)))

    def _on_lease_lost(self, group: str) -> None:
        """The log's lease listener (a log thread): handled on the loop."""
        self.loop.call_soon_threadsafe(self._lease_lost, group)

    def _lease_lost(self, group: str) -> None:
        for session in list(self.sessions.values()):
            if session_group(session.session_id) != group:
                continue
            dropped = session.journal.forget_uncommitted()
            running = session.cancel()
            self._unserve(session.session_id)
            # From now on the new owner's events reach this node's clients through a tail.
            self._follow(session, session.journal.published_through)
            logger.warning(
                "session %s: this node lost its lease; %s, %d uncommitted event(s) dropped",
                session.session_id,
                "its turn is cancelled" if running else "no turn was running",
                dropped,
            )

    def _apply(self, kind: str, payload: Any) -> None:
        if not isinstance(payload, dict) or not isinstance(payload.get("sessionId"), str):
            return
        sid = payload["sessionId"]
        if kind == "session_created" and sid in self.index:
            return  # already known (read again from a shared log)
        if kind == "session_created":
            created_at = str(payload.get("createdAt", ""))
            epoch = payload.get("epoch")
            self.index[sid] = SessionRecord(
                sid,
                str(payload.get("cwd", "/")),
                created_at,
                str(payload.get("updatedAt", created_at)),
                payload.get("title"),
                # Records written before epochs existed get a stable one from what they hold.
                epoch=epoch if isinstance(epoch, str) and epoch else _legacy_epoch(sid, created_at),
                # A rewritten index (retention) keeps closed sessions as one closed record.
                closed=payload.get("closed") is True,
                additional_directories=_directories(payload),
            )
        elif kind == "session_deleted":
            self.index.pop(sid, None)
        elif sid in self.index:
            record = self.index[sid]
            if kind == "session_updated":
                record.updated_at = str(payload.get("updatedAt", record.updated_at))
                record.title = payload.get("title", record.title)
                if "additionalDirectories" in payload:
                    record.additional_directories = _directories(payload)
            elif kind == "session_closed":
                record.closed = True

    def _persist(self, kind: str, record: SessionRecord) -> None:
        payload: dict[str, Any] = {
            "sessionId": record.session_id,
            "cwd": record.cwd,
            "createdAt": record.created_at,
            "updatedAt": record.updated_at,
            "title": record.title,
            "epoch": record.epoch,
            "additionalDirectories": list(record.additional_directories),
        }
        if record.closed:
            payload["closed"] = True
        try:
            self.log.append(self._index_topic(record.session_id), LogRecord(kind, payload))
        except Exception:
            logger.exception("could not persist %s for session %s", kind, record.session_id)

    def snapshot_index(self) -> None:
        """Append one ``session_created`` record per indexed session, with everything it holds now:
        replaying the index from the first of them gives the index as it is (retention then
        deletes the records before them)."""
        for record in list(self.index.values()):
            self._persist("session_created", record)

    def set_additional_directories(self, session: Session, directories: tuple[str, ...]) -> None:
        """Make ``directories`` the session's additional roots (persisted when they change)."""
        if directories != session.record.additional_directories:
            session.record.additional_directories = directories
            self._persist("session_updated", session.record)

    def touch(self, session: Session) -> None:
        """Record activity on a session (its ``updatedAt`` and title)."""
        session.record.updated_at = _now_iso()
        self._persist("session_updated", session.record)

    # --- lifecycle -----------------------------------------------------------------------------------

    def _activate(self, record: SessionRecord) -> Session:
        session = Session(record, manager=self, context_factory=self.context_factory)
        self.sessions[record.session_id] = session
        self._watch(session.journal)
        self.registry.register_sink(record.session_id, session.journal)
        return session

    def create(
        self,
        cwd: str,
        *,
        session_id: str | None = None,
        title: str | None = None,
        additional_directories: tuple[str, ...] = (),
    ) -> Session:
        """A new session (registered, persisted; the backend is told by the caller)."""
        now = _now_iso()
        record = SessionRecord(
            session_id or uuid.uuid4().hex,
            cwd,
            now,
            now,
            title,
            epoch=secrets.token_hex(8),
            additional_directories=additional_directories,
        )
        self.index[record.session_id] = record
        self._persist("session_created", record)
        session = self._activate(record)
        self.changed(record.session_id)
        return session

    async def acreate(
        self,
        cwd: str,
        *,
        title: str | None = None,
        additional_directories: tuple[str, ...] = (),
    ) -> Session:
        """A new session, owned by this node when the log is shared (see :meth:`create`)."""
        session_id = uuid.uuid4().hex
        await self.claim(session_id)
        session = self.create(
            cwd,
            session_id=session_id,
            title=title,
            additional_directories=additional_directories,
        )
        self._serve(session)
        return session

    def live(self, session_id: str) -> Session | None:
        """The session if it is live in this process (never restores one)."""
        return self.sessions.get(session_id)

    def get(self, session_id: str) -> Session | None:
        """The live session, restoring it from the index if it exists but is not live."""
        session = self.sessions.get(session_id)
        if session is not None:
            return session
        record = self.index.get(session_id)
        if record is None and self.leases is not None:
            self.refresh_index(session_id)  # made on another node, perhaps
            record = self.index.get(session_id)
        if record is None or record.closed:
            return None
        session = self._activate(record)
        if self.leases is not None:
            self._follow(session, self.committed_event_id(session_id))
        return session

    async def start_backend(self, session: Session, *, new: bool) -> None:
        """Tell the backend about a session the first time it is used in this process."""
        if session.backend_started:
            return
        session.backend_started = True
        try:
            if new:
                await self.backend.new_session(session.context)
            else:
                await self.backend.load_session(session.context)
        except BaseException:
            session.backend_started = False  # the next load/resume asks the backend again
            raise

    async def close(self, session: Session) -> None:
        """Close ``session``: cancel its turns, tell the backend, drop its sinks and attachments."""
        await self._shut_down(session)
        self._mark_closed(session)
        session.fanout.close()

    async def delete(self, session_id: str, *, reclaim: bool = True) -> bool:
        """Delete a session (decision 0025): shut it down if it is live, then leave a tombstone in
        the index, so no restart lists or loads it again. With ``reclaim`` and a log that can
        delete (:class:`~acp_bridge.eventlog.Prunable`), its events are deleted too (decision 0045).

        Returns False if no such (undeleted) session is known.
        """
        record = self.index.get(session_id)
        if record is None:
            return False
        session = self.sessions.get(session_id)
        if session is not None:
            await self._shut_down(session)
            self._unwatch(session.journal)
            self.sessions.pop(session_id, None)
        record.closed = True
        record.updated_at = _now_iso()
        self._persist("session_deleted", record)
        self.index.pop(session_id, None)
        if session is not None:
            session.fanout.close()
        if reclaim:
            await self.reclaim(session_id)
        return True

    async def reclaim(self, session_id: str) -> int:
        """Delete the events of a deleted session from a log that can (in a thread); how many."""
        if not isinstance(self.log, Prunable) or session_id in self.index:
            return 0
        topic = agent_events_topic(session_id)
        if any(agent_events_topic(other) == topic for other in (*self.index, *self.sessions)):
            # Session ids that sanitise alike share a topic: the other one's events stay.
            logger.info("deleted session %s shares its topic; its events stay", session_id)
            return 0
        try:
            return await asyncio.to_thread(self.log.prune, topic, self.log.latest(topic) or 0)
        except EventLogError:
            logger.exception("could not delete the events of deleted session %s", session_id)
            return 0

    async def _shut_down(self, session: Session) -> None:
        """Cancel the session's turns, tell the backend, drop its sinks; wait for what it emitted
        on its way out (``session_closed``) to reach its clients."""
        session.closed = True
        session.cancel()
        async with session.turn_lock:
            pass  # wait for the cancelled turn to finish
        try:
            await self.backend.close_session(session.context)
        except Exception:
            logger.exception("backend close_session failed for %s", session.session_id)
        self.registry.clear_session_sinks(session.session_id)
        # What the session emitted on its way out (session_closed) reaches its clients first.
        await self.settle(session)

    def discard(self, session: Session) -> None:
        """Drop a session whose creation failed: out of the registry, closed in the index.

        The backend is not told (it is the one that failed to create it).
        """
        session.closed = True
        session.cancel()
        self.registry.unregister_sink(session.session_id, session.journal)
        self._mark_closed(session)

    def _mark_closed(self, session: Session) -> None:
        self._unfollow(session.session_id)
        self._unserve(session.session_id)
        self._unwatch(session.journal)
        session.record.closed = True
        session.record.updated_at = _now_iso()
        self._persist("session_closed", session.record)
        self.sessions.pop(session.session_id, None)
        self.changed(session.session_id)

    async def quiesce(self, timeout: float) -> None:  # noqa: ASYNC109 - bounded by design
        """Wait (bounded) until no session runs a turn: a turn records its session's activity last,
        and that write must come before the log closes."""

        async def idle(session: Session) -> None:
            async with session.turn_lock:
                pass

        waits = [asyncio.ensure_future(idle(s)) for s in self.sessions.values()]
        if not waits:
            return
        _, pending = await asyncio.wait(waits, timeout=timeout)
        for wait in pending:
            wait.cancel()
        if pending:
            logger.warning(
                "%d turn(s) still running at shutdown after %.0f s", len(pending), timeout
            )

    def release(self) -> None:
        """Take every live session's sinks out of the registry (bridge shutdown; sessions stay open).

        Only this manager's own sinks go: other sinks an embedding program registered are left alone.
        """
        for session in list(self.sessions.values()):
            self.registry.unregister_sink(session.session_id, session.journal)
            self._unfollow(session.session_id)
            self._unserve(session.session_id)
            if self.leases is not None:
                # Another node may take the session over at once instead of after the TTL.
                try:
                    self.leases.release(session_group(session.session_id))
                except Exception:
                    logger.exception("could not release the lease of %s", session.session_id)
        self.sessions.clear()
        self._journals = {}
        self.log.remove_commit_listener(self._on_commit)

    def list(self, cwd: str | None, cursor: str | None) -> tuple[list[SessionRecord], str | None]:
        """One page of open sessions, most recently updated first, optionally filtered by ``cwd``."""
        self.refresh_index()
        records = sorted(
            (r for r in self.index.values() if not r.closed and (cwd is None or r.cwd == cwd)),
            key=lambda r: (r.updated_at, r.session_id),
            reverse=True,
        )
        start = _decode_cursor(cursor)
        page = records[start : start + LIST_PAGE_SIZE]
        end = start + len(page)
        return page, (_encode_cursor(end) if end < len(records) else None)


def _directories(payload: Mapping[str, Any]) -> tuple[str, ...]:
    value = payload.get("additionalDirectories")
    if not isinstance(value, list):
        return ()
    return tuple(path for path in value if isinstance(path, str))


@dataclass(eq=False)
class _Tail:
    """A session this node follows (another node runs it): the tailing task and how far it got."""

    cursor: int
    stopped: bool = False
    task: asyncio.Task[None] | None = None
    waiters: list[tuple[int, asyncio.Future[None]]] = field(default_factory=list)
    spare: dict[str, Attachment] = field(default_factory=dict)
    """Echo message id → the attachment whose forwarded prompt it echoes (it gets no echo)."""

    async def reached(self, event_id: int) -> None:
        """Wait until the tail has published ``event_id``."""
        if self.cursor >= event_id:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append((event_id, future))
        await future

    def advanced(self) -> None:
        """Wake whoever waits for an id the tail has now published."""
        still = []
        for target, future in self.waiters:
            if target <= self.cursor:
                if not future.done():
                    future.set_result(None)
            else:
                still.append((target, future))
        self.waiters = still

    def stop(self) -> None:
        """Publish nothing more, and end the task (not awaited: closing its connection may take
        a while)."""
        self.stopped = True
        if self.task is not None:
            self.task.cancel()


def _legacy_epoch(session_id: str, created_at: str) -> str:
    return hashlib.sha256(f"{session_id}\0{created_at}".encode()).hexdigest()[:16]


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode()


def _decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
        kind, _, value = text.partition(":")
        if kind != "o":
            raise ValueError(cursor)
        return max(0, int(value))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"invalid cursor {cursor!r}") from exc
