"""``custody agent``: start, stop and ask the signing agent (``custody.keys.agent``)."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from custody.cli.common import (
    JsonOpt,
    app,
    ask_passphrase,
    emit_json,
    err,
    out,
    passphrase_prompt,
    shown,
)
from custody.cli.render import grouped
from custody.i18n import _, ngettext

agent_app = typer.Typer(
    help="Hold unlocked keys in memory for a while, so a passphrase is typed once.",
    no_args_is_help=True,
)
app.add_typer(agent_app, name="agent")


@agent_app.command("start")
def agent_start(
    timeout: Annotated[
        str,
        typer.Option(
            "--timeout", help="How long the agent holds the keys: 8h (default), 30m, 1d..."
        ),
    ] = "8h",
    key: Annotated[
        list[str] | None,
        typer.Option("--key", help="Hold only this key (repeatable; default: every key)."),
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Unlock your keys once and keep them in memory; signing commands then ask no
    passphrase until 'custody agent stop' or the end of --timeout.

    The keys stay in the agent process's memory only (never on disk unencrypted), reachable
    through a socket only you can open (mode 0600, checked with SO_PEERCRED)."""
    from custody.errors import SigningKeyError
    from custody.keys.agent import parse_duration, start_agent
    from custody.keys.keyring import Keyring

    seconds = parse_duration(timeout)
    keyring = Keyring()
    files = [keyring.get(name) for name in key] if key else keyring.list()
    if not files:
        raise SigningKeyError(_("no signing key yet: run 'custody keys generate --name NAME'"))
    unlocked = [f.unlock(ask_passphrase(passphrase_prompt(f.name))) for f in files]
    status = start_agent(unlocked, seconds)
    if json_output:
        emit_json(_status_json(status, running=True))
        return
    _render_status(status)
    err.print(
        _("Signing commands now use these keys without asking; 'custody agent stop' ends it.")
    )


@agent_app.command("stop")
def agent_stop(json_output: JsonOpt = False) -> None:
    """Stop the agent: the keys it held are gone from memory."""
    from custody.keys.agent import running_agent, socket_path

    client = running_agent()
    if client is None:
        if json_output:
            emit_json({"running": False, "stopped": False})
        else:
            out.print(_("No agent is running."))
        return
    client.stop()
    client.close()
    path = socket_path()
    for _attempt in range(50):  # it ends within a second; wait, so a new start cannot race it
        if not path.exists():
            break
        time.sleep(0.1)
    if json_output:
        emit_json({"running": False, "stopped": True})
    else:
        out.print(_("Agent stopped; the keys it held are gone from memory."))


@agent_app.command("status")
def agent_status(json_output: JsonOpt = False) -> None:
    """Whether an agent is running, which keys it holds and until when."""
    from custody.keys.agent import running_agent

    client = running_agent()
    if client is None:
        if json_output:
            emit_json({"running": False})
        else:
            out.print(_("No agent is running: signing commands ask for the passphrase."))
        return
    status = client.status()
    client.close()
    if json_output:
        emit_json(_status_json(status, running=True))
    else:
        _render_status(status)


def _status_json(status: dict[str, Any], *, running: bool) -> dict[str, Any]:
    return {
        "running": running,
        "pid": status.get("pid"),
        "expires_at": status.get("expires_at"),
        "seconds_left": status.get("seconds_left"),
        "keys": [
            {k: entry.get(k) for k in ("name", "role", "holder", "fingerprint")}
            for entry in status.get("keys", [])
        ],
    }


def _render_status(status: dict[str, Any]) -> None:
    minutes = int(status.get("seconds_left", 0)) // 60
    out.print(
        ngettext(
            "Agent running (process {pid}) until {expires} ({n} minute left), holding:",
            "Agent running (process {pid}) until {expires} ({n} minutes left), holding:",
            minutes,
        ).format(pid=status.get("pid"), expires=shown(str(status.get("expires_at"))), n=minutes)
    )
    for entry in status.get("keys", []):
        name = shown(str(entry["name"]))
        role = shown(str(entry.get("role")))
        fingerprint = grouped(str(entry["fingerprint"]))
        holder = f" ({shown(str(entry['holder']))})" if entry.get("holder") else ""
        out.print(f"  {name}{holder}, {role}: {fingerprint}")
