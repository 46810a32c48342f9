"""``custody verify``: of an evidence root, a bundle folder or a bundle zip, under the
verifier's own trust (``custody.trust.policy``), rendered for people or as JSON."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from custody.cli.common import (
    JsonOpt,
    LedgerOpt,
    RootOpt,
    TsaRootOpt,
    app,
    emit_json,
    evidence_root,
    parse_date,
    progress_bar,
)
from custody.cli.render import exit_code, render_record_check, render_verification
from custody.errors import InputError, UsageError
from custody.i18n import _

if TYPE_CHECKING:
    from custody.findings import VerificationResult
    from custody.trust.policy import TrustPolicy

TrustedKeyOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--trusted-key",
        help="A signer you expect (PEM public key, or a file of fingerprints); repeatable. "
        "Trusted for this run, and any other signer is then an error.",
    ),
]
CheckpointOpt = Annotated[
    Path | None,
    typer.Option("--checkpoint", help="A checkpoint line you kept (custody sign --out)."),
]
SizeOpt = Annotated[
    int | None, typer.Option("--size", help="With --root-hash: a tree size you hold.")
]
RootHashOpt = Annotated[
    str | None, typer.Option("--root-hash", help="With --size: the root hash you hold.")
]
WitnessOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--witness",
        help="A witness whose cosignatures you rely on (PEM public key or fingerprint); "
        "repeatable.",
    ),
]
MinWitnessesOpt = Annotated[
    int | None,
    typer.Option(
        "--min-witnesses",
        help="How many of the --witness keys must have cosigned a checkpoint covering every "
        "record (default: all of them).",
    ),
]
DisclosuresOpt = Annotated[
    Path | None,
    typer.Option(
        "--disclosures",
        help="Bundles: a file from 'custody disclose' revealing withheld values (collector, "
        "source path, volume); each is checked against the commitment in its signed record.",
    ),
]


def load_disclosures(path: Path | None) -> dict[str, object] | None:
    from custody.errors import RecordError
    from custody.ledger.disclosures import parse_lines

    if path is None:
        return None
    try:
        return dict(parse_lines(path.read_bytes()[: 1 << 26], str(path)))
    except OSError as exc:
        raise InputError(
            _("cannot read {path}: {why}").format(path=path, why=exc.strerror)
        ) from None
    except RecordError as exc:
        raise InputError(str(exc)) from None


RequireTimestampsOpt = Annotated[
    bool,
    typer.Option("--require-timestamps", help="Fail if any record lacks a trusted timestamp."),
]


@app.command()
def verify(
    target: Annotated[
        Path | None,
        typer.Argument(help="Evidence root, bundle folder or bundle .zip (default: this root)."),
    ] = None,
    ledger_only: Annotated[
        bool, typer.Option("--ledger-only", help="Check the ledger only (fast; roots only).")
    ] = False,
    files_only: Annotated[
        bool,
        typer.Option(
            "--files-only", help="Check the files only (re-hashes everything; roots only)."
        ),
    ] = False,
    fast: Annotated[
        bool,
        typer.Option(
            "--fast",
            help="Routine fixity check only: files against their BLAKE3 digests, on every "
            "core. Not a full verification (no signatures, chain, timestamps): not for court.",
        ),
    ] = False,
    checkpoint: CheckpointOpt = None,
    tree_size: SizeOpt = None,
    root_hash: RootHashOpt = None,
    tsa_root: TsaRootOpt = None,
    require_timestamps: RequireTimestampsOpt = False,
    trusted_key: TrustedKeyOpt = None,
    witness: WitnessOpt = None,
    min_witnesses: MinWitnessesOpt = None,
    ledger: LedgerOpt = None,
    disclosures: DisclosuresOpt = None,
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            help="Require long-term validity at this date (YYYY-MM-DD or RFC 3339): every "
            "timestamp chain must still stand then.",
        ),
    ] = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Check everything and say who signed it: VERIFIED (exit 0), INTACT, SIGNER NOT
    CONFIRMED (exit 10) or NOT VERIFIED (exit 1)."""
    from custody.root import find_root
    from custody.trust.databases import confirm_ledger
    from custody.verify.roots import verify_root

    if ledger_only and files_only:
        raise UsageError(_("--ledger-only and --files-only exclude each other"))
    when = parse_date(at, "--at") if at is not None else None
    if when is not None and files_only:
        raise UsageError(_("--at judges the ledger's timestamps; it cannot go with --files-only"))
    bundle = target is not None and is_bundle(target)
    if fast:
        from custody.cli.fixity import check_fast_options, run_fast

        check_fast_options(
            bundle and root is None,
            ledger_only=ledger_only,
            checkpoint=checkpoint is not None or tree_size is not None or root_hash is not None,
            tsa_root=bool(tsa_root),
            require_timestamps=require_timestamps,
            trusted_key=bool(trusted_key),
            witness=bool(witness) or min_witnesses is not None,
            at=when is not None,
        )
        chosen_root = root or target
        raise typer.Exit(
            run_fast(
                str(chosen_root) if chosen_root else None, json_output=json_output, ledger=ledger
            )
        )
    if bundle and root is not None:
        raise UsageError(_("--root names an evidence root; a bundle is verified on its own"))
    if bundle and (ledger_only or files_only or ledger is not None):
        raise UsageError(
            _("--ledger-only, --files-only and --ledger apply to evidence roots, not bundles")
        )
    if disclosures is not None and not bundle:
        raise UsageError(_("--disclosures applies to bundles: an evidence root keeps its own"))
    policy = trust_policy(
        checkpoint, tree_size, root_hash, tsa_root, require_timestamps, trusted_key,
        witness, min_witnesses, when,
    )  # fmt: skip
    if bundle:
        from custody.delivery.bundle_check import verify_bundle

        assert target is not None
        result = verify_bundle(target, policy=policy, disclosures=load_disclosures(disclosures))
    else:
        chosen = root or target
        evidence = find_root(explicit=str(chosen)) if chosen else evidence_root(None)
        confirm_ledger(evidence, ledger)
        with progress_bar(_("Re-hashing"), not json_output) as observer:
            result = verify_root(
                evidence,
                policy=policy,
                ledger=not files_only,
                files=not ledger_only,
                observer=observer,
            )
    if not files_only:
        remember(result, str(target.resolve()) if bundle and target is not None else result.root)
    if json_output:
        emit_json(result.to_json())
    else:
        render_verification(result)
    raise typer.Exit(exit_code(result))


# An evidence record names a few tokens and hashes; a data object member of custody's is a
# ledger line or a token file. Larger inputs are refused before they are read whole.
_ERS_MAX = 64 << 20
_MEMBER_MAX = 512 << 20


@app.command("verify-evidence-record")
def verify_evidence_record(
    record: Annotated[Path, typer.Argument(help="The RFC 4998 evidence record (.ers, DER).")],
    data: Annotated[
        list[Path] | None,
        typer.Option(
            "--data",
            help="A file of the data object it covers; repeat for every member of a group "
            "(custody's: the checkpoint line and its token files, as export-evidence-record "
            "lists them).",
        ),
    ] = None,
    tsa_root: TsaRootOpt = None,
    at: Annotated[
        str | None,
        typer.Option("--at", help="Judge at this date (YYYY-MM-DD or RFC 3339; default: now)."),
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Check one RFC 4998 evidence record on its own: does it prove that the data existed
    when its first archive timestamp says, through every renewal? Exit 0 when it does."""
    from custody.timestamps.ers_file import check_record_file
    from custody.timestamps.stamping import load_trust

    if not data:
        raise UsageError(_("give the data object the record covers with --data FILE"))
    if not tsa_root:
        raise UsageError(
            _(
                "give the TSAs' root certificates with --tsa-root PEM: the roots a record "
                "carries prove nothing about whose timestamps they are"
            )
        )
    when = parse_date(at, "--at") if at is not None else None
    trust = load_trust(tsa_root)
    checked = check_record_file(
        _read_bounded(record, _ERS_MAX),
        [_read_bounded(path, _MEMBER_MAX) for path in data],
        trust,
        when,
    )
    if json_output:
        emit_json({"record": str(record), **checked.to_json()})
    else:
        render_record_check(str(record), checked)
    raise typer.Exit(0 if checked.ok else 1)


def _read_bounded(path: Path, limit: int) -> bytes:
    try:
        with path.open("rb") as stream:
            data = stream.read(limit + 1)
    except OSError as exc:
        raise InputError(
            _("cannot read {path}: {why}").format(path=path, why=exc.strerror)
        ) from None
    if len(data) > limit:
        raise InputError(
            _("{path} is larger than {size} MiB; it is not what was asked for").format(
                path=path, size=limit >> 20
            )
        )
    return data


def remember(result: VerificationResult, source: str) -> None:
    """Keep the checkpoint an intact verification vouched for (custody.trust.remembered)."""
    from custody.trust.remembered import RememberedLedgers

    checkpoint = result.checkpoint
    if not result.ok or result.ledger_identity is None or checkpoint is None:
        return
    line = checkpoint.get("line")
    RememberedLedgers().remember(
        result.ledger_identity,
        int(checkpoint["tree_size"]),
        str(checkpoint["root"]),
        source,
        line=line.encode("utf-8") if isinstance(line, str) else None,
    )


def trust_policy(
    checkpoint: Path | None,
    tree_size: int | None,
    root_hash: str | None,
    tsa_root: list[Path] | None,
    require_timestamps: bool,
    trusted_key: list[Path] | None,
    witness: list[str] | None = None,
    min_witnesses: int | None = None,
    at: datetime | None = None,
) -> TrustPolicy:
    """The verifier's TrustPolicy from its options (the same for roots and bundles)."""
    from custody.ledger.checks import TrustedCheckpoint
    from custody.timestamps.stamping import load_trust
    from custody.trust.policy import policy_for
    from custody.verify.roots import trusted_checkpoint_from_line

    held = None
    if checkpoint is not None:
        if tree_size is not None or root_hash is not None:
            raise UsageError(_("--checkpoint and --size/--root-hash exclude each other"))
        try:
            data = checkpoint.read_bytes()[: 1 << 20]
        except OSError as exc:
            raise InputError(
                _("cannot read {path}: {why}").format(path=checkpoint, why=exc.strerror)
            ) from None
        held = trusted_checkpoint_from_line(data, str(checkpoint))
    elif tree_size is not None or root_hash is not None:
        if tree_size is None or root_hash is None:
            raise UsageError(_("--size and --root-hash go together"))
        try:
            raw = bytes.fromhex(root_hash)
        except ValueError:
            raw = b""
        if len(raw) != 32 or tree_size < 1:
            raise UsageError(_("--root-hash must be 64 hex digits and --size at least 1"))
        held = TrustedCheckpoint(tree_size, raw, "the command line")
    return policy_for(
        trusted_keys=trusted_key or [],
        held=held,
        require_timestamps=require_timestamps,
        tsa=load_trust(tsa_root or []),
        witnesses=witness or [],
        min_witnesses=min_witnesses,
        at=at,
    )


def is_bundle(path: Path) -> bool:
    return (path.is_dir() and (path / "bagit.txt").is_file()) or (
        path.is_file() and path.suffix.lower() == ".zip"
    )
