"""Commands answered before the CLI framework loads: ``--version``, ``hash``,
``bagit validate`` and ``verify --fast``.

Start-up counts when hashing (``custody hash`` of a 2 GiB file must keep pace with
``openssl dgst``), and Typer with rich and pydantic costs a tenth of a second to import.
So ``custody.__main__`` hands the plain forms of these commands here - ``hash`` with
``--algo``/``-a`` and ``--json`` - and everything else, ``--help`` included, to
``custody.cli.app``, whose ``hash`` command calls the same ``run_hash``: one implementation,
two doors. ``bagit validate BAG`` (without ``--json``) is answered here too: conformance
harnesses start it once per bag, and ``run_bagit_validate`` serves both doors.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import Any, BinaryIO, TextIO

from custody.cli.printable import printable
from custody.i18n import _, ngettext

__all__ = ["printable", "run_hash", "sha256sum_line", "try_quick"]


def sha256sum_line(digest: str, path: bytes) -> bytes:
    """A line exactly as GNU ``sha256sum`` prints it (so ``sha256sum -c`` accepts it)."""
    # coreutils escapes names with backslash, newline or CR and marks the line with '\'.
    if b"\\" in path or b"\n" in path or b"\r" in path:
        escaped = path.replace(b"\\", b"\\\\").replace(b"\n", b"\\n").replace(b"\r", b"\\r")
        return b"\\" + digest.encode() + b"  " + escaped
    return digest.encode() + b"  " + path


def run_hash(
    files: Sequence[bytes],
    algorithms: Sequence[str],
    *,
    json_output: bool,
    out: BinaryIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Digest each file, print sha256sum-style lines (or JSON); returns the exit code."""
    from custody.errors import ExitCode
    from custody.evidence.hashing import EvidenceReadError, check_algorithms, hash_file

    out = out or sys.stdout.buffer
    err = err or sys.stderr
    chosen = check_algorithms(algorithms or ["sha256"])
    results: list[dict[str, Any]] = []
    failures: list[dict[str, str]] = []
    for name in files:
        display = name.decode("utf-8", "replace")
        try:
            digest = hash_file(name, chosen)
        except EvidenceReadError as exc:
            failures.append({"path": display, "error": exc.reason})
            err.write(f"custody: {printable(display)}: {printable(exc.reason)}\n")
            err.flush()
            continue
        results.append({"path": display, "size": digest.size, "digests": digest.digests})
        if json_output:
            continue
        if chosen == ("sha256",):
            out.write(sha256sum_line(digest.digests["sha256"], name) + b"\n")
        else:
            for algorithm in chosen:
                value = digest.digests[algorithm].encode()
                out.write(b"%s (%s) = %s\n" % (algorithm.upper().encode(), name, value))
        out.flush()
    if json_output:
        document = {"files": results, "errors": failures}
        out.write(json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8") + b"\n")
        out.flush()
    return ExitCode.FINDINGS if failures else ExitCode.OK


def run_bagit_validate(
    bag: str, *, json_output: bool = False, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """custody's RFC 8493 verdict on ``bag``: warnings then errors on stderr, one a line;
    0 valid, 1 invalid (or not a bag folder at all). With ``json_output``, the whole
    result on stdout as well (schemas/cli-bagit-validate.schema.json)."""
    from custody.acquisition.sources.bagit import validate_bag
    from custody.errors import ExitCode, InputError

    out = out or sys.stdout
    err = err or sys.stderr
    try:
        result = validate_bag(bag)
    except InputError as exc:
        err.write(f"error: {printable(str(exc))}\n")
        return ExitCode.FINDINGS
    if json_output:
        document = {
            "path": result.path,
            "valid": result.valid,
            "version": result.version,
            "encoding": result.encoding,
            "payload_files": len(result.payload),
            "payload_octets": result.payload_octets,
            "payload_algorithms": list(result.payload_algorithms),
            "tag_algorithms": list(result.tag_algorithms),
            "info": [{"label": f.label, "value": f.value} for f in result.info],
            "findings": [
                {"kind": str(f.kind), "severity": f.severity, "path": f.path,
                 "message": f.message, "rule": f.rule}
                for f in result.findings
            ],
        }  # fmt: skip
        out.write(json.dumps(document, ensure_ascii=False, indent=2) + "\n")
    # A line's frame is a format, the same in every language: "error: " or "warning: ", the
    # finding's kind, its path and its rule (harnesses and scripts key on them, as on
    # bagit-python's level names); only the message is said in the run's language.
    for finding in result.warnings:
        err.write(f"warning: {printable(str(finding))}\n")
    for finding in result.errors:
        err.write(f"error: {printable(str(finding))}\n")
    if result.valid and not json_output:
        count = len(result.payload)
        out.write(
            ngettext(
                "valid BagIt {version} bag: {n} payload file",
                "valid BagIt {version} bag: {n} payload files",
                count,
            ).format(version=result.version, n=count)
            + "\n"
        )
    out.flush()
    err.flush()
    return ExitCode.OK if result.valid else ExitCode.FINDINGS


def try_quick(argv: Sequence[str]) -> int | None:
    """Handle ``--version`` and plain ``hash`` and ``bagit validate BAG`` invocations; None
    means "ask the CLI"."""
    if list(argv) == ["--version"]:
        from custody import __version__

        print(f"custody {__version__}")
        return 0
    if len(argv) == 3 and list(argv[:2]) == ["bagit", "validate"] and not argv[2].startswith("-"):
        try:
            return run_bagit_validate(argv[2])
        except BrokenPipeError:
            return 0
        except KeyboardInterrupt:
            sys.stderr.write(_("custody: interrupted") + "\n")
            return 130
    if argv and argv[0] == "verify":
        return _quick_verify(argv[1:])
    if not argv or argv[0] != "hash":
        return None
    files: list[bytes] = []
    algorithms: list[str] = []
    json_output = False
    words = list(argv[1:])
    while words:
        word = words.pop(0)
        if word == "--":
            files.extend(os.fsencode(w) for w in words)
            break
        if word in ("--algo", "-a") and words:
            algorithms.append(words.pop(0))
        elif word.startswith("--algo="):
            algorithms.append(word.split("=", 1)[1])
        elif word == "--json":
            json_output = True
        elif word.startswith("-") and word != "-":
            return None  # --help, or something only the full CLI knows how to refuse
        else:
            files.append(os.fsencode(word))
    if not files:
        return None  # let the CLI say what is missing
    from custody.errors import CustodyError

    try:
        return run_hash(files, algorithms, json_output=json_output)
    except CustodyError as exc:
        sys.stderr.write(_error_line(exc))
        return int(exc.exit_code)
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        sys.stderr.write(_("custody: interrupted") + "\n")
        return 130


def _error_line(exc: Exception) -> str:
    return _("custody: error: {message}").format(message=printable(str(exc))) + "\n"


def _quick_verify(words: Sequence[str]) -> int | None:
    """``verify --fast`` in its plain forms (``custody.cli.fixity``); None otherwise."""
    from custody.cli.fixity import parse_quick, run_fast

    parsed = parse_quick(words)
    if parsed is None:
        return None
    root, json_output = parsed
    from custody.errors import CustodyError

    try:
        return run_fast(root, json_output=json_output)
    except CustodyError as exc:
        sys.stderr.write(_error_line(exc))
        return int(exc.exit_code)
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        sys.stderr.write(_("custody: interrupted") + "\n")
        return 130
