"""A stdio ↔ WebSocket relay: lets an editor that launches agents over stdio reach a remote endpoint.

Editors (Zed, JetBrains) start an "agent command" and speak NDJSON on its stdin/stdout. This relay is
that command: every stdin line becomes one text frame and every text frame one stdout line. It does
not parse messages on the way in (the server reports bad JSON) and only re-encodes a frame on the
way out when it spans several lines. stdout carries ACP messages and nothing else; diagnostics go to
stderr.

Run it as ``acp-bridge connect URL`` (its arguments are parsed in :mod:`acp_bridge.cli.connect_cmd`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.frames import CloseCode
from websockets.typing import Subprotocol

from acp_bridge._version import __version__
from acp_bridge.rpc.transport import DEFAULT_EOF_GRACE
from acp_bridge.transports.stdio import (
    DEFAULT_MAX_MESSAGE_BYTES,
    LineReader,
    LineWriter,
    Oversized,
    close_writer,
    open_stdio_streams,
)

__all__ = ["TOKEN_ENV", "run_relay"]

logger = logging.getLogger(__name__)

_PROG = "acp-bridge connect"
"""Prefix of the relay's one-line diagnostics: the command the editor launched."""

TOKEN_ENV = "ACP_BRIDGE_TOKEN"
"""Environment variable read for the bearer token when none is passed explicitly."""

_CLEAN_CLOSE_CODES = frozenset({CloseCode.NORMAL_CLOSURE, CloseCode.GOING_AWAY})
_OFFERED_SUBPROTOCOLS = [Subprotocol("acp.v1")]


def _say(message: str) -> None:
    # One line per event, prefixed like a CLI error, on stderr: the editor shows or logs it.
    print(f"{_PROG}: {message}", file=sys.stderr, flush=True)


def _display_url(url: str) -> str:
    # Credentials may hide in userinfo or the query string; neither belongs in an editor's log.
    try:
        parts = urlsplit(url)
        netloc = parts.netloc.rpartition("@")[2]
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    except ValueError:
        return "<invalid URL>"


def _is_loopback_url(url: str) -> bool:
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        # connect() reports the bad URL.
        return False
    return host in ("localhost", "::1") or host.startswith("127.")


class _Outstanding:
    """Ids of the requests relayed to the server and not answered yet.

    The relay moves lines without interpreting them, except for this: at the end of stdin it must
    know whether answers are still due. Only a line that is a JSON object with ``method`` and ``id``
    counts as a request; only a frame without ``method`` answers one. Frames are looked at only
    while something is outstanding, so a relay whose client asked nothing parses nothing.
    """

    def __init__(self) -> None:
        self._ids: dict[bytes, str] = {}
        self._empty = asyncio.Event()
        self._empty.set()

    def __len__(self) -> int:
        return len(self._ids)

    def describe(self) -> str:
        """The outstanding requests, for a one-line diagnostic."""
        return ", ".join(self._ids.values())

    def sent(self, line: bytes) -> None:
        """Note ``line`` if it is a request."""
        message = _json_object(line)
        if message is None or "id" not in message or not isinstance(message.get("method"), str):
            return
        self._ids[orjson.dumps(message["id"])] = f"{message['method']} (id {message['id']!r})"
        self._empty.clear()

    def received(self, data: bytes) -> None:
        """Forget the request that ``data`` answers, if it answers one."""
        if not self._ids:
            return
        message = _json_object(data)
        if message is None or "method" in message or "id" not in message:
            return
        self._ids.pop(orjson.dumps(message["id"]), None)
        if not self._ids:
            self._empty.set()

    async def wait_answered(self) -> None:
        """Wait until every request has been answered."""
        await self._empty.wait()


def _json_object(data: bytes) -> dict[str, object] | None:
    try:
        message = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return message if isinstance(message, dict) else None


async def _pump_stdin(
    lines: LineReader, websocket: ClientConnection, outstanding: _Outstanding
) -> None:
    while (line := await lines.readline()) is not None:
        if isinstance(line, Oversized):
            # Never buffered whole, so it cannot be forwarded; the server would refuse it anyway.
            _say(f"dropped an input line of {line.size} bytes (limit {lines.max_line_bytes})")
            continue
        if not line.strip():
            continue
        try:
            line.decode()
        except UnicodeDecodeError:
            # A text frame must be UTF-8: forwarding this would make the server drop the whole
            # connection (1007) instead of answering one bad message.
            _say("dropped an input line that is not valid UTF-8")
            continue
        outstanding.sent(line)
        await websocket.send(line, text=True)


async def _pump_websocket(
    websocket: ClientConnection, out: LineWriter, outstanding: _Outstanding
) -> None:
    async for frame in websocket:
        if isinstance(frame, bytes):
            logger.debug("ignoring a binary frame of %d bytes", len(frame))
            continue
        data = frame.encode()
        if b"\n" in data:
            # NDJSON needs one message per line; JSON strings cannot hold a raw newline, so
            # re-encoding only removes whitespace.
            try:
                data = orjson.dumps(orjson.loads(data))
            except orjson.JSONDecodeError:
                _say("dropped a multi-line frame from the server that is not valid JSON")
                continue
        out.write(data + b"\n")
        await out.drain()
        # Only once written: at the end of stdin, "answered" means the answer is on stdout.
        outstanding.received(data)


def _describe_close(websocket: ClientConnection) -> tuple[int, str]:
    code = websocket.close_code
    if code is None or code == CloseCode.ABNORMAL_CLOSURE:
        return 1, "connection to the server was lost"
    if code in _CLEAN_CLOSE_CODES:
        return 0, ""
    reason = f": {websocket.close_reason}" if websocket.close_reason else ""
    return 1, f"server closed the connection with code {code}{reason}"


async def _relay(
    websocket: ClientConnection,
    lines: LineReader,
    out: LineWriter,
    stop: asyncio.Event,
    eof_grace: float,
) -> int:
    outstanding = _Outstanding()
    to_server = asyncio.create_task(_pump_stdin(lines, websocket, outstanding), name="relay stdin")
    to_client = asyncio.create_task(
        _pump_websocket(websocket, out, outstanding), name="relay websocket"
    )
    stopped = asyncio.create_task(stop.wait(), name="relay stop")
    tasks = (to_server, to_client, stopped)
    unanswered = ""
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if done == {to_server} and to_server.exception() is None and outstanding and eof_grace > 0:
            # The client closed stdin right after its last requests (a script piping them in):
            # it still reads stdout, so the answers due are relayed before we leave (bounded).
            answered = asyncio.create_task(outstanding.wait_answered(), name="relay answers")
            try:
                await asyncio.wait(
                    (answered, to_client, stopped),
                    timeout=eof_grace,
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                answered.cancel()
            unanswered = outstanding.describe()
            done = {task for task in tasks if task.done()}
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    if stopped in done:
        # SIGTERM from the editor: tell the server we are leaving rather than vanish (1006).
        await websocket.close(CloseCode.GOING_AWAY)
        return 0
    if to_server in done and to_server.exception() is None and to_client not in done:
        # The editor closed our stdin: it is done with the agent.
        await websocket.close(CloseCode.NORMAL_CLOSURE)
        if unanswered:
            _say(f"stdin ended; no answer from the server within {eof_grace:g} s to {unanswered}")
            return 1
        return 0
    error = next(
        (task.exception() for task in (to_client, to_server) if task in done and task.exception()),
        None,
    )
    if error is None or isinstance(error, ConnectionClosed):
        # The close code is only final once the closing handshake is over (bounded by the
        # library's close timeout).
        await websocket.wait_closed()
        code, message = _describe_close(websocket)
        if message:
            _say(message)
        if unanswered:
            _say(f"the connection ended with no answer to {unanswered}")
            return 1
        return code
    if isinstance(error, OSError):
        # stdout is gone (broken pipe): the editor went away without closing stdin first.
        await websocket.close(CloseCode.GOING_AWAY)
        return 0
    raise error


async def run_relay(
    url: str,
    *,
    token: str | None = None,
    stdin_reader: asyncio.StreamReader | None = None,
    stdout_writer: LineWriter | None = None,
    headers: Mapping[str, str] | None = None,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    open_timeout: float = 10.0,
    eof_grace: float = DEFAULT_EOF_GRACE,
) -> int:
    """Relay NDJSON on stdin/stdout to the WebSocket endpoint at ``url``; returns an exit code.

    ``token`` (else ``$ACP_BRIDGE_TOKEN``) is sent as ``Authorization: Bearer``. Exits 0 when stdin
    ends (closing the WebSocket with 1000 once the requests relayed so far are answered, or after
    ``eof_grace`` seconds, then exiting 1 if some were not), on SIGTERM (closing with 1001), or when the server
    closes with 1000/1001; 1, with one line on stderr, when the connection fails or ends
    otherwise. ``stdin_reader``/``stdout_writer`` default to the process's own streams; only
    streams opened here are closed here.
    """
    if not token:
        token = os.environ.get(TOKEN_ENV) or None
    request_headers = dict(headers or {})
    if token is not None:
        request_headers["Authorization"] = f"Bearer {token}"

    try:
        websocket = await connect(
            url,
            additional_headers=request_headers,
            subprotocols=_OFFERED_SUBPROTOCOLS,
            user_agent_header=f"acp-bridge-connect/{__version__}",
            # A proxy from the environment has no business relaying loopback traffic.
            proxy=None if _is_loopback_url(url) else True,
            open_timeout=open_timeout,
            max_size=max_message_bytes,
        )
    except InvalidStatus as exc:
        status = exc.response.status_code
        hint = _STATUS_HINTS.get(status, "")
        _say(f"cannot connect to {_display_url(url)}: HTTP {status}{hint}")
        return 1
    except InvalidURI as exc:
        _say(f"invalid URL {_display_url(url)!r}: {exc.msg}")
        return 1
    except ConnectionRefusedError:
        _say(
            f"cannot connect to {_display_url(url)}: nothing is listening there "
            "(is `acp-bridge serve` running, on this port?)"
        )
        return 1
    except TimeoutError:
        _say(f"cannot connect to {_display_url(url)}: no answer within {open_timeout:g} s")
        return 1
    except OSError as exc:
        # "[Errno -2] Name or service not known": the sentence without the number.
        _say(f"cannot connect to {_display_url(url)}: {exc.strerror or exc}")
        return 1
    except InvalidHandshake as exc:
        _say(f"cannot connect to {_display_url(url)}: {exc or type(exc).__name__}")
        return 1

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    with contextlib.suppress(NotImplementedError, RuntimeError):
        # Not available off the main thread or on Windows; then SIGTERM just ends the process.
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    opened: list[asyncio.BaseTransport | LineWriter] = []
    try:
        if stdin_reader is None or stdout_writer is None:
            own_reader, own_writer, read_transport = await open_stdio_streams()
            opened.append(own_writer)
            if read_transport is not None:
                opened.append(read_transport)
            stdin_reader = own_reader if stdin_reader is None else stdin_reader
            stdout_writer = own_writer if stdout_writer is None else stdout_writer
        lines = LineReader(stdin_reader, max_message_bytes)
        return await _relay(websocket, lines, stdout_writer, stop, eof_grace)
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGTERM)
        await websocket.close()
        for stream in opened:
            if isinstance(stream, asyncio.BaseTransport):
                stream.close()
            else:
                await close_writer(stream)


_STATUS_HINTS = {
    401: " (missing or wrong token)",
    403: " (origin not allowed)",
    404: " (wrong path?)",
    421: " (the server does not accept this host name: see its --allow-host)",
}


if __name__ == "__main__":
    # This module used to be runnable; an editor configured that way must fail loudly, not exit 0.
    print(
        f"{_PROG}: run the relay as `acp-bridge connect URL` "
        "(or `python -m acp_bridge connect URL`)",
        file=sys.stderr,
    )
    sys.exit(2)
