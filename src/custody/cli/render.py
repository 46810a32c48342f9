"""Rendering verification results for people: a terminal gets panels and tables whose
cells fold (never cut) long paths, digests and fingerprints; anything else (a file, a pipe,
a clerk's paste) gets plain lines, one finding per line, that can be grepped.

Only rendering: every fact comes from the ``VerificationResult``. The words around the facts
are in the language of the run (``custody.i18n``); what the library gives as identifiers
(check names, severities, signer roles and states, verdicts) is kept as it is in the result and
its JSON, and put into words here, through the tables below, only when it is shown. Finding
class names (``FILE_MODIFIED``), paths, digests and fingerprints are shown as they are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from custody.cli.common import human_size, out, shown
from custody.errors import ExitCode
from custody.findings import Verdict, VerificationResult
from custody.i18n import N_, _, ngettext

if TYPE_CHECKING:
    from custody.timestamps.ers_file import RecordCheck

THREAT_MODEL = "docs/threat-model.md"

# The verdict as one line, whole sentences for each case (Arabic orders them differently).
# The English verdict word stays visible in every language's translation: it is the word of
# the English report, of HOW-TO-VERIFY and of docs/exit-codes.md, so a lawyer can match an
# Arabic run with an English one at a glance.
_VERDICT_TEXT = {
    Verdict.VERIFIED: N_("VERIFIED: intact, and every signer is a key you trust"),
    Verdict.UNCONFIRMED: N_(
        "INTACT, SIGNER NOT CONFIRMED: nothing was changed, but at least one "
        "signer is not a key you trust yet"
    ),
}

# The verdict alone (report, register, certify print it before what they wrote).
VERDICT_WORDS = {
    "verified": N_("VERIFIED"),
    "unconfirmed": N_("INTACT, SIGNER NOT CONFIRMED"),
    "failed": N_("NOT VERIFIED"),
}

# Check names are identifiers of the result and its JSON ("hash chain"); shown in words.
CHECK_NAMES = {
    "record structure": N_("record structure"),
    "hash chain": N_("hash chain"),
    "signatures": N_("signatures"),
    "keys and roles": N_("keys and roles"),
    "references": N_("references"),
    "checkpoints": N_("checkpoints"),
    "exhibit numbers": N_("exhibit numbers"),
    "held checkpoint": N_("held checkpoint"),
    "remembered checkpoints": N_("remembered checkpoints"),
    "witnesses": N_("witnesses"),
    "whole metadata": N_("whole metadata"),
    "web captures": N_("web captures"),
    "timestamps": N_("timestamps"),
    "clocks": N_("clocks"),
    "long-term evidence": N_("long-term evidence"),
    "files": N_("files"),
    "fast fixity": N_("fast fixity"),
    "provenance": N_("provenance"),
    "zip members": N_("zip members"),
    "bag structure": N_("bag structure"),
    "records": N_("records"),
    "inclusion proofs": N_("inclusion proofs"),
    "signatures and keys": N_("signatures and keys"),
    "disclosures": N_("disclosures"),
}

SEVERITIES = {"error": N_("error"), "warning": N_("warning")}

ROLES = {
    "documenter": N_("documenter"),
    "custodian": N_("custodian"),
    "lawyer": N_("lawyer"),
}

# A source's own check, re-run now (custody.verify.provenance): its state.
RECHECK_STATES = {
    "passed": N_("passed"),
    "failed": N_("failed"),
    "not_checkable": N_("not checkable"),
    "not_rechecked": N_("not re-checked"),
}

# An evidence record's state (custody.timestamps.longterm_check, ers_file).
RECORD_STATES = {
    "valid": N_("valid"),
    "invalid": N_("invalid"),
    "lapsed": N_("lapsed"),
    "renewal due": N_("renewal due"),
}


def styled(style: str, text: str) -> str:
    """``text`` (a translated word, never markup) in rich ``style``.

    Words are translated outside f-strings: the catalog's extractor does not look inside
    them, so ``_()`` written in one would never reach the catalog."""
    return f"[{style}]{escape(text)}[/]"


def said(table: dict[str, str], value: object) -> str:
    """``value`` (an identifier of a result) in words: its entry of ``table`` in the
    language of the run, or the value itself when the table does not know it."""
    text = str(value)
    return _(table[text]) if text in table else text


def verdict_word(code: str) -> str:
    """The verdict alone, from its code ("verified", "unconfirmed"; anything else fails)."""
    return _(VERDICT_WORDS.get(code, VERDICT_WORDS["failed"]))


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
    # English keeps its "finding(s)": singular and plural are the same message there, and
    # the catalog gives Arabic its six forms.
    verdict = result.verdict
    errors, warnings = len(result.errors), len(result.warnings)
    if verdict is Verdict.FAILED:
        if warnings:
            return ngettext(
                "NOT VERIFIED: {n} integrity finding(s) ({warnings} warning(s))",
                "NOT VERIFIED: {n} integrity finding(s) ({warnings} warning(s))",
                errors,
            ).format(n=errors, warnings=warnings)
        return ngettext(
            "NOT VERIFIED: {n} integrity finding(s)",
            "NOT VERIFIED: {n} integrity finding(s)",
            errors,
        ).format(n=errors)
    if not warnings:
        return _(_VERDICT_TEXT[verdict])
    if verdict is Verdict.VERIFIED:
        return ngettext(
            "VERIFIED: intact, and every signer is a key you trust ({n} warning(s))",
            "VERIFIED: intact, and every signer is a key you trust ({n} warning(s))",
            warnings,
        ).format(n=warnings)
    return ngettext(
        "INTACT, SIGNER NOT CONFIRMED: nothing was changed, but at least one signer is not "
        "a key you trust yet ({n} warning(s))",
        "INTACT, SIGNER NOT CONFIRMED: nothing was changed, but at least one signer is not "
        "a key you trust yet ({n} warning(s))",
        warnings,
    ).format(n=warnings)


def render_verification(result: VerificationResult) -> None:
    if out.is_terminal:
        _render_rich(result)
    else:
        _render_plain(result)


def _signer_status(k: dict[str, Any]) -> str:
    if k.get("compromised_from") is not None:
        return _("compromised since record {seq}").format(seq=k["compromised_from"])
    if k.get("revoked_at") is not None:
        return _("revoked at record {seq}").format(seq=k["revoked_at"])
    if k.get("retired_at") is not None:
        return _("retired at record {seq}").format(seq=k["retired_at"])
    return _("valid")


def _check_mark(passed: bool, covered: int) -> str:
    """The colour of a check's outcome on a terminal."""
    if passed and covered == 0:
        return "dim"
    return "green" if passed else "red"


def _check_result(passed: bool, covered: int) -> str:
    """A check's outcome in words: pass, FAIL, or none (it covered nothing)."""
    if passed and covered == 0:
        return _("none")
    return _("pass") if passed else _("FAIL")


def _check_line(check: Any) -> str:
    name = said(CHECK_NAMES, check.name)
    fields = {"name": name, "covered": check.covered, "detail": check.detail}
    if check.passed and check.covered == 0:
        return _("check {name}: none ({covered}): {detail}").format(**fields)
    if check.passed:
        return _("check {name}: pass ({covered}): {detail}").format(**fields)
    return _("check {name}: FAIL ({covered}): {detail}").format(**fields)


def _records(n: int) -> str:
    return ngettext("{n} record(s)", "{n} record(s)", n).format(n=n)


def _summary(result: VerificationResult) -> str:
    return _(
        "{records} records, tree root {tree_root}; {files} files checked, {size} re-hashed"
    ).format(
        records=result.ledger_size,
        tree_root=result.tree_root,
        files=result.files_checked,
        size=human_size(result.bytes_hashed),
    )


def _signer_name(k: dict[str, Any]) -> str:
    holder = k.get("holder")
    return f"{k['name']} ({holder})" if holder and holder != k["name"] else str(k["name"])


def _render_plain(result: VerificationResult) -> None:
    p = out.out
    p(f"{verdict_line(result)}: {result.root}", highlight=False)
    for line in result.trust:
        p(_("trusted because: {reason}").format(reason=line), highlight=False)
    for check in result.checks:
        p(_check_line(check), highlight=False)
    for f in result.findings:
        fields = [
            f.code,
            said(SEVERITIES, f.severity),
            _("record {seq}").format(seq=f.seq) if f.seq is not None else "-",
            printable(f.item),
            f.message,
        ]
        if f.expected is not None or f.found is not None:
            fields += [
                _("expected {value}").format(value=f.expected or "-"),
                _("found {value}").format(value=f.found or "-"),
            ]
        p(_("finding {fields}").format(fields=" | ".join(fields)), highlight=False)
    for k in result.signers:
        trust = "; ".join(k.get("trusted_because") or []) or _("NOT CONFIRMED")
        fields = [
            _("signer {name}").format(name=printable(_signer_name(k))),
            _("role {role}").format(role=said(ROLES, k["role"])),
            _("fingerprint {fingerprint}").format(fingerprint=grouped(k["fingerprint"])),
            _records(k["records"]),
            _signer_status(k),
            trust,
        ]
        p(" | ".join(fields), highlight=False)
        if k.get("confirm") and k.get("records"):
            p("  " + _("to confirm: {how}").format(how=k["confirm"]), highlight=False)
    for source, count, rechecked, unchecked in provenance_rows(result):
        p(
            ngettext(
                "provenance | according to {source} | {n} item(s): what it says of them are its "
                "claims (custody history, show, report) | re-checked now: {rechecked}",
                "provenance | according to {source} | {n} item(s): what it says of them are its "
                "claims (custody history, show, report) | re-checked now: {rechecked}",
                count,
            ).format(source=printable(source), n=count, rechecked=rechecked),
            highlight=False,
        )
        for line in unchecked:
            p(f"  {printable(line)}", highlight=False)
    for line in _evidence_lines(result.evidence_records):
        p(printable(line), highlight=False)
    p(_summary(result), highlight=False)
    if result.verdict is not Verdict.VERIFIED:
        p(
            _("what each verdict proves, and what it cannot: {path}").format(path=THREAT_MODEL),
            highlight=False,
        )


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
                    unchecked.setdefault(
                        check["check"],
                        _("{check} {state}: {detail}").format(
                            check=check["check"],
                            state=said(RECHECK_STATES, check["now"]),
                            detail=check["detail"],
                        ),
                    )
    rows = []
    for source, (seqs, counts, unchecked) in sources.items():
        # "c2pa_validation 2 passed, 1 failed": the check's identifier, then counts by state.
        done = "; ".join(
            f"{name} "
            + ", ".join(
                _("{n} {state}").format(n=n, state=said(RECHECK_STATES, state))
                for state, n in sorted(states.items())
            )
            for name, states in counts.items()
        )
        rows.append(
            (source, len(seqs), done or _("nothing (claims only)"), list(unchecked.values()))
        )
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
    """Digests as "sha256:ab… blake3:cd…": each algorithm on its own line above its digest."""
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
            (_("finding"), f"[{colour}]{f.code}[/] ({escape(said(SEVERITIES, f.severity))})"),
            (_("record"), str(f.seq) if f.seq is not None else "-"),
            (_("item"), shown(f.item)),
            (_("detail"), escape(f.message)),
        ]
        if f.expected is not None or f.found is not None:
            rows += [
                (_("expected"), _digest_lines(f.expected)),
                (_("found"), _digest_lines(f.found)),
            ]
        title = _("Finding {number} of {total}").format(number=number, total=len(result.findings))
        out.print(_pairs(escape(title), [(escape(n), v) for n, v in rows]))


def _signers_as_blocks(result: VerificationResult) -> None:
    for k in result.signers:
        trust = "\n".join(escape(t) for t in k.get("trusted_because") or [])
        rows = [
            (_("signer"), shown(_signer_name(k))),
            (_("role"), escape(said(ROLES, k["role"]))),
            (_("fingerprint"), grouped(k["fingerprint"])),
            (_("records"), str(k["records"])),
            (_("status"), escape(_signer_status(k))),
            (_("trusted"), trust or styled("yellow", _("NOT CONFIRMED"))),
        ]
        out.print(_pairs(escape(_("Key that signed")), [(escape(n), v) for n, v in rows]))
        if k.get("confirm") and k.get("records"):
            label = styled("yellow", _("to confirm"))
            # Wrapped between words at a terminal, as the wide layout's line is.
            out.print(f"{label}: {escape(k['confirm'])}", soft_wrap=False)


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
        label = styled("dim", _("trusted because:"))
        out.print(f"{label} {escape(line)}", soft_wrap=False)
    checks = Table(
        *(escape(h) for h in (_("check"), _("result"), _("covered"), _("what was checked")))
    )
    for column in checks.columns:
        column.overflow = "fold"
    for check in result.checks:
        colour = _check_mark(check.passed, check.covered)
        mark = f"[{colour}]{escape(_check_result(check.passed, check.covered))}[/]"
        checks.add_row(
            escape(said(CHECK_NAMES, check.name)), mark, str(check.covered), escape(check.detail)
        )
    out.print(checks)
    if result.findings and out.width < WIDE:
        _findings_as_blocks(result)
    elif result.findings:
        table = Table(
            *(
                escape(h)
                for h in (
                    _("finding"), _("record"), _("item"), _("detail"), _("expected"), _("found")
                )
            )
        )  # fmt: skip
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
            *(escape(h) for h in (_("signer"), _("role"), _("fingerprint"), _("records"),
                                  _("status"), _("trusted because"))),
            title=escape(_("Keys that signed")),
        )  # fmt: skip
        for column in signers.columns:
            column.overflow = "fold"
        for k in result.signers:
            trust = "\n".join(escape(t) for t in k.get("trusted_because") or []) or (
                styled("yellow", _("NOT CONFIRMED"))
            )
            signers.add_row(
                shown(_signer_name(k)),
                escape(said(ROLES, k["role"])),
                grouped(k["fingerprint"]),
                str(k["records"]),
                escape(_signer_status(k)),
                trust,
            )
        out.print(signers)
        confirm = styled("yellow", _("to confirm"))
        for k in result.signers:
            if k.get("confirm") and k.get("records"):
                out.print(
                    f"{confirm} {shown(_signer_name(k))} "
                    f"({grouped(k['fingerprint'])}): {escape(k['confirm'])}",
                    soft_wrap=False,
                )
    provenance = provenance_rows(result)
    if provenance:
        table = Table(
            *(escape(h) for h in (_("according to"), _("items"), _("re-checked now"))),
            title=escape(
                _("Where items came from: the sources' claims, and their own proofs re-checked")
            ),
        )
        for column in table.columns:
            column.overflow = "fold"
        for source, count, rechecked, unchecked in provenance:
            detail = "\n".join([escape(rechecked), *(f"[yellow]{escape(u)}[/]" for u in unchecked)])
            table.add_row(shown(source), str(count), detail)
        out.print(table)
    if result.evidence_records:
        out.print(styled("bold", _("Long-term evidence (RFC 4998 evidence records)")))
        for line in _evidence_lines(result.evidence_records):
            out.print(f"  {shown(line)}")
    out.print(
        escape(_summary(result)),
        soft_wrap=False,  # wrapped between words at a terminal: the root stays on one line
    )
    if verdict is not Verdict.VERIFIED:
        out.print(
            escape(
                _("What each verdict proves, and what it cannot: {path}").format(path=THREAT_MODEL)
            )
        )


def _evidence_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Each evidence record's chain of archive timestamps, oldest first, one fact a line
    (plain text: nothing is cut, and it fits 80 columns as far as names allow)."""
    lines = []
    for row in rows:
        checkpoints = ", ".join(str(c) for c in row["checkpoints"])
        lines.append(
            _("evidence record ({name}), checkpoint(s) {checkpoints}: {status}").format(
                name=row.get("file") or row["label"],
                checkpoints=checkpoints,
                status=said(RECORD_STATES, row["status"]),
            )
        )
        lines.append(
            "  " + _("renew before {time}").format(time=row["renew_before"] or _("unknown"))
        )
        number = 0
        for chain in row["chains"]:
            for ats in chain["timestamps"]:
                number += 1
                lines.append(f"  {number}. {chain['algorithm']} {ats['gen_time']}")
                lines.append("     " + (ats["tsa"] or _("unnamed TSA")))
                lines.append("     " + _("valid until {time}").format(time=ats["valid_until"]))
    return lines


def render_record_check(path: str, checked: RecordCheck) -> None:
    """A received evidence record's verdict, then its chain and problems, one fact a line."""
    document = checked.to_json()
    p = out.out
    if checked.ok:
        p(
            _("VALID: {path} proves the data existed at {time}").format(
                path=path, time=document["existence_time"]
            ),
            highlight=False,
        )
    else:
        p(_("NOT VALID: {path}").format(path=path), highlight=False)
    p(_("record sha256 {digest}").format(digest=document["record_sha256"]), highlight=False)
    for number, digest in enumerate(document["data_object"], 1):
        p(
            _("data object member {number} sha256 {digest}").format(number=number, digest=digest),
            highlight=False,
        )
    for problem in checked.result.problems:
        p(f"{said(SEVERITIES, problem.severity)} {printable(str(problem))}", highlight=False)
    row = {"file": path, "checkpoints": [], "status": "valid" if checked.ok else "invalid"}
    row |= {"renew_before": document["renew_before"], "chains": document["chains"]}
    for line in _evidence_lines([row])[1:]:
        p(printable(line), highlight=False)
