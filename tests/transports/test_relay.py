"""The stdio ↔ WebSocket relay, run as the subprocess an editor would launch."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

import orjson
import pytest

from acp_bridge.cli import connect_cmd
from acp_bridge.rpc.transport import Transport
from acp_bridge.transports.relay import run_relay
from acp_bridge.transports.websocket_server import ConnectionInfo

from .conftest import Recorder, StartServer, echo_handler

TOKEN = "relay-token"


@dataclass
class Relay:
    process: asyncio.subprocess.Process

    async def send_line(self, line: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + b"\n")
        await self.process.stdin.drain()

    async def read_line(self) -> bytes:
        assert self.process.stdout is not None
        line = await self.process.stdout.readline()
        assert line.endswith(b"\n"), line
        return line[:-1]

    async def end_input(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        await self.process.stdin.wait_closed()

    async def finish(self) -> tuple[int, bytes, bytes]:
        """Wait for exit; returns the exit code and the rest of stdout and stderr."""
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        stdout, stderr = await asyncio.gather(
            self.process.stdout.read(), self.process.stderr.read()
        )
        code = await self.process.wait()
        return code, stdout, stderr


@asynccontextmanager
async def relay(url: str, *args: str, env: Mapping[str, str] | None = None) -> AsyncIterator[Relay]:
    environment = {k: v for k, v in os.environ.items() if k != "ACP_BRIDGE_TOKEN"}
    environment.update(env or {})
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "acp_bridge",
        "connect",
        url,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=environment,
    )
    try:
        yield Relay(process)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_lines_in_same_lines_out_and_stdin_eof_closes_1000(
    start_server: StartServer, recorder: Recorder
) -> None:
    async def echo_and_record(transport: Transport, info: ConnectionInfo) -> None:
        await recorder.connections.put((transport, info))
        while (message := await transport.receive()) is not None:
            await recorder.received.put(message)
            await transport.send(message if isinstance(message, dict) else {"bad": True})
        await recorder.close_codes.put(getattr(transport, "close_code", None))

    server = await start_server(echo_and_record)
    lines = [
        b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":1}}',
        b'{"jsonrpc":"2.0","id":2,"method":"session/new","params":{"cwd":"/tmp/\xc3\xa9"}}',
        b'{"jsonrpc":"2.0","method":"session/cancel","params":{"sessionId":"s"}}',
    ]
    # This server echoes requests instead of answering them: nothing to wait for at the end.
    async with asyncio.timeout(10), relay(server.url, "--eof-grace", "0") as r:
        for line in lines:
            await r.send_line(line)
            await r.send_line(b"   ")  # blank lines are not forwarded
            assert await r.read_line() == line
        await r.end_input()
        code, stdout, stderr = await r.finish()
        assert await recorder.close_codes.get() == 1000
        _, info = await recorder.connections.get()
    assert (code, stdout, stderr) == (0, b"", b"")
    assert recorder.received.qsize() == len(lines)
    assert info.subprotocol == "acp.v1"
    assert info.user_agent is not None
    assert info.user_agent.startswith("acp-bridge-connect/")


async def test_server_shutdown_ends_the_relay_with_0(start_server: StartServer) -> None:
    server = await start_server()
    async with asyncio.timeout(10), relay(server.url) as r:
        await r.send_line(b'{"id":1}')
        assert await r.read_line() == b'{"id":1}'
        await server.close()
        code, stdout, stderr = await r.finish()
    assert (code, stdout, stderr) == (0, b"", b"")


async def test_sigterm_closes_1001_and_exits_0(
    start_server: StartServer, recorder: Recorder
) -> None:
    server = await start_server(recorder)
    async with asyncio.timeout(10), relay(server.url) as r:
        await r.send_line(b'{"id":1}')
        # Once the server has the message, the relay is connected and its signal handler set.
        assert await recorder.received.get() == {"id": 1}
        r.process.send_signal(signal.SIGTERM)
        code, stdout, stderr = await r.finish()
        assert await recorder.close_codes.get() == 1001
    assert (code, stdout, stderr) == (0, b"", b"")


async def test_abnormal_server_close_exits_1_with_a_reason(start_server: StartServer) -> None:
    server = await start_server()
    async with asyncio.timeout(10), relay(server.url) as r:
        await r.send_line(b'{"raise":true}')
        code, stdout, stderr = await r.finish()
    assert code == 1
    assert stdout == b""
    assert stderr.decode().splitlines() == [
        "acp-bridge connect: server closed the connection with code 1011: internal error"
    ]


async def test_multi_line_frame_arrives_as_one_line(start_server: StartServer) -> None:
    server = await start_server()
    pretty = orjson.dumps(
        {"id": 3, "result": {"text": "a\nb", "list": [1, 2]}}, option=orjson.OPT_INDENT_2
    )
    assert pretty.count(b"\n") > 3
    request = orjson.dumps({"raw": pretty.decode()})
    async with asyncio.timeout(10), relay(server.url) as r:
        await r.send_line(request)
        assert await r.read_line() == b'{"id":3,"result":{"text":"a\\nb","list":[1,2]}}'
        await r.end_input()
        assert (await r.finish())[0] == 0


async def test_malformed_input_is_passed_through_for_the_server_to_report(
    start_server: StartServer,
) -> None:
    server = await start_server()
    async with asyncio.timeout(10), relay(server.url) as r:
        await r.send_line(b"{oops")
        reply = orjson.loads(await r.read_line())
        await r.end_input()
        assert (await r.finish())[0] == 0
    assert "malformed" in reply


@pytest.mark.parametrize(
    ("args", "env"), [(["--token", TOKEN], {}), ([], {"ACP_BRIDGE_TOKEN": TOKEN})]
)
async def test_token_from_option_or_environment(
    start_server: StartServer, args: list[str], env: dict[str, str]
) -> None:
    server = await start_server(token=TOKEN)
    async with asyncio.timeout(10), relay(server.url, *args, env=env) as r:
        await r.send_line(b'{"id":1}')
        assert await r.read_line() == b'{"id":1}'
        await r.end_input()
        assert (await r.finish())[0] == 0


async def test_unauthorized_exits_1_with_nothing_on_stdout(start_server: StartServer) -> None:
    server = await start_server(token=TOKEN)
    async with asyncio.timeout(10), relay(server.url, "--token", "not-the-TOKEN-42") as r:
        code, stdout, stderr = await r.finish()
    assert code == 1
    assert stdout == b""
    [message] = stderr.decode().splitlines()
    assert "HTTP 401" in message
    assert "not-the-TOKEN-42" not in message


async def test_connection_refused_exits_1() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with asyncio.timeout(10), relay(f"ws://127.0.0.1:{port}/acp") as r:
        code, stdout, stderr = await r.finish()
    assert code == 1
    assert stdout == b""
    assert stderr.decode().startswith(
        f"acp-bridge connect: cannot connect to ws://127.0.0.1:{port}/acp"
    )
    assert len(stderr.decode().splitlines()) == 1


async def test_bad_url_exits_1() -> None:
    async with asyncio.timeout(10), relay("http://127.0.0.1:1/acp") as r:
        code, stdout, stderr = await r.finish()
    assert code == 1
    assert stdout == b""
    assert stderr.decode().startswith("acp-bridge connect: invalid URL 'http://127.0.0.1:1/acp'")


class LineSink:
    def __init__(self) -> None:
        self.lines: asyncio.Queue[bytes] = asyncio.Queue()

    def write(self, data: bytes) -> None:
        for line in data.splitlines():
            self.lines.put_nowait(line)

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        return None


async def test_run_relay_in_process_skips_binary_and_oversized_lines(
    start_server: StartServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server = await start_server(echo_handler)
    stdin = asyncio.StreamReader()
    sink = LineSink()
    async with asyncio.timeout(5):
        running = asyncio.create_task(
            run_relay(server.url, stdin_reader=stdin, stdout_writer=sink, max_message_bytes=64)
        )
        stdin.feed_data(b'{"pad":"' + b"x" * 100 + b'"}\n\xff\xfe\n{"id":1}\n')
        assert await sink.lines.get() == b'{"id":1}'
        stdin.feed_eof()
        assert await running == 0
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "acp-bridge connect: dropped an input line of 110 bytes (limit 64)",
        "acp-bridge connect: dropped an input line that is not valid UTF-8",
    ]


def test_connect_subcommand_parses_url_and_token() -> None:
    parser = argparse.ArgumentParser(prog="acp-bridge")
    connect_cmd.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["connect", "ws://127.0.0.1:1/acp", "--token", "t"])
    assert (args.command, args.url, args.token) == ("connect", "ws://127.0.0.1:1/acp", "t")
    assert callable(args.func)


async def test_the_old_module_entry_point_fails_loudly() -> None:
    # `python -m acp_bridge.transports.relay URL` was documented once; it must not exit 0 silently.
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "acp_bridge.transports.relay",
        "ws://127.0.0.1:1/acp",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(10):
        stdout, stderr = await process.communicate()
    assert process.returncode == 2
    assert stdout == b""
    assert b"acp-bridge connect URL" in stderr
