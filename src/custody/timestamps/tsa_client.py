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
Failures are one-line ``ExchangeError``s (a ``TimestampError``) naming the URL, in the
language of the run, with the same message in English beside it for what is kept in a
record or a file (``material``: the gaps a ``timestamp`` record lists; ``stamping``: the
air-gapped responses document), and whether the other side could not be reached at all.

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
from custody.i18n import N_, _
from custody.timestamps.algorithms import HashAlgorithm
from custody.timestamps.algorithms import algorithm as hash_algorithm
from custody.timestamps.der import der_encode, der_uint

CONTENT_TYPE_QUERY: Final = "application/timestamp-query"


CONTENT_TYPE_REPLY: Final = "application/timestamp-reply"


# RFC 3161 §3.4 names application/timestamp-reply; a few deployed TSAs answer with the
# draft name application/timestamp-response. Both carry the same DER TimeStampResp.
_REPLY_TYPES: Final = frozenset({CONTENT_TYPE_REPLY, "application/timestamp-response"})


MAX_RESPONSE_BYTES: Final = 1024 * 1024  # real tokens with a full chain are < 20 KiB


# Who is on the other side of an exchange, as messages name it (``what``). Marked for the
# catalog here and translated only when a message is made (never at import).
TIMESTAMP_AUTHORITY: Final = N_("timestamp authority")
CRL_POINT: Final = N_("CRL distribution point")
OCSP_RESPONDER: Final = N_("OCSP responder")
ISSUER_LOCATION: Final = N_("issuer certificate location")


class ExchangeError(TimestampError):
    """An HTTP exchange that failed. ``str()`` is the message in the run's language;
    ``english`` the same message in English, for records and files (which never change
    with the language); ``unreachable`` true when the other side could not be reached or
    did not answer in time (a run does not ask it again)."""

    def __init__(self, shown: str, english: str, *, unreachable: bool = False) -> None:
        super().__init__(shown)
        self.english = english
        self.unreachable = unreachable


def english_message(err: BaseException) -> str:
    """The English text of ``err``: ``ExchangeError.english``, else ``str(err)``."""
    return err.english if isinstance(err, ExchangeError) else str(err)


def _failure(
    template: str, what: str, url: str, *, unreachable: bool = False, **fields: object
) -> ExchangeError:
    """``template`` (a catalog message with a ``{label}`` field: who, and the URL) filled
    in the run's language and in English."""
    english = template.format(label=f"{what} {url}" if what else url, **fields)
    label = f"{_(what)} {url}" if what else url
    return ExchangeError(_(template).format(label=label, **fields), english,
                         unreachable=unreachable)  # fmt: skip


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
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        if what:
            english = f"{what} URL {url!r} is not an http(s) URL"
            shown = _("{what} URL {url!r} is not an http(s) URL").format(what=_(what), url=url)
        else:
            english = f"the URL {url!r} is not an http(s) URL"
            shown = _("the URL {url!r} is not an http(s) URL").format(url=url)
        raise ExchangeError(shown, english)
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
                raise _failure(
                    N_("{label} answered with content type {ctype!r}, not {wanted}"),
                    what, url, ctype=ctype, wanted=wanted,
                )  # fmt: skip
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise _too_big(what, url, max_bytes)
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
                    raise _too_big(what, url, max_bytes)
            return bytes(body)
    except TimestampError:
        raise
    except urllib.error.HTTPError as err:
        if err.reason:
            raise _failure(
                N_("{label} answered HTTP {status} {reason}"), what, url,
                status=err.code, reason=err.reason,
            ) from None  # fmt: skip
        raise _failure(N_("{label} answered HTTP {status}"), what, url, status=err.code) from None
    except urllib.error.URLError as err:
        raise _unreachable(what, url, err.reason, timeout) from None
    except OSError as err:  # timeouts, resets, TLS failures while reading
        raise _unreachable(what, url, err, timeout) from None
    except (http.client.HTTPException, ValueError) as err:  # malformed HTTP
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise _failure(
            N_("{label} sent a malformed HTTP answer: {detail}"), what, url, detail=detail[:120]
        ) from None


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
        what=TIMESTAMP_AUTHORITY,
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
            what=TIMESTAMP_AUTHORITY,
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


def _too_big(what: str, url: str, max_bytes: int) -> ExchangeError:
    return _failure(
        N_("{label} sent more than {max_bytes} bytes; answer refused"), what, url,
        max_bytes=max_bytes,
    )  # fmt: skip


def _unreachable(what: str, url: str, reason: object, timeout: float) -> ExchangeError:
    if isinstance(reason, TimeoutError):
        return _failure(
            N_("{label} did not answer within {timeout:g} s"), what, url,
            unreachable=True, timeout=timeout,
        )  # fmt: skip
    if isinstance(reason, ConnectionRefusedError):
        return _failure(N_("cannot reach {label}: connection refused"), what, url, unreachable=True)
    if isinstance(reason, OSError) and reason.strerror:
        return _failure(
            N_("cannot reach {label}: {why}"), what, url, unreachable=True, why=reason.strerror
        )
    return _failure(
        N_("cannot reach {label}: {why}"), what, url, unreachable=True,
        why=str(reason).replace("\n", " "),
    )  # fmt: skip
