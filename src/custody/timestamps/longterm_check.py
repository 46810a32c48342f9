"""Verifying the long-term evidence of an evidence root or a bundle, as findings.

For ``custody verify`` (``verify/roots.py``) and bundle verification
(``delivery/bundle_check.py``): every file of validation material is the one its record
names; every evidence set is the one its ``evidence-record`` record names, and each renewal
extends the set it renews; every data object's RFC 4998 evidence record verifies
(``ers.verify_record``) against the checkpoint line and token files rebuilt from the
ledger; and each checkpoint's proof of time still stands at the time judged.

How RFC 4998 problems become findings (docs/format.md §8):

* something forged, altered, reordered or unreadable - ``EVIDENCE_RECORD_INVALID``
  (``VALIDATION_MATERIAL_INVALID`` for material files), always an error;
* a token without a path to the verifier's roots - ``TIMESTAMP_UNTRUSTED`` (a warning when
  no roots were given, as for checkpoint tokens);
* a chain that lapsed - a renewal made after the token it renews expired or was revoked,
  an algorithm relied on after its end, a last timestamp no longer valid, a first archive
  timestamp made after the checkpoint's own tokens lapsed - ``TIMESTAMP_CHAIN_BROKEN``:
  a warning by default (the ledger's tokens are still judged at their genTime, as
  always), an error when the verifier asks for long-term validity at a date (``--at``);
* a chain whose last timestamp lapses within 90 days of that date -
  ``TIMESTAMP_RENEWAL_DUE``, a warning; no CRL or OCSP answer kept for a time that
  needs one - ``REVOCATION_UNKNOWN``, a warning.

Without ``--at`` only evidence records are judged for the long term; with it, every
stamped checkpoint is: its proof of time must stand at that date through an evidence
record or through its own token.

May import: ``custody.errors``, ``custody.clock``, ``custody.findings``,
``custody.ledger.bodies``, ``custody.timestamps.*`` except ``stamping``, the standard
library.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from custody.clock import Clock, format_time, utc_now
from custody.errors import InputError
from custody.findings import Code, Finding
from custody.i18n import _, ngettext
from custody.ledger.bodies import MaterialFile
from custody.timestamps.algorithms import algorithm as hash_algorithm
from custody.timestamps.algorithms import by_oid
from custody.timestamps.ers import (
    ArchiveTimeStamp,
    ErsVerification,
    EvidenceRecord,
    EvidenceSet,
    TokenChecker,
    verify_record,
)
from custody.timestamps.ers.verification import (
    ERS_REVOCATION_UNKNOWN,
    ERS_TOKEN_UNTRUSTED,
    LAPSE_CODES,
)
from custody.timestamps.keeping import MaterialPool
from custody.timestamps.longterm import LongtermState, load_set
from custody.timestamps.material import ValidationMaterial
from custody.timestamps.rfc3161 import token_of

__all__ = ["DUE_WITHIN", "LongtermReview", "ObjectEvidence", "judge", "review_root"]

DUE_WITHIN: Final = _dt.timedelta(days=90)
ReadFile = Callable[[str], bytes]


@dataclass(frozen=True)
class ObjectEvidence:
    """One data object to judge: its checkpoint, its record, its data (None: unavailable,
    with ``why``), and the original checkpoint tokens the record keeps valid."""

    checkpoint: int
    record: EvidenceRecord | bytes
    members: tuple[bytes, ...] | None
    tokens: tuple[bytes, ...] = ()
    why: str = ""


@dataclass
class LongtermReview:
    """Findings and one row per evidence record (for ``--json`` and the report)."""

    findings: list[Finding] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    judged_at: _dt.datetime | None = None
    checked: int = 0
    untrusted: int = 0  # archive timestamps checked without roots from the verifier


class _Judge:
    def __init__(
        self,
        trust: Any,
        material: ValidationMaterial,
        at: _dt.datetime | None,
        clock: Clock,
        review: LongtermReview,
    ) -> None:
        self.required = at is not None
        self.when = (at or clock()).astimezone(_dt.UTC)
        self.roots = tuple(getattr(trust, "roots", ()) or ())
        self.material = material
        self.checker = TokenChecker(self.roots, material)
        self.review = review
        review.judged_at = self.when

    def add(self, code: Code, item: str, message: str, seq: int | None, **kw: Any) -> None:
        self.review.findings.append(Finding(code, item, message, seq, **kw))

    def chain_broken(self, item: str, message: str, seq: int | None) -> None:
        self.add(
            Code.TIMESTAMP_CHAIN_BROKEN, item, message, seq,
            expected=_("a proof of time valid at {time}").format(time=format_time(self.when)),
            found=_("lapsed"), required=self.required,
        )  # fmt: skip

    def due(self, item: str, deadline: _dt.datetime | None, seq: int | None) -> bool:
        if deadline is None or deadline - DUE_WITHIN > self.when or deadline < self.when:
            return False
        self.add(
            Code.TIMESTAMP_RENEWAL_DUE, item,
            _("its last timestamp lapses at {time}: run 'custody renew'").format(
                time=format_time(deadline)
            ),
            seq,
            expected=_("valid beyond {time}").format(time=format_time(self.when + DUE_WITHIN)),
            found=format_time(deadline),
        )  # fmt: skip
        return True

    def bare(self, token: bytes, line: bytes, at: _dt.datetime) -> ErsVerification:
        """A checkpoint token judged as an evidence record of one archive timestamp over
        the checkpoint line (RFC 4998 §4.2: an ATS may be only a timestamp)."""
        record = EvidenceRecord(((ArchiveTimeStamp(token),),), (hash_algorithm("sha256").der,))
        return verify_record(record, line, self.roots, self.material, at, checker=self.checker)

    def set(self, label: str, seq: int | None, objects: Sequence[ObjectEvidence]) -> dict[str, Any]:
        """Judge the objects of one evidence set (or one bundled record); its row."""
        problems: dict[tuple[str, str, int | None, int | None], tuple[str, list[int]]] = {}
        first: ErsVerification | None = None
        unchecked = []
        for obj in objects:
            if obj.members is None:
                unchecked.append(obj)
                continue
            result = verify_record(
                obj.record, obj.members, self.roots, self.material, self.when,
                checker=self.checker,
            )  # fmt: skip
            first = first or result
            for p in result.problems:
                key = (p.code, p.detail, p.chain, p.index)
                problems.setdefault(key, (p.severity, []))[1].append(obj.checkpoint)
            self._first_link(label, seq, obj, result)
        for obj in unchecked:
            self.add(
                Code.EVIDENCE_RECORD_INVALID, label,
                _("checkpoint {checkpoint}'s data object cannot be rebuilt: {why}").format(
                    checkpoint=obj.checkpoint, why=obj.why
                ),
                seq, warning=True,
            )  # fmt: skip
        lapsed = invalid = False
        for (code, detail, chain, index), (severity, where) in problems.items():
            listed = ", ".join(map(str, where))
            if chain is not None:
                text = ngettext(
                    "{code} (chain {chain}, timestamp {index}: checkpoint(s) {checkpoints}): "
                    "{detail}",
                    "{code} (chain {chain}, timestamp {index}: checkpoint(s) {checkpoints}): "
                    "{detail}",
                    len(where),
                )
            else:
                text = ngettext(
                    "{code} (checkpoint(s) {checkpoints}): {detail}",
                    "{code} (checkpoint(s) {checkpoints}): {detail}",
                    len(where),
                )
            text = text.format(
                code=code, chain=chain, index=index, checkpoints=listed, detail=detail
            )
            if code in LAPSE_CODES:
                lapsed = True
                self.chain_broken(label, text, seq)
            elif code == ERS_REVOCATION_UNKNOWN:
                self.add(Code.REVOCATION_UNKNOWN, label, text, seq)
            elif code == ERS_TOKEN_UNTRUSTED and self.checker.trust == "embedded":
                self.review.untrusted += 1
            elif code == ERS_TOKEN_UNTRUSTED:
                invalid = True
                self.add(Code.TIMESTAMP_UNTRUSTED, label, text, seq)
            else:
                invalid = invalid or severity == "error"
                self.add(
                    Code.EVIDENCE_RECORD_INVALID, label, text, seq, warning=severity != "error"
                )
        self.review.checked += 1
        renew_before = first.renew_before if first else None
        due = not (lapsed or invalid) and self.due(label, renew_before, seq)
        status = (
            "invalid" if invalid or first is None else
            "lapsed" if lapsed else "renewal due" if due else "valid"
        )  # fmt: skip
        return {
            "record": seq,
            "label": label,
            "checkpoints": [o.checkpoint for o in objects],
            "status": status,
            "existence_time": _time(first.existence_time if first else None),
            "renew_before": _time(renew_before),
            "trust": self.checker.trust,
            "chains": chains_json(first),
        }

    def _first_link(
        self, label: str, seq: int | None, obj: ObjectEvidence, result: ErsVerification
    ) -> None:
        """The checkpoint's own tokens must still have been valid when the first archive
        timestamp was made; else the record proves the checkpoint only from then on."""
        if not obj.tokens or not result.timestamps or obj.members is None:
            return
        start = result.timestamps[0].gen_time
        if start is None:
            return
        line = obj.members[0]
        if any(not (self.bare(t, line, start).codes() & LAPSE_CODES) for t in obj.tokens):
            return
        self.chain_broken(
            label,
            _(
                "the first archive timestamp ({time}) was made after checkpoint "
                "{checkpoint}'s own token(s) had lapsed: the evidence record shows the "
                "checkpoint existed from then, not at its tokens' genTime"
            ).format(time=format_time(start), checkpoint=obj.checkpoint),
            seq,
        )

    def checkpoint(self, checkpoint: int, line: bytes, tokens: Sequence[bytes]) -> None:
        """With ``--at``: a stamped checkpoint under no evidence record must still be
        proven in time by one of its own tokens."""
        item = f"record {checkpoint}"
        results = [self.bare(t, line, self.when) for t in tokens]
        standing = [r for r in results if not (r.codes() & LAPSE_CODES)]
        if not standing:
            detail = next(
                (str(p) for r in results for p in r.problems if p.code in LAPSE_CODES), ""
            )
            self.chain_broken(
                item,
                _(
                    "checkpoint {checkpoint} is under no evidence record and none of its tokens "
                    "is valid at {time} ({detail}): it was not renewed"
                ).format(checkpoint=checkpoint, time=format_time(self.when), detail=detail),
                checkpoint,
            )
            return
        deadline = max((r.renew_before for r in standing if r.renew_before), default=None)
        self.due(item, deadline, checkpoint)


def _time(moment: _dt.datetime | None) -> str | None:
    return format_time(moment) if moment else None


def chains_json(result: ErsVerification | None) -> list[dict[str, Any]]:
    """Each archive timestamp chain, oldest first: its algorithm and its timestamps."""
    if result is None:
        return []
    chains: dict[int, dict[str, Any]] = {}
    for ats in result.timestamps:
        alg = by_oid(ats.algorithm) if ats.algorithm else None
        chain = chains.setdefault(
            ats.chain, {"algorithm": alg.name if alg else ats.algorithm, "timestamps": []}
        )
        chain["timestamps"].append(
            {
                "gen_time": _time(ats.gen_time),
                "tsa": ats.tsa_name,
                "valid_until": _time(ats.valid_until),
                "token_sha256": ats.token_sha256,
            }
        )
    return [chains[k] for k in sorted(chains)]


def judge(
    sets: Sequence[tuple[str, int | None, Sequence[ObjectEvidence]]],
    bare: Sequence[tuple[int, bytes, Sequence[bytes]]],
    *,
    trust: Any,
    material: ValidationMaterial,
    at: _dt.datetime | None,
    clock: Clock = utc_now,
    review: LongtermReview | None = None,
) -> LongtermReview:
    """Judge evidence sets (label, record, objects) and, with ``at``, the stamped
    checkpoints under none (checkpoint, line, tokens)."""
    review = review or LongtermReview()
    judge_ = _Judge(trust, material, at, clock, review)
    for label, seq, objects in sets:
        review.rows.append(judge_.set(label, seq, objects))
    if at is not None:
        for checkpoint, line, tokens in bare:
            judge_.checkpoint(checkpoint, line, tokens)
    if review.untrusted:
        message = ngettext(
            "{n} problem(s) of archive timestamps checked without trust anchors from you: "
            "supply the TSAs' roots with --tsa-root to establish whose timestamps these are",
            "{n} problem(s) of archive timestamps checked without trust anchors from you: "
            "supply the TSAs' roots with --tsa-root to establish whose timestamps these are",
            review.untrusted,
        ).format(n=review.untrusted)
        review.findings.append(
            Finding(
                Code.TIMESTAMP_UNTRUSTED,
                "evidence records",
                message,
                None,
                _("a chain to a root you trust"),
                _("no root supplied"),
                warning=True,
            )
        )
    return review


def _tokens(state: LongtermState, read_file: ReadFile, seqs: Sequence[int]) -> list[bytes]:
    out = []
    for seq in seqs:
        body = state.timestamps.get(seq)
        if body is None:
            continue
        try:
            raw = read_file(body.token_file)
            if hashlib.sha256(raw).hexdigest() == body.token_sha256:
                out.append(token_of(raw))
        except (OSError, ValueError):
            continue
    return out


def _members(
    state: LongtermState, read_file: ReadFile, checkpoint: int, seqs: Sequence[int]
) -> tuple[tuple[bytes, ...] | None, str]:
    """The group's bytes as they are (an altered token file fails in verification)."""
    line = state.checkpoint_lines.get(checkpoint)
    if line is None:
        return None, _("checkpoint record {record} is not at hand").format(record=checkpoint)
    found = [line]
    for seq in seqs:
        body = state.timestamps.get(seq)
        if body is None:
            return None, _("timestamp record {record} is not at hand").format(record=seq)
        try:
            found.append(read_file(body.token_file))
        except OSError:
            return None, _("{file} (record {record}) cannot be read").format(
                file=body.token_file, record=seq
            )
    return tuple(found), ""


def review_root(
    state: LongtermState,
    read_file: ReadFile,
    *,
    trust: Any,
    at: _dt.datetime | None,
    clock: Clock = utc_now,
) -> LongtermReview:
    """Everything of the module docstring, for a ledger's records."""
    review = LongtermReview()
    refs: dict[str, tuple[MaterialFile, int]] = {}
    for seq, body in state.timestamps.items():
        refs.update({f.file: (f, seq) for f in body.validation})
    for seq, evidence in state.evidence.items():
        refs.update({f.file: (f, seq) for f in evidence.validation})
    for seq, validation in state.validations:
        refs.update({f.file: (f, seq) for f in validation.validation})
    pool = MaterialPool.read(read_file, [f for f, _seq in refs.values()])
    for ref, message in pool.problems:
        seq = refs[ref.file][1]
        review.findings.append(
            Finding(Code.VALIDATION_MATERIAL_INVALID, f"record {seq}", message, seq, ref.sha256)
        )
    sets: dict[int, EvidenceSet] = {}
    for seq, evidence in sorted(state.evidence.items()):
        try:
            sets[seq] = load_set(read_file, evidence)
        except InputError as exc:
            review.findings.append(
                Finding(Code.EVIDENCE_RECORD_INVALID, f"record {seq}", str(exc), seq)
            )
            continue
        previous = evidence.previous
        if previous in sets and not _extends(sets[previous], sets[seq], evidence.action):
            review.findings.append(
                Finding(
                    Code.EVIDENCE_RECORD_INVALID,
                    f"record {seq}",
                    _(
                        "its evidence set does not extend the set of record {record} by one "
                        "{action}: earlier archive timestamps were dropped or changed"
                    ).format(record=previous, action=evidence.action),
                    seq,
                )
            )
    judged = []
    for head in state.heads():
        if head not in sets:
            continue
        evidence = state.evidence[head]
        objects = []
        for index, group in enumerate(evidence.objects):
            members, why = _members(state, read_file, group.checkpoint, group.timestamps)
            objects.append(
                ObjectEvidence(
                    group.checkpoint,
                    sets[head].evidence_record(index),
                    members,
                    tuple(_tokens(state, read_file, group.timestamps)),
                    why,
                )
            )
        judged.append((f"record {head}", head, objects))
    covered = {g.checkpoint for h in state.heads() for g in state.evidence[h].objects}
    bare = []
    by_checkpoint: dict[int, list[int]] = {}
    for seq, body in sorted(state.timestamps.items()):
        by_checkpoint.setdefault(body.checkpoint, []).append(seq)
    for checkpoint, seqs in sorted(by_checkpoint.items()):
        line = state.checkpoint_lines.get(checkpoint)
        tokens = _tokens(state, read_file, seqs)
        if checkpoint not in covered and line is not None and tokens:
            bare.append((checkpoint, line, tokens))
    judge(judged, bare, trust=trust, material=pool.material, at=at, clock=clock, review=review)
    for row, (_label, head, _objects) in zip(review.rows, judged, strict=True):
        row["records"] = state.lineage(head)
        row["set"] = state.evidence[head].set_file
    return review


def _extends(before: EvidenceSet, after: EvidenceSet, action: str) -> bool:
    if [c.objects for c in after.chains[: len(before.chains)]] != [
        c.objects for c in before.chains
    ]:
        return False
    if action == "hashtree-renewal":
        return after.chains[:-1] == before.chains and len(after.chains[-1].time_stamps) == 1
    last, new = before.chains[-1], after.chains[-1]
    return (
        after.chains[:-1] == before.chains[:-1]
        and new.time_stamps[:-1] == last.time_stamps
        and new.algorithm == last.algorithm
    )
