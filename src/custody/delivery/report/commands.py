"""The exact commands with which an independent expert reproduces each check of a report
(sha256sum, openssl pkeyutl, openssl ts), for a root or a bundle, and the digests that pin
what the report was made from and with (``custody.delivery.digests``).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

from custody.delivery.report.formats import INVISIBLE
from custody.delivery.report.model import Command, Report, ReportItem
from custody.i18n import _
from custody.ledger.bodies import TimestampBody
from custody.ledger.records import SignedRecord

# --- reproducing the checks -------------------------------------------------------------------


_SIGNATURE_LOOP = """while IFS= read -r line; do
  signer=$(printf '%s' "$line" | sed 's/.*"signer":"\\([0-9a-f]*\\)".*/\\1/')
  printf '%s' "$line" | sed 's/^{"sig":"[^"]*","signed"://; s/}$//' > msg.bin
  printf '%s' "$line" | sed 's/^{"sig":"\\([^"]*\\)".*/\\1/' | base64 -d > sig.bin
  openssl pkeyutl -verify -pubin -inkey {keys}/"$signer".pem -rawin -in msg.bin -sigfile sig.bin
done < {lines}"""


def _manifest_heredoc(root: Path, items: Sequence[ReportItem]) -> str:
    # A name with a line break or an invisible control (a bidi override) cannot be shown
    # faithfully in a printed command; 'custody verify' still checks it.
    lines = [
        f"{i.digests['sha256']}  {i.path}"
        for i in items
        if "\n" not in i.path and not INVISIBLE.search(i.path)
    ]
    return f"cd {shlex.quote(str(root))} && sha256sum -c <<'EOF'\n" + "\n".join(lines) + "\nEOF"


TREE_DIGEST = (
    "find . -type f -printf '%P\\0' | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum"
)


def tool_command() -> Command:
    """How to recompute the digest of the custody that made a document."""
    return Command(
        _(
            "the custody that made this document: the SHA-256 of the sha256sum listing of its "
            'installed files (must equal the digest under "Made with")'
        ),
        "cd \"$(python3 -c 'import custody, os; print(os.path.dirname(custody.__file__))')\" "
        "&& find . -type f ! -name '*.pyc' -printf '%P\\0' | LC_ALL=C sort -z "
        "| xargs -0 sha256sum | sha256sum",
    )


def _token_commands(
    base: str, stamps: Sequence[tuple[TimestampBody, bytes | None]], token_dir: str
) -> list[Command]:
    from custody.timestamps.rfc3161 import openssl_verify_command

    commands = []
    for stamp, _raw in stamps:
        token = f"{token_dir}/{stamp.token_file.rsplit('/', 1)[-1]}"
        argv = openssl_verify_command(
            token=token, digest=stamp.imprint, ca_file="TSA-ROOT.pem", untrusted=None
        )
        commands.append(
            Command(
                _(
                    "the RFC 3161 token of record over checkpoint {checkpoint} (genTime {time}, "
                    "{tsa}); the digest is the SHA-256 of the checkpoint line; TSA-ROOT.pem is "
                    "the TSA's root certificate, obtained from the TSA itself (add -untrusted "
                    "with its intermediates if the token does not carry them)"
                ).format(
                    checkpoint=stamp.checkpoint,
                    time=stamp.gen_time,
                    tsa=stamp.tsa_name or stamp.tsa,
                ),
                f"cd {shlex.quote(base)} && " + shlex.join(argv),
            )
        )
    return commands


def root_commands(
    root: Path, report: Report, stamps: Sequence[tuple[TimestampBody, bytes | None]]
) -> list[Command]:
    q = shlex.quote(str(root))
    commands = [
        Command(_("every check at once, with custody installed"), f"custody verify --root {q}"),
        Command(
            _("each file against the SHA-256 recorded for it (every line must say OK)"),
            _manifest_heredoc(root, report.items),
        ),
        Command(
            _(
                "the signature of every ledger record, with the public keys kept beside the "
                "ledger (every line must say 'Signature Verified Successfully')"
            ),
            f"cd {q}/.custody && "
            + _SIGNATURE_LOOP.replace("{keys}", "keys").replace("{lines}", "ledger.jsonl"),
        ),
        Command(
            _(
                "the Merkle root of the whole ledger (RFC 9162), to compare with the latest "
                "checkpoint's root"
            ),
            f"cd {q}/.custody && python3 -c '\nimport hashlib\n"
            "def root(h):\n"
            "    if len(h) == 1: return h[0]\n"
            "    k = 1\n"
            "    while k * 2 < len(h): k *= 2\n"
            '    return hashlib.sha256(b"\\x01" + root(h[:k]) + root(h[k:])).digest()\n'
            'lines = open("ledger.jsonl", "rb").read().split(b"\\n")[:-1]\n'
            'print(root([hashlib.sha256(b"\\x00" + l).digest() for l in lines]).hex())\'',
        ),
    ]
    commands += _token_commands(str(root / ".custody"), stamps, "timestamps")
    return commands


def bundle_commands(
    path: Path,
    top: str,
    report: Report,
    parsed: dict[int, SignedRecord],
    stamps: Sequence[tuple[TimestampBody, bytes | None]],
) -> list[Command]:
    commands: list[Command] = []
    if path.is_file():
        folder = str(path.parent / top) if top else str(path.parent / path.stem)
        if top:
            unpack = f"cd {shlex.quote(str(path.parent))} && unzip {shlex.quote(path.name)}"
        else:
            unpack = f"unzip {shlex.quote(str(path))} -d {shlex.quote(folder)}"
        commands.append(
            Command(_("unpack the bundle (the checks below run on the folder)"), unpack)
        )
    else:
        folder = str(path)
    q = shlex.quote(folder)
    if path.is_file():
        commands.append(
            Command(
                _("the zip file itself (must equal the bundle zip's SHA-256 above)"),
                f"sha256sum {shlex.quote(str(path))}",
            )
        )
    commands.append(
        Command(
            _(
                "the folder tree digest: every file of the bundle in one SHA-256 (must equal "
                "the bundle's tree digest above)"
            ),
            f"cd {q} && {TREE_DIGEST}",
        )
    )
    commands += [
        Command(
            _("every check at once, with custody installed"),
            f"custody verify {shlex.quote(str(path))}",
        ),
        Command(
            _("the BagIt bag is complete and valid (RFC 8493), with the independent bagit-python"),
            f"bagit.py --validate {q}",
        ),
        Command(
            _("each evidence file against the SHA-256 payload manifest (every line must say OK)"),
            f"cd {q} && sha256sum -c manifest-sha256.txt",
        ),
        Command(
            _(
                "the signature of every record in the bundle (every line must say 'Signature "
                "Verified Successfully')"
            ),
            f"cd {q} && "
            + _SIGNATURE_LOOP.replace("{keys}", "custody/keys").replace(
                "{lines}", "custody/records.jsonl"
            ),
        ),
        Command(
            _(
                "each record's inclusion proof against the checkpoint's Merkle root (RFC 9162 "
                "section 2.1.3.2; prints the root, which must equal the checkpoint's)"
            ),
            f"cd {q} && for p in custody/proofs/record-*.json; do python3 -c '\n"
            "import hashlib, json, sys\n"
            "p = json.load(open(sys.argv[1]))\n"
            'fn, sn = p["leaf_index"], p["tree_size"] - 1\n'
            'r = hashlib.sha256(b"\\x00" + p["record_line"].encode()).digest()\n'
            'for h in map(bytes.fromhex, p["audit_path"]):\n'
            "    if fn & 1 or fn == sn:\n"
            '        r = hashlib.sha256(b"\\x01" + h + r).digest()\n'
            "        while not fn & 1 and fn: fn, sn = fn >> 1, sn >> 1\n"
            "    else:\n"
            '        r = hashlib.sha256(b"\\x01" + r + h).digest()\n'
            "    fn, sn = fn >> 1, sn >> 1\n"
            'print(sys.argv[1], r.hex(), "OK" if sn == 0 and r.hex() == p["root"] else "FAILED")'
            '\' "$p"; done',
        ),
    ]
    commands += _token_commands(folder, stamps, "custody/timestamps")
    del parsed
    return commands
