"""The trust a verification runs under, as one explicit value (``TrustPolicy``).

Every verification - of a root, a bundle folder or zip, a proof file, a report - is given a
``TrustPolicy`` and shows it in its output ("trusted because: ..."). It holds:

* the **anchors**: keys this person trusts - their own keys (from their keyring), the keys in
  their trust store, and keys named with ``--trusted-key`` for this one run - each with where
  the trust comes from;
* whether the verifier **pinned** the signers it expects (``--trusted-key``): then a signer
  outside the anchors' chains is an error, not merely unconfirmed;
* a **held checkpoint** (``--checkpoint`` or ``--size``/``--root-hash``) the evidence must
  extend; a checkpoint *line* you kept also makes its signer an anchor for the run, since it
  reached you from that signer;
* whether every record must be covered by a trusted timestamp, and the TSA roots;
* the date at which the verifier asks for long-term validity of the timestamps (``at``,
  ``custody verify --at``; docs/long-term.md §4).

Trust material only ever comes from the verifier's side: the keyring and trust store in the
custody home, and the verifier's own command line - never from the evidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from custody.errors import UsageError
from custody.i18n import _, ngettext
from custody.ledger.checks import TrustedCheckpoint
from custody.timestamps.stamping import Trust
from custody.trust.remembered import RememberedLedgers
from custody.trust.store import TrustStore, fingerprints_in_file, normalise_fingerprint

THREAT_MODEL = "docs/threat-model.md"


@dataclass(frozen=True)
class Anchor:
    fingerprint: str
    name: str | None
    source: str  # in words: why this key is trusted


@dataclass(frozen=True)
class TrustPolicy:
    anchors: tuple[Anchor, ...] = ()
    pinned: bool = False
    held: TrustedCheckpoint | None = None
    require_timestamps: bool = False
    tsa: Trust = field(default_factory=Trust)
    # Checkpoints this person verified before (None: none are consulted, e.g. in tests).
    remembered: RememberedLedgers | None = None
    # Witnesses whose cosignatures must cover the records relied on (fingerprints), and how
    # many of them at least (0: no witness is required).
    witnesses: tuple[str, ...] = ()
    min_witnesses: int = 0
    at: datetime | None = None  # long-term validity required at this date (--at)

    @property
    def fingerprints(self) -> frozenset[str]:
        return frozenset(a.fingerprint for a in self.anchors)

    def anchor(self, fingerprint: str) -> Anchor | None:
        return next((a for a in self.anchors if a.fingerprint == fingerprint), None)

    def describe(self) -> list[str]:
        """What this verification trusted, in words, for every output."""
        lines: list[str] = []
        if not self.anchors:
            lines.append(
                _(
                    "no trust anchors: you hold no key and trust none, so no signer can be "
                    "confirmed (confirm a signer's fingerprint by another channel, then "
                    "'custody trust add')"
                )
            )
        for a in self.anchors:
            lines.append(
                _("key {name!r} {fingerprint}: {source}").format(
                    name=a.name, fingerprint=group(a.fingerprint), source=a.source
                )
                if a.name
                else _("key {fingerprint}: {source}").format(
                    fingerprint=group(a.fingerprint), source=a.source
                )
            )
        if self.pinned:
            lines.append(_("only signers trusted through the keys above count (--trusted-key)"))
        if self.held is not None:
            lines.append(
                ngettext(
                    "the evidence must extend the checkpoint of {n} records from {source}",
                    "the evidence must extend the checkpoint of {n} records from {source}",
                    self.held.tree_size,
                ).format(n=self.held.tree_size, source=self.held.source)
            )
        if self.require_timestamps:
            lines.append(_("every record must be covered by a trusted timestamp"))
        if self.min_witnesses:
            lines.append(
                ngettext(
                    "at least {n} of these witnesses must have cosigned a checkpoint covering "
                    "every record: {witnesses}",
                    "at least {n} of these witnesses must have cosigned a checkpoint covering "
                    "every record: {witnesses}",
                    self.min_witnesses,
                ).format(
                    n=self.min_witnesses, witnesses=", ".join(group(w) for w in self.witnesses)
                )
            )
        if self.remembered is not None:
            lines.append(
                _(
                    "the ledger must extend every checkpoint of it you verified before "
                    "(remembered in {folder})"
                ).format(folder=self.remembered.directory)
            )
        if self.at is not None:
            lines.append(
                _(
                    "every timestamp chain must still stand at {time} (long-term validity, --at)"
                ).format(time=f"{self.at:%Y-%m-%dT%H:%M:%SZ}")
            )
        lines.append(
            _("timestamp authorities: the roots you supplied")
            if self.tsa.roots
            else _(
                "timestamp authorities: no roots supplied (tokens checked only against the "
                "certificates they carry; supply --tsa-root)"
            )
        )
        return lines


def _witness_fingerprints(specs: Sequence[str]) -> tuple[str, ...]:
    """Witnesses named by fingerprint, or by a PEM public key / fingerprint file."""
    found: dict[str, None] = {}
    for spec in specs:
        fingerprint = normalise_fingerprint(spec)
        if fingerprint is not None:
            found[fingerprint] = None
            continue
        path = Path(spec)
        if not path.exists():
            raise UsageError(
                _("--witness {spec!r} is neither a fingerprint nor a key file").format(spec=spec)
            )
        found.update((fp, None) for fp, _pem in fingerprints_in_file(path))
    return tuple(found)


def group(fingerprint: str) -> str:
    """A fingerprint in groups of four, to be read aloud and compared."""
    return " ".join(fingerprint[i : i + 4] for i in range(0, len(fingerprint), 4))


def own_anchors() -> list[Anchor]:
    """The keys in this person's keyring: trusted because they are theirs."""
    from custody.keys.keyring import Keyring

    return [
        Anchor(
            k.public.fingerprint, k.name, _("your own key {name!r} (keyring)").format(name=k.name)
        )
        for k in Keyring().list()
    ]


def stored_anchors(store: TrustStore | None = None) -> list[Anchor]:
    anchors = []
    for a in (store or TrustStore()).anchors():
        source = (
            _("your trust store (added {added}; {note})").format(added=a.added, note=a.note)
            if a.note
            else _("your trust store (added {added})").format(added=a.added)
        )
        anchors.append(Anchor(a.fingerprint, a.name, source))
    return anchors


def policy_for(
    *,
    trusted_keys: Sequence[Path] = (),
    held: TrustedCheckpoint | None = None,
    require_timestamps: bool = False,
    tsa: Trust | None = None,
    store: TrustStore | None = None,
    witnesses: Sequence[str] = (),
    min_witnesses: int | None = None,
    at: datetime | None = None,
) -> TrustPolicy:
    """The policy of this person's verification: their keys, their store, their options."""
    anchors: dict[str, Anchor] = {}
    for anchor in [*own_anchors(), *stored_anchors(store)]:
        anchors.setdefault(anchor.fingerprint, anchor)
    for path in trusted_keys:
        for fingerprint, _pem in fingerprints_in_file(path):
            anchors.setdefault(
                fingerprint,
                Anchor(
                    fingerprint, None, _("--trusted-key {path} (this run only)").format(path=path)
                ),
            )
    if held is not None and held.line is not None:
        # A checkpoint you kept came to you from its signer: that signer is whom you trust
        # for this run. (Its records verify only if the evidence also extends it.)
        from custody.ledger.records import SignedRecord

        signer = SignedRecord.parse(held.line).record.signer
        anchors.setdefault(
            signer,
            Anchor(
                signer,
                None,
                _("signed the checkpoint you hold ({source})").format(source=held.source),
            ),
        )
    named = _witness_fingerprints(witnesses)
    if min_witnesses is not None and not named:
        raise UsageError(_("--min-witnesses needs the witnesses: --witness PEM|FINGERPRINT"))
    quorum = len(named) if min_witnesses is None else min_witnesses
    if named and not 1 <= quorum <= len(named):
        raise UsageError(
            ngettext(
                "--min-witnesses must be between 1 and {n}, the witnesses named",
                "--min-witnesses must be between 1 and {n}, the witnesses named",
                len(named),
            ).format(n=len(named))
        )
    return TrustPolicy(
        witnesses=named,
        min_witnesses=quorum if named else 0,
        anchors=tuple(anchors.values()),
        pinned=bool(trusted_keys),
        held=held,
        require_timestamps=require_timestamps,
        tsa=tsa or Trust(),
        remembered=RememberedLedgers(),
        at=at,
    )
