"""ServerOptions hands each layer its part: every field the layer's config shares by name, and nothing lost."""

from __future__ import annotations

from acp_bridge.acp import BridgeConfig
from acp_bridge.app import ServerOptions
from acp_bridge.translate import Profile
from acp_bridge.transports.websocket_server import WebSocketServerConfig

# Values unlike every default, so a field that is not passed on shows up as a default.
OPTIONS = ServerOptions(
    host="127.0.0.2",
    port=9999,
    path="/agent",
    token="t0ken",
    allowed_origins=["https://a.example"],
    allowed_hosts=["bridge.example"],
    insecure=True,
    max_message_bytes=1234,
    ping_interval=7.5,
    profile=Profile.HARN,
    outbox_limit=17,
    slow_client_grace=0.25,
    outbox_max_bytes=4096,
)


def test_the_websocket_endpoint_gets_every_option_it_has() -> None:
    config = OPTIONS.websocket_config()
    assert config == WebSocketServerConfig(
        host="127.0.0.2",
        port=9999,
        path="/agent",
        token="t0ken",
        allowed_origins=("https://a.example",),
        allowed_hosts=("bridge.example",),
        insecure=True,
        max_message_bytes=1234,
        ping_interval=7.5,
        ping_timeout=7.5,  # a pong may take one ping interval
    )


def test_the_acp_layer_gets_every_option_it_has() -> None:
    assert OPTIONS.bridge_config() == BridgeConfig(
        profile=Profile.HARN, outbox_limit=17, slow_client_grace=0.25, outbox_max_bytes=4096
    )
