"""Which addresses links from feed content may make us connect to (server-side request forgery).

An article link, and every redirect on the way to the article, is chosen by whoever writes the
feed. Fetching it must not reach the bot's own host or network: addresses that are loopback,
private, link-local, carrier-grade NAT, multicast, reserved or unspecified are refused (IPv4 and
IPv6, IPv4 inside IPv6 too), unless the operator allowed their range (`full_text.allow_addresses`).

The check is made on the address of the connection actually opened, before a byte is sent: a
name that resolves to a public address when checked and to 127.0.0.1 when connecting (DNS
rebinding) is still caught. `guard(policy, url)` is an httpcore trace hook doing that; it is
used only on connection pools that serve untrusted links, so every connection in them was
checked when it was opened. Feeds the operator configured are fetched on their own pools,
at any address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from bot.errors import FeedError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Trace = Callable[[str, dict[str, Any]], Awaitable[None]]

_KINDS = (
    ("is_unspecified", "an unspecified address"),
    ("is_loopback", "a loopback address (this machine)"),
    ("is_link_local", "a link-local address"),
    ("is_multicast", "a multicast address"),
    ("is_reserved", "a reserved address"),
    ("is_private", "a private-network address"),
)


@dataclass(frozen=True)
class AddressPolicy:
    """Internal addresses are refused, except in the ranges the operator allowed."""

    allow: tuple[Network, ...] = ()

    @classmethod
    def allowing(cls, ranges: Iterable[str | Network]) -> AddressPolicy:
        return cls(tuple(ipaddress.ip_network(r, strict=False) for r in ranges))

    def refusal(self, address: str) -> str | None:
        """Why connecting to `address` is refused (a phrase), or None when it is allowed."""
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone id is no part of it
        candidates = _embedded(ip)
        if any(c in network for c in candidates for network in self.allow):
            return None
        for candidate in reversed(candidates):  # an embedded IPv4 address says the most
            for attribute, kind in _KINDS:
                if getattr(candidate, attribute):
                    return kind
            if not candidate.is_global:
                return "not a public address"  # e.g. carrier-grade NAT, 100.64.0.0/10
        return None


def _embedded(ip: Address) -> list[Address]:
    """The address and any IPv4 address it carries (mapped, 6to4, Teredo, NAT64)."""
    found: list[Address] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            found.append(ip.ipv4_mapped)
        if ip.sixtofour is not None:
            found.append(ip.sixtofour)
        if ip.teredo is not None:
            found.append(ip.teredo[1])
        if ip in _NAT64:
            found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def guard(policy: AddressPolicy, url: str) -> Trace:
    """An httpcore trace hook that closes a new connection to a refused address and raises."""

    async def trace(event: str, info: dict[str, Any]) -> None:
        if event != "connection.connect_tcp.complete":
            return
        stream = info["return_value"]
        peer = stream.get_extra_info("server_addr")
        why = policy.refusal(str(peer[0])) if peer else "an address that cannot be checked"
        if why is None:
            return
        await stream.aclose()
        where = f"{peer[0]}" if peer else "an unknown address"
        raise FeedError(
            f"{url}: leads to {where}, {why}; links from feed content are not fetched on "
            "internal addresses (allow the range in `full_text.allow_addresses` if you trust it)"
        )

    return trace
