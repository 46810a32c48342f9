"""Ledgers this person has verified, and the checkpoints they saw (like SSH's known_hosts).

Every ledger has an identity: the SHA-256 of its first line (record 0, the founding key's
self-introduction, whose time makes it unique), the same bytes record 1 names as ``prev``
and the C2SP origin ``custody.ledger/<identity>`` (``custody.ledger.c2sp``). After a
verification of a root or a bundle finds it intact, after ``proof verify`` and after
``import``, the CLI remembers the checkpoint it verified here (``ledgers/<identity>.json``
in the custody home). Every later verification of the same ledger must then prove that
what it sees extends every remembered checkpoint; a shortened or rewritten history is
NOT_APPEND_ONLY naming the checkpoint, when and from what it was first seen.

Nothing is forgotten silently: ``custody trust ledgers`` lists what is remembered, and only
``custody trust forget`` removes a ledger, by its full identity.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from custody.clock import Clock, format_time, utc_now
from custody.errors import InputError, UsageError
from custody.home import remembered_dir
from custody.i18n import _, ngettext
from custody.system.files import write_atomic

FORMAT = "custody-remembered-ledger/1"
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class SeenCheckpoint:
    """A checkpoint of a ledger, as this person verified it once."""

    tree_size: int
    root: str  # hex
    first_seen: str  # RFC 3339 UTC
    source: str  # the root, bundle or proof file it was verified from
    line: str | None = None  # the signed checkpoint record, when there was one
    cosigned: bool = False  # this person cosigned it as a witness

    def describe(self) -> str:
        return ngettext(
            "the checkpoint of {n} records (root {root}) you verified on {time} from {source}",
            "the checkpoint of {n} records (root {root}) you verified on {time} from {source}",
            self.tree_size,
        ).format(n=self.tree_size, root=self.root, time=self.first_seen, source=self.source)

    def to_json(self) -> dict[str, Any]:
        return {
            "tree_size": self.tree_size,
            "root": self.root,
            "first_seen": self.first_seen,
            "source": self.source,
            "line": self.line,
            "cosigned": self.cosigned,
        }

    @classmethod
    def from_json(cls, obj: Any) -> SeenCheckpoint:
        if not isinstance(obj, dict):
            raise ValueError(_("a checkpoint entry is not an object"))
        size, root = obj["tree_size"], str(obj["root"])
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValueError(_("tree_size is not a count"))
        if not _HEX64.fullmatch(root):
            raise ValueError(_("root is not 64 hex digits"))
        line = obj.get("line")
        return cls(
            size,
            root,
            str(obj["first_seen"]),
            str(obj["source"]),
            line if isinstance(line, str) else None,
            bool(obj.get("cosigned", False)),
        )


@dataclass
class RememberedLedger:
    identity: str
    checkpoints: list[SeenCheckpoint] = field(default_factory=list)

    @property
    def latest(self) -> SeenCheckpoint | None:
        return max(self.checkpoints, key=lambda c: c.tree_size, default=None)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "ledger": self.identity,
            "origin": f"custody.ledger/{self.identity}",
            "checkpoints": [c.to_json() for c in sorted(self.checkpoints, key=_order)],
        }


def _order(c: SeenCheckpoint) -> tuple[int, str]:
    return (c.tree_size, c.first_seen)


class RememberedLedgers:
    """The remembered ledgers in a custody home (``ledgers/``)."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or remembered_dir()

    def _path(self, identity: str) -> Path:
        if not _HEX64.fullmatch(identity):
            raise UsageError(
                _("{identity!r} is not a ledger identity (64 hex digits)").format(identity=identity)
            )
        return self.directory / f"{identity}.json"

    def get(self, identity: str) -> RememberedLedger | None:
        path = self._path(identity)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise InputError(
                _("cannot read {path}: {strerror}").format(path=path, strerror=exc.strerror)
            ) from None
        try:
            document = json.loads(data)
            if document.get("format") != FORMAT or document.get("ledger") != identity:
                raise ValueError(_("not {format} for this ledger").format(format=FORMAT))
            seen = [SeenCheckpoint.from_json(c) for c in document["checkpoints"]]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InputError(
                _("your remembered ledger {path} is damaged: {why}").format(path=path, why=exc)
            ) from None
        return RememberedLedger(identity, seen)

    def all(self) -> list[RememberedLedger]:
        if not self.directory.is_dir():
            return []
        found = []
        for path in sorted(self.directory.glob("*.json")):
            ledger = self.get(path.stem) if _HEX64.fullmatch(path.stem) else None
            if ledger is not None:
                found.append(ledger)
        return found

    def remember(
        self,
        identity: str,
        tree_size: int,
        root: str,
        source: str,
        *,
        line: bytes | None = None,
        cosigned: bool = False,
        clock: Clock = utc_now,
    ) -> bool:
        """Keep this checkpoint (True if it is new, or newly cosigned)."""
        ledger = self.get(identity) or RememberedLedger(identity)
        for i, seen in enumerate(ledger.checkpoints):
            if (seen.tree_size, seen.root) == (tree_size, root):
                if cosigned and not seen.cosigned:
                    ledger.checkpoints[i] = SeenCheckpoint(
                        seen.tree_size, seen.root, seen.first_seen, seen.source, seen.line, True
                    )
                    self._write(ledger)
                    return True
                return False
        ledger.checkpoints.append(
            SeenCheckpoint(
                tree_size,
                root,
                format_time(clock()),
                source,
                line.decode("utf-8", "replace") if line is not None else None,
                cosigned,
            )
        )
        self._write(ledger)
        return True

    def forget(self, identity: str) -> RememberedLedger:
        ledger = self.get(identity)
        if ledger is None:
            raise UsageError(_("no remembered ledger {identity}").format(identity=identity))
        self._path(identity).unlink()
        return ledger

    def _write(self, ledger: RememberedLedger) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        text = json.dumps(ledger.to_json(), ensure_ascii=False, indent=2) + "\n"
        write_atomic(self._path(ledger.identity), text.encode("utf-8"), mode=0o600)
