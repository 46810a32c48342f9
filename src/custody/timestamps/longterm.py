"""The ledger's long-term evidence: what is put under RFC 4998 evidence records, and
``custody renew``.

**Data objects.** One data object *group* (RFC 4998 §4.2 step 3) per stamped checkpoint:
the exact bytes of the checkpoint's ledger line (without its newline) and the exact bytes
of each ``.tsr`` file of the timestamp records over it. Why these: the checkpoint line
commits, through its RFC 9162 root, to every record before it (items, events, keys); its
tokens are what dates it; so an evidence record over the group keeps the proof "these
records existed at genTime" alive after the TSA certificates expire, and everything in it
can be recomputed from the ledger with ``sed`` and ``sha256sum``. The groups of the
checkpoints put under evidence together share one hash tree, one TSA request and one
evidence set (``ers.EvidenceSet``). What this does not renew: the SHA-256 links inside
the ledger (record hashes, the Merkle tree, item digests); docs/long-term.md §2 says what
that means for a migration away from SHA-256.

**Records.** ``custody renew`` stores each new version of a set under
``evidence/<sha256>.der`` through the ledger's store and appends an ``evidence-record``
record naming it by path and SHA-256, the groups (checkpoint and timestamp record numbers)
in set order, the archive timestamp it added, the evidence record it renews, and the
validation material kept at that moment (``keeping``).

**Deciding.** New stamped checkpoints get their initial archive timestamp on the next
run (a token's certificate may be revoked early; the sooner the better, and it costs one
request for all of them). An existing set is renewed when ``ers.renewal_due`` says so:
its last timestamp lapses within the margin (180 days, or up to ``--before``), by
timestamp renewal, or by hash-tree renewal when its algorithm is ending or another was
asked for (``--hash``).

May import: ``custody.errors``, ``custody.clock``, ``custody.root``, ``custody.keys``,
``custody.ledger``, ``custody.timestamps.*`` except ``stamping``, ``cryptography``, the
standard library.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from custody.clock import Clock, format_time, parse_time, utc_now
from custody.errors import InputError, StorageError, TimestampError, UsageError
from custody.i18n import _, ngettext
from custody.ledger.bodies import (
    ArchiveStamp,
    EvidenceRecordBody,
    MaterialFile,
    MaterialGap,
    ObjectGroup,
    TimestampBody,
    TokenRef,
    ValidationBody,
)
from custody.timestamps.algorithms import algorithm as hash_algorithm
from custody.timestamps.ers import (
    DEFAULT_MARGIN,
    EvidenceSet,
    TokenChecker,
    initial_record,
    renew_hashtree,
    renew_timestamp,
    renewal_due,
)
from custody.timestamps.keeping import MaterialPool, TokenGaps, collect_and_keep, fill_gaps
from custody.timestamps.rfc3161 import check_response, token_of, usable

if TYPE_CHECKING:  # the TSA client (http.client, ssl) is imported only to ask a TSA
    from custody.timestamps.tsa_client import HttpTsa

__all__ = [
    "LongtermState",
    "RenewAction",
    "RenewReport",
    "load_set",
    "members_of",
    "outstanding_gaps",
    "renew",
]

ReadFile = Callable[[str], bytes]


# --- what the ledger holds ------------------------------------------------------------------


@dataclass
class LongtermState:
    """The records long-term evidence is made of, by record number."""

    checkpoint_lines: dict[int, bytes] = field(default_factory=dict)
    timestamps: dict[int, TimestampBody] = field(default_factory=dict)
    evidence: dict[int, EvidenceRecordBody] = field(default_factory=dict)
    validations: list[tuple[int, ValidationBody]] = field(default_factory=list)

    @classmethod
    def from_ledger(cls, ledger: Any) -> LongtermState:
        index = ledger.index
        state = cls()
        for seq in index.records_of_type("checkpoint"):
            state.checkpoint_lines[seq] = ledger.read(seq).line
        for seq in index.records_of_type("timestamp"):
            state.timestamps[seq] = ledger.read(seq).record.typed_body()
        for seq in index.records_of_type("evidence-record"):
            state.evidence[seq] = ledger.read(seq).record.typed_body()
        for seq in index.records_of_type("validation"):
            state.validations.append((seq, ledger.read(seq).record.typed_body()))
        return state

    @classmethod
    def from_parts(
        cls,
        checkpoint_lines: dict[int, bytes],
        timestamps: Sequence[tuple[int, TimestampBody]],
        evidence: Sequence[tuple[int, EvidenceRecordBody]],
        validations: Sequence[tuple[int, ValidationBody]],
    ) -> LongtermState:
        return cls(dict(checkpoint_lines), dict(timestamps), dict(evidence), list(validations))

    def heads(self) -> list[int]:
        """Evidence records no later record renews: the current version of each set."""
        renewed = {b.previous for b in self.evidence.values() if b.previous is not None}
        return sorted(seq for seq in self.evidence if seq not in renewed)

    def lineage(self, head: int) -> list[int]:
        """The evidence records of ``head``'s set, first to last."""
        chain = [head]
        while (previous := self.evidence[chain[-1]].previous) in self.evidence and (
            previous is not None and previous < chain[-1]
        ):
            chain.append(previous)
        return chain[::-1]

    def material_refs(self) -> Iterator[MaterialFile]:
        for body in self.timestamps.values():
            yield from body.validation
        for evidence in self.evidence.values():
            yield from evidence.validation
        for _seq, validation in self.validations:
            yield from validation.validation

    def covered_checkpoints(self) -> set[int]:
        return {g.checkpoint for e in self.evidence.values() for g in e.objects}


def load_set(read_file: ReadFile, body: EvidenceRecordBody) -> EvidenceSet:
    """The evidence set an evidence-record record names; InputError (one line) if it is
    missing, is not the file recorded, or does not decode or fit the record."""
    try:
        data = read_file(body.set_file)
    except OSError as exc:
        raise InputError(
            _("{file} cannot be read ({why})").format(file=body.set_file, why=exc.strerror or exc)
        ) from None
    if hashlib.sha256(data).hexdigest() != body.set_sha256 or len(data) != body.set_size:
        raise InputError(
            _("{file} is not the evidence set recorded (SHA-256 differs)").format(
                file=body.set_file
            )
        )
    evidence = EvidenceSet.from_der(data)
    if len(evidence) != len(body.objects):
        raise InputError(
            ngettext(
                "{file} covers {n} objects; its record lists {listed}",
                "{file} covers {n} objects; its record lists {listed}",
                len(evidence),
            ).format(file=body.set_file, n=len(evidence), listed=len(body.objects))
        )
    last = evidence.chains[-1]
    if hashlib.sha256(last.time_stamps[-1]).hexdigest() != body.time_stamp.token_sha256:
        raise InputError(
            _("{file}: its last archive timestamp is not the one recorded").format(
                file=body.set_file
            )
        )
    if last.algorithm != body.time_stamp.algorithm:
        raise InputError(
            _("{file}: its last chain's algorithm is not the one recorded").format(
                file=body.set_file
            )
        )
    return evidence


def members_of(group: ObjectGroup, state: LongtermState, read_file: ReadFile) -> tuple[bytes, ...]:
    """The data object group of a checkpoint: its line, then its token files (the bytes
    the records name, checked against the SHA-256 they record). InputError otherwise."""
    line = state.checkpoint_lines.get(group.checkpoint)
    if line is None:
        raise InputError(
            _("checkpoint record {record} is not at hand").format(record=group.checkpoint)
        )
    found = [line]
    for seq in group.timestamps:
        stamp = state.timestamps.get(seq)
        if stamp is None:
            raise InputError(_("timestamp record {record} is not at hand").format(record=seq))
        try:
            raw = read_file(stamp.token_file)
        except OSError:
            raise InputError(
                _("{file} (record {record}) cannot be read").format(
                    file=stamp.token_file, record=seq
                )
            ) from None
        if hashlib.sha256(raw).hexdigest() != stamp.token_sha256:
            raise InputError(
                _("{file} (record {record}) is not the token recorded").format(
                    file=stamp.token_file, record=seq
                )
            )
        found.append(raw)
    return tuple(found)


def _token_of_file(raw: bytes) -> bytes | None:
    try:
        return token_of(raw)
    except ValueError:
        return None


def outstanding_gaps(state: LongtermState, read_file: ReadFile) -> list[TokenGaps]:
    """Tokens whose latest material record still lists a gap: each timestamp record's
    token, and the newest archive timestamp of each evidence set."""
    latest: dict[tuple[int, str], tuple[MaterialGap, ...]] = {}
    for seq, body in sorted(state.timestamps.items()):
        latest[(seq, body.token_sha256)] = body.validation_missing
    heads = set(state.heads())
    for seq, evidence in state.evidence.items():
        if seq in heads:
            latest[(seq, evidence.time_stamp.token_sha256)] = evidence.validation_missing
    for _seq, validation in sorted(state.validations, key=lambda v: v[0]):
        for ref in validation.tokens:
            if (ref.record, ref.token_sha256) in latest:
                latest[(ref.record, ref.token_sha256)] = validation.validation_missing
    out = []
    for (seq, sha), gaps in sorted(latest.items()):
        if not any(g.url for g in gaps):
            continue
        token, when = _token_and_time(seq, state, read_file)
        if token is not None and when is not None:
            out.append(TokenGaps(TokenRef(seq, sha), token, when, gaps))
    return out


def _token_and_time(
    seq: int, state: LongtermState, read_file: ReadFile
) -> tuple[bytes | None, _dt.datetime | None]:
    try:
        if seq in state.timestamps:
            body = state.timestamps[seq]
            raw = read_file(body.token_file)
            if hashlib.sha256(raw).hexdigest() != body.token_sha256:
                return None, None
            return _token_of_file(raw), parse_time(body.gen_time)
        evidence = state.evidence[seq]
        kept = load_set(read_file, evidence)
        return kept.chains[-1].time_stamps[-1], parse_time(evidence.time_stamp.gen_time)
    except (OSError, InputError, ValueError):
        return None, None


# --- custody renew --------------------------------------------------------------------------

Outcome = Literal["planned", "done", "pending", "failed"]


@dataclass
class RenewAction:
    """One evidence set to make or renew, and how it went."""

    action: Literal["initial", "timestamp-renewal", "hashtree-renewal"]
    objects: tuple[ObjectGroup, ...]
    algorithm: str
    reason: str
    deadline: _dt.datetime | None = None
    renews: int | None = None  # the evidence-record record renewed
    outcome: Outcome = "planned"
    message: str | None = None
    tsa: str | None = None
    gen_time: str | None = None
    record: int | None = None
    bytes_added: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "evidence_record": self.renews,
            "checkpoints": [g.checkpoint for g in self.objects],
            "algorithm": self.algorithm,
            "reason": self.reason,
            "deadline": format_time(self.deadline) if self.deadline else None,
            "outcome": self.outcome,
            "message": self.message,
            "tsa": self.tsa,
            "gen_time": self.gen_time,
            "record": self.record,
            "bytes_added": self.bytes_added,
        }


@dataclass
class RenewReport:
    """What ``custody renew`` decided and did (``--json``: schemas/cli-renew.schema.json)."""

    dry_run: bool
    at: _dt.datetime
    renew_before: _dt.datetime
    requested_algorithm: str | None
    actions: list[RenewAction] = field(default_factory=list)
    current: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    validation: list[dict[str, Any]] = field(default_factory=list)

    @property
    def pending(self) -> list[RenewAction]:
        return [a for a in self.actions if a.outcome == "pending"]

    @property
    def failed(self) -> list[RenewAction]:
        return [a for a in self.actions if a.outcome == "failed"]

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "at": format_time(self.at),
            "renew_before": format_time(self.renew_before),
            "algorithm": self.requested_algorithm,
            "pending": bool(self.pending),
            "actions": [a.to_json() for a in self.actions],
            "current": self.current,
            "skipped": self.skipped,
            "validation": self.validation,
        }


def _checkpoint_digest_ok(
    raw: bytes, line: bytes, body: TimestampBody, roots: Sequence[Any], intermediates: Any
) -> tuple[bool, str]:
    digest = hashlib.sha256(line).digest()
    check = check_response(
        raw,
        digest=digest,
        nonce=int(body.nonce, 16) if body.nonce else None,
        roots=roots,
        intermediates=intermediates,
        trust="roots" if roots else "embedded",
    )
    return usable(check, bool(roots)), check.reason


def _new_groups(
    state: LongtermState, read_file: ReadFile, trust: Any, report: RenewReport
) -> tuple[ObjectGroup, ...]:
    """Stamped checkpoints under no evidence yet, each with its tokens that check."""
    covered = state.covered_checkpoints()
    by_checkpoint: dict[int, list[int]] = {}
    for seq, body in sorted(state.timestamps.items()):
        if body.checkpoint not in covered:
            by_checkpoint.setdefault(body.checkpoint, []).append(seq)
    roots = tuple(getattr(trust, "roots", ()) or ())
    intermediates = tuple(getattr(trust, "intermediates", ()) or ())
    groups = []
    for checkpoint, seqs in sorted(by_checkpoint.items()):
        line = state.checkpoint_lines.get(checkpoint)
        good = []
        why = _("no timestamp record over it")
        for seq in seqs:
            body = state.timestamps[seq]
            try:
                raw = read_file(body.token_file)
            except OSError:
                why = _("{file} cannot be read").format(file=body.token_file)
                continue
            if line is None or hashlib.sha256(raw).hexdigest() != body.token_sha256:
                why = _("{file} is not the token recorded").format(file=body.token_file)
                continue
            usable, why = _checkpoint_digest_ok(raw, line, body, roots, intermediates)
            if usable:
                good.append(seq)
        if good:
            groups.append(ObjectGroup(checkpoint, tuple(good)))
        else:
            reason = _("no usable token to keep valid ({why})").format(why=why)
            report.skipped.append({"checkpoint": checkpoint, "reason": reason})
    return tuple(groups)


def _plan(
    state: LongtermState,
    read_file: ReadFile,
    trust: Any,
    pool: MaterialPool,
    report: RenewReport,
    requested: str | None,
    margin: _dt.timedelta,
    clock: Clock,
) -> dict[int, EvidenceSet]:
    """Fill ``report.actions`` (and ``current``); return the sets that will be renewed."""
    roots = tuple(getattr(trust, "roots", ()) or ())
    checker = TokenChecker(roots, pool.material)
    sets: dict[int, EvidenceSet] = {}
    for head in state.heads():
        body = state.evidence[head]
        checkpoints = [g.checkpoint for g in body.objects]
        try:
            kept = load_set(read_file, body)
        except InputError as exc:
            failed = RenewAction(
                "timestamp-renewal", body.objects, body.time_stamp.algorithm,
                _("the evidence set cannot be renewed"), renews=head, outcome="failed",
                message=_("{error}; run 'custody verify'").format(error=exc),
            )  # fmt: skip
            report.actions.append(failed)
            continue
        current = kept.chains[-1].algorithm
        advice = renewal_due(
            kept, roots, pool.material, report.at, margin=margin,
            preferred=requested or current, clock=clock, checker=checker,
        )  # fmt: skip
        if requested and requested != current:
            action: Literal["timestamp-renewal", "hashtree-renewal"] = "hashtree-renewal"
            reason = _("migration from {current} to {requested} asked for (--hash)").format(
                current=current, requested=requested
            )
        elif advice.action == "none":
            report.current.append(
                {
                    "evidence_record": head,
                    "checkpoints": checkpoints,
                    "algorithm": current,
                    "valid_until": format_time(advice.deadline) if advice.deadline else None,
                    "reason": advice.reason,
                }
            )
            continue
        else:
            action = "hashtree-renewal" if advice.action == "hashtree" else "timestamp-renewal"
            reason = advice.reason
        target = current
        if action == "hashtree-renewal":
            target = requested or ("sha512" if current != "sha512" else "sha3-512")
        sets[head] = kept
        report.actions.append(
            RenewAction(action, body.objects, target, reason, advice.deadline, renews=head)
        )
    groups = _new_groups(state, read_file, trust, report)
    if groups:
        names = ", ".join(str(g.checkpoint) for g in groups)
        reason = ngettext(
            "checkpoint(s) {checkpoints} are under no evidence record yet",
            "checkpoint(s) {checkpoints} are under no evidence record yet",
            len(groups),
        ).format(checkpoints=names)
        report.actions.insert(0, RenewAction("initial", groups, requested or "sha256", reason))
    return sets


def _with_tsa(
    urls: Sequence[str], timeout: float, dead: dict[str, str], run: Callable[[HttpTsa], Any]
) -> tuple[Any, str]:
    """``run`` with the first TSA that gives a usable token; TimestampError naming each
    failure otherwise. Unreachable TSAs are not asked again in the same run."""
    from custody.timestamps.tsa_client import HttpTsa

    reasons = []
    for url in urls:
        if url in dead:
            reasons.append(dead[url])
            continue
        try:
            return run(HttpTsa(url, timeout)), url
        except TimestampError as exc:
            reasons.append(str(exc))
            if getattr(exc, "unreachable", False):  # tsa_client.ExchangeError
                dead[url] = str(exc)
    raise TimestampError("; ".join(reasons) or _("no timestamp authority configured"))


def renew(
    ledger: Any,
    *,
    tsa_urls: Sequence[str],
    trust: Any,
    unlock: Callable[[], Any] | None,
    algorithm: str | None = None,
    before: _dt.datetime | None = None,
    dry_run: bool = False,
    timeout: float = 20.0,
    clock: Clock = utc_now,
) -> RenewReport:
    """``custody renew`` on an open ledger; see the module docstring.

    ``unlock`` gives the signing key, and is called only when there are records to append.
    Network failures leave actions ``pending`` (the run can be repeated); an evidence set
    that cannot be read is ``failed``. Raises UsageError for a date in the past, an unknown
    algorithm, or no TSA when something is due.
    """
    now = clock()
    if algorithm is not None:
        chosen = hash_algorithm(algorithm)
        if not chosen.imprint:
            raise UsageError(
                _("{algorithm} is not acceptable for new evidence").format(algorithm=chosen.name)
            )
        algorithm = chosen.name
    if before is not None and before <= now:
        raise UsageError(_("--before {time} is not in the future").format(time=format_time(before)))
    margin = (before - now) if before is not None else DEFAULT_MARGIN
    report = RenewReport(dry_run, now, now + margin, algorithm)
    state = LongtermState.from_ledger(ledger)
    read_file = ledger.read_token
    pool = MaterialPool.read(read_file, state.material_refs())
    sets = _plan(state, read_file, trust, pool, report, algorithm, margin, clock)
    gaps = outstanding_gaps(state, read_file)
    if dry_run:
        for entry in gaps:
            report.validation.append(
                {"for": entry.ref.record, "record": None, "files": 0, "missing": len(entry.gaps)}
            )
        return report
    planned = [a for a in report.actions if a.outcome == "planned"]
    if planned and not tsa_urls:
        raise UsageError(_("no timestamp authority configured: pass --tsa URL or edit config.toml"))
    roots = tuple(getattr(trust, "roots", ()) or ())
    dead: dict[str, str] = {}
    unreachable: set[str] = set()
    material_timeout = min(timeout, 10.0)
    bodies: list[tuple[RenewAction | None, Any]] = []
    for action in planned:
        try:
            body = _carry_out(
                action, state, sets, ledger, pool, roots, tsa_urls, timeout, dead,
                unreachable, material_timeout, clock,
            )  # fmt: skip
        except TimestampError as exc:
            action.outcome, action.message = "pending", str(exc)
            continue
        except InputError as exc:
            action.outcome = "failed"
            action.message = _("{error}; run 'custody verify'").format(error=exc)
            continue
        bodies.append((action, body))
    for validation in fill_gaps(gaps, pool, ledger.store_token, timeout=material_timeout):
        bodies.append((None, validation))
    if not bodies:
        return report
    if unlock is None:
        raise UsageError(_("renewing needs a signing key"))
    signer = unlock()
    with ledger.writer(signer, clock=clock) as writer:
        for done, body in bodies:
            kind = "validation" if done is None else "evidence-record"
            signed = writer.append(kind, body.to_json())
            if done is None:
                ref = body.tokens[0]
                report.validation.append(
                    {
                        "for": ref.record,
                        "record": signed.seq,
                        "files": len(body.validation),
                        "missing": len(body.validation_missing),
                    }
                )
            else:
                done.record = signed.seq
                done.bytes_added = (done.bytes_added or 0) + len(signed.line) + 1
    return report


def _carry_out(
    action: RenewAction,
    state: LongtermState,
    sets: dict[int, EvidenceSet],
    ledger: Any,
    pool: MaterialPool,
    roots: tuple[Any, ...],
    urls: Sequence[str],
    timeout: float,
    dead: dict[str, str],
    unreachable: set[str],
    material_timeout: float,
    clock: Clock,
) -> EvidenceRecordBody:
    """Get the archive timestamp, keep the set and the material; the record's body."""
    read_file = ledger.read_token
    store = ledger.store_token
    checker = TokenChecker(roots, pool.material)
    renewed: list[bytes] = []
    if action.action == "initial":
        data = [members_of(g, state, read_file) for g in action.objects]
        renewed = [t for m in data for t in (_token_of_file(r) for r in m[1:]) if t]

        def run(tsa: HttpTsa) -> Any:
            return initial_record(data, action.algorithm, tsa, trust_roots=roots or None)
    else:
        assert action.renews is not None
        kept = sets[action.renews]
        renewed = [kept.chains[-1].time_stamps[-1]]
        if action.action == "timestamp-renewal":

            def run(tsa: HttpTsa) -> Any:
                return renew_timestamp(kept, tsa, trust_roots=roots or None)
        else:
            data = [members_of(g, state, read_file) for g in action.objects]

            def run(tsa: HttpTsa) -> Any:
                return renew_hashtree(kept, action.algorithm, data, tsa, trust_roots=roots or None)

    # Material for what is renewed, now: a CRL or OCSP answer from the time of renewal is
    # what later shows it was still unrevoked when it was renewed (RFC 4998 §5.3).
    files: list[MaterialFile] = []
    for token in dict.fromkeys(renewed):
        when = checker.check(token).gen_time or clock()
        got = collect_and_keep(
            token, when, store, kept=pool.material, timeout=material_timeout,
            unreachable=unreachable, clock=clock,
        )  # fmt: skip
        files.extend(got.files)
    result, url = _with_tsa(urls, timeout, dead, run)
    assert isinstance(result, EvidenceSet)
    new_token = result.chains[-1].time_stamps[-1]
    check = checker.check(new_token)
    assert check.gen_time is not None  # stamp_digest checked it
    got = collect_and_keep(
        new_token, check.gen_time, store, kept=pool.material, timeout=material_timeout,
        unreachable=unreachable, clock=clock,
    )  # fmt: skip
    files.extend(got.files)
    data_der = result.to_der()
    digest = hashlib.sha256(data_der).hexdigest()
    name = f"evidence/{digest}.der"
    try:
        store(name, data_der)
    except OSError as exc:
        raise StorageError(_("cannot keep {file}: {why}").format(file=name, why=exc)) from None
    action.outcome, action.tsa = "done", url
    action.gen_time = format_time(check.gen_time)
    action.bytes_added = len(data_der) + sum(
        len(read_file(f.file)) for f in dict.fromkeys(files) if f.sha256 not in pool.files
    )
    for f in files:
        pool.files.setdefault(f.sha256, f)
    pool.material = pool.material.merged(got.material)
    return EvidenceRecordBody(
        action=action.action,
        set_file=name,
        set_sha256=digest,
        set_size=len(data_der),
        objects=action.objects,
        time_stamp=ArchiveStamp(
            result.chains[-1].algorithm,
            action.gen_time,
            url,
            hashlib.sha256(new_token).hexdigest(),
        ),
        previous=action.renews,
        validation=tuple(dict.fromkeys(files)),
        validation_missing=got.gaps,
    )
