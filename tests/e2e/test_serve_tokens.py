"""``acp-bridge serve --tokens FILE`` as a user runs it: a bad file, roles, SIGHUP (issue 11)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from .test_serve_access import BANNER_URL

ONE = '[[token]]\nname = "laptop"\nsecret = "laptop-secret-1"\n'
TWO = '[[token]]\nname = "phone"\nsecret = "phone-secret-22"\nrole = "observer"\n'


async def run_serve(*args: str) -> tuple[int, str]:
    env = {**os.environ}
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
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    async with asyncio.timeout(20):
        _, stderr = await process.communicate()
    assert process.returncode is not None
    return process.returncode, stderr.decode()


@pytest.mark.parametrize(
    "text",
    [
        '[[token]]\nname = "a"\nsecret = "a-long-secret"\nrole = "owner"\n',
        "[[token]\nsecret = 'a-long-secret'\n",
    ],
)
async def test_a_bad_tokens_file_is_one_line_and_exit_2(tmp_path: Path, text: str) -> None:
    path = tmp_path / "tokens.toml"
    path.write_text(text)
    code, stderr = await run_serve("--tokens", str(path))
    assert code == 2
    assert stderr.count("\n") == 1
    assert stderr.startswith(f"acp-bridge: tokens file {path}")
    assert "Traceback" not in stderr
    assert "a-long-secret" not in stderr


async def test_sighup_re_reads_the_tokens_file(tmp_path: Path) -> None:
    path = tmp_path / "tokens.toml"
    path.write_text(ONE)
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    env.pop("ACP_BRIDGE_TOKEN", None)
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "acp_bridge", "serve", "--port", "0", "--event-log", "memory"),
        *("--tokens", str(path)),
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    assert process.stderr is not None
    stderr = process.stderr

    async def line_matching(pattern: re.Pattern[bytes]) -> re.Match[bytes]:
        while True:
            line = await stderr.readline()
            assert line, "acp-bridge serve exited"
            if found := pattern.search(line):
                return found

    try:
        async with asyncio.timeout(20):
            port = int((await line_matching(BANNER_URL)).group(1))
            url = f"ws://127.0.0.1:{port}/acp"

            async def status(secret: str) -> int:
                headers = {"Authorization": f"Bearer {secret}"}
                try:
                    async with connect(url, additional_headers=headers):
                        return 101
                except InvalidStatus as exc:
                    return exc.response.status_code

            assert await status("laptop-secret-1") == 101
            assert await status("phone-secret-22") == 401
            path.write_text(TWO)
            process.send_signal(signal.SIGHUP)
            await line_matching(re.compile(rb"tokens reloaded: phone"))
            assert await status("phone-secret-22") == 101
            assert await status("laptop-secret-1") == 401
            # A bad file on SIGHUP keeps the tokens in force (and the server up).
            path.write_text("not toml [")
            process.send_signal(signal.SIGHUP)
            await line_matching(re.compile(rb"keeping the previous tokens"))
            assert await status("phone-secret-22") == 101
            process.terminate()
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
