"""Trusted timestamps in the ledger: which checkpoints need one, getting them, checking them.

A token from an RFC 3161 timestamp authority (TSA) over a checkpoint proves that the
checkpoint - and through its Merkle root every record before it - existed at the TSA's
``genTime``. The message imprint is SHA-256 of the checkpoint line's exact bytes (without
its newline), so an expert recomputes it with ``sed -n 'N+1p' ledger.jsonl | tr -d '\\n' |
sha256sum``.

``stamp`` makes a checkpoint if records were added since the last one, asks every
configured TSA for a token for every checkpoint that is still pending (fewer tokens than
the policy's ``min_success``), keeps each raw DER response under
``.custody/timestamps/`` with its validation material (the TSA's certificates and the CRLs
and OCSP answers they name, ``custody.timestamps.keeping``), and appends one ``timestamp``
record per token listing both. Being offline is normal in the field: what no TSA answered
stays pending for a later run, and material that could not be fetched is fetched by a
later run (a ``validation`` record).

Air-gapped stamping splits ``stamp`` in three, so the evidence laptop never goes online
(docs/timestamps.md): ``write_requests`` builds the RFC 3161 requests for every pending
checkpoint and keeps a copy under ``.custody/timestamps/requests/``; ``fetch_responses``,
on any online machine, without keys or evidence, posts them and collects the raw replies;
``accept_responses``, back on the laptop, checks each reply against the request *it kept*
(nonce, message imprint recomputed from the ledger, the authority's certificate and
signature, as ``stamp`` does) and records the tokens exactly as ``stamp`` would have.

``verify_timestamps`` checks every token against its checkpoint and the trust anchors,
the causal order of token times, coverage of records by trusted time, and sets each
item's claimed capture time beside its catalogue time and its earliest trusted time.
"""

from __future__ import annotations

import hashlib
import re
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from custody.clock import Clock, format_seconds, format_time, parse_time, utc_now
from custody.encoding import b64decode, b64encode
from custody.errors import InputError, RecordError, StorageError, TimestampError, UsageError
from custody.i18n import N_, _, ngettext
from custody.keys.keyring import SigningKey
from custody.ledger.backends import open_ledger
from custody.ledger.bodies import CheckpointBody, TimestampBody
from custody.ledger.records import SignedRecord
from custody.ledger.store import Ledger
from custody.root import EvidenceRoot
from custody.system.files import write_atomic

# TSAs' clocks and ours differ by seconds; causal order is checked with this slack.
ORDER_TOLERANCE = timedelta(seconds=60)
# A catalogue time further than this from every trusted time is flagged for a human.
CATALOGUE_DISTANCE = timedelta(days=7)
# A capture time without a zone may be local time anywhere on Earth.
UNKNOWN_ZONE_SLACK = timedelta(hours=14)


@dataclass(frozen=True)
class TsaOutcome:
    tsa: str
    ok: bool
    reason: str
    gen_time: str | None = None
    record: int | None = None
    validation: int = 0  # material files kept with the token
    validation_missing: int = 0  # material that could not be had (listed in the record)
    unreachable: bool = False  # the authority could not be reached: not asked again this run
    # Not a failure: this checkpoint already has its token from this authority. (Renderers
    # ask this, never the reason's words: the reason is in the language of the run.)
    skipped: bool = False


@dataclass
class CheckpointStamp:
    checkpoint: int
    tree_size: int
    tokens_before: int
    outcomes: list[TsaOutcome] = field(default_factory=list)

    @property
    def tokens(self) -> int:
        return self.tokens_before + sum(1 for o in self.outcomes if o.ok)


@dataclass
class StampReport:
    min_success: int
    new_checkpoint: int | None = None
    checkpoints: list[CheckpointStamp] = field(default_factory=list)
    validation: list[dict[str, Any]] = field(default_factory=list)  # gaps filled this run

    @property
    def pending(self) -> list[CheckpointStamp]:
        return [c for c in self.checkpoints if c.tokens < self.min_success]

    @property
    def ok(self) -> bool:
        return not self.pending

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "stamped": self.ok,
            "min_success": self.min_success,
            "new_checkpoint": self.new_checkpoint,
            "checkpoints": [
                {
                    "checkpoint": c.checkpoint,
                    "tree_size": c.tree_size,
                    "tokens": c.tokens,
                    "pending": c.tokens < self.min_success,
                    "outcomes": [
                        {
                            "tsa": o.tsa,
                            "ok": o.ok,
                            "reason": o.reason,
                            "gen_time": o.gen_time,
                            "record": o.record,
                            "validation": o.validation,
                            "validation_missing": o.validation_missing,
                        }
                        for o in c.outcomes
                    ],
                }
                for c in self.checkpoints
            ],
        }
        if self.validation:  # only when a run fetched material that was missing
            document["validation"] = self.validation
        return document


@dataclass(frozen=True)
class Trust:
    """What the verifier trusts: root certificates, plus intermediates to build chains."""

    roots: tuple[Any, ...] = ()
    intermediates: tuple[Any, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.roots)


def load_trust(paths: Sequence[str | Path]) -> Trust:
    """Certificates from PEM files: self-signed ones are roots, the others intermediates."""
    if not paths:
        return Trust()
    from cryptography import x509

    roots: list[Any] = []
    intermediates: list[Any] = []
    for path in paths:
        try:
            certificates = x509.load_pem_x509_certificates(Path(path).read_bytes())
        except OSError as exc:
            raise UsageError(
                _("cannot read TSA certificate file {path}: {why}").format(
                    path=path, why=exc.strerror
                )
            ) from None
        except ValueError:
            raise UsageError(_("{path} holds no PEM certificate").format(path=path)) from None
        for certificate in certificates:
            self_signed = certificate.issuer == certificate.subject
            (roots if self_signed else intermediates).append(certificate)
    if not roots:
        # Without an anchor, checking would silently fall back to the self-contained mode,
        # trusting whatever root a token carries: the opposite of what was asked for.
        listing = ", ".join(str(p) for p in paths)
        raise UsageError(
            _(
                "no root (self-signed) certificate in {files}: give the TSA's root certificate"
            ).format(files=listing)
        )
    return Trust(tuple(roots), tuple(intermediates))


def _ledger_timestamps(ledger: Ledger) -> list[tuple[int, TimestampBody]]:
    return [
        (seq, TimestampBody.from_json(ledger.read(seq).record.body))
        for seq in ledger.index.records_of_type("timestamp")
    ]


def _token_kept(ledger: Ledger, body: TimestampBody) -> bool:
    """True if the recorded token is kept with the recorded SHA-256."""
    try:
        raw = ledger.read_token(body.token_file)
    except OSError:
        return False
    return hashlib.sha256(raw).hexdigest() == body.token_sha256


def _file_name(checkpoint: int, url: str, serial: str) -> str:
    host = urllib.parse.urlsplit(url).netloc or "tsa"
    safe = re.sub(r"[^A-Za-z0-9.-]+", "_", host)[:60]
    # Several TSAs can share a host (units under different paths), each counting its own
    # serials: the whole URL's digest keeps one's token from overwriting another's.
    unit = hashlib.sha256(url.encode("utf-8")).hexdigest()[:8]
    return f"checkpoint-{checkpoint:08d}-{safe}-{unit}-{serial[:32]}.tsr"


def _policy(
    root: EvidenceRoot, tsa_urls: Sequence[str] | None, min_success: int | None
) -> tuple[list[str], int]:
    """The authorities to ask and the tokens each checkpoint needs, for this run.

    Authorities named for the run (``--tsa``) replace the configured list; the configured
    number of tokens then applies up to the number named."""
    config = root.config()
    named = tsa_urls is not None
    urls = list(dict.fromkeys(tsa_urls if tsa_urls is not None else config.tsa_urls))
    if not urls:
        raise UsageError(_("no timestamp authority configured: pass --tsa URL or edit config.toml"))
    if min_success is not None:
        need = min_success
    else:
        need = min(config.tsa_min_success, len(urls)) if named else config.tsa_min_success
    if not 1 <= need <= len(urls):
        raise UsageError(
            ngettext(
                "the policy asks for {need} tokens but {n} TSA(s) are configured",
                "the policy asks for {need} tokens but {n} TSA(s) are configured",
                len(urls),
            ).format(need=need, n=len(urls))
        )
    return urls, need


def _pending(ledger: Ledger, need: int) -> list[tuple[SignedRecord, set[str]]]:
    """Checkpoints with fewer than ``need`` kept tokens, and the TSAs that stamped each."""
    stamped_by: dict[int, set[str]] = {}
    for _seq, existing in _ledger_timestamps(ledger):
        if _token_kept(ledger, existing):  # a record whose token is gone is no token
            stamped_by.setdefault(existing.checkpoint, set()).add(existing.tsa)
    pending = []
    for seq in ledger.index.records_of_type("checkpoint"):
        done = stamped_by.get(seq, set())
        if len(done) < need:
            pending.append((ledger.read(seq), done))
    return pending


def stamp(
    root: EvidenceRoot,
    signer: SigningKey,
    *,
    tsa_urls: Sequence[str] | None = None,
    min_success: int | None = None,
    timeout: float | None = None,
    trust: Trust = Trust(),
    clock: Clock = utc_now,
) -> StampReport:
    """Stamp every pending checkpoint; see the module docstring."""
    from custody.timestamps import rfc3161 as timestamps

    config = root.config()
    urls, need = _policy(root, tsa_urls, min_success)
    wait = timeout if timeout is not None else config.tsa_timeout
    report = StampReport(min_success=need)
    with open_ledger(root) as ledger:
        if ledger.needs_checkpoint():
            with ledger.writer(signer, clock=clock) as writer:
                report.new_checkpoint = writer.checkpoint().seq
        dead: dict[str, str] = {}
        unreachable: set[str] = set()  # hosts of CRLs/OCSP responders that did not answer
        bodies: list[tuple[CheckpointStamp, TsaOutcome, TimestampBody]] = []
        for checkpoint, done in _pending(ledger, need):
            seq = checkpoint.seq
            entry = CheckpointStamp(seq, int(checkpoint.record.body["tree_size"]), len(done))
            report.checkpoints.append(entry)
            digest = hashlib.sha256(checkpoint.line).digest()
            for url in urls:
                if url in done:
                    continue
                if url in dead:
                    entry.outcomes.append(TsaOutcome(url, False, dead[url], unreachable=True))
                    continue
                outcome, body = _one_token(
                    root, ledger, seq, digest, url, wait, trust, timestamps, unreachable
                )
                if body is None:
                    if outcome.unreachable:
                        dead[url] = outcome.reason
                    entry.outcomes.append(outcome)
                else:
                    bodies.append((entry, outcome, body))
        _record_tokens(ledger, signer, clock, bodies)
        report.validation = _fill_material_gaps(ledger, signer, clock, min(wait, 10.0))
    return report


def _record_tokens(
    ledger: Ledger,
    signer: SigningKey,
    clock: Clock,
    bodies: Sequence[tuple[CheckpointStamp, TsaOutcome, TimestampBody]],
) -> None:
    """Append one ``timestamp`` record per accepted token, in one write, and note each
    record on its authority's outcome (online replies and air-gapped ones alike)."""
    if not bodies:
        return
    with ledger.writer(signer, clock=clock) as writer:
        for entry, outcome, body in bodies:
            signed = writer.append("timestamp", body.to_json())
            entry.outcomes.append(
                TsaOutcome(
                    outcome.tsa,
                    True,
                    outcome.reason,
                    outcome.gen_time,
                    signed.seq,
                    len(body.validation),
                    len(body.validation_missing),
                )
            )


def _fill_material_gaps(
    ledger: Ledger, signer: SigningKey, clock: Clock, timeout: float
) -> list[dict[str, Any]]:
    """Fetch what earlier runs could not (``keeping.fill_gaps``); a ``validation`` record
    for each token that gained material."""
    from custody.timestamps.keeping import MaterialPool, fill_gaps
    from custody.timestamps.longterm import LongtermState, outstanding_gaps

    state = LongtermState.from_ledger(ledger)
    gaps = outstanding_gaps(state, ledger.read_token)
    if not gaps:
        return []
    pool = MaterialPool.read(ledger.read_token, state.material_refs())
    bodies = fill_gaps(gaps, pool, ledger.store_token, timeout=timeout, clock=clock)
    done = []
    if bodies:
        with ledger.writer(signer, clock=clock) as writer:
            for body in bodies:
                signed = writer.append("validation", body.to_json())
                done.append(
                    {
                        "for": body.tokens[0].record,
                        "record": signed.seq,
                        "files": len(body.validation),
                        "missing": len(body.validation_missing),
                    }
                )
    return done


def _one_token(
    root: EvidenceRoot,
    ledger: Ledger,
    checkpoint: int,
    digest: bytes,
    url: str,
    wait: float,
    trust: Trust,
    timestamps: Any,
    unreachable: set[str],
) -> tuple[TsaOutcome, TimestampBody | None]:
    from custody.timestamps import tsa_client

    request = tsa_client.build_request(digest)
    try:
        raw = tsa_client.request_token(url, request, timeout=wait)
    except TimestampError as exc:
        reason = _("unreachable: {error}").format(error=exc)
        return TsaOutcome(url, False, reason, unreachable=True), None
    return _accept(
        root, ledger, checkpoint, digest, url, request.nonce, raw, trust, timestamps,
        fetch=True, wait=wait, unreachable=unreachable,
    )  # fmt: skip


def _accept(
    root: EvidenceRoot,
    ledger: Ledger,
    checkpoint: int,
    digest: bytes,
    url: str,
    nonce: int,
    raw: bytes,
    trust: Trust,
    timestamps: Any,
    *,
    fetch: bool,
    wait: float = 10.0,
    unreachable: set[str] | None = None,
) -> tuple[TsaOutcome, TimestampBody | None]:
    """Check one raw reply against the request made for it; keep it and build its record.
    With ``fetch`` false (air-gapped), its validation material is what the token itself
    carries, and nothing is fetched: what is missing goes on record as a gap."""
    from custody.timestamps.keeping import collect_and_keep

    check = _check(timestamps, raw, digest, nonce, trust)
    if not acceptable(check, trust) or check.gen_time is None or check.serial_number is None:
        _keep_rejected(root, checkpoint, url, raw)
        refused = _("response refused ({finding}): {reason}").format(
            finding=check.finding, reason=check.reason
        )
        return TsaOutcome(url, False, refused), None
    serial = format(check.serial_number, "x")
    name = _file_name(checkpoint, url, serial)
    ledger.store_token(f"timestamps/{name}", raw)
    # Validation material while it can still be had: the TSA's chain, and the CRLs and
    # OCSP answers its certificates name. Bounded; offline, the gaps go on record.
    files: tuple[Any, ...] = ()
    gaps: tuple[Any, ...] = ()
    try:
        kept = collect_and_keep(
            timestamps.token_of(raw),
            check.gen_time,
            ledger.store_token,
            fetch=fetch,
            timeout=min(wait, 10.0),
            unreachable=unreachable,
        )
        files, gaps = kept.files, kept.gaps
    except (ValueError, InputError):
        pass  # a token whose certificates cannot be read: nothing to keep, verify says why
    gen_time = format_time(check.gen_time)
    body = TimestampBody(
        checkpoint=checkpoint,
        imprint=digest.hex(),
        tsa=url,
        gen_time=gen_time,
        serial=serial,
        token_sha256=hashlib.sha256(raw).hexdigest(),
        token_file=f"timestamps/{name}",
        nonce=format(nonce, "x"),
        policy=check.policy_oid,
        tsa_name=check.tsa_name,
        validation=files,
        validation_missing=gaps,
    )
    note = (
        check.reason
        if check.ok
        else _("valid signature; chain not anchored (no TSA root configured)")
    )
    return TsaOutcome(url, True, note, gen_time), body


def _check(timestamps: Any, raw: bytes, digest: bytes, nonce: int | None, trust: Trust) -> Any:
    return timestamps.check_response(
        raw,
        digest=digest,
        nonce=nonce,
        roots=trust.roots,
        intermediates=trust.intermediates,
        trust="roots" if trust else "embedded",
    )


def acceptable(check: Any, trust: Trust) -> bool:
    """``rfc3161.usable``: every check passed, or only the anchoring when no TSA root was
    given (trust is then for the verifier to establish with --tsa-root)."""
    from custody.timestamps.rfc3161 import usable

    return usable(check, bool(trust))


def _keep_rejected(root: EvidenceRoot, checkpoint: int, url: str, raw: bytes) -> None:
    """Keep a refused response for diagnosis; it is never referenced by the ledger."""
    folder = root.timestamps_dir / "refused"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        stamp_time = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        write_atomic(folder / _file_name(checkpoint, url, stamp_time), raw)
    except (OSError, StorageError):
        pass  # diagnosis only


# --- air-gapped stamping --------------------------------------------------------------------

REQUESTS_FORMAT = "custody-timestamp-requests/1"
RESPONSES_FORMAT = "custody-timestamp-responses/1"
MAX_EXCHANGE_FILE = 64 * 1024 * 1024  # requests are ~60 bytes, replies < 20 KiB each
MAX_REQUEST_DER = 4096


@dataclass
class RequestBatch:
    """What ``write_requests`` produced: the document to carry out, and what it covers."""

    document: dict[str, Any]
    new_checkpoint: int | None
    kept: Path  # the evidence root's own copy, which replies are checked against

    @property
    def count(self) -> int:
        return len(self.document["requests"])

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.count,
            "checkpoints": sorted({r["checkpoint"] for r in self.document["requests"]}),
            "authorities": sorted({r["tsa"] for r in self.document["requests"]}),
            "new_checkpoint": self.new_checkpoint,
            "kept": str(self.kept),
        }


def write_requests(
    root: EvidenceRoot,
    signer: SigningKey,
    *,
    tsa_urls: Sequence[str] | None = None,
    min_success: int | None = None,
    clock: Clock = utc_now,
) -> RequestBatch:
    """RFC 3161 requests for every pending checkpoint, for a machine that never goes online.

    Makes a checkpoint first if records were added since the last one (as ``stamp`` does),
    then one request per pending checkpoint and authority not yet heard from, each with a
    fresh nonce. The document holds nothing secret and no evidence: checkpoint numbers,
    SHA-256 imprints, nonces, authority URLs and the DER requests. A copy is kept under
    ``.custody/timestamps/requests/``: replies are later checked against that copy, never
    against what comes back from the online machine.
    """
    from custody.timestamps import tsa_client

    urls, need = _policy(root, tsa_urls, min_success)
    new_checkpoint = None
    requests: list[dict[str, Any]] = []
    with open_ledger(root) as ledger:
        if ledger.needs_checkpoint():
            with ledger.writer(signer, clock=clock) as writer:
                new_checkpoint = writer.checkpoint().seq
        for checkpoint, done in _pending(ledger, need):
            digest = hashlib.sha256(checkpoint.line).digest()
            for url in urls:
                if url in done:
                    continue
                request = tsa_client.build_request(digest)
                requests.append(
                    {
                        "checkpoint": checkpoint.seq,
                        "tree_size": int(checkpoint.record.body["tree_size"]),
                        "imprint": digest.hex(),
                        "tsa": url,
                        "nonce": format(request.nonce, "x"),
                        "request": b64encode(request.der),
                    }
                )
    created = format_time(clock())
    document = {
        "format": REQUESTS_FORMAT,
        "created": created,
        "min_success": need,
        "requests": requests,
    }
    folder = root.timestamps_dir / "requests"
    name = f"{created.replace(':', '').replace('.', '')}-{secrets_token()}.json"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        kept = folder / name
        write_atomic(kept, _dump(document))
    except OSError as exc:
        raise StorageError(
            _("cannot keep the requests in {folder}: {why}").format(folder=folder, why=exc.strerror)
        ) from None
    return RequestBatch(document, new_checkpoint, kept)


def secrets_token() -> str:
    import secrets

    return secrets.token_hex(4)


def _dump(document: dict[str, Any]) -> bytes:
    import json

    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()


def load_exchange(data: bytes, expected: str, where: str) -> dict[str, Any]:
    """A requests or responses document, checked strictly (it crossed an air gap)."""
    import json

    from custody.errors import InputError

    if len(data) > MAX_EXCHANGE_FILE:
        raise InputError(
            _("{file} is larger than {limit} bytes; not read").format(
                file=where, limit=MAX_EXCHANGE_FILE
            )
        )
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise InputError(_("{file} is not JSON").format(file=where)) from None
    if not isinstance(document, dict) or document.get("format") != expected:
        raise InputError(_("{file} is not a {format} file").format(file=where, format=expected))
    key = "requests" if expected == REQUESTS_FORMAT else "responses"
    entries = document.get(key)
    if not isinstance(entries, list):
        raise InputError(_("{file}: '{key}' is not a list").format(file=where, key=key))
    for number, entry in enumerate(entries):
        _check_entry(entry, where, number, key)
    return document


def _check_entry(entry: Any, where: str, number: int, key: str) -> None:
    from custody.errors import InputError

    def bad(problem: str, **fields: object) -> InputError:
        # ``problem`` is a catalog message with {file}, {key} and {number} fields.
        return InputError(_(problem).format(file=where, key=key, number=number, **fields))

    if not isinstance(entry, dict):
        raise bad(N_("{file}: {key} entry {number} is not an object"))
    checkpoint, tsa, nonce = entry.get("checkpoint"), entry.get("tsa"), entry.get("nonce")
    if not isinstance(checkpoint, int) or isinstance(checkpoint, bool) or checkpoint < 0:
        raise bad(N_("{file}: {key} entry {number}: 'checkpoint' is not a record number"))
    if not isinstance(tsa, str) or not tsa.startswith(("http://", "https://")):
        raise bad(N_("{file}: {key} entry {number}: 'tsa' is not an http(s) URL"))
    if not isinstance(nonce, str) or not re.fullmatch(r"[0-9a-f]{1,32}", nonce):
        raise bad(N_("{file}: {key} entry {number}: 'nonce' is not hexadecimal"))
    if key == "requests" and not (
        isinstance(entry.get("imprint"), str) and re.fullmatch(r"[0-9a-f]{64}", entry["imprint"])
    ):
        raise bad(N_("{file}: {key} entry {number}: 'imprint' is not a SHA-256 in hex"))
    blob = entry.get("request" if key == "requests" else "response")
    if key == "responses" and blob is None:
        if not isinstance(entry.get("error"), str):
            raise bad(N_("{file}: {key} entry {number}: neither a 'response' nor an 'error'"))
        return
    if not isinstance(blob, str):
        if key == "requests":
            raise bad(N_("{file}: {key} entry {number}: no base64 request"))
        raise bad(N_("{file}: {key} entry {number}: no base64 response"))
    try:
        raw = b64decode(blob, "DER")
    except RecordError:
        raise bad(N_("{file}: {key} entry {number}: the DER is not base64")) from None
    limit = MAX_REQUEST_DER if key == "requests" else tsa_client_limit()
    if not raw or len(raw) > limit:
        raise bad(
            N_("{file}: {key} entry {number}: the DER is empty or larger than {limit} bytes"),
            limit=limit,
        )


def tsa_client_limit() -> int:
    from custody.timestamps.tsa_client import MAX_RESPONSE_BYTES

    return MAX_RESPONSE_BYTES


@dataclass(frozen=True)
class Fetched:
    tsa: str
    checkpoint: int
    ok: bool
    reason: str


def fetch_responses(
    document: dict[str, Any], *, timeout: float = 20.0, clock: Clock = utc_now
) -> tuple[dict[str, Any], list[Fetched]]:
    """Send each request of a requests document to its authority; collect the raw replies.

    Needs no key, no evidence and no evidence root: it only forwards DER requests and keeps
    whatever comes back, unjudged (the evidence laptop judges them). An authority that
    cannot be reached is not asked again for the other checkpoints in the run.
    """
    from custody.timestamps import tsa_client

    responses: list[dict[str, Any]] = []
    outcomes: list[Fetched] = []
    dead: dict[str, str] = {}  # the English "error" the responses document keeps
    shown: dict[str, str] = {}  # the same, for the person running this
    for entry in document["requests"]:
        url = entry["tsa"]
        base = {"checkpoint": entry["checkpoint"], "tsa": url, "nonce": entry["nonce"]}
        if url in dead:
            responses.append({**base, "response": None, "error": dead[url]})
            outcomes.append(Fetched(url, entry["checkpoint"], False, shown[url]))
            continue
        request = tsa_client.TimestampRequest(
            digest=bytes.fromhex(entry["imprint"]),
            nonce=int(entry["nonce"], 16),
            der=b64decode(entry["request"], "request"),
        )
        try:
            raw = tsa_client.request_token(url, request, timeout=timeout)
        except TimestampError as exc:
            # The document carried back to the evidence laptop is a file: its "error" is
            # English in every language; the person at this terminal reads their own.
            dead[url] = f"unreachable: {tsa_client.english_message(exc)}"
            shown[url] = _("unreachable: {error}").format(error=exc)
            responses.append({**base, "response": None, "error": dead[url]})
            outcomes.append(Fetched(url, entry["checkpoint"], False, shown[url]))
            continue
        responses.append({**base, "response": b64encode(raw), "error": None})
        received = ngettext("{n} bytes received", "{n} bytes received", len(raw))
        outcomes.append(Fetched(url, entry["checkpoint"], True, received.format(n=len(raw))))
    out = {
        "format": RESPONSES_FORMAT,
        "created": format_time(clock()),
        "requests_created": document.get("created"),
        "responses": responses,
    }
    return out, outcomes


def accept_responses(
    root: EvidenceRoot,
    signer: SigningKey,
    document: dict[str, Any],
    *,
    trust: Trust = Trust(),
    clock: Clock = utc_now,
) -> StampReport:
    """Record the tokens of a responses document, each checked against its kept request.

    A reply counts only if this evidence root made the request (same authority, checkpoint
    and nonce, in ``.custody/timestamps/requests/``), the checkpoint's line still hashes to
    the imprint asked for, and the token passes every check ``stamp`` applies (nonce,
    imprint, the authority's signature and certificate). Each becomes a ``timestamp``
    record exactly as ``stamp`` writes it. Replies for checkpoints that already have a
    token from that authority are reported and skipped.
    """
    from custody.timestamps import rfc3161 as timestamps

    made = _kept_requests(root)
    report = StampReport(min_success=1)
    with open_ledger(root) as ledger:
        stamped = {(b.checkpoint, b.tsa) for _seq, b in _ledger_timestamps(ledger)
                   if _token_kept(ledger, b)}  # fmt: skip
        entries: dict[int, CheckpointStamp] = {}
        bodies: list[tuple[CheckpointStamp, TsaOutcome, TimestampBody]] = []
        for reply in document["responses"]:
            seq, url, nonce = reply["checkpoint"], reply["tsa"], reply["nonce"]
            entry = entries.get(seq)
            if entry is None:
                tree_size = 0
                if seq < ledger.index.size and ledger.index.record_type(seq) == "checkpoint":
                    tree_size = int(ledger.read(seq).record.body["tree_size"])
                tokens = len({t for c, t in stamped if c == seq})
                entry = entries[seq] = CheckpointStamp(seq, tree_size, tokens)
                report.checkpoints.append(entry)
            request = made.get((seq, url, nonce))
            if request is None:
                refused = _(
                    "refused: this evidence root made no such request (checkpoint {checkpoint}, "
                    "nonce {nonce})"
                ).format(checkpoint=seq, nonce=nonce)
                entry.outcomes.append(TsaOutcome(url, False, refused))
                continue
            if (seq, url) in stamped:
                skipped = _("skipped: this checkpoint already has its token from this authority")
                entry.outcomes.append(TsaOutcome(url, False, skipped, skipped=True))
                continue
            if reply.get("response") is None:
                # The online machine's words, as the responses document keeps them (English).
                entry.outcomes.append(TsaOutcome(url, False, str(reply.get("error"))))
                continue
            checkpoint = ledger.read(seq)
            digest = hashlib.sha256(checkpoint.line).digest()
            if digest.hex() != request["imprint"]:
                refused = _(
                    "refused: the checkpoint line no longer hashes to the imprint that was "
                    "requested"
                )
                entry.outcomes.append(TsaOutcome(url, False, refused))
                continue
            raw = b64decode(reply["response"], "response")
            # The evidence laptop stays offline: no CRL or OCSP fetch here either.
            outcome, body = _accept(
                root, ledger, seq, digest, url, int(nonce, 16), raw, trust, timestamps,
                fetch=False,
            )
            if body is None:
                entry.outcomes.append(outcome)
            else:
                bodies.append((entry, outcome, body))
                stamped.add((seq, url))
        _record_tokens(ledger, signer, clock, bodies)
    config = root.config()
    report.min_success = max(1, config.tsa_min_success)
    return report


def _kept_requests(root: EvidenceRoot) -> dict[tuple[int, str, str], dict[str, Any]]:
    """Every request this root wrote, by (checkpoint, authority, nonce)."""
    from custody.errors import InputError

    folder = root.timestamps_dir / "requests"
    made: dict[tuple[int, str, str], dict[str, Any]] = {}
    if not folder.is_dir():
        return made
    for path in sorted(folder.glob("*.json")):
        try:
            document = load_exchange(path.read_bytes(), REQUESTS_FORMAT, str(path))
        except (OSError, InputError):
            continue  # a damaged copy matches nothing; its replies are refused
        for entry in document["requests"]:
            made[(entry["checkpoint"], entry["tsa"], entry["nonce"])] = entry
    return made


# --- checking tokens in verification ----------------------------------------------------------


@dataclass(frozen=True)
class ValidToken:
    record: int
    checkpoint: int
    tree_size: int
    gen_time: datetime
    tsa: str


@dataclass
class TokenReview:
    """What verification concluded about the ledger's timestamps."""

    findings: list[tuple[str, str, str, int | None, str | None, str | None]] = field(
        default_factory=list
    )  # (code, item, message, seq, expected, found)
    valid: list[ValidToken] = field(default_factory=list)
    checked: int = 0
    trust: str = "embedded"
    unanchored: int = 0  # valid signatures whose chain no anchor was given for


def review_tokens(
    read_token: Callable[[str], bytes],
    timestamps_found: Sequence[tuple[int, TimestampBody]],
    checkpoint_lines: dict[int, bytes],
    trust: Trust,
) -> TokenReview:
    """Check each timestamp record's token; never raises for bad content.

    ``read_token`` gives the raw response a record's ``token_file`` names (from the evidence
    root, the shared database, or a bundle); OSError if it has none.
    """
    review = TokenReview(trust="roots" if trust else "embedded")
    if not timestamps_found:
        return review  # without loading the RFC 3161 stack (~45 ms of imports)
    from custody.timestamps import rfc3161 as timestamps

    for position, body in timestamps_found:
        review.checked += 1
        where = f"record {position}"

        def add(
            code: str,
            message: str,
            expected: str | None = None,
            found: str | None = None,
            _where: str = where,
            _position: int = position,
        ) -> None:
            review.findings.append((code, _where, message, _position, expected, found))

        line = checkpoint_lines.get(body.checkpoint)
        if line is None or body.checkpoint >= position:
            add(
                "TIMESTAMP_MISMATCH",
                _("names record {record}, which is not an earlier checkpoint").format(
                    record=body.checkpoint
                ),
            )
            continue
        digest = hashlib.sha256(line).digest()
        if body.imprint != digest.hex():
            add(
                "TIMESTAMP_MISMATCH",
                _("the recorded imprint is not the SHA-256 of the checkpoint line"),
                digest.hex(),
                body.imprint,
            )
            continue
        try:
            raw = read_token(body.token_file)
        except OSError as exc:
            add(
                "TIMESTAMP_INVALID",
                _("token file {file} cannot be read: {why}").format(
                    file=body.token_file, why=exc.strerror
                ),
            )
            continue
        if hashlib.sha256(raw).hexdigest() != body.token_sha256:
            add(
                "TIMESTAMP_INVALID",
                _("token file {file} is not the one recorded").format(file=body.token_file),
                body.token_sha256,
                hashlib.sha256(raw).hexdigest(),
            )
            continue
        nonce = int(body.nonce, 16) if body.nonce else None
        check = _check(timestamps, raw, digest, nonce, trust)
        if not acceptable(check, trust):
            add(check.finding or "TIMESTAMP_INVALID", check.reason)
            continue
        if not check.ok:
            review.unanchored += 1
        assert check.gen_time is not None
        if format_time(check.gen_time) != body.gen_time:
            add(
                "TIMESTAMP_MISMATCH",
                _("the recorded genTime differs from the token's"),
                body.gen_time,
                format_time(check.gen_time),
            )
            continue
        tree_size = int(CheckpointBody.from_json(SignedRecord.parse(line).record.body).tree_size)
        review.valid.append(
            ValidToken(position, body.checkpoint, tree_size, check.gen_time, body.tsa)
        )
    review.findings.extend(order_findings(review.valid))
    return review


def order_findings(
    valid: Sequence[ValidToken],
) -> list[tuple[str, str, str, int | None, str | None, str | None]]:
    """Causal order: a token over a checkpoint proves everything that checkpoint covers
    existed at its genTime - including earlier timestamp records and their tokens.

    Times are compared by their difference, never by adding a tolerance to one of them:
    a token may claim any genTime up to 9999-12-31, where ``time + 60 s`` overflows.
    """
    findings: list[tuple[str, str, str, int | None, str | None, str | None]] = []
    for later in valid:
        for earlier in valid:
            if (
                earlier.record < later.tree_size
                and earlier.gen_time - later.gen_time > ORDER_TOLERANCE
            ):
                findings.append(
                    (
                        "TIMESTAMP_INVALID",
                        f"record {earlier.record}",
                        _(
                            "token time is later than the token over checkpoint {checkpoint}, "
                            "which covers this record: the times are out of order"
                        ).format(checkpoint=later.checkpoint),
                        earlier.record,
                        f"<= {format_time(later.gen_time)}",
                        format_time(earlier.gen_time),
                    )
                )
    return findings


def review_findings(review: TokenReview) -> list[Any]:
    """The review as findings, with the weaker-trust warning when no anchor was supplied."""
    from custody.findings import Code, Finding

    findings = [
        Finding(Code(code), item, message, seq, expected, found)
        for code, item, message, seq, expected, found in review.findings
    ]
    if review.trust != "roots" and review.valid:
        # Anyone can make a root certificate: a token checked only against the ones it
        # carries proves its signature, not who the timestamp authority was.
        anchored = len(review.valid) - review.unanchored
        message = ngettext(
            "{n} token(s) checked without trust anchors from you ({anchored} against a root "
            "they carry themselves, {unanchored} with no root at all): supply the TSA's root "
            "with --tsa-root to establish whose timestamps these are",
            "{n} token(s) checked without trust anchors from you ({anchored} against a root "
            "they carry themselves, {unanchored} with no root at all): supply the TSA's root "
            "with --tsa-root to establish whose timestamps these are",
            len(review.valid),
        ).format(n=len(review.valid), anchored=anchored, unanchored=review.unanchored)
        findings.append(
            Finding(
                Code.TIMESTAMP_UNTRUSTED,
                "timestamps",
                message,
                None,
                _("a chain to a root you trust"),
                _("no root supplied"),
                warning=True,
            )
        )
    return findings


def token_rows(review: TokenReview) -> list[dict[str, Any]]:
    """The valid tokens as verification reports them (``--json`` "timestamps")."""
    return [
        {
            "record": t.record,
            "checkpoint": t.checkpoint,
            "tree_size": t.tree_size,
            "gen_time": format_seconds(t.gen_time),
            "tsa": t.tsa,
            "trust": review.trust,
        }
        for t in review.valid
    ]


def earliest_covering(valid: Sequence[ValidToken], seq: int) -> ValidToken | None:
    """The earliest valid token whose checkpoint covers record ``seq``."""
    covering = [t for t in valid if t.tree_size > seq or t.checkpoint == seq]
    return min(covering, key=lambda t: t.gen_time, default=None)


_EXIF_TIME = re.compile(
    r"^(\d{4})[:-](\d{2})[:-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?"
    r"(Z|[+-]\d{2}(?::?\d{2})?)?$"  # the zone as custody.evidence.metadata accepts it: +HH[[:]MM]
)


def parse_capture_time(text: str) -> tuple[datetime, bool] | None:
    """(time, zone known) from an exiftool or RFC 3339 date; None if unusable.

    A known zone is kept as the datetime's own offset, never converted to UTC here: at the
    ends of the calendar (9999-12-31 23:59:59 at -23:59, 0001-01-01 at +01:00) the UTC
    instant is not a Python datetime. Compare such times by subtracting them (the
    difference is a ``timedelta``, which has room for any two datetimes).
    """
    match = _EXIF_TIME.match(text.strip())
    if not match:
        return None
    year, month, day, hour, minute, second, zone = match.groups()
    try:
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))
    except ValueError:
        return None
    if zone is None:
        return moment.replace(tzinfo=UTC), False
    if zone == "Z":
        return moment.replace(tzinfo=UTC), True
    sign = 1 if zone[0] == "+" else -1
    digits = zone[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    if hours > 23 or minutes > 59:
        return None
    return moment.replace(tzinfo=timezone(sign * timedelta(hours=hours, minutes=minutes))), True


@dataclass(frozen=True)
class ClockRow:
    seq: int
    path: str
    capture_time: str | None
    catalogued: str
    earliest_timestamp: str | None
    flags: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "path": self.path,
            "capture_time": self.capture_time,
            "catalogued": self.catalogued,
            "earliest_timestamp": self.earliest_timestamp,
            "flags": list(self.flags),
        }


def reconcile(
    seq: int, path: str, capture_time: str | None, catalogued: str, valid: Sequence[ValidToken]
) -> ClockRow:
    """Set the three clocks side by side and flag what a court would question."""
    flags: list[str] = []
    earliest = earliest_covering(valid, seq)
    catalogue_moment = parse_time(catalogued)
    if earliest is not None:
        parsed = parse_capture_time(capture_time) if capture_time else None
        if parsed is not None:
            moment, zoned = parsed
            slack = timedelta(0) if zoned else UNKNOWN_ZONE_SLACK
            # Differences, not sums: no time near either end of the calendar overflows.
            if moment - earliest.gen_time > slack:
                flags.append("CAPTURE_AFTER_TIMESTAMP")
        if catalogue_moment - earliest.gen_time > ORDER_TOLERANCE:
            flags.append("CATALOGUED_AFTER_TIMESTAMP")
    if valid and min(abs(catalogue_moment - t.gen_time) for t in valid) > CATALOGUE_DISTANCE:
        flags.append("CATALOGUE_TIME_FAR")
    return ClockRow(
        seq,
        path,
        capture_time,
        catalogued,
        format_time(earliest.gen_time) if earliest else None,
        tuple(flags),
    )
