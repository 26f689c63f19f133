"""The TypeScript client of ``docs/clients.md``, run as written with Node against a real server.

Needs ``node`` and a ``node_modules`` holding ``@agentclientprotocol/sdk`` and ``ws``, named by
``$ACP_BRIDGE_NODE_MODULES`` (e.g. after ``npm install @agentclientprotocol/sdk ws`` in some
directory); skipped otherwise, since tests do not download packages.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from pathlib import Path

import pytest

from acp_bridge.app import BridgeServer

DOC = Path(__file__).parents[2] / "docs" / "clients.md"
FENCE = re.compile(r"```ts\n(.*?)```", re.DOTALL)


def _snippet() -> str:
    blocks = [b for b in FENCE.findall(DOC.read_text()) if "createWebSocketStream(" in b]
    assert len(blocks) == 1, "docs/clients.md should hold one TypeScript client"
    return blocks[0]


def _prepare(directory: Path, modules: Path) -> Path:
    """``directory/client.mjs`` holding the snippet, with the packages where Node's ESM resolution
    looks (``NODE_PATH`` does not apply to ``import``)."""
    (directory / "node_modules").symlink_to(modules.resolve(), target_is_directory=True)
    script = directory / "client.mjs"
    script.write_text(_snippet())
    return script


def test_the_snippet_passes_a_websocket_implementation() -> None:
    # Node 20 has no global WebSocket: without the option the SDK's stream cannot connect.
    assert re.search(r"createWebSocketStream\(url, \{\s*WebSocket,", _snippet())


async def test_the_snippet_runs_a_turn_on_node(tmp_path: Path, server: BridgeServer) -> None:
    node = shutil.which("node")
    modules = os.environ.get("ACP_BRIDGE_NODE_MODULES")
    if node is None or not modules:
        pytest.skip("needs node and $ACP_BRIDGE_NODE_MODULES (with @agentclientprotocol/sdk, ws)")
    script = _prepare(tmp_path, Path(modules))
    env = {k: v for k, v in os.environ.items() if k != "ACP_BRIDGE_TOKEN"}
    process = await asyncio.create_subprocess_exec(
        node,
        str(script),
        server.url,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        async with asyncio.timeout(60):
            stdout, stderr = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()
    assert stdout.decode().rstrip().endswith("stop reason: end_turn"), stdout
    assert b"Error" not in stderr, stderr
