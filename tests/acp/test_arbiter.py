"""The permission arbiter on its own, with fake controllers: each rule of decision 0011."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import pytest

from acp_bridge.acp.arbiter import Arbiter, Decision, Question
from acp_bridge.rpc.errors import RpcError
from acp_bridge.rpc.principal import Principal, Role
from acp_bridge.translate import Profile

ALLOW = {"outcome": {"outcome": "selected", "optionId": "allow"}}
REJECT = {"outcome": {"outcome": "selected", "optionId": "reject"}}


class FakeClient:
    """A participant whose requests the test answers by hand."""

    def __init__(self, name: str, role: Role = Role.CONTROLLER) -> None:
        self.connection_id = name
        self.principal = Principal(name, role)
        self.client_info: Mapping[str, Any] | None = None
        self.client_capabilities: Mapping[str, Any] = {}
        self.profile = Profile.STRICT
        self.closed = False
        self.asked: list[tuple[str, dict[str, Any], asyncio.Future[Any]]] = []
        self.withdrawn = 0
        self.changed = asyncio.Event()

    def attachment(self, session_id: str) -> None:
        return None

    def wants_extension(self, method: str) -> bool:
        return False

    async def request(
        self,
        method: str,
        params: Mapping[str, Any],
        *,
        timeout: float | None = None,
    ) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.asked.append((method, dict(params), future))
        self.changed.set()
        try:
            return await future
        except asyncio.CancelledError:
            self.withdrawn += 1
            raise

    async def question(self) -> asyncio.Future[Any]:
        """The future of the (last) copy this client was asked, once it was asked."""
        async with asyncio.timeout(2):
            while not self.asked:
                self.changed.clear()
                await self.changed.wait()
        return self.asked[-1][2]


def question() -> Question:
    def accept(result: Any) -> Any:
        outcome = result.get("outcome") if isinstance(result, dict) else None
        if isinstance(outcome, dict) and outcome.get("optionId") in {"allow", "reject"}:
            return outcome
        return None

    return Question(
        "session/request_permission",
        lambda p: {"sessionId": "s", "for": p.principal.name},
        accept,
        target={"toolCallId": "t1"},
    )


class Room:
    """The session side: who is attached, what was recorded."""

    def __init__(self, *clients: FakeClient, idle_timeout: float = 5.0) -> None:
        self.clients = list(clients)
        self.records: list[Decision] = []
        self.arbiter = Arbiter(
            "s", lambda: list(self.clients), idle_timeout=idle_timeout, record=self.records.append
        )

    async def settle(self) -> None:
        """Let done callbacks and cancellations run (bounded, event-driven: a few loop turns)."""
        for _ in range(5):
            await asyncio.sleep(0)


async def test_first_valid_answer_wins_and_the_other_copy_is_withdrawn() -> None:
    a, b = FakeClient("laptop"), FakeClient("phone")
    room = Room(a, b)
    ask = asyncio.create_task(room.arbiter.ask(question()))
    (await b.question()).set_result(ALLOW)
    async with asyncio.timeout(2):
        decision = await ask
    assert decision.answered_by is b
    assert decision.value == {
        "outcome": "selected",
        "optionId": "allow",
    }
    assert decision.reason == "first_valid_response"
    await room.settle()
    assert a.withdrawn == 1
    assert b.withdrawn == 0
    # Each was asked once, in its own copy.
    assert [params["for"] for _, params, _ in a.asked + b.asked] == ["laptop", "phone"]
    assert len(room.records) == 1
    assert room.records[0].answered_by is b


async def test_an_answer_in_the_same_loop_turn_as_the_winner_changes_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    a, b = FakeClient("laptop"), FakeClient("phone")
    room = Room(a, b)
    ask = asyncio.create_task(room.arbiter.ask(question()))
    first, second = await a.question(), await b.question()
    caplog.set_level(logging.DEBUG, logger="acp_bridge.acp.arbiter")
    first.set_result(REJECT)
    second.set_result(ALLOW)  # already answered when the arbiter withdraws it: a late answer
    async with asyncio.timeout(2):
        decision = await ask
    assert decision.answered_by is a
    assert decision.value["optionId"] == "reject"
    await room.settle()
    assert len(room.records) == 1
    assert "late answer to session/request_permission from phone ignored" in caplog.text


async def test_an_invalid_answer_is_ignored_and_another_controller_decides() -> None:
    a, b = FakeClient("laptop"), FakeClient("phone")
    room = Room(a, b)
    ask = asyncio.create_task(room.arbiter.ask(question()))
    (await a.question()).set_result({"outcome": {"outcome": "selected", "optionId": "bogus"}})
    await room.settle()
    assert not ask.done()
    (await b.question()).set_result(ALLOW)
    async with asyncio.timeout(2):
        decision = await ask
    assert decision.answered_by is b


async def test_when_every_controller_fails_it_ends_undecided_at_once() -> None:
    a = FakeClient("laptop")
    room = Room(a, idle_timeout=3600)
    ask = asyncio.create_task(room.arbiter.ask(question()))
    (await a.question()).set_exception(RpcError("nope", code=-32603))
    async with asyncio.timeout(2):
        decision = await ask
    assert not decision.decided
    assert decision.reason == "no_valid_response"
    assert room.records[0].reason == "no_valid_response"


async def test_a_controller_that_attaches_while_pending_is_asked_and_may_decide() -> None:
    room = Room(idle_timeout=3600)
    ask = asyncio.create_task(room.arbiter.ask(question()))
    await room.settle()
    assert room.arbiter.pending == 1
    late = FakeClient("tablet")
    room.clients.append(late)
    room.arbiter.offer(late)
    room.arbiter.offer(late)  # attaching twice does not ask twice
    (await late.question()).set_result(ALLOW)
    async with asyncio.timeout(2):
        decision = await ask
    assert decision.answered_by is late
    assert len(late.asked) == 1
    assert room.arbiter.pending == 0


async def test_with_no_controller_it_waits_for_the_timeout_then_ends_undecided() -> None:
    room = Room(idle_timeout=0.05)
    async with asyncio.timeout(2):
        decision = await room.arbiter.ask(question())
    assert not decision.decided
    assert decision.reason == "timeout"
    assert room.records[0].reason == "timeout"


async def test_the_timeout_starts_over_when_the_only_controller_leaves() -> None:
    a = FakeClient("laptop")
    room = Room(a, idle_timeout=0.05)
    ask = asyncio.create_task(room.arbiter.ask(question()))
    future = await a.question()
    a.closed = True
    room.clients.remove(a)
    future.set_exception(ConnectionError("gone"))
    async with asyncio.timeout(2):
        decision = await ask
    assert decision.reason == "timeout"


async def test_cancelling_the_question_withdraws_every_copy() -> None:
    a, b = FakeClient("laptop"), FakeClient("phone")
    room = Room(a, b)
    ask = asyncio.create_task(room.arbiter.ask(question()))
    await a.question()
    await b.question()
    ask.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(2):
            await ask
    await room.settle()
    assert (a.withdrawn, b.withdrawn) == (1, 1)
    assert room.records == []
    assert room.arbiter.pending == 0


async def test_observers_are_never_asked() -> None:
    watcher = FakeClient("dashboard", Role.OBSERVER)
    controller = FakeClient("laptop")
    room = Room(watcher, controller)
    ask = asyncio.create_task(room.arbiter.ask(question()))
    room.arbiter.offer(watcher)
    (await controller.question()).set_result(ALLOW)
    async with asyncio.timeout(2):
        await ask
    assert watcher.asked == []
