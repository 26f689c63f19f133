"""The ``exec`` backend's child process: starting it, reading its output, making it exit.

Nothing here knows about sessions or turns. A reader task hands each stdout line, in order, to the
child's :class:`ChildListener` (the backend) and tells it when the child is gone. stderr is free-form
logging, forwarded to the ``acp_bridge.agents.exec.child`` logger; its last line is kept, because it
usually says why a child exited.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from acp_bridge.agents.base import BackendError

__all__ = [
    "EXIT_WAIT_SECONDS",
    "STDERR_DRAIN_SECONDS",
    "STDIN_EOF_GRACE_SECONDS",
    "STREAM_LIMIT",
    "TERMINATE_TIMEOUT_SECONDS",
    "Child",
    "ChildGone",
    "ChildListener",
    "start_child",
]

# The names from before exec became a package: logging configurations and docs/agent-protocol.md
# refer to them.
logger = logging.getLogger("acp_bridge.agents.exec")
stderr_logger = logging.getLogger("acp_bridge.agents.exec.child")

STREAM_LIMIT: Final = 32 * 1024 * 1024
"""Longest stdout/stderr line read (a tool result can be a whole file); longer lines are skipped."""
TERMINATE_TIMEOUT_SECONDS: Final = 2.0
"""After SIGTERM, how long the child has to exit before SIGKILL."""
STDIN_EOF_GRACE_SECONDS: Final = 0.5
"""On shutdown, how long a child may take to exit by itself once its stdin is closed."""
EXIT_WAIT_SECONDS: Final = 2.0
"""After the child closes stdout, how long it has to exit before it is terminated."""
STDERR_DRAIN_SECONDS: Final = 1.0
"""Once the child exited, how long to wait for the rest of its stderr (the last line says why)."""
_YIELD_EVERY: Final = 64
"""stdout lines handled between two yields to the event loop."""
_LAST_STDERR_CHARS: Final = 200
_STDERR_LOG_CHARS: Final = 8000


async def _readline(stream: asyncio.StreamReader) -> bytes | None:
    """The next line with its newline; ``b""`` at EOF; ``None`` for a line over the stream limit.

    An over-long line is read and discarded up to its newline, so the next call starts cleanly on
    the following line (``StreamReader.readline`` would hand back the line's tail as a line).
    """
    try:
        return await stream.readuntil(b"\n")
    except asyncio.IncompleteReadError as exc:
        return exc.partial  # the last line had no newline (or b"" at EOF)
    except asyncio.LimitOverrunError as exc:
        consumed = exc.consumed
    while True:
        await stream.readexactly(consumed)
        try:
            await stream.readuntil(b"\n")
        except asyncio.IncompleteReadError:
            return None
        except asyncio.LimitOverrunError as exc:
            consumed = exc.consumed
            continue
        return None


class ChildGone(Exception):
    """The child's stdin is closed: it exited or is exiting."""


class ChildListener(Protocol):
    """What a child's stdout reader reports, in order, to whoever runs the child."""

    def line_received(self, child: Child, line: bytes) -> None:
        """One stdout line with its newline (blank ones too); must not raise (that ends reading)."""

    def line_too_long(self, child: Child) -> None:
        """A stdout line longer than the stream limit was read and thrown away."""

    def child_exited(self, child: Child) -> None:
        """The child is gone and reaped: ``child.exited`` is resolved and its stdin closed."""


@dataclass(eq=False)
class Child:
    """One running child process: its stdin, its reader tasks, and how it ended."""

    process: asyncio.subprocess.Process
    number: int
    """1 for the first child of the backend, 2 after the first restart…"""
    exited: asyncio.Future[str]
    """Resolved, with a description of the exit, once the child is gone and reaped."""
    stdin: asyncio.StreamWriter
    terminate_timeout: float
    """After SIGTERM, how long the child has to exit before SIGKILL."""
    last_stderr: str = ""
    line_number: int = 0
    """The number of the stdout line being handled."""
    stopping: bool = False
    """Set by :meth:`stop`: the exit is the bridge's doing, not a crash."""
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    """The stderr and the stdout reader, in that order."""
    stderr_log: logging.Logger = stderr_logger
    """Where its stderr lines go, one record each (the backend's ``….child`` logger)."""

    @property
    def pid(self) -> int:
        """The process id (also the id of its process group)."""
        return self.process.pid

    @property
    def alive(self) -> bool:
        """True until the child is reaped."""
        # Not until stdin closes: a crashed child's stdin may close before its last stdout lines
        # are read, and a new child must not start while those are still being delivered.
        return not self.exited.done()

    def write(self, line: bytes) -> bool:
        """Queue one line on stdin now (one ``write()``: lines never interleave); False if gone."""
        if not self.alive or self.stdin.is_closing():
            return False
        try:
            self.stdin.write(line)
        except (ConnectionError, RuntimeError):
            return False
        return True

    async def send(self, line: bytes) -> None:
        """Write one line and wait for room in the pipe; :class:`ChildGone` if the child left."""
        if not self.write(line):
            raise ChildGone
        try:
            await self.stdin.drain()
        except (ConnectionError, RuntimeError) as exc:
            raise ChildGone from exc

    def describe_exit(self, *, with_stderr: bool = True) -> str:
        """How the child ended, with its last stderr line (which usually says why)."""
        code = self.process.returncode
        if code is None:
            text = "agent process closed its output"
        elif code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            text = f"agent process was killed by {name}"
        else:
            text = f"agent process exited with code {code}"
        if with_stderr and self.last_stderr:
            text += f" ({self.last_stderr})"
        return text

    async def exit_error(self) -> BackendError:
        """The error for a child whose stdin closed under us: its exit description, once known."""
        wait = EXIT_WAIT_SECONDS + 2 * self.terminate_timeout + STDERR_DRAIN_SECONDS
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.exited), wait)
        if self.exited.done():
            return BackendError(self.exited.result())
        return BackendError("the agent process stopped reading its input")

    def _signal(self, sig: signal.Signals) -> None:
        if self.process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if hasattr(os, "killpg"):
                os.killpg(self.pid, sig)  # the group: grandchildren holding our pipes go too
            else:  # pragma: no cover - Windows
                self.process.send_signal(sig)

    async def terminate(self, *, grace: float) -> None:
        """Make sure the child exits: wait ``grace``, then SIGTERM, then SIGKILL; reap it."""
        process = self.process
        for sig, wait in ((None, grace), (signal.SIGTERM, self.terminate_timeout)):
            if sig is not None:
                self._signal(sig)
            if process.returncode is None and wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(process.wait(), wait)
            if process.returncode is not None:
                return
        self._signal(signal.SIGKILL)
        await process.wait()

    async def stop(self) -> None:
        """Close stdin, then SIGTERM, then SIGKILL the process group; wait for the readers."""
        self.stopping = True
        self.stdin.close()  # a well-behaved child exits on EOF
        await self.terminate(grace=STDIN_EOF_GRACE_SECONDS)
        reader = self.tasks[1]
        done, _ = await asyncio.wait({reader}, timeout=EXIT_WAIT_SECONDS + STDERR_DRAIN_SECONDS)
        if not done:  # pragma: no cover - a grandchild outside the group holds stdout open
            for task in self.tasks:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)


async def start_child(
    command: Sequence[str],
    *,
    number: int,
    listener: ChildListener,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    stream_limit: int = STREAM_LIMIT,
    terminate_timeout: float = TERMINATE_TIMEOUT_SECONDS,
    stderr_log: logging.Logger = stderr_logger,
) -> Child:
    """Start ``command`` (``env`` added to the bridge's environment) and its reader tasks; its
    stderr goes to ``stderr_log``.

    :class:`BackendError` when the command cannot be started.
    """
    environment = {
        **os.environ,
        **(env or {}),
        # The child's stdout is a pipe: a Python child would block-buffer its events.
        "PYTHONUNBUFFERED": "1",
    }
    try:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=cwd,
            env=environment,
            limit=stream_limit,
            # Its own process group: a Ctrl-C on the bridge's terminal reaches the child only
            # through the bridge's orderly shutdown, which can then signal the whole group.
            start_new_session=True,
        )
    except OSError as exc:
        raise BackendError(
            f"could not start the agent command {shlex.join(command)}: {exc}"
        ) from exc
    assert process.stdin is not None
    child = Child(
        process=process,
        number=number,
        exited=asyncio.get_running_loop().create_future(),
        stdin=process.stdin,
        terminate_timeout=terminate_timeout,
        stderr_log=stderr_log,
    )
    child.tasks = [
        asyncio.create_task(_read_stderr(child), name=f"exec-stderr-{child.pid}"),
        asyncio.create_task(_read_stdout(child, listener), name=f"exec-stdout-{child.pid}"),
    ]
    logger.info("started agent process %d: %s", child.pid, shlex.join(command))
    return child


async def _read_stderr(child: Child) -> None:
    assert child.process.stderr is not None
    stream = child.process.stderr
    while True:
        line = await _readline(stream)
        if line is None:
            child.stderr_log.info("agent[%d]: (a line longer than the limit, skipped)", child.pid)
            continue
        if not line:
            return
        text = line.decode("utf-8", "replace").rstrip("\r\n")
        if text.strip():
            child.last_stderr = text.strip()[:_LAST_STDERR_CHARS]
            child.stderr_log.info("agent[%d]: %s", child.pid, text[:_STDERR_LOG_CHARS])


async def _read_stdout(child: Child, listener: ChildListener) -> None:
    assert child.process.stdout is not None
    stream = child.process.stdout
    try:
        while True:
            line = await _readline(stream)
            child.line_number += 1
            if line is None:
                listener.line_too_long(child)
                continue
            if not line:
                break
            listener.line_received(child, line)
            if child.line_number % _YIELD_EVERY == 0:
                # readuntil() does not suspend while whole lines are buffered: let the
                # connections' writers send what was emitted so far.
                await asyncio.sleep(0)
    except Exception:  # pragma: no cover - a bug here must not leave turns hanging
        logger.exception("agent[%d]: reading stdout failed", child.pid)
    finally:
        await _reap(child, listener)


async def _reap(child: Child, listener: ChildListener) -> None:
    """stdout is closed: wait for the exit and the last stderr line, then tell the listener."""
    try:
        await child.terminate(grace=EXIT_WAIT_SECONDS)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(child.tasks[0]), STDERR_DRAIN_SECONDS)
    finally:
        child.stdin.close()
        if not child.exited.done():
            child.exited.set_result(child.describe_exit())
        listener.child_exited(child)
