"""Take the inspector's screenshots for ``docs/`` with the system's headless Chromium.

``python -m tests.browser.screenshots [DIR]`` (default ``docs/images``): runs the demo agent on a
bridge on 127.0.0.1 port 0, holds its turn at the permission request (``inspector-live.png``), answers
it and shows the finished turn with a raw message opened (``inspector-session.png``).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from playwright.async_api import async_playwright
from websockets.asyncio.client import connect

from acp_bridge.agents.demo import DemoBackend
from acp_bridge.app import BridgeServer, ServerOptions
from acp_bridge.transports.websocket import WebSocketTransport
from tests.support.acp_client import ClientScript, RawAcpClient

from .conftest import chromium_path

WAIT_MS = 10_000
VIEWPORT = {"width": 1400, "height": 860}


async def main(out: Path) -> None:
    browser_path = chromium_path()
    if browser_path is None:
        raise SystemExit("chromium is not installed")
    options = ServerOptions(port=0, event_log="memory")
    async with (
        BridgeServer(DemoBackend(step_delay=0), options) as server,
        connect(server.url) as ws,
        RawAcpClient(WebSocketTransport(ws), script=ClientScript(permission="hold")) as acp,
        async_playwright() as playwright,
    ):
        await acp.initialize({"fs": {"readTextFile": False, "writeTextFile": False}})
        sid = await acp.new_session("/home/me/project")
        browser = await playwright.chromium.launch(
            executable_path=browser_path, headless=True, args=["--no-sandbox"]
        )
        try:
            page = await browser.new_page(viewport=VIEWPORT)
            await page.goto(f"http://127.0.0.1:{server.websocket.port}/inspect?session={sid}")
            turn = asyncio.create_task(acp.prompt(sid, "Add a note to README.md"))
            request = await acp.wait_for(lambda m: m.get("method") == "session/request_permission")
            await page.wait_for_selector("li.tool[data-status='pending']", timeout=WAIT_MS)
            await page.wait_for_selector(".badge.running", timeout=WAIT_MS)
            await page.screenshot(path=out / "inspector-live.png")

            await acp.respond(
                request["id"], {"outcome": {"outcome": "selected", "optionId": "allow"}}
            )
            await turn
            await page.wait_for_selector(
                "li.tool[data-tool-call-id='tool-0-edit'][data-status='completed']", timeout=WAIT_MS
            )
            await page.click("#wire tr.row[data-event-id='16']")
            await page.screenshot(path=out / "inspector-session.png")
        finally:
            await browser.close()


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/images")
    target.mkdir(parents=True, exist_ok=True)
    asyncio.run(main(target))
