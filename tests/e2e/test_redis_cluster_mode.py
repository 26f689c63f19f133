"""Issue 13: the Redis layout is Cluster-safe: no command touches keys of two hash slots.

A redis-server in cluster mode refuses any command (or Lua script) whose keys hash to different slots
(CROSSSLOT), even when one node serves every slot. So the multi-node scenarios run here against a
one-node cluster holding all 16,384 slots: the shared event log, leases and fencing, the tail, the
command stream and the replies. (A real three-master cluster needs a cluster-aware client as well;
what this proves is that the commands themselves never cross slots.)
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator

import pytest
import redis

from acp_bridge.eventlog import LogRecord, RedisEventLog
from tests.support.redis_server import RedisServer, start_redis_server

from . import test_redis_nodes as nodes


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisServer]:
    server = start_redis_server(
        "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"
    )  # fmt: skip
    try:
        client = redis.Redis(host="127.0.0.1", port=server.port)
        client.execute_command("CLUSTER", "ADDSLOTSRANGE", "0", "16383")
        deadline = time.monotonic() + 10
        while b"cluster_state:ok" not in client.execute_command("CLUSTER", "INFO"):
            assert time.monotonic() < deadline, "the one-node cluster never became ok"
            threading.Event().wait(0.05)  # pacing the probe of the cluster's own cron
        # The server really refuses cross-slot commands (else this test could not fail).
        with pytest.raises(redis.ResponseError, match="hash to the same slot"):
            client.mget("{a}x", "{b}x")
        client.close()
        yield server
    finally:
        server.stop()


def spec_of(cluster: RedisServer) -> str:
    return f"{cluster.url}?namespace=c{secrets.token_hex(4)}&lease_ttl=2"


def test_leases_fencing_and_reads_on_a_cluster(cluster: RedisServer) -> None:
    namespace = "c" + secrets.token_hex(4)
    a = RedisEventLog(cluster.url, namespace=namespace, node_id="a")
    b = RedisEventLog(cluster.url, namespace=namespace, node_id="b")
    try:
        for log in (a, b):
            log.group_topics(("ev.",))
        assert a.claim("s") == 1
        assert [a.append("ev.s", LogRecord("k", i)) for i in range(3)] == [1, 2, 3]
        a.append("plain", LogRecord("k", 0))
        a.flush()
        assert [e.id for e in b.read_range("ev.s")] == [1, 2, 3]
        assert b.topics() == ["ev.s", "plain"]
        a.client.delete(f"{namespace}:{{s}}:owner")
        assert b.claim("s") == 2
        assert b.append("ev.s", LogRecord("k", 3)) == 4
        b.flush()
        a.append("ev.s", LogRecord("stale", 0))
        a.flush()
        assert a.failure is None
        assert b.failure is None
        assert [e.record.kind for e in b.read_range("ev.s")] == ["k"] * 4
    finally:
        a.close()
        b.close()


async def test_two_nodes_share_a_session_on_a_cluster(cluster: RedisServer) -> None:
    await nodes.test_a_session_made_on_one_node_loads_and_continues_on_the_other(spec_of(cluster))


async def test_a_client_on_another_node_sees_it_live_on_a_cluster(cluster: RedisServer) -> None:
    await nodes.test_a_client_on_another_node_sees_the_owners_turn_live(spec_of(cluster))


async def test_forwarded_cancel_on_a_cluster(cluster: RedisServer) -> None:
    await nodes.test_a_cancel_sent_to_another_node_cancels_the_owners_turn(spec_of(cluster))


async def test_fencing_a_paused_owner_on_a_cluster(cluster: RedisServer) -> None:
    await nodes.test_a_paused_owner_is_fenced_and_cancels_its_turn(spec_of(cluster))
