"""Who may sign what, in ledger order: the key rules of docs/events.md, in one place.

Fed one record at a time (``KeyRules.judge``), by the full ledger pass
(``custody.ledger.checks``) and by bundle verification (over the records a bundle carries),
it keeps every key's state and says whether each record is *authentic and allowed*:

* signed by a key the ledger introduced before the record (else UNKNOWN_KEY), with a valid
  signature (BAD_SIGNATURE);
* the key not revoked or retired before the record (KEY_REVOKED) - and, for a key revoked
  as *compromised since* record P, not signed at or after P, nor by a key that a
  compromised key introduced at or after P, transitively (KEY_REVOKED naming the
  revocation);
* its role allows the record: only a custodian introduces a custodian, revokes another
  person's key or disposes (ROLE_NOT_ALLOWED);
* its *authority* allows the record. A key has authority when it is the ledger's founding
  key (self-introduced at record 0), a verifier's trust anchor, or was introduced by a key
  with authority. A key without it (self-introduced later, or introduced by such a key) may
  catalogue new items, but a record of it that changes the state of evidence - a new
  version of an item, a custody event, introducing or retiring a key, a revocation, the
  case details or an exhibit number - is UNAUTHORISED_SIGNER, an error;
* when the verifier pinned the keys it expects (``pinned``), a signer outside the anchors'
  chains is UNTRUSTED_SIGNER, an error.

A record that is not authentic and allowed must have no effect on anything else verify
concludes: callers use the return value to decide whether to count it.

Whether a key is *anchored* (trusted by the verifier, for the verdict) is decided later,
from the final key states, by ``custody.trust.signers``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from custody.findings import Code, Finding
from custody.i18n import N_, _
from custody.ledger.bodies import EventBody, KeyBody, RevocationBody
from custody.ledger.linefacts import LineFacts


@dataclass
class KeyState:
    fingerprint: str
    name: str
    role: str
    introduced_at: int
    introduced_by: str
    revoked_at: int | None = None
    retired_at: int | None = None  # replaced by a successor (rotation)
    records: int = 0
    # Authority to change the state of evidence (see the module docstring).
    authority: bool = False
    # Revoked as compromised: records from ``compromised_from`` on are invalid, as is every
    # key this one introduced from then on (``compromise_revocation`` names the revocation).
    compromised_from: int | None = None
    compromise_revocation: int | None = None
    holder: str | None = None  # the holder's full name, where the introduction records one

    def valid_at(self, position: int) -> bool:
        """May this key sign record ``position``? (Not revoked, retired or compromised.)"""
        ended = self.revoked_at if self.revoked_at is not None else self.retired_at
        if ended is not None and position > ended:
            return False
        return self.compromised_from is None or position < self.compromised_from

    def to_json(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "name": self.name,
            "holder": self.holder,
            "role": self.role,
            "introduced_at": self.introduced_at,
            "introduced_by": self.introduced_by,
            "revoked_at": self.revoked_at,
            "retired_at": self.retired_at,
            "compromised_from": self.compromised_from,
            "records": self.records,
        }


@dataclass(frozen=True)
class Compromise:
    """A key revoked as compromised: invalid from ``since``, per revocation ``revocation``."""

    since: int
    revocation: int


@dataclass
class KeyRules:
    """The key rules applied in ledger order; see the module docstring."""

    anchors: frozenset[str] = frozenset()
    pinned: bool = False
    # Compromises known before the pass (from an earlier pass over the same records), so
    # that records signed between the compromise and its revocation are judged as invalid.
    compromised: Mapping[str, Compromise] = field(default_factory=dict)
    keys: dict[str, KeyState] = field(default_factory=dict)
    signatures: list[Finding] = field(default_factory=list)
    identities: list[Finding] = field(default_factory=list)
    signed_count: int = 0
    # Compromise revocations met in this pass that reach back before themselves: if any
    # were not known in advance, the caller judges the records again with them.
    found_compromises: dict[str, Compromise] = field(default_factory=dict)

    def judge(self, position: int, facts: LineFacts) -> bool:
        """True if record ``position`` is authentic and allowed (then it counts)."""
        keys = self.keys
        body = facts.body
        signer = keys.get(facts.signer)
        self_introduction = (
            signer is None and isinstance(body, KeyBody) and body.fingerprint == facts.signer
        )
        if facts.signature_ok is None or (signer is None and not self_introduction):
            self.signatures.append(
                Finding(
                    Code.UNKNOWN_KEY,
                    f"record {position}",
                    _("signed by a key that the ledger has not introduced before this record"),
                    position,
                    "a key introduced earlier in the ledger",
                    facts.signer,
                )
            )
            return False
        self.signed_count += 1
        if not facts.signature_ok:
            mismatch = (
                _("the signature does not verify with key {name!r}").format(name=signer.name)
                if signer
                else _("the signature does not verify with the key {fingerprint}").format(
                    fingerprint=facts.signer
                )
            )
            self.signatures.append(
                Finding(
                    Code.BAD_SIGNATURE,
                    f"record {position}",
                    mismatch,
                    position,
                    "a valid Ed25519 signature",
                    "an invalid signature",
                )
            )
            return False
        if self_introduction:
            assert isinstance(body, KeyBody)
            if not self._introduce(position, body, facts.signer, None):
                return False
            keys[facts.signer].records += 1
            return self._trusted_signer(position, keys[facts.signer])
        assert signer is not None
        signer.records += 1
        if not self._still_valid(position, signer, body):
            return False
        if not self._trusted_signer(position, signer):
            return False
        if not signer.authority and _changes_state(facts):
            self.identities.append(
                Finding(
                    Code.UNAUTHORISED_SIGNER,
                    f"record {position}",
                    _(
                        "{change} signed by key {name!r}, which has no authority here: it "
                        "introduced itself (or was introduced by a key that did) and is not among "
                        "your trust anchors. Confirm its fingerprint with its holder and add it "
                        "with 'custody trust add' if it is genuine"
                    ).format(change=_describe_change(facts), name=signer.name),
                    position,
                    "a key introduced by the ledger's first key or by one of your trust anchors",
                    signer.fingerprint,
                )
            )
            return False
        return self._role_check(position, facts, signer)

    # --- validity ---------------------------------------------------------------------------

    def _still_valid(self, position: int, signer: KeyState, body: Any) -> bool:
        ended = signer.revoked_at if signer.revoked_at is not None else signer.retired_at
        if ended is not None and position > ended:
            message = (
                _("signed by key {name!r}, revoked at record {seq}")
                if signer.revoked_at is not None
                else _("signed by key {name!r}, retired (replaced by a successor) at record {seq}")
            ).format(name=signer.name, seq=ended)
            self._revoked(position, signer, message)
            return False
        since = signer.compromised_from
        if since is not None and position >= since:
            revocation = signer.compromise_revocation
            if revocation == position:
                return True  # the revocation that declares the compromise
            if isinstance(body, KeyBody) and body.fingerprint not in self.keys:
                # A key the thief introduced: known (so its records are named), compromised.
                self._introduce(position, body, signer.fingerprint, signer)
            self._revoked(
                position,
                signer,
                _(
                    "signed by key {name!r} after it was compromised: record {revocation} "
                    "revokes it as compromised since record {since}"
                ).format(name=signer.name, revocation=revocation, since=since),
            )
            return False
        return True

    def _revoked(self, position: int, signer: KeyState, message: str) -> None:
        self.identities.append(
            Finding(
                Code.KEY_REVOKED,
                f"record {position}",
                message,
                position,
                f"a key valid at record {position}",
                signer.fingerprint,
            )
        )

    def _trusted_signer(self, position: int, signer: KeyState) -> bool:
        if not self.pinned or self._anchored(signer):
            return True
        self.signatures.append(
            Finding(
                Code.UNTRUSTED_SIGNER,
                f"record {position}",
                _(
                    "signed by key {name!r}, which is neither one of the keys you said to "
                    "trust nor introduced by one of them"
                ).format(name=signer.name),
                position,
                "a key you trust, or one introduced by it",
                signer.fingerprint,
            )
        )
        return False

    def _anchored(self, key: KeyState) -> bool:
        seen: set[str] = set()
        current: KeyState | None = key
        while current is not None and current.fingerprint not in seen:
            if current.fingerprint in self.anchors:
                return True
            seen.add(current.fingerprint)
            if current.introduced_by == current.fingerprint:
                return False
            current = self.keys.get(current.introduced_by)
        return False

    # --- roles and what each record does ------------------------------------------------------

    def _role_check(self, position: int, facts: LineFacts, signer: KeyState) -> bool:
        body = facts.body
        if body is None:  # an item: every role may catalogue
            return True
        where = f"record {position}"

        def refuse(what: str) -> bool:
            self.identities.append(
                Finding(
                    Code.ROLE_NOT_ALLOWED,
                    where,
                    _("{what} needs the custodian role; key {name!r} is a {role}").format(
                        what=_(what), name=signer.name, role=signer.role
                    ),
                    position,
                    "custodian",
                    signer.role,
                )
            )
            return False

        if isinstance(body, KeyBody) and body.fingerprint != signer.fingerprint:
            if body.fingerprint in self.keys:
                return True  # a repeated introduction changes nothing
            if body.role == "custodian" and signer.role != "custodian":
                return refuse(N_("introducing a custodian's key"))
            if body.replaces == signer.fingerprint:
                signer.retired_at = position
            self._introduce(position, body, signer.fingerprint, signer)
        elif isinstance(body, RevocationBody):
            if body.key != signer.fingerprint and signer.role != "custodian":
                return refuse(N_("revoking another person's key"))
            self._revoke(position, body)
        elif (
            isinstance(body, EventBody) and body.action == "dispose" and signer.role != "custodian"
        ):
            return refuse(N_("disposal"))
        return True

    def _revoke(self, position: int, body: RevocationBody) -> None:
        target = self.keys.get(body.key)
        if target is not None and target.revoked_at is None:
            target.revoked_at = position
        since = body.compromised_since
        if since is None:
            return
        compromise = Compromise(min(since, position), position)
        known = self.compromised.get(body.key)
        if known is None or known.since > compromise.since:
            self.found_compromises[body.key] = compromise
        if target is not None and (
            target.compromised_from is None or target.compromised_from > compromise.since
        ):
            target.compromised_from = compromise.since
            target.compromise_revocation = position

    def _introduce(
        self, position: int, body: KeyBody, by: str, introducer: KeyState | None
    ) -> bool:
        """Register a key; False if its introduction is refused (the key stays unknown)."""
        keys = self.keys
        where = f"record {position}"
        founder = introducer is None and position == 0
        anchored = body.fingerprint in self.anchors
        if introducer is None and not founder:
            custodians = any(k.role == "custodian" for k in keys.values())
            if body.role == "custodian" and custodians:
                # Refused like a custodian introduced by a non-custodian: the key is not
                # introduced, so it gains no custodian powers and what it signs later is
                # UNKNOWN_KEY (registering it would let its disposals and revocations count).
                self.identities.append(
                    Finding(
                        Code.ROLE_NOT_ALLOWED,
                        where,
                        _(
                            "key {name!r} claims the custodian role by introducing itself; an "
                            "existing custodian must introduce it"
                        ).format(name=body.name),
                        position,
                        "introduced by a custodian",
                        "self-introduced",
                    )
                )
                return False
            if not anchored:
                self.identities.append(
                    Finding(
                        Code.KEY_UNVOUCHED,
                        where,
                        _(
                            "key {name!r} ({role}) introduced itself: it may add new items but "
                            "not change the state of evidence; confirm fingerprint {fingerprint} "
                            "with its holder and 'custody trust add' it if genuine"
                        ).format(name=body.name, role=body.role, fingerprint=body.fingerprint),
                        position,
                        "a key introduced by a known key",
                        body.fingerprint,
                    )
                )
        for other in keys.values():
            if other.name == body.name and other.fingerprint != body.fingerprint:
                self.identities.append(
                    Finding(
                        Code.KEY_NAME_REUSED,
                        where,
                        _(
                            "a second key is named {name!r}; the names are only labels, the "
                            "fingerprints identify the signers"
                        ).format(name=body.name),
                        position,
                        other.fingerprint,
                        body.fingerprint,
                    )
                )
                break
        state = KeyState(body.fingerprint, body.name, body.role, position, by, holder=body.holder)
        state.authority = founder or anchored or (introducer is not None and introducer.authority)
        if introducer is not None and introducer.compromised_from is not None:
            # Introduced by a key already compromised at this point: everything it signs is.
            state.compromised_from = position
            state.compromise_revocation = introducer.compromise_revocation
        known = self.compromised.get(body.fingerprint)
        if known is not None and (
            state.compromised_from is None or known.since < state.compromised_from
        ):
            state.compromised_from = known.since
            state.compromise_revocation = known.revocation
        keys[body.fingerprint] = state
        return True


def _changes_state(facts: LineFacts) -> bool:
    """Does this record change the state of evidence (see the module docstring)?"""
    if facts.type in ("event", "revocation", "case", "exhibit"):
        return True
    if facts.type == "key":
        body = facts.body
        return isinstance(body, KeyBody) and (
            body.fingerprint != facts.signer or body.replaces is not None
        )
    if facts.type == "item":
        return any(ref.what == "its supersedes" for ref in facts.refs)
    return False


def _describe_change(facts: LineFacts) -> str:
    """What the record does, as the subject of a finding's sentence (in the run's language)."""
    if facts.type == "event" and isinstance(facts.body, EventBody):
        return _("a custody event ({action})").format(action=facts.body.action)
    if facts.type == "revocation":
        return _("a revocation")
    if facts.type == "case":
        return _("the case details")
    if facts.type == "exhibit":
        return _("an exhibit number")
    if facts.type == "key":
        return _("an introduction of another key (or a rotation)")
    return _("a new version of an item")
