"""A real bridge server on a loopback port, for end-to-end tests with the official SDK client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from acp_bridge.agents.demo import DemoBackend
from acp_bridge.app import BridgeServer, ServerOptions


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[BridgeServer]:
    options = ServerOptions(port=0, event_log=f"sqlite:{tmp_path / 'events.sqlite'}")
    async with BridgeServer(DemoBackend(step_delay=0), options) as running:
        yield running
