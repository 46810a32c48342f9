"""``custody witness``: cosign a ledger's checkpoint as a second party, and bring witnesses'
cosignatures into a ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from custody.cli.common import (
    JsonOpt,
    KeyOpt,
    RootOpt,
    app,
    emit_json,
    evidence_root,
    out,
    signer_for,
)
from custody.errors import InputError, UsageError
from custody.i18n import _, ngettext

witness_app = typer.Typer(
    help="Witnesses: second parties who cosign checkpoints after checking them.",
    no_args_is_help=True,
)
app.add_typer(witness_app, name="witness")


@witness_app.command("cosign")
def witness_cosign(
    target: Annotated[
        Path,
        typer.Argument(help="An evidence root, a bundle (folder or .zip) or a C2SP note."),
    ],
    output: Annotated[Path, typer.Option("--out", help="Write the cosignature file here.")],
    log_key: Annotated[
        Path | None,
        typer.Option("--log-key", help="For a checkpoint note: the ledger signer's PEM key."),
    ] = None,
    proof: Annotated[
        Path | None,
        typer.Option(
            "--proof",
            help="For a checkpoint note: a consistency proof from the "
            "size you saw before (custody proof consistency).",
        ),
    ] = None,
    key: KeyOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Check the checkpoint against everything you saw of this ledger, then cosign it
    (C2SP tlog-cosignature/v1). A checkpoint that contradicts one you saw is refused: the
    two are the proof of a fork."""
    from custody.cli.verify import is_bundle, remember
    from custody.delivery.witness import cosign_note, cosign_verified
    from custody.ledger import canonical
    from custody.system.files import write_atomic
    from custody.trust.policy import policy_for
    from custody.trust.remembered import RememberedLedgers

    note_input = target.is_file() and not is_bundle(target)
    if not note_input and (log_key is not None or proof is not None):
        raise UsageError(
            _("--log-key and --proof apply to a checkpoint note, not a root or bundle")
        )
    policy = policy_for()
    if note_input:
        if log_key is None:
            raise UsageError(_("a checkpoint note needs the ledger signer's key: --log-key PEM"))
        from custody.ledger.proofs import load_document
        from custody.trust.store import fingerprints_in_file

        pem = fingerprints_in_file(log_key)[0][1]
        if pem is None:
            raise UsageError(_("--log-key takes a PEM public key (custody keys export)"))
        raw = _raw_public_key(pem.encode())
        document = load_document(_read(proof), str(proof)) if proof is not None else None
        signer = signer_for(key)
        done = cosign_note(_read(target), raw, signer, RememberedLedgers(), proof=document)
    else:
        if is_bundle(target):
            from custody.delivery.bundle_check import verify_bundle

            result = verify_bundle(target, policy=policy)
        else:
            from custody.root import find_root
            from custody.verify.roots import verify_root

            result = verify_root(find_root(explicit=str(target)), policy=policy, files=False)
        signer = signer_for(key)
        done = cosign_verified(result, signer)
        remember(result, str(target.resolve()))
    RememberedLedgers().remember(
        done.identity, done.tree_size, done.root, str(target.resolve()), cosigned=True
    )
    write_atomic(output, canonical.encode(done.document) + b"\n")
    if json_output:
        emit_json({**done.document, "out": str(output)})
        return
    out.print(
        escape(
            ngettext(
                "cosigned ledger {identity} at {n} records (root {root}) as {witness}; "
                "written to {path}",
                "cosigned ledger {identity} at {n} records (root {root}) as {witness}; "
                "written to {path}",
                done.tree_size,
            ).format(
                identity=done.identity,
                n=done.tree_size,
                root=done.root,
                witness=done.body.witness_name,
                path=output,
            )
        )
    )
    out.print(escape(_("your witness key (vkey): {vkey}").format(vkey=done.document["vkey"])))


@witness_app.command("add")
def witness_add(
    files: Annotated[list[Path], typer.Argument(help="Cosignature files (witness cosign --out).")],
    key: KeyOpt = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Bring witnesses' cosignatures into this ledger as records (checked first: each must
    cosign a tree this ledger really has)."""
    from custody.delivery.witness import add_cosignatures

    evidence = evidence_root(root)
    written = add_cosignatures(evidence, signer_for(key), list(files))
    if json_output:
        emit_json({"records": written})
    else:
        out.print(
            ngettext(
                "{n} cosignature(s) recorded as record(s) {records}",
                "{n} cosignature(s) recorded as record(s) {records}",
                len(written),
            ).format(n=len(written), records=", ".join(map(str, written)))
        )


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()[: 1 << 20]
    except OSError as exc:
        raise InputError(
            _("cannot read {path}: {why}").format(path=path, why=exc.strerror)
        ) from None


def _raw_public_key(pem: bytes) -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise InputError(_("--log-key is not an Ed25519 public key"))
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
