"""Asking a timestamp authority: RFC 3161 requests and their HTTP exchange.

* :func:`build_request` makes a ``TimeStampReq`` (SHA-256 imprint, fresh random
  nonce, ``certReq`` true);
* :func:`request_token` POSTs it to a timestamp authority (TSA) and returns the raw
  DER ``TimeStampResp`` exactly as received; those bytes are what custody stores.
  Bounded: timeouts, a size cap, no redirects, HTTPS except on loopback.
"""

from __future__ import annotations

import http.client
import ipaddress
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Final

from custody.errors import TimestampError
from custody.timestamps.der import der_encode, der_uint

CONTENT_TYPE_QUERY: Final = "application/timestamp-query"


CONTENT_TYPE_REPLY: Final = "application/timestamp-reply"


# RFC 3161 §3.4 names application/timestamp-reply; a few deployed TSAs answer with the
# draft name application/timestamp-response. Both carry the same DER TimeStampResp.
_REPLY_TYPES: Final = frozenset({CONTENT_TYPE_REPLY, "application/timestamp-response"})


MAX_RESPONSE_BYTES: Final = 1024 * 1024  # real tokens with a full chain are < 20 KiB


@dataclass(frozen=True)
class TimestampRequest:
    """A DER ``TimeStampReq`` over a SHA-256 digest, with the nonce kept for checking."""

    digest: bytes
    nonce: int
    der: bytes = field(repr=False)
    cert_req: bool = True

    def as_bytes(self) -> bytes:
        return self.der


# ----------------------------------------------------------------- requesting


def build_request(digest: bytes) -> TimestampRequest:
    """A ``TimeStampReq`` (RFC 3161 §2.4.1) for a 32-byte SHA-256 digest.

    The imprint is the digest itself (rfc3161-client's TimestampRequestBuilder hashes
    the data it is given, which would stamp SHA-256 of the digest instead), with a fresh
    random 64-bit nonce and ``certReq`` true so the TSA includes its certificate.
    """
    if not isinstance(digest, bytes) or len(digest) != 32:
        raise ValueError("a SHA-256 digest of exactly 32 bytes is required")
    nonce = secrets.randbits(64) | (1 << 63)  # always a full 64 bits
    sha256_oid = der_encode(0x06, bytes.fromhex("608648016503040201"))
    algorithm = der_encode(0x30, sha256_oid + b"\x05\x00")
    imprint = der_encode(0x30, algorithm + der_encode(0x04, digest))
    body = der_uint(1) + imprint + der_uint(nonce) + b"\x01\x01\xff"
    return TimestampRequest(digest=digest, nonce=nonce, cert_req=True, der=der_encode(0x30, body))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # urllib would turn a redirected POST into a bodiless GET; a TSA URL that
    # redirects is a configuration problem, reported as the HTTP status it is.
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def request_token(url: str, request: TimestampRequest, *, timeout: float = 20.0) -> bytes:
    """POST ``request`` to the TSA at ``url`` and return the raw DER response.

    ``timeout`` bounds connecting and every blocking read, so a server that accepts
    the connection and stays silent costs ``timeout`` seconds; in addition the body is
    abandoned once ``timeout`` has elapsed since the start (checked between reads), so
    a server trickling bytes cannot hold the caller much longer. Raises TimestampError
    (one line) on anything but an HTTP 200 ``application/timestamp-reply`` of at most
    MAX_RESPONSE_BYTES. The bytes are not checked here: see :func:`check_response`.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TimestampError(f"timestamp authority URL {url!r} is not an http(s) URL")
    handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
    if _is_loopback(parts.hostname):
        handlers.append(urllib.request.ProxyHandler({}))  # never proxy loopback
    opener = urllib.request.build_opener(*handlers)
    http_request = urllib.request.Request(
        url,
        data=request.as_bytes(),
        method="POST",
        headers={"Content-Type": CONTENT_TYPE_QUERY, "Accept": CONTENT_TYPE_REPLY},
    )
    deadline = time.monotonic() + timeout
    try:
        with opener.open(http_request, timeout=timeout) as response:
            ctype = response.headers.get_content_type()
            if ctype not in _REPLY_TYPES:
                raise TimestampError(
                    f"timestamp authority {url} answered with content type {ctype!r}, "
                    f"not {CONTENT_TYPE_REPLY}"
                )
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
                raise TimestampError(_too_big(url))
            body = bytearray()
            while True:
                # Each read blocks for at most `timeout` (the socket timeout); the
                # deadline stops a server that trickles bytes from stretching it.
                if time.monotonic() > deadline:
                    raise TimeoutError
                chunk = response.read1(65536)
                if not chunk:
                    break
                body += chunk
                if len(body) > MAX_RESPONSE_BYTES:
                    raise TimestampError(_too_big(url))
            return bytes(body)
    except TimestampError:
        raise
    except urllib.error.HTTPError as err:
        raise TimestampError(
            f"timestamp authority {url} answered HTTP {err.code} {err.reason}".rstrip()
        ) from None
    except urllib.error.URLError as err:
        raise TimestampError(_unreachable(url, err.reason, timeout)) from None
    except OSError as err:  # timeouts, resets, TLS failures while reading
        raise TimestampError(_unreachable(url, err, timeout)) from None
    except (http.client.HTTPException, ValueError) as err:  # malformed HTTP
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise TimestampError(
            f"timestamp authority {url} sent a malformed HTTP answer: {detail[:120]}"
        ) from None


def _too_big(url: str) -> str:
    return f"timestamp authority {url} sent more than {MAX_RESPONSE_BYTES} bytes; answer refused"


def _unreachable(url: str, reason: object, timeout: float) -> str:
    if isinstance(reason, TimeoutError):
        return f"timestamp authority {url} did not answer within {timeout:g} s"
    if isinstance(reason, ConnectionRefusedError):
        return f"cannot reach timestamp authority {url}: connection refused"
    if isinstance(reason, OSError) and reason.strerror:
        return f"cannot reach timestamp authority {url}: {reason.strerror}"
    return f"cannot reach timestamp authority {url}: {reason}".replace("\n", " ")
