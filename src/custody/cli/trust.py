"""``custody trust``: the keys this person trusts, kept in their own custody home."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from custody.cli.common import JsonOpt, app, emit_json, out
from custody.cli.render import grouped
from custody.errors import UsageError

trust_app = typer.Typer(
    help="Trust anchors: the signers you have confirmed (kept in your custody home).",
    no_args_is_help=True,
)
app.add_typer(trust_app, name="trust")


@trust_app.command("add")
def trust_add(
    key: Annotated[
        str,
        typer.Argument(
            help="A public key file (PEM, from 'custody keys export') or a fingerprint "
            "(64 hex digits, spaces allowed)."
        ),
    ],
    name: Annotated[str | None, typer.Option("--name", help="Who holds it.")] = None,
    note: Annotated[
        str | None, typer.Option("--note", help="How you confirmed it (a call, a meeting).")
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Trust a signer, after comparing its fingerprint with one its holder gave you by
    another channel. Verifications then say VERIFIED for what it signed."""
    from custody.clock import format_time, utc_now
    from custody.trust.store import (
        StoredAnchor,
        TrustStore,
        fingerprints_in_file,
        normalise_fingerprint,
    )

    fingerprint = normalise_fingerprint(key)
    pem: str | None = None
    if fingerprint is None:
        path = Path(key)
        if not path.exists():
            raise UsageError(
                f"{key!r} is neither a fingerprint (64 hex digits) nor a public key file"
            )
        found = fingerprints_in_file(path)
        if len(found) != 1:
            raise UsageError(f"{path} names {len(found)} keys; add them one at a time")
        fingerprint, pem = found[0]
    store = TrustStore()
    changed = store.add(StoredAnchor(fingerprint, name, note, format_time(utc_now()), pem))
    if json_output:
        emit_json({"fingerprint": fingerprint, "name": name, "added": changed})
        return
    what = "now trusted" if changed else "was already trusted"
    label = f" ({escape(name)})" if name else ""
    out.print(f"key {grouped(fingerprint)}{label} {what}; kept in {escape(str(store.path))}")


@trust_app.command("list")
def trust_list(json_output: JsonOpt = False) -> None:
    """Every key you trust: your own keys, and the anchors you added."""
    from custody.trust.policy import own_anchors
    from custody.trust.store import TrustStore

    own = own_anchors()
    stored = TrustStore().anchors()
    if json_output:
        emit_json(
            {
                "own": [{"fingerprint": a.fingerprint, "name": a.name} for a in own],
                "anchors": [a.to_json() for a in stored],
            }
        )
        return
    if not own and not stored:
        out.print("You trust no key yet: 'custody trust add' a signer you have confirmed.")
    for a in own:
        out.print(f"{grouped(a.fingerprint)}  your own key {escape(str(a.name))}")
    for s in stored:
        label = f"{escape(s.name)}, " if s.name else ""
        note = f"; {escape(s.note)}" if s.note else ""
        out.print(f"{grouped(s.fingerprint)}  {label}added {s.added}{note}")


@trust_app.command("remove")
def trust_remove(
    key: Annotated[str, typer.Argument(help="The fingerprint (or the name you gave it).")],
    json_output: JsonOpt = False,
) -> None:
    """Stop trusting a key you added (your own keys are trusted while they are yours)."""
    from custody.trust.store import TrustStore

    removed = TrustStore().remove(key)
    if json_output:
        emit_json({"fingerprint": removed.fingerprint, "name": removed.name, "removed": True})
    else:
        out.print(f"key {grouped(removed.fingerprint)} is no longer trusted")


@trust_app.command("ledgers")
def trust_ledgers(json_output: JsonOpt = False) -> None:
    """Every ledger you have verified, with the checkpoints you saw: later verifications
    must extend each of them (a shortened or rewritten history is NOT_APPEND_ONLY)."""
    from custody.trust.remembered import RememberedLedgers

    ledgers = RememberedLedgers().all()
    if json_output:
        emit_json({"ledgers": [ledger.to_json() for ledger in ledgers]})
        return
    if not ledgers:
        out.print("No ledger remembered yet: every verification that finds one intact adds it.")
    for ledger in ledgers:
        out.print(f"ledger {ledger.identity}")
        for seen in sorted(ledger.checkpoints, key=lambda c: c.tree_size):
            cosigned = "; you cosigned it" if seen.cosigned else ""
            out.print(
                f"  {seen.tree_size} records, root {seen.root}: first seen {seen.first_seen} "
                f"from {escape(seen.source)}{cosigned}"
            )


@trust_app.command("forget")
def trust_forget(
    ledger: Annotated[str, typer.Argument(help="The ledger's full identity (64 hex digits).")],
    yes: Annotated[
        bool, typer.Option("--yes", help="Confirm: its checkpoints will no longer be checked.")
    ] = False,
    json_output: JsonOpt = False,
) -> None:
    """Forget a ledger's remembered checkpoints (never done silently: needs --yes)."""
    from custody.trust.remembered import RememberedLedgers

    if not yes:
        raise UsageError(
            "forgetting a ledger means later verifications no longer check its history "
            "against what you saw; add --yes if that is what you want"
        )
    forgotten = RememberedLedgers().forget(ledger)
    if json_output:
        emit_json({"forgotten": forgotten.to_json()})
    else:
        out.print(f"forgot ledger {forgotten.identity} ({len(forgotten.checkpoints)} checkpoints)")
