"""RFC 4998 Evidence Record Syntax: evidence that outlives its certificates.

The package, by responsibility:

* ``syntax`` - the ASN.1 structures (``EvidenceRecord``, ``ArchiveTimeStamp``...) in DER;
* ``trees`` - hash trees and reduced hash trees (§4.2, §4.3), Bouncy Castle's tree rule;
* ``evidence_set`` - custody's compact store for many data objects stamped together, from
  which each object's RFC 4998 record is derived;
* ``operations`` - the initial archive timestamp (§4.2), timestamp and hash-tree renewal
  (§5.2);
* ``tokens`` - the tokens inside, checked once each by ``custody.timestamps.rfc3161``;
* ``policy`` - hash-algorithm policy, deadlines, and when to renew;
* ``verification`` - a record against a data object (§4.3, §5.3), with named problems.

What custody puts under evidence records, and the ledger records that keep them, are in
``custody.timestamps.longterm``; validation material in ``custody.timestamps.material``.
docs/long-term.md explains all of it for custodians and experts.

Sources: RFC 4998 (section numbers as published; the stored corpus held its abstract and
the rfc-editor.org erratum page, erratum 7411, while §4.2/§4.3/§5.2 were checked against
the passages quoted in bcgit/bc-java issues #1164 and #1216 and in esig/dss); the ASN.1
module as transcribed in russhousley/pyasn1-alt-modules ``pyasn1_alt_modules/rfc4998.py``;
Bouncy Castle r1rv72 ``ERSEvidenceRecord``, ``ERSArchiveTimeStamp``,
``ERSArchiveTimeStampGenerator``, ``BinaryTreeRootCalculator``, ``ERSUtil``,
``ERSDataGroup``; esig/dss ``dss-evidence-record-asn1``
``ASN1ArchiveTimeStampSequenceDigestHelper``.

May import: ``custody.errors``, ``custody.clock``, ``custody.timestamps`` (``algorithms``,
``der``, ``rfc3161``, ``cms``, ``tsa_client``, ``material``), ``asn1crypto``,
``cryptography``, the standard library.
"""

from __future__ import annotations

from custody.timestamps.ers.evidence_set import EvidenceSet, SetChain
from custody.timestamps.ers.operations import (
    initial_record,
    renew_hashtree,
    renew_timestamp,
)
from custody.timestamps.ers.policy import (
    DEFAULT_MARGIN,
    DEFAULT_POLICY,
    AlgorithmPolicy,
    RenewalAdvice,
    renewal_due,
)
from custody.timestamps.ers.syntax import (
    ArchiveTimeStamp,
    EvidenceRecord,
    chain_der,
    sequence_der,
)
from custody.timestamps.ers.tokens import TokenChecker
from custody.timestamps.ers.trees import DataObject
from custody.timestamps.ers.verification import (
    AtsReport,
    ErsProblem,
    ErsVerification,
    verify_record,
)

__all__ = [
    "DEFAULT_MARGIN",
    "DEFAULT_POLICY",
    "AlgorithmPolicy",
    "ArchiveTimeStamp",
    "AtsReport",
    "DataObject",
    "ErsProblem",
    "ErsVerification",
    "EvidenceRecord",
    "EvidenceSet",
    "RenewalAdvice",
    "SetChain",
    "TokenChecker",
    "chain_der",
    "initial_record",
    "renew_hashtree",
    "renew_timestamp",
    "renewal_due",
    "sequence_der",
    "verify_record",
]
