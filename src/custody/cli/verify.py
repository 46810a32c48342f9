"""``custody verify``: of an evidence root or a bundle, rendered for people or as JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from custody.cli.common import (
    JsonOpt,
    RootOpt,
    TsaRootOpt,
    app,
    emit_json,
    evidence_root,
    human_size,
    out,
    progress_bar,
    shown,
)
from custody.errors import ExitCode, InputError


@app.command()
def verify(
    target: Annotated[
        Path | None, typer.Argument(help="Evidence root to verify (default: the current one).")
    ] = None,
    ledger_only: Annotated[
        bool, typer.Option("--ledger-only", help="Check the ledger only (fast).")
    ] = False,
    files_only: Annotated[
        bool, typer.Option("--files-only", help="Check the files only (re-hashes everything).")
    ] = False,
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint", help="A checkpoint line obtained earlier (custody sign --out)."
        ),
    ] = None,
    tree_size: Annotated[
        int | None, typer.Option("--size", help="With --root-hash: a tree size you hold.")
    ] = None,
    root_hash: Annotated[
        str | None, typer.Option("--root-hash", help="With --size: the root hash you hold.")
    ] = None,
    tsa_root: TsaRootOpt = None,
    require_timestamps: Annotated[
        bool,
        typer.Option("--require-timestamps", help="Fail if any record lacks a trusted timestamp."),
    ] = False,
    trusted_key: Annotated[
        list[Path] | None,
        typer.Option(
            "--trusted-key",
            help="Only these signers count (PEM public keys, or files of fingerprints).",
        ),
    ] = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Check everything: files, hash chain, signatures, checkpoints; report every finding."""
    from custody.errors import UsageError
    from custody.root import find_root
    from custody.timestamps.stamping import load_trust
    from custody.verify.roots import TrustedCheckpoint, trusted_checkpoint_from_line, verify_root

    if ledger_only and files_only:
        raise UsageError("--ledger-only and --files-only exclude each other")
    if target is not None and is_bundle(target) and root is None:
        from custody.delivery.bundle_check import verify_bundle

        result = verify_bundle(target, tsa_trust=load_trust(tsa_root or []))
        if json_output:
            emit_json(result.to_json())
        else:
            render_verification(result)
        raise typer.Exit(ExitCode.OK if result.ok else ExitCode.FINDINGS)
    chosen = root or target
    evidence = find_root(explicit=str(chosen)) if chosen else evidence_root(None)
    trusted = None
    if checkpoint is not None:
        try:
            data = checkpoint.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read {checkpoint}: {exc.strerror}") from None
        trusted = trusted_checkpoint_from_line(data, str(checkpoint))
    elif tree_size is not None or root_hash is not None:
        if tree_size is None or root_hash is None:
            raise UsageError("--size and --root-hash go together")
        try:
            raw = bytes.fromhex(root_hash)
        except ValueError:
            raw = b""
        if len(raw) != 32:
            raise UsageError("--root-hash must be 64 hex digits")
        trusted = TrustedCheckpoint(tree_size, raw, "the command line")
    with progress_bar("Re-hashing", not json_output) as observer:
        result = verify_root(
            evidence,
            ledger=not files_only,
            files=not ledger_only,
            trusted=trusted,
            observer=observer,
            tsa_trust=load_trust(tsa_root or []),
            require_timestamps=require_timestamps,
            trusted_keys=fingerprints_from(trusted_key) if trusted_key else None,
        )
    if json_output:
        emit_json(result.to_json())
    else:
        render_verification(result)
    raise typer.Exit(ExitCode.OK if result.ok else ExitCode.FINDINGS)


def is_bundle(path: Path) -> bool:
    return (path.is_dir() and (path / "bagit.txt").is_file()) or (
        path.is_file() and path.suffix.lower() == ".zip"
    )


def fingerprints_from(files: list[Path]) -> set[str]:
    """Fingerprints from PEM public keys (custody keys export) or lines of hex."""
    import re

    from custody.keys.keyring import fingerprint_of

    found: set[str] = set()
    for path in files:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror}") from None
        if b"BEGIN PUBLIC KEY" in data:
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

            try:
                key = serialization.load_pem_public_key(data)
            except ValueError:
                raise InputError(f"{path} is not a readable public key") from None
            if not isinstance(key, Ed25519PublicKey):
                raise InputError(f"{path} is not an Ed25519 public key")
            raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            found.add(fingerprint_of(raw))
        else:
            found.update(re.findall(r"\b[0-9a-f]{64}\b", data.decode("utf-8", "replace")))
    if not found:
        raise InputError("no key fingerprint found in the --trusted-key files")
    return found


def render_verification(result: Any) -> None:
    from rich.panel import Panel

    errors, warnings = result.errors, result.warnings
    if result.ok:
        verdict = "[bold green]VERIFIED[/]: every check passed"
        style = "green"
    else:
        verdict = f"[bold red]NOT VERIFIED[/]: {len(errors)} integrity finding(s)"
        style = "red"
    if warnings:
        verdict += f"  [yellow]({len(warnings)} warning(s))[/]"
    out.print(Panel(verdict, title=escape(result.root), border_style=style, expand=False))
    checks = Table("check", "result", "covered", "what was checked")
    for check in result.checks:
        mark = "[green]pass[/]" if check.passed else "[red]FAIL[/]"
        checks.add_row(check.name, mark, str(check.covered), escape(check.detail))
    out.print(checks)
    if result.findings:
        table = Table("finding", "item", "detail", "expected", "found")
        for f in result.findings:
            colour = "yellow" if f.severity == "warning" else "red"
            table.add_row(
                f"[{colour}]{f.code}[/]",
                shown(f.item),
                escape(f.message),
                escape(f.expected or ""),
                escape(f.found or ""),
            )
        out.print(table)
    if result.signers:
        signers = Table(
            "signer",
            "role",
            "fingerprint",
            "introduced",
            "records",
            "status",
            title="Keys that signed this ledger",
        )
        for k in result.signers:
            status = (
                f"revoked at record {k['revoked_at']}"
                if k["revoked_at"] is not None
                else f"retired at record {k['retired_at']}"
                if k["retired_at"] is not None
                else "valid"
            )
            how = "itself" if k["introduced_by"] == k["fingerprint"] else k["introduced_by"][:12]
            signers.add_row(
                escape(k["name"]),
                k["role"],
                k["fingerprint"],
                f"record {k['introduced_at']} by {how}",
                str(k["records"]),
                status,
            )
        out.print(signers)
    out.print(
        f"{result.ledger_size} records, tree root {result.tree_root}; "
        f"{result.files_checked} files checked, {human_size(result.bytes_hashed)} re-hashed"
    )
