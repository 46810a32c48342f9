"""``custody sign``, ``repair``, ``proof …`` and ``ledger …``: the ledger itself."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from custody.cli.common import (
    JsonOpt,
    KeyOpt,
    RootOpt,
    app,
    emit_json,
    err,
    evidence_root,
    out,
    signer_for,
)
from custody.cli.render import grouped, render_verification
from custody.cli.verify import TrustedKeyOpt
from custody.errors import ExitCode, InputError
from custody.i18n import N_, _, ngettext

proof_app = typer.Typer(help="Inclusion and consistency proofs.", no_args_is_help=True)


app.add_typer(proof_app, name="proof")


@app.command()
def sign(
    statement: Annotated[
        str | None, typer.Option("--statement", help="What the signer attests, in words.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--out", help="Also write the checkpoint line to this file.")
    ] = None,
    note_format: Annotated[
        str,
        typer.Option(
            "--format",
            help="custody: the checkpoint record line; c2sp: also a C2SP tlog-checkpoint signed "
            "note (kept beside the ledger, carried in bundles, written to --out).",
        ),
    ] = "custody",
    key: KeyOpt = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Append a signed checkpoint: the ledger's size and Merkle root, attested by your key.

    A second party (a custodian or lawyer receiving the ledger) countersigns this way with
    their own key, for example --statement "received this ledger".
    """
    from custody.errors import UsageError
    from custody.ledger.backends import open_ledger
    from custody.system.files import write_atomic

    if note_format not in ("custody", "c2sp"):
        raise UsageError(_("--format is custody or c2sp"))
    evidence = evidence_root(root)
    signer = signer_for(key)
    note = None
    with open_ledger(evidence) as ledger:
        with ledger.writer(signer) as writer:
            signed = writer.checkpoint(statement)
        if note_format == "c2sp":
            from custody.ledger.notes import checkpoint_note

            note = checkpoint_note(ledger, signed, signer)
            ledger.store_token(f"notes/checkpoint-{signed.seq}.txt", note)
    if output:
        write_atomic(output, note if note is not None else signed.line + b"\n")
    body = signed.record.body
    if json_output:
        emit_json(
            {
                "seq": signed.seq,
                "tree_size": body["tree_size"],
                "root": body["root"],
                "signer": signed.record.signer,
                "statement": body.get("statement"),
                "line": signed.line.decode(),
                "note": note.decode() if note is not None else None,
            }
        )
    else:
        out.print(
            ngettext(
                "checkpoint record {seq}: {n} record, root {root}",
                "checkpoint record {seq}: {n} records, root {root}",
                body["tree_size"],
            ).format(seq=signed.seq, n=body["tree_size"], root=body["root"])
        )


@app.command()
def repair(
    key: KeyOpt = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Remove an incomplete final ledger line left by a crash, keeping a copy of it.

    Complete records are never touched; the repair itself is recorded as a signed record.
    """
    from custody.ledger.backends import open_ledger

    evidence = evidence_root(root)
    signer = signer_for(key)
    with open_ledger(evidence) as ledger:
        signed = ledger.repair(signer)
    if json_output:
        emit_json(
            {
                "repaired": signed is not None,
                "record": signed.seq if signed else None,
                **(dict(signed.record.body) if signed else {}),
            }
        )
    elif signed is None:
        out.print(_("Nothing to repair: the ledger ends with a complete record."))
    else:
        body = signed.record.body
        out.print(
            ngettext(
                "Removed an incomplete final line ({n} byte at byte {offset}); a copy is in "
                ".custody/{saved_as}; recorded as record {seq}.",
                "Removed an incomplete final line ({n} bytes at byte {offset}); a copy is in "
                ".custody/{saved_as}; recorded as record {seq}.",
                body["removed_bytes"],
            ).format(
                n=body["removed_bytes"],
                offset=body["offset"],
                saved_as=escape(str(body["saved_as"])),
                seq=signed.seq,
            )
        )


@proof_app.command("inclusion")
def proof_inclusion(
    item: Annotated[str, typer.Argument(help="Record number, path or digest prefix.")],
    checkpoint_seq: Annotated[
        int | None, typer.Option("--checkpoint", help="Prove against this checkpoint record.")
    ] = None,
    output: Annotated[Path | None, typer.Option("--out", help="Write the proof file here.")] = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Prove one record is in the ledger, revealing no other record."""
    from custody.handling.lookup import resolve_record
    from custody.ledger.backends import open_ledger
    from custody.ledger.proofs import inclusion_document

    with open_ledger(evidence_root(root)) as ledger:
        document = inclusion_document(ledger, resolve_record(ledger, item), checkpoint_seq)
    _write_proof(document, output, json_output)


@proof_app.command("consistency")
def proof_consistency(
    old_size: Annotated[int, typer.Argument(help="Size of the earlier ledger.")],
    new_size: Annotated[
        int | None, typer.Argument(help="Size of the later (default: now).")
    ] = None,
    output: Annotated[Path | None, typer.Option("--out", help="Write the proof file here.")] = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Prove the ledger at NEW_SIZE is an append-only extension of it at OLD_SIZE."""
    from custody.ledger.backends import open_ledger
    from custody.ledger.proofs import consistency_document

    with open_ledger(evidence_root(root)) as ledger:
        document = consistency_document(ledger, old_size, new_size)
    _write_proof(document, output, json_output)


def _write_proof(document: dict[str, Any], output: Path | None, json_output: bool) -> None:
    from custody.ledger import canonical
    from custody.system.files import write_atomic

    if output:
        write_atomic(output, canonical.encode(document) + b"\n")
    if json_output:
        emit_json(document)
        return
    if document["format"].startswith("custody-inclusion"):
        out.print(
            _("record {seq} is leaf {seq} of the {size}-record tree with root {root}").format(
                seq=document["leaf_index"], size=document["tree_size"], root=document["root"]
            )
        )
    else:
        out.print(
            _(
                "the {new_size}-record tree (root {new_root}) extends the {old_size}-record "
                "tree (root {old_root})"
            ).format(
                new_size=document["new_size"],
                new_root=document["new_root"],
                old_size=document["old_size"],
                old_root=document["old_root"],
            )
        )
    for h in document.get("audit_path", document.get("proof", [])):
        out.print(f"  {h}")
    if output:
        err.print(_("proof written to {path}").format(path=escape(str(output))))


@proof_app.command("verify")
def proof_verify(
    proof_file: Annotated[Path, typer.Argument(help="A proof file (custody proof ... --out).")],
    trusted_key: TrustedKeyOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Check a proof file offline: hashes, path to the root, signatures, and who signed:
    VERIFIED (exit 0), INTACT, SIGNER NOT CONFIRMED (exit 10) or INVALID (exit 1)."""
    from custody.ledger.proofs import check_document, load_document
    from custody.trust.policy import policy_for
    from custody.trust.signers import judge_proof_signers

    try:
        data = proof_file.read_bytes()
    except OSError as exc:
        raise InputError(
            _("cannot read {path}: {why}").format(path=proof_file, why=exc.strerror)
        ) from None
    policy = policy_for(trusted_keys=trusted_key or [])
    outcome = check_document(load_document(data, str(proof_file)))
    signers = judge_proof_signers(outcome.signers, outcome.introduced_by, policy)
    if outcome.ok and outcome.ledger_identity is not None and outcome.tree is not None:
        from custody.trust.remembered import RememberedLedgers

        RememberedLedgers().remember(
            outcome.ledger_identity, outcome.tree[0], outcome.tree[1], str(proof_file)
        )
    if not outcome.ok:
        verdict, code = "failed", ExitCode.FINDINGS
    elif signers and all(s["anchored"] for s in signers):
        verdict, code = "verified", ExitCode.OK
    else:
        verdict, code = "unconfirmed", ExitCode.UNCONFIRMED
    if json_output:
        emit_json(
            {**outcome.to_json(), "verdict": verdict, "verified": verdict == "verified",
             "intact": outcome.ok, "signers": signers, "trust": policy.describe()}
        )  # fmt: skip
    else:
        out.print(_proof_verdict(outcome.kind, verdict))
        for name, passed, detail in outcome.checks:
            line = (
                _("  [green]pass[/] {check}: {detail}")
                if passed
                else _("  [red]FAIL[/] {check}: {detail}")
            )
            out.print(line.format(check=escape(name), detail=escape(detail)))
        for s in signers:
            how = "; ".join(s["trusted_because"]) or _("NOT CONFIRMED")
            out.print(
                _("  signer {name}: {fingerprint} ({how})").format(
                    name=escape(s["name"]), fingerprint=grouped(s["fingerprint"]), how=escape(how)
                )
            )
        if verdict != "verified":
            out.print(_("  what each verdict proves: docs/threat-model.md"))
    raise typer.Exit(code)


# The verdict line of 'custody proof verify', one whole message per kind of proof and verdict
# (custody.ledger.proofs: a proof is of inclusion or of consistency).
_PROOF_VERDICTS = {
    ("inclusion", "verified"): N_(
        "inclusion proof: [bold green]VERIFIED[/]: the proof holds; its signer is a key you trust"
    ),
    ("inclusion", "unconfirmed"): N_(
        "inclusion proof: [bold yellow]INTACT, SIGNER NOT CONFIRMED[/]: the proof holds, but "
        "its signer is not a key you trust"
    ),
    ("inclusion", "failed"): N_("inclusion proof: [bold red]INVALID[/]"),
    ("consistency", "verified"): N_(
        "consistency proof: [bold green]VERIFIED[/]: the proof holds; its signer is a key you trust"
    ),
    ("consistency", "unconfirmed"): N_(
        "consistency proof: [bold yellow]INTACT, SIGNER NOT CONFIRMED[/]: the proof holds, but "
        "its signer is not a key you trust"
    ),
    ("consistency", "failed"): N_("consistency proof: [bold red]INVALID[/]"),
}


def _proof_verdict(kind: str, verdict: str) -> str:
    return _(_PROOF_VERDICTS[(kind, verdict)])


ledger_app = typer.Typer(help="Move the ledger between stores.", no_args_is_help=True)


app.add_typer(ledger_app, name="ledger")


@ledger_app.command("dump")
def ledger_dump(
    output: Annotated[Path, typer.Option("--out", help="The canonical line file to write.")],
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Write the ledger as the canonical line file independent verifiers read."""
    from custody.ledger.backends import open_ledger

    evidence = evidence_root(root)
    with open_ledger(evidence) as ledger:
        records, digest = ledger.dump(output)
    if json_output:
        emit_json({"out": str(output), "records": records, "sha256": digest})
    else:
        out.print(
            ngettext(
                "{n} record written to {path} (sha256 {digest})",
                "{n} records written to {path} (sha256 {digest})",
                records,
            ).format(n=records, path=escape(str(output)), digest=digest)
        )


@ledger_app.command("load")
def ledger_load(
    ledger_file: Annotated[Path, typer.Argument(help="A canonical line file (ledger dump).")],
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Load a line file into this root's empty PostgreSQL ledger, after verifying it."""
    from custody.errors import UsageError
    from custody.findings import VerificationResult
    from custody.ledger.backends import open_ledger
    from custody.ledger.checks import verify_ledger_lines
    from custody.ledger.filestore import iter_line_data, iter_raw_lines
    from custody.ledger.pgstore import PgLedger

    evidence = evidence_root(root)
    result = VerificationResult(root=str(ledger_file))

    def lines() -> Any:
        return iter_line_data(ledger_file)

    verify_ledger_lines(lines, result, collect_items=False)
    if not result.ok:
        render_verification(result)
        raise UsageError(_("{path} does not verify; nothing was loaded").format(path=ledger_file))
    with open_ledger(evidence) as ledger:
        if not isinstance(ledger, PgLedger):
            raise UsageError(_("load is for a PostgreSQL ledger (custody init --ledger URL)"))
        count = ledger.load(r.data for r in iter_raw_lines(ledger_file))
    if json_output:
        emit_json({"loaded": count, "root": str(evidence.path)})
    else:
        loaded = ngettext(
            "verified and loaded {n} record", "verified and loaded {n} records", count
        )
        out.print(loaded.format(n=count))
