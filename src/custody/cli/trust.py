"""``custody trust``: the keys this person trusts, kept in their own custody home."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from custody.cli.common import JsonOpt, app, emit_json, out
from custody.cli.render import grouped
from custody.errors import UsageError
from custody.i18n import _, ngettext

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
                _("{key} is neither a fingerprint (64 hex digits) nor a public key file").format(
                    key=repr(key)
                )
            )
        found = fingerprints_in_file(path)
        if len(found) != 1:
            raise UsageError(
                ngettext(
                    "{path} names {n} keys; add them one at a time",
                    "{path} names {n} keys; add them one at a time",
                    len(found),
                ).format(path=path, n=len(found))
            )
        fingerprint, pem = found[0]
    store = TrustStore()
    changed = store.add(StoredAnchor(fingerprint, name, note, format_time(utc_now()), pem))
    if json_output:
        emit_json({"fingerprint": fingerprint, "name": name, "added": changed})
        return
    fields = {"fingerprint": grouped(fingerprint), "name": name, "path": store.path}
    if changed and name:
        text = _("key {fingerprint} ({name}) now trusted; kept in {path}")
    elif changed:
        text = _("key {fingerprint} now trusted; kept in {path}")
    elif name:
        text = _("key {fingerprint} ({name}) was already trusted; kept in {path}")
    else:
        text = _("key {fingerprint} was already trusted; kept in {path}")
    out.print(escape(text.format(**fields)))


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
        out.print(_("You trust no key yet: 'custody trust add' a signer you have confirmed."))
    for a in own:
        text = _("your own key {name}").format(name=a.name)
        out.print(f"{grouped(a.fingerprint)}  {escape(text)}")
    for anchor in stored:
        fields = {"name": anchor.name, "time": anchor.added, "note": anchor.note}
        # Four whole sentences: a name and a note are each there or not.
        if anchor.name and anchor.note:
            text = _("{name}, added {time}; {note}")
        elif anchor.name:
            text = _("{name}, added {time}")
        elif anchor.note:
            text = _("added {time}; {note}")
        else:
            text = _("added {time}")
        out.print(f"{grouped(anchor.fingerprint)}  {escape(text.format(**fields))}")


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
        out.print(
            _("key {fingerprint} is no longer trusted").format(
                fingerprint=grouped(removed.fingerprint)
            )
        )


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
        out.print(_("No ledger remembered yet: every verification that finds one intact adds it."))
    for ledger in ledgers:
        out.print(_("ledger {identity}").format(identity=ledger.identity))
        for seen in sorted(ledger.checkpoints, key=lambda c: c.tree_size):
            fields = {
                "n": seen.tree_size,
                "root": seen.root,
                "time": seen.first_seen,
                "source": seen.source,
            }
            if seen.cosigned:
                text = ngettext(
                    "{n} records, root {root}: first seen {time} from {source}; you cosigned it",
                    "{n} records, root {root}: first seen {time} from {source}; you cosigned it",
                    seen.tree_size,
                )
            else:
                text = ngettext(
                    "{n} records, root {root}: first seen {time} from {source}",
                    "{n} records, root {root}: first seen {time} from {source}",
                    seen.tree_size,
                )
            out.print("  " + escape(text.format(**fields)))


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
            _(
                "forgetting a ledger means later verifications no longer check its history "
                "against what you saw; add --yes if that is what you want"
            )
        )
    forgotten = RememberedLedgers().forget(ledger)
    if json_output:
        emit_json({"forgotten": forgotten.to_json()})
    else:
        count = len(forgotten.checkpoints)
        out.print(
            ngettext(
                "forgot ledger {identity} ({n} checkpoints)",
                "forgot ledger {identity} ({n} checkpoints)",
                count,
            ).format(identity=forgotten.identity, n=count)
        )
