"""The JSON-RPC peer over an in-memory transport pair: dispatch, errors, correlation, cancellation."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import weakref
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from acp_bridge.rpc.errors import InvalidParams, MethodNotFound, RequestTimeout, ResourceNotFound
from acp_bridge.rpc.peer import JsonRpcPeer, PeerClosed, Reply, RequestContext
from acp_bridge.rpc.transport import CloseReason, MemoryTransport, memory_transport_pair


class Client:
    """The raw other end: sends bytes/objects, reads decoded messages with a timeout."""

    def __init__(self, transport: MemoryTransport) -> None:
        self.t = transport

    async def send(self, message: Any) -> None:
        await self.t.send(message)

    async def send_raw(self, data: bytes) -> None:
        await self.t.send_raw(data)

    async def recv(self) -> Any:
        async with asyncio.timeout(5):
            return await self.t.receive()

    async def call(self, method: str, params: Any = None, request_id: Any = 1) -> Any:
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        await self.send(message)
        return await self.recv()


@pytest.fixture
async def pair() -> AsyncIterator[tuple[JsonRpcPeer, Client]]:
    server_side, client_side = memory_transport_pair()
    peer = JsonRpcPeer(server_side, name="test")
    gate = asyncio.Event()

    async def echo(params: dict[str, Any], ctx: RequestContext) -> Any:
        return {"echo": params}

    async def fail(params: dict[str, Any], ctx: RequestContext) -> Any:
        raise ResourceNotFound("no such session", data={"sessionId": params.get("sessionId")})

    async def crash(params: dict[str, Any], ctx: RequestContext) -> Any:
        raise ValueError("secret internals")

    async def slow(params: dict[str, Any], ctx: RequestContext) -> Any:
        await gate.wait()
        return "done"

    async def with_after(params: dict[str, Any], ctx: RequestContext) -> Any:
        return Reply({"ok": True}, then=lambda: ctx.peer.notify("after", {"n": 1}))

    seen: list[dict[str, Any]] = []

    async def note(params: dict[str, Any]) -> None:
        seen.append(params)

    peer.add_method("echo", echo)
    peer.add_method("fail", fail)
    peer.add_method("crash", crash)
    peer.add_method("slow", slow)
    peer.add_method("with_after", with_after)
    peer.add_notification("note", note)
    peer.seen = seen  # type: ignore[attr-defined]
    peer.gate = gate  # type: ignore[attr-defined]
    task = asyncio.create_task(peer.run())
    yield peer, Client(client_side)
    gate.set()
    await client_side.close()
    async with asyncio.timeout(5):
        await task


async def test_request_response(pair: tuple[JsonRpcPeer, Client]) -> None:
    _, client = pair
    reply = await client.call("echo", {"a": 1, "unknownField": [1]}, request_id="abc")
    assert reply == {
        "jsonrpc": "2.0",
        "id": "abc",
        "result": {"echo": {"a": 1, "unknownField": [1]}},
    }


class _Params(dict[str, Any]):
    """A dict a test can hold a weak reference to."""


class WeakParamsTransport(MemoryTransport):
    """Hands up every request's params as a :class:`_Params` and keeps a weak reference to it."""

    def __init__(self, inbox: Any, outbox: Any) -> None:
        super().__init__(inbox, outbox)
        self.params: list[weakref.ref[_Params]] = []

    async def receive(self) -> Any:
        message = await super().receive()
        if isinstance(message, dict) and isinstance(message.get("params"), dict):
            message["params"] = params = _Params(message["params"])
            self.params.append(weakref.ref(params))
        return message


async def test_an_idle_peer_does_not_hold_the_last_request() -> None:
    # Issue 10 (idle memory): the receive loop drops a message once it is dispatched.
    server_side, client_side = memory_transport_pair()
    transport = WeakParamsTransport(server_side._inbox, server_side._outbox)
    peer = JsonRpcPeer(transport, name="test")

    async def echo(params: dict[str, Any], ctx: RequestContext) -> Any:
        return {"n": params["n"]}

    peer.add_method("echo", echo)
    peer.add_method("inline_echo", echo, inline=True)
    task = asyncio.create_task(peer.run())
    client = Client(client_side)
    try:
        assert (await client.call("echo", {"n": 1}))["result"] == {"n": 1}
        assert (await client.call("inline_echo", {"n": 2}, request_id=2))["result"] == {"n": 2}
        gc.collect()
        assert [ref() for ref in transport.params] == [None, None]
        # Nor the table its finished requests grew.
        assert sys.getsizeof(peer._inflight) == sys.getsizeof({})
        # Still serving afterwards.
        assert (await client.call("echo", {"n": 3}, request_id=3))["result"] == {"n": 3}
    finally:
        await client_side.close()
        async with asyncio.timeout(5):
            await task


async def test_missing_params_is_an_empty_object(pair: tuple[JsonRpcPeer, Client]) -> None:
    _, client = pair
    assert (await client.call("echo"))["result"] == {"echo": {}}


async def test_positional_params_are_invalid(pair: tuple[JsonRpcPeer, Client]) -> None:
    _, client = pair
    reply = await client.call("echo", [1, 2])
    assert reply["error"]["code"] == InvalidParams.code


async def test_unknown_method(pair: tuple[JsonRpcPeer, Client]) -> None:
    _, client = pair
    for method in ("nope", "_vendor/custom", "session/fork"):
        reply = await client.call(method, {})
        assert reply["error"]["code"] == MethodNotFound.code
        assert reply["error"]["message"] == "Method not found"


async def test_named_errors_keep_their_code(pair: tuple[JsonRpcPeer, Client]) -> None:
    _, client = pair
    reply = await client.call("fail", {"sessionId": "s9"})
    assert reply["error"] == {
        "code": -32002,
        "message": "no such session",
        "data": {"sessionId": "s9"},
    }


async def test_internal_errors_carry_no_traceback(
    pair: tuple[JsonRpcPeer, Client], caplog: pytest.LogCaptureFixture
) -> None:
    _, client = pair
    reply = await client.call("crash", {})
    assert reply["error"]["code"] == -32603
    assert reply["error"]["message"] == "Internal error"
    assert reply["error"]["data"] == {"detail": "ValueError: secret internals"}
    assert "Traceback" not in orjson.dumps(reply).decode()
    assert "Traceback" in caplog.text  # the full trace is in the log


async def test_parse_error(pair: tuple[JsonRpcPeer, Client]) -> None:
    _, client = pair
    await client.send_raw(b"{not json")
    reply = await client.recv()
    assert reply["id"] is None
    assert reply["error"]["code"] == -32700


async def test_a_json_null_message_is_an_invalid_request_not_the_end_of_stream(
    pair: tuple[JsonRpcPeer, Client],
) -> None:
    # Issue 9: the decoded null was taken for the transport's end of stream.
    peer, client = pair
    await client.send_raw(b"null")
    reply = await client.recv()
    assert reply["id"] is None
    assert reply["error"]["code"] == -32600
    assert (await client.call("echo", {}, request_id=2))["id"] == 2
    assert not peer.closed


@pytest.mark.parametrize(
    "message",
    [
        [{"jsonrpc": "2.0", "id": 1, "method": "echo"}],
        "string",
        42,
        {"jsonrpc": "1.0", "id": 3, "method": "echo"},
        {"jsonrpc": "2.0", "id": 3},
        {"jsonrpc": "2.0", "id": 3, "method": 7},
        {"jsonrpc": "2.0", "id": {"x": 1}, "method": "echo"},
        {"jsonrpc": "2.0", "id": 3, "method": "echo", "params": "nope"},
    ],
)
async def test_invalid_requests(pair: tuple[JsonRpcPeer, Client], message: Any) -> None:
    _, client = pair
    await client.send(message)
    reply = await client.recv()
    assert reply["error"]["code"] == -32600


async def test_batch_gets_one_invalid_request_with_null_id(
    pair: tuple[JsonRpcPeer, Client],
) -> None:
    _, client = pair
    await client.send(
        [
            {"jsonrpc": "2.0", "id": 1, "method": "echo"},
            {"jsonrpc": "2.0", "id": 2, "method": "echo"},
        ]
    )
    reply = await client.recv()
    assert reply["id"] is None
    assert "Batch" in reply["error"]["message"]
    # The connection stays usable.
    assert (await client.call("echo", {}, request_id=3))["id"] == 3


async def test_notifications_run_and_unknown_ones_are_ignored(
    pair: tuple[JsonRpcPeer, Client],
) -> None:
    peer, client = pair
    await client.send({"jsonrpc": "2.0", "method": "unknown/notification", "params": {}})
    await client.send({"jsonrpc": "2.0", "method": "note", "params": {"x": 1}})
    # No response to either; the next request's reply is the next message.
    assert (await client.call("echo", {"y": 2}, request_id=7))["id"] == 7
    assert peer.seen == [{"x": 1}]  # type: ignore[attr-defined]


async def test_reply_callback_runs_after_the_response(pair: tuple[JsonRpcPeer, Client]) -> None:
    _, client = pair
    reply = await client.call("with_after", {})
    assert reply["result"] == {"ok": True}
    assert await client.recv() == {"jsonrpc": "2.0", "method": "after", "params": {"n": 1}}


async def test_a_slow_request_does_not_block_others(pair: tuple[JsonRpcPeer, Client]) -> None:
    peer, client = pair
    await client.send({"jsonrpc": "2.0", "id": "slow", "method": "slow"})
    assert (await client.call("echo", {}, request_id="fast"))["id"] == "fast"
    peer.gate.set()  # type: ignore[attr-defined]
    assert await client.recv() == {"jsonrpc": "2.0", "id": "slow", "result": "done"}


async def test_cancel_request_answers_minus_32800(pair: tuple[JsonRpcPeer, Client]) -> None:
    _, client = pair
    await client.send({"jsonrpc": "2.0", "id": 41, "method": "slow"})
    await client.send({"jsonrpc": "2.0", "method": "$/cancel_request", "params": {"requestId": 41}})
    reply = await client.recv()
    assert reply == {
        "jsonrpc": "2.0",
        "id": 41,
        "error": {"code": -32800, "message": "Request cancelled"},
    }


async def test_outbound_request_correlates_responses(pair: tuple[JsonRpcPeer, Client]) -> None:
    peer, client = pair
    first = asyncio.create_task(peer.request("fs/read_text_file", {"path": "/a"}))
    second = asyncio.create_task(peer.request("fs/read_text_file", {"path": "/b"}))
    m1, m2 = await client.recv(), await client.recv()
    assert m1["params"] == {"path": "/a"}
    assert m1["id"] != m2["id"]
    # Answer out of order.
    await client.send({"jsonrpc": "2.0", "id": m2["id"], "result": {"content": "B"}})
    await client.send(
        {"jsonrpc": "2.0", "id": m1["id"], "error": {"code": -32002, "message": "gone"}}
    )
    async with asyncio.timeout(5):
        assert await second == {"content": "B"}
        with pytest.raises(Exception, match="gone") as info:
            await first
    assert getattr(info.value, "code", None) == -32002


@pytest.mark.parametrize("odd_id", [{"x": 1}, [1], [], {}, True, 1.0])
async def test_unhashable_or_odd_response_ids_are_ignored_not_fatal(
    pair: tuple[JsonRpcPeer, Client], caplog: pytest.LogCaptureFixture, odd_id: Any
) -> None:
    # Issue 9: an object/array id raised "unhashable type" in the receive loop (1011 on WebSocket);
    # true and 1.0 hash like 1, so they answered our request 1 although no such id was sent.
    peer, client = pair
    waiting = asyncio.create_task(peer.request("fs/read_text_file", {"path": "/a"}))
    sent = await client.recv()
    assert sent["id"] == 1
    caplog.set_level(logging.DEBUG, logger="acp_bridge.rpc.peer")
    await client.send({"jsonrpc": "2.0", "id": odd_id, "result": {"content": "forged"}})
    # The connection survives, and nothing answers the odd response.
    assert (await client.call("echo", {}, request_id="next"))["id"] == "next"
    assert not waiting.done()
    assert [r.levelno for r in caplog.records if "unknown request id" in r.getMessage()] == [
        logging.DEBUG
    ]
    await client.send({"jsonrpc": "2.0", "id": 1, "result": {"content": "real"}})
    async with asyncio.timeout(5):
        assert await waiting == {"content": "real"}


@pytest.mark.parametrize("odd_id", [{"x": 1}, [41], True])
async def test_cancel_request_with_an_unhashable_or_odd_request_id_is_ignored(
    pair: tuple[JsonRpcPeer, Client], odd_id: Any
) -> None:
    # The same unhashable lookup sat in $/cancel_request handling; true would cancel request 1.
    peer, client = pair
    await client.send({"jsonrpc": "2.0", "id": 1, "method": "slow"})
    await client.send(
        {"jsonrpc": "2.0", "method": "$/cancel_request", "params": {"requestId": odd_id}}
    )
    assert (await client.call("echo", {}, request_id="next"))["id"] == "next"
    peer.gate.set()  # type: ignore[attr-defined]
    assert await client.recv() == {"jsonrpc": "2.0", "id": 1, "result": "done"}


async def test_outbound_timeout_sends_cancel_request(pair: tuple[JsonRpcPeer, Client]) -> None:
    peer, client = pair
    task = asyncio.create_task(peer.request("session/request_permission", {}, timeout=0.05))
    sent = await client.recv()
    with pytest.raises(RequestTimeout):
        async with asyncio.timeout(5):
            await task
    cancel = await client.recv()
    assert cancel == {
        "jsonrpc": "2.0",
        "method": "$/cancel_request",
        "params": {"requestId": sent["id"]},
    }
    # A late answer is ignored.
    await client.send({"jsonrpc": "2.0", "id": sent["id"], "result": {}})
    assert (await client.call("echo", {}, request_id=99))["id"] == 99


async def test_cancelling_the_waiter_sends_cancel_request(pair: tuple[JsonRpcPeer, Client]) -> None:
    peer, client = pair
    task = asyncio.create_task(peer.request("terminal/wait_for_exit", {}))
    sent = await client.recv()
    task.cancel()
    assert (await client.recv())["params"] == {"requestId": sent["id"]}


async def test_pending_requests_fail_when_the_connection_ends() -> None:
    server_side, client_side = memory_transport_pair()
    peer = JsonRpcPeer(server_side)
    run = asyncio.create_task(peer.run())
    waiting = asyncio.create_task(peer.request("x", {}))
    async with asyncio.timeout(5):
        await client_side.receive()
        await client_side.close()
        with pytest.raises(PeerClosed):
            await waiting
        await run
    assert peer.closed


class StuckTransport(MemoryTransport):
    """A transport whose client does not read until ``release`` is set."""

    release: asyncio.Event

    async def send(self, message: Any) -> None:
        await self.release.wait()
        await super().send(message)


def stuck_pair() -> tuple[StuckTransport, MemoryTransport]:
    server_side, client_side = memory_transport_pair()
    stuck = StuckTransport(server_side._inbox, server_side._outbox)
    stuck.release = asyncio.Event()
    return stuck, client_side


async def test_a_burst_past_the_limit_is_not_a_slow_client() -> None:
    stuck, client_side = stuck_pair()
    peer = JsonRpcPeer(stuck, outbox_limit=10, slow_client_grace=30)
    run = asyncio.create_task(peer.run())
    assert all(peer.notify("session/update", {"n": i}) for i in range(50))
    stuck.release.set()  # the client catches up well within the grace period
    client = Client(client_side)
    assert [(await client.recv())["params"]["n"] for _ in range(50)] == list(range(50))
    assert peer.close_reason is None
    await client_side.close()
    async with asyncio.timeout(5):
        await run


async def test_a_client_that_stays_behind_is_disconnected_without_more_sends() -> None:
    stuck, client_side = stuck_pair()
    peer = JsonRpcPeer(stuck, outbox_limit=10, slow_client_grace=0.05)
    run = asyncio.create_task(peer.run())
    assert all(peer.notify("session/update", {"n": i}) for i in range(50))
    async with asyncio.timeout(5):
        await peer.wait_closed()  # the grace timer fired: nothing else was sent
    assert peer.close_reason is CloseReason.TRY_AGAIN_LATER
    assert not peer.notify("session/update", {"n": 50})
    stuck.release.set()
    await client_side.close()
    async with asyncio.timeout(5):
        await run


async def test_too_many_bytes_waiting_disconnects_at_once() -> None:
    stuck, client_side = stuck_pair()
    peer = JsonRpcPeer(stuck, outbox_limit=10_000, slow_client_grace=30, outbox_max_bytes=10_000)
    run = asyncio.create_task(peer.run())
    frame = b'{"jsonrpc":"2.0","method":"x","params":"' + b"y" * 3000 + b'"}'
    sent = [peer.send(frame) for _ in range(5)]
    assert sent[:3] == [True, True, True]
    assert sent[3:] == [False, False]
    assert peer.close_reason is CloseReason.TRY_AGAIN_LATER
    stuck.release.set()
    await client_side.close()
    async with asyncio.timeout(5):
        await run


async def test_send_wait_waits_for_room_instead_of_overflowing() -> None:
    stuck, client_side = stuck_pair()
    peer = JsonRpcPeer(stuck, outbox_limit=4, slow_client_grace=30)
    run = asyncio.create_task(peer.run())

    async def bulk() -> list[bool]:
        return [
            await peer.send_wait({"jsonrpc": "2.0", "method": "m", "params": i}) for i in range(40)
        ]

    sender = asyncio.create_task(bulk())
    stuck.release.set()
    client = Client(client_side)
    received = [(await client.recv())["params"] for _ in range(40)]
    async with asyncio.timeout(5):
        assert all(await sender)
    assert received == list(range(40))
    assert peer.close_reason is None
    await client_side.close()
    async with asyncio.timeout(5):
        await run


async def test_inline_methods_run_in_arrival_order() -> None:
    server_side, client_side = memory_transport_pair()
    peer = JsonRpcPeer(server_side)
    order: list[str] = []

    async def first(params: dict[str, Any], ctx: RequestContext) -> Any:
        await asyncio.sleep(0)  # yields, but the next message is not read until this returns
        order.append("first")
        return None

    async def second(params: dict[str, Any], ctx: RequestContext) -> Any:
        order.append("second")
        return None

    peer.add_method("first", first, inline=True)
    peer.add_method("second", second)
    run = asyncio.create_task(peer.run())
    client = Client(client_side)
    await client.send({"jsonrpc": "2.0", "id": 1, "method": "first"})
    await client.send({"jsonrpc": "2.0", "id": 2, "method": "second"})
    assert [(await client.recv())["id"], (await client.recv())["id"]] == [1, 2]
    assert order == ["first", "second"]
    await client_side.close()
    async with asyncio.timeout(5):
        await run


async def test_send_wait_on_a_reader_that_never_reads_ends_after_the_grace_period() -> None:
    stuck, client_side = stuck_pair()  # never released: nothing is ever taken off the socket
    peer = JsonRpcPeer(stuck, outbox_limit=4, slow_client_grace=0.05)
    run = asyncio.create_task(peer.run())

    async def bulk() -> list[bool]:
        return [
            await peer.send_wait({"jsonrpc": "2.0", "method": "m", "params": i}) for i in range(40)
        ]

    async with asyncio.timeout(5):
        sent = await bulk()
    assert sent[:5] == [True] * 5  # one in the writer's hands, four waiting
    assert not any(sent[6:])
    assert peer.close_reason is CloseReason.TRY_AGAIN_LATER
    stuck.release.set()
    await client_side.close()
    async with asyncio.timeout(5):
        await run


class _Stdio:
    """A transport like stdio's: the end of the input (``None``) leaves the output open."""

    output_outlives_input = True

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[Any] = asyncio.Queue()
        self.sent: asyncio.Queue[Any] = asyncio.Queue()
        self.closed = False

    async def send(self, message: Any) -> None:
        if self.closed:
            raise ConnectionError("closed")
        await self.sent.put(orjson.loads(message) if isinstance(message, bytes) else message)

    async def receive(self) -> Any:
        return await self.inbox.get()

    async def close(self, reason: CloseReason = CloseReason.NORMAL, detail: str = "") -> None:
        self.closed = True


async def test_requests_read_before_the_input_ended_are_still_answered() -> None:
    transport = _Stdio()
    peer = JsonRpcPeer(transport, name="stdio", eof_grace=30)
    release = asyncio.Event()
    refused = asyncio.Event()

    async def slow(params: dict[str, Any], ctx: RequestContext) -> Any:
        try:
            await ctx.peer.request("fs/read_text_file", {})
        except PeerClosed:  # nobody can answer once the input ended: at once, not at the timeout
            refused.set()
        await release.wait()
        return "late"

    peer.add_method("slow", slow)
    transport.inbox.put_nowait({"jsonrpc": "2.0", "id": 7, "method": "slow"})
    transport.inbox.put_nowait(None)
    run = asyncio.create_task(peer.run())
    async with asyncio.timeout(5):
        await refused.wait()
        release.set()
        answer = await transport.sent.get()
        while "method" in answer:  # the request, if it went out before the end was seen
            answer = await transport.sent.get()
        assert answer == {"jsonrpc": "2.0", "id": 7, "result": "late"}
        await run


async def test_after_the_eof_grace_what_is_unanswered_is_logged_and_answered_cancelled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    transport = _Stdio()
    peer = JsonRpcPeer(transport, name="stdio", eof_grace=0.2)

    async def never(params: dict[str, Any], ctx: RequestContext) -> Any:
        await asyncio.Event().wait()

    peer.add_method("never", never)
    transport.inbox.put_nowait({"jsonrpc": "2.0", "id": "x", "method": "never"})
    transport.inbox.put_nowait(None)
    with caplog.at_level(logging.WARNING, logger="acp_bridge.rpc.peer"):
        async with asyncio.timeout(5):
            await peer.run()
    answer = transport.sent.get_nowait()
    assert answer["id"] == "x"
    assert answer["error"]["code"] == -32800
    assert answer["error"]["data"] == {"reason": "input_ended"}
    assert "never (id 'x')" in caplog.text


async def test_a_transport_whose_end_is_final_does_not_wait() -> None:
    server_side, client_side = memory_transport_pair()
    peer = JsonRpcPeer(server_side, name="ws", eof_grace=30)
    started = asyncio.Event()

    async def never(params: dict[str, Any], ctx: RequestContext) -> Any:
        started.set()
        await asyncio.Event().wait()

    peer.add_method("never", never)
    run = asyncio.create_task(peer.run())
    await client_side.send({"jsonrpc": "2.0", "id": 1, "method": "never"})
    async with asyncio.timeout(5):
        await started.wait()
        await client_side.close()
        await run  # at once, not after 30 s


async def test_a_shared_method_table_serves_each_peer_its_own_target() -> None:
    from acp_bridge.rpc.peer import MethodTable

    table = MethodTable()

    async def who(target: Any, params: dict[str, Any], ctx: RequestContext) -> Any:
        return target

    table.add_method("who", who)
    pairs = [memory_transport_pair() for _ in range(2)]
    peers = [
        JsonRpcPeer(server, name=f"p{i}", table=table, target=f"conn-{i}")
        for i, (server, _) in enumerate(pairs)
    ]

    async def extra(params: dict[str, Any], ctx: RequestContext) -> Any:
        return "only mine"

    peers[0].add_method("extra", extra)  # a private copy: the table and the other peer keep theirs
    runs = [asyncio.create_task(peer.run()) for peer in peers]
    async with asyncio.timeout(5):
        for i, (_, client) in enumerate(pairs):
            await client.send({"jsonrpc": "2.0", "id": 1, "method": "who"})
            assert (await client.receive())["result"] == f"conn-{i}"
            await client.send({"jsonrpc": "2.0", "id": 2, "method": "extra"})
            answer = await client.receive()
            if i == 0:
                assert answer["result"] == "only mine"
            else:
                assert answer["error"]["code"] == -32601
        for _, client in pairs:
            await client.close()
        await asyncio.gather(*runs)
