"""open_event_log() specs, and the topic name helpers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from acp_bridge.eventlog import (
    EventLog,
    EventLogError,
    InvalidTopic,
    LogRecord,
    MemoryEventLog,
    RedisEventLog,
    SqliteEventLog,
    factory,
    open_event_log,
    register_backend,
    sanitize_topic_component,
    validate_topic,
)


def test_memory_spec() -> None:
    log = open_event_log("memory")
    try:
        assert isinstance(log, MemoryEventLog)
    finally:
        log.close()


def test_sqlite_spec_creates_missing_directories(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "events.db"
    log = open_event_log(f"sqlite:{path}")
    try:
        assert isinstance(log, SqliteEventLog)
        assert log.path == str(path)
        assert path.exists()
    finally:
        log.close()


def test_sqlite_spec_expands_the_home_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    log = open_event_log("sqlite:~/logs/events.db")
    try:
        assert isinstance(log, SqliteEventLog)
        assert log.path == str(tmp_path / "logs" / "events.db")
    finally:
        log.close()


@pytest.mark.parametrize(
    "spec", ["", "memory2", "redis2://localhost:6379/0", "file:x.db", "SQLITE:x.db", " memory"]
)
def test_unknown_specs_list_the_accepted_forms(spec: str) -> None:
    with pytest.raises(
        ValueError,
        match=r"expected one of: 'memory', 'sqlite:PATH', 'redis://HOST:PORT/DB', 'rediss://HOST:PORT/DB'",
    ):
        open_event_log(spec)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("sqlite:", "needs a file"),
        ("memory:x", "takes no argument"),
        ("redis:", "needs a server"),
        ("redis:localhost", "needs a server"),
        ("rediss:///0", "needs a server"),
    ],
)
def test_malformed_specs_are_refused(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        open_event_log(spec)


def test_redis_spec_opens_a_namespaced_log() -> None:
    from tests.support.redis_server import redis_url

    log = open_event_log(f"{redis_url()}?namespace=factory1")
    try:
        assert isinstance(log, RedisEventLog)
        assert log.namespace == "factory1"
        log.append("t", LogRecord("k", 1))
        log.flush()
        assert log.client.xlen("factory1:{t}:events:t") == 1
    finally:
        log.client.delete("factory1:{t}:events:t", "factory1:topics")
        log.close()


def test_an_unreachable_redis_is_a_clear_error() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        # Bound but not listening: connections are refused.
        with pytest.raises(EventLogError, match="cannot reach Redis"):
            open_event_log(f"redis://127.0.0.1:{port}/0")


@pytest.fixture
def registry() -> Iterator[None]:
    saved = dict(factory._BACKENDS)
    yield
    factory._BACKENDS.clear()
    factory._BACKENDS.update(saved)


@pytest.mark.usefixtures("registry")
def test_a_registered_backend_is_opened_with_the_rest_of_the_spec() -> None:
    arguments: list[str] = []

    def open_fake(argument: str) -> EventLog:
        arguments.append(argument)
        return MemoryEventLog()

    register_backend("redis", open_fake, usage="redis://HOST[:PORT]/DB")
    log = open_event_log("redis://localhost:6379/0")
    log.close()
    assert arguments == ["//localhost:6379/0"]
    with pytest.raises(ValueError, match=r"'memory', 'sqlite:PATH', 'redis://HOST\[:PORT\]/DB'"):
        open_event_log("nope")


@pytest.mark.parametrize("scheme", ["", "a:b"])
def test_register_backend_refuses_bad_schemes(scheme: str) -> None:
    with pytest.raises(ValueError, match="invalid scheme"):
        register_backend(scheme, lambda _: MemoryEventLog(), usage="x")


# Topic names.


@pytest.mark.parametrize("topic", ["a", "A.b-c_d", "observability.agent_events.s-1", "0", "..."])
def test_valid_topics_pass_through(topic: str) -> None:
    assert validate_topic(topic) is topic


@pytest.mark.parametrize("topic", ["", " ", "a/b", "é", "a\n", "a\x00b", "\uff41", "a+b"])
def test_invalid_topics_raise(topic: str) -> None:
    with pytest.raises(InvalidTopic, match="invalid topic"):
        validate_topic(topic)


def test_invalid_topic_is_both_an_event_log_error_and_a_value_error() -> None:
    assert issubclass(InvalidTopic, EventLogError)
    assert issubclass(InvalidTopic, ValueError)


@pytest.mark.parametrize(
    ("raw", "sanitized"),
    [
        ("a/b", "a_b"),
        ("é", "_"),
        ("e\u0301", "e_"),  # a decomposed é is two code points
        ("\U0001f600", "_"),  # one code point outside the BMP
        ("a  b", "a__b"),  # neither trimmed nor collapsed
        (" x ", "_x_"),
        ("", ""),
        ("ok.Name-1_x", "ok.Name-1_x"),
        ("session:42/\u03b1", "session_42__"),
        ("\ud800", "_"),  # even a lone surrogate
    ],
)
def test_sanitize_topic_component(raw: str, sanitized: str) -> None:
    assert sanitize_topic_component(raw) == sanitized


@given(st.text(min_size=1))
def test_sanitized_components_are_valid_topics_of_the_same_length(raw: str) -> None:
    sanitized = sanitize_topic_component(raw)
    assert len(sanitized) == len(raw)
    assert validate_topic(sanitized) == sanitized
    assert sanitize_topic_component(sanitized) == sanitized
