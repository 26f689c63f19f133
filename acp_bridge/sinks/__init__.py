"""The sink registry of Harn's agent-event model and its sinks (fan-out, JSONL file, event log)."""

from .eventlog_sink import (
    AGENT_EVENTS_TOPIC_PREFIX,
    EventLogSink,
    agent_events_topic,
    event_of,
    harn_payload,
)
from .jsonl import DEFAULT_ROTATE_BYTES, JsonlEventSink, rotated_path
from .multi import MultiSink
from .registry import (
    AgentEventSink,
    SinkRegistry,
    clear_session_sinks,
    default_registry,
    emit_event,
    register_sink,
    reset_all_sinks,
    session_external_sink_count,
    unregister_sink,
)

__all__ = [
    "AGENT_EVENTS_TOPIC_PREFIX",
    "DEFAULT_ROTATE_BYTES",
    "AgentEventSink",
    "EventLogSink",
    "JsonlEventSink",
    "MultiSink",
    "SinkRegistry",
    "agent_events_topic",
    "clear_session_sinks",
    "default_registry",
    "emit_event",
    "event_of",
    "harn_payload",
    "register_sink",
    "reset_all_sinks",
    "rotated_path",
    "session_external_sink_count",
    "unregister_sink",
]
