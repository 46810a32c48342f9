"""An item's metadata within the record's cap: what its record keeps, and - when exiftool
said more than a record may hold - the whole output kept beside the ledger as
``.custody/metadata/<sha256>.json``, named in the record by its SHA-256 and size
(docs/format.md §6, ``item``: ``metadata_full``).

The cap itself is ``custody.evidence.metadata.cap_metadata`` (pure); this module only
stores. May import: ``custody.evidence.metadata``, ``custody.ledger.bodies`` and
``custody.ledger.store``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from custody.evidence.metadata import FileMetadata, cap_metadata
from custody.ledger.bodies import FullMetadata
from custody.ledger.store import Ledger


def item_metadata(
    ledger: Ledger, meta: FileMetadata | None
) -> tuple[dict[str, Any] | None, FullMetadata | None]:
    """(``metadata``, ``metadata_full``) for an item record of a file exiftool described.

    The whole output is stored (durably, in the file store or the database, like a
    timestamp token) before the record that names it is written.
    """
    if meta is None:
        return None, None
    capped = cap_metadata(meta.tags)
    if capped.full is None:
        return capped.tags, None
    full = FullMetadata(hashlib.sha256(capped.full).hexdigest(), len(capped.full))
    ledger.store_token(full.file, capped.full)
    return capped.tags, full
