"""Open an event log from a one-line spec such as ``"memory"`` or ``"sqlite:~/.acp/events.db"``.

A spec is ``SCHEME`` or ``SCHEME:ARGUMENT``. Each scheme maps to an opener registered with
:func:`register_backend`, so a new backend plugs in here and every caller that takes a spec from
its configuration accepts it unchanged (``redis://host:6379/0`` is one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

from .base import EventLog, EventLogError
from .memory import MemoryEventLog
from .redis_streams import DEFAULT_LEASE_TTL, DEFAULT_NAMESPACE, RedisEventLog
from .sqlite import SqliteEventLog

__all__ = ["open_event_log", "register_backend"]

Opener = Callable[[str], EventLog]
"""Builds a log from the part of the spec after ``SCHEME:`` (empty if there is none)."""


@dataclass(frozen=True, slots=True)
class _Backend:
    opener: Opener
    usage: str


_BACKENDS: dict[str, _Backend] = {}


def register_backend(scheme: str, opener: Opener, *, usage: str) -> None:
    """Make :func:`open_event_log` open specs that start with ``scheme`` using ``opener``.

    ``opener`` receives what follows ``scheme:`` in the spec, or ``""``, and raises
    :exc:`ValueError` if it can't use it. ``usage`` shows the accepted form, e.g.
    ``"sqlite:PATH"``, in error messages. Registering a scheme again replaces its opener.
    """
    if not scheme or ":" in scheme:
        raise ValueError(f"invalid scheme {scheme!r}")
    _BACKENDS[scheme] = _Backend(opener, usage)


def open_event_log(spec: str) -> EventLog:
    """Open the event log that ``spec`` describes.

    Accepted forms: ``"memory"`` for a :class:`MemoryEventLog`, and ``"sqlite:PATH"`` for a
    :class:`SqliteEventLog` in the file ``PATH`` (``~`` is expanded, missing directories are
    created; ``sqlite:PATH?synchronous=full`` makes every commit survive power loss too, at the
    cost of an fsync per commit), ``"redis://[[user]:password@]host:port/db"`` (``rediss://`` for
    TLS; ``?namespace=NAME`` changes the ``acp`` that starts every key, ``&lease_ttl=SECONDS`` the
    session leases' lifetime, 10 by default) for a
    :class:`~acp_bridge.eventlog.redis_streams.RedisEventLog`, plus those of any backend registered
    with :func:`register_backend`.

    Raises:
        ValueError: if ``spec`` matches no accepted form.
        EventLogError: if the log cannot be created or opened (or is in use by another bridge).
    """
    scheme, _, argument = spec.partition(":")
    backend = _BACKENDS.get(scheme)
    if backend is None:
        accepted = ", ".join(repr(b.usage) for b in _BACKENDS.values())
        raise ValueError(f"unknown event log spec {spec!r}; expected one of: {accepted}")
    return backend.opener(argument)


def _open_memory(argument: str) -> EventLog:
    if argument:
        raise ValueError(f"the memory event log takes no argument, got {argument!r}")
    return MemoryEventLog()


def _open_sqlite(argument: str) -> EventLog:
    location, _, query = argument.partition("?")
    if not location:
        raise ValueError("the sqlite event log needs a file: 'sqlite:PATH'")
    synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    for option in filter(None, query.split("&")):
        name, _, value = option.partition("=")
        if name != "synchronous" or value.upper() not in ("NORMAL", "FULL"):
            raise ValueError(
                f"unknown sqlite event log option {option!r}; expected synchronous=normal or "
                "synchronous=full"
            )
        synchronous = "FULL" if value.upper() == "FULL" else "NORMAL"
    path = Path(location).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        # mkdir met a file where a directory should be.
        raise EventLogError(
            f"cannot create event log {str(path)!r}: {exc.filename or 'a parent'} is a file, "
            "not a directory"
        ) from exc
    except OSError as exc:
        # /proc, a read-only mount, no permission: the spec is wrong, not the code.
        where = f" ({exc.filename})" if exc.filename else ""
        raise EventLogError(
            f"cannot create the directory of event log {str(path)!r}: {exc.strerror or exc}{where}"
        ) from exc
    return SqliteEventLog(path, synchronous=synchronous)


def _redis_opener(scheme: str) -> Opener:
    def open_redis(argument: str) -> EventLog:
        url = urlsplit(f"{scheme}:{argument}")
        if not argument.startswith("//") or not url.hostname:
            raise ValueError(f"the redis event log needs a server: '{scheme}://HOST:PORT/DB'")
        options = parse_qsl(url.query, keep_blank_values=True)
        namespace = DEFAULT_NAMESPACE
        lease_ttl = DEFAULT_LEASE_TTL
        rest = []
        for name, value in options:
            if name == "namespace":
                namespace = value
            elif name == "lease_ttl":
                try:
                    lease_ttl = float(value)
                except ValueError:
                    lease_ttl = 0
                if not 0 < lease_ttl <= 3600:
                    raise ValueError(f"lease_ttl must be seconds in (0, 3600], got {value!r}")
            else:
                rest.append((name, value))
        return RedisEventLog(
            url._replace(query=urlencode(rest)).geturl(), namespace=namespace, lease_ttl=lease_ttl
        )

    return open_redis


register_backend("memory", _open_memory, usage="memory")
register_backend("sqlite", _open_sqlite, usage="sqlite:PATH")
register_backend("redis", _redis_opener("redis"), usage="redis://HOST:PORT/DB")
register_backend("rediss", _redis_opener("rediss"), usage="rediss://HOST:PORT/DB")
