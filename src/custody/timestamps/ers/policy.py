"""When evidence lapses and what to do about it: the hash-algorithm policy (RFC 4998 §5.3
step 2), the deadline of a token (the earliest of its path's expiry, a revocation, the end
of its algorithm), and the advice :func:`renewal_due` gives ``custody renew``.

May import: ``custody.errors``, ``custody.clock``, ``custody.timestamps.algorithms``,
``custody.timestamps.material``, ``custody.timestamps.ers.syntax``,
``custody.timestamps.ers.evidence_set``, ``custody.timestamps.ers.tokens``, ``cryptography``,
the standard library.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Final, Literal

from cryptography import x509

from custody.clock import Clock, format_time, utc_now
from custody.i18n import _
from custody.timestamps.algorithms import algorithm, by_oid
from custody.timestamps.ers.evidence_set import EvidenceSet
from custody.timestamps.ers.syntax import EvidenceRecord, ats_algorithm_oid
from custody.timestamps.ers.tokens import TokenChecker
from custody.timestamps.material import ValidationMaterial, revocation_status

__all__ = [
    "DEFAULT_MARGIN",
    "DEFAULT_POLICY",
    "AlgorithmPolicy",
    "RenewalAdvice",
    "path_deadline",
    "renewal_due",
]

# Certificates expire on a known date, so the margin only has to cover how long it may
# take to get a run done (TSA outages, offline archives): months, not days.
DEFAULT_MARGIN: Final = _dt.timedelta(days=180)


@dataclass(frozen=True)
class AlgorithmPolicy:
    """When each hash algorithm stops counting as secure (RFC 4998 §5.3 step 2).

    ``insecure_from`` maps a dotted OID to the first moment it may no longer be relied on;
    algorithms not listed count as secure. Unknown algorithms cannot be computed at all.
    """

    insecure_from: Mapping[str, _dt.datetime] = field(default_factory=dict)

    def secure_at(self, oid: str, when: _dt.datetime) -> bool:
        end = self.insecure_from.get(oid)
        return end is None or when < end

    def end_of(self, oid: str) -> _dt.datetime | None:
        return self.insecure_from.get(oid)


# SHA-1: collisions shown in 2017 (SHAttered); NIST disallowed it for new signatures from
# 2014. Evidence that still relies on SHA-1 after 2011 had years of warning. SHA-256 stays
# suitable in ETSI TS 119 312 and BSI TR-02102-1 as read in 2026; a case that must follow
# a later table puts its end date here.
DEFAULT_POLICY: Final = AlgorithmPolicy({"1.3.14.3.2.26": _dt.datetime(2011, 1, 1, tzinfo=_dt.UTC)})


def path_deadline(
    path: Sequence[x509.Certificate],
    material: ValidationMaterial,
    at: _dt.datetime,
    algorithm_end: _dt.datetime | None = None,
) -> _dt.datetime | None:
    """When a token on ``path`` stops proving anything: the earliest notAfter on it, a
    revocation the material shows (as of ``at``), or the end of its hash algorithm."""
    ends = [c.not_valid_after_utc for c in path]
    for cert, issuer in pairwise(path):
        status = revocation_status(cert, issuer, material, at)
        if status.revoked_at is not None:
            ends.append(status.revoked_at)
    if algorithm_end is not None:
        ends.append(algorithm_end)
    return min(ends) if ends else None


@dataclass(frozen=True)
class RenewalAdvice:
    """What ``custody renew`` should do now for one evidence set or record."""

    action: Literal["none", "timestamp", "hashtree"]
    reason: str
    deadline: _dt.datetime | None  # when the evidence lapses without renewal


def renewal_due(
    record: EvidenceSet | EvidenceRecord,
    trust_roots: Sequence[x509.Certificate],
    validation_material: ValidationMaterial | None = None,
    at_time: _dt.datetime | None = None,
    *,
    margin: _dt.timedelta = DEFAULT_MARGIN,
    policy: AlgorithmPolicy = DEFAULT_POLICY,
    preferred: str = "sha256",
    clock: Clock = utc_now,
    checker: TokenChecker | None = None,
) -> RenewalAdvice:
    """Renew when the last timestamp lapses within ``margin``: by hash-tree renewal when
    its algorithm is the one lapsing (or is not ``preferred``, which is then the target),
    else by timestamp renewal. Without ``trust_roots`` the path is the one the token's own
    certificates give (its deadline is still what it is)."""
    at = at_time if at_time is not None else clock()
    material = validation_material or ValidationMaterial()
    checker = checker or TokenChecker(trust_roots, material)
    if isinstance(record, EvidenceSet):
        last_stamp = record.chains[-1].time_stamps[-1]
        oid = algorithm(record.chains[-1].algorithm).oid
    else:
        last_stamp = record.chains[-1][-1].time_stamp
        oid = ats_algorithm_oid(record.chains[-1][0]) or ""
    check = checker.check(last_stamp)
    path = checker.path(check)
    if check.gen_time is None or not path:
        return RenewalAdvice("timestamp", _("the last timestamp cannot be validated"), None)
    alg_end = policy.end_of(oid)
    deadline = path_deadline(path, material, at, alg_end)
    assert deadline is not None  # the path is not empty
    if alg_end is not None and alg_end - margin <= at:
        return RenewalAdvice("hashtree", _("the hash algorithm's end is near"), deadline)
    if deadline - margin <= at:
        known = by_oid(oid)
        # a chain on a non-preferred algorithm migrates at the same cost as a renewal
        same = known is not None and known.name == preferred
        action: Literal["timestamp", "hashtree"] = "timestamp" if same else "hashtree"
        lapses = _("the last timestamp lapses at {time}").format(time=format_time(deadline))
        return RenewalAdvice(action, lapses, deadline)
    return RenewalAdvice(
        "none", _("valid until {time}").format(time=format_time(deadline)), deadline
    )
