"""Links from feed content never reach internal addresses: real servers on 127.0.0.1/127.0.0.2.

The tests can only use loopback, so the operator's allow list here allows 127.0.0.2 (standing
for a trusted internal site) and not 127.0.0.1 (standing for the bot's own host).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from feedserver import FeedServer, running

from bot.errors import FeedError, FullTextError
from bot.feeds.fetch import Fetcher
from bot.feeds.fulltext import fetch_article
from bot.feeds.guard import AddressPolicy

SECRET = "<!doctype html><html><body><p>internal admin page: password hunter2</p></body></html>"
ALLOWED = ("127.0.0.2/32",)


@pytest.fixture
def other_site() -> Iterator[FeedServer]:
    """A server on 127.0.0.2: the address the operator allowed."""
    with running("127.0.0.2") as server:
        yield server


@pytest.fixture
def internal(feed_server: FeedServer) -> FeedServer:
    feed_server.route("/admin", headers={"Content-Type": "text/html"}, body=SECRET.encode())
    return feed_server


async def refused(url: str, **options: object) -> str:
    async with Fetcher(allow_addresses=ALLOWED, **options) as fetcher:  # type: ignore[arg-type]
        with pytest.raises(FullTextError) as caught:
            await fetch_article(fetcher, url)
    return str(caught.value)


async def test_a_link_to_loopback_is_not_fetched(internal: FeedServer) -> None:
    message = await refused(internal.url("/admin"))
    assert "127.0.0.1, a loopback address" in message
    assert "full_text.allow_addresses" in message and "hunter2" not in message
    assert internal.requests_for("/admin") == []  # not a byte of the request was sent


async def test_a_name_is_judged_by_the_address_connected(internal: FeedServer) -> None:
    message = await refused(f"http://localhost:{internal.port}/admin")
    assert "loopback" in message
    assert internal.requests_for("/admin") == []


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_a_redirect_from_an_allowed_address_to_loopback_is_not_followed(
    internal: FeedServer, other_site: FeedServer, status: int
) -> None:
    other_site.redirect("/story", internal.url("/admin"), status=status)
    message = await refused(other_site.url("/story"))
    assert "127.0.0.1, a loopback address" in message
    assert len(other_site.requests_for("/story")) == 1
    assert internal.requests_for("/admin") == []


async def test_a_range_the_operator_allowed_is_fetched(internal: FeedServer) -> None:
    async with Fetcher(allow_addresses=("127.0.0.0/8",)) as fetcher:
        article = await fetch_article(fetcher, internal.url("/admin"))
    assert article is not None and "hunter2" in article.text


async def test_an_allowed_site_redirecting_within_allowed_ranges_is_fetched(
    internal: FeedServer, other_site: FeedServer
) -> None:
    other_site.redirect("/story", "/page")
    other_site.route("/page", headers={"Content-Type": "text/html"}, body=SECRET.encode())
    async with Fetcher(allow_addresses=ALLOWED) as fetcher:
        article = await fetch_article(fetcher, other_site.url("/story"))
    assert article is not None and article.url == other_site.url("/page")


async def test_configured_feeds_are_fetched_on_any_address(internal: FeedServer) -> None:
    async with Fetcher() as fetcher:  # nothing allowed, and the feed is on loopback
        result = await fetcher.fetch(internal.url("/admin"))
        with pytest.raises(FeedError, match="loopback"):  # the same host, from feed content
            await fetcher.fetch(internal.url("/admin"), untrusted=True)
    assert result.status == 200 and b"hunter2" in (result.body or b"")
    assert len(internal.requests_for("/admin")) == 1


@pytest.mark.parametrize("link", ["file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://x/"])
async def test_links_that_are_not_web_addresses_are_refused(link: str) -> None:
    message = await refused(link)
    assert "only http(s) links are followed" in message


@pytest.mark.parametrize(
    "address, why",
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped IPv6
        ("::ffff:10.0.0.1", "private"),
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 of 169.254.169.254
        ("2002:c0a8:101::1", "private"),  # 6to4 of 192.168.1.1
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),  # cloud metadata
        ("fe80::1%eth0", "link-local"),
        ("fd12:3456::1", "private"),
        ("100.64.0.1", "not a public address"),  # carrier-grade NAT
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("198.18.0.1", "private"),  # benchmarking range
    ],
)
def test_internal_addresses_are_refused(address: str, why: str) -> None:
    assert why in (AddressPolicy().refusal(address) or "")


@pytest.mark.parametrize("address", ["8.8.8.8", "2606:4700:4700::1111", "93.184.216.34"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert AddressPolicy().refusal(address) is None


def test_allowed_ranges_cover_their_ipv4_mapped_form() -> None:
    policy = AddressPolicy.allowing(["10.0.0.0/8", "fd00::/8"])
    assert policy.refusal("10.9.9.9") is None and policy.refusal("::ffff:10.9.9.9") is None
    assert policy.refusal("fd00::5") is None
    assert policy.refusal("11.0.0.1") is None and policy.refusal("192.168.0.1") is not None
