"""Capturing online evidence: a URL in, a web archive and its media out.

``capture_url`` (in ``capture``) drives a throw-away headless Chromium through a recording
proxy that writes every HTTP exchange into WARC 1.1, packs the WARC as WACZ 1.1.1, takes a
full-page screenshot and a PDF print, fetches the page's media with yt-dlp through the same
recorder, and returns a ``CaptureResult`` whose ``to_record()`` is the JSON-able account of
what was captured, from where, when and with which tools.

Modules: ``errors`` (the failures), ``tls`` (the separate TLS probe and the capture's own
throw-away certificate authority), ``proxy`` (the recording proxy: HTTP/1.1 on the wire),
``warc_writer`` (the WARC file and its records), ``browser`` (Chromium, run in a child
process), ``media`` (yt-dlp and reassembly of media from the WARC), ``package`` (the output
folder, WACZ and file digests), ``result`` (the frozen dataclasses), ``capture`` (the
top-level API) and ``check`` (``check_capture``: re-checking a finished capture folder
offline, with its own WARC reader).

This package imports only ``custody.errors``, ``custody.clock``, ``custody.system`` and, for
its messages, ``custody.i18n`` and ``custody.acquisition.sources.said`` from custody itself:
what a capture writes (``capture.json``, the WARC) is English in every language.
"""

from __future__ import annotations

from custody.acquisition.capture.capture import capture_url
from custody.acquisition.capture.check import CaptureCheck, Finding, check_capture
from custody.acquisition.capture.errors import (
    CaptureError,
    CaptureNetworkError,
    CaptureTLSError,
    CaptureToolError,
    CaptureUsageError,
)
from custody.acquisition.capture.result import CaptureResult

__all__ = [
    "CaptureCheck",
    "CaptureError",
    "CaptureNetworkError",
    "CaptureResult",
    "CaptureTLSError",
    "CaptureToolError",
    "CaptureUsageError",
    "Finding",
    "capture_url",
    "check_capture",
]
