"""``acp-bridge serve`` operator mistakes: one line on stderr, exit 2, no traceback (issue 15, item 1)."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from acp_bridge.cli.main import build_parser
from acp_bridge.cli.serve_cmd import connect_command

BANNER_URL = re.compile(rb"WebSocket:\s+(ws://\S+)")


def _env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    env.pop("ACP_BRIDGE_TOKEN", None)
    return env


def serve_fails(tmp_path: Path, *args: str) -> str:
    """Run ``acp-bridge serve ARGS`` expecting a refusal; returns its one stderr line."""
    result = subprocess.run(
        [sys.executable, "-m", "acp_bridge", "serve", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
        check=False,
        env=_env(tmp_path),
    )
    stderr = result.stderr.decode()
    assert result.returncode == 2, stderr
    assert "Traceback" not in stderr
    assert result.stdout == b""
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("acp-bridge: ")
    return lines[0]


@asynccontextmanager
async def running_serve(tmp_path: Path, *args: str) -> AsyncIterator[tuple[str, list[bytes]]]:
    """``acp-bridge serve --port 0 ARGS`` until its banner; yields the URL and the stderr lines read
    so far; SIGTERM at the end."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "acp_bridge",
        "serve",
        "--port",
        "0",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=_env(tmp_path),
    )
    assert process.stderr is not None
    seen: list[bytes] = []
    try:
        async with asyncio.timeout(20):
            found = None
            while found is None:
                line = await process.stderr.readline()
                assert line, b"".join(seen)
                seen.append(line)
                found = BANNER_URL.search(line)
            while not seen[-1].startswith(b"Press Ctrl-C"):
                seen.append(await process.stderr.readline())
        yield found.group(1).decode(), seen
        process.terminate()
        async with asyncio.timeout(20):
            await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def test_port_out_of_range(tmp_path: Path) -> None:
    line = serve_fails(tmp_path, "--port", "99999", "--event-log", "memory")
    assert "--port" in line
    assert "99999" in line


def test_event_log_directory_that_cannot_be_created(tmp_path: Path) -> None:
    line = serve_fails(tmp_path, "--port", "0", "--event-log", "sqlite:/proc/acp-bridge/e.sqlite")
    assert "/proc/acp-bridge" in line


@pytest.mark.parametrize("stdio", [False, True])
def test_a_file_where_the_event_log_directory_should_be(tmp_path: Path, stdio: bool) -> None:
    (tmp_path / "plain").write_text("not a directory")
    spec = f"sqlite:{tmp_path / 'plain' / 'events.sqlite'}"
    line = serve_fails(tmp_path, "--port", "0", "--event-log", spec, *(["--stdio"] * stdio))
    assert "is a file, not a directory" in line


async def test_second_serve_on_the_same_event_log_says_one_sentence(tmp_path: Path) -> None:
    async with running_serve(tmp_path):  # the default event log, in XDG_DATA_HOME
        line = await asyncio.to_thread(serve_fails, tmp_path, "--port", "0")
    assert "already in use" in line


async def test_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = await asyncio.to_thread(
            serve_fails, tmp_path, "--port", str(port), "--event-log", "memory"
        )
    assert f"127.0.0.1:{port}" in line
    assert "in use" in line


@pytest.mark.parametrize(
    "option",
    ["--eof-grace", "--slow-client-grace", "--replay-speed", "--max-message-bytes"],
)
def test_negative_numbers_name_their_option(tmp_path: Path, option: str) -> None:
    # --slow-client-grace -1 and --replay-speed -1 used to be accepted; the others named a field.
    line = serve_fails(tmp_path, "--event-log", "memory", option, "-1")
    assert line.startswith(f"acp-bridge: {option} must be")


def test_unreadable_tokens_file(tmp_path: Path) -> None:
    line = serve_fails(
        tmp_path, "--tokens", str(tmp_path / "missing.toml"), "--event-log", "memory"
    )
    assert "missing.toml" in line


def test_bad_allow_origin(tmp_path: Path) -> None:
    line = serve_fails(tmp_path, "--allow-origin", "example.com", "--event-log", "memory")
    assert "--allow-origin" in line
    assert "SCHEME://HOST" in line


def test_non_loopback_without_token_names_the_flag(tmp_path: Path) -> None:
    line = serve_fails(tmp_path, "--host", "0.0.0.0", "--port", "0", "--event-log", "memory")
    assert "--insecure" in line
    assert "insecure=True" not in line


def test_debug_log_level_shows_the_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            *(sys.executable, "-m", "acp_bridge", "serve", "--port", "0"),
            *("--log-level", "debug", "--event-log", "sqlite:/proc/acp-bridge/e.sqlite"),
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
        check=False,
        env=_env(tmp_path),
    )
    assert result.returncode == 2
    assert b"Traceback" in result.stderr
    assert result.stderr.splitlines()[-1].startswith(b"acp-bridge: ")


async def test_insecure_on_a_non_loopback_address_warns(tmp_path: Path) -> None:
    async with running_serve(
        tmp_path, "--host", "0.0.0.0", "--insecure", "--event-log", "memory"
    ) as (
        _,
        stderr,
    ):
        warnings = [line for line in stderr if b"WARNING" in line and b"--insecure" in line]
    assert len(warnings) == 1, stderr


async def test_banner_command_carries_the_token_quoted(tmp_path: Path) -> None:
    async with running_serve(tmp_path, "--event-log", "memory", "--token", "s3cr3t $x") as (
        url,
        stderr,
    ):
        line = next(line.decode().strip() for line in stderr if b" connect ws://" in line)
    argv = shlex.split(line)
    assert argv[1:] == ["connect", url, "--token", "s3cr3t $x"]
    assert os.path.basename(argv[0]) == "acp-bridge"
    # Runnable as printed: on the PATH this test runs with, or a path to the installed script.
    assert shutil.which(argv[0]) is not None, argv[0]


def test_banner_command_never_expands_to_a_dangling_token_flag() -> None:
    url = "ws://127.0.0.1:8765/acp"
    from_env = shlex.split(connect_command(url, token="t", token_from_env=True), comments=True)
    assert from_env[1:] == ["connect", url]  # connect reads $ACP_BRIDGE_TOKEN itself
    from_file = shlex.split(connect_command(url, token=None, tokens_file="tokens.toml"))
    assert from_file[1:4] == ["connect", url, "--token"]
    assert from_file[4]
    assert shlex.split(connect_command(url, token=None))[1:] == ["connect", url]


@pytest.mark.parametrize(
    ("command", "option"), [("serve", "--log-level"), ("translate", "--dialect")]
)
def test_options_have_help_text(command: str, option: str) -> None:
    parser = build_parser()
    subcommands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    action = next(a for a in subcommands.choices[command]._actions if option in a.option_strings)
    assert action.help
