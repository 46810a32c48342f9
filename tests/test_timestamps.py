"""custody.timestamps.rfc3161 against a real OpenSSL TSA on loopback (tests/tsa.py)."""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rfc3161_client import decode_timestamp_response
from tests.tsa import (
    OPENSSL,
    TSA,
    openssl_ok,
    permute_certificates,
    running_tsa,
    token_regions,
)

from custody.errors import TimestampError
from custody.timestamps.der import check_der
from custody.timestamps.rfc3161 import (
    CHECK_CERT_ID,
    CHECK_CHAIN,
    CHECK_EKU,
    CHECK_IMPRINT,
    CHECK_LIBRARY,
    CHECK_NONCE,
    CHECK_PARSE,
    CHECK_SIGNATURE,
    CHECK_STATUS,
    CHECK_VALIDITY,
    TIMESTAMP_INVALID,
    TIMESTAMP_MISMATCH,
    TIMESTAMP_UNTRUSTED,
    TokenCheck,
    check_response,
    check_token,
    openssl_verify_command,
    stamp_digest,
    token_of,
)
from custody.timestamps.tsa_client import HttpTsa, TimestampRequest, build_request, request_token

RECORD = b'{"kind":"checkpoint","seq":41,"root":"5f1c"}'
DIGEST = hashlib.sha256(RECORD).digest()


def stamp(tsa: TSA, digest: bytes = DIGEST) -> tuple[TimestampRequest, bytes]:
    request = build_request(digest)
    return request, request_token(tsa.url, request, timeout=10)


def check(
    tsa: TSA, raw: bytes, request: TimestampRequest | None = None, **kw: object
) -> TokenCheck:
    options: dict[str, object] = {
        "digest": DIGEST,
        "nonce": request.nonce if request else None,
        "roots": [tsa.root_certificate()],
    }
    options.update(kw)
    return check_response(raw, **options)  # type: ignore[arg-type]


def outcomes(result: TokenCheck) -> dict[str, str]:
    return {c.name: c.outcome for c in result.checks}


def openssl_verifies(tsa: TSA, raw: bytes, tmp_path: Path, result: TokenCheck) -> tuple[bool, str]:
    token = tmp_path / f"token-{time.monotonic_ns()}.tsr"
    token.write_bytes(raw)
    argv = openssl_verify_command(
        token=token,
        digest=DIGEST,
        ca_file=tsa.root_pem,
        untrusted=tsa.chain_pem,
        at_time=result.gen_time,
        openssl=OPENSSL,
    )
    return openssl_ok(argv)


# ------------------------------------------------------------------- requests


def test_build_request_is_a_sha256_query_with_nonce_and_cert_req(tmp_path: Path) -> None:
    request = build_request(DIGEST)
    assert request.digest == DIGEST and request.cert_req
    assert request.nonce.bit_length() == 64
    assert build_request(DIGEST).nonce != request.nonce
    query = tmp_path / "q.tsq"
    query.write_bytes(request.as_bytes())
    text = subprocess.run(
        [OPENSSL, "ts", "-query", "-in", str(query), "-text"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Hash Algorithm: sha256" in text
    assert "Certificate required: yes" in text
    assert f"Nonce: 0x{request.nonce:X}" in text
    flat = "".join(line.split(" - ", 1)[1][:48] for line in text.splitlines() if " - " in line)
    assert flat.replace("-", " ").replace(" ", "") == DIGEST.hex()


@pytest.mark.parametrize("bad", [b"", b"\0" * 31, b"\0" * 33, DIGEST.hex().encode()])
def test_build_request_wants_a_32_byte_digest(bad: bytes) -> None:
    with pytest.raises(ValueError):
        build_request(bad)


@pytest.mark.parametrize("name", ["sha384", "sha512"])
def test_requests_and_checks_take_any_imprint_algorithm(tmp_path: Path, name: str) -> None:
    # RFC 4998 archive timestamps migrate to stronger algorithms: one request builder and
    # one checker for all of them, confirmed by openssl ts -query and -verify.
    digest = hashlib.new(name, RECORD).digest()
    request = build_request(digest, name)
    assert build_request(digest, name, null_parameters=False).der != request.der
    query = tmp_path / "q.tsq"
    query.write_bytes(request.as_bytes())
    text = subprocess.run(
        [OPENSSL, "ts", "-query", "-in", str(query), "-text"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"Hash Algorithm: {name}" in text
    with pytest.raises(ValueError):
        build_request(DIGEST, name)  # a SHA-256 digest is not a digest of this algorithm
    with pytest.raises(ValueError):
        build_request(hashlib.sha1(RECORD).digest(), "sha1")  # never for new evidence
    with running_tsa(tmp_path) as tsa:
        raw = request_token(tsa.url, request, timeout=10)
        roots = [tsa.root_certificate()]
        good = check_response(raw, digest=digest, nonce=request.nonce, roots=roots, algorithm=name)
        assert good.ok, good.reason
        assert good.check(CHECK_IMPRINT).reason == f"{name} imprint {digest.hex()}"
        # expecting SHA-256 (the checkpoint default) of a SHA-512 token is a mismatch
        other = check_response(raw, digest=DIGEST, nonce=None, roots=roots)
        assert other.finding == TIMESTAMP_MISMATCH and "not sha256" in other.reason
        # the bare token (what an evidence record holds) gets the same checks
        token = token_of(raw)
        check_der(token)
        bare = check_token(token, roots=roots)
        assert bare.ok and bare.check(CHECK_IMPRINT).outcome == "skipped"
        assert bare.message_imprint == digest and bare.gen_time == good.gen_time
        assert check_token(token[:-3], roots=roots).finding == TIMESTAMP_INVALID
        _token, checked = stamp_digest(digest, name, HttpTsa(tsa.url), roots=roots)
        assert checked.ok and checked.hash_algorithm == request_oid(name)
    token_file = tmp_path / "t.tsr"
    token_file.write_bytes(raw)
    ok, out = openssl_ok(
        [OPENSSL, "ts", "-verify", "-digest", digest.hex(), "-in", str(token_file), "-CAfile",
         str(tsa.root_pem), "-untrusted", str(tsa.chain_pem)]
    )  # fmt: skip
    assert ok, out


def request_oid(name: str) -> str:
    from custody.timestamps.algorithms import algorithm

    return algorithm(name).oid


def test_stamp_digest_refuses_an_unusable_answer(tmp_path: Path) -> None:
    with running_tsa(tmp_path, "wrong_imprint") as tsa, pytest.raises(TimestampError) as caught:
        stamp_digest(DIGEST, "sha256", HttpTsa(tsa.url), roots=[tsa.root_certificate()])
    assert "unusable token (TIMESTAMP_MISMATCH)" in str(caught.value)


def test_request_token_posts_a_timestamp_query(tmp_path: Path) -> None:
    with running_tsa(tmp_path) as tsa:
        request, raw = stamp(tsa)
    assert tsa.queries == [request.as_bytes()]
    headers = {k.lower(): v for k, v in tsa.query_headers[0].items()}
    assert headers["content-type"] == "application/timestamp-query"
    assert raw[:1] == b"\x30"


# ------------------------------------------------------------------ happy path

TWO_TSAS = [
    pytest.param({"key_type": "ec", "include_chain": True, "ess_alg": "sha256"}, id="ec-chain"),
    pytest.param({"key_type": "rsa", "include_chain": False, "ess_alg": "sha1"}, id="rsa-leaf"),
]


@pytest.mark.parametrize("options", TWO_TSAS)
def test_genuine_token_passes_every_check(tmp_path: Path, options: dict[str, object]) -> None:
    include_chain = bool(options["include_chain"])
    with running_tsa(tmp_path, name=f"TSA {options['key_type']}", **options) as tsa:  # type: ignore[arg-type]
        request, raw = stamp(tsa)
        before = dt.datetime.now(dt.UTC)
        # Without the chain in the token, the intermediate must be configured.
        extra = {} if include_chain else {"intermediates": tsa.chain_certificates()}
        result = check(tsa, raw, request, **extra)
        assert result.ok, result.checks
        assert result.finding is None
        assert set(outcomes(result).values()) == {"passed"}
        assert abs((result.gen_time - before).total_seconds()) < 60  # type: ignore[operator]
        assert result.nonce == request.nonce
        assert result.message_imprint == DIGEST
        assert result.policy_oid == "1.3.6.1.4.1.55555.3161.1"
        assert result.serial_number is not None and result.serial_number > 0
        assert result.tsa_name is not None and f"CN=TSA {options['key_type']}" in result.tsa_name
        tsa_der = x509.load_pem_x509_certificate(tsa.tsa_cert_pem.read_bytes()).public_bytes(
            Encoding.DER
        )
        assert result.signer_certificate == tsa_der
        assert result.chain[0] == tsa_der
        assert result.chain[-1] == tsa.root_certificate().public_bytes(Encoding.DER)
        assert len(result.certificates) == (3 if include_chain else 1)
        v1 = "signingCertificate (sha1)" if options["ess_alg"] == "sha1" else "V2 (sha256)"
        assert v1 in result.check(CHECK_CERT_ID).reason
        if include_chain:
            # The precondition of the InvalidSetOrdering workaround: OpenSSL puts the
            # signer first, out of DER order, and rfc3161-client alone refuses it.
            with pytest.raises(ValueError, match="InvalidSetOrdering"):
                decode_timestamp_response(raw)
            assert result.reordered_certificates
        else:
            assert not result.reordered_certificates
        ok, output = openssl_verifies(tsa, raw, tmp_path, result)
        assert ok, output
        # Without the nonce (a stored token, checked later) it is just as good.
        assert check(tsa, raw, None, **extra).ok


def test_two_tsas_do_not_vouch_for_each_other(tmp_path: Path) -> None:
    with (
        running_tsa(tmp_path, name="Alpha TSA") as alpha,
        running_tsa(tmp_path, name="Beta TSA", key_type="rsa") as beta,
    ):
        request, raw = stamp(alpha)
        assert check(alpha, raw, request).ok
        result = check(alpha, raw, request, roots=[beta.root_certificate()])
        assert result.finding == TIMESTAMP_UNTRUSTED
        assert outcomes(result)[CHECK_SIGNATURE] == "passed"
        assert outcomes(result)[CHECK_CHAIN] == "failed"
        assert outcomes(result)[CHECK_LIBRARY] == "skipped"


def test_roots_are_required_in_roots_mode(tmp_path: Path) -> None:
    with running_tsa(tmp_path) as tsa:
        request, raw = stamp(tsa)
    result = check(tsa, raw, request, roots=[])
    assert result.finding == TIMESTAMP_UNTRUSTED
    assert "no trusted roots" in result.check(CHECK_CHAIN).reason


def test_self_contained_mode_trusts_only_what_the_token_carries(tmp_path: Path) -> None:
    with (
        running_tsa(tmp_path, include_chain=True) as full,
        running_tsa(tmp_path, include_chain=False) as leaf_only,
    ):
        request, raw = stamp(full)
        _, bare = stamp(leaf_only)
    result = check(full, raw, request, roots=[], trust="embedded")
    assert result.ok, result.checks
    assert result.trust == "embedded"
    bare_result = check(leaf_only, bare, None, roots=[], trust="embedded")
    assert bare_result.finding == TIMESTAMP_UNTRUSTED
    assert "no self-signed root" in bare_result.check(CHECK_CHAIN).reason


def test_certificate_order_is_outside_the_signature(tmp_path: Path) -> None:
    """Reordering the certificate SET changes no signed byte; OpenSSL and custody agree."""
    with running_tsa(tmp_path, include_chain=True) as tsa:
        request, raw = stamp(tsa)
    regions = token_regions(raw)
    assert len(regions["certificates"]) == 3
    signed = {
        k: [raw[a:b] for a, b in regions[k]] for k in ("tstinfo", "signed_attrs", "signature")
    }
    for order in ([0, 1, 2], [2, 1, 0], [1, 2, 0], [2, 0, 1]):
        variant = permute_certificates(raw, order)
        assert len(variant) == len(raw)
        vregions = token_regions(variant)
        assert {k: [variant[a:b] for a, b in vregions[k]] for k in signed} == signed
        result = check(tsa, variant, request)
        assert result.ok, (order, result.checks)
        ok, output = openssl_verifies(tsa, variant, tmp_path, result)
        assert ok, (order, output)


def test_openssl_needs_attime_once_the_tsa_certificate_expires(tmp_path: Path) -> None:
    with running_tsa(tmp_path) as tsa:
        request, raw = stamp(tsa)
    result = check(tsa, raw, request)
    assert result.ok
    token = tmp_path / "t.tsr"
    token.write_bytes(raw)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=400)  # all test certs expired
    argv = openssl_verify_command(
        token=token, digest=DIGEST, ca_file=tsa.root_pem, at_time=later, openssl=OPENSSL
    )
    assert not openssl_ok(argv)[0]
    argv = openssl_verify_command(
        token=token, digest=DIGEST, ca_file=tsa.root_pem, at_time=result.gen_time, openssl=OPENSSL
    )
    assert openssl_ok(argv)[0]


def test_openssl_verify_command_shape() -> None:
    when = dt.datetime(2030, 1, 2, 3, 4, 5, 600000, tzinfo=dt.UTC)
    argv = openssl_verify_command(
        token="x.tsr", digest=DIGEST, ca_file="root.pem", untrusted="chain.pem", at_time=when
    )
    assert argv == [
        "openssl",
        "ts",
        "-verify",
        "-digest",
        DIGEST.hex(),
        "-in",
        "x.tsr",
        "-CAfile",
        "root.pem",
        "-untrusted",
        "chain.pem",
        "-attime",
        str(int(when.timestamp())),
    ]
    assert openssl_verify_command(token="x", digest=DIGEST.hex().upper(), ca_file="r")[4] == (
        DIGEST.hex()
    )
    with pytest.raises(ValueError):
        openssl_verify_command(token="x", digest=b"short", ca_file="r")


# ------------------------------------------------------------- misbehaviours

MISBEHAVIOUR = [
    # mode, the check that must fail, the finding, checks that must still pass
    ("wrong_imprint", CHECK_IMPRINT, TIMESTAMP_MISMATCH, (CHECK_SIGNATURE, CHECK_CHAIN)),
    ("wrong_nonce", CHECK_NONCE, TIMESTAMP_INVALID, (CHECK_IMPRINT, CHECK_SIGNATURE)),
    ("reject", CHECK_STATUS, TIMESTAMP_INVALID, (CHECK_PARSE,)),
    ("noncritical_eku", CHECK_EKU, TIMESTAMP_INVALID, (CHECK_SIGNATURE, CHECK_CERT_ID)),
    ("untrusted_root", CHECK_CHAIN, TIMESTAMP_UNTRUSTED, (CHECK_SIGNATURE, CHECK_VALIDITY)),
    ("expired", CHECK_VALIDITY, TIMESTAMP_INVALID, (CHECK_SIGNATURE, CHECK_CHAIN)),
    ("garbage", CHECK_PARSE, TIMESTAMP_INVALID, ()),
]


@pytest.mark.parametrize("include_chain", [True, False], ids=["chain", "leaf"])
@pytest.mark.parametrize(
    ("mode", "failing", "finding", "passing"), MISBEHAVIOUR, ids=[m[0] for m in MISBEHAVIOUR]
)
def test_misbehaving_tsa_is_caught(
    tmp_path: Path,
    mode: str,
    failing: str,
    finding: str,
    passing: tuple[str, ...],
    include_chain: bool,
) -> None:
    with running_tsa(tmp_path, mode, include_chain=include_chain) as tsa:
        request, raw = stamp(tsa)
        assert not tsa.errors
        extra = {} if include_chain else {"intermediates": tsa.chain_certificates()}
        result = check(tsa, raw, request, **extra)
    assert not result.ok
    assert result.finding == finding, result.checks
    got = outcomes(result)
    assert got[failing] == "failed", result.checks
    for name in passing:
        assert got[name] == "passed", (name, result.checks)
    assert got[CHECK_LIBRARY] != "passed"
    assert result.reason.startswith(f"{failing}: ")
    assert "\n" not in result.reason
    if mode == "reject":
        assert "rejection" in (result.status_text or "")
        assert "badAlg" in (result.status_text or "")
    if mode in ("wrong_imprint", "noncritical_eku", "untrusted_root", "expired"):
        # A real signature by a real certificate, which OpenSSL refuses as well.
        assert result.signer_certificate is not None
        ok, _output = openssl_verifies(tsa, raw, tmp_path, result)
        assert not ok
    if mode == "untrusted_root" and include_chain:
        # The weaker self-contained mode is satisfied by the TSA's own (rogue) root.
        assert check(tsa, raw, request, roots=[], trust="embedded").ok


def test_rejection_for_other_digest_is_reported_without_token(tmp_path: Path) -> None:
    with running_tsa(tmp_path, "reject") as tsa:
        _, raw = stamp(tsa)
    result = check(tsa, raw)
    assert result.status == 2
    assert result.gen_time is None and result.signer_certificate is None
    assert {c.name for c in result.checks if c.outcome == "skipped"} >= {CHECK_SIGNATURE}


# ------------------------------------------------------------------ transport


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("http_500", "HTTP 500"),
        ("wrong_content_type", "content type 'text/html'"),
        ("oversized", "more than 1048576 bytes"),
        ("oversized_declared", "more than 1048576 bytes"),
        ("redirect", "HTTP 302"),
    ],
)
def test_transport_failures_raise_timestamp_error(tmp_path: Path, mode: str, message: str) -> None:
    with running_tsa(tmp_path, mode) as tsa, pytest.raises(TimestampError) as caught:
        request_token(tsa.url, build_request(DIGEST), timeout=10)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert tsa.url in str(caught.value)


def test_connection_refused(tmp_path: Path) -> None:
    with running_tsa(tmp_path) as tsa:
        url = tsa.url
    with pytest.raises(TimestampError, match="connection refused"):
        request_token(url, build_request(DIGEST), timeout=5)


def test_not_an_http_url() -> None:
    with pytest.raises(TimestampError, match="not an http"):
        request_token("file:///etc/passwd", build_request(DIGEST))


def test_silent_server_times_out_on_time(tmp_path: Path) -> None:
    timeout = 1.5
    with running_tsa(tmp_path, "hang") as tsa:
        started = time.monotonic()
        with pytest.raises(TimestampError, match=r"did not answer within 1\.5 s"):
            request_token(tsa.url, build_request(DIGEST), timeout=timeout)
        elapsed = time.monotonic() - started
    assert timeout - 0.1 <= elapsed < timeout + 1.0


# ------------------------------------------------------------- property tests


@pytest.fixture(scope="module")
def genuine(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, tuple[bytes, x509.Certificate, list[x509.Certificate]]]:
    tokens = {}
    for name, options in (
        ("ec-chain", {"include_chain": True}),
        ("rsa-leaf", {"include_chain": False, "key_type": "rsa", "ess_alg": "sha1"}),
    ):
        with running_tsa(tmp_path_factory.mktemp(name), **options) as tsa:  # type: ignore[arg-type]
            _, raw = stamp(tsa)
            tokens[name] = (raw, tsa.root_certificate(), tsa.chain_certificates())
    return tokens


def _attested(der: bytes) -> tuple[bytes, bytes]:
    certificate = x509.load_der_x509_certificate(der)
    return certificate.tbs_certificate_bytes, certificate.signature


def _verdict(raw: bytes, root: x509.Certificate, chain: list[x509.Certificate]) -> TokenCheck:
    return check_response(raw, digest=DIGEST, nonce=None, roots=[root], intermediates=chain)


@pytest.mark.parametrize("which", ["ec-chain", "rsa-leaf"])
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_flipping_a_signed_byte_never_passes(
    genuine: dict, which: str, data: st.DataObject
) -> None:  # type: ignore[type-arg]
    raw, root, chain = genuine[which]
    assert _verdict(raw, root, chain).ok
    regions = token_regions(raw)
    spans = regions["tstinfo"] + regions["signed_attrs"] + regions["signature"]
    start, end = data.draw(st.sampled_from(spans), label="region")
    offset = data.draw(st.integers(start, end - 1), label="offset")
    mask = data.draw(st.integers(1, 255), label="xor")
    flipped = bytearray(raw)
    flipped[offset] ^= mask
    result = _verdict(bytes(flipped), root, chain)
    assert not result.ok
    assert result.finding in (TIMESTAMP_INVALID, TIMESTAMP_MISMATCH)


@pytest.mark.parametrize("which", ["ec-chain", "rsa-leaf"])
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_flipping_any_byte_never_raises_nor_changes_what_is_attested(
    genuine: dict,
    which: str,
    data: st.DataObject,  # type: ignore[type-arg]
) -> None:
    raw, root, chain = genuine[which]
    original = _verdict(raw, root, chain)
    offset = data.draw(st.integers(0, len(raw) - 1), label="offset")
    mask = data.draw(st.integers(1, 255), label="xor")
    flipped = bytearray(raw)
    flipped[offset] ^= mask
    result = _verdict(bytes(flipped), root, chain)
    if result.ok:  # only unsigned trivia may change (e.g. the embedded copy of the root)
        assert (result.gen_time, result.message_imprint, result.serial_number) == (
            original.gen_time,
            original.message_imprint,
            original.serial_number,
        )
        assert result.signer_certificate == original.signer_certificate
        # The chain may come from a byte-different copy of a certificate whose signed part
        # and signature are the same (e.g. a non-zero "unused bits" octet in the signature
        # BIT STRING): encoding trivia, not a different certificate.
        assert [_attested(c) for c in result.chain] == [_attested(c) for c in original.chain]


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=2048))
def test_arbitrary_bytes_are_a_verdict_not_an_exception(raw: bytes) -> None:
    result = check_response(raw, digest=DIGEST, nonce=1, roots=[])
    assert not result.ok
    assert result.finding == TIMESTAMP_INVALID


def test_expert_digest_pipeline_matches_the_imprint(tmp_path: Path) -> None:
    """docs/timestamps-expert.md: `sed -n '<N+1>p' | tr -d '\\n' | sha256sum`."""
    ledger = tmp_path / "ledger.jsonl"
    lines = [b'{"seq":0}', RECORD, '{"seq":2,"note":"caf\u00e9"}'.encode()]
    ledger.write_bytes(b"\n".join(lines) + b"\n")
    for n, line in enumerate(lines):
        out = subprocess.run(
            f"sed -n '{n + 1}p' ledger.jsonl | tr -d '\\n' | sha256sum",
            shell=True,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()[0]
        assert out == hashlib.sha256(line).hexdigest()
