"""The ``custody`` command line: parse arguments, call the library, render the result.

Nothing here decides anything about evidence: each command opens what it needs, calls
one library function and renders the returned object, as rich text for people or as
JSON (``--json``, validated by the schemas in ``schemas/``) for programs. Progress and
summaries go to stderr; reports and JSON go to stdout. ``main`` turns ``CustodyError``
into a one-line message and the exit code documented in docs/exit-codes.md.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from custody import __version__
from custody.cli.fastpath import printable
from custody.errors import CustodyError, ExitCode, InputError, SigningKeyError

app = typer.Typer(
    name="custody",
    help="Evidence preservation and chain of custody: catalogue, sign, timestamp, verify.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
)
keys_app = typer.Typer(help="Signing identities (Ed25519 keys).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)  # one message, one line

RootOpt = Annotated[
    Path | None,
    typer.Option("--root", help="Evidence root (default: CUSTODY_ROOT, else search upwards)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (see schemas/) instead of text.")]
TsaRootOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--tsa-root",
        help="PEM file of TSA certificates to trust: roots, and intermediates to reach them.",
    ),
]


KeyOpt = Annotated[
    str | None, typer.Option("--key", help="Signing key name (default: the only key).")
]


def shown(text: str) -> str:
    """Text from files or users, safe for one rich line: no markup, no control characters."""
    return escape(printable(text))


def _version(value: bool) -> None:
    if value:
        print(f"custody {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """custody keeps evidence provable: what each file was, who held it, and when."""


# --- helpers --------------------------------------------------------------------------------


def _root(root: Path | None) -> Any:
    from custody.root import find_root

    return find_root(explicit=str(root) if root else None)


def _passphrase(prompt: str, *, confirm: bool = False) -> str:
    from_env = os.environ.get("CUSTODY_PASSPHRASE")
    if from_env is not None:
        return from_env
    if not sys.stdin.isatty():
        raise SigningKeyError("no passphrase: set CUSTODY_PASSPHRASE or run in a terminal")
    return str(typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm))


def _signer(name: str | None) -> Any:
    return _unlocker(name)()


def _unlocker(name: str | None) -> Any:
    """Ask for the passphrase now; unlock (the slow, memory-hard part) when called."""
    from custody.keys.keyring import Keyring

    key_file = Keyring().select(name)
    passphrase = _passphrase(f"Passphrase for key {key_file.name!r}")
    return lambda: key_file.unlock(passphrase)


def _emit_json(document: Any) -> None:
    out.out(json.dumps(document, ensure_ascii=False, indent=2), highlight=False)


@contextmanager
def _progress(label: str, enabled: bool) -> Iterator[Any]:
    """A rich progress bar (files and bytes) on stderr, or a silent observer."""
    if not enabled or not err.is_terminal:
        from custody.progress import NullObserver

        yield NullObserver()
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("files"),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as progress:
        yield _RichObserver(progress, label)


class _RichObserver:
    def __init__(self, progress: Any, label: str) -> None:
        self.progress = progress
        self.bytes_task = progress.add_task(label, total=None)
        self.files_done = 0
        self.files_total = 0

    def planned(self, files: int, total_bytes: int) -> None:
        self.files_total += files
        self.progress.update(self.bytes_task, total=total_bytes)

    def advance(self, nbytes: int) -> None:
        self.progress.advance(self.bytes_task, nbytes)

    def finished_file(self, path: str) -> None:
        self.files_done += 1

    def copy_written(self, source: str, copy: str) -> None:
        pass


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


# --- init -----------------------------------------------------------------------------------


@app.command()
def init(
    root: Annotated[Path, typer.Argument(help="Folder to place under custody.")] = Path("."),
    ledger: Annotated[
        str | None,
        typer.Option("--ledger", help="postgresql://... to keep the ledger in PostgreSQL."),
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Make ROOT an evidence root (creates ROOT/.custody/)."""
    from custody.ledger.backends import create_root

    created = create_root(root, ledger=ledger)
    if json_output:
        _emit_json({"root": str(created.path), "ledger": str(created.ledger_path)})
    else:
        err.print(f"Initialised evidence root [bold]{escape(str(created.path))}[/]")


# --- keys -----------------------------------------------------------------------------------


@keys_app.command("generate")
def keys_generate(
    name: Annotated[str, typer.Option("--name", help="A short name for this identity.")],
    role: Annotated[
        str, typer.Option("--role", help="documenter, custodian or lawyer.")
    ] = "documenter",
    json_output: JsonOpt = False,
) -> None:
    """Create an Ed25519 signing key, encrypted with a passphrase."""
    from custody.clock import format_time, utc_now
    from custody.keys.keyring import Keyring, check_name

    keyring = Keyring()
    check_name(name)
    if keyring.path_for(name).exists():
        raise SigningKeyError(f"a key named {name!r} already exists ({keyring.path_for(name)})")
    passphrase = _passphrase(f"New passphrase for key {name!r}", confirm=True)
    key = keyring.generate(name, role, passphrase, format_time(utc_now()))
    if json_output:
        _emit_json(_key_json(key))
    else:
        err.print(f"Created key [bold]{escape(name)}[/] ({role})")
        out.print(f"fingerprint {key.public.fingerprint}")


def _key_json(key: Any) -> dict[str, Any]:
    return {
        "name": key.public.name,
        "role": key.public.role,
        "fingerprint": key.public.fingerprint,
        "created": key.created,
        "path": str(key.path),
    }


@keys_app.command("list")
def keys_list(json_output: JsonOpt = False) -> None:
    """List the signing keys in your keyring."""
    from custody.keys.keyring import Keyring

    keys = Keyring().list()
    if json_output:
        _emit_json({"keys": [_key_json(k) for k in keys]})
        return
    if not keys:
        err.print("No keys yet: run 'custody keys generate --name NAME'.")
        return
    table = Table("name", "role", "fingerprint", "created")
    for k in keys:
        table.add_row(escape(k.name), k.public.role, k.public.fingerprint, k.created)
    out.print(table)


@keys_app.command("export")
def keys_export(
    name: Annotated[str, typer.Argument(help="Key name.")],
    output: Annotated[
        Path | None, typer.Option("--out", help="Write to this file instead of stdout.")
    ] = None,
    private: Annotated[
        bool,
        typer.Option(
            "--private", help="Export the ENCRYPTED private key for safekeeping (needs --out)."
        ),
    ] = False,
    json_output: JsonOpt = False,
) -> None:
    """Export a key's public half as PEM, or (--private) an encrypted backup of the whole key."""
    from custody.errors import UsageError
    from custody.keys.keyring import Keyring
    from custody.system.files import write_atomic

    key = Keyring().get(name)
    if private:
        if output is None:
            raise UsageError("--private writes a file: give --out FILE (it is never printed)")
        write_atomic(output, key.path.read_bytes(), mode=0o600)
        if json_output:
            _emit_json({**_key_json(key), "backup": str(output)})
        else:
            err.print(
                f"encrypted backup of {escape(name)} written to {escape(str(output))} (mode 0600)"
            )
        return
    pem = key.public.pem()
    if output:
        write_atomic(output, pem)
    if json_output:
        _emit_json({**_key_json(key), "public_key_pem": pem.decode()})
    elif not output:
        out.out(pem.decode().rstrip("\n"), highlight=False)


# --- hash -----------------------------------------------------------------------------------


@app.command("hash")
def hash_command(
    files: Annotated[list[Path], typer.Argument(help="Files to hash.")],
    algo: Annotated[
        list[str] | None,
        typer.Option("--algo", "-a", help="sha256 (default), sha512, sha3-256, blake3, sha1, md5."),
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Print streaming digests; with SHA-256 alone the output suits 'sha256sum -c'."""
    from custody.cli.fastpath import run_hash

    sys.stdout.flush()
    code = run_hash([os.fsencode(p) for p in files], algo or [], json_output=json_output)
    if code:
        raise typer.Exit(code)


# --- catalogue and ingest --------------------------------------------------------------------

CollectorOpt = Annotated[str | None, typer.Option("--collector", help="Who collected the files.")]
SourceOpt = Annotated[
    str | None, typer.Option("--source", help="Where they came from (device, person, platform).")
]
LocationOpt = Annotated[str | None, typer.Option("--location", help="Where they were collected.")]
NoteOpt = Annotated[str | None, typer.Option("--note", help="A free-text note.")]
TagOpt = Annotated[list[str] | None, typer.Option("--tag", help="A tag (repeatable).")]


def _descriptive(
    collector: str | None,
    source: str | None,
    location: str | None,
    note: str | None,
    tags: list[str] | None,
) -> Any:
    from custody.acquisition.catalogue import Descriptive

    return Descriptive(collector, source, location, note, tuple(tags or ()))


@app.command()
def catalogue(
    paths: Annotated[
        list[Path], typer.Argument(help="Files and folders inside the evidence root.")
    ],
    collector: CollectorOpt = None,
    source: SourceOpt = None,
    location: LocationOpt = None,
    note: NoteOpt = None,
    tag: TagOpt = None,
    rehash: Annotated[
        bool, typer.Option("--rehash", help="Re-read files even if size and time are unchanged.")
    ] = False,
    timestamp: Annotated[
        bool, typer.Option("--timestamp", help="Finish by getting trusted timestamps (RFC 3161).")
    ] = False,
    key: KeyOpt = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Hash, describe and sign every file under PATHS into the ledger."""
    from custody.acquisition.catalogue import catalogue as run_catalogue

    evidence = _root(root)
    unlock = _unlocker(key)
    unlocked: list[Any] = []

    def signer() -> Any:  # unlocked while exiftool starts; kept for --timestamp
        unlocked.append(unlock())
        return unlocked[-1]

    with _progress("Cataloguing", not json_output) as observer:
        report = run_catalogue(
            evidence,
            [str(p) for p in paths],
            signer,
            descriptive=_descriptive(collector, source, location, note, tag),
            rehash=rehash,
            observer=observer,
        )
    stamped = None
    if timestamp:
        stamped = _stamp(evidence, unlocked[-1] if unlocked else unlock(), [], None, [])
    if json_output:
        document = _catalogue_json(report)
        if stamped is not None:
            document["timestamp"] = stamped.to_json()
        _emit_json(document)
    else:
        _render_catalogue(report)
        if stamped is not None:
            _render_stamp(stamped)
    if report.skipped or report.count("version"):
        # Skipped files and originals that changed since they were recorded both need a
        # person to look: the run finished, but not cleanly.
        raise typer.Exit(ExitCode.FINDINGS)
    if stamped is not None and not stamped.ok:
        raise typer.Exit(ExitCode.TIMESTAMP_PENDING)


def _catalogue_json(report: Any) -> dict[str, Any]:
    return {
        "files_seen": report.files_seen,
        "added": report.count("new"),
        "duplicates": report.count("duplicate"),
        "versions": report.count("version"),
        "unchanged": report.unchanged,
        "bytes_hashed": report.bytes_hashed,
        "checkpoint": report.checkpoint,
        "ledger_size": report.ledger_size,
        "items": [
            {
                "seq": o.seq,
                "path": o.path,
                "kind": o.kind,
                "sha256": o.sha256,
                "size": o.size,
                "related": o.related,
                "metadata_error": o.metadata_error,
            }
            for o in report.outcomes
        ],
        "skipped": [{"path": s.path, "reason": s.reason} for s in report.skipped],
    }


def _render_catalogue(report: Any) -> None:
    for o in report.outcomes:
        if o.kind == "version":
            err.print(
                f"[bold yellow]CHANGED[/] {shown(o.path)}: content differs from record "
                f"{o.related}; recorded as new version {o.seq}"
            )
    for s in report.skipped:
        err.print(f"[red]skipped[/] {shown(s.path)}: {shown(s.reason)}")
    table = Table(title="Catalogue summary", show_header=False)
    table.add_row("new items", str(report.count("new")))
    table.add_row("duplicates of earlier content", str(report.count("duplicate")))
    table.add_row("changed since last recorded", str(report.count("version")))
    table.add_row("unchanged, not re-recorded", str(report.unchanged))
    table.add_row("skipped", str(len(report.skipped)))
    table.add_row("metadata errors (catalogued anyway)", str(len(report.metadata_errors)))
    table.add_row("bytes hashed", _size(report.bytes_hashed))
    table.add_row("ledger records", str(report.ledger_size))
    if report.checkpoint is not None:
        table.add_row("checkpoint", f"record {report.checkpoint}")
    out.print(table)


@app.command()
def ingest(
    sources: Annotated[list[Path], typer.Argument(help="Files or folders outside the root.")],
    into: Annotated[
        str | None, typer.Option("--into", help="Folder inside the root to copy into.")
    ] = None,
    collector: CollectorOpt = None,
    source: SourceOpt = None,
    location: LocationOpt = None,
    note: NoteOpt = None,
    tag: TagOpt = None,
    key: KeyOpt = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Copy files into the evidence root, prove each copy identical, then catalogue it."""
    from custody.acquisition.ingest import ingest as run_ingest

    evidence = _root(root)
    signer = _signer(key)
    with _progress("Ingesting", not json_output) as observer:
        report = run_ingest(
            evidence,
            [str(s) for s in sources],
            signer,
            into=into,
            descriptive=_descriptive(collector, source, location, note, tag),
            observer=observer,
        )
    if json_output:
        _emit_json(
            {
                "copied": report.copied,
                "already_present": report.already_present,
                "bytes_copied": report.bytes_copied,
                "failures": [
                    {"source": f.source, "copy": f.copy, "reason": f.reason}
                    for f in report.failures
                ],
                "skipped": [{"path": s.path, "reason": s.reason} for s in report.skipped],
                "catalogue": _catalogue_json(report.catalogue),
            }
        )
    else:
        for f in report.failures:
            err.print(f"[bold red]COPY FAILED[/] {shown(f.source)} -> {shown(f.copy)}: {f.reason}")
        for s in report.skipped:
            err.print(f"[red]skipped[/] {shown(s.path)}: {shown(s.reason)}")
        err.print(
            f"Copied {report.copied} files ({_size(report.bytes_copied)}), "
            f"{report.already_present} already present"
        )
        _render_catalogue(report.catalogue)
    if report.failures or report.skipped or (report.catalogue and report.catalogue.skipped):
        raise typer.Exit(ExitCode.FINDINGS)


# --- log and show ---------------------------------------------------------------------------


@app.command()
def log(
    record_type: Annotated[
        str | None, typer.Option("--type", help="Only records of this type.")
    ] = None,
    last: Annotated[int | None, typer.Option("--last", help="Only the last N records.")] = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """List the ledger's records."""
    from custody.ledger.backends import open_ledger
    from custody.ledger.describe import summarise

    with open_ledger(_root(root)) as ledger:
        start = max(0, ledger.index.size - last) if last is not None else 0
        rows = [
            summarise(r)
            for r in ledger.records(start)
            if record_type is None or r.record.type == record_type
        ]
    if json_output:
        _emit_json({"records": rows})
        return
    table = Table("#", "type", "time (UTC)", "signer", "summary")
    for row in rows:
        table.add_row(
            str(row["seq"]), row["type"], row["time"], row["signer"][:12], escape(row["summary"])
        )
    out.print(table)


@app.command()
def show(
    item: Annotated[str, typer.Argument(help="Record number, path, or digest prefix.")],
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Show one record in full."""
    from custody.handling.lookup import resolve_record
    from custody.ledger.backends import open_ledger
    from custody.ledger.describe import record_json

    with open_ledger(_root(root)) as ledger:
        signed = ledger.read(resolve_record(ledger, item))
    document = record_json(signed)
    if json_output:
        _emit_json(document)
        return
    _render_record(document)


def _render_record(doc: dict[str, Any]) -> None:
    signed = doc["record"]["signed"]
    body = signed["body"]
    table = Table(title=f"Record {signed['seq']} ({signed['type']})", show_header=False)
    table.add_row("time (UTC)", signed["time"])
    table.add_row("signer", signed["signer"])
    table.add_row("previous line SHA-256", str(signed["prev"]))
    table.add_row("this line SHA-256", doc["line_sha256"])
    for name, value in body.items():
        if name == "metadata":
            continue
        table.add_row(
            name,
            escape(json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value),
        )
    for name, value in doc.get("highlights", {}).items():
        table.add_row(f"[dim]{name}[/]", escape(str(value)))
    out.print(table)
    metadata = body.get("metadata")
    if metadata:
        meta = Table("tag", "value", title=f"exiftool metadata ({len(metadata)} tags)")
        for tag, value in metadata.items():
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            meta.add_row(escape(tag), escape(text[:200]))
        out.print(meta)


# --- sign, verify, proofs ---------------------------------------------------------------------

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
    key: KeyOpt = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Append a signed checkpoint: the ledger's size and Merkle root, attested by your key.

    A second party (a custodian or lawyer receiving the ledger) countersigns this way with
    their own key, for example --statement "received this ledger".
    """
    from custody.ledger.backends import open_ledger
    from custody.system.files import write_atomic

    evidence = _root(root)
    signer = _signer(key)
    with open_ledger(evidence) as ledger, ledger.writer(signer) as writer:
        signed = writer.checkpoint(statement)
    if output:
        write_atomic(output, signed.line + b"\n")
    body = signed.record.body
    if json_output:
        _emit_json(
            {
                "seq": signed.seq,
                "tree_size": body["tree_size"],
                "root": body["root"],
                "signer": signed.record.signer,
                "statement": body.get("statement"),
                "line": signed.line.decode(),
            }
        )
    else:
        out.print(
            f"checkpoint record {signed.seq}: {body['tree_size']} records, root {body['root']}"
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

    evidence = _root(root)
    signer = _signer(key)
    with open_ledger(evidence) as ledger:
        signed = ledger.repair(signer)
    if json_output:
        _emit_json(
            {
                "repaired": signed is not None,
                "record": signed.seq if signed else None,
                **(dict(signed.record.body) if signed else {}),
            }
        )
    elif signed is None:
        out.print("Nothing to repair: the ledger ends with a complete record.")
    else:
        body = signed.record.body
        out.print(
            f"Removed an incomplete final line ({body['removed_bytes']} bytes at byte "
            f"{body['offset']}); a copy is in .custody/{body['saved_as']}; "
            f"recorded as record {signed.seq}."
        )


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
    if target is not None and _is_bundle(target) and root is None:
        from custody.delivery.bundle import verify_bundle

        result = verify_bundle(target, tsa_trust=load_trust(tsa_root or []))
        if json_output:
            _emit_json(result.to_json())
        else:
            _render_verification(result)
        raise typer.Exit(ExitCode.OK if result.ok else ExitCode.FINDINGS)
    chosen = root or target
    evidence = find_root(explicit=str(chosen)) if chosen else _root(None)
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
    with _progress("Re-hashing", not json_output) as observer:
        result = verify_root(
            evidence,
            ledger=not files_only,
            files=not ledger_only,
            trusted=trusted,
            observer=observer,
            tsa_trust=load_trust(tsa_root or []),
            require_timestamps=require_timestamps,
            trusted_keys=_fingerprints(trusted_key) if trusted_key else None,
        )
    if json_output:
        _emit_json(result.to_json())
    else:
        _render_verification(result)
    raise typer.Exit(ExitCode.OK if result.ok else ExitCode.FINDINGS)


def _is_bundle(path: Path) -> bool:
    return (path.is_dir() and (path / "bagit.txt").is_file()) or (
        path.is_file() and path.suffix.lower() == ".zip"
    )


def _fingerprints(files: list[Path]) -> set[str]:
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


def _render_verification(result: Any) -> None:
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
        f"{result.files_checked} files checked, {_size(result.bytes_hashed)} re-hashed"
    )


def _stamp(
    evidence: Any, signer: Any, tsa: list[str], min_success: int | None, tsa_root: list[Path]
) -> Any:
    from custody.timestamps.stamping import load_trust, stamp

    config = evidence.config()
    urls = [*tsa, *config.tsa_urls] if tsa else None
    # Paths in config.toml are read beside it; paths on the command line from here.
    configured = [evidence.state / Path(p).expanduser() for p in config.tsa_roots]
    trust = load_trust([*configured, *tsa_root])
    return stamp(evidence, signer, tsa_urls=urls, min_success=min_success, trust=trust)


@app.command()
def timestamp(
    tsa: Annotated[
        list[str] | None,
        typer.Option("--tsa", help="A timestamp authority URL, tried before the configured ones."),
    ] = None,
    min_success: Annotated[
        int | None, typer.Option("--min", help="Tokens needed per checkpoint (policy).")
    ] = None,
    tsa_root: TsaRootOpt = None,
    key: KeyOpt = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Get RFC 3161 timestamps for every checkpoint not yet stamped.

    Makes a checkpoint first if records were added since the last one. When no authority
    answers, the checkpoints stay pending (exit 7) and a later run stamps them.
    """
    evidence = _root(root)
    signer = _signer(key)
    report = _stamp(evidence, signer, tsa or [], min_success, tsa_root or [])
    if json_output:
        _emit_json(report.to_json())
    else:
        _render_stamp(report)
    if not report.ok:
        raise typer.Exit(ExitCode.TIMESTAMP_PENDING)


def _render_stamp(report: Any) -> None:
    if report.new_checkpoint is not None:
        err.print(f"made checkpoint record {report.new_checkpoint}")
    if not report.checkpoints:
        out.print("Every checkpoint already has its timestamps.")
        return
    for entry in report.checkpoints:
        for o in entry.outcomes:
            mark = "[green]stamped[/]" if o.ok else "[red]failed[/]"
            out.print(
                f"checkpoint {entry.checkpoint}: {mark} by {escape(o.tsa)}: {escape(o.reason)}"
            )
    pending = report.pending
    if pending:
        listing = ", ".join(str(c.checkpoint) for c in pending)
        out.print(
            f"[bold yellow]PENDING[/]: checkpoint(s) {listing} have fewer than the "
            f"{report.min_success} token(s) the policy asks for; run 'custody timestamp' "
            "again when the timestamp authorities can be reached"
        )
    else:
        out.print(f"[bold green]Stamped[/]: {len(report.checkpoints)} checkpoint(s).")


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

    with open_ledger(_root(root)) as ledger:
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

    with open_ledger(_root(root)) as ledger:
        document = consistency_document(ledger, old_size, new_size)
    _write_proof(document, output, json_output)


def _write_proof(document: dict[str, Any], output: Path | None, json_output: bool) -> None:
    from custody.ledger import canonical
    from custody.system.files import write_atomic

    if output:
        write_atomic(output, canonical.encode(document) + b"\n")
    if json_output:
        _emit_json(document)
        return
    if document["format"].startswith("custody-inclusion"):
        out.print(
            f"record {document['leaf_index']} is leaf {document['leaf_index']} of the "
            f"{document['tree_size']}-record tree with root {document['root']}"
        )
    else:
        out.print(
            f"the {document['new_size']}-record tree (root {document['new_root']}) extends the "
            f"{document['old_size']}-record tree (root {document['old_root']})"
        )
    for h in document.get("audit_path", document.get("proof", [])):
        out.print(f"  {h}")
    if output:
        err.print(f"proof written to {escape(str(output))}")


@proof_app.command("verify")
def proof_verify(
    proof_file: Annotated[Path, typer.Argument(help="A proof file (custody proof ... --out).")],
    json_output: JsonOpt = False,
) -> None:
    """Check a proof file offline: hashes, path to the root, and signatures."""
    from custody.ledger.proofs import check_document, load_document

    try:
        data = proof_file.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {proof_file}: {exc.strerror}") from None
    outcome = check_document(load_document(data, str(proof_file)))
    if json_output:
        _emit_json(outcome.to_json())
    else:
        verdict = "[bold green]VALID[/]" if outcome.ok else "[bold red]INVALID[/]"
        out.print(f"{outcome.kind} proof: {verdict}")
        for name, passed, detail in outcome.checks:
            out.print(
                f"  {'[green]pass[/]' if passed else '[red]FAIL[/]'} {name}: {escape(detail)}"
            )
        for fingerprint, name in outcome.signers.items():
            out.print(f"  signer {escape(name)}: {fingerprint}")
    raise typer.Exit(ExitCode.OK if outcome.ok else ExitCode.FINDINGS)


# --- chain of custody: events, vault, history ---------------------------------------------

event_app = typer.Typer(
    help="Record what happens to items after cataloguing.", no_args_is_help=True
)
app.add_typer(event_app, name="event")
vault_app = typer.Typer(help="Second copies of the evidence root.", no_args_is_help=True)
app.add_typer(vault_app, name="vault")

ItemsArg = Annotated[
    list[str] | None, typer.Argument(help="Items: paths, record numbers or digest prefixes.")
]
TagSelectOpt = Annotated[
    list[str] | None, typer.Option("--tag", help="Also every item with this tag (repeatable).")
]
ReasonOpt = Annotated[str | None, typer.Option("--reason", help="Why, in words.")]


def _items(ledger: Any, items: list[str] | None, tags: list[str] | None) -> list[int]:
    from custody.errors import UsageError
    from custody.handling.lookup import resolve_items

    if not items and not tags:
        raise UsageError("name at least one item (path, record number, digest prefix) or --tag")
    return resolve_items(ledger, items or [], tags=tags or [])


def _run_event(
    action: str,
    items: list[str] | None,
    tags: list[str] | None,
    key: str | None,
    root: Path | None,
    json_output: bool,
    **details: Any,
) -> None:
    from custody.handling.events import event as record
    from custody.ledger.backends import open_ledger

    evidence = _root(root)
    with open_ledger(evidence) as ledger:
        seqs = _items(ledger, items, tags)
    signer = _signer(key)
    signed = record(evidence, signer, action, seqs, **details)
    _render_event(signed, json_output)


def _render_event(signed: Any, json_output: bool) -> None:
    from custody.ledger.describe import record_json, summarise

    if json_output:
        _emit_json(record_json(signed))
    else:
        out.print(f"record {signed.seq}: {escape(summarise(signed)['summary'])}")


@event_app.command("transfer")
def event_transfer(
    items: ItemsArg = None,
    to: Annotated[str, typer.Option("--to", help="Who receives custody.")] = "",
    reason: ReasonOpt = None,
    tag: TagSelectOpt = None,
    key: KeyOpt = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Custody of ITEMS passes to another person or organisation."""
    from custody.errors import UsageError

    if not to:
        raise UsageError("say who receives custody with --to NAME")
    _run_event("transfer", items, tag, key, root, json_output, to=to, reason=reason)


@event_app.command("access")
def event_access(
    items: ItemsArg = None,
    reason: ReasonOpt = None,
    tag: TagSelectOpt = None,
    key: KeyOpt = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """ITEMS were viewed, played or analysed."""
    _run_event("access", items, tag, key, root, json_output, reason=reason)


@event_app.command("note")
def event_note(
    items: ItemsArg = None,
    text: Annotated[str | None, typer.Option("--text", help="The annotation.")] = None,
    description: Annotated[str | None, typer.Option("--description")] = None,
    incident: Annotated[
        str | None, typer.Option("--incident", help="The incident documented.")
    ] = None,
    language: Annotated[str | None, typer.Option("--language")] = None,
    sensitivity: Annotated[str | None, typer.Option("--sensitivity")] = None,
    tag: TagSelectOpt = None,
    key: KeyOpt = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Annotate ITEMS: description, incident, language, sensitivity."""
    from custody.errors import UsageError

    fields = {
        k: v
        for k, v in (
            ("description", description),
            ("incident", incident),
            ("language", language),
            ("sensitivity", sensitivity),
        )
        if v
    }
    if not text and not fields:
        raise UsageError(
            "a note needs --text or one of --description/--incident/--language/--sensitivity"
        )
    _run_event("note", items, tag, key, root, json_output, text=text, fields=fields)


@event_app.command("dispose")
def event_dispose(
    items: ItemsArg = None,
    reason: Annotated[str, typer.Option("--reason", help="Returned, destroyed... and why.")] = "",
    tag: TagSelectOpt = None,
    key: KeyOpt = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """ITEMS were returned or destroyed (custodian role)."""
    from custody.errors import UsageError

    if not reason:
        raise UsageError("a disposal needs --reason")
    _run_event("dispose", items, tag, key, root, json_output, reason=reason)


@event_app.command("copy")
def event_copy(
    items: ItemsArg = None,
    dest: Annotated[Path | None, typer.Option("--dest", help="Folder to copy into.")] = None,
    reason: ReasonOpt = None,
    tag: TagSelectOpt = None,
    key: KeyOpt = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Copy ITEMS elsewhere, re-read each copy to prove it, and record the copy."""
    from custody.errors import UsageError
    from custody.handling.events import copy_event
    from custody.ledger.backends import open_ledger

    if dest is None:
        raise UsageError("say where to copy with --dest PATH")
    evidence = _root(root)
    with open_ledger(evidence) as ledger:
        seqs = _items(ledger, items, tag)
    signed = copy_event(evidence, _signer(key), seqs, dest, reason=reason)
    _render_event(signed, json_output)


@event_app.command("derive")
def event_derive(
    original: Annotated[str, typer.Argument(help="The evidentiary original.")],
    output: Annotated[Path, typer.Option("--output", help="The working copy (inside the root).")],
    action: Annotated[str, typer.Option("--action", help="transcode, clip, redaction, still...")],
    reason: ReasonOpt = None,
    key: KeyOpt = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Catalogue a working copy made from ORIGINAL, linked by digest; ORIGINAL is untouched."""
    from custody.handling.events import derive
    from custody.handling.lookup import resolve_record
    from custody.ledger.backends import open_ledger

    evidence = _root(root)
    with open_ledger(evidence) as ledger:
        seq = resolve_record(ledger, original)
    _, signed = derive(evidence, _signer(key), seq, output, action, reason=reason)
    _render_event(signed, json_output)


@vault_app.command("copy")
def vault_copy(
    dest: Annotated[Path, typer.Argument(help="Second storage location (disk, NAS mount).")],
    reason: ReasonOpt = None,
    key: KeyOpt = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Copy every current item and the ledger to DEST, verifying each copy; DEST then verifies."""
    from custody.handling.vault import vault_copy as run

    evidence = _root(root)
    report = run(evidence, _signer(key), dest, reason=reason)
    if json_output:
        _emit_json(
            {
                "destination": report.destination,
                "copied": len(report.copied),
                "events": report.events,
                "ledger_records": report.ledger_records,
            }
        )
    else:
        out.print(
            f"{len(report.copied)} items copied to {escape(report.destination)} and re-read; "
            f"ledger of {report.ledger_records} records written; "
            f"check it with: custody verify --root {escape(report.destination)}"
        )


@app.command()
def history(
    item: Annotated[str, typer.Argument(help="Path, record number or digest prefix.")],
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """The item's whole life: acquisition, duplicates, versions, events, checkpoints, timestamps."""
    from custody.handling.history import history as build
    from custody.handling.lookup import resolve_record
    from custody.ledger.backends import open_ledger

    with open_ledger(_root(root)) as ledger:
        result = build(ledger, resolve_record(ledger, item))
    if json_output:
        _emit_json(result.to_json())
        return
    table = Table(
        "#",
        "time (UTC)",
        "what",
        "by",
        "detail",
        title=f"{escape(result.path)}  sha256 {result.sha256}",
    )
    for e in result.entries:
        table.add_row(str(e.seq), e.time, e.kind, escape(e.signer_name), escape(e.summary))
    out.print(table)


@keys_app.command("rotate")
def keys_rotate(
    old: Annotated[str, typer.Argument(help="The key being replaced.")],
    new: Annotated[str, typer.Option("--new", help="Name of the successor key (created now).")],
    role: Annotated[
        str | None, typer.Option("--role", help="Role of the new key (default: same).")
    ] = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Create a successor key; the old key signs its introduction and retires."""
    from custody.clock import format_time, utc_now
    from custody.handling.events import rotate
    from custody.keys.keyring import Keyring

    evidence = _root(root)
    keyring = Keyring()
    old_key = keyring.get(old).unlock(_passphrase(f"Passphrase for key {old!r}"))
    created = keyring.generate(
        new,
        role or old_key.public.role,
        _passphrase(f"New passphrase for key {new!r}", confirm=True),
        format_time(utc_now()),
    )
    new_key = created.unlock(_passphrase(f"Passphrase for key {new!r}"))
    signed = rotate(evidence, old_key, new_key)
    if json_output:
        _emit_json({**_key_json(created), "record": signed.seq, "replaces": old_key.fingerprint})
    else:
        out.print(
            f"record {signed.seq}: {escape(old)} introduced its successor {escape(new)} "
            f"({new_key.fingerprint}); {escape(old)} may no longer sign"
        )


@keys_app.command("revoke")
def keys_revoke(
    target: Annotated[str, typer.Argument(help="Key name in your keyring, or a fingerprint.")],
    reason: ReasonOpt = None,
    key: KeyOpt = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Revoke a key: records it signs from now on fail verification (KEY_REVOKED)."""
    import re

    from custody.handling.events import revoke
    from custody.keys.keyring import Keyring

    evidence = _root(root)
    fingerprint = (
        target
        if re.fullmatch(r"[0-9a-f]{64}", target)
        else Keyring().get(target).public.fingerprint
    )
    signed = revoke(evidence, _signer(key), fingerprint, reason=reason)
    if json_output:
        _emit_json({"record": signed.seq, "revoked": fingerprint, "reason": reason})
    else:
        out.print(f"record {signed.seq}: key {fingerprint} revoked")


@keys_app.command("introduce")
def keys_introduce(
    public_key: Annotated[Path, typer.Argument(help="Their public key (PEM from 'keys export').")],
    name: Annotated[str, typer.Option("--name", help="Their name.")],
    role: Annotated[str, typer.Option("--role", help="documenter, custodian or lawyer.")],
    key: KeyOpt = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Vouch for another person's key: introduce it into the ledger, signed by yours.

    Check the fingerprint with its holder first (they see it with 'custody keys list').
    Only a custodian may introduce a custodian.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from custody.errors import UsageError
    from custody.keys.keyring import PublicKey, check_name
    from custody.keys.roles import ROLES
    from custody.ledger.backends import open_ledger

    check_name(name)
    if role not in ROLES:
        raise UsageError(f"unknown role {role!r}: choose one of {', '.join(ROLES)}")
    try:
        loaded = serialization.load_pem_public_key(public_key.read_bytes())
    except OSError as exc:
        raise InputError(f"cannot read {public_key}: {exc.strerror}") from None
    except ValueError:
        raise InputError(f"{public_key} is not a PEM public key") from None
    if not isinstance(loaded, Ed25519PublicKey):
        raise InputError(f"{public_key} is not an Ed25519 public key")
    raw = loaded.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    public = PublicKey(raw, name, role)
    signer = _signer(key)
    if role == "custodian" and signer.public.role != "custodian":
        raise SigningKeyError("only a custodian may introduce a custodian's key")
    evidence = _root(root)
    with open_ledger(evidence) as ledger:
        if ledger.index.key_known(public.fingerprint):
            raise UsageError(f"key {public.fingerprint} is already introduced in this ledger")
        with ledger.writer(signer) as writer:
            signed = writer.introduce(public)
    if json_output:
        _emit_json(
            {
                "record": signed.seq,
                "fingerprint": public.fingerprint,
                "name": name,
                "role": role,
                "introduced_by": signer.fingerprint,
            }
        )
    else:
        out.print(
            f"record {signed.seq}: {escape(signer.name)} vouched for {escape(name)} "
            f"({role}), key {public.fingerprint}"
        )


@app.command("export-case")
def export_case(
    items: ItemsArg = None,
    output: Annotated[Path | None, typer.Option("--out", help="The .jsonld file to write.")] = None,
    tag: TagSelectOpt = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """The chain of custody as CASE/UCO JSON-LD (all items, or ITEMS / --tag).

    The export restates the ledger; run 'custody verify' first to know it is sound.
    """
    from custody.delivery.case_uco import case_document, case_json
    from custody.errors import UsageError
    from custody.handling.lookup import resolve_items
    from custody.ledger.backends import open_ledger
    from custody.system.files import write_atomic

    if output is None:
        raise UsageError("say where to write with --out FILE.jsonld")
    with open_ledger(_root(root)) as ledger:
        seqs = resolve_items(ledger, items or [], tags=tag or []) if (items or tag) else None
        document = case_document(ledger, seqs)
    write_atomic(output, case_json(document).encode("utf-8"))
    graph = document.get("@graph", [])
    if json_output:
        _emit_json({"out": str(output), "objects": len(graph)})
    else:
        out.print(f"CASE/UCO JSON-LD with {len(graph)} objects written to {escape(str(output))}")


@keys_app.command("import")
def keys_import(
    key_file: Annotated[Path, typer.Argument(help="A key backup made by 'keys export --private'.")],
    json_output: JsonOpt = False,
) -> None:
    """Restore a private key backup into your keyring (it stays encrypted)."""
    from custody.keys.keyring import Keyring

    restored = Keyring().restore(key_file)
    if json_output:
        _emit_json(_key_json(restored))
    else:
        out.print(f"restored key {escape(restored.name)} ({restored.public.fingerprint})")


# --- ledger stores ----------------------------------------------------------------------

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

    evidence = _root(root)
    with open_ledger(evidence) as ledger:
        records, digest = ledger.dump(output)
    if json_output:
        _emit_json({"out": str(output), "records": records, "sha256": digest})
    else:
        out.print(f"{records} records written to {escape(str(output))} (sha256 {digest})")


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

    evidence = _root(root)
    result = VerificationResult(root=str(ledger_file))

    def lines() -> Any:
        return iter_line_data(ledger_file)

    verify_ledger_lines(lines, result, collect_items=False)
    if not result.ok:
        _render_verification(result)
        raise UsageError(f"{ledger_file} does not verify; nothing was loaded")
    with open_ledger(evidence) as ledger:
        if not isinstance(ledger, PgLedger):
            raise UsageError("load is for a PostgreSQL ledger (custody init --ledger URL)")
        count = ledger.load(r.data for r in iter_raw_lines(ledger_file))
    if json_output:
        _emit_json({"loaded": count, "root": str(evidence.path)})
    else:
        out.print(f"verified and loaded {count} records")


# --- the lawyer's deliverables ------------------------------------------------------------


@app.command("export")
def export_command(
    items: ItemsArg = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="New folder for the bundle.")
    ] = None,
    all_items: Annotated[bool, typer.Option("--all", help="Every current item.")] = False,
    tag: TagSelectOpt = None,
    make_zip: Annotated[
        bool, typer.Option("--zip", help="Also write the bundle as one .zip.")
    ] = False,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Write a self-contained, offline-verifiable evidence bundle (BagIt) of ITEMS."""
    from custody.delivery.bundle import export_bundle
    from custody.errors import UsageError
    from custody.handling.vault import current_items
    from custody.ledger.backends import open_ledger

    if out_dir is None:
        raise UsageError("say where to write the bundle with --out DIR")
    evidence = _root(root)
    with open_ledger(evidence) as ledger:
        seqs = [r.seq for r in current_items(ledger)] if all_items else _items(ledger, items, tag)
    report = export_bundle(evidence, seqs, out_dir, make_zip=make_zip)
    if json_output:
        _emit_json(report.to_json())
        return
    for warning in report.warnings:
        err.print(f"[yellow]warning[/]: {escape(warning)}")
    out.print(
        f"bundle of {len(report.items)} item(s), {_size(report.payload_bytes)}, "
        f"{report.records} ledger records with inclusion proofs against checkpoint "
        f"{report.checkpoint}, {report.timestamps} timestamp token(s): {escape(report.out)}"
    )
    if report.zip:
        out.print(f"zip: {escape(report.zip)}")


@app.command()
def report(
    source: Annotated[
        Path | None, typer.Argument(help="Evidence root, bundle folder or .zip (default: here).")
    ] = None,
    output: Annotated[Path | None, typer.Option("--out", help="report.html or report.pdf")] = None,
    tsa_root: TsaRootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """A chain-of-custody report a court can read: HTML or PDF (A4), by the --out suffix."""
    from custody.delivery.report import build_report, render_html, write_pdf
    from custody.errors import UsageError
    from custody.system.files import write_atomic
    from custody.timestamps.stamping import load_trust

    if output is None or output.suffix.lower() not in (".html", ".htm", ".pdf"):
        raise UsageError("say where to write with --out report.html or --out report.pdf")
    target = source if source is not None else _root(None).path
    built = build_report(target, tsa_trust=load_trust(tsa_root or []))
    html_text = render_html(built)
    if output.suffix.lower() == ".pdf":
        write_pdf(html_text, output)
    else:
        write_atomic(output, html_text.encode("utf-8"))
    if json_output:
        _emit_json({"out": str(output), "verified": built.verified, "verdict": built.verdict})
    else:
        out.print(f"{built.verdict}: report written to {escape(str(output))}")
    raise typer.Exit(ExitCode.OK if built.verified else ExitCode.FINDINGS)


@app.command("import")
def import_command(
    bundle: Annotated[Path, typer.Argument(help="A bundle folder or .zip.")],
    into: Annotated[str | None, typer.Option("--into", help="Folder inside the root.")] = None,
    tsa_root: TsaRootOpt = None,
    key: KeyOpt = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Verify a received bundle and, only if it passes, bring it into this evidence root."""
    from custody.delivery.bundle import import_bundle
    from custody.timestamps.stamping import load_trust

    evidence = _root(root)
    signer = _signer(key)
    report = import_bundle(
        bundle, evidence, signer, into=into, tsa_trust=load_trust(tsa_root or [])
    )
    if json_output:
        _emit_json(
            {
                "imported": report.imported,
                "folder": report.folder,
                "event": report.event,
                "verification": report.verification.to_json(),
            }
        )
    else:
        if not report.verification.ok:
            _render_verification(report.verification)
            err.print("[bold red]refused[/]: the bundle does not verify; nothing was written")
        else:
            out.print(
                f"imported {report.imported} item(s) into {escape(report.folder)}; "
                f"receipt recorded as record {report.event}"
            )
    raise typer.Exit(ExitCode.OK if report.verification.ok else ExitCode.FINDINGS)


# --- entry point ----------------------------------------------------------------------------


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return the exit code; errors become one line on stderr."""
    # pyexiftool warns when it finds its process gone; metadata.py owns that process and
    # reports what matters, and a Ctrl-C can make the warning surface as stray stderr lines.
    warnings.filterwarnings("ignore", category=UserWarning, module="exiftool")
    try:
        # Standalone mode lets Typer report usage errors itself (exit 2); everything
        # custody raises on purpose comes through here as a CustodyError.
        app(args=list(argv) if argv is not None else None, prog_name="custody")
    except SystemExit as exc:
        code = exc.code
        if code == 130:  # Typer turns Ctrl-C (KeyboardInterrupt) into a silent exit 130
            err.print("custody: interrupted")
        return code if isinstance(code, int) else (0 if code is None else ExitCode.FINDINGS)
    except CustodyError as exc:
        err.print(f"custody: error: {shown(str(exc))}", soft_wrap=True)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        err.print("custody: interrupted")
        return 130
    except Exception as exc:  # a bug: still one line, with the detail on request
        if os.environ.get("CUSTODY_DEBUG"):
            raise
        err.print(
            f"custody: internal error: {type(exc).__name__}: {shown(str(exc))} "
            "(set CUSTODY_DEBUG=1 for details, and please report it)"
        )
        return 70
    return ExitCode.OK


def main() -> None:
    sys.exit(run())
