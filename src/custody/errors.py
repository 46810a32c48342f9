"""The one exception hierarchy of custody, and the exit code each error maps to.

Every error raised on purpose is a ``CustodyError`` whose message is written for the
person at the terminal: one line, naming the file or record concerned and, where there
is one, the next step. Only the CLI turns these into exit codes (``docs/exit-codes.md``).
"""

from __future__ import annotations


class ExitCode:
    """Process exit codes; documented in docs/exit-codes.md. Keep the two in step."""

    OK = 0
    FINDINGS = 1  # verification found integrity problems / a run skipped files
    USAGE = 2  # bad command line (Typer/Click's own code)
    UNUSABLE_INPUT = 3  # input could not be verified or read at all
    NOT_A_ROOT = 4  # no evidence root / already initialised / path outside root
    KEY_ERROR = 5  # no key, ambiguous key, wrong passphrase
    MISSING_TOOL = 6  # a required external program (exiftool) is absent
    TIMESTAMP_PENDING = 7  # no timestamp authority answered
    LEDGER_BUSY = 8  # could not take the ledger lock in time
    IO_ERROR = 9  # disk full, permission denied, read-only ledger
    UNCONFIRMED = 10  # intact, but a signer is not one the verifier trusts (yet)
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells report it)


class CustodyError(Exception):
    """Base of every error custody raises deliberately. ``str(err)`` is the user message."""

    exit_code: int = ExitCode.UNUSABLE_INPUT


class InputError(CustodyError):
    """A file given to be checked cannot be read at all."""

    exit_code = ExitCode.UNUSABLE_INPUT


class UsageError(CustodyError):
    """The command was given something it cannot act on."""

    exit_code = ExitCode.USAGE


class RootError(CustodyError):
    """No evidence root, a second ``init``, or a path outside the root."""

    exit_code = ExitCode.NOT_A_ROOT


class SigningKeyError(CustodyError):
    """Key missing, ambiguous, unreadable or locked with another passphrase."""

    exit_code = ExitCode.KEY_ERROR


class PassphraseError(SigningKeyError):
    """The passphrase does not open the key."""


class ToolMissingError(CustodyError):
    """A required external program is not installed."""

    exit_code = ExitCode.MISSING_TOOL


class LedgerError(CustodyError):
    """The ledger cannot be read or appended to as it stands."""

    exit_code = ExitCode.UNUSABLE_INPUT


class LedgerBusyError(LedgerError):
    """Another process held the ledger lock for too long."""

    exit_code = ExitCode.LEDGER_BUSY


class RecordError(LedgerError):
    """One ledger record is malformed: not canonical JSON, wrong shape, bad values."""


class StorageError(CustodyError):
    """The operating system refused a read or write (disk full, permissions, read-only)."""

    exit_code = ExitCode.IO_ERROR


class UnsafePathError(StorageError):
    """A write was refused: it would go through a symbolic link or leave its folder."""


class TimestampError(CustodyError):
    """A timestamp authority could not be reached or returned an unusable answer."""

    exit_code = ExitCode.TIMESTAMP_PENDING


class ProofError(CustodyError):
    """A proof file is malformed or does not verify."""

    exit_code = ExitCode.FINDINGS
