"""One small httpx connection pool per host, the least recently used closed beyond a limit.

httpcore's pool re-examines every pooled connection, for every pooled connection, each time a
request starts or ends: its cost grows with the square of the pool's size. One client for all
feeds holds up to `max_connections` (20) connections and spends about 2 ms of CPU per request
on that; one pool per host never holds more than the per-host limit (4), and the unchanged
poll cycle (1,000 conditional GETs answered 304) costs a third as much. `python bench/poll.py`
measures it.

    pools = HostPools(per_host=4, max_hosts=20, timeout=..., headers=...)
    async with pools.stream("GET", url, headers=extra) as response: ...
    await pools.aclose()
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx


class HostPools:
    """httpx clients keyed by scheme and host; extra keyword arguments go to each client.

    At most `max_hosts` clients are kept (their idle keep-alive connections hold sockets open):
    beyond that, the least recently used clients that have no request in flight are closed.
    """

    def __init__(self, per_host: int, max_hosts: int, **client_options: Any) -> None:
        self.per_host = per_host
        self.max_hosts = max_hosts
        # loading the CA bundle costs milliseconds and memory: once, shared by every client
        self._options = {"verify": httpx.create_ssl_context(), **client_options}
        self._clients: OrderedDict[str, httpx.AsyncClient] = OrderedDict()
        self._in_flight: Counter[str] = Counter()

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        extensions: dict[str, Any] | None = None,
    ) -> AsyncIterator[httpx.Response]:
        """`httpx.AsyncClient.stream` on the client of `url`'s host."""
        key = _host_key(url)
        client = self._client(key)
        self._in_flight[key] += 1
        try:
            async with client.stream(
                method, url, headers=headers, extensions=extensions
            ) as response:
                yield response
        finally:
            self._in_flight[key] -= 1
            if not self._in_flight[key]:
                del self._in_flight[key]
            await self._close_surplus()

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), OrderedDict()
        for client in clients:
            await client.aclose()

    def _client(self, key: str) -> httpx.AsyncClient:
        client = self._clients.get(key)
        if client is None:
            limits = httpx.Limits(
                max_connections=self.per_host, max_keepalive_connections=self.per_host
            )
            client = self._clients[key] = httpx.AsyncClient(limits=limits, **self._options)
        self._clients.move_to_end(key)
        return client

    async def _close_surplus(self) -> None:
        while len(self._clients) > self.max_hosts:
            # chosen and removed with no await in between: no request can pick it up meanwhile
            key = next((k for k in self._clients if k not in self._in_flight), None)
            if key is None:
                return
            await self._clients.pop(key).aclose()


def _host_key(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"
