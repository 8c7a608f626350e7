"""Compression bombs over real HTTP: the decoded size is capped while decoding, every layer."""

from __future__ import annotations

import gzip
import json
import struct
import subprocess
import sys
import textwrap
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from feedserver import FeedServer

from bot.errors import FeedError, FullTextError
from bot.feeds.decode import BodyDecoder
from bot.feeds.fetch import Fetcher
from bot.feeds.fulltext import fetch_article

ROOT = Path(__file__).resolve().parents[2]
RSS = (ROOT / "tests" / "fixtures" / "feeds" / "rss20.xml").read_bytes()
GIB = 1 << 30
CRC_OF_ONE_GIB_OF_ZEROS = 0x5B64C2B0  # zlib.crc32(bytes(1 << 30)), computed once


def gzip_of_zeros(mib: int = 1024) -> Iterator[bytes]:
    """A valid gzip stream of `mib` MiB of zeros (about 1 KB per MiB), made block by block.

    After a full flush deflate starts afresh, so every 1 MiB block compresses to the same
    bytes: the stream is built from one block without compressing a gigabyte."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = deflate.compress(bytes(1 << 20)) + deflate.flush(zlib.Z_FULL_FLUSH)
    yield b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    for _ in range(mib):
        yield block
    crc = CRC_OF_ONE_GIB_OF_ZEROS if mib == 1024 else zlib.crc32(bytes(mib << 20))
    yield deflate.flush() + struct.pack("<II", crc, (mib << 20) & 0xFFFFFFFF)


def compressed(pieces: Iterable[bytes], encoding: str) -> bytes:
    """`pieces` compressed once more, streaming (the input is never held whole)."""
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    packer = zlib.compressobj(9, zlib.DEFLATED, wbits)
    return b"".join(packer.compress(p) for p in pieces) + packer.flush()


def bomb(encodings: str) -> bytes:
    """One GiB of zeros under `encodings` (listed in the order applied, as in the header)."""
    first, *others = [e.strip() for e in encodings.split(",")]
    assert first == "gzip"
    body = b"".join(gzip_of_zeros())
    for encoding in others:
        body = compressed([body], encoding)
    return body


@pytest.mark.parametrize("encodings", ["gzip", "gzip, gzip", "gzip, deflate", "gzip, gzip, gzip"])
async def test_a_bomb_stops_at_the_cap_with_a_clear_error(
    feed_server: FeedServer, encodings: str
) -> None:
    body = bomb(encodings)
    assert len(body) < 1_100_000 and (encodings == "gzip" or len(body) < 10_000)
    feed_server.route("/bomb", body=body, headers={"Content-Encoding": encodings})
    async with Fetcher() as fetcher:
        with pytest.raises(FeedError) as caught:
            await fetcher.fetch(feed_server.url("/bomb"))
    message = str(caught.value)
    assert "larger than the 10 MB size cap once decompressed" in message
    assert f"(Content-Encoding: {encodings})" in message


async def test_an_article_link_to_a_bomb_is_refused(feed_server: FeedServer) -> None:
    feed_server.route(
        "/article", body=bomb("gzip, gzip"),
        headers={"Content-Encoding": "gzip, gzip", "Content-Type": "text/html"},
    )  # fmt: skip
    async with Fetcher(max_bytes=2_000_000, allow_addresses=("127.0.0.1",)) as fetcher:
        with pytest.raises(FullTextError) as caught:
            await fetch_article(fetcher, feed_server.url("/article"))
    assert "the page is larger than the 2 MB size cap once decompressed" in str(caught.value)


@pytest.mark.parametrize(
    "encodings, body",
    [
        ("gzip", gzip.compress(RSS[:500]) + gzip.compress(RSS[500:])),  # two gzip members
        ("deflate", zlib.compress(RSS)),
        ("deflate", zlib.compress(RSS)[2:-4]),  # raw deflate, as some servers send it
        ("gzip, deflate", zlib.compress(gzip.compress(RSS))),
        ("identity", RSS),
        ("GZIP ,  identity", gzip.compress(RSS)),
    ],
)
async def test_honest_encodings_are_decoded(
    feed_server: FeedServer, encodings: str, body: bytes
) -> None:
    feed_server.route("/feed", body=body, headers={"Content-Encoding": encodings})
    async with Fetcher() as fetcher:
        result = await fetcher.fetch(feed_server.url("/feed"))
    assert result.body == RSS


@pytest.mark.parametrize(
    "encodings, body, said",
    [
        ("gzip", b"\x1f\x8b\x08\x00garbage" * 10, "not valid gzip data"),
        ("br", b"\x0b\x02\x80hello\x03", "compressed as 'br', which we cannot decode"),
        ("gzip, gzip, gzip, gzip", gzip.compress(RSS), "compressed 4 times over"),
    ],
)
async def test_bad_encodings_are_a_clear_feed_error(
    feed_server: FeedServer, encodings: str, body: bytes, said: str
) -> None:
    feed_server.route("/feed", body=body, headers={"Content-Encoding": encodings})
    async with Fetcher() as fetcher:
        with pytest.raises(FeedError) as caught:
            await fetcher.fetch(feed_server.url("/feed"))
    assert "corrupt compressed body" in str(caught.value) and said in str(caught.value)


def test_memory_stays_bounded_for_a_layered_bomb(feed_server: FeedServer) -> None:
    """Peak memory of a process that fetches a feed, then a 1 GiB `gzip, gzip` bomb."""
    feed_server.route("/feed", body=gzip.compress(RSS), headers={"Content-Encoding": "gzip"})
    feed_server.route("/bomb", body=bomb("gzip, gzip"), headers={"Content-Encoding": "gzip, gzip"})
    script = textwrap.dedent(
        """
        import asyncio, json, resource, sys
        from bot.errors import FeedError
        from bot.feeds.fetch import Fetcher

        def peak_mb():
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        async def main(feed, bomb):
            async with Fetcher() as fetcher:
                await fetcher.fetch(feed)
                usual = peak_mb()
                try:
                    await fetcher.fetch(bomb)
                    error = None
                except FeedError as exc:
                    error = str(exc)
            print(json.dumps({"usual": usual, "peak": peak_mb(), "error": error}))

        asyncio.run(main(*sys.argv[1:]))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, feed_server.url("/feed"), feed_server.url("/bomb")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert "once decompressed" in seen["error"]
    assert seen["peak"] - seen["usual"] < 50, seen  # MB; httpx alone went to 3.1 GB


@pytest.mark.parametrize(
    "encodings, body",
    [
        ("gzip", gzip.compress(RSS[:500]) + gzip.compress(RSS[500:]) + gzip.compress(b"")),
        ("deflate", zlib.compress(RSS)),
        ("deflate", zlib.compress(RSS)[2:-4]),
        ("gzip, deflate", zlib.compress(gzip.compress(RSS))),
    ],
)
def test_decoding_does_not_depend_on_where_the_network_cuts_the_body(
    encodings: str, body: bytes
) -> None:
    """Every split into two network chunks, and one byte at a time, decode alike."""
    splits = [[body[:n], body[n:]] for n in range(len(body) + 1)]
    splits.append([body[n : n + 1] for n in range(len(body))])
    for chunks in splits:
        decoder = BodyDecoder(encodings, 10_000_000)
        for chunk in chunks:
            decoder.feed(chunk)
        assert decoder.finish() == RSS
