"""Asking authorities over HTTP: RFC 3161 requests, and the CRLs and OCSP answers that keep
tokens verifiable later.

* :func:`build_request` makes a ``TimeStampReq`` over a digest of any imprint algorithm of
  ``custody.timestamps.algorithms`` (SHA-256 by default), with a fresh random nonce and
  ``certReq`` true;
* :func:`request_token` POSTs it to a timestamp authority (TSA) and returns the raw DER
  ``TimeStampResp`` exactly as received; those bytes are what custody stores.
  :class:`HttpTsa` is the same exchange as a callable (request bytes -> response bytes),
  the transport RFC 4998 operations are given;
* :func:`http_get` and :func:`http_post` fetch CRLs, issuer certificates and OCSP answers
  for ``custody.timestamps.material``.

Every exchange is bounded: timeouts, a size cap, no redirects, no proxy for loopback.
Failures are one-line ``TimestampError``s naming the URL.

May import: ``custody.errors``, ``custody.timestamps.der``, ``custody.timestamps.algorithms``,
the standard library.

Followed: RFC 3161 §2.4.1 (TimeStampReq) and §3.4 (HTTP transport); RFC 6960 Appendix A
(OCSP over HTTP POST).
"""

from __future__ import annotations

import http.client
import ipaddress
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from custody.errors import TimestampError
from custody.timestamps.algorithms import HashAlgorithm
from custody.timestamps.algorithms import algorithm as hash_algorithm
from custody.timestamps.der import der_encode, der_uint

CONTENT_TYPE_QUERY: Final = "application/timestamp-query"


CONTENT_TYPE_REPLY: Final = "application/timestamp-reply"


# RFC 3161 §3.4 names application/timestamp-reply; a few deployed TSAs answer with the
# draft name application/timestamp-response. Both carry the same DER TimeStampResp.
_REPLY_TYPES: Final = frozenset({CONTENT_TYPE_REPLY, "application/timestamp-response"})


MAX_RESPONSE_BYTES: Final = 1024 * 1024  # real tokens with a full chain are < 20 KiB


@dataclass(frozen=True)
class TimestampRequest:
    """A DER ``TimeStampReq`` over a digest, with the nonce kept for checking."""

    digest: bytes
    nonce: int
    der: bytes = field(repr=False)
    cert_req: bool = True
    algorithm: str = "sha256"

    def as_bytes(self) -> bytes:
        return self.der


# ----------------------------------------------------------------- requesting


def build_request(
    digest: bytes, algorithm: str | HashAlgorithm = "sha256", *, null_parameters: bool = True
) -> TimestampRequest:
    """A ``TimeStampReq`` (RFC 3161 §2.4.1) whose imprint is ``digest``, an ``algorithm``
    digest (``sha256``, ``sha384``, ``sha512``, ``sha3-512``...).

    The imprint is the digest itself (rfc3161-client's TimestampRequestBuilder hashes
    the data it is given, which would stamp a hash of the digest instead), with a fresh
    random 64-bit nonce and ``certReq`` true so the TSA includes its certificate.

    The imprint's AlgorithmIdentifier carries NULL parameters, as OpenSSL's ``ts -query``
    and rfc3161-client write it (checkpoint tokens); ``null_parameters=False`` leaves them
    absent (RFC 5754 §2), as RFC 4998 archive timestamps need: Bouncy Castle compares the
    AlgorithmIdentifiers of a chain, parameters included, and writes them absent itself.
    ValueError for a digest of the wrong length or an algorithm not acceptable for new
    imprints (SHA-1, SHA-224).
    """
    alg = algorithm if isinstance(algorithm, HashAlgorithm) else hash_algorithm(algorithm)
    if not alg.imprint:
        raise ValueError(f"{alg.name} is not acceptable for new timestamps")
    if not isinstance(digest, bytes) or len(digest) != alg.size:
        raise ValueError(f"a {alg.name} digest of exactly {alg.size} bytes is required")
    nonce = secrets.randbits(64) | (1 << 63)  # always a full 64 bits
    identifier = alg.der_null if null_parameters else alg.der
    imprint = der_encode(0x30, identifier + der_encode(0x04, digest))
    body = der_uint(1) + imprint + der_uint(nonce) + b"\x01\x01\xff"
    return TimestampRequest(
        digest=digest, nonce=nonce, cert_req=True, der=der_encode(0x30, body), algorithm=alg.name
    )


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


def _exchange(
    url: str,
    *,
    data: bytes | None,
    headers: dict[str, str],
    timeout: float,
    max_bytes: int,
    accept_types: frozenset[str] | None,
    what: str,
) -> bytes:
    """One bounded HTTP exchange (POST when ``data`` is given, else GET); the body.

    ``timeout`` bounds connecting and every blocking read, so a server that accepts the
    connection and stays silent costs ``timeout`` seconds; in addition the body is
    abandoned once ``timeout`` has elapsed since the start (checked between reads), so a
    server trickling bytes cannot hold the caller much longer. ``what`` names the other
    side in messages ("timestamp authority", "CRL distribution point"...).
    """
    label = f"{what} {url}" if what else url
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TimestampError(f"{what or 'the'} URL {url!r} is not an http(s) URL".lstrip())
    handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
    if _is_loopback(parts.hostname):
        handlers.append(urllib.request.ProxyHandler({}))  # never proxy loopback
    opener = urllib.request.build_opener(*handlers)
    http_request = urllib.request.Request(
        url, data=data, method="POST" if data is not None else "GET", headers=headers
    )
    deadline = time.monotonic() + timeout
    try:
        with opener.open(http_request, timeout=timeout) as response:
            ctype = response.headers.get_content_type()
            if accept_types is not None and ctype not in accept_types:
                wanted = sorted(accept_types)[0]
                raise TimestampError(f"{label} answered with content type {ctype!r}, not {wanted}")
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise TimestampError(_too_big(label, max_bytes))
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
                if len(body) > max_bytes:
                    raise TimestampError(_too_big(label, max_bytes))
            return bytes(body)
    except TimestampError:
        raise
    except urllib.error.HTTPError as err:
        raise TimestampError(f"{label} answered HTTP {err.code} {err.reason}".rstrip()) from None
    except urllib.error.URLError as err:
        raise TimestampError(_unreachable(label, err.reason, timeout)) from None
    except OSError as err:  # timeouts, resets, TLS failures while reading
        raise TimestampError(_unreachable(label, err, timeout)) from None
    except (http.client.HTTPException, ValueError) as err:  # malformed HTTP
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise TimestampError(f"{label} sent a malformed HTTP answer: {detail[:120]}") from None


def request_token(url: str, request: TimestampRequest, *, timeout: float = 20.0) -> bytes:
    """POST ``request`` to the TSA at ``url`` and return the raw DER response.

    Raises TimestampError (one line) on anything but an HTTP 200
    ``application/timestamp-reply`` of at most MAX_RESPONSE_BYTES, after at most about
    ``timeout`` seconds. The bytes are not checked here: see ``rfc3161.check_response``.
    """
    return _exchange(
        url,
        data=request.as_bytes(),
        headers={"Content-Type": CONTENT_TYPE_QUERY, "Accept": CONTENT_TYPE_REPLY},
        timeout=timeout,
        max_bytes=MAX_RESPONSE_BYTES,
        accept_types=_REPLY_TYPES,
        what="timestamp authority",
    )


Transport = Callable[[bytes], bytes]
"""Sends a DER TimeStampReq to a TSA and returns the DER TimeStampResp, or raises
TimestampError. :class:`HttpTsa` is the one custody uses."""


@dataclass(frozen=True, slots=True)
class HttpTsa:
    """A TSA reached over HTTP(S) (RFC 3161 §3.4), as a :data:`Transport`."""

    url: str
    timeout: float = 20.0

    def __call__(self, request: bytes) -> bytes:
        return _exchange(
            self.url,
            data=request,
            headers={"Content-Type": CONTENT_TYPE_QUERY, "Accept": CONTENT_TYPE_REPLY},
            timeout=self.timeout,
            max_bytes=MAX_RESPONSE_BYTES,
            accept_types=_REPLY_TYPES,
            what="timestamp authority",
        )


def http_get(url: str, *, timeout: float, max_bytes: int, what: str = "") -> bytes:
    """GET ``url`` (a CRL, an issuer certificate): bounded, no redirects."""
    return _exchange(
        url,
        data=None,
        headers={"Accept": "*/*"},
        timeout=timeout,
        max_bytes=max_bytes,
        accept_types=None,
        what=what,
    )


def http_post(
    url: str, body: bytes, *, content_type: str, timeout: float, max_bytes: int, what: str = ""
) -> bytes:
    """POST ``body`` to ``url`` (an OCSP request): bounded, no redirects."""
    return _exchange(
        url,
        data=body,
        headers={"Content-Type": content_type},
        timeout=timeout,
        max_bytes=max_bytes,
        accept_types=None,
        what=what,
    )


def _too_big(label: str, max_bytes: int) -> str:
    return f"{label} sent more than {max_bytes} bytes; answer refused"


def _unreachable(label: str, reason: object, timeout: float) -> str:
    if isinstance(reason, TimeoutError):
        return f"{label} did not answer within {timeout:g} s"
    if isinstance(reason, ConnectionRefusedError):
        return f"cannot reach {label}: connection refused"
    if isinstance(reason, OSError) and reason.strerror:
        return f"cannot reach {label}: {reason.strerror}"
    return f"cannot reach {label}: {reason}".replace("\n", " ")
