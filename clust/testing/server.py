"""HTTP plumbing: a threaded HTTP/1.1 server on 127.0.0.1 with keep-alive, chunked SSE bodies,
cut connections, and a clean shutdown that leaves no thread or socket behind.

The app is a plain callable ``RecordedRequest -> Outgoing``; this module knows nothing about
the Messages API.
"""

from __future__ import annotations

import contextlib
import http
import http.server
import json
import selectors
import socket
import socketserver
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .outgoing import Outgoing
from .recorder import RecordedRequest, parse_headers

__all__ = ["HttpServer"]

App = Callable[[RecordedRequest], Outgoing]

MAX_BODY_BYTES = 256 * 1024 * 1024
_REASONS = {529: "Overloaded"}


class _ThreadingServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # The listen backlog: hundreds of clients connecting at once (500 conversations on
    # one event loop) overflow a short one, and each dropped SYN costs its client 1 s.
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], app: App, default_chunk_size: int | None) -> None:
        self.app = app
        self.default_chunk_size = default_chunk_size
        self.stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._threads_alive: set[threading.Thread] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn); not needed here.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        # One daemon thread per connection (a forgotten server never blocks interpreter exit),
        # tracked here so close() can join them: socketserver only joins non-daemon threads.
        # The connection is tracked in this (accept) thread, so close() sees every one.
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name=f"FakeClaude connection {client_address}",
            daemon=True,
        )
        with self._connections_lock:
            self._connections.add(request)
            self._threads_alive = {t for t in self._threads_alive if t.is_alive()}
            self._threads_alive.add(thread)
        thread.start()

    def join_threads(self) -> None:
        """Wait for every connection thread to finish."""
        with self._connections_lock:
            threads = list(self._threads_alive)
            self._threads_alive.clear()
        for thread in threads:
            thread.join()

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def wake_connections(self) -> None:
        """Shut down every open connection so blocked handler threads return."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, OSError) or self.stopping.is_set():
            return
        traceback.print_exc()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeClaude"
    sys_version = ""
    server: _ThreadingServer
    raw_requestline: bytes

    def setup(self) -> None:
        super().setup()
        self.lowered_headers: dict[str, str] = {}
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def parse_request(self) -> bool:
        # A lean replacement for the stdlib's (email-package) header parsing, which costs
        # about a third of a small request. HTTP/1.x only; headers go to ``lowered_headers``.
        self.command = ""
        self.request_version = "HTTP/1.0"
        self.close_connection = True
        self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = self.requestline.split()
        if len(words) != 3 or not words[2].startswith("HTTP/1."):
            self.send_error(400, "Bad request line")
            return False
        self.command, self.path, self.request_version = words
        pairs: list[tuple[str, str]] = []
        while True:
            line = self.rfile.readline(65537)
            if len(line) > 65536 or len(pairs) > 200:
                self.send_error(431)
                return False
            if line in (b"\r\n", b"\n", b""):
                break
            name, colon, value = line.decode("iso-8859-1").partition(":")
            if not colon:
                self.send_error(400, "Bad header line")
                return False
            pairs.append((name.strip(), value.strip()))
        lowered = parse_headers(pairs)
        self.lowered_headers = lowered
        # Keep-alive for HTTP/1.1 unless asked otherwise; HTTP/1.0 gets one response.
        close = "close" in lowered.get("connection", "").lower()
        self.close_connection = close or self.request_version != "HTTP/1.1"
        if lowered.get("expect", "").lower() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return True

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: tests read ``fake.requests`` instead."""

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_GET
    do_DELETE = do_GET
    do_PUT = do_GET
    do_PATCH = do_GET

    def _serve(self) -> None:
        try:
            raw = self._read_body()
        except ValueError:
            self._write_plain(400, b"bad request body framing")
            self.close_connection = True
            return
        if raw is None:
            self._write_plain(413, _too_large())
            self.close_connection = True
            return
        parts = urlsplit(self.path)
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        request = RecordedRequest(
            method=self.command,
            path="/" + "/".join(p for p in parts.path.split("/") if p),
            query=parse_qs(parts.query, keep_blank_values=True),
            headers=self.lowered_headers,
            body=body,
            raw=raw,
        )
        try:
            self._write(self.server.app(request))
        except OSError:
            self.close_connection = True

    def _read_body(self) -> bytes | None:
        if "chunked" in self.lowered_headers.get("transfer-encoding", "").lower():
            return self._read_chunked()
        length = int(self.lowered_headers.get("content-length") or 0)
        if length < 0:
            raise ValueError("negative content-length")
        if length > MAX_BODY_BYTES:
            return None
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            size = int(self.rfile.readline(65537).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            total += size
            if total > MAX_BODY_BYTES:
                raise ValueError("body too large")
            parts.append(self.rfile.read(size))
            self.rfile.readline(65537)

    def _head(self, status: int, headers: dict[str, str]) -> bytes:
        try:
            reason = _REASONS.get(status) or http.HTTPStatus(status).phrase
        except ValueError:
            reason = "Unknown"
        lines = [f"HTTP/1.1 {status} {reason}", "server: FakeClaude"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if self.close_connection:
            lines.append("connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _write_plain(self, status: int, body: bytes) -> None:
        self.close_connection = True
        headers = {"content-type": "application/json", "content-length": str(len(body))}
        self.wfile.write(self._head(status, headers) + body)

    def _write(self, out: Outgoing) -> None:
        stopping = self.server.stopping
        if out.response_delay and stopping.wait(out.response_delay):
            self.close_connection = True
            return
        if out.drop:
            self._abort()
            return
        headers = dict(out.headers)
        if out.chunks is None:
            headers["content-length"] = str(len(out.body))
            if out.event_delay and stopping.wait(out.event_delay):
                self._abort()
                return
            if out.truncate_at is not None:
                self.wfile.write(self._head(out.status, headers) + out.body[: out.truncate_at])
                self._abort()
            else:
                self.wfile.write(self._head(out.status, headers) + out.body)
            return
        # HTTP/1.0 clients get an unframed body ended by closing the connection.
        chunked = self.request_version == "HTTP/1.1"
        frame = _frame if chunked else bytes
        end = b"0\r\n\r\n" if chunked and not out.abort else b""
        if chunked:
            headers["transfer-encoding"] = "chunked"
        else:
            self.close_connection = True
        chunk_size = out.chunk_size or self.server.default_chunk_size
        if not out.event_delay and not chunk_size:
            # Nothing to pace: one write for the whole body (fast for test suites).
            frames = b"".join(frame(piece) for piece in out.chunks if piece)
            self.wfile.write(self._head(out.status, headers) + frames + end)
        else:
            self.wfile.write(self._head(out.status, headers))
            for piece in out.chunks:
                if out.event_delay and stopping.wait(out.event_delay):
                    self._abort()
                    return
                step = chunk_size or len(piece) or 1
                for start in range(0, len(piece), step):
                    self.wfile.write(frame(piece[start : start + step]))
            if end:
                self.wfile.write(end)
        if out.abort:
            self._abort()

    def _abort(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


def _frame(piece: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(piece), piece)


def _too_large() -> bytes:
    return json.dumps(
        {
            "type": "error",
            "error": {"type": "request_too_large", "message": "Request exceeds the size limit."},
            "request_id": None,
        }
    ).encode()


class HttpServer:
    """The listening socket, its accept thread, and the connections' handler threads."""

    def __init__(
        self, app: App, *, host: str = "127.0.0.1", port: int = 0, chunk_size: int | None = None
    ) -> None:
        self._httpd = _ThreadingServer((host, port), app, chunk_size)
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread = threading.Thread(
            target=self._accept_loop, name=f"FakeClaude:{self.port}", daemon=True
        )
        self._closed = False

    @property
    def port(self) -> int:
        """The bound TCP port."""
        return int(self._httpd.server_address[1])

    def start(self) -> None:
        """Start accepting connections in a background thread."""
        self._thread.start()

    def close(self) -> None:
        """Stop accepting, cut open connections, join every thread, close every socket."""
        if self._closed:
            return
        self._closed = True
        self._httpd.stopping.set()
        if self._thread.is_alive():
            with contextlib.suppress(OSError):
                self._wake_w.send(b"x")
            self._thread.join()
        self._httpd.socket.close()
        self._httpd.wake_connections()
        self._httpd.join_threads()
        self._httpd.server_close()
        self._wake_r.close()
        self._wake_w.close()

    def _accept_loop(self) -> None:
        httpd = self._httpd
        with selectors.DefaultSelector() as selector:
            selector.register(httpd.socket, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while True:
                for key, _ in selector.select():
                    if key.fileobj is self._wake_r:
                        return
                    try:
                        request, address = httpd.get_request()
                    except OSError:
                        continue
                    try:
                        httpd.process_request(request, address)
                    except Exception:
                        httpd.handle_error(request, address)
                        httpd.shutdown_request(request)
