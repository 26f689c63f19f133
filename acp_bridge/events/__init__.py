"""The input vocabularies: Harn's ``AgentEvent`` (:mod:`.harn`) and the run-style runtime's (:mod:`.runtime`)."""

from .errors import EventDecodeError
from .harn import (
    EVENT_TYPES,
    AgentEvent,
    AgentEventBase,
    HarnEvent,
    PersistedAgentEvent,
    UnknownAgentEvent,
    dump_event,
    dump_record,
    parse_event,
    parse_record,
)
from .session_event import (
    SessionAcpUpdate,
    SessionEvent,
    SessionRuntimeEvent,
    decode_session_event,
)

__all__ = [
    "EVENT_TYPES",
    "AgentEvent",
    "AgentEventBase",
    "EventDecodeError",
    "HarnEvent",
    "PersistedAgentEvent",
    "SessionAcpUpdate",
    "SessionEvent",
    "SessionRuntimeEvent",
    "UnknownAgentEvent",
    "decode_session_event",
    "dump_event",
    "dump_record",
    "parse_event",
    "parse_record",
]
