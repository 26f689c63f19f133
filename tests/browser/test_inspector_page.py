"""Issue 14 in a real headless Chromium: the list, a turn watched live, its tool-call card going from
pending to completed, the raw pane, the JSONL export, and a reload that shows it all again.

Every wait is Playwright's own, bounded by ``WAIT_MS``; the turn is held open by the backend's gate,
so "while a turn runs" is a state the test sets, not a race.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from websockets.asyncio.client import connect

from acp_bridge.app import BridgeServer
from acp_bridge.transports.websocket import WebSocketTransport
from tests.support.acp_client import RawAcpClient

from .conftest import TOKEN, GatedBackend

WAIT_MS = 10_000


@asynccontextmanager
async def editor(server: BridgeServer) -> AsyncIterator[RawAcpClient]:
    """An ACP client on /acp, as an editor would be."""
    async with (
        connect(server.url, additional_headers={"Authorization": f"Bearer {TOKEN}"}) as ws,
        RawAcpClient(WebSocketTransport(ws)) as acp,
    ):
        await acp.initialize()
        yield acp


def gate_of(server: BridgeServer) -> asyncio.Event:
    assert isinstance(server.backend, GatedBackend)
    return server.backend.gate


async def log_in(page: Any, token: str) -> None:
    await page.fill("#token", token)
    await page.click("#login button")


async def test_a_turn_is_watched_live_and_exported(
    browser: Any, server: BridgeServer, tmp_path: Any
) -> None:
    page = await browser.new_page()
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    base = f"http://127.0.0.1:{server.websocket.port}/inspect"
    async with editor(server) as acp:
        sid = await acp.new_session()
        await page.goto(base)
        await page.wait_for_selector("#login:not([hidden])", timeout=WAIT_MS)
        await log_in(page, "not-the-token")
        await page.wait_for_selector("#login-error:has-text('refused')", timeout=WAIT_MS)
        await log_in(page, TOKEN)
        item = f"li.session[data-session-id='{sid}']"
        await page.wait_for_selector(item, timeout=WAIT_MS)

        turn = asyncio.create_task(acp.prompt(sid, "fix a.txt"))
        # The list is live: the running turn shows without a reload.
        await page.wait_for_selector(f"{item} .badge.running", timeout=WAIT_MS)
        await page.click(f"{item} a")
        assert page.url.endswith(f"/inspect?session={sid}")
        card = "li.tool[data-tool-call-id='edit-1']"
        await page.wait_for_selector(f"{card}[data-status='pending']", timeout=WAIT_MS)
        assert await page.text_content("li.message") == "I will edit a.txt."
        assert await page.is_hidden("li.thought details .text")  # folded
        assert "fixed" in (await page.text_content("li.thought details .text") or "")

        gate_of(server).set()
        await page.wait_for_selector(f"{card}[data-status='completed']", timeout=WAIT_MS)
        assert (await turn)["stopReason"] == "end_turn"
        transitions = await page.text_content(f"{card} .transitions")
        assert transitions is not None
        assert "pending" in transitions
        assert "completed" in transitions
        assert await page.is_visible(f"{card} .diff .add:has-text('+new')")

        # The raw pane: every message of the turn, with its event id.
        await page.wait_for_selector("#wire tr.row[data-event-id='6']", timeout=WAIT_MS)
        ids = await page.eval_on_selector_all(
            "#wire tr.row", "rows => rows.map(r => Number(r.dataset.eventId))"
        )
        assert sorted(set(ids)) == [1, 2, 3, 4, 5, 6, 7]
        await page.select_option("#method-filter", "session/prompt")
        assert await page.eval_on_selector_all("#wire tr.row", "rows => rows.length") == 1

        async with page.expect_download(timeout=WAIT_MS) as download_info:
            await page.click("#export")
        download = await download_info.value
        target = tmp_path / "export.jsonl"
        await download.save_as(target)
        lines = [json.loads(line) for line in target.read_text().splitlines()]
        assert [line["eventId"] for line in lines] == [1, 2, 3, 4, 5, 6, 7]
        assert lines[0]["event"]["type"] == "user_message"

    # The token never travels in a URL.
    assert urls
    assert not [url for url in urls if TOKEN in url]


async def test_a_reload_shows_the_finished_turn_from_the_log(
    browser: Any, server: BridgeServer
) -> None:
    async with editor(server) as acp:
        sid = await acp.new_session()
        gate_of(server).set()
        await acp.prompt(sid, "fix a.txt")
    page = await browser.new_page()
    await page.goto(f"http://127.0.0.1:{server.websocket.port}/inspect?session={sid}")
    await log_in(page, TOKEN)
    card = "li.tool[data-tool-call-id='edit-1'][data-status='completed']"
    await page.wait_for_selector(card, timeout=WAIT_MS)
    await page.reload()
    # Same tab: the token is still in sessionStorage, the deep link opens the session again.
    await page.wait_for_selector(card, timeout=WAIT_MS)
    assert await page.text_content("#session-title") == "fix a.txt"
    assert "fix a.txt" in (await page.text_content(".prompt") or "")
