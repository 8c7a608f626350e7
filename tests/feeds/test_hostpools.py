"""bot.feeds.hostpools against real HTTP servers on two loopback addresses (tests/feedserver.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from feedserver import FeedServer, running

from bot.feeds.hostpools import HostPools


@pytest.fixture
def other_site() -> Iterator[FeedServer]:
    """A second site: a server on another loopback address than `feed_server`."""
    with running("127.0.0.2") as server:
        yield server


async def get(pools: HostPools, url: str) -> int:
    async with pools.stream("GET", url, headers={}) as response:
        await response.aread()
        return response.status_code


async def test_each_site_keeps_its_own_connections_alive(
    feed_server: FeedServer, other_site: FeedServer
) -> None:
    for server in (feed_server, other_site):
        server.route("/feed", body=b"<rss/>")
    pools = HostPools(per_host=4, max_hosts=10)
    try:
        for _ in range(3):
            for server in (feed_server, other_site):
                assert await get(pools, server.url("/feed")) == 200
    finally:
        await pools.aclose()
    assert (feed_server.connections, other_site.connections) == (1, 1)


async def test_a_site_never_gets_more_connections_than_its_limit(feed_server: FeedServer) -> None:
    feed_server.route("/feed", delay=0.2, body=b"<rss/>")
    pools = HostPools(per_host=2, max_hosts=10)
    try:
        statuses = await asyncio.gather(*(get(pools, feed_server.url("/feed")) for _ in range(6)))
    finally:
        await pools.aclose()
    assert statuses == [200] * 6
    assert feed_server.max_active == 2 and feed_server.connections == 2


async def test_beyond_max_hosts_the_least_recently_used_idle_site_is_let_go(
    feed_server: FeedServer, other_site: FeedServer
) -> None:
    feed_server.route("/feed", body=b"<rss/>")
    other_site.route("/slow", delay=0.5, body=b"<rss/>")
    other_site.route("/feed", body=b"<rss/>")
    pools = HostPools(per_host=2, max_hosts=1)
    try:
        slow = asyncio.create_task(get(pools, other_site.url("/slow")))
        await asyncio.sleep(0.1)  # the other site's request is now in flight
        # two sites, one allowed: the busy one stays, the idle one goes
        assert await get(pools, feed_server.url("/feed")) == 200
        assert await slow == 200
        assert await get(pools, other_site.url("/feed")) == 200
        assert await get(pools, feed_server.url("/feed")) == 200
    finally:
        await pools.aclose()
    assert other_site.connections == 1  # kept while it was in use, so its connection reused
    assert feed_server.connections == 2  # closed when idle, so a new connection
