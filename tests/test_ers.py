"""RFC 4998 evidence records: custody's own checks, and Bouncy Castle's beside them.

Every token comes from a real TSA (``openssl ts -reply`` on loopback, its clock set with
faketime: tests/tsa_longterm.py); every record custody makes is also handed to Bouncy
Castle's ``org.bouncycastle.tsp.ers`` (tests/java/ErsCheck.java, compiled here), and a
record Bouncy Castle makes is handed to custody. Times are fixed (2031 onwards) and passed
in as ``at_time``, so no test depends on today's date.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from asn1crypto import cms as a_cms
from cryptography import x509
from tests.bouncy import BouncyCastle, compile_checker
from tests.tsa_longterm import DAY, YEAR, ClockedTSA, clocked_tsa

from custody.errors import InputError, TimestampError, UsageError
from custody.timestamps import algorithms, ers, keeping, rfc3161
from custody.timestamps import material as ers_material
from custody.timestamps.der import check_der, children, der_sorted_token, single
from custody.timestamps.ers import (
    ArchiveTimeStamp,
    EvidenceRecord,
    EvidenceSet,
    initial_record,
    renew_hashtree,
    renew_timestamp,
    renewal_due,
    verify_record,
)
from custody.timestamps.material import (
    ValidationMaterial,
    collect_validation_material,
)
from custody.timestamps.tsa_client import HttpTsa

T0 = dt.datetime(2031, 1, 1, tzinfo=dt.UTC)
OBJECTS = [f"checkpoint line {i}".encode() for i in range(6)] + [b"token bytes"]

pytestmark = pytest.mark.skipif(
    shutil.which("faketime") is None, reason="faketime is needed (scripts/setup.sh installs it)"
)


# ------------------------------------------------------------------ Bouncy Castle


@pytest.fixture(scope="module")
def bc(tmp_path_factory: pytest.TempPathFactory) -> BouncyCastle:
    return compile_checker(tmp_path_factory)


# ------------------------------------------------------------------------ TSAs


@pytest.fixture
def tsas(tmp_path: Path) -> Iterator[tuple[ClockedTSA, ClockedTSA]]:
    """TSA One: certificate valid one year from T0; TSA Two: ten years."""
    with (
        clocked_tsa(tmp_path, "TSA One", not_before=T0 - DAY, not_after=T0 + YEAR) as one,
        clocked_tsa(tmp_path, "TSA Two", not_before=T0 - DAY, not_after=T0 + 10 * YEAR) as two,
    ):
        yield one, two


def roots_of(*tsas: ClockedTSA) -> list[x509.Certificate]:
    return [t.root for t in tsas]


def material_for(*tsas: ClockedTSA, at: dt.datetime) -> ValidationMaterial:
    """CRLs of every TSA's CAs as of ``at``, as an archive would have collected them."""
    return ValidationMaterial(
        crls=tuple(c for t in tsas for c in (t.crl(at), t.crl(at, root=True)))
    )


def stamp_initial(one: ClockedTSA, objects: Sequence[ers.DataObject] = OBJECTS) -> EvidenceSet:
    one.clock = T0 + DAY
    return initial_record(objects, "sha256", HttpTsa(one.url), trust_roots=[one.root])


def codes(result: ers.ErsVerification) -> set[str]:
    return {p.code for p in result.errors}


# ------------------------------------------------------------ ASN.1 and trees


def test_evidence_record_der_round_trip_and_strictness(
    tsas: tuple[ClockedTSA, ClockedTSA],
) -> None:
    one, _ = tsas
    evidence = stamp_initial(one)
    der = evidence.evidence_record(2).to_der()
    record = EvidenceRecord.from_der(der)
    assert record.to_der() == der
    assert record.version == 1 and len(record.chains) == 1
    ats = record.chains[0][0]
    # implicit tags of RFC 4998 Appendix A: [0] AlgorithmIdentifier, [2] reducedHashtree
    ats_der = ats.to_der()
    tags = [t.tag for t in children(ats_der, single(ats_der))]
    assert tags == [0xA0, 0xA2, 0x30] and ats.digest_algorithm is not None
    assert ats.reduced_hashtree is not None and ats.reduced_hashtree[0]
    check_der(der)
    assert EvidenceSet.from_der(evidence.to_der()) == evidence

    long_form = bytearray(der)
    with pytest.raises(InputError, match="evidence record"):  # trailing byte
        EvidenceRecord.from_der(der + b"\x00")
    # the same record with a non-minimal (BER) length on an OCTET STRING of the tree
    hashes_at = der.index(ats.reduced_hashtree[0][0]) - 2
    assert long_form[hashes_at] == 0x04
    ber = bytes(long_form[: hashes_at + 1]) + b"\x81" + bytes(long_form[hashes_at + 1 :])
    with pytest.raises(InputError):
        EvidenceRecord.from_der(ber)
    garbage = verify_record(b"\x30\x03\x02\x01\x01", OBJECTS[2], roots_of(one))
    assert not garbage.ok and {p.code for p in garbage.problems} == {"ERS_MALFORMED"}
    with pytest.raises(InputError):
        EvidenceSet.from_der(der)


def test_hash_tree_follows_section_4_2_by_hand(tsas: tuple[ClockedTSA, ClockedTSA]) -> None:
    one, _ = tsas
    objects = [b"alpha", b"bravo", b"charlie"]
    evidence = stamp_initial(one, objects)
    h = sorted(hashlib.sha256(o).digest() for o in objects)

    def node(a: bytes, b: bytes) -> bytes:  # sorted, concatenated, hashed
        return hashlib.sha256(min(a, b) + max(a, b)).digest()

    root = node(node(h[0], h[1]), h[2])  # the odd third leaf moves up unchanged
    assert evidence.chains[0].tree.root == root
    tst = a_cms.ContentInfo.load(evidence.chains[0].time_stamps[0])["content"][
        "encap_content_info"
    ]["content"].parsed
    assert tst["message_imprint"]["hashed_message"].native == root
    third = objects.index(next(o for o in objects if hashlib.sha256(o).digest() == h[2]))
    rht = evidence.evidence_record(third).chains[0][0].reduced_hashtree
    assert rht == ((tuple(sorted((h[2], node(h[0], h[1])))),))


@pytest.mark.parametrize("count", [1, 2, 3, 8, 13])
def test_tree_root_equals_bouncy_castles(bc: BouncyCastle, count: int) -> None:
    objects = [f"object {i}".encode() * (i + 1) for i in range(count)]
    files = [bc._file(o, ".bin") for o in objects]
    ok, out = bc.run("root", "sha256", *files)
    assert ok, out
    chain = ers.SetChain("sha256", tuple((hashlib.sha256(o).digest(),) for o in objects), ())
    assert chain.tree.root.hex() == out.split()[1]


# ------------------------------------------------- renewal and the passing of time


def test_record_renewed_before_expiry_stays_valid_after_it(
    tsas: tuple[ClockedTSA, ClockedTSA], bc: BouncyCastle
) -> None:
    one, two = tsas
    evidence = stamp_initial(one)
    two.clock = T0 + 200 * DAY  # TSA One's certificate is valid until T0 + 1 year
    renewed = renew_timestamp(evidence, HttpTsa(two.url), trust_roots=roots_of(one, two))
    assert isinstance(renewed, EvidenceSet)
    assert len(renewed.chains) == 1 and len(renewed.chains[0].time_stamps) == 2
    later = T0 + 5 * YEAR
    material = material_for(one, two, at=later)
    record = renewed.evidence_record(4)
    result = verify_record(record, OBJECTS[4], roots_of(one, two), material, at_time=later)
    assert result.ok, result.problems
    assert result.problems == ()  # CRLs cover both renewal time and now
    assert result.existence_time == T0 + DAY
    assert result.renew_before == T0 + 10 * YEAR  # TSA Two's certificate
    assert [r.gen_time for r in result.timestamps] == [T0 + DAY, T0 + 200 * DAY]
    ok, out = bc.verify(record.to_der(), OBJECTS[4], roots_of(one, two))
    assert ok, out

    # a second renewal covers both earlier timestamps (Bouncy Castle's validate needs it)
    two.clock = T0 + 3 * YEAR
    twice = renew_timestamp(record, HttpTsa(two.url), trust_roots=roots_of(one, two))
    assert isinstance(twice, EvidenceRecord)
    third = twice.chains[0][2]
    assert third.reduced_hashtree is not None and len(third.reduced_hashtree[0]) == 2
    assert verify_record(twice, OBJECTS[4], roots_of(one, two), material, at_time=later).ok
    ok, out = bc.verify(twice.to_der(), OBJECTS[4], roots_of(one, two))
    assert ok, out


def test_record_not_renewed_is_reported_once_its_certificate_expired(
    tsas: tuple[ClockedTSA, ClockedTSA],
) -> None:
    one, _ = tsas
    record = stamp_initial(one).evidence_record(0)
    before = T0 + 100 * DAY
    fresh = verify_record(record, OBJECTS[0], [one.root], material_for(one, at=before), before)
    assert fresh.ok and fresh.renew_before == T0 + YEAR
    after = T0 + 2 * YEAR
    stale = verify_record(record, OBJECTS[0], [one.root], material_for(one, at=after), after)
    assert codes(stale) == {"ERS_NOT_RENEWED"}
    assert "expired" in stale.errors[0].detail and stale.existence_time is None
    advice = renewal_due(record, [one.root], at_time=T0 + YEAR - 30 * DAY)
    assert advice.action == "timestamp" and advice.deadline == T0 + YEAR
    assert renewal_due(record, [one.root], at_time=T0 + 2 * DAY).action == "none"
    sunset = ers.AlgorithmPolicy({"2.16.840.1.101.3.4.2.1": T0 + 200 * DAY})
    migrate = renewal_due(record, [one.root], at_time=T0 + 100 * DAY, policy=sunset)
    assert migrate.action == "hashtree" and migrate.deadline == T0 + 200 * DAY


def test_renewal_after_expiry_is_too_late(tsas: tuple[ClockedTSA, ClockedTSA]) -> None:
    one, two = tsas
    evidence = stamp_initial(one)
    two.clock = T0 + YEAR + 30 * DAY
    renewed = renew_timestamp(evidence, HttpTsa(two.url))
    assert isinstance(renewed, EvidenceSet)
    at = T0 + 2 * YEAR
    result = verify_record(
        renewed.evidence_record(1),
        OBJECTS[1],
        roots_of(one, two),
        material_for(one, two, at=at),
        at,
    )
    assert codes(result) == {"ERS_RENEWED_TOO_LATE"}
    assert result.errors[0].chain == 0 and result.errors[0].index == 0


def test_renewal_after_revocation_is_reported_from_collected_crls(
    tsas: tuple[ClockedTSA, ClockedTSA], tmp_path: Path
) -> None:
    one, two = tsas
    evidence = stamp_initial(one)
    one.revoke(at=T0 + 100 * DAY)  # e.g. the TSA's key was retired early
    one.publish_crl(T0 + 150 * DAY)
    two.publish_crl(T0 + 300 * DAY)
    two.clock = T0 + 200 * DAY
    renewed = renew_timestamp(evidence, HttpTsa(two.url))
    assert isinstance(renewed, EvidenceSet)
    material = collect_validation_material(renewed.chains[0].time_stamps[0], timeout=10).merged(
        collect_validation_material(renewed.chains[0].time_stamps[1], timeout=10)
    )
    assert len(material.crls) == 4 and material.ocsp_responses and not material.missing
    kept = _round_trip(material)
    at = T0 + 250 * DAY
    result = verify_record(renewed.evidence_record(3), OBJECTS[3], roots_of(one, two), kept, at)
    assert "ERS_RENEWED_AFTER_REVOCATION" in codes(result)
    # the initial token itself predates the revocation: it was sound when made
    assert "ERS_TOKEN_REVOKED" not in codes(result)
    # renewed before the revocation date: fine
    two.clock = T0 + 50 * DAY
    early = renew_timestamp(evidence, HttpTsa(two.url))
    assert isinstance(early, EvidenceSet)
    good = verify_record(early.evidence_record(3), OBJECTS[3], roots_of(one, two), kept, at)
    assert good.ok, good.problems
    # a token the TSA signed after its certificate was revoked is worthless from the start
    one.clock = T0 + 120 * DAY
    late = initial_record(OBJECTS, "sha256", HttpTsa(one.url))
    result = verify_record(late.evidence_record(0), OBJECTS[0], [one.root], kept, T0 + 121 * DAY)
    assert "ERS_TOKEN_REVOKED" in codes(result)


def test_algorithm_migration_sha256_to_sha512_rehashes_and_chains(
    tsas: tuple[ClockedTSA, ClockedTSA], bc: BouncyCastle
) -> None:
    one, two = tsas
    evidence = stamp_initial(one)
    two.clock = T0 + 200 * DAY
    migrated = renew_hashtree(evidence, "sha512", OBJECTS, HttpTsa(two.url), trust_roots=[two.root])
    assert isinstance(migrated, EvidenceSet)
    assert [c.algorithm for c in migrated.chains] == ["sha256", "sha512"]
    # §5.2 steps 2-4 recomputed here from the object and the stored first chain
    for i, obj in enumerate(OBJECTS):
        earlier = ers.sequence_der([migrated.chains[0].archive_time_stamps(i)])
        ha = hashlib.sha512(earlier).digest()
        expected = hashlib.sha512(hashlib.sha512(obj).digest() + ha).digest()
        assert migrated.chains[1].objects[i] == (expected,)
    record = migrated.evidence_record(5)
    assert len(record.digest_algorithms) == 2
    at = T0 + 5 * YEAR
    result = verify_record(
        record, OBJECTS[5], roots_of(one, two), material_for(one, two, at=at), at
    )
    assert result.ok and result.problems == (), result.problems
    assert result.timestamps[1].algorithm == "2.16.840.1.101.3.4.2.3"
    ok, out = bc.verify(record.to_der(), OBJECTS[5], roots_of(one, two))
    assert ok, out
    with pytest.raises(UsageError, match="data object 2"):
        renew_hashtree(evidence, "sha512", [*OBJECTS[:2], b"x", *OBJECTS[3:]], HttpTsa(two.url))
    # SHA-256 declared broken before the migration: the first chain fails §5.3 step 2
    broken = ers.AlgorithmPolicy({"2.16.840.1.101.3.4.2.1": T0 + 100 * DAY})
    weak = verify_record(
        record, OBJECTS[5], roots_of(one, two), material_for(one, two, at=at), at, policy=broken
    )
    assert "ERS_ALGORITHM_WEAK" in codes(weak)


def test_data_object_group(tsas: tuple[ClockedTSA, ClockedTSA], bc: BouncyCastle) -> None:
    one, _ = tsas
    group = (b"checkpoint line 9", b"its RFC 3161 token")
    evidence = stamp_initial(one, [*OBJECTS[:3], group])
    record = evidence.evidence_record(3)
    at = T0 + 10 * DAY
    mat = material_for(one, at=at)
    assert verify_record(record, group, [one.root], mat, at).ok
    assert codes(verify_record(record, (*group[:1], b"other"), [one.root], mat, at)) == {
        "ERS_DATA_NOT_COVERED"
    }
    ok, out = bc.verify(record.to_der(), group, [one.root])
    assert ok, out


# ----------------------------------------------------- tampering, in both verifiers


def _with_chains(record: EvidenceRecord, chains: Sequence[Sequence[ArchiveTimeStamp]]) -> bytes:
    return dataclasses.replace(record, chains=tuple(tuple(c) for c in chains)).to_der()


def test_forged_reordered_or_changed_evidence_fails_in_both(
    tsas: tuple[ClockedTSA, ClockedTSA], bc: BouncyCastle
) -> None:
    one, two = tsas
    evidence = stamp_initial(one)
    two.clock = T0 + 100 * DAY
    renewed = renew_timestamp(evidence, HttpTsa(two.url))
    two.clock = T0 + 200 * DAY
    renewed = renew_timestamp(renewed, HttpTsa(two.url))
    two.clock = T0 + 300 * DAY
    migrated = renew_hashtree(renewed, "sha512", OBJECTS, HttpTsa(two.url))
    assert isinstance(migrated, EvidenceSet)
    record = migrated.evidence_record(1)
    roots = roots_of(one, two)
    at = T0 + 2 * YEAR
    mat = material_for(one, two, at=at)
    assert verify_record(record, OBJECTS[1], roots, mat, at).ok
    assert bc.verify(record.to_der(), OBJECTS[1], roots)[0]

    first, second = record.chains
    ats = list(first)
    signature_flip = bytearray(ats[0].time_stamp)
    signature_flip[-5] ^= 0x01  # inside the SignerInfo's signature value
    tree_flip = ats[0].reduced_hashtree
    assert tree_flip is not None
    bad_sibling = bytes([tree_flip[-1][0][0] ^ 1]) + tree_flip[-1][0][1:]
    cases = {
        "renewals_reordered": (
            _with_chains(record, [[ats[0], ats[2], ats[1]], second]),
            {"ERS_RENEWAL_NOT_COVERED", "ERS_TIME_ORDER"},
        ),
        "chains_reordered": (_with_chains(record, [second, first]), {"ERS_DATA_NOT_COVERED"}),
        "first_chain_dropped": (_with_chains(record, [second]), {"ERS_DATA_NOT_COVERED"}),
        # the third timestamp also covers the first (every renewal covers the whole chain),
        # so what breaks is the hash of the earlier chains that the SHA-512 chain stamped
        "renewal_dropped": (
            _with_chains(record, [[ats[0], ats[2]], second]),
            {"ERS_CHAIN_NOT_COVERED"},
        ),
        "token_forged": (
            _with_chains(
                record,
                [[dataclasses.replace(ats[0], time_stamp=bytes(signature_flip)), *ats[1:]], second],
            ),
            {"ERS_TOKEN_INVALID"},
        ),
        "tree_altered": (
            _with_chains(
                record,
                [
                    [
                        dataclasses.replace(
                            ats[0], reduced_hashtree=(*tree_flip[:-1], (bad_sibling,))
                        ),
                        *ats[1:],
                    ],
                    second,
                ],
            ),
            {"ERS_HASHTREE_MISMATCH"},
        ),
    }
    for name, (der, expected) in cases.items():
        result = verify_record(der, OBJECTS[1], roots, mat, at)
        assert not result.ok, name
        assert expected & codes(result), (name, result.problems)
        ok, out = bc.verify(der, OBJECTS[1], roots)
        assert not ok, (name, out)
    changed = OBJECTS[1] + b"!"
    result = verify_record(record, changed, roots, mat, at)
    assert "ERS_DATA_NOT_COVERED" in codes(result) or "ERS_CHAIN_NOT_COVERED" in codes(result)
    ok, out = bc.verify(record.to_der(), changed, roots)
    assert not ok and "not found" in out


def test_untrusted_roots_are_reported(tsas: tuple[ClockedTSA, ClockedTSA]) -> None:
    one, two = tsas
    record = stamp_initial(one).evidence_record(0)
    at = T0 + 2 * DAY
    result = verify_record(record, OBJECTS[0], [two.root], material_for(one, at=at), at)
    assert codes(result) >= {"ERS_TOKEN_UNTRUSTED"}
    with pytest.raises(TimestampError, match="unusable token"):
        one.clock = T0 + DAY
        initial_record(OBJECTS, "sha256", HttpTsa(one.url), trust_roots=[two.root])


# --------------------------------------------------- records made by Bouncy Castle


def test_bouncy_castle_records_verify_in_custody(bc: BouncyCastle, tmp_path: Path) -> None:
    # Bouncy Castle's renewHash first checks the record against *its* clock (new Date()),
    # so this scenario is set in the past: T0 here is 2021.
    T0 = dt.datetime(2021, 1, 1, tzinfo=dt.UTC)
    with (
        clocked_tsa(tmp_path, "BC One", not_before=T0 - DAY, not_after=T0 + YEAR) as one,
        clocked_tsa(tmp_path, "BC Two", not_before=T0 - DAY, not_after=T0 + 10 * YEAR) as two,
    ):
        _bouncy_castle_records(bc, tmp_path, one, two, T0)


def _bouncy_castle_records(
    bc: BouncyCastle, tmp_path: Path, one: ClockedTSA, two: ClockedTSA, T0: dt.datetime
) -> None:
    objects = OBJECTS[:5]
    files = [bc._file(o, ".bin") for o in objects]
    out_dir = tmp_path / "bc"
    out_dir.mkdir()
    one.clock = T0 + DAY
    ok, out = bc.run("create", one.url, "sha256", str(out_dir), *files)
    assert ok, out
    ours = initial_record(objects, "sha256", HttpTsa(one.url))
    assert out.split()[1] == ours.chains[0].tree.root.hex()  # same tree, same root
    roots = roots_of(one, two)
    at = T0 + 100 * DAY
    mat = material_for(one, two, at=at)
    for i, obj in enumerate(objects):
        record = (out_dir / f"{i}.ers").read_bytes()
        result = verify_record(record, obj, roots, mat, at)
        assert result.ok, (i, result.problems)
        assert "ERS_DATA_NOT_COVERED" in codes(verify_record(record, b"x", roots, mat, at))
    two.clock = T0 + 200 * DAY
    ok, out = bc.run("renew-ts", two.url, str(out_dir / "0.ers"), str(out_dir / "0r.ers"))
    assert ok, out
    two.clock = T0 + 300 * DAY
    ok, out = bc.run(
        "renew-hash", two.url, "sha512", str(out_dir / "0r.ers"), str(out_dir / "0h.ers"), files[0]
    )
    assert ok, out
    at = T0 + 3 * YEAR
    mat = material_for(one, two, at=at)
    for name in ("0r", "0h"):
        record = (out_dir / f"{name}.ers").read_bytes()
        result = verify_record(record, objects[0], roots, mat, at)
        assert result.ok, (name, result.problems)
    assert len(EvidenceRecord.from_der((out_dir / "0h.ers").read_bytes()).chains) == 2


# ------------------------------------------------------------ validation material


def test_validation_material_offline_and_store(
    tsas: tuple[ClockedTSA, ClockedTSA], tmp_path: Path
) -> None:
    one, _ = tsas
    token = stamp_initial(one).chains[0].time_stamps[0]
    offline = collect_validation_material(token, fetch=False)
    assert len(offline.certificates) == 3 and not offline.crls
    assert {(m.kind, m.reason) for m in offline.missing} >= {
        ("crl", "offline: not fetched"),
        ("ocsp", "offline: not fetched"),
    }
    # the CRL URL answers 404 until the CA publishes: a reasoned gap, not a silent one
    online = collect_validation_material(token, timeout=5)
    assert any("404" in m.reason for m in online.missing) and online.ocsp_responses
    # kept through a store by SHA-256 (the ledger's, in custody) and read back checked
    store: dict[str, bytes] = {}
    kept = keeping.collect_and_keep(token, T0 + DAY, store.__setitem__, timeout=5)
    assert {f.kind for f in kept.files} == {"certificate", "ocsp"}
    assert all(f.file.endswith(f"/{f.sha256}.der") for f in kept.files)
    pool = keeping.MaterialPool.read(store.__getitem__, kept.files)
    assert set(pool.material.certificates) == set(online.certificates)
    assert pool.material.ocsp_responses and not pool.problems
    # the CRLs are still missing; the OCSP answer was produced now, not after genTime (2031)
    assert {g.kind for g in kept.gaps} >= {"crl"} and all(g.url for g in kept.gaps)
    victim = kept.files[0].file
    store[victim] = store[victim] + b"\x00"
    changed = keeping.MaterialPool.read(store.__getitem__, kept.files)
    assert [why for _, why in changed.problems] == [
        f"validation material {victim} is not the file recorded (SHA-256 differs)"
    ]
    with pytest.raises(InputError):
        collect_validation_material(b"not a token")


def _round_trip(material: ValidationMaterial) -> ValidationMaterial:
    store: dict[str, bytes] = {}
    files = keeping._store(store.__setitem__, material)
    return keeping.MaterialPool.read(store.__getitem__, files).material


def test_token_certificate_set_is_put_in_der_order(tsas: tuple[ClockedTSA, ClockedTSA]) -> None:
    one, _ = tsas
    token = stamp_initial(one).chains[0].time_stamps[0]
    assert der_sorted_token(token) == token
    check_der(token)


def test_tsa_unreachable_is_a_timestamp_error(tmp_path: Path) -> None:
    with pytest.raises(TimestampError, match=r"connection refused|cannot reach"):
        initial_record([b"a"], "sha256", HttpTsa("http://127.0.0.1:9/tsa", timeout=2))
    with pytest.raises(UsageError, match="unknown hash algorithm"):
        initial_record([b"a"], "md5", HttpTsa("http://127.0.0.1:9/tsa"))
    with pytest.raises(UsageError):
        initial_record([b"a"], "sha1", HttpTsa("http://127.0.0.1:9/tsa"))
    with pytest.raises(UsageError):
        initial_record([], "sha256", HttpTsa("http://127.0.0.1:9/tsa"))


def test_hashtree_renewal_in_erratum_7411_sorted_form_is_accepted(
    tsas: tuple[ClockedTSA, ClockedTSA],
) -> None:
    # RFC 4998 §5.2 step 4 says H(h(i) + ha(i)); erratum 7411 (reported) says to sort the
    # two first. custody writes the former; a record from a producer that sorted must
    # still verify. Only a data hash above ha(i) tells the two apart: find one.
    one, two = tsas
    objects = [f"object {i}".encode() for i in range(40)]
    evidence = stamp_initial(one, objects)
    sha512 = algorithms.algorithm("sha512")
    for i, obj in enumerate(objects):
        record = evidence.evidence_record(i)
        ha = sha512.digest(ers.sequence_der(record.chains))
        h = sha512.digest(obj)
        if h > ha:
            break
    else:
        pytest.fail("no data hash above ha(i) among 40 objects")
    leaf = sha512.digest(ha + h)  # sorted: ha first, unlike §5.2's text
    two.clock = T0 + 100 * DAY
    token, _check = rfc3161.stamp_digest(leaf, "sha512", HttpTsa(two.url), source="test")
    migrated = dataclasses.replace(
        record,
        chains=(*record.chains, (ArchiveTimeStamp(time_stamp=token),)),
        digest_algorithms=(*record.digest_algorithms, sha512.der),
    )
    at = T0 + 200 * DAY
    mat = material_for(one, two, at=at)
    result = verify_record(migrated, obj, roots_of(one, two), mat, at)
    assert result.ok, result.problems
    assert any("7411" in n for n in result.notes)
    other = verify_record(migrated, objects[i - 1 if i else 1], roots_of(one, two), mat, at)
    assert "ERS_CHAIN_NOT_COVERED" in codes(other) or "ERS_DATA_NOT_COVERED" in codes(other)


def test_hostile_records_give_findings_never_tracebacks(
    tsas: tuple[ClockedTSA, ClockedTSA],
) -> None:
    one, _ = tsas
    der = stamp_initial(one).evidence_record(1).to_der()
    rng = __import__("random").Random(4998)
    at = T0 + 2 * DAY
    accepted = []
    for _ in range(150):
        mutated = bytearray(der)
        for _ in range(rng.randint(1, 4)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        if rng.random() < 0.2:
            mutated = mutated[: rng.randrange(len(mutated))]
        result = verify_record(bytes(mutated), OBJECTS[1], [one.root], at_time=at)
        assert isinstance(result, ers.ErsVerification)
        if result.ok and bytes(mutated) != der:
            accepted.append(bytes(mutated))
    # CMS leaves some bytes outside every hash and signature (SignedData.digestAlgorithms,
    # certificates not on the path) and RFC 4998 leaves EvidenceRecord.digestAlgorithms
    # unprotected: a change there may pass. Whatever passed must carry the very same
    # signed content and the same reduced hash tree.
    original = EvidenceRecord.from_der(der).chains[0][0]
    assert len(accepted) < 30

    def signed_parts(ats: ArchiveTimeStamp) -> tuple[object, ...]:
        sd = a_cms.ContentInfo.load(ats.time_stamp)["content"]
        signer = sd["signer_infos"][0]
        return (
            sd["encap_content_info"]["content"].contents,
            signer["signed_attrs"].dump(),
            signer["signature"].native,
            ats.reduced_hashtree,
        )

    for passed in accepted:
        assert signed_parts(EvidenceRecord.from_der(passed).chains[0][0]) == signed_parts(original)
    with pytest.raises(UsageError):
        verify_record(der, OBJECTS[1], [one.root], at_time=dt.datetime(2031, 1, 2))


def test_ocsp_answers_decide_revocation_status(tmp_path: Path) -> None:
    # cryptography's OCSP builder dates its answers with the real clock: this test works in
    # today's time, unlike the others.
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with clocked_tsa(tmp_path, "OCSP TSA", not_before=now - YEAR, not_after=now + YEAR) as one:
        one.clock = now - DAY
        token = initial_record([b"a", b"b"], "sha256", HttpTsa(one.url)).chains[0].time_stamps[0]
        one.revoke(now - 10 * DAY)
        material = collect_validation_material(token, timeout=10)
        assert len(material.ocsp_responses) == 1 and not material.crls
        status = ers_material.revocation_status
        cert, issuer = one.certificate, one.intermediate
        assert status(cert, issuer, material, now - 5 * DAY).state == "revoked"
        before = status(cert, issuer, material, now - 20 * DAY)
        assert before.state == "good" and before.revoked_at == now - 10 * DAY
        forged = ValidationMaterial(ocsp_responses=material.ocsp_responses)
        assert status(cert, one.root, forged, now - 5 * DAY).state == "unknown"  # wrong issuer


@pytest.mark.parametrize("name", ["sha384", "sha3-512"])
def test_migration_to_other_algorithms(
    tsas: tuple[ClockedTSA, ClockedTSA], bc: BouncyCastle, name: str
) -> None:
    one, two = tsas
    evidence = stamp_initial(one)
    two.clock = T0 + 100 * DAY
    migrated = renew_hashtree(evidence, name, OBJECTS, HttpTsa(two.url))
    assert isinstance(migrated, EvidenceSet) and migrated.chains[1].algorithm == name
    record = migrated.evidence_record(2)
    at = T0 + 2 * YEAR
    material = material_for(one, two, at=at)
    result = verify_record(record, OBJECTS[2], roots_of(one, two), material, at)
    assert result.ok, result.problems
    assert result.timestamps[1].algorithm == algorithms.algorithm(name).oid
    ok, out = bc.verify(record.to_der(), OBJECTS[2], roots_of(one, two))
    assert ok, out
