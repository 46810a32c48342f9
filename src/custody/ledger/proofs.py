"""Inclusion and consistency proofs as self-contained files, and their offline checking.

An inclusion proof shows one record is leaf ``i`` of the tree a signed checkpoint commits
to, without revealing any other record: it carries the record's exact line, the audit
path (sibling hashes only), the checkpoint line, and the key records needed to check both
signatures. A consistency proof shows a later tree extends an earlier one. Both are
canonical JSON; docs/proofs.md describes every field so they can be checked with
``sha256sum`` and a few lines of any language.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from custody.errors import ExitCode, ProofError, RecordError, UsageError
from custody.i18n import _
from custody.keys.keyring import PublicKey
from custody.ledger import canonical, merkle
from custody.ledger.bodies import CheckpointBody, KeyBody
from custody.ledger.records import SignedRecord
from custody.ledger.store import Ledger

INCLUSION_FORMAT = "custody-inclusion-proof/1"
CONSISTENCY_FORMAT = "custody-consistency-proof/1"


class ProofFileError(ProofError):
    """The file is not a custody proof at all (not JSON, unknown format): unusable input."""

    exit_code = ExitCode.UNUSABLE_INPUT


def _text(line: bytes) -> str:
    return line.decode("utf-8")


def covering_checkpoint(ledger: Ledger, seq: int, at: int | None = None) -> SignedRecord:
    """The checkpoint to prove against: record ``at``, else the latest one covering ``seq``."""
    if at is not None:
        signed = ledger.read(at)
        if signed.record.type != "checkpoint":
            raise UsageError(
                _("record {at} is a {type} record, not a checkpoint").format(
                    at=at, type=signed.record.type
                )
            )
        if int(signed.record.body["tree_size"]) <= seq:
            raise UsageError(
                _("checkpoint {at} covers records 0-{last}, not {seq}").format(
                    at=at, last=signed.record.body["tree_size"] - 1, seq=seq
                )
            )
        return signed
    for position in reversed(ledger.index.records_of_type("checkpoint")):
        if position <= seq:
            break
        signed = ledger.read(position)
        if int(signed.record.body["tree_size"]) > seq:
            return signed
    raise UsageError(
        _("no checkpoint covers record {seq} yet: run 'custody sign' first").format(seq=seq)
    )


def _key_lines(ledger: Ledger, fingerprints: Iterable[str]) -> list[str]:
    """The introductions of these keys and, transitively, of the keys that introduced them
    (a key introduced by another key is only as good as its introducer's signature)."""
    introductions: dict[str, SignedRecord] = {}
    for position in ledger.index.records_of_type("key"):
        signed = ledger.read(position)
        fingerprint = signed.record.body.get("fingerprint")
        if isinstance(fingerprint, str) and fingerprint not in introductions:
            introductions[fingerprint] = signed
    wanted = list(fingerprints)
    chosen: dict[str, SignedRecord] = {}
    while wanted:
        fingerprint = wanted.pop()
        if fingerprint in chosen or fingerprint not in introductions:
            continue
        chosen[fingerprint] = introductions[fingerprint]
        wanted.append(chosen[fingerprint].record.signer)
    return [_text(s.line) for s in sorted(chosen.values(), key=lambda s: s.seq)]


def _first_line(ledger: Ledger, size: int) -> dict[str, Any]:
    """Line 0 and its path to the tree of ``size``: the ledger's identity, proven, so that a
    verifier can remember the checkpoint under it (custody.trust.remembered)."""
    if size < 1:
        return {}
    line = ledger.read(0).line
    path = merkle.inclusion_proof(ledger.index, 0, size)
    return {"first_line": _text(line), "first_line_path": [h.hex() for h in path]}


def inclusion_document(
    ledger: Ledger, seq: int, checkpoint_seq: int | None = None
) -> dict[str, Any]:
    record = ledger.read(seq)
    checkpoint = covering_checkpoint(ledger, seq, checkpoint_seq)
    body = CheckpointBody.from_json(checkpoint.record.body)
    path = merkle.inclusion_proof(ledger.index, seq, body.tree_size)
    document = {
        "format": INCLUSION_FORMAT,
        "leaf_index": seq,
        "tree_size": body.tree_size,
        "root": body.root,
        "record_line": _text(record.line),
        "leaf_hash": merkle.leaf_hash(record.line).hex(),
        "audit_path": [h.hex() for h in path],
        "checkpoint_line": _text(checkpoint.line),
        "key_lines": _key_lines(ledger, {record.record.signer, checkpoint.record.signer}),
        **_first_line(ledger, body.tree_size),
    }
    # Never hand out a proof we cannot check ourselves (the index is only a cache).
    outcome = check_document(document)
    if not outcome.ok:
        raise ProofError(
            _("internal check of the proof failed: {failure}; run 'custody verify'").format(
                failure=outcome.failures[0]
            )
        )
    return document


def consistency_document(
    ledger: Ledger, old_size: int, new_size: int | None = None
) -> dict[str, Any]:
    size = ledger.index.size
    new_size = size if new_size is None else new_size
    if not 0 < old_size <= new_size <= size:
        raise UsageError(
            _("need 0 < OLD_SIZE <= NEW_SIZE <= {size} (the ledger size)").format(size=size)
        )
    proof = merkle.consistency_proof(ledger.index, old_size, new_size)
    document: dict[str, Any] = {
        "format": CONSISTENCY_FORMAT,
        "old_size": old_size,
        "new_size": new_size,
        "old_root": merkle.root_hash(ledger.index, old_size).hex(),
        "new_root": merkle.root_hash(ledger.index, new_size).hex(),
        "proof": [h.hex() for h in proof],
    }
    document.update(_first_line(ledger, new_size))
    checkpoints = _checkpoints_at(ledger, {old_size, new_size})
    signers = set()
    for size_, signed in checkpoints.items():
        document["old_checkpoint_line" if size_ == old_size else "new_checkpoint_line"] = _text(
            signed.line
        )
        signers.add(signed.record.signer)
    if signers:
        document["key_lines"] = _key_lines(ledger, signers)
    outcome = check_document(document)
    if not outcome.ok:
        raise ProofError(
            _("internal check of the proof failed: {failure}; run 'custody verify'").format(
                failure=outcome.failures[0]
            )
        )
    return document


def _checkpoints_at(ledger: Ledger, sizes: set[int]) -> dict[int, SignedRecord]:
    found: dict[int, SignedRecord] = {}
    for position in ledger.index.records_of_type("checkpoint"):
        if position < min(sizes):
            continue
        signed = ledger.read(position)
        tree_size = int(signed.record.body["tree_size"])
        if tree_size in sizes and tree_size not in found:
            found[tree_size] = signed
    return found


# --- checking -------------------------------------------------------------------------------


@dataclass
class ProofCheck:
    """Every check made on a proof file, passed or failed, with the reason."""

    kind: str
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    signers: dict[str, str] = field(default_factory=dict)  # fingerprint -> key name
    introduced_by: dict[str, str] = field(default_factory=dict)  # fingerprint -> introducer
    # The ledger's identity (SHA-256 of line 0), when the proof carries line 0 with its path.
    ledger_identity: str | None = None
    tree: tuple[int, str] | None = None  # (size, root hex) of the tree the proof ends in

    def add(self, name: str, passed: bool, detail: str) -> bool:
        self.checks.append((name, passed, detail))
        return passed

    @property
    def failures(self) -> list[str]:
        return [f"{name}: {detail}" for name, passed, detail in self.checks if not passed]

    @property
    def ok(self) -> bool:
        return bool(self.checks) and not self.failures

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "verified": self.ok,
            "checks": [{"name": n, "passed": p, "detail": d} for n, p, d in self.checks],
            "signers": [{"fingerprint": f, "name": n} for f, n in sorted(self.signers.items())],
        }


def load_document(data: bytes, source: str) -> dict[str, Any]:
    try:
        document = canonical.decode(data.strip(), require_canonical=False)
    except RecordError as exc:
        raise ProofFileError(
            _("{source} is not a custody proof: {why}").format(source=source, why=exc)
        ) from None
    if not isinstance(document, dict) or document.get("format") not in (
        INCLUSION_FORMAT,
        CONSISTENCY_FORMAT,
    ):
        raise ProofFileError(
            _("{source} is not a custody proof (unknown or missing 'format')").format(source=source)
        )
    return document


def _utf8(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate escape (\ud800) is no ledger line
        raise ProofError(_("{what} is not valid Unicode text").format(what=what)) from None


def _hex(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise ProofError(_("{what} is not a hex string").format(what=what))
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise ProofError(_("{what} is not a hex string").format(what=what)) from None
    if len(raw) != 32:
        raise ProofError(_("{what} is not a SHA-256 hash").format(what=what))
    return raw


def _int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ProofError(_("{what} is not a non-negative integer").format(what=what))
    return value


def _keys(document: dict[str, Any], outcome: ProofCheck) -> dict[str, PublicKey]:
    lines = document.get("key_lines", [])
    if not isinstance(lines, list):
        raise ProofError(_("key_lines is not a list"))
    pending: list[tuple[SignedRecord, KeyBody]] = []
    for text in lines:
        if not isinstance(text, str):
            raise ProofError(_("key_lines holds something other than record lines"))
        try:
            signed = SignedRecord.parse(_utf8(text, "a key record"))
            body = signed.record.typed_body()
        except RecordError as exc:
            raise ProofError(
                _("a key record in the proof is malformed: {why}").format(why=exc)
            ) from None
        if not isinstance(body, KeyBody):
            raise ProofError(_("key_lines holds a record that is not a key introduction"))
        pending.append((signed, body))
    # A key counts once its introduction verifies: self-signed (proof of possession) or
    # signed by a key that already counts. Never on the introduction's word alone.
    keys: dict[str, PublicKey] = {}
    progress = True
    while pending and progress:
        progress = False
        waiting: list[tuple[SignedRecord, KeyBody]] = []
        for signed, body in pending:
            public = PublicKey(body.public_key, body.name, body.role)
            self_signed = signed.record.signer == body.fingerprint
            introducer = public if self_signed else keys.get(signed.record.signer)
            if introducer is None:
                waiting.append((signed, body))
                continue
            progress = True
            if not introducer.verify(signed.signature, signed.signed_bytes):
                outcome.add(
                    f"key {body.name}",
                    False,
                    _("its introduction record is not validly self-signed")
                    if self_signed
                    else _("its introduction record is not validly signed by {name!r}").format(
                        name=introducer.name
                    ),
                )
                continue
            keys[body.fingerprint] = public
            outcome.signers[body.fingerprint] = body.name
            outcome.introduced_by[body.fingerprint] = signed.record.signer
        pending = waiting
    for signed, body in pending:
        outcome.add(
            f"key {body.name}",
            False,
            _("introduced by key {signer}…, whose introduction the proof does not include").format(
                signer=signed.record.signer[:16]
            ),
        )
    return keys


def _check_signed_line(
    text: Any, what: str, keys: dict[str, PublicKey], outcome: ProofCheck
) -> SignedRecord | None:
    if not isinstance(text, str):
        outcome.add(what, False, _("missing"))
        return None
    try:
        signed = SignedRecord.parse(_utf8(text, what))
    except (RecordError, ProofError) as exc:
        outcome.add(what, False, _("malformed record: {why}").format(why=exc))
        return None
    key = keys.get(signed.record.signer)
    if key is None:
        outcome.add(
            f"{what} signature",
            False,
            _("signed by key {signer}…, not included").format(signer=signed.record.signer[:16]),
        )
    else:
        outcome.add(
            f"{what} signature",
            key.verify(signed.signature, signed.signed_bytes),
            _("Ed25519 signature by {name!r} ({signer}…)").format(
                name=key.name, signer=signed.record.signer[:16]
            ),
        )
    return signed


def check_document(document: Any) -> ProofCheck:
    """Check a proof document completely and offline. Never raises for bad content (a
    document that is not a JSON object too: it fails as "proof format")."""
    if not isinstance(document, dict):
        outcome = ProofCheck("consistency")
        outcome.add("proof format", False, _("a proof document is a JSON object"))
        return outcome
    kind = "inclusion" if document.get("format") == INCLUSION_FORMAT else "consistency"
    outcome = ProofCheck(kind)
    try:
        keys = _keys(document, outcome)
        if kind == "inclusion":
            _check_inclusion(document, keys, outcome)
        else:
            _check_consistency(document, keys, outcome)
        _check_first_line(document, outcome)
    except ProofError as exc:
        outcome.add("proof format", False, str(exc))
    return outcome


def _check_first_line(document: dict[str, Any], outcome: ProofCheck) -> None:
    """Line 0, if the proof carries it, must be leaf 0 of the tree the proof ends in."""
    if outcome.tree is None or "first_line" not in document:
        return
    size, root = outcome.tree
    line = document.get("first_line")
    if not isinstance(line, str):
        raise ProofError(_("first_line is not a record line"))
    raw = _utf8(line, "first_line")
    path = [
        _hex(h, "first_line_path element")
        for h in _list(document.get("first_line_path"), "first_line_path")
    ]
    try:
        merkle.verify_inclusion(merkle.leaf_hash(raw), 0, size, path, bytes.fromhex(root))
    except merkle.MerkleProofError as exc:
        outcome.add(
            "ledger identity", False, _("line 0 is not leaf 0 of the tree: {why}").format(why=exc)
        )
        return
    outcome.ledger_identity = hashlib.sha256(raw).hexdigest()
    outcome.add(
        "ledger identity",
        True,
        _("line 0 is leaf 0: ledger {ledger_identity}").format(
            ledger_identity=outcome.ledger_identity
        ),
    )


def _check_inclusion(
    document: dict[str, Any], keys: dict[str, PublicKey], outcome: ProofCheck
) -> None:
    index = _int(document.get("leaf_index"), "leaf_index")
    size = _int(document.get("tree_size"), "tree_size")
    root = _hex(document.get("root"), "root")
    path = [_hex(h, "audit_path element") for h in _list(document.get("audit_path"), "audit_path")]
    line = document.get("record_line")
    if not isinstance(line, str):
        raise ProofError(_("record_line is missing"))
    leaf = merkle.leaf_hash(_utf8(line, "record_line"))
    outcome.add(
        "leaf hash",
        leaf == _hex(document.get("leaf_hash"), "leaf_hash"),
        _("SHA-256(0x00 || record line) = {leaf}").format(leaf=leaf.hex()),
    )
    record = _check_signed_line(line, "record", keys, outcome)
    if record is not None:
        outcome.add(
            "record position",
            record.record.seq == index,
            _("record says sequence {seq}, proof says leaf {index}").format(
                seq=record.record.seq, index=index
            ),
        )
    try:
        merkle.verify_inclusion(leaf, index, size, path, root)
        outcome.tree = (size, root.hex())
        outcome.add(
            "inclusion",
            True,
            _("leaf {index} is in the tree of {size} records with root {root}").format(
                index=index, size=size, root=root.hex()
            ),
        )
    except merkle.MerkleProofError as exc:
        outcome.add("inclusion", False, str(exc))
    _check_checkpoint_line(document.get("checkpoint_line"), "checkpoint", size, root, keys, outcome)


def _check_checkpoint_line(
    text: Any, what: str, size: int, root: bytes, keys: dict[str, PublicKey], outcome: ProofCheck
) -> None:
    checkpoint = _check_signed_line(text, what, keys, outcome)
    if checkpoint is None:
        return
    try:
        body = checkpoint.record.typed_body()
    except RecordError as exc:
        outcome.add(what, False, str(exc))
        return
    if not isinstance(body, CheckpointBody):
        outcome.add(
            what, False, _("a {type} record, not a checkpoint").format(type=checkpoint.record.type)
        )
        return
    outcome.add(
        f"{what} commits to this tree",
        body.tree_size == size and body.root == root.hex(),
        _("checkpoint record {seq}: size {tree_size}, root {root}").format(
            seq=checkpoint.record.seq, tree_size=body.tree_size, root=body.root
        ),
    )


def _list(value: Any, what: str) -> Sequence[Any]:
    if not isinstance(value, list):
        raise ProofError(_("{what} is not a list").format(what=what))
    return value


def _check_consistency(
    document: dict[str, Any], keys: dict[str, PublicKey], outcome: ProofCheck
) -> None:
    old_size = _int(document.get("old_size"), "old_size")
    new_size = _int(document.get("new_size"), "new_size")
    old_root = _hex(document.get("old_root"), "old_root")
    new_root = _hex(document.get("new_root"), "new_root")
    proof = [_hex(h, "proof element") for h in _list(document.get("proof"), "proof")]
    try:
        merkle.verify_consistency(old_size, new_size, old_root, new_root, proof)
        outcome.tree = (new_size, new_root.hex())
        outcome.add(
            "consistency",
            True,
            _("the tree of {new_size} records extends the tree of {old_size} records").format(
                new_size=new_size, old_size=old_size
            ),
        )
    except merkle.MerkleProofError as exc:
        outcome.add("consistency", False, str(exc))
    if "old_checkpoint_line" in document:
        _check_checkpoint_line(
            document["old_checkpoint_line"], "old checkpoint", old_size, old_root, keys, outcome
        )
    if "new_checkpoint_line" in document:
        _check_checkpoint_line(
            document["new_checkpoint_line"], "new checkpoint", new_size, new_root, keys, outcome
        )
