"""Which ledger databases this person uses for which evidence roots.

An evidence root's own config may put its ledger in PostgreSQL. That config is part of the
(untrusted) root: someone who can write to the root could point it at a database of their
own making, and ``verify`` would then check *their* ledger. So ``verify``, ``report`` and
``export`` follow a root's database only if this person has used it for that root before
(recorded in their own ``config.toml`` in the custody home when they ran ``custody init
--ledger``) or confirm it now with ``--ledger URL`` (which is then remembered).
"""

from __future__ import annotations

import tomllib
import urllib.parse
from pathlib import Path

from custody.errors import InputError, UsageError
from custody.home import user_config_path
from custody.i18n import _
from custody.root import EvidenceRoot
from custody.system.files import write_atomic

_PG = ("postgresql:", "postgres:")


def redacted(url: str) -> str:
    """The URL without its password, for messages (a secret is never printed)."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ""
    return urllib.parse.urlunsplit(parts._replace(netloc=user + host))


def _load(path: Path) -> dict[str, object]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(
            _("your custody config {path} cannot be read: {why}").format(path=path, why=exc)
        ) from None


def known_ledgers(path: Path | None = None) -> dict[str, str]:
    table = _load(path or user_config_path()).get("ledgers", {})
    if not isinstance(table, dict):
        return {}
    return {str(k): str(v) for k, v in table.items() if isinstance(v, str)}


def remember_ledger(root: EvidenceRoot, url: str, path: Path | None = None) -> None:
    import tomli_w

    where = path or user_config_path()
    document = _load(where)
    table = document.get("ledgers")
    ledgers = dict(table) if isinstance(table, dict) else {}
    ledgers[str(root.path)] = url
    document["ledgers"] = ledgers
    where.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomic(where, tomli_w.dumps(document).encode("utf-8"), mode=0o600)


def confirm_ledger(root: EvidenceRoot, confirmed: str | None = None) -> None:
    """Refuse a root whose config names a database this person has not used for it.

    ``confirmed``: the URL the person gave on the command line (``--ledger``); it must be
    the one the root names, and is then remembered.
    """
    backend = root.config().ledger
    if not backend.startswith(_PG):
        if confirmed is not None:
            raise UsageError(_("--ledger applies only to roots whose ledger is in PostgreSQL"))
        return
    if confirmed is not None:
        if confirmed != backend:
            raise UsageError(
                _("--ledger {confirmed} is not the database this root names ({backend})").format(
                    confirmed=redacted(confirmed), backend=redacted(backend)
                )
            )
        remember_ledger(root, backend)
        return
    if known_ledgers().get(str(root.path)) == backend:
        return
    raise UsageError(
        _(
            "{path} names a ledger database you have not used for it ({backend}); if "
            "it is yours, confirm it once with --ledger URL"
        ).format(path=root.path, backend=redacted(backend))
    )
