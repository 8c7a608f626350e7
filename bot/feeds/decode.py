"""Content-Encoding undone by hand, with the decoded size capped while decoding.

httpx inflates a whole network chunk at once and chains every encoding layer with no output
limit, so a 2.6 KB answer encoded `gzip, gzip` grows to gigabytes before a size check after
decoding can see it. Here each layer hands on at most `PIECE` bytes per step (zlib's
`max_length`, with the unconsumed input kept for the next step), and the caller counts the
last layer's output against its cap, so memory stays bounded by the cap for any bomb:

    body = BodyDecoder(response.headers.get("content-encoding", ""), max_bytes)
    async for raw in response.aiter_raw():
        body.feed(raw)            # raises TooLarge past max_bytes, DecodeFailed on bad data
    data = body.finish()

Only gzip and deflate are decoded (and so the only ones we ask for); anything else is an error.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

ACCEPT_ENCODING = "gzip, deflate"
PIECE = 64 * 1024  # bytes one layer hands on per step
MAX_LAYERS = 3  # each costs a zlib state (tens of KB); no honest server stacks more than two
_GZIP_MAGIC = b"\x1f\x8b"


class TooLarge(Exception):
    """The decoded body went past the cap (args: the encodings, e.g. "gzip, gzip")."""


class DecodeFailed(Exception):
    """The body is not what its Content-Encoding says, or uses one we do not decode."""


class _Inflate:
    """One gzip or deflate layer; gzip may hold several members, deflate may be raw."""

    def __init__(self, encoding: str) -> None:
        self.gzip = encoding in ("gzip", "x-gzip")
        self._z = self._new()
        self._head = b""  # deflate: the first bytes, until they tell zlib from raw deflate
        self._chosen = self.gzip
        self._done = False

    def _new(self, raw: bool = False) -> zlib._Decompress:
        if self.gzip:
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        return zlib.decompressobj(-zlib.MAX_WBITS if raw else zlib.MAX_WBITS)

    def feed(self, data: bytes, *, final: bool = False) -> Iterator[bytes]:
        if not self._chosen:
            self._head += data
            if len(self._head) < 2 and not final:
                return
            data, self._head, self._chosen = self._head, b"", True
            if data and not _looks_like_zlib(data):  # "deflate" often means raw deflate
                self._z = self._new(raw=True)
        while not self._done:
            if self._z.eof:
                if not data:
                    return  # a next gzip member, if any, is in a later chunk
                if not (self.gzip and _GZIP_MAGIC.startswith(data[:2])):
                    self._done = True  # trailing bytes after the stream are ignored, as httpx does
                    return
                self._z = self._new()  # the next gzip member
            out = self._z.decompress(data, PIECE)
            if out:
                yield out
            data = self._z.unused_data if self._z.eof else self._z.unconsumed_tail
            if not self._z.eof and not data and len(out) < PIECE:
                return  # all input taken and nothing pending

    def finish(self) -> Iterator[bytes]:
        # what zlib still holds; a body cut short is decoded as far as it goes (as httpx and
        # browsers do): HTTP's own framing already tells a truncated answer
        yield from self.feed(b"", final=True)


def _looks_like_zlib(data: bytes) -> bool:
    return len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0


class BodyDecoder:
    """Decodes a body through its Content-Encoding layers into at most `max_bytes` bytes."""

    def __init__(self, content_encoding: str, max_bytes: int) -> None:
        names = [n.strip().lower() for n in content_encoding.split(",") if n.strip()]
        self.encodings = ", ".join(names)
        names = [n for n in names if n != "identity"]
        unknown = [n for n in names if n not in ("gzip", "x-gzip", "deflate")]
        if unknown:
            raise DecodeFailed(f"the body is compressed as {unknown[0]!r}, which we cannot decode")
        if len(names) > MAX_LAYERS:
            raise DecodeFailed(f"the body is compressed {len(names)} times over ({self.encodings})")
        self.max_bytes = max_bytes
        self._layers = [_Inflate(n) for n in reversed(names)]  # the last applied comes off first
        self._body = bytearray()

    def feed(self, raw: bytes) -> None:
        self._take(self._through(0, raw, final=False))

    def finish(self) -> bytes:
        self._take(self._through(0, b"", final=True))
        return bytes(self._body)

    def _through(self, index: int, data: bytes, *, final: bool) -> Iterator[bytes]:
        """`data` passed through the layers from `index` on, piece by piece."""
        if index == len(self._layers):
            if data:
                yield data
            return
        layer = self._layers[index]
        try:
            for piece in layer.feed(data):
                yield from self._through(index + 1, piece, final=False)
            if final:
                for piece in layer.finish():
                    yield from self._through(index + 1, piece, final=False)
                yield from self._through(index + 1, b"", final=True)
        except zlib.error as exc:
            raise DecodeFailed(f"the body is not valid {self.encodings} data ({exc})") from None

    def _take(self, pieces: Iterator[bytes]) -> None:
        for piece in pieces:
            if len(self._body) + len(piece) > self.max_bytes:
                raise TooLarge(self.encodings)
            self._body += piece
