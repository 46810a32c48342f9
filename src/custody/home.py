"""The user's custody home: where this person's keyring, trust store, remembered ledgers and
own settings live - everything custody trusts because it is *theirs*, never because an
evidence root or a bundle says so.

``CUSTODY_HOME`` overrides the location (for automation and tests); otherwise it follows the
XDG base directories: ``$XDG_DATA_HOME/custody`` (``~/.local/share/custody``).

A foundation module: imports nothing of custody.
"""

from __future__ import annotations

import os
from pathlib import Path


def custody_home() -> Path:
    home = os.environ.get("CUSTODY_HOME")
    if home:
        return Path(home)
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "custody"


def keyring_dir() -> Path:
    """Private keys (encrypted at rest)."""
    return custody_home() / "keys"


def trust_store_path() -> Path:
    """The verifier's trust anchors (``custody trust``)."""
    return custody_home() / "trust.json"


def user_config_path() -> Path:
    """This person's own settings, e.g. the ledger databases they use for which roots."""
    return custody_home() / "config.toml"


def remembered_dir() -> Path:
    """Checkpoints of ledgers this person has verified (``custody trust ledgers``)."""
    return custody_home() / "ledgers"
