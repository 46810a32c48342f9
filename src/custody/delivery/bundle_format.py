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
