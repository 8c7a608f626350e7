"""A real HTTP server on 127.0.0.1 for tests: programmable routes, recorded requests.

    def test_x(feed_server):
        feed_server.route("/feed.xml", body=b"<rss .../>", headers={"ETag": '"v1"'})
        feed_server.route("/cond.xml", handler=conditional(b"<rss/>", etag='"v1"'))
        feed_server.redirect("/old", "/feed.xml", status=301)
        feed_server.route("/slow", hang=True)                  # never answers (until stop)
        feed_server.route("/big", chunks=repeat(b"x" * 65536, 50_000_000))
        url = feed_server.url("/feed.xml")
        ...
        assert feed_server.requests_for("/cond.xml")[1].headers["if-none-match"] == '"v1"'
        assert feed_server.max_active <= 2                     # simultaneous requests seen
        assert feed_server.connections == 1                    # TCP connections accepted

`rss(*items)` writes an RSS 2.0 document whose items' keys become elements.

Every route is a `Response` or a handler `callable(Request) -> Response`. Requests are matched
on the full path first (with query), then on the path alone; anything else gets a 404.
Handlers run in the server's threads, one per connection (HTTP/1.1 keep-alive).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit
from xml.sax.saxutils import escape


@dataclass(frozen=True)
class Request:
    """One request the server received (headers with lowercase names)."""

    method: str
    path: str
    headers: dict[str, str]
    at: float  # time.monotonic() when it arrived


@dataclass
class Response:
    """What a route answers. `chunks` streams the body (chunked unless `length` is given)."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0  # seconds before answering (cut short when the server stops)
    hang: bool = False  # never answer: wait until the server stops
    chunks: Callable[[], Iterable[bytes]] | None = None
    length: int | None = None  # Content-Length to declare for a streamed body


Handler = Callable[[Request], Response]


def repeat(chunk: bytes, total: int) -> Callable[[], Iterator[bytes]]:
    """A streamed body of `total` bytes made of `chunk`, produced lazily (never held whole)."""

    def generate() -> Iterator[bytes]:
        left = total
        while left > 0:
            piece = chunk[:left]
            left -= len(piece)
            yield piece

    return generate


def conditional(
    body: bytes,
    *,
    etag: str | None = '"v1"',
    last_modified: str | None = None,
    content_type: str = "application/rss+xml",
) -> Handler:
    """A handler that honours If-None-Match / If-Modified-Since and answers 304 when they match."""
    last_modified = last_modified or formatdate(0, usegmt=True)
    validators = {"Last-Modified": last_modified, **({"ETag": etag} if etag else {})}

    def handle(request: Request) -> Response:
        inm = request.headers.get("if-none-match")
        ims = request.headers.get("if-modified-since")
        if (etag and inm == etag) or (not inm and ims == last_modified):
            return Response(status=304, headers=dict(validators))
        return Response(headers={"Content-Type": content_type, **validators}, body=body)

    return handle


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.owner._connected()

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep pytest output clean; tests read FeedServer.requests instead

    def do_GET(self) -> None:
        self.server.owner._serve(self)

    do_HEAD = do_POST = do_GET


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: FeedServer


class FeedServer:
    """A threaded HTTP server on an ephemeral port of 127.0.0.1 (or another loopback address
    given as `host`, to stand for another site); see the module docstring."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.requests: list[Request] = []
        self.active = 0
        self.max_active = 0
        self.connections = 0  # TCP connections accepted (keep-alive reuses them)
        self._routes: dict[str, Response | Handler] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = _Server((host, 0), _Handler)
        self._httpd.owner = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def url(self, path: str = "/") -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}{path}"

    def start(self) -> FeedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # releases hanging and delayed routes
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def route(self, path: str, handler: Handler | None = None, **response: object) -> None:
        """Program `path`: a handler callable, or the fields of a `Response`."""
        target = handler if handler is not None else Response(**response)  # type: ignore[arg-type]
        with self._lock:
            self._routes[path] = target

    def redirect(self, path: str, to: str, status: int = 302) -> None:
        """`path` answers `status` with Location `to` (a path or an absolute URL)."""
        self.route(path, status=status, headers={"Location": to})

    def requests_for(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def _connected(self) -> None:
        with self._lock:
            self.connections += 1

    def _serve(self, http: _Handler) -> None:
        request = Request(
            method=http.command,
            path=http.path,
            headers={k.lower(): v for k, v in http.headers.items()},
            at=time.monotonic(),
        )
        with self._lock:
            self.requests.append(request)
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            target = self._routes.get(request.path) or self._routes.get(urlsplit(request.path).path)
        try:
            response = self._respond(target, request)
            if response is not None:
                self._write(http, response)
        except (BrokenPipeError, ConnectionResetError):
            http.close_connection = True  # the client gave up (size cap, timeout): expected
        finally:
            with self._lock:
                self.active -= 1

    def _respond(self, target: Response | Handler | None, request: Request) -> Response | None:
        if target is None:
            return Response(status=404, body=b"not found")
        response = target if isinstance(target, Response) else target(request)
        if response.hang:
            self._stopping.wait()
            return None
        if response.delay and self._stopping.wait(response.delay):
            return None
        return response

    def _write(self, http: _Handler, response: Response) -> None:
        http.send_response(response.status)
        names = {name.lower() for name in response.headers}
        for name, value in response.headers.items():
            http.send_header(name, value)
        if response.chunks is None:
            if "content-length" not in names:
                http.send_header("Content-Length", str(len(response.body)))
            http.end_headers()
            if http.command != "HEAD":
                http.wfile.write(response.body)
            return
        if response.length is not None:
            http.send_header("Content-Length", str(response.length))
        else:
            http.send_header("Transfer-Encoding", "chunked")
        http.end_headers()
        self._stream(http, response)

    def _stream(self, http: _Handler, response: Response) -> None:
        assert response.chunks is not None
        chunked = response.length is None
        for chunk in response.chunks():
            if self._stopping.is_set():
                http.close_connection = True
                return
            if chunked:
                http.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            else:
                http.wfile.write(chunk)
        if chunked:
            http.wfile.write(b"0\r\n\r\n")


@contextlib.contextmanager
def running(host: str = "127.0.0.1") -> Iterator[FeedServer]:
    """A started FeedServer, stopped on exit (for use outside pytest fixtures, e.g. bench/)."""
    server = FeedServer(host).start()
    try:
        yield server
    finally:
        server.stop()


def rss(*items: dict[str, str]) -> bytes:
    """RSS 2.0; each item's keys become elements (`enclosure` becomes its url attribute)."""
    body = ""
    for item in items:
        parts = [
            f'<enclosure url="{escape(v)}" type="audio/mpeg"/>'
            if k == "enclosure"
            else f"<{k}>{escape(v)}</{k}>"
            for k, v in item.items()
        ]
        body += "<item>" + "".join(parts) + "</item>"
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>T</title>'
        f"<link>https://example.org/</link>{body}</channel></rss>"
    ).encode()
