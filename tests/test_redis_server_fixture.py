"""The redis-server fixture's promise to CI: without the server, a test that needs it fails when
``ACP_BRIDGE_REQUIRE_EXTERNAL`` is set, and skips with the reason otherwise."""

from __future__ import annotations

import pytest

from tests.support import redis_server


def test_a_missing_redis_server_fails_when_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redis_server.shutil, "which", lambda name: None)
    monkeypatch.setenv("ACP_BRIDGE_REQUIRE_EXTERNAL", "1")
    with pytest.raises(pytest.fail.Exception, match="may not skip"):
        redis_server.require_redis_server()


def test_a_missing_redis_server_skips_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redis_server.shutil, "which", lambda name: None)
    monkeypatch.delenv("ACP_BRIDGE_REQUIRE_EXTERNAL", raising=False)
    with pytest.raises(pytest.skip.Exception, match="redis-server is not installed"):
        redis_server.require_redis_server()
