"""HOW-TO-VERIFY: the instructions every bundle carries, in English (``HOW-TO-VERIFY.txt``)
and in Arabic (``HOW-TO-VERIFY.ar.txt``), each every check with standard tools only, filled
in for the bundle (the line to check by hand, the signers' fingerprints, the checkpoint
digest, the token files, the evidence records, the witnesses and the disclosures).

``facts`` gathers what the instructions say from the bundle's index and records; each
language is a Jinja2 text template in ``templates/how-to-verify/`` (``en.txt.j2``,
``ar.txt.j2``), and the commands are written once, in ``commands.txt.j2``, for every
language: a translation cannot change a command. The files are bundle files, so each is
written in its own language whatever language the run speaks (never through the catalog).
tests/test_how_to_verify.py runs the English file's commands literally in an environment
without custody; tests/test_report_arabic.py holds the Arabic file's commands to them.
"""

from __future__ import annotations

import base64
import unicodedata
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from custody.delivery.report.formats import written_date
from custody.ledger.records import SignedRecord

TEMPLATES = Path(__file__).with_name("templates") / "how-to-verify"
VERIFY_SCRIPT = "verify-bundle.py"

# Every language the instructions are written in: its file at the top of the bundle and
# its name in English (the English file names the others; it stays English throughout).
INSTRUCTIONS: Mapping[str, Mapping[str, str]] = {
    "en": {"name": "HOW-TO-VERIFY.txt", "language": "English"},
    "ar": {"name": "HOW-TO-VERIFY.ar.txt", "language": "Arabic"},
}


def _grouped(fingerprint: str) -> str:
    return " ".join(fingerprint[i : i + 4] for i in range(0, len(fingerprint), 4))


def facts(index: Mapping[str, Any], lines: Sequence[bytes]) -> dict[str, Any]:
    """What the instructions of a bundle say, from its index and its record lines."""
    checkpoint = index["checkpoint"]
    records = [SignedRecord.parse(line) for line in lines]
    position = {r.seq: number for number, r in enumerate(records, 1)}
    example = next((r for r in records if r.record.type == "item"), records[0])
    tokens = index["timestamps"]
    info = index.get("disclosures") or {}
    note = index.get("checkpoint_note")
    return {
        "tool": index["tool"],
        "created": index["created"],
        "item_count": len(index["items"]),
        "verify_script": VERIFY_SCRIPT,
        "example": {
            "line": position[example.seq],
            "record": example.seq,
            "pem": f"custody/keys/{example.record.signer}.pem",
        },
        "keys": [
            {
                "name": k["name"],
                "holder": k.get("holder"),
                "role": k["role"],
                "fingerprint": _grouped(k["fingerprint"]),
            }
            for k in index["keys"]
        ],
        "checkpoint": {
            "record": checkpoint["record"],
            "tree_size": checkpoint["tree_size"],
            "root": checkpoint["root"],
            "signer": checkpoint["signer"],
            "line": position.get(int(checkpoint["record"]), 0),
            "digest": tokens[0]["imprint"] if tokens else None,
        },
        "timestamps": [{"file": t["file"], "imprint": t["imprint"]} for t in tokens],
        "evidence_records": [str(r["file"]) for r in index.get("evidence_records") or []],
        "witnesses": {
            "cosignatures": [str(c["file"]) for c in index.get("cosignatures") or []],
            "note": note,
            "note_root": (
                base64.b64encode(bytes.fromhex(str(checkpoint["root"]))).decode() if note else None
            ),
        },
        "disclosures": {
            "count": int(info.get("count") or 0),
            "withheld": list(info.get("withheld") or []),
        },
    }


def _right_to_left(value: object) -> bool:
    """Whether a text's first letter is right to left (a name written in Arabic)."""
    for ch in str(value or ""):
        kind = unicodedata.bidirectional(ch)
        if kind in ("R", "AL"):
            return True
        if kind == "L":
            return False
    return False


def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=False,  # plain text, never HTML
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.tests["right_to_left"] = _right_to_left
    return env


def how_to_verify(index: Mapping[str, Any], lines: Sequence[bytes], lang: str = "en") -> str:
    """The instructions of a bundle in ``lang`` (one of INSTRUCTIONS), each command on a
    line of its own starting with "$ "."""
    context = facts(index, lines)
    if lang == "en":
        context["translations"] = [v for k, v in INSTRUCTIONS.items() if k != "en"]
    if lang == "ar":
        from custody.delivery.report.html import load_strings

        # The month names and the keys' roles as the Arabic report writes them.
        words = load_strings("ar", None)
        formats = words["formats"]
        context["created_written"] = written_date(
            str(index["created"]), formats["months"], formats["written_date"]
        ) or str(index["created"])
        context["roles"] = words["roles"]
    return str(_environment().get_template(f"{lang}.txt.j2").render(**context))


def write_all(index: Mapping[str, Any], lines: Sequence[bytes], out: Path) -> list[str]:
    """Every language's instructions, at the top of the bundle folder ``out``; their names."""
    from custody.system.files import write_atomic

    for lang, entry in INSTRUCTIONS.items():
        write_atomic(out / entry["name"], how_to_verify(index, lines, lang).encode("utf-8"))
    return [entry["name"] for entry in INSTRUCTIONS.values()]
