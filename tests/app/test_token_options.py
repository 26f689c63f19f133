"""``ServerOptions.tokens_file`` and ``permission_timeout`` reach their layers; a bad file stops early."""

from __future__ import annotations

from pathlib import Path

import pytest

from acp_bridge.agents.demo import DemoBackend
from acp_bridge.app import BridgeServer, ServerOptions
from acp_bridge.rpc.principal import Principal, Role
from acp_bridge.transports.tokens import TokenFileError


def test_the_permission_timeout_reaches_the_acp_layer() -> None:
    assert ServerOptions(permission_timeout=7.5).bridge_config().permission_timeout == 7.5


def test_the_tokens_file_reaches_the_websocket_endpoint(tmp_path: Path) -> None:
    path = tmp_path / "tokens.toml"
    path.write_text('[[token]]\nname = "dash"\nsecret = "dash-secret"\nrole = "observer"\n')
    options = ServerOptions(tokens_file=str(path))
    config = options.websocket_config(options.load_tokens())
    assert [entry.principal for entry in config.tokens] == [Principal("dash", Role.OBSERVER)]


def test_a_bad_tokens_file_fails_before_the_event_log_is_opened(tmp_path: Path) -> None:
    log = tmp_path / "events.sqlite"
    options = ServerOptions(tokens_file=str(tmp_path / "missing.toml"), event_log=f"sqlite:{log}")
    with pytest.raises(TokenFileError, match="cannot read tokens file"):
        BridgeServer(DemoBackend(), options)
    assert not log.exists()


def test_a_negative_permission_timeout_is_refused() -> None:
    with pytest.raises(ValueError, match="permission timeout"):
        ServerOptions(permission_timeout=-1).bridge_config()
