"""Verifying an RFC 4998 evidence record against a data object (§4.3, §5.3), with named
problems.

Every archive timestamp is checked: its reduced hash tree leads to its token's imprint;
its token is sound and chains to the trust roots with every certificate valid (and, as far
as the validation material tells, unrevoked) at its own genTime; each renewal covers what
it renews and was made before the renewed token's certificates expired or were revoked
and while its hash algorithm was secure; hash-tree renewals cover H(h(d) || H(earlier
sequence)); and the last token is still valid at the time asked about.

Readings of RFC 4998 where implementations differ, and what is accepted here: a hash-tree
renewal whose data hash and ha(i) were *sorted* before hashing (erratum 7411, reported,
not verified) is accepted with a note; custody writes the text's order (see
``operations``). Timestamps are hashed as stored; a token that is not DER gets a warning,
because Bouncy Castle hashes its DER re-encoding and the two would disagree.

May import: ``custody.errors``, ``custody.clock``, ``custody.timestamps.algorithms``,
``custody.timestamps.der``, ``custody.timestamps.material``, ``custody.timestamps.ers.*``
(not ``operations``), ``asn1crypto``, ``cryptography``, the standard library.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Final, Literal

from asn1crypto import algos as a_algos
from cryptography import x509

from custody.clock import Clock, format_time, utc_now
from custody.errors import InputError, UsageError
from custody.i18n import N_, _
from custody.timestamps.algorithms import HashAlgorithm, by_oid
from custody.timestamps.der import DerError, check_der
from custody.timestamps.ers.policy import DEFAULT_POLICY, AlgorithmPolicy, path_deadline
from custody.timestamps.ers.syntax import ArchiveTimeStamp, EvidenceRecord, sequence_der
from custody.timestamps.ers.tokens import (
    TOKEN_NOT_VALID_AT_GENTIME,
    TOKEN_UNTRUSTED,
    TokenChecker,
)
from custody.timestamps.ers.trees import DataObject, list_hash, members, root_of
from custody.timestamps.material import ValidationMaterial, revocation_status
from custody.timestamps.rfc3161 import TokenCheck

__all__ = [
    "AtsReport",
    "ErsProblem",
    "ErsVerification",
    "verify_record",
]

# Two TSAs' clocks may differ by their accuracy; a renewal made right after the token it
# renews may carry a slightly earlier genTime without anything being wrong (custody's
# RFC 3161 checks allow the same 60 s, docs/timestamps.md §7.3).
_CLOCK_TOLERANCE: Final = _dt.timedelta(seconds=60)

# Problem codes (ErsProblem.code). Errors unless noted.
ERS_MALFORMED: Final = "ERS_MALFORMED"  # not a DER EvidenceRecord
ERS_VERSION: Final = "ERS_VERSION"  # version other than v1(1)
ERS_UNKNOWN_ALGORITHM: Final = "ERS_UNKNOWN_ALGORITHM"  # a hash algorithm custody cannot compute
ERS_ALGORITHM_MISMATCH: Final = "ERS_ALGORITHM_MISMATCH"  # field vs imprint, or within a chain
ERS_DIGEST_ALGORITHMS: Final = "ERS_DIGEST_ALGORITHMS"  # warning: digestAlgorithms not the union
ERS_DATA_NOT_COVERED: Final = "ERS_DATA_NOT_COVERED"  # data object's hash not in the first list
ERS_HASHTREE_MISMATCH: Final = "ERS_HASHTREE_MISMATCH"  # reduced tree does not lead to the imprint
ERS_RENEWAL_NOT_COVERED: Final = "ERS_RENEWAL_NOT_COVERED"  # renewal does not cover previous
ERS_CHAIN_NOT_COVERED: Final = "ERS_CHAIN_NOT_COVERED"  # new chain does not cover h(i)+ha(i)
ERS_TIME_ORDER: Final = "ERS_TIME_ORDER"  # a renewal dated before what it renews
ERS_TOKEN_INVALID: Final = "ERS_TOKEN_INVALID"  # unreadable, forged, altered token
ERS_TOKEN_UNTRUSTED: Final = "ERS_TOKEN_UNTRUSTED"  # no path to the trust roots
ERS_TOKEN_NOT_VALID_AT_GENTIME: Final = "ERS_TOKEN_NOT_VALID_AT_GENTIME"
ERS_TOKEN_REVOKED: Final = "ERS_TOKEN_REVOKED"  # a certificate revoked before the token's genTime
ERS_RENEWED_TOO_LATE: Final = "ERS_RENEWED_TOO_LATE"  # renewal after the previous cert expired
ERS_RENEWED_AFTER_REVOCATION: Final = "ERS_RENEWED_AFTER_REVOCATION"
ERS_ALGORITHM_WEAK: Final = "ERS_ALGORITHM_WEAK"  # relied on after the policy's end date
ERS_NOT_RENEWED: Final = "ERS_NOT_RENEWED"  # the last timestamp no longer valid at at_time
ERS_LAST_REVOKED: Final = "ERS_LAST_REVOKED"  # the last timestamp's certificate is revoked
ERS_REVOCATION_UNKNOWN: Final = "ERS_REVOCATION_UNKNOWN"  # warning: no material for that time
ERS_TOKEN_NOT_DER: Final = "ERS_TOKEN_NOT_DER"  # warning: other verifiers may hash it otherwise

# The codes that say the chain of validity lapsed (rather than that something is forged,
# altered or unreadable): what custody's verify reports as TIMESTAMP_CHAIN_BROKEN.
LAPSE_CODES: Final = frozenset(
    {
        ERS_RENEWED_TOO_LATE,
        ERS_RENEWED_AFTER_REVOCATION,
        ERS_ALGORITHM_WEAK,
        ERS_NOT_RENEWED,
        ERS_LAST_REVOKED,
    }
)


# What an archive timestamp must cover, as a problem says it: (when the token's imprint is
# not it, when the first hash value list does not contain it). Translated when a problem is
# made, never at import.
_RENEWAL: Final = (
    N_("the token's imprint is not the hash of the timestamp it renews"),
    N_("the first hash value list does not contain the hash of the timestamp it renews"),
)
_DATA: Final = (
    N_("the token's imprint is not the data object's hash"),
    N_("the first hash value list does not contain the data object's hash"),
)
_CHAIN: Final = (
    N_("the token's imprint is not H(h(d) || H(earlier ArchiveTimeStampSequence))"),
    N_("the first hash value list does not contain H(h(d) || H(earlier ArchiveTimeStampSequence))"),
)


@dataclass(frozen=True, slots=True)
class ErsProblem:
    """One named finding. ``chain``/``index`` locate the archive timestamp (0-based)."""

    code: str
    severity: Literal["error", "warning"]
    detail: str
    chain: int | None = None
    index: int | None = None

    def __str__(self) -> str:
        if self.chain is None:
            return f"{self.code}: {self.detail}"
        return _("{code} (chain {chain}, timestamp {index}): {detail}").format(
            code=self.code, chain=self.chain, index=self.index, detail=self.detail
        )


@dataclass(frozen=True, slots=True)
class AtsReport:
    """What one archive timestamp showed."""

    chain: int
    index: int
    algorithm: str | None  # dotted OID of the hash algorithm of this ATS
    gen_time: _dt.datetime | None
    tsa_name: str | None
    valid_until: _dt.datetime | None  # earliest end of its path / algorithm / revocation
    token_sha256: str = ""


@dataclass(frozen=True)
class ErsVerification:
    """The outcome of :func:`verify_record`. ``ok`` only when no error was found."""

    problems: tuple[ErsProblem, ...]
    timestamps: tuple[AtsReport, ...]
    at_time: _dt.datetime
    existence_time: _dt.datetime | None  # genTime of the initial ATS when ok
    renew_before: _dt.datetime | None  # when the last ATS stops proving anything
    notes: tuple[str, ...] = ()
    trust: Literal["roots", "embedded"] = "roots"

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def errors(self) -> tuple[ErsProblem, ...]:
        return tuple(p for p in self.problems if p.severity == "error")

    @property
    def warnings(self) -> tuple[ErsProblem, ...]:
        return tuple(p for p in self.problems if p.severity == "warning")

    def codes(self) -> set[str]:
        return {p.code for p in self.problems}

    @property
    def summary(self) -> str:
        if self.ok:
            when = format_time(self.existence_time) if self.existence_time else "?"
            return _("valid: the data object existed at {time}").format(time=when)
        return str(self.errors[0])


@dataclass
class _Ats:
    chain: int
    index: int
    ats: ArchiveTimeStamp
    check: TokenCheck
    alg: HashAlgorithm | None = None
    path: list[x509.Certificate] = field(default_factory=list)


def verify_record(
    record: EvidenceRecord | bytes,
    data_object: DataObject,
    trust_roots: Sequence[x509.Certificate],
    validation_material: ValidationMaterial | None = None,
    at_time: _dt.datetime | None = None,
    *,
    policy: AlgorithmPolicy = DEFAULT_POLICY,
    clock: Clock = utc_now,
    checker: TokenChecker | None = None,
) -> ErsVerification:
    """§4.3 and §5.3: does ``record`` prove that ``data_object`` existed, as of ``at_time``?

    ``data_object`` is the object's bytes, or a sequence of the members' bytes for a data
    object group (every member must then be in the first list). Empty ``trust_roots``:
    tokens are checked against the roots they carry (``trust="embedded"``, and
    ``ERS_TOKEN_UNTRUSTED`` is only a warning). ``checker`` (a ``TokenChecker`` made with
    the same roots and material) shares token verdicts between the records of one set.

    Never raises for a bad record (``bytes`` that do not decode give ``ERS_MALFORMED``);
    raises UsageError for bad arguments (naive ``at_time``, an empty group).
    """
    at = at_time if at_time is not None else clock()
    if at.tzinfo is None:
        raise UsageError(_("at_time must be timezone-aware (UTC)"))
    at = at.astimezone(_dt.UTC)
    found = members(data_object)
    material = validation_material or ValidationMaterial()
    checker = checker or TokenChecker(trust_roots, material)
    if not isinstance(record, EvidenceRecord):
        try:
            record = EvidenceRecord.from_der(bytes(record))
        except InputError as err:
            problem = ErsProblem(ERS_MALFORMED, "error", str(err))
            return ErsVerification((problem,), (), at, None, None, trust=checker.trust)
    return _Verifier(record, found, checker, material, at, policy).run()


class _Verifier:
    def __init__(
        self,
        record: EvidenceRecord,
        data: tuple[bytes, ...],
        checker: TokenChecker,
        material: ValidationMaterial,
        at: _dt.datetime,
        policy: AlgorithmPolicy,
    ) -> None:
        self.record = record
        self.members = data
        self.checker = checker
        self.material = material
        self.at = at
        self.policy = policy
        self.problems: list[ErsProblem] = []
        self.notes: list[str] = []

    def add(
        self,
        code: str,
        detail: str,
        item: _Ats | None = None,
        severity: Literal["error", "warning"] = "error",
    ) -> None:
        self.problems.append(
            ErsProblem(
                code,
                severity,
                detail,
                None if item is None else item.chain,
                None if item is None else item.index,
            )
        )

    def run(self) -> ErsVerification:
        import hashlib

        record = self.record
        if record.version != 1:
            self.add(
                ERS_VERSION,
                _("version {version}; only v1(1) is defined").format(version=record.version),
            )
        items = [
            _Ats(k, j, ats, self.checker.check(ats.time_stamp))
            for k, j, ats in record.archive_time_stamps
        ]
        for item in items:
            self._token(item)
        self._algorithms(items)
        self._digest_algorithms(items)
        for item in items:
            self._hash_links(item)
        self._times(items)
        renew_before = self._last_valid(items[-1])
        reports = tuple(
            AtsReport(
                chain=i.chain,
                index=i.index,
                algorithm=i.alg.oid if i.alg else None,
                gen_time=i.check.gen_time,
                tsa_name=i.check.tsa_name,
                valid_until=self._valid_until(i),
                token_sha256=hashlib.sha256(i.ats.time_stamp).hexdigest(),
            )
            for i in items
        )
        errors = any(p.severity == "error" for p in self.problems)
        first = items[0].check.gen_time
        return ErsVerification(
            problems=tuple(self.problems),
            timestamps=reports,
            at_time=self.at,
            existence_time=first if not errors else None,
            renew_before=renew_before,
            notes=tuple(self.notes),
            trust=self.checker.trust,
        )

    # -- each token on its own terms ------------------------------------------------
    def _token(self, item: _Ats) -> None:
        codes = {
            TOKEN_UNTRUSTED: ERS_TOKEN_UNTRUSTED,
            TOKEN_NOT_VALID_AT_GENTIME: ERS_TOKEN_NOT_VALID_AT_GENTIME,
        }
        embedded = self.checker.trust == "embedded"
        for code, detail in self.checker.problems(item.check):
            mapped = codes.get(code, ERS_TOKEN_INVALID)
            # Without roots from the verifier, an unanchored chain limits what is shown
            # (whose timestamp it is); it is not a failure of the record.
            weak = embedded and mapped == ERS_TOKEN_UNTRUSTED
            self.add(mapped, detail, item, "warning" if weak else "error")
        if item.check.gen_time is None:
            return
        try:
            check_der(item.ats.time_stamp)
        except DerError as err:
            # §5.2 hashes timestamps in DER; Bouncy Castle hashes its DER re-encoding,
            # custody the stored bytes: on a non-DER token the two would disagree.
            self.add(
                ERS_TOKEN_NOT_DER,
                _("the token is not DER ({why})").format(why=err),
                item,
                "warning",
            )
        item.path = self.checker.path(item.check)
        gen = item.check.gen_time
        for cert, issuer in pairwise(item.path):
            status = revocation_status(cert, issuer, self.material, gen)
            if status.state == "revoked":
                self.add(
                    ERS_TOKEN_REVOKED,
                    _(
                        "{certificate} was revoked at {revoked}, before genTime {time} ({source})"
                    ).format(
                        certificate=cert.subject.rfc4514_string(),
                        revoked=format_time(status.revoked_at or gen),
                        time=format_time(gen),
                        source=status.source,
                    ),
                    item,
                )

    # -- hash algorithms -------------------------------------------------------------
    def _algorithms(self, items: list[_Ats]) -> None:
        for item in items:
            field_oid = None
            if item.ats.digest_algorithm is not None:
                try:
                    loaded = a_algos.DigestAlgorithm.load(item.ats.digest_algorithm)
                    field_oid = str(loaded["algorithm"].dotted)
                except ValueError:
                    self.add(ERS_UNKNOWN_ALGORITHM, _("digestAlgorithm is unreadable"), item)
                    continue
            imprint_oid = item.check.hash_algorithm
            oid = field_oid or imprint_oid
            if field_oid and imprint_oid and field_oid != imprint_oid:
                self.add(
                    ERS_ALGORITHM_MISMATCH,
                    _("digestAlgorithm {field} but the token's imprint uses {imprint}").format(
                        field=field_oid, imprint=imprint_oid
                    ),
                    item,
                )
            if oid is None:
                continue
            item.alg = by_oid(oid)
            if item.alg is None or (not item.alg.imprint and item.alg.name != "sha1"):
                item.alg = None
                self.add(
                    ERS_UNKNOWN_ALGORITHM,
                    _("hash algorithm {oid} is unknown").format(oid=oid),
                    item,
                )
        for k in {i.chain for i in items}:
            chain = [i for i in items if i.chain == k]
            oids = {i.alg.oid for i in chain if i.alg}
            if len(oids) > 1:
                self.add(
                    ERS_ALGORITHM_MISMATCH,
                    _(
                        "the archive timestamps of chain {chain} use several hash algorithms "
                        "({algorithms}); §5.3 requires one"
                    ).format(chain=k, algorithms=", ".join(sorted(oids))),
                    chain[0],
                )

    def _digest_algorithms(self, items: list[_Ats]) -> None:
        listed = set()
        for der in self.record.digest_algorithms:
            try:
                listed.add(a_algos.DigestAlgorithm.load(der)["algorithm"].dotted)
            except ValueError:
                continue
        used = {i.alg.oid for i in items if i.alg}
        if used - listed:
            self.add(
                ERS_DIGEST_ALGORITHMS,
                _("digestAlgorithms omits {algorithms} (§3: the union)").format(
                    algorithms=", ".join(sorted(used - listed))
                ),
                severity="warning",
            )

    # -- hash links (§4.3, §5.3 steps 1-3) -----------------------------------------------
    def _hash_links(self, item: _Ats) -> None:
        alg = item.alg
        if item.check.message_imprint is None or alg is None:
            return
        if item.index > 0:
            previous = self.record.chains[item.chain][item.index - 1]
            expected = [alg.digest(previous.time_stamp)]
            self._covers(item, alg, expected, ERS_RENEWAL_NOT_COVERED, _RENEWAL)
            return
        data = [alg.digest(m) for m in self.members]
        if item.chain == 0:
            self._covers(item, alg, data, ERS_DATA_NOT_COVERED, _DATA)
            return
        ha = alg.digest(sequence_der(self.record.chains[: item.chain]))
        literal = [alg.digest(h + ha) for h in data]
        if self._covers(item, alg, literal, None, None):
            return
        erratum = [alg.digest(min(h, ha) + max(h, ha)) for h in data]
        if self._covers(item, alg, erratum, None, None):
            self.notes.append(
                _(
                    "chain {chain} joins data and earlier chains sorted (RFC 4998 erratum "
                    "7411 reading); accepted"
                ).format(chain=item.chain)
            )
            return
        self._covers(item, alg, literal, ERS_CHAIN_NOT_COVERED, _CHAIN)

    def _covers(
        self,
        item: _Ats,
        alg: HashAlgorithm,
        expected: Sequence[bytes],
        code: str | None,
        what: tuple[str, str] | None,
    ) -> bool:
        """Whether the archive timestamp covers ``expected``; if not and ``code`` is given,
        a problem in the words of ``what`` (the imprint's sentence, the first list's)."""
        imprint = item.check.message_imprint
        assert imprint is not None
        rht = item.ats.reduced_hashtree
        if rht is None:
            value = expected[0] if len(expected) == 1 else list_hash(alg, expected)
            if value == imprint:
                return True
            if code and what:
                self.add(code, _(what[0]), item)
            return False
        if not rht or not all(h in rht[0] for h in expected):
            if code and what:
                self.add(code, _(what[1]), item)
            return False
        try:
            root = root_of(alg, rht)
        except ValueError as err:
            if code:
                self.add(ERS_HASHTREE_MISMATCH, str(err), item)
            return False
        if root != imprint:
            if code:
                self.add(
                    ERS_HASHTREE_MISMATCH,
                    _("the reduced hash tree does not lead to the timestamped root"),
                    item,
                )
            return False
        return True

    # -- time (§5.3 step 2 and 3) -----------------------------------------------------------
    def _times(self, items: list[_Ats]) -> None:
        for prev, nxt in pairwise(items):
            t_prev, t_next = prev.check.gen_time, nxt.check.gen_time
            if t_prev is None or t_next is None:
                continue
            if t_next < t_prev - _CLOCK_TOLERANCE:
                self.add(
                    ERS_TIME_ORDER,
                    _("genTime {time} is before the renewed timestamp's {renewed}").format(
                        time=format_time(t_next), renewed=format_time(t_prev)
                    ),
                    nxt,
                )
                continue
            for code, detail, severity in self._still_valid(prev, t_next, last=False):
                self.add(code, detail, prev, severity)
            if (
                nxt.chain != prev.chain
                and prev.alg
                and not self.policy.secure_at(prev.alg.oid, t_next)
            ):
                self.add(
                    ERS_ALGORITHM_WEAK,
                    _("{algorithm} was no longer secure when chain {chain} began ({time})").format(
                        algorithm=prev.alg.name, chain=nxt.chain, time=format_time(t_next)
                    ),
                    prev,
                )

    def _still_valid(
        self, item: _Ats, when: _dt.datetime, *, last: bool
    ) -> list[tuple[str, str, Literal["error", "warning"]]]:
        """Problems if ``item``'s token was no longer valid at ``when``."""
        out: list[tuple[str, str, Literal["error", "warning"]]] = []
        at = format_time(when)
        expired_code = ERS_NOT_RENEWED if last else ERS_RENEWED_TOO_LATE
        revoked_code = ERS_LAST_REVOKED if last else ERS_RENEWED_AFTER_REVOCATION
        for cert in item.path:
            if when > cert.not_valid_after_utc:
                end = f"{cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}"
                if last:
                    expired = _(
                        "was not renewed before {certificate} expired ({end}); needed at {time}"
                    )
                else:
                    expired = _(
                        "was renewed only after {certificate} expired ({end}); needed at {time}"
                    )
                detail = expired.format(certificate=cert.subject.rfc4514_string(), end=end, time=at)
                out.append((expired_code, detail, "error"))
        for cert, issuer in pairwise(item.path):
            status = revocation_status(cert, issuer, self.material, when)
            if status.state == "revoked":
                detail = _(
                    "{certificate} was revoked at {revoked}, before {time} ({source})"
                ).format(
                    certificate=cert.subject.rfc4514_string(),
                    revoked=format_time(status.revoked_at or when),
                    time=at,
                    source=status.source,
                )
                out.append((revoked_code, detail, "error"))
            elif status.state == "unknown" and not last:
                # (For the last timestamp, "unrevoked at a time still to come" cannot be
                # known from anything kept; its expiry is in renew_before.)
                detail = _(
                    "no CRL or OCSP answer kept shows {certificate} unrevoked at {time}"
                ).format(certificate=cert.subject.rfc4514_string(), time=at)
                out.append((ERS_REVOCATION_UNKNOWN, detail, "warning"))
        if item.alg and not self.policy.secure_at(item.alg.oid, when):
            weak = _("{algorithm} is not secure at {time}").format(algorithm=item.alg.name, time=at)
            out.append((ERS_ALGORITHM_WEAK, weak, "error"))
        return out

    def _last_valid(self, item: _Ats) -> _dt.datetime | None:
        if item.check.gen_time is None:
            return None
        for code, detail, severity in self._still_valid(item, self.at, last=True):
            self.add(code, detail, item, severity)
        return self._valid_until(item)

    def _valid_until(self, item: _Ats) -> _dt.datetime | None:
        end = self.policy.end_of(item.alg.oid) if item.alg else None
        return path_deadline(item.path, self.material, self.at, end)
