"""The ``custody`` command line: parse arguments, call the library, render the result.

Nothing in ``custody.cli`` decides anything about evidence: each command opens what it
needs, calls one library function and renders the returned object, as rich text for
people or as JSON (``--json``, validated by the schemas in ``schemas/``) for programs.
Progress and summaries go to stderr; reports and JSON go to stdout. ``run`` turns
``CustodyError`` into a one-line message and the exit code documented in
docs/exit-codes.md.

One module per command group registers its commands on the shared ``app``
(``custody.cli.common``); this module imports them all and fixes the order ``--help``
lists them in: the order a documenter meets them.
"""

from __future__ import annotations

import os
import signal
import sys
import warnings
from collections.abc import Sequence

import typer.main
from typer.models import CommandInfo

from custody.cli import (  # noqa: F401 - imported to register their commands
    acquire,
    agent,
    capture,
    case,
    delivery,
    events,
    filing,
    inspect,
    keys,
    language,
    ledger,
    setup,
    sources,
    timestamps,
    trust,
    verify,
    witness,
)
from custody.cli.common import app, err, shown
from custody.errors import CustodyError, ExitCode
from custody.i18n import _

COMMAND_ORDER = (
    "init", "hash", "catalogue", "ingest", "capture", "log", "show", "tag", "sign", "repair",
    "verify",
    "renew", "history", "export-case", "export", "export-evidence-record",
    "verify-evidence-record", "disclose", "report", "register", "certify", "import",
)  # fmt: skip
GROUP_ORDER = (
    "timestamp", "keys", "agent", "trust", "witness", "proof", "event", "case", "exhibit",
    "vault", "ledger", "bagit",
)  # fmt: skip


def _command_name(info: CommandInfo) -> str:
    if info.name:
        return info.name
    return str(getattr(info.callback, "__name__", "")).replace("_", "-")


app.registered_commands.sort(key=lambda info: COMMAND_ORDER.index(_command_name(info)))
app.registered_groups.sort(key=lambda info: GROUP_ORDER.index(info.name or ""))


# --- entry point ----------------------------------------------------------------------------


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return the exit code; errors become one line on stderr."""
    # pyexiftool warns when it finds its process gone; metadata.py owns that process and
    # reports what matters, and a Ctrl-C can make the warning surface as stray stderr lines.
    warnings.filterwarnings("ignore", category=UserWarning, module="exiftool")
    # pyHanko (PDF signing) imports cryptography's DSA names, which warn on import.
    warnings.filterwarnings("ignore", message="DSA is deprecated")
    args = list(argv) if argv is not None else sys.argv[1:]
    language.speak_for(args)
    language.hook_framework()
    try:
        # Standalone mode lets Typer report usage errors itself (exit 2); everything
        # custody raises on purpose comes through here as a CustodyError.
        command = typer.main.get_command(app)
        language.translate_help(command)
        command(args=args, prog_name="custody")
    except SystemExit as exc:
        code = exc.code
        if code == 130:  # Typer turns Ctrl-C (KeyboardInterrupt) into a silent exit 130
            err.print(_("custody: interrupted"))
        return code if isinstance(code, int) else (0 if code is None else ExitCode.FINDINGS)
    except CustodyError as exc:
        err.print(_("custody: error: {message}").format(message=shown(str(exc))), soft_wrap=True)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        err.print(_("custody: interrupted"))
        return 130
    except Exception as exc:  # a bug: still one line, with the detail on request
        if os.environ.get("CUSTODY_DEBUG"):
            raise
        err.print(
            _(
                "custody: internal error: {kind}: {message} "
                "(set CUSTODY_DEBUG=1 for details, and please report it)"
            ).format(kind=type(exc).__name__, message=shown(str(exc)))
        )
        return 70
    return ExitCode.OK


def main() -> None:
    try:
        code = run()
    except KeyboardInterrupt:  # after run()'s own handlers, before the line below
        code = 130
    # The command is over and what it wrote is on disk. A Ctrl-C from here on could only
    # interrupt the interpreter's clean-up (multiprocessing's exit handler) and print a
    # traceback about nothing, so it is ignored.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(code)
