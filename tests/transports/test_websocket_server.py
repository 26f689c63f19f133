"""The WebSocket endpoint: what is decided before the upgrade, and the connection lifecycle."""

from __future__ import annotations

import asyncio
import logging

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from acp_bridge.rpc.transport import Transport
from acp_bridge.transports.websocket_server import (
    CONNECTION_ID_HEADER,
    ConnectionInfo,
    InsecureBindError,
    WebSocketServer,
    WebSocketServerConfig,
    is_loopback_host,
)
from tests.support.http import http_get

from .conftest import Recorder, StartServer, dumps, echo_handler

TOKEN = "s3cret-Token_42"


async def expect_status(url: str, status: int, **kwargs: object) -> None:
    with pytest.raises(InvalidStatus) as caught:
        async with connect(url, **kwargs):  # type: ignore[arg-type]
            pass
    assert caught.value.response.status_code == status


async def round_trip(url: str, **kwargs: object) -> str | None:
    """Connect, echo one message, return the negotiated subprotocol."""
    async with connect(url, **kwargs) as ws:  # type: ignore[arg-type]
        await ws.send(dumps({"ping": 1}))
        assert orjson.loads(await ws.recv()) == {"ping": 1}
        return ws.subprotocol


# Health and routing


async def test_healthz_returns_json_with_health_fields(start_server: StartServer) -> None:
    server = await start_server(health=lambda: {"version": "9.9.9", "sessions": 3})
    async with asyncio.timeout(5):
        status, headers, body = await http_get(server.port, "/healthz")
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert orjson.loads(body) == {"status": "ok", "version": "9.9.9", "sessions": 3}
    assert headers["server"].startswith("acp-bridge/")


async def test_healthz_needs_no_token(start_server: StartServer) -> None:
    server = await start_server(token=TOKEN)
    async with asyncio.timeout(5):
        status, _, body = await http_get(server.port, "/healthz?probe=1")
    assert status == 200
    assert orjson.loads(body) == {"status": "ok"}


async def test_healthz_failure_is_a_503(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> dict[str, object]:
        raise RuntimeError("no health today")

    server = await start_server(health=broken)
    async with asyncio.timeout(5):
        status, _, body = await http_get(server.port, "/healthz")
    assert status == 503
    assert orjson.loads(body) == {"status": "error"}
    assert "health callback failed" in caplog.text


async def test_other_paths_are_404(start_server: StartServer) -> None:
    server = await start_server()
    async with asyncio.timeout(5):
        await expect_status(f"ws://127.0.0.1:{server.port}/other", 404)
        status, _, _ = await http_get(server.port, "/")
    assert status == 404


async def test_query_string_does_not_change_the_route(start_server: StartServer) -> None:
    server = await start_server()
    async with asyncio.timeout(5):
        assert await round_trip(server.url + "?client=test") is None


async def test_healthz_details_need_the_token_when_one_is_configured(
    start_server: StartServer,
) -> None:
    # Issue 9: a DNS-rebinding page read version, backend and counts off /healthz.
    details = {"version": "9.9.9", "backend": "demo", "sessions": 3}
    server = await start_server(token=TOKEN, health=lambda: details)
    async with asyncio.timeout(5):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            status, _, body = await http_get(server.port, "/healthz", headers=headers)
            assert (status, orjson.loads(body)) == (200, {"status": "ok"}), headers
        status, _, body = await http_get(
            server.port, "/healthz", headers={"Authorization": f"Bearer {TOKEN}"}
        )
    assert (status, orjson.loads(body)) == (200, {"status": "ok", **details})


async def test_healthz_without_the_token_keeps_the_status_code(start_server: StartServer) -> None:
    server = await start_server(token=TOKEN, health=lambda: {"status": "degraded", "sessions": 1})
    async with asyncio.timeout(5):
        status, _, body = await http_get(server.port, "/healthz")
        assert (status, orjson.loads(body)) == (503, {"status": "degraded"})
        status, _, body = await http_get(
            server.port, "/healthz", headers={"Authorization": f"Bearer {TOKEN}"}
        )
    assert (status, orjson.loads(body)) == (503, {"status": "degraded", "sessions": 1})


# Host (DNS rebinding): a page that points its own name at 127.0.0.1 sends that name in Host.


@pytest.mark.parametrize("path", ["/healthz", "/acp", "/other"])
async def test_a_foreign_host_gets_421_on_every_path_of_a_loopback_server(
    start_server: StartServer, path: str
) -> None:
    server = await start_server(health=lambda: {"version": "9.9.9"})
    async with asyncio.timeout(5):
        for host in (f"evil.example:{server.port}", "evil.example", "10.0.0.1", "127.0.0.1.evil"):
            status, _, body = await http_get(server.port, path, host=host)
            assert status == 421, host
            assert b"9.9.9" not in body


async def test_a_rebinding_page_cannot_open_the_websocket(start_server: StartServer) -> None:
    server = await start_server()
    async with asyncio.timeout(5):
        # What a browser does once evil.example resolves to 127.0.0.1: connect there, Host evil.
        await expect_status(
            f"ws://evil.example:{server.port}/acp", 421, host="127.0.0.1", port=server.port
        )
        assert await round_trip(f"ws://localhost:{server.port}/acp") is None


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.0.0.1:1",
        "127.9.8.7:80",
        "localhost",
        "LocalHost.:8765",
        "[::1]:9",
        "[::ffff:127.0.0.1]",
    ],
)
async def test_loopback_host_names_are_accepted_on_any_port(
    start_server: StartServer, host: str
) -> None:
    server = await start_server()
    async with asyncio.timeout(5):
        status, _, _ = await http_get(server.port, "/healthz", host=host)
    assert status == 200


async def test_allowed_hosts_are_accepted_on_a_loopback_server(start_server: StartServer) -> None:
    server = await start_server(allowed_hosts=("ide.example", "Proxy.Example:443", "fd00::1"))
    expected = {
        "ide.example": 200,
        "IDE.example.:8080": 200,
        "proxy.example:443": 200,
        "proxy.example": 421,
        "proxy.example:80": 421,
        "[fd00::1]:8765": 200,
        "localhost:1": 200,
        "evil.example": 421,
    }
    async with asyncio.timeout(5):
        for host, status in expected.items():
            assert (await http_get(server.port, "/healthz", host=host))[0] == status, host
        assert (
            await round_trip(
                f"ws://ide.example:{server.port}/acp", host="127.0.0.1", port=server.port
            )
            is None
        )


async def test_a_server_bound_beyond_loopback_accepts_any_host_unless_hosts_are_listed(
    start_server: StartServer,
) -> None:
    anywhere = await start_server(host="0.0.0.0", insecure=True)
    listed = await start_server(host="0.0.0.0", insecure=True, allowed_hosts=("bridge.example",))
    async with asyncio.timeout(5):
        assert (await http_get(anywhere.port, "/healthz", host="any.example:1"))[0] == 200
        assert (await http_get(listed.port, "/healthz", host="bridge.example:1"))[0] == 200
        assert (await http_get(listed.port, "/healthz", host="localhost"))[0] == 200
        assert (await http_get(listed.port, "/healthz", host="any.example"))[0] == 421


@pytest.mark.parametrize(
    ("host", "headers"),
    [(None, {}), ("127.0.0.1", {"Host": "127.0.0.1"}), ("127.0.0.1:x", {}), ("a@127.0.0.1", {})],
)
async def test_a_missing_repeated_or_invalid_host_is_400(
    start_server: StartServer, host: str | None, headers: dict[str, str]
) -> None:
    server = await start_server(host="0.0.0.0", insecure=True)
    async with asyncio.timeout(5):
        status, _, _ = await http_get(server.port, "/healthz", host=host, headers=headers)
    assert status == 400


# Authentication


async def test_missing_token_is_401(start_server: StartServer) -> None:
    server = await start_server(token=TOKEN)
    async with asyncio.timeout(5):
        await expect_status(server.url, 401)
        status, headers, body = await http_get(server.port, "/acp")
    assert status == 401
    assert headers["www-authenticate"] == "Bearer"
    assert body == b"Missing or invalid bearer token\n"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"additional_headers": {"Authorization": "Bearer wrong"}},
        {"additional_headers": {"Authorization": f"Basic {TOKEN}"}},
        {"additional_headers": {"Authorization": f"Bearer {TOKEN}x"}},
        {"subprotocols": ["acp.v1", "acp.bearer.wrong"]},
        {"subprotocols": ["acp.v1"]},
    ],
    ids=["wrong-token", "wrong-scheme", "token-prefix", "wrong-subprotocol", "no-bearer-entry"],
)
async def test_wrong_token_is_401(start_server: StartServer, kwargs: dict[str, object]) -> None:
    server = await start_server(token=TOKEN)
    async with asyncio.timeout(5):
        await expect_status(server.url, 401, **kwargs)


async def test_token_in_authorization_header(start_server: StartServer) -> None:
    server = await start_server(token=TOKEN)
    async with asyncio.timeout(5):
        headers = {"Authorization": f"bearer {TOKEN}"}
        assert await round_trip(server.url, additional_headers=headers) is None


async def test_token_in_subprotocol_selects_acp_v1_when_offered(
    start_server: StartServer, recorder: Recorder
) -> None:
    server = await start_server(recorder, token=TOKEN)
    async with asyncio.timeout(5):
        offered = ["acp.bearer." + TOKEN, "acp.v1"]
        async with connect(server.url, subprotocols=offered) as ws:  # type: ignore[arg-type]
            assert ws.subprotocol == "acp.v1"
            _, info = await recorder.connections.get()
    assert info.subprotocol == "acp.v1"


async def test_token_in_subprotocol_alone_is_echoed_but_not_given_to_the_handler(
    start_server: StartServer, recorder: Recorder
) -> None:
    server = await start_server(recorder, token=TOKEN)
    async with asyncio.timeout(5):
        offered = ["acp.bearer." + TOKEN]
        async with connect(server.url, subprotocols=offered) as ws:  # type: ignore[arg-type]
            assert ws.subprotocol == "acp.bearer." + TOKEN
            _, info = await recorder.connections.get()
    assert info.subprotocol == "acp.bearer"


async def test_no_subprotocol_offered_none_selected(start_server: StartServer) -> None:
    server = await start_server()
    async with asyncio.timeout(5):
        assert await round_trip(server.url) is None
        assert await round_trip(server.url, subprotocols=["acp.v1"]) == "acp.v1"


# Origin


async def test_origin_rules(start_server: StartServer) -> None:
    server = await start_server(allowed_origins=("https://app.example",))
    async with asyncio.timeout(5):
        await expect_status(server.url, 403, origin="https://evil.example")
        await expect_status(server.url, 403, origin="https://app.example:443")
        assert await round_trip(server.url, origin="https://app.example") is None
        assert await round_trip(server.url) is None


async def test_origin_is_checked_before_the_token(start_server: StartServer) -> None:
    server = await start_server(token=TOKEN)
    async with asyncio.timeout(5):
        headers = {"Authorization": f"Bearer {TOKEN}"}
        await expect_status(server.url, 403, origin="https://evil.example")
        await expect_status(
            server.url, 403, origin="https://evil.example", additional_headers=headers
        )


# Connection lifecycle


async def test_connection_id_header_matches_connection_info(
    start_server: StartServer, recorder: Recorder
) -> None:
    server = await start_server(recorder)
    async with asyncio.timeout(5), connect(server.url, user_agent_header="probe/1") as ws:
        assert ws.response is not None
        connection_id = ws.response.headers[CONNECTION_ID_HEADER]
        _, info = await recorder.connections.get()
        assert server.connection_count == 1
    assert len(connection_id) == 32
    int(connection_id, 16)
    assert info == ConnectionInfo(
        connection_id=connection_id,
        remote=info.remote,
        origin=None,
        user_agent="probe/1",
        subprotocol=None,
    )
    assert info.remote.startswith("127.0.0.1:")
    assert ws.response.headers["Server"].startswith("acp-bridge/")


async def test_an_open_connection_keeps_its_info_but_not_the_handshake_headers(
    start_server: StartServer, recorder: Recorder
) -> None:
    # Issue 10 (idle memory): the headers are read into ConnectionInfo, then freed.
    server = await start_server(recorder, allowed_origins=("https://app.example",))
    async with (
        asyncio.timeout(5),
        connect(server.url, user_agent_header="probe/2", origin="https://app.example") as ws,
    ):
        transport, info = await recorder.connections.get()
        await ws.send(dumps({"ping": 1}))
        assert await recorder.received.get() == {"ping": 1}
        connection = transport.connection  # type: ignore[attr-defined]
        assert connection.request is not None  # the library's "handshake done" marker
        assert not connection.request.headers
        assert connection.response is None
        assert vars(connection).keys().isdisjoint({"connection_id", "principal", "mounted"})
        assert connection.connection_id == info.connection_id
    assert (info.origin, info.user_agent) == ("https://app.example", "probe/2")
    assert not hasattr(info, "__dict__")  # held for the connection's lifetime: slots


async def test_each_connection_gets_its_own_id(
    start_server: StartServer, recorder: Recorder
) -> None:
    server = await start_server(recorder)
    async with asyncio.timeout(5), connect(server.url), connect(server.url):
        _, first = await recorder.connections.get()
        _, second = await recorder.connections.get()
    assert first.connection_id != second.connection_id


async def test_handler_return_closes_1000(start_server: StartServer) -> None:
    async def hang_up(transport: Transport, info: ConnectionInfo) -> None:
        return None

    server = await start_server(hang_up)
    async with asyncio.timeout(5), connect(server.url) as ws:
        await ws.wait_closed()
    assert ws.close_code == 1000


async def test_handler_exception_is_logged_and_closes_1011(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = await start_server()
    with caplog.at_level(logging.ERROR, logger="acp_bridge.transports.websocket_server"):
        async with asyncio.timeout(5), connect(server.url) as ws:
            await ws.send(dumps({"raise": True}))
            with pytest.raises(ConnectionClosed):
                await ws.recv()
    assert ws.close_code == 1011
    [record] = [r for r in caplog.records if r.name == "acp_bridge.transports.websocket_server"]
    assert record.exc_info is not None
    assert "handler failed on purpose" in str(record.exc_info[1])


async def test_server_close_sends_1001_and_waits_for_handlers(
    start_server: StartServer, recorder: Recorder
) -> None:
    server = await start_server(recorder)
    async with asyncio.timeout(5), connect(server.url) as a, connect(server.url) as b:
        await recorder.connections.get()
        await recorder.connections.get()
        assert server.connection_count == 2
        await server.close()
        await server.close()  # idempotent
        assert server.connection_count == 0
        await a.wait_closed()
        await b.wait_closed()
        # Both handlers saw the end of their stream before close() returned.
        assert recorder.received.qsize() == 2
    assert (a.close_code, b.close_code) == (1001, 1001)


async def test_server_close_cancels_a_handler_that_does_not_return(
    start_server: StartServer,
) -> None:
    cancelled = asyncio.Event()

    async def stubborn(transport: Transport, info: ConnectionInfo) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    server = await start_server(stubborn)
    async with asyncio.timeout(5), connect(server.url) as ws:
        await server.close(grace=0.2)
        assert cancelled.is_set()
        await ws.wait_closed()
    assert ws.close_code == 1001


async def test_serve_forever_returns_after_close(start_server: StartServer) -> None:
    server = await start_server()
    async with asyncio.timeout(5):
        forever = asyncio.create_task(server.serve_forever())
        assert await round_trip(server.url) is None
        await server.close()
        await forever


async def test_context_manager_and_url() -> None:
    config = WebSocketServerConfig(port=0, path="/custom")
    async with asyncio.timeout(5), WebSocketServer(config, echo_handler) as server:
        assert server.url == f"ws://127.0.0.1:{server.port}/custom"
        assert server.host == "127.0.0.1"
        assert await round_trip(server.url) is None


# Binding


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.com", ""])
async def test_non_loopback_without_token_is_refused(host: str) -> None:
    server = WebSocketServer(WebSocketServerConfig(host=host, port=0), echo_handler)
    with pytest.raises(InsecureBindError, match="without a token"):
        await server.start()


@pytest.mark.parametrize("extra", [{"token": TOKEN}, {"insecure": True}])
async def test_non_loopback_with_token_or_insecure_binds(extra: dict[str, object]) -> None:
    config = WebSocketServerConfig(host="0.0.0.0", port=0, **extra)  # type: ignore[arg-type]
    async with asyncio.timeout(5), WebSocketServer(config, echo_handler) as server:
        assert server.port > 0


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.1", False),
        ("localhost.example.com", False),
    ],
)
def test_is_loopback_host(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


@pytest.mark.parametrize(
    "kwargs",
    [
        {"token": ""},
        {"path": "acp"},
        {"path": "/healthz"},
        {"max_message_bytes": 0},
        {"allowed_hosts": ("a.example:x",)},
        {"allowed_hosts": ("user@a.example",)},
        {"allowed_hosts": ("",)},
    ],
)
def test_invalid_config_is_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        WebSocketServerConfig(**kwargs)  # type: ignore[arg-type]


class _ClosedConnections(logging.Handler):
    """Records websockets' per-connection lines and signals each "connection closed"."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.closed: asyncio.Queue[int] = asyncio.Queue()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        if record.getMessage() == "connection closed":
            self.closed.put_nowait(record.levelno)


async def test_healthz_logs_at_debug_other_responses_at_info(start_server: StartServer) -> None:
    # A load balancer probing every few seconds must not fill the log (issue 15).
    server = await start_server()
    recorded = _ClosedConnections()
    websockets_logger = logging.getLogger("websockets.server")
    previous = websockets_logger.level
    websockets_logger.addHandler(recorded)
    websockets_logger.setLevel(logging.DEBUG)
    try:
        async with asyncio.timeout(10):
            status, _, _ = await http_get(server.port, "/healthz")
            assert status == 200
            assert await recorded.closed.get() == logging.DEBUG
            health_lines = list(recorded.records)
            status, _, _ = await http_get(server.port, "/elsewhere")
            assert status == 404
            assert await recorded.closed.get() == logging.INFO
    finally:
        websockets_logger.removeHandler(recorded)
        websockets_logger.setLevel(previous)
    assert [r.getMessage() for r in health_lines if r.levelno >= logging.INFO] == []
    assert any(r.getMessage().startswith("HTTP response sent (200") for r in health_lines)
