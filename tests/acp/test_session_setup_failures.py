"""A backend that fails ``session/new``, ``load`` or ``resume``: a clear error and nothing left behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from acp_bridge.agents.base import BackendError, SessionContext

from .conftest import ScriptedBackend, make_harness


class QuotaExceeded(BackendError):
    rpc_code = -32000


class Flaky(ScriptedBackend):
    """Fails the first ``new_session``/``load_session`` calls it is told to."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_new: Exception | None = None
        self.fail_loads = 0

    async def new_session(self, ctx: SessionContext) -> None:
        if self.fail_new is not None:
            raise self.fail_new
        await super().new_session(ctx)

    async def load_session(self, ctx: SessionContext) -> None:
        if self.fail_loads:
            self.fail_loads -= 1
            raise RuntimeError("model server unreachable")
        await super().load_session(ctx)


def error_of(response: dict[str, Any]) -> dict[str, Any]:
    assert "result" not in response
    error: dict[str, Any] = response["error"]
    return error


async def test_a_failed_session_new_leaves_no_session(tmp_path: Path) -> None:
    backend = Flaky()
    backend.fail_new = QuotaExceeded("no more sessions today")
    async with make_harness(tmp_path, backend) as harness, harness.client() as client:
        await client.initialize()
        error = error_of(await client.request("session/new", {"cwd": "/tmp/p", "mcpServers": []}))
        assert (error["code"], error["message"]) == (-32000, "no more sessions today")
        sid = error["data"]["sessionId"]
        assert (await client.call("session/list", {}))["sessions"] == []
        assert harness.bridge.sessions.sessions == {}
        assert harness.bridge.registry.session_external_sink_count(sid) == 0
        # It is not loadable either, now or after a restart (the index says closed).
        gone = await client.request(
            "session/load", {"sessionId": sid, "cwd": "/tmp/p", "mcpServers": []}
        )
        assert error_of(gone)["code"] == -32002


async def test_an_unexpected_exception_in_session_new_is_an_internal_error(tmp_path: Path) -> None:
    backend = Flaky()
    backend.fail_new = KeyError("boom")
    async with make_harness(tmp_path, backend) as harness, harness.client() as client:
        await client.initialize()
        error = error_of(await client.request("session/new", {"cwd": "/tmp/p", "mcpServers": []}))
        assert error["code"] == -32603
        assert error["data"]["detail"] == "KeyError: 'boom'"
        assert "Traceback" not in str(error)
        assert harness.bridge.sessions.sessions == {}


async def test_a_failed_load_can_be_retried(tmp_path: Path) -> None:
    backend = Flaky()
    async with make_harness(tmp_path, backend) as harness:
        async with harness.client() as first:
            await first.initialize()
            sid = await first.new_session()
        # A fresh bridge process would have to tell the backend again; simulate that.
        harness.bridge.sessions.sessions[sid].backend_started = False
        backend.fail_loads = 1
        async with harness.client() as client:
            await client.initialize()
            params = {"sessionId": sid, "cwd": "/tmp/project", "mcpServers": []}
            error = error_of(await client.request("session/load", params))
            assert error["code"] == -32603
            assert "model server unreachable" in error["message"]
            # Not attached: the connection cannot prompt the session it failed to load…
            refused = await client.request(
                "session/prompt", {"sessionId": sid, "prompt": [{"type": "text", "text": "x"}]}
            )
            assert error_of(refused)["code"] == -32002
            # …and a retry asks the backend again.
            await client.call("session/load", params)
        assert backend.loaded_sessions == [sid]
