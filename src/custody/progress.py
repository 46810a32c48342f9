"""Progress reporting: what long operations (catalogue, ingest, verify) tell a display.

The library never draws anything; the CLI passes an observer that does. ``NullObserver``
is the silent default and answers every callback of every operation.
"""

from __future__ import annotations

from typing import Protocol


class Observer(Protocol):
    """Progress callbacks; ``advance`` is called from hashing threads."""

    def planned(self, files: int, total_bytes: int) -> None: ...
    def advance(self, nbytes: int) -> None: ...
    def finished_file(self, path: str) -> None: ...


class IngestObserver(Observer, Protocol):
    def copy_written(self, source: str, copy: str) -> None:
        """Called after a copy is durable and before it is re-read for verification."""


class NullObserver:
    """Reports nothing (any ``Observer``, ``IngestObserver`` included)."""

    def planned(self, files: int, total_bytes: int) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass

    def finished_file(self, path: str) -> None:
        pass

    def copy_written(self, source: str, copy: str) -> None:
        pass
