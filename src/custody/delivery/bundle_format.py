"""What a bundle is, shared by the code that writes it and the code that checks it: its
format name, payload digests and the limits a received zip is held to.

The layout itself is described in ``custody.delivery.bundle_export`` and docs/bundle.md.
"""

from __future__ import annotations

BUNDLE_FORMAT = "custody-bundle/1"


PAYLOAD_ALGORITHMS = ("sha256", "sha512")


# The one reason index.json gives for an event left out of a bundle (checked on receipt).
WITHHELD_REASON = "also names items outside this bundle"


# Zip safety: refuse archives whose expansion is implausible for evidence.
MAX_ZIP_ENTRIES = 1_000_000


MAX_ZIP_RATIO = 200  # uncompressed / compressed, for any entry over 1 MiB


MAX_ZIP_TOTAL = 1 << 42  # 4 TiB


# The bundle's own files (everything but the payload) are small: a record line is at most
# 16 MiB (docs/format.md §2), a proof a few KiB, the index a few KiB per item. Reading them
# is bounded by these and by the bundle's real size, so a small zip cannot cost minutes.
MAX_PROOF_BYTES = 1 << 20
MAX_MANIFEST_LINE = 64 << 10
LISTED_FINDINGS = 1000  # of one kind per check; the rest are counted in one more finding


def max_index_bytes(files: int) -> int:
    """The largest custody/index.json a bundle of ``files`` files may have."""
    return min(64 << 20, max(4 << 20, (64 << 10) * files))
