"""An append-only log of records in named topics, in memory, in SQLite or in Redis Streams.

This layer knows nothing of what it stores: producers append :class:`LogRecord` values to topics
and get back per-topic ids (1, 2, 3, ... without gaps); consumers read ranges of ids or subscribe
to a topic to get its history followed by live entries. :func:`open_event_log` picks a backend
from a configuration string; code that uses a log depends on the :class:`EventLog` protocol only.
"""

from .base import (
    EventLog,
    EventLogClosed,
    EventLogError,
    InvalidTopic,
    LeasedLog,
    LogEntry,
    LogRecord,
    Prunable,
    now_ms,
    sanitize_topic_component,
    validate_topic,
)
from .factory import open_event_log, register_backend
from .memory import MemoryEventLog
from .redis_streams import NotOwner, RedisEventLog
from .sqlite import SqliteEventLog

__all__ = [
    "EventLog",
    "EventLogClosed",
    "EventLogError",
    "InvalidTopic",
    "LeasedLog",
    "LogEntry",
    "LogRecord",
    "MemoryEventLog",
    "NotOwner",
    "Prunable",
    "RedisEventLog",
    "SqliteEventLog",
    "now_ms",
    "open_event_log",
    "register_backend",
    "sanitize_topic_component",
    "validate_topic",
]
