"""Delivery of a session's messages to the connections attached to it, with ACP's ordering rules.

An :class:`Attachment` is one (connection, session) pair. It enforces, per client:

* **the gate**: nothing for the session is written before the ``session/new``/``load``/``resume``
  response; messages that arrive earlier are held and released right after the response;
* **tool calls first**: a ``tool_call_update`` for an id this client has not seen is turned into the
  ``tool_call`` (clients drop or mangle updates for unknown ids);
* **declared extensions only**: an extension notification (``_harn/…``, ``_acp_bridge/…``) reaches
  the client only if its ``initialize`` declared it (:mod:`acp_bridge.acp.extensions`);
* **event ids**: each message carries the event-log id of the event it came from (Harn's hub format in
  the harn profile, ``params._meta.harn.eventId`` in strict).

:class:`SessionFanout` translates each event once per profile and hands the result to every attachment.
It runs on the event loop; the ACP sink marshals events from other threads onto it.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from acp_bridge.events.session_event import SessionAcpUpdate, SessionEvent, SessionRuntimeEvent
from acp_bridge.translate import Message, Profile, encode_message, stamp_event_id, translate
from acp_bridge.translate.prebuilt import CHUNK_TYPES, ChunkTemplate, chunk_template
from acp_bridge.translate.proxied import translate_proxied
from acp_bridge.translate.runtime import RuntimeTranslator, UnmappedRunError
from acp_bridge.translate.schema_check import session_update_problem

from .extensions import ClientExtensions

__all__ = ["Attachment", "MessageSink", "SessionFanout", "stamp_event_id"]  # stamp: re-exported

logger = logging.getLogger(__name__)


class MessageSink(Protocol):
    """Where an attachment writes: the connection's JSON-RPC peer (``send`` never blocks)."""

    def send(self, message: dict[str, Any] | bytes) -> bool:
        """Queue one message; False if the connection is gone."""

    def send_many(self, messages: list[bytes]) -> bool:
        """Queue several encoded messages in order; False if the connection is gone."""

    async def send_wait(self, message: dict[str, Any] | bytes) -> bool:
        """Queue one message, waiting for room (used for replay)."""


def _stampable_copy(message: Message) -> Message:
    """A copy deep enough for :func:`stamp_event_id` (it writes the root, ``params`` and ``_meta``)."""
    params = dict(message["params"])
    meta = params.get("_meta")
    if isinstance(meta, dict):
        params["_meta"] = {k: dict(v) if isinstance(v, dict) else v for k, v in meta.items()}
    return {**message, "params": params}


@dataclass(eq=False)
class Attachment:
    """One connection's view of one session."""

    session_id: str
    profile: Profile
    sink: MessageSink
    open: bool = False
    announced: set[str] | None = None
    """The tool call ids this client has seen created (made by the first one: most sessions
    never run a tool, and an empty set costs 216 bytes)."""
    held: list[tuple[int | None, Message, bytes | None]] = field(default_factory=list)
    replayed_through: int = 0
    on_closed: Callable[[Attachment], None] | None = None
    """Called when the session closes under this attachment (its connection forgets it)."""
    extensions: ClientExtensions = field(default_factory=ClientExtensions)
    """The extension methods the client declared; others are never written to it."""

    def wants(self, method: str) -> bool:
        """Does this client want messages of ``method``? (Extension methods only when declared.)"""
        return self.extensions.wants(method)

    def deliver(
        self, message: Message, event_id: int | None = None, encoded: bytes | None = None
    ) -> None:
        """Deliver one message (held while the gate is closed).

        ``encoded`` is the message already encoded for this attachment's profile, shared by every
        attachment of that profile; it is used unless the message has to be rewritten.
        """
        if not self.wants(message["method"]):
            return
        if not self.open:
            self.held.append((event_id, message, encoded))
            return
        if event_id is not None and event_id <= self.replayed_through:
            return  # the replay covered it (a publish still on its way from another thread)
        self._write(message, encoded)

    def deliver_chunks(self, chunks: list[tuple[int, bytes]]) -> None:
        """Deliver a run of text chunks' notifications (event id, encoded) in one hand-off to the
        connection. The gate must be open (the caller checks :attr:`open`); chunks need no
        tool-call check, and ``session/update`` is wanted by every client."""
        through = self.replayed_through
        if chunks[0][0] > through:
            self.sink.send_many([encoded for _, encoded in chunks])
        else:
            self.sink.send_many([encoded for event_id, encoded in chunks if event_id > through])

    def _write(self, message: Message, encoded: bytes | None = None) -> None:
        checked = self._ensure_tool_call(message)
        if checked is not message or encoded is None:
            encoded = encode_message(checked, self.profile)
        # A full outbox disconnects the client itself (rpc's slow-client rule); nothing to do here.
        self.sink.send(encoded)

    def _ensure_tool_call(self, message: Message) -> Message:
        if message.get("method") != "session/update":
            return message
        update = message["params"]["update"]
        kind = update.get("sessionUpdate")
        if kind == "tool_call":
            self._announce(update["toolCallId"])
        elif kind == "tool_call_update" and not self._was_announced(update.get("toolCallId")):
            # Turn the first update we have for this id into its creation.
            message = copy.deepcopy(message)
            update = message["params"]["update"]
            update["sessionUpdate"] = "tool_call"
            update.setdefault("title", update["toolCallId"])
            self._announce(update["toolCallId"])
        return message

    def _announce(self, tool_call_id: str) -> None:
        announced = self.announced
        if announced is None:
            self.announced = {tool_call_id}
        else:
            announced.add(tool_call_id)

    def _was_announced(self, tool_call_id: Any) -> bool:
        announced = self.announced
        return announced is not None and tool_call_id in announced

    def ensure_announced(self, tool_call: dict[str, Any]) -> None:
        """Before a permission request: make sure this client has seen the tool call it names."""
        tool_call_id = tool_call.get("toolCallId")
        if not isinstance(tool_call_id, str) or self._was_announced(tool_call_id):
            return
        update = {key: value for key, value in tool_call.items() if value is not None}
        update["sessionUpdate"] = "tool_call"
        update.setdefault("title", tool_call_id)
        if "content" in update and not isinstance(update["content"], list):
            del update["content"]
        self.deliver(
            {
                "jsonrpc": "2.0",
                "method": "session/update",
                "params": {"sessionId": self.session_id, "update": update},
            }
        )

    async def write_replayed(self, message: Message) -> None:
        """Write replayed history now, ignoring the gate (it goes out before the load response).

        Waits for room in the connection's outbox instead of overflowing it: a long history is sent
        at the pace the client reads it.
        """
        if not self.wants(message["method"]):
            return
        checked = self._ensure_tool_call(message)
        await self.sink.send_wait(encode_message(checked, self.profile))

    def open_gate(self) -> None:
        """Release held messages (minus those the replay already covered) and write live from now on."""
        held, self.held = self.held, []
        self.open = True
        for event_id, message, encoded in held:
            if event_id is not None and event_id <= self.replayed_through:
                continue
            self._write(message, encoded)


@dataclass(eq=False)
class SessionFanout:
    """Translates a session's events and hands the messages to every attachment."""

    session_id: str
    attachments: list[Attachment] = field(default_factory=list)
    runtime: RuntimeTranslator | None = None
    """The stateful translator for runtime-dialect events (created on first use)."""
    context_window: int | None = None
    """The model's context window in tokens, when known: ``usage_update`` needs it (decision 0027)."""
    _templates: dict[tuple[type, Profile], ChunkTemplate | None] | None = field(
        default=None, init=False, repr=False
    )
    """Per chunk type and profile, the prebuilt notification (made on first use)."""

    def _chunk_template(self, chunk_type: type, profile: Profile) -> ChunkTemplate | None:
        templates = self._templates
        if templates is None:
            templates = self._templates = {}
        key = (chunk_type, profile)
        if key not in templates:
            templates[key] = chunk_template(chunk_type, self.session_id, profile)
        return templates[key]

    def _runtime_messages(self, event: SessionRuntimeEvent) -> list[Message]:
        if self.runtime is None:
            self.runtime = RuntimeTranslator(
                session_id=self.session_id, context_window=self.context_window
            )
        try:
            return self.runtime.translate(event.event).messages
        except UnmappedRunError:  # pragma: no cover - a default session is always set
            logger.warning("dropping runtime event of an unmapped run in %s", self.session_id)
            return []

    def attach(self, attachment: Attachment) -> None:
        """Start delivering to ``attachment``."""
        self.attachments.append(attachment)

    def detach(self, attachment: Attachment) -> None:
        """Stop delivering to ``attachment``."""
        if attachment in self.attachments:
            self.attachments.remove(attachment)

    def publish(
        self, event: SessionEvent, event_id: int | None, exclude: Attachment | None = None
    ) -> None:
        """Translate ``event`` once per profile in use and deliver it to every attachment."""
        if event_id is not None and type(event) in CHUNK_TYPES:
            if self.attachments:
                self._publish_chunk_run(((event_id, event, exclude),))
            return
        self._publish_general(event, event_id, exclude)

    def _publish_general(
        self, event: SessionEvent, event_id: int | None, exclude: Attachment | None
    ) -> None:
        """Translate, stamp and encode ``event`` once per profile; every attachment's own rules."""
        runtime_messages: list[Message] | None = None
        if isinstance(event, SessionRuntimeEvent):
            # Translated even with nobody attached: the translator's per-run state must see every event.
            runtime_messages = self._runtime_messages(event)
        if not self.attachments:
            return
        by_profile: dict[Profile, list[tuple[Message, bytes]]] = {}
        valid: bool | None = None  # a proxied update's schema check, done once per event
        for attachment in list(self.attachments):
            if attachment is exclude:
                continue
            profile = attachment.profile
            prepared = by_profile.get(profile)
            if prepared is None:
                prepared = []
                if runtime_messages is not None:
                    # One translation serves every profile; each profile stamps its own copy.
                    translated = [_stampable_copy(m) for m in runtime_messages]
                elif isinstance(event, SessionAcpUpdate):
                    if valid is None and profile is not Profile.HARN:
                        valid = event.valid
                        if valid is None:
                            valid = session_update_problem(event.update) is None
                    translated = translate_proxied(event, profile=profile, valid=valid)
                else:
                    assert not isinstance(event, SessionRuntimeEvent)
                    translated = translate(
                        event, profile=profile, context_window=self.context_window
                    )
                for message in translated:
                    if event_id is not None:
                        stamp_event_id(message, profile, self.session_id, event_id)
                    prepared.append((message, encode_message(message, profile)))
                by_profile[profile] = prepared
            for message, encoded in prepared:
                attachment.deliver(message, event_id, encoded)

    def publish_batch(self, ready: Sequence[tuple[int, SessionEvent, Attachment | None]]) -> None:
        """Publish committed events in order, like :meth:`publish` for each; consecutive text chunks
        (shown to the same clients) go to each attachment in one hand-off."""
        start, count = 0, len(ready)
        while start < count:
            event_id, event, exclude = ready[start]
            if type(event) not in CHUNK_TYPES:
                self._publish_general(event, event_id, exclude)
                start += 1
                continue
            end = start + 1
            while end < count and type(ready[end][1]) in CHUNK_TYPES and ready[end][2] is exclude:
                end += 1
            if self.attachments:
                self._publish_chunk_run(ready[start:end])
            start = end

    def _publish_chunk_run(
        self, run: Sequence[tuple[int, SessionEvent, Attachment | None]]
    ) -> None:
        """Deliver consecutive text chunks (all excluding the same attachment, if any) through the
        templates instead of building, stamping and encoding a message each: one hand-off per
        attachment. If an attachment can't take them so (gate closed, no template for its profile),
        the run goes event by event through the general path."""
        exclude = run[0][2]
        attachments = [a for a in self.attachments if a is not exclude]
        encoded: dict[Profile, list[tuple[int, bytes]]] = {}
        for attachment in attachments:
            profile = attachment.profile
            if not attachment.open:
                break
            if profile not in encoded:
                chunks = self._encode_chunks(run, profile)
                if chunks is None:
                    break
                encoded[profile] = chunks
        else:
            for attachment in attachments:
                attachment.deliver_chunks(encoded[attachment.profile])
            return
        for event_id, event, _ in run:
            self._publish_general(event, event_id, exclude)

    def _encode_chunks(
        self, run: Sequence[tuple[int, SessionEvent, Attachment | None]], profile: Profile
    ) -> list[tuple[int, bytes]] | None:
        """The run's notifications for ``profile``, or ``None`` if a chunk type has no template."""
        out: list[tuple[int, bytes]] = []
        last_type: type | None = None
        template: ChunkTemplate | None = None
        for event_id, event, _ in run:
            chunk_type = type(event)
            if chunk_type is not last_type:
                template = self._chunk_template(chunk_type, profile)
                if template is None:
                    return None
                last_type = chunk_type
            assert template is not None
            out.append((event_id, template.encode(event.content, event_id)))  # type: ignore[union-attr]
        return out

    def close(self) -> None:
        """The session closed: detach every attachment and tell its owner."""
        attachments, self.attachments = self.attachments, []
        for attachment in attachments:
            if attachment.on_closed is not None:
                attachment.on_closed(attachment)

    def broadcast(self, message: Message, *, exclude: Attachment | None = None) -> None:
        """Deliver a message that is not an agent event (mode changes, commands) to every attachment."""
        for attachment in list(self.attachments):
            if attachment is not exclude:
                attachment.deliver(copy.deepcopy(message))
