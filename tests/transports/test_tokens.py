"""Tokens with roles: the ``--tokens`` file, constant-time matching, principals on connections."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from acp_bridge.rpc.principal import ANONYMOUS, Principal, Role
from acp_bridge.transports.tokens import (
    TokenEntry,
    TokenFileError,
    TokenTable,
    load_token_file,
)

from .conftest import Recorder, StartServer

GOOD = """
[[token]]
name = "laptop"
secret = "laptop-secret-1"
role = "controller"

[[token]]
name = "dashboard"
secret = "dashboard-secret-2"
role = "observer"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tokens.toml"
    path.write_text(text)
    return path


def test_a_tokens_file_names_principals_and_roles(tmp_path: Path) -> None:
    entries = load_token_file(write(tmp_path, GOOD))
    assert [e.principal for e in entries] == [
        Principal("laptop", Role.CONTROLLER),
        Principal("dashboard", Role.OBSERVER),
    ]
    assert "secret" not in repr(entries)


def test_role_defaults_to_controller(tmp_path: Path) -> None:
    [entry] = load_token_file(write(tmp_path, '[[token]]\nname = "a"\nsecret = "12345678"\n'))
    assert entry.principal.role is Role.CONTROLLER


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[[token]\n", "is not valid TOML"),
        ("title = 1\n", "has no [[token]] tables"),
        ('[[token]]\nsecret = "12345678"\n', "token #1: name must be a non-empty string"),
        ('[[token]]\nname = "a"\n', "(a): secret must be a string"),
        ('[[token]]\nname = "a"\nsecret = "short"\n', "(a): secret must be a string"),
        (
            '[[token]]\nname = "a"\nsecret = "12345678"\nrole = "owner"\n',
            'role must be "controller"',
        ),
        ('[[token]]\nname = "a"\nsecret = "12345678"\nscope = 1\n', "unknown key(s) scope"),
        (
            '[[token]]\nname = "a"\nsecret = "12345678"\n[[token]]\nname = "a"\nsecret = "abcdefgh"\n',
            "token #2: duplicate name",
        ),
        (
            '[[token]]\nname = "a"\nsecret = "12345678"\n[[token]]\nname = "b"\nsecret = "12345678"\n',
            "token #2: secret used twice",
        ),
    ],
)
def test_a_bad_file_is_one_line_without_the_secret(
    tmp_path: Path, text: str, fragment: str
) -> None:
    with pytest.raises(TokenFileError) as caught:
        load_token_file(write(tmp_path, text))
    message = str(caught.value)
    assert fragment in message
    assert "\n" not in message
    assert "12345678" not in message
    assert "abcdefgh" not in message


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(TokenFileError, match="cannot read tokens file"):
        load_token_file(tmp_path / "nope.toml")


def test_the_table_matches_any_entry_and_the_single_token_is_a_controller(tmp_path: Path) -> None:
    table = TokenTable.build("single-token", load_token_file(write(tmp_path, GOOD)))
    assert table.authenticate(["dashboard-secret-2"]) == Principal("dashboard", Role.OBSERVER)
    assert table.authenticate(["wrong", "laptop-secret-1"]) == Principal("laptop")
    assert table.authenticate(["single-token"]) == Principal("token", Role.CONTROLLER)
    assert table.authenticate(["wrong"]) is None
    assert table.authenticate([]) is None
    assert not TokenTable.build(None)


async def test_each_connection_carries_the_principal_its_token_names(
    tmp_path: Path, start_server: StartServer, recorder: Recorder
) -> None:
    entries = tuple(load_token_file(write(tmp_path, GOOD)))
    server = await start_server(recorder, tokens=entries)
    async with asyncio.timeout(5):
        async with connect(
            server.url, additional_headers={"Authorization": "Bearer dashboard-secret-2"}
        ):
            _, info = await recorder.connections.get()
            assert info.principal == Principal("dashboard", Role.OBSERVER)
        async with connect(server.url, subprotocols=["acp.bearer.laptop-secret-1"]):  # type: ignore[list-item]
            _, info = await recorder.connections.get()
            assert info.principal == Principal("laptop", Role.CONTROLLER)
        with pytest.raises(InvalidStatus) as caught:
            async with connect(server.url, additional_headers={"Authorization": "Bearer nope"}):
                pass
        assert caught.value.response.status_code == 401


async def test_without_tokens_every_connection_is_an_anonymous_controller(
    start_server: StartServer, recorder: Recorder
) -> None:
    server = await start_server(recorder)
    async with asyncio.timeout(5), connect(server.url):
        _, info = await recorder.connections.get()
    assert info.principal == ANONYMOUS
    assert info.principal.controls


async def test_reloading_replaces_the_file_tokens_and_keeps_the_single_one(
    start_server: StartServer, recorder: Recorder
) -> None:
    old = TokenEntry(Principal("old"), b"old-secret-1")
    server = await start_server(recorder, token="single-token", tokens=(old,))
    server.reload_tokens((TokenEntry(Principal("new", Role.OBSERVER), b"new-secret-1"),))
    async with asyncio.timeout(5):
        with pytest.raises(InvalidStatus):
            async with connect(
                server.url, additional_headers={"Authorization": "Bearer old-secret-1"}
            ):
                pass
        for secret in ("new-secret-1", "single-token"):
            async with connect(
                server.url, additional_headers={"Authorization": f"Bearer {secret}"}
            ):
                await recorder.connections.get()
    with pytest.raises(ValueError, match="cannot be switched off"):
        server.reload_tokens(())
