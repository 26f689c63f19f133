"""A real ``redis-server`` for the tests: started on 127.0.0.1 on a free port, in a temp directory.

One server serves the whole test session (tests keep apart by key namespace); :func:`redis_url`
starts it on first use and :func:`stop_redis_server` (called at the end of the session by the root
conftest) stops it. Without ``redis-server`` on ``PATH`` a test that needs it is skipped with the
reason, or fails when ``ACP_BRIDGE_REQUIRE_EXTERNAL`` is set (CI sets it: nothing may be skipped
there for want of a server).
"""

from __future__ import annotations

import atexit
import os
import selectors
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass

import pytest

_READY = b"Ready to accept connections"
_START_TIMEOUT = 10.0


@dataclass
class RedisServer:
    """A running ``redis-server`` process and where it listens."""

    process: subprocess.Popen[bytes]
    port: int
    directory: tempfile.TemporaryDirectory[str]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.directory.cleanup()


def require_redis_server() -> str:
    """The path of ``redis-server``; skip (or fail, in CI) the calling test without it."""
    path = shutil.which("redis-server")
    if path is None:
        message = "redis-server is not installed (apt-get install redis-server)"
        if os.environ.get("ACP_BRIDGE_REQUIRE_EXTERNAL"):
            pytest.fail(f"{message}; ACP_BRIDGE_REQUIRE_EXTERNAL is set, so this may not skip")
        pytest.skip(message)
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_redis_server(*extra: str) -> RedisServer:
    """Start a fresh server (AOF on, no RDB snapshots) and wait until it accepts connections."""
    binary = require_redis_server()
    last_output = b""
    for _ in range(5):  # the free port may be taken between probing and binding it
        directory = tempfile.TemporaryDirectory(prefix="acp-redis-")
        port = _free_port()
        process = subprocess.Popen(
            [
                binary,
                "--bind", "127.0.0.1",
                "--port", str(port),
                "--dir", directory.name,
                "--save", "",
                "--appendonly", "yes",
                "--appendfsync", "everysec",
                "--logfile", "",
                "--daemonize", "no",
                *extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        server = RedisServer(process, port, directory)
        ok, last_output = _wait_ready(process)
        if ok:
            return server
        server.stop()
    raise RuntimeError(f"redis-server did not start: {last_output.decode(errors='replace')}")


def _wait_ready(process: subprocess.Popen[bytes]) -> tuple[bool, bytes]:
    """Read the server's log until it says it is ready, it exits, or the time is up."""
    assert process.stdout is not None
    output = b""
    deadline = time.monotonic() + _START_TIMEOUT
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while _READY not in output:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                return False, output
            chunk = os.read(process.stdout.fileno(), 65536)
            if not chunk:
                return False, output
            output += chunk
    # Keep draining the log so the server never blocks on a full pipe.
    threading.Thread(target=_drain, args=(process.stdout.fileno(),), daemon=True).start()
    return True, output


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 65536):
            pass
    except OSError:
        pass


_shared: RedisServer | None = None


def redis_url() -> str:
    """The URL of the session's shared server, started on first use."""
    global _shared
    if _shared is None or _shared.process.poll() is not None:
        _shared = start_redis_server()
        # Also when used outside pytest, or when a session is cut short: never leave it running.
        atexit.register(stop_redis_server)
    return _shared.url


def stop_redis_server() -> None:
    """Stop the shared server if it was started."""
    global _shared
    if _shared is not None:
        _shared.stop()
        _shared = None
