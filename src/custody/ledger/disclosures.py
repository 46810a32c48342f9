"""Salted commitments to what could identify the people who collected evidence.

An item record names who collected the file (``collector``) and, for an ingested copy,
the path it was copied from and the volume it was on (``acquisition.source_path``,
``acquisition.volume``: mount point, device, label, UUID). In a bundle or a report these
can identify a documenter. So custody records them as **salted commitments**, the way
SD-JWT selective disclosure does (IETF draft-ietf-oauth-selective-disclosure-jwt, §4.2):

* a *disclosure* is the base64url (no padding) of the UTF-8 JSON array
  ``[salt, name, value]``, the salt 16 random bytes in base64url;
* the signed item record holds, under ``commitments``, the lowercase hex SHA-256 of the
  disclosure's ASCII bytes for each field (``{"collector": "<hex>", ...}``) instead of its
  value;
* the disclosures are kept beside the ledger in ``.custody/disclosures.jsonl``, one per
  line, made durable before the records that commit to them
  (``LedgerWriter.before_flush``).

A bundle exported with ``--withhold FIELDS`` leaves those disclosures out: its records
still verify (their signatures cover the commitments, not the values), and nothing in it
reveals the values, which the salt keeps from being guessed by hashing candidates. A
court can later be given the disclosures (``custody disclose``): each is checked by
hashing it and finding that digest in a signed record. Records written before commitments
existed keep their values in the clear and verify as before.

Imports: ``custody.errors``, ``custody.system.files``, ``custody.ledger.bodies``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from custody.errors import RecordError, StorageError
from custody.i18n import _
from custody.ledger.bodies import COMMITTED_FIELDS, ItemBody
from custody.system.files import describe_os_error

FILE_NAME = "disclosures.jsonl"
MAX_DISCLOSURE = 1 << 20


@dataclass(frozen=True)
class Disclosure:
    """One field's value with its salt, as the exact string whose SHA-256 is committed."""

    text: str

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text.encode("ascii")).hexdigest()

    def parts(self) -> tuple[str, str, Any]:
        """(salt, field name, value); RecordError unless it is a well-formed disclosure."""
        return decode(self.text)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make(name: str, value: Any) -> Disclosure:
    """A fresh disclosure of ``value`` under ``name`` (128-bit salt, SD-JWT §4.2.1)."""
    array = [_b64url(secrets.token_bytes(16)), name, value]
    text = json.dumps(array, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return Disclosure(_b64url(text.encode("utf-8")))


def decode(text: str) -> tuple[str, str, Any]:
    """The parts of a disclosure string, checked strictly (it may come from anywhere)."""
    if not text or len(text) > MAX_DISCLOSURE or not text.isascii():
        raise RecordError(_("a disclosure is a non-empty base64url string"))
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        array = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise RecordError(_("a disclosure is base64url of a JSON array")) from None
    if _b64url(raw) != text:
        raise RecordError(_("a disclosure is not in canonical base64url"))
    if not (isinstance(array, list) and len(array) == 3):
        raise RecordError(_("a disclosure is the array [salt, name, value]"))
    salt, name, value = array
    if not isinstance(salt, str) or len(salt) < 16 or not isinstance(name, str):
        raise RecordError(_("a disclosure's salt and name are strings (salt of 128 bits)"))
    if name not in COMMITTED_FIELDS:
        raise RecordError(_("a disclosure names an unknown field {name!r}").format(name=name))
    _check_value(name, value)
    return salt, name, value


def _check_value(name: str, value: Any) -> None:
    if name == "volume":
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise RecordError(_("a disclosed volume is an object of strings"))
    elif not isinstance(value, str):
        raise RecordError(_("a disclosed {name} is a string").format(name=name))


def commit(body: ItemBody) -> tuple[ItemBody, list[Disclosure]]:
    """The body with its identifying values replaced by commitments, and the disclosures."""
    disclosures: list[Disclosure] = []
    commitments: dict[str, str] = dict(body.commitments or {})
    values: dict[str, Any] = {}
    if body.collector is not None:
        values["collector"] = body.collector
    acquisition = body.acquisition
    if acquisition is not None:
        if acquisition.source_path is not None:
            values["source_path"] = acquisition.source_path
        if acquisition.volume is not None:
            values["volume"] = dict(acquisition.volume)
    if not values:
        return body, []
    for name, value in values.items():
        disclosure = make(name, value)
        disclosures.append(disclosure)
        commitments[name] = disclosure.digest
    if acquisition is not None:
        acquisition = replace(acquisition, source_path=None, volume=None)
    committed = replace(body, collector=None, acquisition=acquisition, commitments=commitments)
    return committed, disclosures


def reveal(body: ItemBody, known: Mapping[str, Disclosure]) -> dict[str, Any]:
    """Each identifying value of an item: in the clear (older records), or disclosed by a
    disclosure whose digest the record commits to. Withheld values are absent."""
    values: dict[str, Any] = {}
    if body.collector is not None:
        values["collector"] = body.collector
    if body.acquisition is not None:
        if body.acquisition.source_path is not None:
            values["source_path"] = body.acquisition.source_path
        if body.acquisition.volume is not None:
            values["volume"] = dict(body.acquisition.volume)
    for name, digest in (body.commitments or {}).items():
        found = known.get(digest)
        if found is None:
            continue
        _salt, disclosed_name, value = found.parts()
        if disclosed_name == name:
            values[name] = value
    return values


def withheld(body: ItemBody, known: Mapping[str, Disclosure]) -> list[str]:
    """The committed fields of an item whose disclosure is not at hand."""
    return [name for name, digest in (body.commitments or {}).items() if digest not in known]


def parse_lines(data: bytes, where: str) -> dict[str, Disclosure]:
    """Disclosures from a file of one per line, by digest; RecordError on a malformed one."""
    found: dict[str, Disclosure] = {}
    for number, raw in enumerate(data.split(b"\n"), 1):
        line = raw.strip()
        if not line:
            continue
        try:
            disclosure = Disclosure(line.decode("ascii"))
            disclosure.parts()
        except (UnicodeDecodeError, RecordError) as exc:
            raise RecordError(
                _("{where} line {number}: {why}").format(where=where, number=number, why=exc)
            ) from None
        found[disclosure.digest] = disclosure
    return found


class DisclosureStore:
    """``.custody/disclosures.jsonl`` of one evidence root: appended, never rewritten."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / FILE_NAME
        self._fd: int | None = None
        self._known: dict[str, Disclosure] | None = None

    def stage(self, disclosures: Iterable[Disclosure]) -> None:
        """Append now (made durable by ``sync``, before the records that commit to them)."""
        data = b"".join(d.text.encode("ascii") + b"\n" for d in disclosures)
        if not data:
            return
        try:
            if self._fd is None:
                flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW
                self._fd = os.open(self.path, flags, 0o600)
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            raise StorageError(describe_os_error(exc, "write", self.path)) from None
        if self._known is not None:
            for d in disclosures:
                self._known[d.digest] = d

    def sync(self) -> None:
        if self._fd is not None:
            try:
                os.fsync(self._fd)
            except OSError as exc:
                raise StorageError(describe_os_error(exc, "write", self.path)) from None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def known(self) -> dict[str, Disclosure]:
        """Every disclosure kept here, by digest (lines that do not parse are skipped)."""
        if self._known is None:
            self._known = {}
            try:
                data = self.path.read_bytes()
            except FileNotFoundError:
                return self._known
            except OSError as exc:
                raise StorageError(describe_os_error(exc, "read", self.path)) from None
            for line in data.split(b"\n"):
                try:
                    d = Disclosure(line.decode("ascii"))
                    d.parts()
                except (UnicodeDecodeError, RecordError):
                    continue
                self._known[d.digest] = d
        return self._known

    def for_items(self, bodies: Iterable[ItemBody]) -> Iterator[Disclosure]:
        known = self.known()
        for body in bodies:
            for digest in (body.commitments or {}).values():
                if digest in known:
                    yield known[digest]
