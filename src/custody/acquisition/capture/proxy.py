"""The recording proxy: an HTTP/HTTPS forward proxy on loopback that records every exchange.

Why a proxy and not the browser's own protocol: Chromium's DevTools protocol gives response
bodies after it has removed the transfer coding and the content coding
(``Network.getResponseBody``), headers as a re-assembled dictionary without the status line,
and often no body at all for media fetched by the media stack. A proxy sits on the wire: it
stores the status line, the header block and the body exactly as the server sent them
(gzip stays gzip, chunked stays chunked) and the address it actually connected to. Chromium
is pointed at this proxy with ``--proxy-server`` (``<-loopback>`` removed from the bypass
list, so even loopback goes through it), yt-dlp with ``--proxy``; HTTPS is intercepted with
the capture's throw-away CA (``tls.CaptureAuthority``) while the proxy's own upstream
connection verifies the real server and keeps the certificate chain it presented.

Each exchange is relayed to the client as it arrives and kept in a ``warc_writer.Pending``
(request head and body as sent upstream, response head as received, the body spooled with
two running SHA-256 digests: of the bytes stored, and of the entity-body without chunk
framing, which becomes WARC-Payload-Digest); when it ends, for whatever reason, the
``warc_writer.Recorder`` writes it. HTTP/1.1 framing is parsed strictly (RFC 9112): a
response whose framing breaks is kept up to the break and marked truncated.

Limits, said plainly: HTTP/1.1 only upstream (ALPN ``http/1.1``); WebSocket upgrades are
recorded as an exchange and the tunnel is then closed; request bodies with chunked transfer
coding are refused (browsers send Content-Length).

Imports the standard library and ``capture.tls`` / ``capture.warc_writer``.
"""

from __future__ import annotations

import contextlib
import io
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from custody.acquisition.capture.tls import (
    CaptureAuthority,
    check_host,
    client_context,
    presented_chain,
)
from custody.acquisition.capture.warc_writer import Pending, Recorder

_MAX_HEAD = 64 * 1024
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,15}")
_MAX_LINES = 256
_CHUNK = 64 * 1024
_HOP_BY_HOP_PROXY = (b"proxy-connection", b"proxy-authorization")
# Only these are sent again when a kept-alive connection turns out to have been dropped.
_IDEMPOTENT = ("GET", "HEAD", "OPTIONS")
TLS_REFUSAL = "the server's certificate did not verify"  # how such an exchange's error starts
TIME_LIMIT = "no response before the capture's time limit"  # an exchange the deadline cut
CAPTURE_ENDED = "the capture ended before the response did"  # cut when the proxies stopped


class _Closed(Exception):
    """The peer closed the connection, or the capture ended."""


class _Malformed(_Closed):
    """The server broke HTTP/1.1 framing; what came before is kept, the rest is not read."""


def _read_head(reader: io.BufferedReader) -> bytes:
    """An HTTP head up to and including the blank line; b'' if the peer closed first."""
    lines: list[bytes] = []
    size = 0
    while True:
        line = reader.readline(_MAX_HEAD + 1)
        if not line:
            if lines:
                raise _Closed("connection closed inside an HTTP head")
            return b""
        if not lines and line in (b"\r\n", b"\n"):
            continue  # tolerated stray CRLF between messages (RFC 9112 section 2.2)
        lines.append(line)
        size += len(line)
        if size > _MAX_HEAD or len(lines) > _MAX_LINES:
            raise _Closed("HTTP head too large")
        if line in (b"\r\n", b"\n"):
            return b"".join(lines)


def _header_values(head: bytes, name: bytes) -> list[bytes]:
    out = []
    for line in head.split(b"\n")[1:]:
        key, sep, value = line.partition(b":")
        if sep and key.strip().lower() == name:
            out.append(value.strip())
    return out


class RecordingProxy:
    """An HTTP/HTTPS forward proxy on 127.0.0.1 that records through a ``Recorder``."""

    def __init__(self, recorder: Recorder, authority: CaptureAuthority, *, client: str,
                 ca_file: Path | None, insecure: bool, deadline: float,
                 allow: Callable[[str, int], bool] | None = None) -> None:
        self._recorder = recorder
        self._authority = authority
        self._client = client
        self._upstream_ctx = client_context(ca_file=ca_file, insecure=insecure)
        self.deadline = deadline
        self._allow = allow
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port: int = self._listener.getsockname()[1]
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._stopping = False
        self.refused: list[str] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True)

    def start(self) -> None:
        self._acceptor.start()

    def stop(self) -> None:
        """Stop accepting, cut every open connection, wait for the handlers to write."""
        with self._lock:
            self._stopping = True
            sockets = list(self._sockets)
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes a blocked accept() on Linux
        with contextlib.suppress(OSError):
            self._listener.close()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in list(self._threads):
            thread.join(timeout=10)
        self._acceptor.join(timeout=5)

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            if self._stopping:
                raise _Closed("capture ended")
            self._sockets.add(sock)

    def _forget(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)

    def _untrack(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            self._sockets.discard(sock)
        with contextlib.suppress(OSError):
            sock.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _addr = self._listener.accept()
            except OSError:
                return
            try:
                self._track(conn)
            except _Closed:
                conn.close()
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            with self._lock:
                self._threads.append(thread)
            thread.start()

    def _timeout(self) -> float:
        return max(0.05, min(30.0, self.deadline - time.monotonic()))

    def _serve(self, conn: socket.socket) -> None:
        upstream: _Upstream | None = None
        client: socket.socket = conn
        try:
            conn.settimeout(self._timeout())
            reader: io.BufferedReader = conn.makefile("rb")
            head = _read_head(reader)
            if not head:
                return
            method, target, _version = self._request_line(head)
            if method == "CONNECT":
                host, port = self._authority_of(target)
                if not self._allowed(host, port):
                    conn.sendall(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")
                    return
                upstream = _Upstream(self, host, port, tls=True)
                try:
                    upstream.connect()
                except OSError as exc:
                    self._failed_connect(f"https://{host}:{port}/", host, port, exc)
                    conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
                    return
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                client = self._authority.server_context(host).wrap_socket(
                    conn, server_side=True
                )
                self._track(client)
                self._forget(conn)  # wrap_socket took over its descriptor
                reader = client.makefile("rb")
                head = _read_head(reader)
                while head:
                    keep = self._relay(head, reader, client, "https", host, port, upstream)
                    if not keep:
                        return
                    head = _read_head(reader)
                return
            while head:
                parts = urlsplit(target)
                if parts.scheme != "http" or not parts.hostname:
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                    return
                host = check_host(parts.hostname)
                port = parts.port or 80
                if not self._allowed(host, port):
                    conn.sendall(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")
                    return
                if upstream is None or (upstream.host, upstream.port) != (host, port):
                    if upstream is not None:
                        upstream.close()
                    upstream = _Upstream(self, host, port, tls=False)
                if not self._relay(head, reader, conn, "http", host, port, upstream):
                    return
                head = _read_head(reader)
                if head:
                    method, target, _version = self._request_line(head)
        except (_Closed, OSError, ValueError):
            return
        finally:
            if upstream is not None:
                upstream.close()
            if client is not conn:
                self._untrack(client)
            self._untrack(conn)

    def _allowed(self, host: str, port: int) -> bool:
        if self._allow is None or self._allow(host, port):
            return True
        self.refused.append(f"{host}:{port}")
        return False

    @staticmethod
    def _request_line(head: bytes) -> tuple[str, str, str]:
        line = head.split(b"\r\n", 1)[0].split(b"\n", 1)[0].decode("latin-1")
        parts = line.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise ValueError(f"not an HTTP/1.x request line: {line[:100]!r}")
        return parts[0], parts[1], parts[2]

    @staticmethod
    def _authority_of(target: str) -> tuple[str, int]:
        host, sep, port_text = target.rpartition(":")
        if not sep or not port_text.isdigit():
            raise ValueError(f"bad CONNECT target {target[:100]!r}")
        return check_host(host.strip("[]")), int(port_text)

    def _failed_connect(self, url: str, host: str, port: int, exc: Exception) -> None:
        if isinstance(exc, ssl.SSLCertVerificationError):
            error = f"{TLS_REFUSAL} ({exc.verify_message})"
        else:
            error = f"upstream connection failed: {exc or type(exc).__name__}"
        pending = Pending(self._client, "CONNECT", url, self._recorder.clock(),
                           f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n"
                           .encode("latin-1"), b"", error=error)
        self._recorder.finish(pending)

    def _relay(self, head: bytes, reader: io.BufferedReader, client: socket.socket, scheme: str,
               host: str, port: int, upstream: _Upstream) -> bool:
        """Forward one request and its response; return whether the connection may go on."""
        method, target, version = self._request_line(head)
        if scheme == "http":
            parts = urlsplit(target)
            origin_form = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            url = target
        else:
            origin_form = target
            default = 443
            shown = f"[{host}]" if ":" in host else host
            url = f"https://{shown}{'' if port == default else f':{port}'}{target}"
        lines = head.split(b"\r\n")
        kept = [line for line in lines[1:]
                if line.partition(b":")[0].strip().lower() not in _HOP_BY_HOP_PROXY]
        out_head = b"\r\n".join(
            [f"{method} {origin_form} {version}".encode("latin-1"), *kept]
        )
        if _header_values(head, b"transfer-encoding"):
            raise _Closed("chunked request bodies are not supported")
        lengths = _header_values(head, b"content-length")
        length = int(lengths[0]) if lengths and lengths[0].isdigit() else 0
        body = reader.read(length) if length else b""
        if len(body) != length:
            raise _Closed("client closed inside a request body")
        pending = Pending(self._client, method, url, self._recorder.clock(), out_head, body)
        try:
            self._exchange(pending, upstream, client)
        finally:
            self._recorder.finish(pending)
        request_close = any(v.lower() == b"close" for v in _header_values(head, b"connection"))
        return (not pending.error and not pending.truncated and not pending.client_aborted
                and not request_close and upstream.reusable)

    def _exchange(self, p: Pending, upstream: _Upstream, client: socket.socket) -> None:
        for attempt in (0, 1):
            try:
                upstream.ensure()
                p.ip, p.port, p.chain = upstream.ip, upstream.port, upstream.chain
                upstream.sock_send(p.request_head + p.request_body)
                head = _read_head(upstream.reader)
                while head and self._status(head) // 100 == 1 and self._status(head) != 101:
                    self._to_client(p, client, head)
                    head = _read_head(upstream.reader)
            except (OSError, _Closed) as exc:
                if attempt == 0 and upstream.was_reused and p.method in _IDEMPOTENT:
                    upstream.close()  # a kept-alive connection the server had dropped
                    continue
                p.error = self._reason(exc)
                return
            if not head:
                if attempt == 0 and upstream.was_reused and p.method in _IDEMPOTENT:
                    upstream.close()
                    continue
                # stop() shuts the sockets down: an end of stream then is the capture's cut.
                p.error = self._cut() or "the server closed the connection without answering"
                return
            break
        p.response_head = head
        p.status = self._status(head)
        p.body = self._recorder.spool()
        self._to_client(p, client, head)
        self._body(p, upstream, client, head)

    def _cut(self) -> str | None:
        """Why the capture itself cut an exchange now, or None if it did not."""
        if time.monotonic() >= self.deadline:
            return TIME_LIMIT
        if self._stopping:
            return CAPTURE_ENDED
        return None

    def _reason(self, exc: BaseException) -> str:
        return self._cut() or str(exc) or type(exc).__name__

    @staticmethod
    def _status(head: bytes) -> int:
        parts = head.split(b" ", 2)
        if len(parts) < 2 or not parts[1][:3].isdigit():
            raise _Closed("not an HTTP status line")
        return int(parts[1][:3])

    def _to_client(self, p: Pending, client: socket.socket, data: bytes) -> None:
        if p.client_aborted:
            return
        try:
            client.sendall(data)
        except OSError:
            # Keep reading from the server so that the record is complete.
            p.client_aborted = True

    def _keep(self, p: Pending, client: socket.socket, data: bytes, *,
              entity: bool = True) -> None:
        assert p.body is not None
        p.body.write(data)
        p.body_len += len(data)
        p.digest.update(data)
        if entity:
            p.entity.update(data)
        self._to_client(p, client, data)

    def _body(self, p: Pending, upstream: _Upstream, client: socket.socket,
              head: bytes) -> None:
        status = p.status or 0
        reader = upstream.reader
        if p.method == "HEAD" or status in (204, 304) or status == 101:
            upstream.reusable = status != 101
            return
        chunked = any(b"chunked" in v.lower() for v in _header_values(head, b"transfer-encoding"))
        lengths = _header_values(head, b"content-length")
        conn_close = any(v.lower() == b"close" for v in _header_values(head, b"connection"))
        upstream.reusable = not conn_close and head.startswith(b"HTTP/1.1")
        try:
            if chunked:
                self._chunked(p, reader, client)
            elif lengths and lengths[0].isdigit():
                remaining = int(lengths[0])
                while remaining:
                    self._check_time()
                    data = reader.read1(min(_CHUNK, remaining))
                    if not data:
                        cut = self._cut()
                        p.truncated = "time" if cut else "disconnect"
                        p.error = cut
                        upstream.reusable = False
                        return
                    self._keep(p, client, data)
                    remaining -= len(data)
            else:
                upstream.reusable = False
                while True:
                    self._check_time()
                    data = reader.read1(_CHUNK)
                    if not data:
                        # The end of the body, unless the capture's own cut ended the stream.
                        cut = self._cut()
                        if cut:
                            p.truncated, p.error = "time", cut
                        return
                    self._keep(p, client, data)
        except (OSError, _Closed) as exc:
            upstream.reusable = False
            timed = time.monotonic() >= self.deadline or self._stopping
            p.truncated = ("time" if timed else
                           "unspecified" if isinstance(exc, _Malformed) else "disconnect")
            p.error = self._reason(exc)

    def _check_time(self) -> None:
        if time.monotonic() >= self.deadline or self._stopping:
            raise _Closed("capture time limit")

    def _chunked(self, p: Pending, reader: io.BufferedReader, client: socket.socket) -> None:
        while True:
            self._check_time()
            line = reader.readline(4096)
            if not line:
                raise _Closed("connection closed before the last chunk")
            self._keep(p, client, line, entity=False)
            digits = line.split(b";", 1)[0].strip()
            if not line.endswith(b"\n") or not _CHUNK_SIZE.fullmatch(digits):
                raise _Malformed(f"malformed chunk-size line {line[:40]!r}")
            size = int(digits, 16)
            if size == 0:
                while True:
                    trailer = reader.readline(4096)
                    if not trailer:
                        raise _Closed("connection closed in chunked trailer")
                    self._keep(p, client, trailer, entity=False)
                    if trailer in (b"\r\n", b"\n"):
                        return
            remaining = size
            while remaining:
                self._check_time()
                data = reader.read1(min(_CHUNK, remaining))
                if not data:
                    raise _Closed("connection closed inside a chunk")
                self._keep(p, client, data)
                remaining -= len(data)
            ending = reader.readline(3)
            self._keep(p, client, ending, entity=False)
            if ending not in (b"\r\n", b"\n"):
                raise _Malformed("a chunk not followed by CRLF")


class _Upstream:
    """One connection from the proxy to the origin server, kept alive while it may be."""

    def __init__(self, proxy: RecordingProxy, host: str, port: int, *, tls: bool) -> None:
        self.proxy = proxy
        self.host, self.port, self.tls = host, port, tls
        self.sock: socket.socket | None = None
        self.reader: io.BufferedReader = io.BufferedReader(io.BytesIO())
        self.ip: str | None = None
        self.chain: tuple[bytes, ...] = ()
        self.reusable = True
        self.was_reused = False

    def connect(self) -> None:
        raw = socket.create_connection((self.host, self.port), timeout=self.proxy._timeout())
        try:
            self.proxy._track(raw)
        except _Closed:
            raw.close()
            raise OSError("capture ended") from None
        self.ip = str(raw.getpeername()[0])
        sock: socket.socket = raw
        if self.tls:
            try:
                tls_sock = self.proxy._upstream_ctx.wrap_socket(raw, server_hostname=self.host)
            except (ssl.SSLError, OSError):
                self.proxy._untrack(raw)
                raise
            self.chain = presented_chain(tls_sock)
            self.proxy._recorder.note_chain(self.host, self.port, self.chain)
            self.proxy._track(tls_sock)
            self.proxy._forget(raw)  # wrap_socket took over its descriptor
            sock = tls_sock
        self.sock = sock
        self.reader = sock.makefile("rb")
        self.reusable = True
        self.was_reused = False

    def ensure(self) -> None:
        if self.sock is None:
            self.connect()
        else:
            self.was_reused = True
        assert self.sock is not None
        self.sock.settimeout(self.proxy._timeout())

    def sock_send(self, data: bytes) -> None:
        assert self.sock is not None
        self.sock.sendall(data)

    def close(self) -> None:
        if self.sock is not None:
            self.proxy._untrack(self.sock)
        self.sock = None
