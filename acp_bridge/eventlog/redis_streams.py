"""An event log on Redis Streams: one stream per topic, written by a background thread.

Layout (``NS`` is the namespace, ``acp`` by default)::

    NS:{TOPIC}:events   a stream; entry id "<id>-0" for the topic's record <id>
    NS:topics           a set of the topics that have at least one entry

The hash tag ``{TOPIC}`` puts every key of one topic (and, for a session, of its agent-event topic)
in one Redis Cluster slot, and no command names two keys, so the layout works on a cluster as on a
single server. Explicit ids keep the topic's ids gap-free and let Redis itself refuse a second
record with an id it already holds ("equal or smaller than the target stream top item").

As with :class:`~acp_bridge.eventlog.SqliteEventLog`, ``append`` numbers the record from an
in-memory head and queues it; a writer thread sends everything queued in one pipeline and reports
the records committed only once Redis acknowledged them. Until then they stay in memory, where
readers find them. A topic's head is read from Redis the first time this process appends to it,
so a process continues a topic another one wrote; two processes must not append to the same topic
at the same time (the second one's writes are refused and its log stops accepting appends).

Reads of a topic this process does not append to go to Redis each time, so they see what other
processes wrote. Subscriptions are fed live by this process's own appends only.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any

import orjson
import redis
import redis.asyncio

from ._committer import Committer
from ._live import DEFAULT_LIVE_QUEUE_SIZE, LiveHub
from .base import (
    CommitListeners,
    EventLogClosed,
    EventLogError,
    LogEntry,
    LogRecord,
    check_read_bounds,
    validate_topic,
)

__all__ = [
    "DEFAULT_LEASE_TTL",
    "DEFAULT_NAMESPACE",
    "MIN_REDIS_VERSION",
    "LeaseListener",
    "NotOwner",
    "RedisEventLog",
    "events_key",
]

logger = logging.getLogger(__name__)

DEFAULT_NAMESPACE = "acp"
"""The first part of every key the log writes."""

MIN_REDIS_VERSION = (7, 0)
"""The oldest Redis server the log accepts (exclusive ``(`` ranges, explicit ids)."""

_MAX_BATCH = 4_096
"""Most entries per pipeline: big enough to amortise a round trip, small enough to keep it short."""

_WRITE_PATIENCE = 30.0
"""Seconds the writer keeps resending a batch while Redis is unreachable before it gives up (the
log then stops accepting appends, as after any write failure)."""
_WRITE_RETRY_INTERVAL = 0.5

_COMMAND_BACKLOG = 1_000
"""Commands a group's stream keeps (approximately): they are handled within seconds."""
_REPLY_TTL_MS = 60_000
"""How long an answer waits for its asker before Redis drops it."""

DEFAULT_TAIL_BLOCK_MS = 2_000
"""How long one ``XREAD`` of a tail blocks: short, so a closed log or a cancelled tail ends soon."""

_SOCKET_TIMEOUT = 10.0
"""Seconds a command may take before the connection is considered broken."""

_Queued = tuple[LogEntry, dict[str, bytes], int | None]
"""An entry waiting for the writer, its stream fields, and the fencing token it is appended with."""

LeaseListener = Callable[[str], None]
"""Told the group whose lease this process lost."""
_Rows = list[tuple[bytes, dict[bytes, bytes]]]
"""What XRANGE returns on a client that doesn't decode responses."""

_TOO_SMALL = "equal or smaller than the target stream top item"


def events_key(namespace: str, group: str, topic: str) -> str:
    """The stream key of ``topic`` in ``group``: hash-tagged on the group, so a group shares a slot."""
    return f"{namespace}:{{{group}}}:events:{topic}"


# Lua: every script names only keys of one group (one hash tag), so it runs on a Cluster too.
_ACQUIRE = """
local current = redis.call('GET', KEYS[1])
if current then
  local sep = string.find(current, '|', 1, true)
  if sep and string.sub(current, 1, sep - 1) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return tonumber(string.sub(current, sep + 1))
  end
  return 0
end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. token, 'NX', 'PX', ARGV[2])
return token
"""
"""KEYS owner, fence; ARGV node, ttl ms → the fencing token (0: another node holds the lease)."""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
"""KEYS owner; ARGV "node|token", ttl ms → 1 if still ours (and extended), else 0."""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
"""KEYS owner; ARGV "node|token" → 1 if it was ours and is gone."""

_FENCED_APPEND = """
local fence = redis.call('GET', KEYS[2])
if fence ~= ARGV[1] then
  return redis.error_reply('FENCED stale token ' .. ARGV[1] .. ' current ' .. tostring(fence))
end
return redis.call('XADD', KEYS[1], ARGV[2], unpack(ARGV, 3))
"""
"""KEYS events, fence; ARGV token, id, field, value, … → the id, unless a newer owner took over."""

DEFAULT_LEASE_TTL = 10.0
"""Seconds a lease lasts without renewal; it is renewed every third of that."""


def _fields(record: LogRecord) -> dict[str, bytes]:
    fields = {
        "k": record.kind.encode(),
        "p": record.payload_json,
        "t": str(record.occurred_at_ms).encode(),
    }
    if record.headers:
        fields["h"] = orjson.dumps(dict(record.headers))
    return fields


def _entry(topic: str, stream_id: bytes, fields: Mapping[bytes, bytes]) -> LogEntry:
    headers = fields.get(b"h")
    return LogEntry(
        topic,
        int(stream_id.split(b"-", 1)[0]),
        LogRecord.from_json(
            fields[b"k"].decode(),
            fields[b"p"],
            {} if headers is None else orjson.loads(headers),
            int(fields[b"t"]),
        ),
    )


class NotOwner(EventLogError):
    """An append to a grouped topic by a process that does not hold the group's lease."""


class RedisEventLog(Committer[_Queued]):
    """An :class:`~acp_bridge.eventlog.EventLog` kept in Redis Streams (Redis >= 7.0).

    Args:
        url: ``redis://[[user]:password@]host:port/db`` or ``rediss://…`` for TLS.
        namespace: the first part of every key, so several logs can share one database.
        max_pending: how many appended entries may wait for Redis's acknowledgement; once that many
            do, ``append`` blocks until the writer catches up.
        live_queue_size: how many entries a subscriber may fall behind before it catches up
            from the log instead of from its live buffer.
        client: a ready ``redis.Redis`` to use instead of one built from ``url`` (closed with the log).
        node_id: this process's name in leases (default: host name, pid and a random suffix).
        lease_ttl: seconds a lease lasts unless renewed; renewed every third of it.

    Raises:
        EventLogError: if Redis can't be reached or is older than 7.0.
    """

    _logger = logger

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        namespace: str = DEFAULT_NAMESPACE,
        max_pending: int = 65_536,
        live_queue_size: int = DEFAULT_LIVE_QUEUE_SIZE,
        client: redis.Redis | None = None,
        node_id: str | None = None,
        lease_ttl: float = DEFAULT_LEASE_TTL,
    ) -> None:
        if max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, got {max_pending}")
        if not namespace or any(c in namespace for c in "{}: "):
            raise ValueError(f"invalid namespace {namespace!r}")
        if lease_ttl <= 0:
            raise ValueError(f"lease_ttl must be > 0, got {lease_ttl}")
        self._closed = False
        self._url = url  # tails open connections of their own to it
        self._namespace = namespace
        self._node_id = node_id or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        if "|" in self._node_id:
            raise ValueError(f"invalid node id {self._node_id!r}")
        self._lease_ttl = lease_ttl
        self._group_prefixes: tuple[str, ...] = ()
        self._index_key = f"{namespace}:topics"
        self._max_pending = max_pending
        self._hub = LiveHub(live_queue_size)
        self._listeners = CommitListeners()
        self._client: redis.Redis = (
            client
            if client is not None
            else redis.Redis.from_url(
                url, socket_timeout=_SOCKET_TIMEOUT, socket_connect_timeout=_SOCKET_TIMEOUT
            )
        )
        try:
            self._check_server()
        except BaseException:
            self._client.close()
            raise
        self._acquire = self._client.register_script(_ACQUIRE)
        self._renew = self._client.register_script(_RENEW)
        self._release = self._client.register_script(_RELEASE)
        self._fenced_append = self._client.register_script(_FENCED_APPEND)

        # Everything below is guarded by _lock (the committer's state too).
        self._init_committer()
        self._heads: dict[str, int] = {}  # last id assigned, per topic this process appends to
        self._committed: dict[str, int] = {}
        self._indexed: set[str] = set()  # topics known to be in the index set

        # Leases, guarded by _lock too: group → (fencing token, monotonic time of the last renewal).
        self._leases: dict[str, tuple[int, float]] = {}
        self._lease_listeners: tuple[LeaseListener, ...] = ()
        self._renewer_stop = threading.Event()
        self._retry_wake = threading.Event()  # set by close(): stop pacing write retries
        self._connection_error: str | None = None

        self._before_write: Callable[[list[LogEntry]], None] | None = None
        """Test hook: called by the writer thread with each batch before sending it."""
        self._renew_paused = False
        """Test hook: while set, the renewer skips its renewals (a paused or partitioned node)."""

        self._writer = threading.Thread(
            target=self._run, name=f"eventlog-writer:redis:{namespace}", daemon=True
        )
        self._writer.start()
        self._renewer = threading.Thread(
            target=self._renew_loop, name=f"eventlog-leases:redis:{namespace}", daemon=True
        )
        self._renewer.start()

    def __repr__(self) -> str:
        return f"<RedisEventLog {self.location!r}{' closed' if self._closed else ''}>"

    @property
    def _where(self) -> str:
        return self.location

    @property
    def location(self) -> str:
        """Where the log is, without any password: ``host:port/db namespace``."""
        kwargs = self._client.connection_pool.connection_kwargs
        host, port, db = kwargs.get("host", "?"), kwargs.get("port", "?"), kwargs.get("db", 0)
        return f"{host}:{port}/{db} {self._namespace}"

    @property
    def namespace(self) -> str:
        """The first part of every key of this log."""
        return self._namespace

    @property
    def client(self) -> redis.Redis:
        """The Redis client the log uses (thread-safe; for the layers that share its server)."""
        return self._client

    def _check_server(self) -> None:
        try:
            info: dict[str, Any] = self._client.info("server")
            persistence: dict[str, Any] = self._client.info("persistence")
        except redis.RedisError as exc:
            raise EventLogError(f"cannot reach Redis for the event log: {exc}") from exc
        version = str(info.get("redis_version", "0"))
        parts = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
        if parts < MIN_REDIS_VERSION:
            raise EventLogError(f"the event log needs Redis >= 7.0, the server runs {version}")
        if not int(persistence.get("aof_enabled", 0)):
            logger.warning(
                "Redis at %s runs without AOF (appendonly no): acknowledged events may be lost "
                "if it restarts",
                self.location,
            )

    def _group(self, topic: str) -> str:
        for prefix in self._group_prefixes:
            if topic.startswith(prefix) and len(topic) > len(prefix):
                return topic[len(prefix) :]
        return topic

    def _key(self, topic: str) -> str:
        return events_key(self._namespace, self._group(topic), topic)

    def _lease_key(self, group: str, what: str) -> str:
        return f"{self._namespace}:{{{group}}}:{what}"

    # Ownership.

    @property
    def node_id(self) -> str:
        """This process's name in the leases it holds."""
        return self._node_id

    @property
    def lease_ttl(self) -> float:
        """Seconds a lease lasts without renewal."""
        return self._lease_ttl

    def group_topics(self, prefixes: tuple[str, ...]) -> None:
        """Group every topic ``PREFIX + NAME`` under ``NAME``; call before any other use.

        A group's topics share a hash tag (so a Cluster slot) and one lease: appending to a grouped
        topic needs that lease (:meth:`claim`), and the append is refused once another node claimed
        it after us. Topics matching no prefix are their own group and need no lease.
        """
        self._group_prefixes = tuple(prefixes)

    def claim(self, group: str) -> int | None:
        """Take (or keep) the lease of ``group``; return its fencing token, ``None`` if another
        node holds it. Waits for Redis: call it off the event loop."""
        validate_topic(group)
        try:
            token = int(
                self._acquire(
                    keys=[self._lease_key(group, "owner"), self._lease_key(group, "fence")],
                    args=[self._node_id, int(self._lease_ttl * 1000)],
                )
            )
        except Exception as exc:
            raise self._read_error(exc, f"cannot claim {group!r}") from exc
        if token <= 0:
            return None
        with self._lock:
            self._check_open()
            previous = self._leases.get(group)
            self._leases[group] = (token, time.monotonic())
            if previous is None or previous[0] != token:
                # Another node may have appended since this process last did: re-read the heads
                # (unless entries of ours are still in flight, which are ahead of Redis's head).
                for topic in [t for t in self._heads if self._group(t) == group]:
                    if topic not in self._unsettled:
                        del self._heads[topic]
                        del self._committed[topic]
        return token

    def holds(self, group: str) -> bool:
        """Whether this process holds the lease of ``group`` (as far as it knows)."""
        with self._lock:
            return group in self._leases

    def owner(self, group: str) -> str | None:
        """The node that holds the lease of ``group``, or ``None`` if nobody does."""
        try:
            value = self._client.get(self._lease_key(group, "owner"))
        except Exception as exc:
            raise self._read_error(exc, f"cannot read the owner of {group!r}") from exc
        if not isinstance(value, bytes):
            return None
        return value.decode().rpartition("|")[0] or None

    def release(self, group: str) -> None:
        """Give up the lease of ``group`` (after what was appended to it is acknowledged)."""
        self.flush()
        with self._lock:
            lease = self._leases.pop(group, None)
        if lease is None:
            return
        try:
            self._release(
                keys=[self._lease_key(group, "owner")], args=[f"{self._node_id}|{lease[0]}"]
            )
        except redis.RedisError as exc:
            logger.warning("could not release the lease of %s (it expires): %s", group, exc)

    def add_lease_listener(self, listener: LeaseListener) -> None:
        """Call ``listener(group)`` (on a log thread) when this process loses a group's lease."""
        with self._lock:
            self._lease_listeners = (*self._lease_listeners, listener)

    def _lose(self, group: str, why: str, token: int | None = None) -> None:
        """Forget the lease of ``group`` (only if it is still the one of ``token``, when given)."""
        with self._lock:
            lease = self._leases.get(group)
            if lease is None or (token is not None and lease[0] != token):
                return
            del self._leases[group]
            listeners = self._lease_listeners
        logger.warning("lost the lease of %s: %s", group, why)
        for listener in listeners:
            try:
                listener(group)
            except Exception:
                logger.exception("lease listener %r failed", listener)

    def _renew_loop(self) -> None:
        """Body of the lease thread: renew every held lease each third of the TTL."""
        ttl_ms = int(self._lease_ttl * 1000)
        while not self._renewer_stop.wait(self._lease_ttl / 3):
            with self._lock:
                leases = dict(self._leases)
            if self._renew_paused:
                continue
            if not leases:
                self.check_connection()
            for group, (token, renewed_at) in leases.items():
                try:
                    ok = self._renew(
                        keys=[self._lease_key(group, "owner")],
                        args=[f"{self._node_id}|{token}", ttl_ms],
                    )
                except Exception as exc:
                    self._connection_error = f"{type(exc).__name__}: {exc}"
                    if time.monotonic() - renewed_at >= self._lease_ttl:
                        self._lose(group, f"not renewed within its TTL ({exc})", token)
                    continue
                self._connection_error = None
                if not ok:
                    self._lose(group, "another node holds it now", token)
                    continue
                with self._lock:
                    if self._leases.get(group, (None,))[0] == token:
                        self._leases[group] = (token, time.monotonic())

    # Writing.

    def _fetch_head(self, topic: str) -> int:
        try:
            top: _Rows = self._client.xrevrange(self._key(topic), "+", "-", count=1)  # type: ignore[assignment]
        except Exception as exc:
            raise self._read_error(exc, f"cannot read topic {topic!r}") from exc
        return int(top[0][0].split(b"-", 1)[0]) if top else 0

    def append(self, topic: str, record: LogRecord) -> int:
        """Queue ``record`` for ``topic`` and return its id; see :meth:`EventLog.append`.

        This doesn't wait for Redis, except the first time this process appends to ``topic`` (to
        read where the topic stands) and when ``max_pending`` entries already wait for their
        acknowledgement.
        """
        if not isinstance(record, LogRecord):
            raise TypeError(f"record must be a LogRecord, got {type(record).__name__}")
        fields = _fields(record)
        head_known = False
        with self._lock:
            self._check_open()
            head_known = topic in self._heads
        if not head_known:
            validate_topic(topic)
            head = self._fetch_head(topic)
            with self._lock:
                if topic not in self._heads:
                    self._heads[topic] = head
                    self._committed[topic] = head
        with self._lock:
            if (
                self._closed
                or self._failure is not None
                or self._unsettled_count >= self._max_pending
            ):
                self._wait_for_room()
            group = self._group(topic)
            token = None
            if group != topic:
                lease = self._leases.get(group)
                if lease is None:
                    raise NotOwner(f"node {self._node_id} does not hold the lease of {group!r}")
                token = lease[0]
            entry = LogEntry(topic, self._heads[topic] + 1, record)
            self._heads[topic] = entry.id
            unsettled = self._unsettled.get(topic)
            if unsettled is None:
                unsettled = self._unsettled[topic] = deque()
            unsettled.append(entry)
            self._unsettled_count += 1
            self._queue.append((entry, fields, token))
            self._appended_count += 1
            self._hub.publish(entry)
            self._work.notify()
        return entry.id

    def _run(self) -> None:
        """Body of the writer thread: send queued entries until closed and drained."""
        try:
            while True:
                with self._lock:
                    while not self._queue and not self._closed:
                        self._work.wait()
                    if not self._queue:
                        return
                    queued = self._queue[:_MAX_BATCH]
                    del self._queue[:_MAX_BATCH]
                    new_topics = {e.topic for e, _, _ in queued} - self._indexed
                batch = [entry for entry, _, _ in queued]
                if self._before_write is not None:
                    self._before_write(batch)
                heads, fenced = self._write_retrying(queued, new_topics)
                with self._lock:
                    self._indexed |= new_topics
                self._settle(batch, heads, fenced)
        except BaseException as exc:
            self._writer_failed(exc)
        finally:
            self._writer_exited()

    def _write_retrying(
        self, queued: list[_Queued], new_topics: set[str]
    ) -> tuple[dict[str, int], set[str]]:
        """:meth:`_write`, sent again while Redis is unreachable, for up to ``_WRITE_PATIENCE``.

        Resending is safe (an entry that landed the first time is recognised). Meanwhile nothing
        of the batch is acknowledged, so nothing of it is shown to anybody; the connection error
        is reported by :attr:`connection_error` (and so by ``/healthz``).
        """
        deadline = time.monotonic() + _WRITE_PATIENCE
        while True:
            try:
                result = self._write(queued, new_topics)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                self._connection_error = f"{type(exc).__name__}: {exc}"
                if time.monotonic() >= deadline or self._retry_wake.is_set():
                    raise  # out of patience, or closing: the log reports the failure
                logger.warning("event log %s: Redis unreachable, retrying: %s", self.location, exc)
                self._retry_wake.wait(_WRITE_RETRY_INTERVAL)
                continue
            self._connection_error = None
            return result

    def check_connection(self) -> str | None:
        """Ping Redis now; return (and remember for :attr:`connection_error`) what failed, if any.

        The lease thread does this every third of the lease TTL by itself."""
        try:
            self._client.ping()
        except Exception as exc:
            self._connection_error = f"{type(exc).__name__}: {exc}"
        else:
            self._connection_error = None
        return self._connection_error

    @property
    def connection_error(self) -> str | None:
        """Why the last exchange with Redis failed, or ``None`` if it succeeded."""
        return self._connection_error

    def _write(
        self, queued: list[_Queued], new_topics: set[str]
    ) -> tuple[dict[str, int], set[str]]:
        """Send one batch in a pipeline and check every reply; return the acknowledged heads and
        the topics whose appends the fence refused.

        A reply "id too small" is fine when the entry Redis holds under that id is ours (an earlier
        attempt of this batch landed but its reply was lost, and the pipeline was sent again);
        otherwise another writer took the id, and the log must stop. A ``FENCED`` reply means a
        newer owner took the topic's group over: that topic's entries are dropped, not the log.
        """
        pipe = self._client.pipeline(transaction=False)
        for topic in sorted(new_topics):
            pipe.sadd(self._index_key, topic)
        for entry, fields, token in queued:
            key = self._key(entry.topic)
            if token is None:
                pipe.xadd(key, fields, id=f"{entry.id}-0")  # type: ignore[arg-type]
            else:
                group = self._group(entry.topic)
                args: list[Any] = [token, f"{entry.id}-0"]
                for name, value in fields.items():
                    args += [name, value]
                self._fenced_append(
                    keys=[key, self._lease_key(group, "fence")], args=args, client=pipe
                )
        replies = pipe.execute(raise_on_error=False)
        for reply in replies[: len(new_topics)]:
            if isinstance(reply, Exception):
                raise reply
        heads: dict[str, int] = {}
        fenced: set[str] = set()
        for (entry, fields, token), reply in zip(queued, replies[len(new_topics) :], strict=True):
            if entry.topic in fenced:
                continue
            if isinstance(reply, Exception):
                if str(reply).startswith("FENCED"):
                    fenced.add(entry.topic)
                    self._lose(self._group(entry.topic), str(reply), token)
                    continue
                if not (_TOO_SMALL in str(reply) and self._holds(entry, fields)):
                    raise EventLogError(
                        f"event log {self.location}: topic {entry.topic!r} id {entry.id} "
                        f"refused: {reply}"
                    )
            heads[entry.topic] = entry.id
        return heads, fenced

    def _holds(self, entry: LogEntry, fields: dict[str, bytes]) -> bool:
        stream_id = f"{entry.id}-0"
        found: _Rows = self._client.xrange(self._key(entry.topic), stream_id, stream_id)  # type: ignore[assignment]
        return bool(found) and dict(found[0][1]) == {k.encode(): v for k, v in fields.items()}

    def _settle(self, batch: list[LogEntry], heads: dict[str, int], fenced: set[str]) -> None:
        with self._lock:
            finished = len(batch)
            for topic, head in heads.items():
                self._committed[topic] = head
                unsettled = self._unsettled[topic]
                while unsettled and unsettled[0].id <= head:
                    unsettled.popleft()
                if not unsettled:
                    del self._unsettled[topic]
            if fenced:
                # Never acknowledged, so never shown to anybody: forget them, queued ones too,
                # and read the head from Redis next time (after a new claim).
                kept = [q for q in self._queue if q[0].topic not in fenced]
                finished += len(self._queue) - len(kept)
                self._queue = kept
                for topic in fenced:
                    self._unsettled.pop(topic, None)
                    self._heads.pop(topic, None)
                    self._committed.pop(topic, None)
            self._count_settled(finished)
        self._announce(heads)

    def _shut_down(self) -> None:
        """Let the writer send what is queued, stop the lease thread and release the leases, end
        subscriptions and disconnect."""
        self._retry_wake.set()
        self._writer.join()
        self._renewer_stop.set()
        self._renewer.join()
        with self._lock:
            leases, self._leases = self._leases, {}
        for group, (token, _) in leases.items():
            try:
                self._release(
                    keys=[self._lease_key(group, "owner")],
                    args=[f"{self._node_id}|{token}"],
                )
            except redis.RedisError as exc:
                logger.warning("could not release the lease of %s: %s", group, exc)
        self._hub.close()
        self._client.close()

    # Reading.

    def read_range(self, topic: str, after: int = 0, limit: int | None = None) -> list[LogEntry]:
        """Return entries with ids greater than ``after``; see :meth:`EventLog.read_range`.

        Acknowledged entries are read from Redis, on the calling thread.
        """
        validate_topic(topic)
        check_read_bounds(after, limit)
        with self._lock:
            self._check_open()
            committed, recent = self._snapshot(topic, after, limit)
        if committed is not None and after >= committed:
            return recent
        if limit == 0:
            return []
        stored = self._xrange(topic, after, committed, limit)
        return self._joined(topic, after, limit, committed, stored, recent)

    def read_ranges(self, afters: Mapping[str, int], limit: int) -> dict[str, list[LogEntry]]:
        """``read_range(topic, after, limit)`` for each ``topic: after``, with one round trip to
        Redis for all the topics it has to read there (a node reading every session's index: one
        request per session would hold its event loop for a round trip each)."""
        check_read_bounds(0, limit)
        for topic, after in afters.items():
            validate_topic(topic)
            check_read_bounds(after, limit)
        pages: dict[str, list[LogEntry]] = {}
        remote: list[tuple[str, int, int | None, list[LogEntry]]] = []
        with self._lock:
            self._check_open()
            for topic, after in afters.items():
                committed, recent = self._snapshot(topic, after, limit)
                if (committed is not None and after >= committed) or limit == 0:
                    pages[topic] = recent if limit else []
                else:
                    remote.append((topic, after, committed, recent))
        if not remote:
            return pages
        try:
            pipe = self._client.pipeline(transaction=False)
            for topic, after, committed, _ in remote:
                pipe.xrange(
                    self._key(topic),
                    f"({after}-0" if after else "-",
                    "+" if committed is None else f"{committed}-0",
                    count=limit,
                )
            replies: list[_Rows] = pipe.execute()
        except Exception as exc:
            raise self._read_error(exc, f"read of {len(remote)} topics failed") from exc
        for (topic, after, committed, recent), rows in zip(remote, replies, strict=True):
            stored = [_entry(topic, stream_id, fields) for stream_id, fields in rows]
            pages[topic] = self._joined(topic, after, limit, committed, stored, recent)
        return pages

    def _joined(
        self,
        topic: str,
        after: int,
        limit: int | None,
        committed: int | None,
        stored: list[LogEntry],
        recent: list[LogEntry],
    ) -> list[LogEntry]:
        """What Redis returned for a topic, then (for a topic this process appends to) its entries
        not acknowledged yet; raises if Redis lost acknowledged ones."""
        if committed is None:
            return stored
        expected = committed - after if limit is None else min(limit, committed - after)
        if len(stored) != expected:
            raise EventLogError(
                f"event log {self.location}: topic {topic!r} lost acknowledged entries after "
                f"id {after} (found {len(stored)} of {expected})"
            )
        if limit is not None:
            recent = recent[: limit - len(stored)]
        return stored + recent

    def _snapshot(
        self, topic: str, after: int, limit: int | None
    ) -> tuple[int | None, list[LogEntry]]:
        """The acknowledged head of a topic this process appends to (else ``None``), and its
        entries after ``after`` that are not acknowledged yet. Call with ``_lock`` held."""
        return self._committed.get(topic), self._uncommitted(topic, after, limit)

    def _xrange(
        self, topic: str, after: int, upto: int | None, limit: int | None
    ) -> list[LogEntry]:
        try:
            rows: _Rows = self._client.xrange(  # type: ignore[assignment]
                self._key(topic),
                f"({after}-0" if after else "-",
                "+" if upto is None else f"{upto}-0",
                count=limit,
            )
        except Exception as exc:
            raise self._read_error(exc, f"read of topic {topic!r} failed") from exc
        return [_entry(topic, stream_id, fields) for stream_id, fields in rows]

    async def _read_page(self, topic: str, after: int, limit: int) -> list[LogEntry]:
        with self._lock:
            self._check_open()
            committed, recent = self._snapshot(topic, after, limit)
        if committed is not None and after >= committed:
            return recent
        # A round trip to Redis: keep it off the event loop.
        return await asyncio.to_thread(self.read_range, topic, after, limit)

    async def tail(
        self,
        topic: str,
        after: int = 0,
        *,
        block_ms: int = DEFAULT_TAIL_BLOCK_MS,
        stopped: Callable[[], bool] | None = None,
    ) -> AsyncGenerator[LogEntry, None]:
        """Yield ``topic``'s entries after ``after`` as Redis holds them, whoever appended them.

        Unlike :meth:`subscribe` (this process's appends, live as soon as appended), a tail sees only
        what Redis acknowledged, from every node: it is how a node follows a session another node
        runs. Each tail has a connection of its own, blocked in ``XREAD BLOCK block_ms`` (kept
        well under the socket timeout). While Redis is unreachable it retries, and reports it in
        :attr:`connection_error`. It ends when the log is closed, or once ``stopped()`` is true
        (checked after every read); cancelling it works too, except while it connects (redis-py
        may swallow that cancel), which is why ``stopped`` exists.
        """
        validate_topic(topic)
        check_read_bounds(after, None)
        self._check_open()
        key = self._key(topic)
        client = redis.asyncio.Redis.from_url(
            self._url,
            socket_timeout=block_ms / 1000 + _SOCKET_TIMEOUT,
            socket_connect_timeout=_SOCKET_TIMEOUT,
        )
        last = after
        try:
            while not self._closed and not (stopped is not None and stopped()):
                try:
                    reply: Any = await client.xread({key: f"{last}-0"}, count=500, block=block_ms)
                except (redis.ConnectionError, redis.TimeoutError) as exc:
                    task = asyncio.current_task()
                    if task is not None and task.cancelling():
                        # redis-py turns a cancel during connect into a ConnectionError.
                        raise asyncio.CancelledError from exc
                    self._connection_error = f"{type(exc).__name__}: {exc}"
                    await asyncio.sleep(_WRITE_RETRY_INTERVAL)  # pace reconnection attempts
                    continue
                streams = reply.items() if isinstance(reply, dict) else (reply or [])
                for _, rows in streams:
                    for stream_id, fields in rows:
                        entry = _entry(topic, stream_id, fields)
                        last = entry.id
                        yield entry
        finally:
            await client.aclose()

    # Commands to a group's owner (routing): a stream per group with one consumer group.

    def send_command(self, group: str, message: bytes) -> str:
        """Queue ``message`` for whichever node owns ``group`` (``XADD NS:{group}:cmd``); return
        its id (for :meth:`withdraw_command`)."""
        try:
            command_id = self._client.xadd(
                self._lease_key(group, "cmd"),
                {"m": message},
                maxlen=_COMMAND_BACKLOG,
                approximate=True,
            )
        except Exception as exc:
            raise self._read_error(exc, f"cannot send a command to {group!r}") from exc
        return command_id.decode() if isinstance(command_id, bytes) else str(command_id)

    def withdraw_command(self, group: str, command_id: str) -> None:
        """Delete a command nobody read (its sender gave up), so a later owner won't run it."""
        try:
            self._client.xdel(self._lease_key(group, "cmd"), command_id)
        except Exception as exc:
            raise self._read_error(exc, f"cannot withdraw a command of {group!r}") from exc

    async def commands(
        self, group: str, *, stopped: Callable[[], bool] | None = None
    ) -> AsyncGenerator[bytes, None]:
        """Yield the commands sent to ``group``, each once across the nodes that own it in turn.

        Reads with ``XREADGROUP`` in the consumer group ``owner`` (created at the stream's start,
        so commands sent before the first owner listened are delivered too), as consumer
        :attr:`node_id`; a command is acknowledged when the next one is asked for. Ends like
        :meth:`tail`.
        """
        key = self._lease_key(group, "cmd")
        client = self._async_client(DEFAULT_TAIL_BLOCK_MS)
        try:
            try:
                await client.xgroup_create(key, "owner", id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            while not self._closed and not (stopped is not None and stopped()):
                try:
                    reply: Any = await client.xreadgroup(
                        "owner", self._node_id, {key: ">"}, count=10, block=DEFAULT_TAIL_BLOCK_MS
                    )
                except (redis.ConnectionError, redis.TimeoutError) as exc:
                    self._connection_error = f"{type(exc).__name__}: {exc}"
                    await asyncio.sleep(_WRITE_RETRY_INTERVAL)  # pace reconnection attempts
                    continue
                streams = reply.items() if isinstance(reply, dict) else (reply or [])
                for _, rows in streams:
                    for command_id, fields in rows:
                        yield fields[b"m"]
                        await client.xack(key, "owner", command_id)
        finally:
            await client.aclose()

    def reply(self, group: str, reply_id: str, message: bytes) -> None:
        """Answer a command: ``message`` for whoever waits in :meth:`wait_reply` for ``reply_id``."""
        key = self._lease_key(group, f"reply:{reply_id}")
        pipe = self._client.pipeline(transaction=False)
        pipe.rpush(key, message)
        pipe.pexpire(key, _REPLY_TTL_MS)
        pipe.execute()

    async def wait_reply(
        self, group: str, reply_id: str, *, gone: Callable[[], bool] | None = None
    ) -> bytes | None:
        """Wait for the answer to a command; ``None`` once ``gone()`` (checked every 2 s) is true."""
        key = self._lease_key(group, f"reply:{reply_id}")
        client = self._async_client(DEFAULT_TAIL_BLOCK_MS)
        try:
            while not self._closed:
                found: Any = await client.blpop([key], timeout=DEFAULT_TAIL_BLOCK_MS / 1000)
                if found:
                    return bytes(found[1])
                if gone is not None and await asyncio.to_thread(gone):
                    return None
            return None
        finally:
            await client.aclose()

    def _async_client(self, block_ms: int) -> redis.asyncio.Redis:
        return redis.asyncio.Redis.from_url(
            self._url,
            socket_timeout=block_ms / 1000 + _SOCKET_TIMEOUT,
            socket_connect_timeout=_SOCKET_TIMEOUT,
        )

    def latest(self, topic: str) -> int | None:
        """Return the highest id in ``topic``, or ``None``; see :meth:`EventLog.latest`."""
        with self._lock:
            self._check_open()
            head = self._heads.get(topic)
        if head is None:
            head = self._fetch_head(validate_topic(topic))
        return head or None

    def committed(self, topic: str) -> int | None:
        """Return the highest acknowledged id of ``topic``; see :meth:`EventLog.committed`."""
        with self._lock:
            self._check_open()
            if topic in self._committed:
                return self._committed[topic] or None
        return self._fetch_head(validate_topic(topic)) or None

    def topics(self) -> list[str]:
        """Return the non-empty topics, sorted; see :meth:`EventLog.topics`."""
        with self._lock:
            self._check_open()
            local = {topic for topic, head in self._heads.items() if head}
        try:
            stored = {m.decode() for m in self._client.smembers(self._index_key)}  # type: ignore[union-attr]
        except Exception as exc:
            raise self._read_error(exc, "cannot list topics") from exc
        return sorted(local | stored)

    def _read_error(self, exc: Exception, what: str) -> Exception:
        """What a failed read raises: the log was closed under it, Redis failed, or a bug."""
        if self._closed:
            # close() disconnects the pool, which breaks reads in flight on other threads.
            return EventLogClosed("event log is closed")
        if isinstance(exc, redis.RedisError):
            return EventLogError(f"event log {self.location}: {what}: {exc}")
        return exc
