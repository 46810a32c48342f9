"""The ways a capture fails, as ``custody.errors`` exceptions with one-line user messages.

A failed capture still leaves its account behind: every error raised after the output folder
was claimed carries ``record``, the same JSON-able dict ``CaptureResult.to_record()`` gives
(with ``outcome`` saying what went wrong), and that dict is also written to ``capture.json``
in the output folder, so that a refused or failed attempt can enter the chain of custody too.

Each message is a ``said.Said`` (or plain text): the exception says it in the language of the
run, and ``said.english(error)`` gives the English that ``capture.json`` keeps.

Imports ``custody.errors`` and ``custody.acquisition.sources.said``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from custody.acquisition.sources.said import translated
from custody.errors import InputError, StorageError, ToolMissingError, UsageError


class CaptureError(InputError):
    """A page could not be captured (network, DNS, TLS). ``record`` holds what was seen."""

    def __init__(self, message: str, record: Mapping[str, Any] | None = None) -> None:
        super().__init__(translated(message))
        self.said = message  # English, for capture.json (said.english)
        self.record: Mapping[str, Any] | None = record


class CaptureNetworkError(CaptureError):
    """The host could not be resolved or reached."""


class CaptureTLSError(CaptureError):
    """The server's certificate did not verify and ``insecure`` was not given."""


class CaptureUsageError(UsageError):
    """The caller asked for something that cannot be done (bad URL, used output folder)."""

    def __init__(self, message: str) -> None:
        super().__init__(translated(message))
        self.said = message


class CaptureToolError(ToolMissingError):
    """Chromium, Playwright or yt-dlp is missing or would not start."""

    def __init__(self, message: str) -> None:
        super().__init__(translated(message))
        self.said = message


class CaptureStorageError(StorageError):
    """The output folder could not be written."""

    def __init__(self, message: str) -> None:
        super().__init__(translated(message))
        self.said = message
