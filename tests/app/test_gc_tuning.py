"""GC tuning: what tune_gc does to the collector, and who asks for it (the CLI, not embedders)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest

from acp_bridge.agents.demo import DemoBackend
from acp_bridge.app import BridgeServer, ServerOptions, server, tune_gc
from acp_bridge.cli import main as cli_main


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_tune_gc_freezes_the_startup_heap_and_raises_the_young_threshold(restored_gc: None) -> None:
    _, gen1, gen2 = gc.get_threshold()
    tune_gc()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (server.GC_GEN0_THRESHOLD, gen1, gen2)


async def test_the_server_tunes_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bool] = []
    monkeypatch.setattr(server, "tune_gc", lambda: calls.append(True))
    for tune in (False, True):
        options = ServerOptions(port=0, event_log="memory", inspector=False, tune_gc=tune)
        async with BridgeServer(DemoBackend(), options):
            pass
    assert calls == [True]


def test_acp_bridge_serve_asks_for_it(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []

    class Stop(Exception):
        pass

    def capture(backend: Any, options: ServerOptions) -> Any:
        seen.append(options)
        raise Stop

    monkeypatch.setattr("acp_bridge.app.BridgeServer", capture)
    with pytest.raises(Stop):
        cli_main.main(["serve", "--port", "0", "--event-log", "memory"])
    assert [options.tune_gc for options in seen] == [True]
