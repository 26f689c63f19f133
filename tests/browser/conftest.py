"""Fixtures for the inspector's browser tests: the system's headless Chromium driven by Playwright.

Playwright is told the browser's path (``executable_path``), so it never downloads one; each test
gets a fresh browser and a bridge on 127.0.0.1 port 0, both stopped by their fixtures.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from acp_bridge.agents.base import BaseBackend, SessionContext, StopReason
from acp_bridge.app import BridgeServer, ServerOptions
from acp_bridge.events import harn as h
from acp_bridge.events.harn_types import ToolCallStatus
from tests.support.external import missing_external

TOKEN = "browser-secret-1"
TIMEOUT = 10.0


def chromium_path() -> str | None:
    """The system Chromium (``ACP_BRIDGE_CHROMIUM`` overrides), ``None`` if there is none."""
    chosen = os.environ.get("ACP_BRIDGE_CHROMIUM")
    for candidate in (chosen,) if chosen else ("chromium", "/usr/bin/chromium"):
        if found := shutil.which(candidate):
            return found
    return None


class GatedBackend(BaseBackend):
    """One turn: a message, a plan, a pending edit; once ``gate`` opens, the edit completes with a diff."""

    def __init__(self) -> None:
        super().__init__(name="gated")
        self.gate = asyncio.Event()

    async def prompt(self, ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        sid = ctx.session_id
        ctx.emit(h.AgentThoughtChunk(session_id=sid, content="The user wants a.txt fixed."))
        ctx.emit(h.AgentMessageChunk(session_id=sid, content="I will edit "))
        ctx.emit(h.AgentMessageChunk(session_id=sid, content="a.txt."))
        ctx.emit(
            h.ToolCall(
                session_id=sid,
                tool_call_id="edit-1",
                tool_name="edit_file",
                status=ToolCallStatus.PENDING,
                raw_input={"path": "a.txt"},
            )
        )
        async with asyncio.timeout(TIMEOUT):
            await self.gate.wait()
        self.gate.clear()
        ctx.emit(
            h.ToolCallUpdate(
                session_id=sid,
                tool_call_id="edit-1",
                tool_name="edit_file",
                status=ToolCallStatus.COMPLETED,
                raw_output={"diff": "--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-old\n+new\n"},
            )
        )
        ctx.emit(h.AgentMessageChunk(session_id=sid, content="Done."))
        return StopReason.END_TURN


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    path = chromium_path()
    if path is None:
        missing_external("chromium is not installed (apt-get install chromium)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        missing_external("playwright is not installed (pip install -e '.[dev]')")
    async with async_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        browser = await playwright.chromium.launch(
            executable_path=path, headless=True, args=["--no-sandbox"], timeout=TIMEOUT * 1000
        )
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[BridgeServer]:
    options = ServerOptions(port=0, event_log=f"sqlite:{tmp_path / 'events.sqlite'}", token=TOKEN)
    async with BridgeServer(GatedBackend(), options) as running:
        yield running
