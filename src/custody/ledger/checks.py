"""Checking a ledger's lines: structure, sequence, hash chain, keys, roles and checkpoints.

The work splits in two. Per line, independently of every other line
(``custody.ledger.linefacts``): parse strictly, hash, check the signature. Then, here, in
ledger order, everything that depends on what came
before (``_Pass``): sequence numbers, the hash chain, whether the signer was introduced
before the record and not revoked or retired, whether its role allows the record, and -
once the Merkle tree is built from all leaf hashes - every checkpoint's root.

References between records are checked here too: an event's items, an item's
``duplicate_of``/``supersedes`` (``references``), and what ``evidence-record`` and
``validation`` records name - earlier checkpoints, the timestamp records over them, the
evidence record a renewal renews, the token records material is for (REFERENCE_INVALID).

Key rules (docs/events.md): the first key introduces itself; later keys introduce
themselves (reported as KEY_UNVOUCHED unless the verifier pinned them) or are vouched for
by a key already introduced - only a custodian may introduce a custodian - or by the key
they replace (rotation retires the old key). A revocation is
signed by the key itself or a custodian. Records a key signs after its revocation or
retirement fail with KEY_REVOKED. Disposal needs the custodian role (ROLE_NOT_ALLOWED).
Authentic web captures (``capture`` events) are collected for the capture-folder checks
that ``verify/roots.py`` runs with the files (docs/capture.md).
Exhibit numbers are stable once assigned and never reused (``custody.ledger.exhibits``,
EXHIBIT_CONFLICT); the latest authentic ``case`` record states the case.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from custody.errors import RecordError
from custody.findings import Code, Finding, VerificationResult
from custody.i18n import _, ngettext
from custody.ledger import merkle
from custody.ledger.bodies import (
    CaseBody,
    CheckpointBody,
    EventBody,
    EvidenceRecordBody,
    ExhibitBody,
    ItemBody,
    TimestampBody,
    ValidationBody,
    WitnessBody,
)
from custody.ledger.exhibits import ExhibitBook
from custody.ledger.keyrules import Compromise, KeyRules, KeyState
from custody.ledger.linefacts import (
    NO_DIGEST,
    LineFacts,
    LineSource,
    examine,
    learn_key,
    line_facts,
)
from custody.ledger.records import RECORD_TYPES, SELF_DATED_TYPES, SignedRecord
from custody.ledger.references import Reference, reference_finding

_LISTED_GAP = 1000  # longer runs of missing records are reported as one range

# One byte per record in LedgerState.kinds: the type's first letter ("?" unreadable),
# except evidence-record, which would collide with event.
KIND_OF = {t: ord(t[0]) for t in RECORD_TYPES} | {"evidence-record": ord("E")}
SELF_DATED_KINDS = frozenset(KIND_OF[t] for t in SELF_DATED_TYPES)


@dataclass(frozen=True)
class TrustedCheckpoint:
    """A tree size and root the verifier obtained independently of this ledger."""

    tree_size: int
    root: bytes
    source: str
    line: bytes | None = None  # the signed checkpoint record, when the verifier holds one


@dataclass
class LedgerState:
    """What a ledger pass learns, for the file and timestamp checks and for bundles."""

    items: dict[bytes, ItemBody] = field(default_factory=dict)  # latest record per path
    item_seq: dict[bytes, int] = field(default_factory=dict)
    item_time: dict[bytes, str] = field(default_factory=dict)
    disposed: set[int] = field(default_factory=set)
    kinds: bytearray = field(default_factory=bytearray)  # first letter of each type, "?"
    checkpoint_lines: dict[int, bytes] = field(default_factory=dict)
    timestamps: list[tuple[int, TimestampBody]] = field(default_factory=list)
    keys: dict[str, KeyState] = field(default_factory=dict)
    # Item records that a later version of the same path replaced: their bytes must still be
    # somewhere in the root unless an authorised event accounts for them (ORIGINAL_MISSING).
    replaced: dict[int, ItemBody] = field(default_factory=dict)
    accounted: set[int] = field(default_factory=set)  # disposed or superseded by an event
    first_line_hash: str | None = None  # the ledger's identity: SHA-256 of line 0
    witnesses: list[tuple[int, WitnessBody]] = field(default_factory=list)
    checkpoints: list[tuple[int, CheckpointBody]] = field(default_factory=list)
    # Authentic web captures, for the capture-folder checks (verify/roots.py).
    captures: list[tuple[int, EventBody]] = field(default_factory=list)
    tree: merkle.MemoryTree = field(default_factory=merkle.MemoryTree)
    records: int = 0
    exhibits: ExhibitBook = field(default_factory=ExhibitBook)
    case: tuple[int, CaseBody] | None = None  # the latest authentic case record
    evidence_records: list[tuple[int, EvidenceRecordBody]] = field(default_factory=list)
    validations: list[tuple[int, ValidationBody]] = field(default_factory=list)


# --- in order -------------------------------------------------------------------------------


class _Seqs:
    """The sequence number each line holds, by position (-1: unreadable line).

    Stored only from the first line whose number is not its position: in a sound ledger
    every record's number is its position, and an array of them costs 8 bytes a record
    (80 MB at 10,000,000 records) for nothing. Indexed like that array.
    """

    __slots__ = ("_count", "_stored")

    def __init__(self) -> None:
        self._count = 0
        self._stored: array[int] | None = None  # every number, once one differs

    def append(self, seq: int) -> None:
        if self._stored is None:
            if seq == self._count:
                self._count += 1
                return
            self._stored = array("q", range(self._count))
        self._stored.append(seq)
        self._count += 1

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, position: int) -> int:
        return range(self._count)[position] if self._stored is None else self._stored[position]

    def values(self) -> Sequence[int]:
        return range(self._count) if self._stored is None else self._stored


class _Pass:
    def __init__(self, rules: KeyRules, collect_items: bool) -> None:
        self.state = LedgerState()
        self.rules = rules
        self.state.keys = rules.keys
        self.collect_items = collect_items
        self.structure: list[Finding] = []
        self.chain: list[Finding] = []
        self.seqs = _Seqs()
        self.leaves = bytearray()
        self.digests = bytearray()  # the SHA-256 of the item at each position, else zeros
        self.references: list[Finding] = []
        self.reference_count = 0
        self.exhibit_findings: list[Finding] = []
        self.checkpoint_records = 0
        self.prev_hash: str | None = None
        self.prev_parsed = False
        self.prev_seq: int | None = None

    def feed(self, position: int, facts: LineFacts) -> None:
        state = self.state
        if position == 0 and facts.complete:
            state.first_line_hash = facts.hash
        self.leaves += facts.leaf
        self.digests += facts.content or NO_DIGEST
        before_hash, before_parsed, before_seq = self.prev_hash, self.prev_parsed, self.prev_seq
        self.prev_hash, self.prev_parsed, self.prev_seq = facts.hash, False, None
        if not facts.complete:
            state.kinds.append(ord("?"))
            self.seqs.append(-1)
            self.structure.append(
                Finding(
                    Code.TRUNCATED_RECORD,
                    f"record {position}",
                    _(
                        "the ledger ends with an incomplete line (a write was cut off); 'custody "
                        "repair' removes it"
                    ),
                    position,
                    "a complete line ending in a newline",
                    f"{facts.size} bytes without a newline",
                )
            )
            return
        if facts.error is not None:
            state.kinds.append(ord("?"))
            self.seqs.append(-1)
            self.structure.append(
                Finding(Code.RECORD_MALFORMED, f"record {position}", facts.error, position)
            )
            return
        state.kinds.append(KIND_OF.get(facts.type, ord("?")))
        self.seqs.append(facts.seq)
        self.prev_parsed, self.prev_seq = True, facts.seq
        authentic = self.rules.judge(position, facts)
        if facts.prev != before_hash:
            link = (facts.seq, facts.prev, before_hash, before_parsed, before_seq, authentic)
            self.chain.extend(_chain_link(position, *link))
        references_before = len(self.references)
        if authentic:
            for ref in facts.refs:
                self._reference(position, ref)
        body = facts.body
        if body is None:  # an item record not collected (verify --ledger-only), or a repair
            return
        if isinstance(body, ItemBody):
            # Only authentic, allowed records count: a forged item must not become the
            # "current item" the file check compares a swapped file with.
            if self.collect_items and authentic:
                name = body.name_bytes
                earlier = state.item_seq.get(name)
                if earlier is not None and earlier != facts.seq:
                    state.replaced[earlier] = state.items[name]
                state.items[name] = body
                state.item_seq[name] = facts.seq
                state.item_time[name] = facts.time
        elif isinstance(body, CheckpointBody):
            self.checkpoint_records += 1
            state.checkpoints.append((position, body))
            if facts.line is not None:
                state.checkpoint_lines[position] = facts.line
        elif isinstance(body, TimestampBody):
            state.timestamps.append((position, body))
        elif isinstance(body, WitnessBody) and authentic:
            state.witnesses.append((position, body))
        elif isinstance(body, ExhibitBody) and authentic:
            # An exhibit naming no real item (REFERENCE_INVALID) numbers nothing.
            if len(self.references) == references_before:
                finding = state.exhibits.assign(position, body)
                if finding is not None:
                    self.exhibit_findings.append(finding)
        elif isinstance(body, CaseBody) and authentic:
            state.case = (position, body)
        elif isinstance(body, EventBody) and authentic:
            if body.action == "dispose":
                state.disposed.update(ref.seq for ref in body.items)
                state.accounted.update(ref.seq for ref in body.items)
            elif body.action == "supersede":
                state.accounted.update(ref.seq for ref in body.items)
            elif body.action == "capture":
                # Its items, like every event's, are checked as references above: earlier
                # item records with the digests the event names; its body (bodies.py,
                # captures.py) already holds those digests to the files its capture lists.
                state.captures.append((position, body))
        elif isinstance(body, EvidenceRecordBody):
            state.evidence_records.append((position, body))
            if authentic:
                self._evidence_references(position, body)
        elif isinstance(body, ValidationBody):
            state.validations.append((position, body))
            if authentic:
                self._validation_references(position, body)

    def _refuse(self, position: int, problem: str) -> None:
        self.references.append(
            Finding(Code.REFERENCE_INVALID, f"record {position}", problem, position)
        )

    def _evidence_references(self, position: int, body: EvidenceRecordBody) -> None:
        """The checkpoints and timestamp records an evidence set's objects are made of, and
        the evidence record a renewal renews, come earlier and are what they are named as."""
        stamps = {seq: b for seq, b in self.state.timestamps}
        for group in body.objects:
            self.reference_count += 1 + len(group.timestamps)
            if group.checkpoint >= position or self.state.kinds[group.checkpoint] != ord("c"):
                self._refuse(
                    position,
                    _("names record {seq} as a checkpoint").format(seq=group.checkpoint),
                )
            for seq in group.timestamps:
                stamp = stamps.get(seq)
                if stamp is None or seq >= position or stamp.checkpoint != group.checkpoint:
                    self._refuse(
                        position,
                        _("names record {seq} as a timestamp over checkpoint {checkpoint}").format(
                            seq=seq, checkpoint=group.checkpoint
                        ),
                    )
        if body.previous is not None:
            self.reference_count += 1
            earlier = dict(self.state.evidence_records).get(body.previous)
            if earlier is None or body.previous >= position:
                self._refuse(
                    position,
                    _("renews record {seq}, not an evidence record").format(seq=body.previous),
                )
            elif earlier.objects != body.objects:
                self._refuse(
                    position,
                    _("renews evidence record {seq} but for other objects").format(
                        seq=body.previous
                    ),
                )

    def _validation_references(self, position: int, body: ValidationBody) -> None:
        """Material is for tokens that earlier timestamp or evidence-record records hold."""
        stamps = dict(self.state.timestamps)
        for ref in body.tokens:
            self.reference_count += 1
            kind = self.state.kinds[ref.record] if ref.record < position else None
            stamp = stamps.get(ref.record)
            if kind == ord("t") and stamp is not None:
                if stamp.token_sha256 != ref.token_sha256:
                    self._refuse(
                        position,
                        _("names record {seq}'s token with another SHA-256").format(seq=ref.record),
                    )
            elif kind != ord("E"):
                self._refuse(
                    position,
                    _("is for record {seq}, which holds no timestamp token").format(seq=ref.record),
                )

    def _reference(self, position: int, ref: Reference) -> None:
        # Record numbers are positions in a well-numbered ledger; where the numbering around
        # the target is broken, the sequence check already says so and this one stays quiet.
        self.reference_count += 1
        target = ref.target
        if target < position and self.seqs[target] != target:
            return
        held = None
        if target < position and self.state.kinds[target] == ord("i"):
            held = bytes(self.digests[target * 32 : target * 32 + 32])
        finding = reference_finding(position, ref, held)
        if finding is not None:
            self.references.append(finding)


def key_states(lines: Iterable[tuple[int, bytes]]) -> dict[str, KeyState]:
    """Keys as verification would judge them, from (seq, line) of key and revocation records.

    The same rules as a full verification (introduction, roles, retirement, revocation),
    applied to just the records that decide them, so writers can refuse a key that may no
    longer sign before they write anything.
    """
    chosen = sorted(lines)
    keys: dict[str, bytes] = {}
    for _seq, data in chosen:
        learn_key(data, keys)
    facts = [(seq, examine(data, True, keys, False)) for seq, data in chosen]
    # Writers refuse a key that *any* verifier would find ended: every key is given the
    # authority a verifier that trusts it would grant, so no revocation is discounted.
    everyone = frozenset(keys)
    rules = KeyRules(anchors=everyone)
    for seq, fact in facts:
        rules.judge(seq, fact)
    if rules.found_compromises:
        rules = KeyRules(anchors=everyone, compromised=rules.found_compromises)
        for seq, fact in facts:
            rules.judge(seq, fact)
    return rules.keys


def _chain_link(
    position: int,
    seq: int,
    prev: str | None,
    before_hash: str | None,
    before_parsed: bool,
    before_seq: int | None,
    authentic: bool,
) -> list[Finding]:
    """The finding for a record whose ``prev`` is not the hash of the line before it."""
    if position > 0 and authentic and before_parsed and before_seq == seq - 1:
        # This record is authentic and commits to other bytes than its predecessor (by
        # sequence number) holds: that one changed. When the line before is not its
        # predecessor (records removed, inserted or reordered), blame nobody: the chain
        # is broken here and the sequence check names what is missing or out of order.
        return [
            Finding(
                Code.RECORD_ALTERED,
                f"record {position - 1}",
                _(
                    "record {position} (validly signed) chains to other bytes than this "
                    "record holds: it was changed after it was written"
                ).format(position=position),
                position - 1,
                prev,
                before_hash,
            )
        ]
    return [
        Finding(
            Code.CHAIN_BROKEN,
            f"record {position}",
            _("the previous-line hash does not match the line before it"),
            position,
            before_hash,
            prev,
        )
    ]


def verify_ledger_lines(
    lines: LineSource,
    result: VerificationResult,
    *,
    collect_items: bool = True,
    trusted: TrustedCheckpoint | None = None,
    anchors: Iterable[str] = (),
    pinned: bool = False,
) -> LedgerState:
    """Check a ledger's lines; ``lines()`` yields (bytes without newline, complete).

    ``anchors``: the fingerprints the verifier trusts (they have authority here, see
    ``custody.ledger.keyrules``); ``pinned``: signers outside their chains are errors.

    One streaming pass, so memory grows with the ledger only by the leaf hashes and item
    digests during the pass, then the Merkle tree (65 bytes a record either way, with the
    record's kind), and, if asked, the items. A key revoked as compromised
    since an earlier record makes the records between invalid after the fact: then the
    lines are judged once more, knowing the compromise from the start.
    """
    anchor_set = frozenset(anchors)
    compromised: dict[str, Compromise] = {}
    while True:
        rules = KeyRules(anchors=anchor_set, pinned=pinned, compromised=dict(compromised))
        run = _Pass(rules, collect_items)
        for position, facts in enumerate(line_facts(lines, collect_items)):
            run.feed(position, facts)
        if not rules.found_compromises:
            return _finish(run, result, trusted)
        compromised.update(rules.found_compromises)


def _finish(
    run: _Pass, result: VerificationResult, trusted: TrustedCheckpoint | None
) -> LedgerState:
    state = run.state
    state.records = len(run.seqs)
    # Peak memory is here: the digests (32 bytes a record) served only the references,
    # checked during the pass, and the leaf hashes become the tree's lowest level as they
    # are, not copied (two copies of them made a 7,970,000-record check peak at 1.36 GB).
    run.digests = bytearray()
    state.tree = merkle.MemoryTree.from_leaf_hashes(run.leaves, adopt=True)
    run.leaves = bytearray()
    checkpoint_findings = _check_checkpoints(state)
    run.structure.extend(_sequence_findings(run.seqs.values()))
    if not run.checkpoint_records and state.records:
        # (A checkpoint that does not match is reported as such, not as "none signed".)
        checkpoint_findings.append(
            Finding(
                Code.NO_CHECKPOINT,
                "ledger",
                _("no checkpoint has been signed yet: run 'custody sign'"),
            )
        )
    result.ledger_size = state.records
    result.tree_root = merkle.root_hash(state.tree).hex()
    result.signers = [k.to_json() for k in state.keys.values()]
    rules = run.rules
    result.add_check(
        "record structure",
        run.structure,
        state.records,
        ngettext(
            "{n} line parsed as a canonical, well-formed record in sequence",
            "{n} lines parsed as canonical, well-formed records in sequence",
            state.records,
        ).format(n=state.records),
    )
    result.add_check(
        "hash chain",
        run.chain,
        state.records,
        _("each record names the SHA-256 of the line before it"),
    )
    result.add_check(
        "signatures",
        rules.signatures,
        rules.signed_count,
        ngettext(
            "{signed} Ed25519 signatures checked against {n} introduced key",
            "{signed} Ed25519 signatures checked against {n} introduced keys",
            len(state.keys),
        ).format(signed=rules.signed_count, n=len(state.keys)),
    )
    result.add_check(
        "keys and roles",
        rules.identities,
        len(state.keys),
        _(
            "each signer introduced before it signed, not revoked, retired or "
            "compromised, in a role allowed to make the record, and with authority "
            "to change the state of evidence"
        ),
    )
    result.add_check(
        "references",
        run.references,
        run.reference_count,
        ngettext(
            "{n} reference from an event, a duplicate or a new version names an earlier item "
            "record with that content",
            "{n} references from events, duplicates and new versions name an earlier item "
            "record with that content",
            run.reference_count,
        ).format(n=run.reference_count),
    )
    result.add_check(
        "checkpoints",
        checkpoint_findings,
        len(state.checkpoints),
        ngettext(
            "{n} checkpoint root recomputed (RFC 9162) and chained by consistency proofs",
            "{n} checkpoint roots recomputed (RFC 9162) and chained by consistency proofs",
            len(state.checkpoints),
        ).format(n=len(state.checkpoints)),
    )
    if state.exhibits.records or run.exhibit_findings:
        result.add_check(
            "exhibit numbers",
            run.exhibit_findings,
            state.exhibits.records,
            ngettext(
                "{n} exhibit number, given to one item record only, never changed and never reused",
                "{n} exhibit numbers, each given to one item record only, never changed and "
                "never reused",
                len(state.exhibits.by_item),
            ).format(n=len(state.exhibits.by_item)),
        )
    if trusted is not None:
        result.add_check(
            "held checkpoint",
            check_held(state, trusted),
            1,
            _("today's ledger extends the checkpoint of {tree_size} records from {source}").format(
                tree_size=trusted.tree_size, source=trusted.source
            ),
        )
    return state


def _check_checkpoints(state: LedgerState) -> list[Finding]:
    """Every checkpoint's root against the tree; consistency between the matching ones."""
    findings: list[Finding] = []
    matching: list[tuple[int, CheckpointBody]] = []
    for position, body in state.checkpoints:
        where = f"record {position}"
        if body.tree_size > position:
            findings.append(
                Finding(
                    Code.CHECKPOINT_MISMATCH,
                    where,
                    _("checkpoint claims records that come after it"),
                    position,
                    f"tree size <= {position}",
                    str(body.tree_size),
                )
            )
            continue
        actual = merkle.root_hash(state.tree, body.tree_size).hex()
        if actual != body.root:
            findings.append(
                Finding(
                    Code.CHECKPOINT_MISMATCH,
                    where,
                    _(
                        "the root of the first {tree_size} records is not the one signed here: "
                        "records it covers were changed, removed or reordered"
                    ).format(tree_size=body.tree_size),
                    position,
                    body.root,
                    actual,
                )
            )
            continue
        matching.append((position, body))
    previous: CheckpointBody | None = None
    for position, body in matching:
        if previous is not None and body.tree_size < previous.tree_size:
            # A signed statement that the ledger had fewer records than an earlier one
            # attested: a rollback, even when its root is right for that smaller size.
            findings.append(
                Finding(
                    Code.NOT_APPEND_ONLY,
                    f"record {position}",
                    _(
                        "this checkpoint covers {tree_size} records, fewer than the {earlier} "
                        "an earlier checkpoint covers: a later checkpoint may never be smaller"
                    ).format(tree_size=body.tree_size, earlier=previous.tree_size),
                    position,
                    f"tree size >= {previous.tree_size}",
                    str(body.tree_size),
                )
            )
            continue  # the larger earlier checkpoint stays the one later ones must extend
        if previous is not None:
            proof = merkle.consistency_proof(state.tree, previous.tree_size, body.tree_size)
            try:
                merkle.verify_consistency(
                    previous.tree_size,
                    body.tree_size,
                    bytes.fromhex(previous.root),
                    bytes.fromhex(body.root),
                    proof,
                )
            except merkle.MerkleProofError as exc:
                findings.append(
                    Finding(Code.NOT_APPEND_ONLY, f"record {position}", str(exc), position)
                )
        previous = body
    state.checkpoints = matching
    return findings


def check_held(state: LedgerState, trusted: TrustedCheckpoint) -> list[Finding]:
    where = f"held checkpoint ({trusted.source})"
    if trusted.tree_size > state.tree.size:
        return [
            Finding(
                Code.NOT_APPEND_ONLY,
                where,
                _(
                    "the ledger is shorter than the checkpoint you hold: records were "
                    "removed or the ledger was rolled back"
                ),
                None,
                f"at least {trusted.tree_size} records",
                f"{state.tree.size} records",
            )
        ]
    actual = merkle.root_hash(state.tree, trusted.tree_size)
    if actual != trusted.root:
        return [
            Finding(
                Code.NOT_APPEND_ONLY,
                where,
                _(
                    "the first {tree_size} records are not the ones your checkpoint covers: "
                    "the ledger was rewritten"
                ).format(tree_size=trusted.tree_size),
                None,
                trusted.root.hex(),
                actual.hex(),
            )
        ]
    if trusted.line is not None:
        # The checkpoint you hold was itself a record of this ledger; a ledger rolled back
        # to just before it was signed still has the records it covers, but not the record.
        try:
            position = SignedRecord.parse(trusted.line).seq
        except RecordError:
            return []
        if position >= state.tree.size or state.tree.node(0, position) != merkle.leaf_hash(
            trusted.line
        ):
            return [
                Finding(
                    Code.NOT_APPEND_ONLY,
                    where,
                    _(
                        "the checkpoint you hold was record {position} of this ledger and is not "
                        "there any more: the ledger was rolled back or rewritten after it was "
                        "signed"
                    ).format(position=position),
                    None,
                    f"record {position}: the checkpoint you hold",
                    f"{state.tree.size} records"
                    if position >= state.tree.size
                    else f"another record {position}",
                )
            ]
    return []


def _sequence_findings(seqs: Sequence[int]) -> list[Finding]:
    """Gaps, duplicates and order of sequence numbers (-1 marks an unreadable line)."""
    if all(seq == position for position, seq in enumerate(seqs)):
        return []  # the normal case, checked without building anything
    findings: list[Finding] = []
    seen: dict[int, int] = {}
    highest = -1
    for position, seq in enumerate(seqs):
        if seq < 0:
            continue
        if seq in seen:
            findings.append(
                Finding(
                    Code.RECORD_DUPLICATED,
                    f"record {seq}",
                    _("sequence number {seq} appears again at line {line}").format(
                        seq=seq, line=position + 1
                    ),
                    seq,
                    f"line {seen[seq] + 1} only",
                    f"also line {position + 1}",
                )
            )
            continue
        seen[seq] = position
        if seq < highest:
            findings.append(
                Finding(
                    Code.RECORDS_REORDERED,
                    f"record {seq}",
                    _("record {seq} appears after record {highest}").format(
                        seq=seq, highest=highest
                    ),
                    seq,
                    f"line {seq + 1}",
                    f"line {position + 1}",
                )
            )
        highest = max(highest, seq)
    # Lines that failed to parse may still hold their record; report only gaps beyond them.
    unparsed = sum(1 for s in seqs if s < 0)
    # Gaps as ranges: one forged sequence number near 2**53 must not make verify enumerate
    # (or report) every number below it.
    gaps: list[tuple[int, int]] = []
    following = 0
    for seq in sorted(seen):
        if seq > following:
            gaps.append((following, seq))
        following = seq + 1
    if sum(end - start for start, end in gaps) > unparsed:
        for start, end in gaps:
            if end - start > _LISTED_GAP:
                findings.append(
                    Finding(
                        Code.RECORD_MISSING,
                        f"records {start}-{end - 1}",
                        _("{n} records ({start} to {last}) are not in the ledger").format(
                            n=end - start, start=start, last=end - 1
                        ),
                        start,
                        f"records {start}-{end - 1}",
                        "nothing",
                    )
                )
                continue
            for seq in range(start, end):
                findings.append(
                    Finding(
                        Code.RECORD_MISSING,
                        f"record {seq}",
                        _("record {seq} is not in the ledger").format(seq=seq),
                        seq,
                        f"record {seq}",
                        "nothing",
                    )
                )
    return findings
