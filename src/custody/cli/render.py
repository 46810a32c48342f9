"""Rendering verification results for people: a terminal gets panels and tables whose
cells fold (never cut) long paths, digests and fingerprints; anything else (a file, a pipe,
a clerk's paste) gets plain lines, one finding per line, that can be grepped.

Only rendering: every fact comes from the ``VerificationResult``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from custody.cli.common import human_size, out, shown
from custody.errors import ExitCode
from custody.findings import Verdict, VerificationResult

if TYPE_CHECKING:
    from custody.timestamps.ers_file import RecordCheck

THREAT_MODEL = "docs/threat-model.md"

_VERDICT_TEXT = {
    Verdict.VERIFIED: "VERIFIED: intact, and every signer is a key you trust",
    Verdict.UNCONFIRMED: "INTACT, SIGNER NOT CONFIRMED: nothing was changed, but at least one "
    "signer is not a key you trust yet",
    Verdict.FAILED: "NOT VERIFIED",
}


def exit_code(result: VerificationResult) -> int:
    """0 verified, 10 intact but a signer not confirmed, 1 integrity findings."""
    return {
        Verdict.VERIFIED: ExitCode.OK,
        Verdict.UNCONFIRMED: ExitCode.UNCONFIRMED,
        Verdict.FAILED: ExitCode.FINDINGS,
    }[result.verdict]


def grouped(fingerprint: str) -> str:
    """A fingerprint in groups of four, to be read aloud and compared."""
    return " ".join(fingerprint[i : i + 4] for i in range(0, len(fingerprint), 4))


def verdict_line(result: VerificationResult) -> str:
    verdict = result.verdict
    text = _VERDICT_TEXT[verdict]
    if verdict is Verdict.FAILED:
        text += f": {len(result.errors)} integrity finding(s)"
    if result.warnings:
        text += f" ({len(result.warnings)} warning(s))"
    return text


def render_verification(result: VerificationResult) -> None:
    if out.is_terminal:
        _render_rich(result)
    else:
        _render_plain(result)


def _signer_status(k: dict[str, Any]) -> str:
    if k.get("compromised_from") is not None:
        return f"compromised since record {k['compromised_from']}"
    if k.get("revoked_at") is not None:
        return f"revoked at record {k['revoked_at']}"
    if k.get("retired_at") is not None:
        return f"retired at record {k['retired_at']}"
    return "valid"


def _signer_name(k: dict[str, Any]) -> str:
    holder = k.get("holder")
    return f"{k['name']} ({holder})" if holder and holder != k["name"] else str(k["name"])


def _render_plain(result: VerificationResult) -> None:
    p = out.out
    p(f"{verdict_line(result)}: {result.root}", highlight=False)
    for line in result.trust:
        p(f"trusted because: {line}", highlight=False)
    for check in result.checks:
        mark = "pass" if check.passed else "FAIL"
        if check.passed and check.covered == 0:
            mark = "none"
        p(f"check {check.name}: {mark} ({check.covered}): {check.detail}", highlight=False)
    for f in result.findings:
        fields = [
            f.code,
            f.severity,
            f"record {f.seq}" if f.seq is not None else "-",
            printable(f.item),
            f.message,
        ]
        if f.expected is not None or f.found is not None:
            fields += [f"expected {f.expected or '-'}", f"found {f.found or '-'}"]
        p("finding " + " | ".join(fields), highlight=False)
    for k in result.signers:
        trust = "; ".join(k.get("trusted_because") or []) or "NOT CONFIRMED"
        p(
            f"signer {printable(_signer_name(k))} | role {k['role']} | fingerprint "
            f"{grouped(k['fingerprint'])} | {k['records']} record(s) | {_signer_status(k)} | "
            f"{trust}",
            highlight=False,
        )
        if k.get("confirm") and k.get("records"):
            p(f"  to confirm: {k['confirm']}", highlight=False)
    for source, count, rechecked, unchecked in provenance_rows(result):
        p(
            f"provenance | according to {printable(source)} | {count} item(s): what it says of "
            f"them are its claims (custody history, show, report) | re-checked now: {rechecked}",
            highlight=False,
        )
        for line in unchecked:
            p(f"  {printable(line)}", highlight=False)
    for line in _evidence_lines(result.evidence_records):
        p(printable(line), highlight=False)
    p(
        f"{result.ledger_size} records, tree root {result.tree_root}; "
        f"{result.files_checked} files checked, {human_size(result.bytes_hashed)} re-hashed",
        highlight=False,
    )
    if result.verdict is not Verdict.VERIFIED:
        p(f"what each verdict proves, and what it cannot: {THREAT_MODEL}", highlight=False)


def provenance_rows(result: VerificationResult) -> list[tuple[str, int, str, list[str]]]:
    """Per source: its items, each check re-run now with how it came out, and what cannot be
    checked offline (said once per check, with its reason)."""
    sources: dict[str, tuple[set[int], dict[str, dict[str, int]], dict[str, str]]] = {}
    for row in result.provenance:
        for entry in row["entries"]:
            seqs, counts, unchecked = sources.setdefault(entry["source"], (set(), {}, {}))
            seqs.add(row["seq"])
            for check in entry["rechecks"]:
                states = counts.setdefault(check["check"], {})
                states[check["now"]] = states.get(check["now"], 0) + 1
                if check["now"] in ("not_checkable", "not_rechecked"):
                    words = check["now"].replace("_", " ")
                    unchecked.setdefault(
                        check["check"], f"{check['check']} {words}: {check['detail']}"
                    )
    rows = []
    for source, (seqs, counts, unchecked) in sources.items():
        done = "; ".join(
            f"{name} "
            + ", ".join(f"{n} {state.replace('_', ' ')}" for state, n in sorted(states.items()))
            for name, states in counts.items()
        )
        rows.append((source, len(seqs), done or "nothing (claims only)", list(unchecked.values())))
    return rows


def printable(text: str) -> str:
    from custody.cli.fastpath import printable as clean

    return clean(text)


# Below this width a six-column table leaves a few characters per cell: each finding and
# each signer is shown as its own two-column block instead, every value whole.
WIDE = 250


def _pairs(title: str, rows: list[tuple[str, str]], style: str | None = None) -> Table:
    table = Table(show_header=False, title=title, title_justify="left", title_style=style)
    table.add_column(style="dim", no_wrap=True)
    table.add_column(overflow="fold")
    for name, value in rows:
        table.add_row(name, value)
    return table


def _digest_lines(text: str | None) -> str:
    """"sha256:ab… blake3:cd…" with each algorithm on its own line above its digest."""
    if not text:
        return ""
    parts = text.split()
    if all(":" in p and _hex_tail(p) for p in parts):
        return "\n".join(f"{p.split(':', 1)[0]}:\n{p.split(':', 1)[1]}" for p in parts)
    return escape(text)


def _hex_tail(part: str) -> bool:
    tail = part.split(":", 1)[1]
    return len(tail) >= 32 and all(c in "0123456789abcdef" for c in tail)


def _findings_as_blocks(result: VerificationResult) -> None:
    for number, f in enumerate(result.findings, 1):
        colour = "yellow" if f.severity == "warning" else "red"
        rows = [
            ("finding", f"[{colour}]{f.code}[/] ({f.severity})"),
            ("record", str(f.seq) if f.seq is not None else "-"),
            ("item", shown(f.item)),
            ("detail", escape(f.message)),
        ]
        if f.expected is not None or f.found is not None:
            rows += [("expected", _digest_lines(f.expected)), ("found", _digest_lines(f.found))]
        out.print(_pairs(f"Finding {number} of {len(result.findings)}", rows))


def _signers_as_blocks(result: VerificationResult) -> None:
    for k in result.signers:
        trust = "\n".join(escape(t) for t in k.get("trusted_because") or [])
        rows = [
            ("signer", shown(_signer_name(k))),
            ("role", k["role"]),
            ("fingerprint", grouped(k["fingerprint"])),
            ("records", str(k["records"])),
            ("status", _signer_status(k)),
            ("trusted", trust or "[yellow]NOT CONFIRMED[/]"),
        ]
        out.print(_pairs("Key that signed", rows))
        if k.get("confirm") and k.get("records"):
            out.print(f"[yellow]to confirm[/]: {escape(k['confirm'])}")


def _render_rich(result: VerificationResult) -> None:
    verdict = result.verdict
    style = {Verdict.VERIFIED: "green", Verdict.UNCONFIRMED: "yellow", Verdict.FAILED: "red"}[
        verdict
    ]
    # soft_wrap=False here: rich wraps these at word boundaries (folding a long digest
    # instead of cutting it); the console's soft wrap would let the panel crop its text.
    out.print(
        Panel(
            f"[bold {style}]{escape(verdict_line(result))}[/]",
            title=escape(result.root),
            border_style=style,
        ),
        soft_wrap=False,
    )
    for line in result.trust:
        out.print(f"[dim]trusted because:[/] {escape(line)}", soft_wrap=False)
    checks = Table("check", "result", "covered", "what was checked")
    for column in checks.columns:
        column.overflow = "fold"
    for check in result.checks:
        mark = "[green]pass[/]" if check.passed else "[red]FAIL[/]"
        if check.passed and check.covered == 0:
            mark = "[dim]none[/]"
        checks.add_row(check.name, mark, str(check.covered), escape(check.detail))
    out.print(checks)
    if result.findings and out.width < WIDE:
        _findings_as_blocks(result)
    elif result.findings:
        table = Table("finding", "record", "item", "detail", "expected", "found")
        for column in table.columns:
            column.overflow = "fold"
        for f in result.findings:
            colour = "yellow" if f.severity == "warning" else "red"
            table.add_row(
                f"[{colour}]{f.code}[/]",
                str(f.seq) if f.seq is not None else "",
                shown(f.item),
                escape(f.message),
                escape(f.expected or ""),
                escape(f.found or ""),
            )
        out.print(table)
    if result.signers and out.width < WIDE:
        _signers_as_blocks(result)
    elif result.signers:
        signers = Table(
            "signer", "role", "fingerprint", "records", "status", "trusted because",
            title="Keys that signed",
        )  # fmt: skip
        for column in signers.columns:
            column.overflow = "fold"
        for k in result.signers:
            trust = "\n".join(k.get("trusted_because") or []) or "[yellow]NOT CONFIRMED[/]"
            signers.add_row(
                shown(_signer_name(k)),
                k["role"],
                grouped(k["fingerprint"]),
                str(k["records"]),
                _signer_status(k),
                trust,
            )
        out.print(signers)
        for k in result.signers:
            if k.get("confirm") and k.get("records"):
                out.print(
                    f"[yellow]to confirm[/] {shown(_signer_name(k))} "
                    f"({grouped(k['fingerprint'])}): {escape(k['confirm'])}",
                    soft_wrap=False,
                )
    provenance = provenance_rows(result)
    if provenance:
        table = Table("according to", "items", "re-checked now", title="Where items came from: "
                      "the sources' claims, and their own proofs re-checked")  # fmt: skip
        for column in table.columns:
            column.overflow = "fold"
        for source, count, rechecked, unchecked in provenance:
            detail = "\n".join([rechecked, *(f"[yellow]{escape(u)}[/]" for u in unchecked)])
            table.add_row(shown(source), str(count), detail)
        out.print(table)
    if result.evidence_records:
        out.print("[bold]Long-term evidence (RFC 4998 evidence records)[/]")
        for line in _evidence_lines(result.evidence_records):
            out.print(f"  {shown(line)}")
    out.print(
        f"{result.ledger_size} records, tree root {result.tree_root}; "
        f"{result.files_checked} files checked, {human_size(result.bytes_hashed)} re-hashed",
        soft_wrap=False,  # wrapped between words at a terminal: the root stays on one line
    )
    if verdict is not Verdict.VERIFIED:
        out.print(f"What each verdict proves, and what it cannot: {THREAT_MODEL}")


def _evidence_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Each evidence record's chain of archive timestamps, oldest first, one fact a line
    (plain text: nothing is cut, and it fits 80 columns as far as names allow)."""
    lines = []
    for row in rows:
        checkpoints = ", ".join(str(c) for c in row["checkpoints"])
        lines.append(
            f"evidence record ({row.get('file') or row['label']}), checkpoint(s) {checkpoints}: "
            f"{row['status']}"
        )
        lines.append(f"  renew before {row['renew_before'] or 'unknown'}")
        number = 0
        for chain in row["chains"]:
            for ats in chain["timestamps"]:
                number += 1
                lines.append(f"  {number}. {chain['algorithm']} {ats['gen_time']}")
                lines.append(f"     {ats['tsa'] or 'unnamed TSA'}")
                lines.append(f"     valid until {ats['valid_until']}")
    return lines


def render_record_check(path: str, checked: RecordCheck) -> None:
    """A received evidence record's verdict, then its chain and problems, one fact a line."""
    document = checked.to_json()
    p = out.out
    if checked.ok:
        p(f"VALID: {path} proves the data existed at {document['existence_time']}", highlight=False)
    else:
        p(f"NOT VALID: {path}", highlight=False)
    p(f"record sha256 {document['record_sha256']}", highlight=False)
    for number, digest in enumerate(document["data_object"], 1):
        p(f"data object member {number} sha256 {digest}", highlight=False)
    for problem in checked.result.problems:
        p(f"{problem.severity} {printable(str(problem))}", highlight=False)
    row = {"file": path, "checkpoints": [], "status": "valid" if checked.ok else "invalid"}
    row |= {"renew_before": document["renew_before"], "chains": document["chains"]}
    for line in _evidence_lines([row])[1:]:
        p(printable(line), highlight=False)
