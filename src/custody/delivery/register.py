"""The evidence register: one row per item, for a court registry or an investigator's
spreadsheet, as CSV (RFC 4180) or XLSX (Office Open XML, written with openpyxl).

Built from a verified ``Report`` (``custody.delivery.report.build``, without pictures), so
the register says exactly what the report says: exhibit number, name, path, SHA-256, size,
type, claimed capture time, collector (or "withheld"), acquisition time, the earliest
trusted timestamp covering the item, how many custody events name it, who holds it now,
its verification status and its ledger record. An "About" sheet (XLSX) carries the
verdict, the case, what the register was made from and with.

Cells are text except sizes and counts (integers), so that no spreadsheet turns a digest,
an exhibit number or a time into a number or a date. Times are written as everywhere else
(``custody.delivery.report.formats``): ``2024-03-12 10:15:00 UTC``, or the claimed local
time with its offset or "(no zone recorded)".

Hostile names are inert: invisible controls (bidi overrides, C0/C1 controls, which XLSX
cannot hold either) are written as ``[U+202E]``; in CSV a cell that begins with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return gets a leading apostrophe (OWASP "CSV
Injection") so that no spreadsheet runs it as a formula; in XLSX every such cell is
stored as a string cell (never a formula).

Everything a register says is English, whatever the language the run speaks (its column
headings are a file format; the register has no language option): the report it is made
from is built in English (``made_in``).

May import: ``custody.delivery.report`` (model, formats), ``custody.system.files``,
``custody.errors``, ``custody.i18n``; ``openpyxl`` for XLSX. Prints nothing.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from custody.delivery.report.formats import display_time, visible
from custody.delivery.report.model import Report, ReportItem
from custody.errors import CustodyError, UsageError
from custody.i18n import LANGUAGES, SOURCE_LANGUAGE, _, current_language, speaking
from custody.system.files import write_atomic

T = TypeVar("T")

COLUMNS = (
    "Exhibit",
    "Name",
    "Path",
    "SHA-256",
    "Size (bytes)",
    "Type",
    "Claimed capture time",
    "Collector",
    "Acquisition time",
    "Trusted timestamp",
    "Custody events",
    "Current holder",
    "Verification status",
    "Ledger record",
)
FORMATS = ("csv", "xlsx")
WITHHELD = "withheld"
DAMAGED_TREE = "none: a file inside the zip does not read back (see the findings)"
# Not custody events: how the item entered, its relatives, and the proofs covering it.
_NOT_EVENTS = frozenset(
    {"catalogued", "ingested", "same content", "earlier version", "later version",
     "checkpoint", "timestamp", "exhibit"}
)  # fmt: skip
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

Cell = str | int


@dataclass
class Register:
    columns: tuple[str, ...]
    rows: list[list[Cell]]
    about: list[tuple[str, str]] = field(default_factory=list)


def made_in(language: str, make: Callable[[], T]) -> T:
    """``make()`` speaking ``language`` (English when custody has no messages in it): for a
    document whose words must not follow the language of the run - a register is a file
    with no language of its own (English), a certification is in its template's language -
    while everything ``make`` puts into it (findings, statuses, what was trusted) is made in
    the language it is called with.

    An error is still said in the language of the run: when ``make`` fails and the run
    speaks another language, it is run once more in that language to say why (it fails
    again: the first error is raised if it does not).
    """
    chosen = language if language in LANGUAGES else SOURCE_LANGUAGE
    try:
        with speaking(chosen):
            return make()
    except CustodyError as first:
        if current_language() == chosen:
            raise
        try:
            make()
        except CustodyError:
            raise  # the same failure, in the person's own language
        raise first from None


def item_status(report: Report, item: ReportItem) -> str:
    """The verification status of one item, in the report's words."""
    if not item.intact:
        return f"NOT VERIFIED: {item.status}"
    if any(f.severity == "error" for f in item.findings):
        return f"NOT VERIFIED: {item.status}"
    if report.verdict_code == "verified":
        return "VERIFIED"
    if report.verdict_code == "unconfirmed":
        return "INTACT, SIGNER NOT CONFIRMED"
    return "intact (the evidence as a whole is NOT VERIFIED)"


def _trusted_time(item: ReportItem) -> str:
    if not item.timestamps:
        return "none"
    first = item.timestamps[0]
    return f"{display_time(str(first['gen_time']))} ({first['tsa']})"


def build_register(report: Report, *, withhold_collector: bool = False) -> Register:
    rows: list[list[Cell]] = []
    for item in report.items:
        events = sum(1 for e in item.events if e.kind not in _NOT_EVENTS)
        collector = WITHHELD if withhold_collector and item.collector else item.collector
        rows.append(
            [
                item.exhibit or "",
                item.name,
                item.path,
                item.digests["sha256"],
                item.size,
                item.mime or "",
                display_time(item.capture_time) if item.capture_time else "",
                collector or "",
                display_time(item.catalogued),
                _trusted_time(item),
                events,
                item.holder or "",
                item_status(report, item),
                item.seq,
            ]
        )
    about = [
        ("Register of", report.source),
        ("Made", report.generated),
        ("Verdict", report.verdict),
        ("Items", f"{len(report.items)} of {report.items_total}"),
    ]
    if report.selection:
        about.append(("Selection", ", ".join(report.selection)))
    if report.case is not None:
        case = report.case
        about += [("Case", case.name)]
        about += [(label, value) for label, value in (
            ("Case number", case.number), ("Court or mechanism", case.court),
            ("Parties", "; ".join(case.parties) or None),
        ) if value]  # fmt: skip
        about.append(
            ("Case recorded in", f"case record {case.record}" if case.signed else case.source)
        )
    if report.source_digest is not None:
        digest = report.source_digest
        about.append(("Bundle tree SHA-256", digest.tree_sha256 or DAMAGED_TREE))
        if digest.zip_sha256:
            about.append(("Bundle zip SHA-256", digest.zip_sha256))
    if report.tree_root:
        about.append(("Ledger", f"{report.ledger_size} records, root {report.tree_root}"))
    if report.tool_info is not None:
        tool = report.tool_info
        about.append(("Made with", f"custody {tool.version}, SHA-256 {tool.sha256}"))
    about += [("Trusted", line) for line in report.trust]
    if withhold_collector:
        about.append(("Collector", "withheld by the person who made this register"))
    return Register(COLUMNS, rows, about)


def _text(value: Cell) -> Cell:
    return visible(value) if isinstance(value, str) else value


def _csv_cell(value: Cell) -> Cell:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def register_csv(register: Register) -> bytes:
    """UTF-8 with a byte-order mark (so Excel reads Arabic names), CRLF lines (RFC 4180)."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(register.columns)
    for row in register.rows:
        writer.writerow([_csv_cell(_text(v)) for v in row])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def register_xlsx(register: Register, *, creator: str) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Register"
    widths = [10, 28, 40, 66, 14, 16, 34, 20, 34, 44, 10, 24, 30, 10]
    for column, title in enumerate(register.columns, 1):
        cell = sheet.cell(row=1, column=column, value=title)
        cell.font = Font(bold=True)
        sheet.column_dimensions[get_column_letter(column)].width = widths[column - 1]
    for number, row in enumerate(register.rows, 2):
        for column, value in enumerate(row, 1):
            cell = sheet.cell(row=number, column=column)
            _put(cell, _text(value))
            cell.alignment = Alignment(vertical="top", wrap_text=column in (2, 3, 12, 13))
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(register.columns))}{len(register.rows) + 1}"
    about = book.create_sheet("About")
    about.column_dimensions["A"].width = 24
    about.column_dimensions["B"].width = 100
    for number, (label, value) in enumerate(register.about, 1):
        _put(about.cell(row=number, column=1), label)
        about.cell(row=number, column=1).font = Font(bold=True)
        _put(about.cell(row=number, column=2), _text(value))
    book.properties.creator = creator
    book.properties.title = "Evidence register"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _put(cell: object, value: Cell) -> None:
    """A value as a number cell or a string cell: never a formula (openpyxl makes any
    string that begins with '=' a formula unless told otherwise)."""
    cell.value = value  # type: ignore[attr-defined]
    if isinstance(value, str):
        cell.data_type = "s"  # type: ignore[attr-defined]


def register_format(out: Path) -> str:
    suffix = out.suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise UsageError(_("say where to write with --out register.csv or --out register.xlsx"))
    return suffix


def write_register(register: Register, out: Path, *, creator: str) -> str:
    """Write the register to ``out`` (its suffix chooses the format); returns the format."""
    kind = register_format(out)
    data = register_csv(register) if kind == "csv" else register_xlsx(register, creator=creator)
    write_atomic(out, data)
    return kind


def rows_of(register: Register) -> Sequence[dict[str, Cell]]:
    """The rows as mappings of column name to value (for ``--json``)."""
    return [dict(zip(register.columns, row, strict=True)) for row in register.rows]
