"""The ``acp`` backend's JSON-RPC framing: how each stdout line of the child is classified."""

from __future__ import annotations

import pytest

from acp_bridge.agents.acp.link import decode_line


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        (b'{"jsonrpc":"2.0","method":"session/update","params":{}}\n', "notification"),
        (b'{"jsonrpc":"2.0","id":3,"method":"fs/read_text_file","params":{}}\n', "request"),
        (b'{"jsonrpc":"2.0","id":"a","method":"x"}\n', "request"),
        (b'{"jsonrpc":"2.0","id":1,"result":null}\n', "response"),
        (b'{"jsonrpc":"2.0","id":1,"error":{"code":-1,"message":"m"}}\n', "response"),
        (b"not json\n", "invalid"),
        (b"[1,2]\n", "invalid"),
        (b'{"method":"session/update"}\n', "invalid"),
        (b'{"jsonrpc":"2.0","method":7}\n', "invalid"),
        (b'{"jsonrpc":"2.0","method":"m","params":[1]}\n', "invalid"),
        (b'{"jsonrpc":"2.0","id":true,"method":"m"}\n', "invalid"),
        (b'{"jsonrpc":"2.0","id":1}\n', "invalid"),
    ],
)
def test_each_line_is_one_message_or_invalid(line: bytes, kind: str) -> None:
    incoming = decode_line(line)
    assert incoming.kind == kind
    assert (incoming.problem != "") is (kind == "invalid")


def test_agent_acp_command_is_split_like_a_shell_and_must_exist() -> None:
    from acp_bridge.agents.acp import AcpBackend
    from acp_bridge.agents.registry import available_backends, create_backend

    backend = create_backend('acp:python -c "print(1)"')
    assert isinstance(backend, AcpBackend)
    assert backend.command == ("python", "-c", "print(1)")
    assert available_backends()["acp"] == "acp:COMMAND"
    with pytest.raises(ValueError, match="needs a command"):
        create_backend("acp:")
    with pytest.raises(ValueError, match="command not found"):
        create_backend("acp:no-such-agent-binary --acp")
