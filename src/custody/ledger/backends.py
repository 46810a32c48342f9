"""Choosing a root's ledger store: the file ledger by default, PostgreSQL when configured.

The only module that knows every store, so that the stores and the evidence root need not
know each other (the root's config only names a backend; this module opens it).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

from custody.errors import UsageError
from custody.i18n import _
from custody.ledger.filestore import FileLedger
from custody.ledger.store import Ledger
from custody.root import Config, EvidenceRoot, init_root

PG_SCHEMES = ("postgresql:", "postgres:")


def _store_class(root: EvidenceRoot) -> Callable[[EvidenceRoot], Ledger]:
    backend = root.config().ledger
    if backend.startswith(PG_SCHEMES):
        from custody.ledger.pgstore import PgLedger

        return PgLedger
    return FileLedger


def open_ledger(root: EvidenceRoot) -> Ledger:
    """The ledger of ``root``, in whichever store its config names."""
    store = _store_class(root)
    return store(root)


def create_root(
    path: str | os.PathLike[str], config: Config | None = None, *, ledger: str | None = None
) -> EvidenceRoot:
    """``init_root``, with the ledger in PostgreSQL when ``ledger`` is a postgresql:// URL.

    The database schema is created first, so an unreachable server fails the init before
    anything is written.
    """
    if ledger is not None:
        if not ledger.startswith(("postgresql://", "postgres://")):
            raise UsageError(
                _("--ledger takes a postgresql:// URL (the file ledger is the default)")
            )
        from custody.ledger.pgstore import create_schema

        create_schema(ledger)
        config = dataclasses.replace(config or Config(), ledger=ledger)
    return init_root(Path(path), config)
