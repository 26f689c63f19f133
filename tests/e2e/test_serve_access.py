"""``acp-bridge serve`` as a user runs it: ``--allow-host`` and a token-gated ``/healthz`` (issue 9)."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import orjson

from tests.support.http import http_get

BANNER_URL = re.compile(rb"WebSocket:\s+ws://[^/]+:(\d+)/")


@asynccontextmanager
async def serve(tmp_path: Path, *args: str) -> AsyncIterator[int]:
    """Run ``acp-bridge serve --port 0 …``; yields the port from its banner; SIGTERM at the end."""
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    env.pop("ACP_BRIDGE_TOKEN", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "acp_bridge",
        "serve",
        "--port",
        "0",
        "--event-log",
        "memory",
        *args,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    assert process.stderr is not None
    try:
        async with asyncio.timeout(20):
            found = None
            while found is None:
                line = await process.stderr.readline()
                assert line, "acp-bridge serve exited before serving"
                found = BANNER_URL.search(line)
        yield int(found.group(1))
        process.terminate()
        async with asyncio.timeout(20):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_allow_host_and_token_gate_healthz(tmp_path: Path) -> None:
    async with serve(tmp_path, "--allow-host", "bridge.example", "--token", "t0ken") as port:
        async with asyncio.timeout(10):
            status, _, _ = await http_get(port, "/healthz", host="evil.example")
            assert status == 421
            status, _, body = await http_get(port, "/healthz", host="bridge.example:443")
            assert (status, orjson.loads(body)) == (200, {"status": "ok"})
            status, _, body = await http_get(
                port, "/healthz", headers={"Authorization": "Bearer t0ken"}
            )
    health = orjson.loads(body)
    assert status == 200
    assert health["backend"] == "demo"
    assert health["connections"] == 0
