"""``custody keys``: generate, list, export, rotate, revoke, introduce, import."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from custody.cli.common import (
    AllowWeakOpt,
    JsonOpt,
    KeyOpt,
    Listing,
    ReasonOpt,
    RootOpt,
    app,
    ask_passphrase,
    emit_json,
    err,
    evidence_root,
    new_passphrase,
    new_passphrase_prompt,
    out,
    passphrase_prompt,
    shown,
    signer_for,
)
from custody.cli.printable import columns, pad
from custody.cli.render import grouped
from custody.errors import InputError, SigningKeyError
from custody.i18n import _

keys_app = typer.Typer(help="Signing identities (Ed25519 keys).", no_args_is_help=True)


app.add_typer(keys_app, name="keys")


@keys_app.command("generate")
def keys_generate(
    name: Annotated[
        str,
        typer.Option(
            "--name",
            help="The holder's name as they write it, in any script ('Amina Haddad', "
            "'أمينة'); recorded with the key and shown wherever it signed.",
        ),
    ],
    handle: Annotated[
        str | None,
        typer.Option(
            "--handle",
            help="A short ASCII name to type after --key (default: made from --name, e.g. "
            "amina-haddad; key-<fingerprint> when --name has no Latin letters).",
        ),
    ] = None,
    role: Annotated[
        str, typer.Option("--role", help="documenter, custodian or lawyer.")
    ] = "documenter",
    allow_weak_passphrase: AllowWeakOpt = False,
    json_output: JsonOpt = False,
) -> None:
    """Create an Ed25519 signing key, encrypted with a passphrase."""
    from custody.clock import format_time, utc_now
    from custody.errors import UsageError
    from custody.keys.keyring import Keyring
    from custody.keys.roles import ROLES

    if role not in ROLES:
        raise UsageError(_unknown_role(role, ROLES))
    keyring = Keyring()
    chosen, holder = handle_and_holder(name, handle)
    if chosen is not None and keyring.path_for(chosen).exists():
        raise SigningKeyError(
            _("a key named {name} already exists ({path}); choose another with --handle").format(
                name=repr(chosen), path=keyring.path_for(chosen)
            )
        )
    passphrase = new_passphrase(
        new_passphrase_prompt(chosen or name),
        [w for w in (chosen, holder, name) if w],
        allow_weak_passphrase,
    )
    key = keyring.generate(chosen, role, passphrase, format_time(utc_now()), holder)
    if json_output:
        emit_json(_key_json(key))
        return
    if holder:
        created = _("Created key [bold]{name}[/] ({role}) for {holder}").format(
            name=escape(key.name), role=role, holder=shown(holder)
        )
    else:
        created = _("Created key [bold]{name}[/] ({role})").format(name=escape(key.name), role=role)
    err.print(created)
    fingerprint = grouped(key.public.fingerprint)
    # The labels are padded to one width so the values line up; the second half of the
    # fingerprint is indented to match.
    labels = [_("Key file:"), _("Handle:"), _("Fingerprint:")]
    width = max(columns(label) for label in labels) + 1
    file_label, handle_label, fingerprint_label = (pad(label, width) for label in labels)
    if out.is_terminal:  # two rows of eight groups: fits 80 columns, read aloud in halves
        fingerprint = f"{fingerprint[:39]}\n{' ' * width}{fingerprint[40:]}"
    steps = _(
        "Next:\n"
        "  1. Back up the key (it stays encrypted) somewhere other than this computer:\n"
        "   {command}\n"
        "  2. Give the fingerprint above to the lawyer who will check your evidence,\n"
        "     by another channel than the evidence itself (a call, on paper): they\n"
        "     confirm what you signed with 'custody trust add <fingerprint>'."
    ).format(command=f"custody keys export {key.name} --private --out /media/usb/{key.name}.key")
    for line in (
        f"{file_label}{key.path}",
        " " * width + _("(encrypted with your passphrase; never share this file)"),
        f"{handle_label}" + _("{handle} (what --key takes)").format(handle=key.name),
        f"{fingerprint_label}{fingerprint}",
        *steps.split("\n"),
    ):
        out.out(line, highlight=False)


def _unknown_role(role: str, roles: Any) -> str:
    return _("unknown role {role}: choose one of {roles}").format(
        role=repr(role), roles=", ".join(roles)
    )


def handle_and_holder(name: str, handle: str | None) -> tuple[str | None, str | None]:
    """The key's handle (None: to be made from its fingerprint) and its holder's full name
    (None when the name given is the handle itself)."""
    from custody.keys.keyring import check_holder, check_name, handle_for, is_handle

    holder: str | None = check_holder(name)
    if handle is not None:
        chosen: str | None = check_name(handle)
    elif is_handle(name):
        return name, None  # a short name given as the name: nothing more to record
    else:
        chosen = handle_for(holder or name)
    return chosen, (None if holder == chosen else holder)


def _key_json(key: Any) -> dict[str, Any]:
    document = {
        "name": key.public.name,
        "role": key.public.role,
        "fingerprint": key.public.fingerprint,
        "created": key.created,
        "path": str(key.path),
    }
    if key.public.holder is not None:
        document["holder"] = key.public.holder
    return document


@keys_app.command("list")
def keys_list(json_output: JsonOpt = False) -> None:
    """List the signing keys in your keyring."""
    from custody.keys.keyring import Keyring

    keys = Keyring().list()
    if json_output:
        emit_json({"keys": [_key_json(k) for k in keys]})
        return
    if not keys:
        err.print(_("No keys yet: run 'custody keys generate --name NAME'."))
        return
    table = Listing(
        _("handle"), _("holder"), _("role"), _("fingerprint"), _("created"), _("key file")
    )
    for k in keys:
        table.add_row(
            k.name,
            k.public.holder or "",
            k.public.role,
            grouped(k.public.fingerprint),
            k.created,
            str(k.path),
        )
    table.print()


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
            raise UsageError(_("--private writes a file: give --out FILE (it is never printed)"))
        write_atomic(output, key.path.read_bytes(), mode=0o600)
        if json_output:
            emit_json({**_key_json(key), "backup": str(output)})
        else:
            err.print(
                _("encrypted backup of {name} written to {path} (mode 0600)").format(
                    name=shown(name), path=shown(str(output))
                )
            )
        return
    pem = key.public.pem()
    if output:
        write_atomic(output, pem)
    if json_output:
        emit_json({**_key_json(key), "public_key_pem": pem.decode()})
    elif not output:
        out.out(pem.decode().rstrip("\n"), highlight=False)


@keys_app.command("rotate")
def keys_rotate(
    old: Annotated[str, typer.Argument(help="The key being replaced.")],
    new: Annotated[str, typer.Option("--new", help="Name of the successor key (created now).")],
    role: Annotated[
        str | None, typer.Option("--role", help="Role of the new key (default: same).")
    ] = None,
    allow_weak_passphrase: AllowWeakOpt = False,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Create a successor key; the old key signs its introduction and retires."""
    from custody.clock import format_time, utc_now
    from custody.handling.events import rotate
    from custody.keys.keyring import Keyring, check_name

    evidence = evidence_root(root)
    keyring = Keyring()
    old_key = keyring.get(old).unlock(ask_passphrase(passphrase_prompt(old)))
    check_name(new)
    created = keyring.generate(
        new,
        role or old_key.public.role,
        new_passphrase(
            new_passphrase_prompt(new),
            [w for w in (new, old_key.public.holder) if w],
            allow_weak_passphrase,
        ),
        format_time(utc_now()),
        old_key.public.holder,  # the same person: the successor keeps the holder's name
    )
    new_key = created.unlock(ask_passphrase(passphrase_prompt(new)))
    signed = rotate(evidence, old_key, new_key)
    if json_output:
        emit_json({**_key_json(created), "record": signed.seq, "replaces": old_key.fingerprint})
    else:
        out.print(
            _(
                "record {seq}: {old} introduced its successor {new} ({fingerprint}); "
                "{old} may no longer sign"
            ).format(
                seq=signed.seq, old=shown(old), new=shown(new), fingerprint=new_key.fingerprint
            )
        )


@keys_app.command("revoke")
def keys_revoke(
    target: Annotated[str, typer.Argument(help="Key name in your keyring, or a fingerprint.")],
    reason: ReasonOpt = None,
    compromised_since: Annotated[
        str | None,
        typer.Option(
            "--compromised-since",
            help="RECORD number or RFC 3339 TIME from which the key was in someone else's "
            "hands: what it signed from then on, and the keys it introduced, stop verifying.",
        ),
    ] = None,
    key: KeyOpt = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Revoke a key: records it signs from now on fail verification (KEY_REVOKED)."""
    import re

    from custody.handling.events import revoke
    from custody.keys.keyring import Keyring

    evidence = evidence_root(root)
    fingerprint = (
        target
        if re.fullmatch(r"[0-9a-f]{64}", target)
        else Keyring().get(target).public.fingerprint
    )
    signed = revoke(
        evidence, signer_for(key), fingerprint, reason=reason, compromised_since=compromised_since
    )
    since = signed.record.body.get("compromised_since")
    if json_output:
        emit_json(
            {
                "record": signed.seq,
                "revoked": fingerprint,
                "reason": reason,
                "compromised_since": since,
            }
        )
    else:
        out.print(
            _("record {seq}: key {fingerprint} revoked").format(
                seq=signed.seq, fingerprint=fingerprint
            )
        )
        if since is not None:
            out.print(
                _(
                    "everything it signed from record {since} on, and every key it introduced "
                    "from there, no longer verifies"
                ).format(since=since)
            )


@keys_app.command("introduce")
def keys_introduce(
    public_key: Annotated[Path, typer.Argument(help="Their public key (PEM from 'keys export').")],
    name: Annotated[str, typer.Option("--name", help="Their name, in any script.")],
    role: Annotated[str, typer.Option("--role", help="documenter, custodian or lawyer.")],
    handle: Annotated[
        str | None,
        typer.Option("--handle", help="A short ASCII name for the key (default: from --name)."),
    ] = None,
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
    from custody.keys.keyring import PublicKey, fingerprint_of
    from custody.keys.roles import ROLES
    from custody.ledger.backends import open_ledger

    chosen, holder = handle_and_holder(name, handle)
    if role not in ROLES:
        raise UsageError(_unknown_role(role, ROLES))
    try:
        loaded = serialization.load_pem_public_key(public_key.read_bytes())
    except OSError as exc:
        raise InputError(
            _("cannot read {path}: {why}").format(path=public_key, why=exc.strerror)
        ) from None
    except ValueError:
        raise InputError(_("{path} is not a PEM public key").format(path=public_key)) from None
    if not isinstance(loaded, Ed25519PublicKey):
        raise InputError(_("{path} is not an Ed25519 public key").format(path=public_key))
    raw = loaded.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    public = PublicKey(raw, chosen or f"key-{fingerprint_of(raw)[:8]}", role, holder)
    signer = signer_for(key)
    if role == "custodian" and signer.public.role != "custodian":
        raise SigningKeyError(_("only a custodian may introduce a custodian's key"))
    evidence = evidence_root(root)
    with open_ledger(evidence) as ledger:
        if ledger.index.key_known(public.fingerprint):
            raise UsageError(
                _("key {fingerprint} is already introduced in this ledger").format(
                    fingerprint=public.fingerprint
                )
            )
        with ledger.writer(signer) as writer:
            signed = writer.introduce(public)
    if json_output:
        emit_json(
            {
                "record": signed.seq,
                "fingerprint": public.fingerprint,
                "name": public.name,
                "holder": public.holder,
                "role": role,
                "introduced_by": signer.fingerprint,
            }
        )
    else:
        vouched = _(
            "record {seq}: {signer} vouched for {holder} ({role}), key {name} {fingerprint}"
        )
        out.print(
            vouched.format(
                seq=signed.seq,
                signer=shown(signer.name),
                holder=shown(name),
                role=role,
                name=shown(public.name),
                fingerprint=grouped(public.fingerprint),
            )
        )


@keys_app.command("import")
def keys_import(
    key_file: Annotated[Path, typer.Argument(help="A key backup made by 'keys export --private'.")],
    json_output: JsonOpt = False,
) -> None:
    """Restore a private key backup into your keyring (it stays encrypted)."""
    from custody.keys.keyring import Keyring

    restored = Keyring().restore(key_file)
    if json_output:
        emit_json(_key_json(restored))
    else:
        out.print(
            _("restored key {name} ({fingerprint})").format(
                name=shown(restored.name), fingerprint=restored.public.fingerprint
            )
        )
