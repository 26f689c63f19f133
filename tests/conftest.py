"""Session-wide fixtures: stop the shared redis-server if a test started it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.redis_server import stop_redis_server


@pytest.fixture(scope="session", autouse=True)
def _shared_redis_server() -> Iterator[None]:
    yield
    stop_redis_server()
