"""Checking a received bundle offline, folder or zip, trusting nothing in it but what the
checks establish: every manifest entry, every record's signature and inclusion proof, the
checkpoint, the tokens, the RFC 4998 evidence record and validation material it carries
(``custody.timestamps.longterm_check``), and every payload file against its item record.
Hostile bundles
(paths with ``..``, absolute paths, links, extra or missing files, altered proofs, tokens
or records, zip bombs) get findings, and nothing is ever written.

A zip is read through ``custody.acquisition.sources.safezip`` - the one safe zip reader -
held to ``bundle_format``'s limits: two entries of one name (also after Unicode
normalisation and case folding) are BUNDLE_UNSAFE and neither is read; a local header that
names another file than the central directory is BUNDLE_MALFORMED; a payload entry whose
bytes fail their CRC-32 is FILE_MODIFIED. Work and memory are bounded by the bundle's real
and declared sizes: the declared total by the archive's size, the bundle's own files by
``bundle_format``'s caps, records by the number of files that could prove them, and the
findings of one kind listed per check by ``LISTED_FINDINGS`` (the rest are counted).

The bytes come from ``bundle_source`` (one snapshot: each file read once or pinned, zips
through the safe zip reader); this module judges them.

May import: ``custody.delivery.bundle_source``, ``custody.acquisition.sources.safezip`` (and its
``claims``), ``custody.ledger``,
``custody.trust``, ``custody.timestamps``, ``custody.findings``, ``custody.errors``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import posixpath
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from custody.acquisition.sources.safezip import DamagedMemberError
from custody.clock import format_time
from custody.delivery.bundle_format import (
    BUNDLE_FORMAT,
    PAYLOAD_ALGORITHMS,
    WITHHELD_REASON,
)
from custody.delivery.bundle_source import (
    BundleSource,
    Findings,
    bundle_records,
    damaged_finding,
    load_index,
    manifest_entries,
    proof_document,
)
from custody.errors import InputError, RecordError
from custody.evidence.hashing import (
    ALGORITHMS,
    available_cores,
    new_hash,
)
from custody.findings import Code, Finding, VerificationResult
from custody.i18n import N_, _, ngettext
from custody.ledger.bodies import CheckpointBody, ExhibitBody, ItemBody, KeyBody, TimestampBody
from custody.ledger.checks import TrustedCheckpoint
from custody.ledger.exhibits import ExhibitBook
from custody.ledger.keyrules import Compromise, KeyRules
from custody.ledger.linefacts import LineFacts
from custody.ledger.proofs import check_document
from custody.ledger.records import SignedRecord
from custody.trust.policy import TrustPolicy
from custody.verify.roots import digests_differ


def verify_bundle(
    path: Path,
    *,
    policy: TrustPolicy,
    disclosures: dict[str, Any] | None = None,
    all_manifests: bool = False,
) -> VerificationResult:
    """Verify a bundle folder or zip offline under ``policy``; every check, every finding.
    With ``policy.at`` the long-term validity of its timestamps is required at that date
    (``custody verify --at``).

    Nothing the bundle carries is trusted for *who* signed it: its keys are checked against
    the policy's anchors (the verifier's own keys, trust store and --trusted-key), and a
    held checkpoint must be proven to be extended by the bundle's checkpoint.

    The payload is re-hashed on every core with SHA-256 and the digests its item records
    carry; ``all_manifests`` re-hashes every payload manifest's algorithm too (SHA-512).
    """
    with BundleSource(path) as source:
        return verify_source(
            source, policy=policy, disclosures=disclosures, all_manifests=all_manifests
        )


def verify_source(
    source: BundleSource,
    *,
    policy: TrustPolicy,
    disclosures: dict[str, Any] | None = None,
    all_manifests: bool = False,
) -> VerificationResult:
    """``verify_bundle`` over an open source, whose snapshot the caller then uses: what
    import copies and what a report shows are the very bytes verified here."""
    result = VerificationResult(root=str(source.path), trust=policy.describe())
    source.extra_disclosures = dict(disclosures or {})
    with contextlib.suppress(DamagedMemberError):
        # else a file every later check needs is damaged (the "zip members" check says so)
        _verify(source, result, policy, all_manifests)
    if source.zip is not None:
        # Tampering inside a zip, reported as what it is, whatever else could be checked.
        result.add_check(
            "zip members",
            [damaged_finding(rel, why) for rel, why in sorted(source.damaged.items())],
            len(source.files),
            _("every member read back with the CRC-32 and length the zip recorded")
            if not source.damaged
            else _("members that did not read back as the zip recorded them"),
        )
    return result


def _recorded_algorithms(source: BundleSource) -> set[str]:
    """Digest algorithms named by the bundle's item records: those of the one parse of
    records.jsonl (``bundle_records``; what is malformed there is reported later)."""
    found: set[str] = set()
    try:
        parsed = bundle_records(source)
    except (OSError, InputError):
        return found
    for signed in parsed.values():
        if signed.record.type == "item":
            found.update(ItemBody.from_json(signed.record.body).digests)
    return found & set(ALGORITHMS)


def _verify(
    source: BundleSource, result: VerificationResult, policy: TrustPolicy, all_manifests: bool
) -> None:
    structure = Findings()
    structure.extend(source.findings)
    files = source.files
    required = ("bagit.txt", "custody/index.json", "custody/records.jsonl")
    missing = [name for name in required if name not in files]
    if missing and source.findings:
        # Set aside as unsafe or damaged: a finding, not "this is not a bundle".
        for name in missing:
            structure.append(Finding(Code.BUNDLE_MALFORMED, name, _("missing or refused")))
        result.add_check("bag structure", structure.result(), len(files), _("BagIt files present"))
        return
    if "bagit.txt" not in files:
        raise InputError(_("{path} is not a BagIt bag (no bagit.txt)").format(path=source.path))
    if "custody/index.json" not in files or "custody/records.jsonl" not in files:
        raise InputError(
            _("{path} is not a custody bundle (no custody/index.json)").format(path=source.path)
        )
    payload = {p for p in files if p.startswith("data/")}
    # Payload manifests: every payload file listed and matching; nothing extra.
    manifests: dict[str, dict[str, str]] = {}
    file_findings = Findings()
    unlisted_elsewhere: dict[str, None] = {}  # listed, not a payload file of the bundle
    for algorithm in PAYLOAD_ALGORITHMS:
        name = f"manifest-{algorithm}.txt"
        if name in files:
            entries, others, count = manifest_entries(source, name, payload, structure)
            manifests[algorithm] = entries
            for rel in others:
                unlisted_elsewhere.setdefault(rel)
            if count > len(others):
                message = ngettext(
                    "lists {n} files that are not payload files of the bundle; the first "
                    "{named} are named",
                    "lists {n} files that are not payload files of the bundle; the first "
                    "{named} are named",
                    count,
                ).format(n=count, named=len(others))
                file_findings.append(
                    Finding(Code.FILE_MISSING, name, message, None, None, str(count))
                )
    if not manifests:
        structure.append(Finding(Code.BUNDLE_MALFORMED, "manifest", _("no payload manifest")))
    for algorithm in PAYLOAD_ALGORITHMS:
        if manifests and algorithm not in manifests:
            structure.append(
                Finding(
                    Code.BUNDLE_MALFORMED,
                    f"manifest-{algorithm}.txt",
                    _(
                        "the payload manifest {manifest} is missing: a {format} bag lists its "
                        "payload under each of {algorithms}"
                    ).format(
                        manifest=f"manifest-{algorithm}.txt",
                        format=BUNDLE_FORMAT,
                        algorithms=", ".join(PAYLOAD_ALGORITHMS),
                    ),
                )
            )
    listed = set().union(*(m.keys() for m in manifests.values())) if manifests else set()
    for rel in unlisted_elsewhere:
        if ".." in rel.split("/") or rel.startswith("/"):
            structure.append(
                Finding(Code.BUNDLE_UNSAFE, rel, _("a manifest entry leaves the bundle"))
            )
        else:
            file_findings.append(
                Finding(Code.FILE_MISSING, rel, _("listed in the manifest but not in the bundle"))
            )
    for rel in sorted(payload - listed):
        file_findings.append(Finding(Code.FILE_UNEXPECTED, rel, _("in data/ but in no manifest")))
    # Which digests are re-hashed, and why: SHA-256 always (manifest-sha256.txt and every
    # item record carry it), plus every other digest the item records carry (BLAKE3 by
    # default): those are what the signatures commit to. manifest-sha512.txt is unsigned -
    # anyone can recompute it - and proves nothing the signed digests do not; its entries
    # are held to the payload by name above, and its digests are re-hashed only when
    # asked (``all_manifests``) or when no SHA-256 manifest exists. bagit.py --validate
    # checks it too.
    recorded = _recorded_algorithms(source)
    algorithms = ("sha256", *sorted(recorded - {"sha256"}))
    rehashed = {
        a for a in manifests if all_manifests or a in algorithms or "sha256" not in manifests
    }
    algorithms = (*algorithms, *sorted(rehashed - set(algorithms)))
    hashed: dict[str, dict[str, str]] = {}

    def hash_one(rel: str) -> dict[str, str] | str | DamagedMemberError:
        # Through the source's one snapshot (each file opened once, its SHA-256 pinned): a
        # file changed after this is refused wherever it is read again.
        try:
            return source.try_digests(rel, algorithms)
        except DamagedMemberError as exc:
            return exc

    todo = sorted(payload & listed, key=lambda r: -files[r])  # largest first: balanced threads
    with ThreadPoolExecutor(max_workers=available_cores()) as pool:
        outcomes = dict(zip(todo, pool.map(hash_one, todo), strict=True))
    for rel in sorted(outcomes):  # findings in name order, whatever finished first
        actual = outcomes[rel]
        if isinstance(actual, DamagedMemberError):
            continue  # reported once, by the "zip members" check
        if isinstance(actual, str):
            file_findings.append(
                Finding(Code.FILE_UNREADABLE, rel, _("could not be read: {why}").format(why=actual))
            )
            continue
        hashed[rel] = actual
        listed_digests = {a: m[rel] for a, m in manifests.items() if a in rehashed and rel in m}
        differ = [a for a, value in listed_digests.items() if value != actual[a]]
        if differ:
            # One changed file, one finding (merged below with its item record's digests).
            file_findings.append(
                digests_differ(rel, None, listed_digests, actual, differ, _("the payload manifest"))
            )
    # Tag manifests cover the custody material: both of them, each listing every tag file
    # (deleting them, or a line of them, used to raise no finding).
    tag_files = {r for r in files if not r.startswith(("data/", "tagmanifest-"))}
    for algorithm in PAYLOAD_ALGORITHMS:
        name = f"tagmanifest-{algorithm}.txt"
        if name not in files:
            structure.append(
                Finding(
                    Code.BUNDLE_MALFORMED,
                    name,
                    _(
                        "the tag manifest {manifest} is missing: a {format} bag covers every "
                        "file outside data/ with one per algorithm"
                    ).format(manifest=name, format=BUNDLE_FORMAT),
                )
            )
            continue
        entries, others, count = manifest_entries(source, name, files, structure)
        for rel in sorted(tag_files - set(entries) - set(others)):
            structure.append(
                Finding(
                    Code.BUNDLE_MALFORMED,
                    rel,
                    _("a file outside data/ that {manifest} does not list").format(manifest=name),
                )
            )
        for rel in others:
            structure.append(
                Finding(
                    Code.FILE_MISSING,
                    rel,
                    _("listed in {manifest} but absent").format(manifest=name),
                )
            )
        if count > len(others):
            message = ngettext(
                "lists {n} files that are not in the bundle; the first {named} are named",
                "lists {n} files that are not in the bundle; the first {named} are named",
                count,
            ).format(n=count, named=len(others))
            structure.append(Finding(Code.FILE_MISSING, name, message, None, None, str(count)))
        for rel, expected in entries.items():
            try:
                found = source.digests(rel, (algorithm,))[algorithm]
            except DamagedMemberError:
                continue  # reported once, by the "zip members" check
            if found != expected:
                structure.append(
                    Finding(
                        Code.FILE_MODIFIED,
                        rel,
                        _("differs from {manifest}").format(manifest=name),
                        None,
                        expected,
                        found,
                    )
                )
    result.files_checked = len(hashed)
    result.bytes_hashed = sum(files[r] for r in hashed)
    skipped = sorted(set(manifests) - rehashed)
    if skipped:
        detail = _(
            "BagIt files present, manifests readable, no path leaving the bundle; payload "
            "re-hashed with {algorithms} ({manifests}: entries checked, digests not re-hashed "
            "- unsigned, and covered by the signed digests)"
        )
    else:
        detail = _(
            "BagIt files present, manifests readable, no path leaving the bundle; payload "
            "re-hashed with {algorithms}"
        )
    result.add_check(
        "bag structure",
        structure.result(),
        len(files),
        detail.format(
            algorithms=", ".join(algorithms),
            manifests=", ".join(f"manifest-{a}.txt" for a in skipped),
        ),
    )
    _verify_custody(source, result, hashed, file_findings, policy)


def _consistency_files(index: dict[str, Any], source: BundleSource) -> tuple[list[str], bool]:
    """The consistency proof files the index names, each once, and at most as many as the
    bundle has proof files; and whether it names more than that."""
    proofs = sum(1 for f in source.files if f.startswith("custody/proofs/"))
    chosen: dict[str, None] = {}
    for entry in index.get("consistency", []):
        name = str(entry.get("file", ""))
        if name in chosen:
            continue
        if len(chosen) >= proofs:
            return list(chosen), True
        chosen[name] = None
    return list(chosen), False


def _verify_custody(
    source: BundleSource,
    result: VerificationResult,
    hashed: dict[str, dict[str, str]],
    file_findings: Findings,
    policy: TrustPolicy,
) -> None:
    from custody.ledger.linefacts import examine
    from custody.ledger.references import reference_findings
    from custody.trust.signers import judge_signers

    records_findings = Findings()
    proof_findings = Findings()
    index = load_index(source)
    checkpoint_info = index["checkpoint"]
    tree_size = int(checkpoint_info["tree_size"])
    root = bytes.fromhex(checkpoint_info["root"])
    parsed = bundle_records(source, records_findings)
    # Keys come only from key records that are proven to be in the ledger (below).
    keys: dict[str, bytes] = {}
    for signed in parsed.values():
        if signed.record.type == "key":
            keys.setdefault(
                str(signed.record.body["fingerprint"]),
                KeyBody.from_json(signed.record.body).public_key,
            )
    checkpoint = parsed.get(int(checkpoint_info["record"]))
    if checkpoint is None or checkpoint.record.type != "checkpoint":
        records_findings.append(
            Finding(
                Code.CHECKPOINT_MISMATCH,
                "checkpoint",
                _("the checkpoint record named by the index is not in records.jsonl"),
            )
        )
    else:
        body = CheckpointBody.from_json(checkpoint.record.body)
        if body.tree_size != tree_size or body.root != root.hex():
            records_findings.append(
                Finding(
                    Code.CHECKPOINT_MISMATCH,
                    f"record {checkpoint.seq}",
                    _("the index and the checkpoint record disagree"),
                    checkpoint.seq,
                    body.root,
                    root.hex(),
                )
            )
    # Every record except the checkpoint itself (and timestamps over it) must be proven.
    proven: set[int] = set()
    for seq, signed in sorted(parsed.items()):
        if checkpoint is not None and (
            seq == checkpoint.seq
            or (
                signed.record.type == "timestamp"
                and signed.record.body.get("checkpoint") == checkpoint.seq
            )
        ):
            continue
        name = f"custody/proofs/record-{seq}.json"
        if name not in source.files:
            proof_findings.append(
                Finding(
                    Code.PROOF_INVALID, f"record {seq}", _("no inclusion proof in the bundle"), seq
                )
            )
            continue
        try:
            document = proof_document(source, name)
        except (RecordError, InputError) as exc:
            proof_findings.append(
                Finding(Code.PROOF_INVALID, f"record {seq}", f"{name}: {exc}", seq)
            )
            continue
        if not isinstance(document, dict):
            proof_findings.append(
                Finding(
                    Code.PROOF_INVALID,
                    f"record {seq}",
                    _("{file} is not a proof").format(file=name),
                    seq,
                )
            )
            continue
        outcome = check_document(document)
        same_line = document.get("record_line") == signed.line.decode("utf-8")
        same_tree = document.get("tree_size") == tree_size and document.get("root") == root.hex()
        if not outcome.ok or not same_line or not same_tree:
            why = (
                outcome.failures[0]
                if outcome.failures
                else (
                    _("the proof is for other bytes than records.jsonl holds")
                    if not same_line
                    else _("the proof is against another checkpoint")
                )
            )
            proof_findings.append(Finding(Code.PROOF_INVALID, f"record {seq}", why, seq))
            continue
        proven.add(seq)
    # Signatures, with keys introduced by proven key records (or the checkpoint's signer key).
    proven_keys = {
        str(s.record.body.get("fingerprint"))
        for s in parsed.values()
        if s.record.type == "key" and s.seq in proven
    }
    usable_keys = {fp: raw for fp, raw in keys.items() if fp in proven_keys}
    # Who signed, by the same key rules as a full ledger verification, over the records
    # the bundle proves (and its checkpoint with the timestamps over it).
    facts = {seq: examine(s.line, True, usable_keys, False) for seq, s in parsed.items()}
    counted = sorted(
        seq
        for seq, s in parsed.items()
        if seq in proven
        or (checkpoint is not None and seq == checkpoint.seq)
        or (
            checkpoint is not None
            and s.record.type == "timestamp"
            and s.record.body.get("checkpoint") == checkpoint.seq
        )
    )
    rules, authentic = _judge(facts, counted, policy, {})
    if rules.found_compromises:
        rules, authentic = _judge(facts, counted, policy, rules.found_compromises)
    signature_findings = Findings()
    signature_findings.extend([*rules.signatures, *rules.identities])
    # Records the bundle does not prove are already findings; their signatures are still
    # reported, but they judge no key and count for nothing.
    for seq in sorted(set(facts) - set(counted)):
        fact = facts[seq]
        if fact.signature_ok is None:
            message = _("signed by a key not proven in this bundle")
            signature_findings.append(
                Finding(Code.UNKNOWN_KEY, f"record {seq}", message, seq, None, fact.signer)
            )
        elif not fact.signature_ok:
            signature_findings.append(
                Finding(
                    Code.BAD_SIGNATURE, f"record {seq}", _("the signature does not verify"), seq
                )
            )
    result.signers = judge_signers(rules.keys, policy)
    # Items against the payload. Only authentic records count (docs/events.md §2): a forged
    # or unproven item record must not make a swapped payload file "match" its claims.
    expected_paths: set[str] = set()
    for seq, signed in sorted(parsed.items()):
        if signed.record.type != "item" or seq not in authentic:
            continue
        item = ItemBody.from_json(signed.record.body)
        rel = "data/" + item.path
        expected_paths.add(rel)
        actual = hashed.get(rel)
        if actual is None:
            if rel in source.damaged:
                continue  # there, but altered inside the zip: the "zip members" check says so
            if not file_findings.names(rel):
                file_findings.append(
                    Finding(Code.FILE_MISSING, rel, _("the item's file is not in the bundle"), seq)
                )
            continue
        differ = [a for a, value in item.digests.items() if a in actual and actual[a] != value]
        if differ:
            # Merge with the manifest finding for this file: every digest that differs from
            # what the record or the manifests say, in one finding.
            listed = file_findings.take(rel, Code.FILE_MODIFIED)
            recorded = dict(item.digests)
            for finding in listed:
                for pair in (finding.expected or "").split():
                    algorithm, _sep, value = pair.partition(":")
                    if algorithm not in recorded and value != actual.get(algorithm):
                        recorded[algorithm] = value
                        differ.append(algorithm)
            if listed:
                against = _("item record {record} and the payload manifest").format(record=seq)
            else:
                against = _("item record {record}").format(record=seq)
            file_findings.append(digests_differ(rel, seq, recorded, actual, differ, against))
    for rel in sorted(set(hashed) - expected_paths):
        file_findings.append(
            Finding(
                Code.FILE_UNEXPECTED,
                rel,
                _("a payload file no authentic, proven item record describes"),
            )
        )
    records_findings.extend(_index_disagreements(index, parsed))
    records_findings.extend(_withheld_disagreements(index, parsed, tree_size))
    # Consistency proofs of earlier checkpoints (each file once, at most one per proof file).
    extended = {tree_size: root.hex()}  # trees the bundle's checkpoint is proven to extend
    consistency, more = _consistency_files(index, source)
    if more:
        records_findings.append(
            Finding(
                Code.BUNDLE_MALFORMED,
                "custody/index.json",
                _(
                    "lists more consistency proofs than the bundle has proof files; the rest are "
                    "not read"
                ),
            )
        )
    for rel in consistency:
        try:
            document = proof_document(source, rel)
        except (RecordError, FileNotFoundError, InputError) as exc:
            proof_findings.append(Finding(Code.PROOF_INVALID, rel, str(exc)))
            continue
        if not isinstance(document, dict):  # valid JSON of another shape: "\u0000", [..]
            proof_findings.append(
                Finding(Code.PROOF_INVALID, rel, _("{file} is not a proof").format(file=rel))
            )
            continue
        outcome = check_document(document)
        if outcome.ok and document.get("new_root") == root.hex():
            extended[int(document["old_size"])] = str(document["old_root"])
        if not outcome.ok or document.get("new_root") != root.hex():
            proof_findings.append(
                Finding(
                    Code.NOT_APPEND_ONLY,
                    rel,
                    outcome.failures[0]
                    if outcome.failures
                    else _("not a proof towards this checkpoint"),
                )
            )
    result.ledger_size = tree_size
    result.tree_root = root.hex()
    result.add_check(
        "records",
        records_findings.result(),
        len(parsed),
        ngettext(
            "{n} ledger records in the bundle parsed strictly",
            "{n} ledger records in the bundle parsed strictly",
            len(parsed),
        ).format(n=len(parsed)),
    )
    result.add_check(
        "inclusion proofs",
        proof_findings.result(),
        len(proven),
        ngettext(
            "{n} records proven in the {size}-record ledger with root {root}",
            "{n} records proven in the {size}-record ledger with root {root}",
            len(proven),
        ).format(n=len(proven), size=tree_size, root=root.hex()),
    )
    result.add_check(
        "signatures and keys",
        signature_findings.result(),
        len(parsed),
        ngettext(
            "signatures checked against {n} keys proven in the ledger; each signer introduced "
            "before it signed, valid, in a role and with the authority its records need",
            "signatures checked against {n} keys proven in the ledger; each signer introduced "
            "before it signed, valid, in a role and with the authority its records need",
            len(usable_keys),
        ).format(n=len(usable_keys)),
    )
    if policy.held is not None:
        result.add_check(
            "held checkpoint",
            _held_findings(policy.held, tree_size, root, source, index),
            1,
            ngettext(
                "the bundle's checkpoint extends the checkpoint of {n} records from {source}",
                "the bundle's checkpoint extends the checkpoint of {n} records from {source}",
                policy.held.tree_size,
            ).format(n=policy.held.tree_size, source=policy.held.source),
        )
    # The ledger's identity: its first line, when the bundle proves it (it carries it).
    first = parsed.get(0)
    if first is not None and 0 in proven:
        result.ledger_identity = hashlib.sha256(first.line).hexdigest()
    _verify_cosignatures(source, result, index, extended, proven, policy)
    if checkpoint is not None:
        result.checkpoint = {
            "record": checkpoint.seq,
            "tree_size": tree_size,
            "root": root.hex(),
            "line": checkpoint.line.decode("utf-8", "replace"),
        }
    if policy.remembered is not None and result.ledger_identity is not None:
        known = policy.remembered.get(result.ledger_identity)
        seen = known.checkpoints if known is not None else []
        remembered: list[Finding] = []
        for earlier in seen:
            held = TrustedCheckpoint(earlier.tree_size, bytes.fromhex(earlier.root),
                                     earlier.describe())  # fmt: skip
            if earlier.tree_size > tree_size:
                # An older bundle than what you saw: not a rewrite unless it contradicts it.
                remembered.append(
                    Finding(
                        Code.HELD_CHECKPOINT_UNPROVEN,
                        f"remembered checkpoint ({earlier.describe()})",
                        ngettext(
                            "this bundle's checkpoint ({n} records) is older than one you "
                            "verified before; it cannot show that it is part of that history",
                            "this bundle's checkpoint ({n} records) is older than one you "
                            "verified before; it cannot show that it is part of that history",
                            tree_size,
                        ).format(n=tree_size),
                        warning=True,
                    )
                )
                continue
            # A genuine later bundle of this ledger always carries a consistency proof from
            # every earlier checkpoint (the remembered one is one): none, or a wrong one, is a
            # history rewritten since you saw it.
            for finding in _held_findings(held, tree_size, root, source, index):
                remembered.append(
                    Finding(
                        Code.NOT_APPEND_ONLY,
                        finding.item,
                        _(
                            "this bundle does not extend a checkpoint of this ledger you "
                            "verified before: {problem}"
                        ).format(problem=finding.message),
                        None,
                        finding.expected,
                        finding.found,
                    )
                )
        result.add_check(
            "remembered checkpoints",
            remembered,
            len(seen),
            ngettext(
                "the bundle's checkpoint extends the {n} checkpoint(s) of this ledger you "
                "verified before",
                "the bundle's checkpoint extends the {n} checkpoint(s) of this ledger you "
                "verified before",
                len(seen),
            ).format(n=len(seen)),
        )
    result.add_check(
        "files",
        file_findings.result(),
        len(hashed),
        ngettext(
            "{n} payload files against the manifests and their item records",
            "{n} payload files against the manifests and their item records",
            len(hashed),
        ).format(n=len(hashed)),
    )
    # (References to records the bundle leaves out - other victims' items - are not checked.)
    reference_problems, checked = reference_findings(
        {seq: signed.record for seq, signed in parsed.items()}
    )
    result.add_check(
        "references",
        reference_problems,
        checked,
        ngettext(
            "{n} references between the bundle's records name an earlier item record with "
            "that content",
            "{n} references between the bundle's records name an earlier item record with "
            "that content",
            checked,
        ).format(n=checked),
    )
    _verify_disclosures(source, result, parsed)
    _check_exhibits(result, parsed, authentic, {f.seq for f in reference_problems})
    _verify_tokens(source, result, parsed, checkpoint, policy)
    _verify_longterm(source, result, parsed, checkpoint, policy.tsa, policy.at, index)


DISCLOSURES = "custody/disclosures.jsonl"


def _verify_disclosures(
    source: BundleSource, result: VerificationResult, parsed: dict[int, SignedRecord]
) -> None:
    """Each disclosed value must be one a signed item record commits to (custody.ledger.
    disclosures); what is withheld is counted, never guessed."""
    from custody.ledger.disclosures import parse_lines

    committed: dict[str, tuple[int, str]] = {}  # digest -> (item record, field)
    for seq, signed in parsed.items():
        if signed.record.type == "item":
            for name, digest in (signed.record.body.get("commitments") or {}).items():
                committed[str(digest)] = (seq, str(name))
    if not committed and DISCLOSURES not in source.files and not source.extra_disclosures:
        return
    findings: list[Finding] = []
    disclosed: dict[str, tuple[str, Any]] = {}
    if DISCLOSURES in source.files:
        try:
            parsed_lines = parse_lines(source.read(DISCLOSURES, limit=1 << 26), DISCLOSURES)
            disclosed.update((d, (DISCLOSURES, x)) for d, x in parsed_lines.items())
        except RecordError as exc:
            findings.append(Finding(Code.BUNDLE_MALFORMED, DISCLOSURES, str(exc)))
    separately = _("disclosures given separately")
    disclosed.update((d, (separately, x)) for d, x in source.extra_disclosures.items())
    matched = 0
    for digest, (where, disclosure) in disclosed.items():
        _salt, name, _value = disclosure.parts()
        target = committed.get(digest)
        if target is None or target[1] != name:
            findings.append(
                Finding(
                    Code.BUNDLE_MALFORMED,
                    where,
                    _(
                        "a disclosed {field} that no item record in the bundle commits to: its "
                        "value or salt was altered, or it belongs to another bundle"
                    ).format(field=name),
                    None,
                    _("the SHA-256 of a commitment in a signed item record"),
                    digest,
                )
            )
        else:
            matched += 1
    held_back = len(committed) - matched
    result.add_check(
        "disclosures",
        findings,
        len(committed),
        ngettext(
            "{n} identifying value(s) disclosed, each matching the salted commitment in its "
            "signed record; {withheld} withheld (only their commitments are in the records)",
            "{n} identifying value(s) disclosed, each matching the salted commitment in its "
            "signed record; {withheld} withheld (only their commitments are in the records)",
            matched,
        ).format(n=matched, withheld=held_back),
    )


def _check_exhibits(
    result: VerificationResult,
    parsed: dict[int, SignedRecord],
    accepted: set[int],
    bad_references: set[int | None],
) -> None:
    """Exhibit numbers among the bundle's authentic records: stable, never reused."""
    book = ExhibitBook()
    findings: list[Finding] = []
    for seq, signed in sorted(parsed.items()):
        if signed.record.type != "exhibit" or seq not in accepted or seq in bad_references:
            continue
        finding = book.assign(seq, ExhibitBody.from_json(signed.record.body))
        if finding is not None:
            findings.append(finding)
    if book.records:
        result.add_check(
            "exhibit numbers",
            findings,
            book.records,
            ngettext(
                "{n} exhibit numbers, each given to one item record only, never changed and "
                "never reused",
                "{n} exhibit numbers, each given to one item record only, never changed and "
                "never reused",
                len(book.by_item),
            ).format(n=len(book.by_item)),
        )


def _index_disagreements(
    index: dict[str, Any], parsed: dict[int, SignedRecord]
) -> Iterator[Finding]:
    """index.json is covered only by the tag manifests, which anyone can recompute: its
    item entries must say exactly what the signed item records say, and list them all."""
    items = {
        seq: ItemBody.from_json(s.record.body)
        for seq, s in parsed.items()
        if s.record.type == "item"
    }
    listed: set[int] = set()
    for entry in index.get("items", []):
        seq = entry.get("record") if isinstance(entry, dict) else None
        body = items.get(seq) if isinstance(seq, int) else None
        if body is None or not isinstance(seq, int) or seq in listed:
            yield (
                Finding(
                    Code.BUNDLE_MALFORMED,
                    "custody/index.json",
                    _(
                        "lists record {record!r}, which is not an item record in records.jsonl"
                    ).format(record=seq),
                )
            )
            continue
        listed.add(seq)
        expected = {
            "path": body.path,
            "data_path": "data/" + body.path,
            "size": body.size,
            "digests": dict(body.digests),
        }
        wrong = sorted(k for k, v in expected.items() if entry.get(k) != v)
        if wrong:
            yield (
                Finding(
                    Code.BUNDLE_MALFORMED,
                    "custody/index.json",
                    _(
                        "its entry for record {record} disagrees with the signed item record "
                        "({fields})"
                    ).format(record=seq, fields=", ".join(wrong)),
                    seq,
                    json.dumps({k: expected[k] for k in wrong}, ensure_ascii=False),
                    json.dumps({k: entry.get(k) for k in wrong}, ensure_ascii=False),
                )
            )
    for seq in sorted(set(items) - listed):
        yield (
            Finding(
                Code.BUNDLE_MALFORMED,
                "custody/index.json",
                _("does not list item record {record}").format(record=seq),
                seq,
            )
        )


def _verify_cosignatures(
    source: BundleSource,
    result: VerificationResult,
    index: dict[str, Any],
    extended: dict[int, str],
    proven: set[int],
    policy: TrustPolicy,
) -> None:
    """Witness cosignatures the bundle carries: each valid over a tree the bundle's
    checkpoint extends; with required witnesses, every proven record covered."""
    from custody.ledger import cosignatures

    entries = index.get("cosignatures", [])
    if not isinstance(entries, list):
        entries = []
    if not entries and not policy.min_witnesses:
        return
    identity = result.ledger_identity
    findings: list[Finding] = []
    bodies = []
    for entry in entries:
        rel = str(entry.get("file", "")) if isinstance(entry, dict) else ""
        try:
            claimed, body = cosignatures.from_document(source.read(rel, limit=1 << 16), rel)
        except (InputError, FileNotFoundError) as exc:
            findings.append(Finding(Code.COSIGNATURE_INVALID, rel or "index.json", str(exc)))
            continue
        if identity is None or claimed != identity:
            findings.append(
                Finding(Code.COSIGNATURE_INVALID, rel, _("the cosignature is for another ledger"))
            )
        elif extended.get(body.tree_size) != body.root:
            message = ngettext(
                "the cosigned tree of {n} records is not one this bundle's checkpoint is proven "
                "to extend",
                "the cosigned tree of {n} records is not one this bundle's checkpoint is proven "
                "to extend",
                body.tree_size,
            ).format(n=body.tree_size)
            findings.append(Finding(Code.COSIGNATURE_INVALID, rel, message))
        elif not cosignatures.is_valid(identity, body):
            findings.append(
                Finding(Code.COSIGNATURE_INVALID, rel, _("the cosignature does not verify"))
            )
        else:
            bodies.append(body)
    detail = ngettext(
        "{n} witness cosignature(s) carried", "{n} witness cosignature(s) carried", len(entries)
    ).format(n=len(entries))
    if policy.min_witnesses:
        covered = cosignatures.coverage(
            identity or "", bodies, policy.witnesses, policy.min_witnesses, extended.get
        )
        uncovered = sorted(seq for seq in proven if seq >= covered.size)
        missing, words = cosignatures.coverage_findings(covered, uncovered, len(policy.witnesses))
        findings += missing
        detail += words
    result.add_check("witnesses", findings, len(entries), detail)


def _withheld_disagreements(
    index: dict[str, Any], parsed: dict[int, SignedRecord], tree_size: int
) -> list[Finding]:
    """index.json's ``withheld_events`` against what the records allow.

    The list is not signed (export holds no key), so a middleman could add or remove it;
    what can be checked is checked: each entry names, once, a record of the ledger the
    checkpoint covers that the bundle does not carry and that comes after an exported
    item (an event naming an item is recorded after it), with the one reason export
    writes. That the list is complete cannot be checked from the bundle: the report says
    so (docs/bundle.md, "Selective disclosure").
    """
    findings: list[Finding] = []
    first_item = min(
        (seq for seq, s in parsed.items() if s.record.type == "item"), default=tree_size
    )
    seen: set[int] = set()
    for entry in index.get("withheld_events", []):
        seq = entry.get("record")
        why = None
        if set(entry) != {"record", "reason"} or entry.get("reason") != WITHHELD_REASON:
            why = _("a withheld_events entry is not {{record, reason: {reason!r}}}").format(
                reason=WITHHELD_REASON
            )
        elif not isinstance(seq, int) or isinstance(seq, bool):
            why = _("a withheld_events entry does not name a record number")
        elif seq in seen:
            why = _("withheld_events lists record {record} twice").format(record=seq)
        elif seq in parsed:
            why = _("withheld_events lists record {record}, which the bundle carries").format(
                record=seq
            )
        elif not first_item < seq < tree_size:
            why = _(
                "withheld_events lists record {record}, which cannot be an event about the "
                "exported items in the {size}-record ledger"
            ).format(record=seq, size=tree_size)
        if why is not None:
            findings.append(Finding(Code.BUNDLE_MALFORMED, "custody/index.json", why))
        if isinstance(seq, int):
            seen.add(seq)
    return findings


def _judge(
    facts: dict[int, LineFacts],
    counted: list[int],
    policy: TrustPolicy,
    compromised: dict[str, Compromise],
) -> tuple[KeyRules, set[int]]:
    """The key rules over the counted records, and which of them are authentic and allowed."""
    rules = KeyRules(anchors=policy.fingerprints, pinned=policy.pinned, compromised=compromised)
    authentic = {seq for seq in counted if rules.judge(seq, facts[seq])}
    return rules, authentic


def _held_findings(
    held: TrustedCheckpoint,
    tree_size: int,
    root: bytes,
    source: BundleSource,
    index: dict[str, Any],
) -> list[Finding]:
    """Does the bundle's checkpoint extend the checkpoint the verifier holds?"""
    where = f"held checkpoint ({held.source})"
    if held.tree_size == tree_size:
        if held.root == root:
            return []
        return [
            Finding(
                Code.NOT_APPEND_ONLY,
                where,
                ngettext(
                    "the bundle's checkpoint has the size of the one you hold ({n} records) but "
                    "another root: it is not the ledger your checkpoint covers",
                    "the bundle's checkpoint has the size of the one you hold ({n} records) but "
                    "another root: it is not the ledger your checkpoint covers",
                    tree_size,
                ).format(n=tree_size),
                None,
                held.root.hex(),
                root.hex(),
            )
        ]
    if held.tree_size < tree_size:
        for rel in _consistency_files(index, source)[0]:
            try:
                document = proof_document(source, rel)
            except (RecordError, FileNotFoundError, InputError):
                continue
            if not isinstance(document, dict) or document.get("old_size") != held.tree_size:
                continue
            if document.get("old_root") != held.root.hex():
                return [
                    Finding(
                        Code.NOT_APPEND_ONLY,
                        where,
                        ngettext(
                            "the bundle's ledger at {n} records is not the one your checkpoint "
                            "covers: it was rewritten, or is another ledger",
                            "the bundle's ledger at {n} records is not the one your checkpoint "
                            "covers: it was rewritten, or is another ledger",
                            held.tree_size,
                        ).format(n=held.tree_size),
                        None,
                        held.root.hex(),
                        str(document.get("old_root")),
                    )
                ]
            if check_document(document).ok and document.get("new_root") == root.hex():
                return []
    return [
        Finding(
            Code.HELD_CHECKPOINT_UNPROVEN,
            where,
            _(
                "the bundle carries no proof that its checkpoint ({size} records) extends the "
                "one you hold ({held} records): it cannot be shown to be that ledger"
            ).format(size=tree_size, held=held.tree_size),
            None,
            ngettext(
                "a consistency proof from {n} records",
                "a consistency proof from {n} records",
                held.tree_size,
            ).format(n=held.tree_size),
            _("none"),
        )
    ]


def _verify_tokens(
    source: BundleSource,
    result: VerificationResult,
    parsed: dict[int, SignedRecord],
    checkpoint: SignedRecord | None,
    policy: TrustPolicy,
) -> None:
    from custody.timestamps.stamping import review_findings, review_tokens, token_rows

    if checkpoint is None:
        return
    stamps = [
        (seq, TimestampBody.from_json(s.record.body))
        for seq, s in sorted(parsed.items())
        if s.record.type == "timestamp"
    ]

    review = review_tokens(
        _token_reader(source), stamps, {checkpoint.seq: checkpoint.line}, policy.tsa
    )
    findings = review_findings(review)
    if not review.valid:
        findings.append(
            Finding(
                Code.TIMESTAMP_PENDING,
                f"record {checkpoint.seq}",
                _("the checkpoint has no trusted timestamp in this bundle"),
                checkpoint.seq,
                required=policy.require_timestamps,
            )
        )
    result.add_check(
        "timestamps",
        findings,
        review.checked,
        ngettext(
            "{valid} of {n} RFC 3161 tokens over the checkpoint valid",
            "{valid} of {n} RFC 3161 tokens over the checkpoint valid",
            review.checked,
        ).format(valid=len(review.valid), n=review.checked)
        if review.checked
        else _(_NO_TOKENS_CARRIED),
    )
    result.timestamps = token_rows(review)


def _token_reader(source: BundleSource) -> Any:
    def read_token(token_file: str) -> bytes:
        # A token travels as custody/timestamps/<its file name>; nothing else is read.
        name = posixpath.basename(token_file)
        if name in ("", ".", ".."):
            raise FileNotFoundError(token_file)
        try:
            return source.read(f"custody/timestamps/{name}", limit=1 << 22)
        except InputError as exc:
            raise FileNotFoundError(str(exc)) from None

    return read_token


# verify.roots.NO_TOKENS, said of a bundle (a whole sentence of its own in the catalog).
_NO_TOKENS_CARRIED = N_(
    "no RFC 3161 timestamp token to check: nothing independent proves when these records "
    "existed, only the times their signers wrote in them (the bundle carries none)"
)


_MATERIAL_DIRS = {
    "certificate": "custody/validation/certs/",
    "crl": "custody/validation/crls/",
    "ocsp": "custody/validation/ocsp/",
}


def _verify_longterm(
    source: BundleSource,
    result: VerificationResult,
    parsed: dict[int, SignedRecord],
    checkpoint: SignedRecord | None,
    tsa_trust: Any,
    at: datetime | None,
    index: dict[str, Any],
) -> None:
    """The checkpoint's RFC 4998 evidence record, the validation material, and (with
    ``at``) the checkpoint's proof of time at that date; index.json only says where to
    look: every file is checked for what it is."""
    from custody.timestamps.longterm_check import ObjectEvidence, judge
    from custody.timestamps.material import ValidationMaterial
    from custody.timestamps.rfc3161 import token_of

    entries = [e for e in index.get("evidence_records", []) if isinstance(e, dict)]
    listed = [e for e in index.get("validation", []) if isinstance(e, dict)]
    if checkpoint is None or not (entries or listed or at is not None):
        return
    findings: list[Finding] = []
    buckets: dict[str, list[bytes]] = {k: [] for k in _MATERIAL_DIRS}
    for entry in listed:
        kind, rel, digest = entry.get("kind"), entry.get("file"), entry.get("sha256")
        if kind not in _MATERIAL_DIRS or not isinstance(rel, str) or not isinstance(digest, str):
            findings.append(
                Finding(
                    Code.BUNDLE_MALFORMED,
                    "custody/index.json",
                    _("a 'validation' entry is malformed"),
                )
            )
            continue
        if not rel.startswith(_MATERIAL_DIRS[kind]) or rel not in source.files:
            findings.append(
                Finding(
                    Code.VALIDATION_MATERIAL_INVALID,
                    rel,
                    _("not in the bundle where index.json says"),
                )
            )
            continue
        data = source.read(rel, limit=1 << 24)
        if _sha256(data) != digest:
            findings.append(
                Finding(
                    Code.VALIDATION_MATERIAL_INVALID,
                    rel,
                    _("is not the file index.json lists (SHA-256 differs)"),
                    None,
                    digest,
                    _sha256(data),
                )
            )
            continue
        buckets[kind].append(data)
    material = ValidationMaterial(
        certificates=tuple(buckets["certificate"]),
        crls=tuple(buckets["crl"]),
        ocsp_responses=tuple(buckets["ocsp"]),
    )
    read_token = _token_reader(source)
    stamps = {
        seq: TimestampBody.from_json(s.record.body)
        for seq, s in parsed.items()
        if s.record.type == "timestamp" and s.record.body.get("checkpoint") == checkpoint.seq
    }

    def tokens_of(seqs: Sequence[int]) -> tuple[tuple[bytes, ...] | None, tuple[bytes, ...], str]:
        members, tokens = [checkpoint.line], []
        for seq in seqs:
            body = stamps.get(seq)
            if body is None:
                return (
                    None,
                    (),
                    _("record {record} is not a timestamp over checkpoint {checkpoint}").format(
                        record=seq, checkpoint=checkpoint.seq
                    ),
                )
            try:
                raw = read_token(body.token_file)
            except FileNotFoundError:
                return None, (), _("{file} is not in the bundle").format(file=body.token_file)
            members.append(raw)
            try:
                tokens.append(token_of(raw))
            except ValueError:
                continue
        return tuple(members), tuple(tokens), ""

    sets = []
    covered = False
    for entry in entries:
        rel, seqs = entry.get("file"), entry.get("timestamps")
        if (
            not isinstance(rel, str)
            or not rel.startswith("custody/evidence/")
            or rel not in source.files
            or entry.get("checkpoint") != checkpoint.seq
            or not isinstance(seqs, list)
            or not all(isinstance(x, int) for x in seqs)
        ):
            findings.append(
                Finding(
                    Code.BUNDLE_MALFORMED,
                    "custody/index.json",
                    _(
                        "an 'evidence_records' entry ({file!r}) is malformed or not of this "
                        "checkpoint"
                    ).format(file=rel),
                )
            )
            continue
        members, tokens, why = tokens_of(seqs)
        der = source.read(rel, limit=1 << 24)
        sets.append((rel, None, [ObjectEvidence(checkpoint.seq, der, members, tokens, why)]))
        covered = True
    bare = []
    if not covered:
        _members, tokens, _why = tokens_of(sorted(stamps))
        if tokens:
            bare.append((checkpoint.seq, checkpoint.line, list(tokens)))
    review = judge(sets, bare, trust=tsa_trust, material=material, at=at)
    for row in review.rows:
        row["file"] = row["label"]
    when = format_time(review.judged_at) if review.judged_at else ""
    if at is not None:
        detail = ngettext(
            "{n} RFC 4998 evidence record(s) checked against the checkpoint line and token "
            "files; {files} validation material file(s); judged at {time} (long-term validity "
            "required)",
            "{n} RFC 4998 evidence record(s) checked against the checkpoint line and token "
            "files; {files} validation material file(s); judged at {time} (long-term validity "
            "required)",
            review.checked,
        )
    else:
        detail = ngettext(
            "{n} RFC 4998 evidence record(s) checked against the checkpoint line and token "
            "files; {files} validation material file(s); judged at {time}",
            "{n} RFC 4998 evidence record(s) checked against the checkpoint line and token "
            "files; {files} validation material file(s); judged at {time}",
            review.checked,
        )
    result.add_check(
        "long-term evidence",
        findings + review.findings,
        review.checked,
        detail.format(n=review.checked, files=len(listed), time=when),
    )
    result.evidence_records = review.rows


def _sha256(data: bytes) -> str:
    digest = new_hash("sha256")
    digest.update(data)
    return str(digest.hexdigest())
