"""``render_html`` turns a ``Report`` into one self-contained page: inline CSS, images as
``data:`` URIs, a content security policy that forbids fetching anything, A4 print
rules, and ``dir="auto"``/``lang`` on every text that came from people or file names so
that Arabic (and any right-to-left script) is shown right to left. Everything is
escaped.
"""

from __future__ import annotations

import html
import re
import unicodedata
from typing import Any

from custody.delivery.report.model import Report, ReportItem

# --- HTML -----------------------------------------------------------------------------------


_RTL = re.compile("[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufeff]")


_ARABIC = re.compile("[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff]")


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _t(value: object, tag: str = "span", cls: str = "") -> str:
    """Text from people or file names: escaped, its direction found by the browser."""
    text = unicodedata.normalize("NFC", str(value))
    lang = ' lang="ar"' if _ARABIC.search(text) else ""
    klass = f' class="{cls}"' if cls else ""
    return f'<{tag} dir="auto"{lang}{klass}>{_e(text)}</{tag}>'


def _path(value: str) -> str:
    """A path: each segment isolated so that right-to-left names keep their own order."""
    parts = unicodedata.normalize("NFC", value).split("/")
    inner = '<span class="sep">/</span>'.join(
        ('<bdi lang="ar">' if _ARABIC.search(p) else "<bdi>") + _e(p) + "</bdi>" for p in parts
    )
    return f'<span class="path" dir="ltr">{inner}</span>'


def _size(n: int) -> str:
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            text = f"{n:,} bytes" if unit == "bytes" else f"{value:.1f} {unit} ({n:,} bytes)"
            return text
        value /= 1024
    return f"{n:,} bytes"


def _gps_text(gps: tuple[float, float]) -> str:
    lat, lon = gps
    text = (
        f"{lat:.5f}, {lon:.5f} ({abs(lat):.5f}° {'N' if lat >= 0 else 'S'}, "
        f"{abs(lon):.5f}° {'E' if lon >= 0 else 'W'})"
    )
    if abs(lat) < 1e-6 and abs(lon) < 1e-6:
        text += ": latitude and longitude exactly zero, which devices write when they had no fix"
    return text


_CSS = """
@page { size: A4; margin: 16mm 15mm 18mm 15mm;
  @bottom-right { content: "Page " counter(page) " of " counter(pages);
                  font: 8pt "DejaVu Sans", sans-serif; color: #555; }
  @bottom-left { content: "custody chain-of-custody report"; font: 8pt "DejaVu Sans", sans-serif;
                 color: #555; } }
* { box-sizing: border-box; }
html { font-family: "DejaVu Sans", "Noto Sans", "Noto Sans Arabic", "Noto Naskh Arabic",
       sans-serif; font-size: 10pt; color: #111; line-height: 1.35; }
body { margin: 0 auto; max-width: 180mm; padding: 0; }
:lang(ar) { font-family: "Noto Naskh Arabic", "Noto Sans Arabic", "DejaVu Sans", sans-serif; }
h1 { font-size: 18pt; margin: 0 0 2mm 0; }
h2 { font-size: 13pt; margin: 7mm 0 2mm 0; border-bottom: 1.5pt solid #333; padding-bottom: 1mm;
     break-after: avoid; }
h3 { font-size: 11.5pt; margin: 0 0 2mm 0; break-after: avoid; }
p { margin: 1.5mm 0; }
.meta { color: #444; font-size: 9pt; }
.verdict { border: 2.5pt solid; padding: 4mm 5mm; margin: 4mm 0; break-inside: avoid; }
.verdict.ok { border-color: #1b6e20; background: #eef7ee; }
.verdict.bad { border-color: #a11; background: #fbeeee; }
.verdict .word { font-size: 20pt; font-weight: bold; letter-spacing: 0.5pt; }
.verdict.ok .word { color: #1b6e20; } .verdict.bad .word { color: #a11; }
.verdict.warn-verdict { border-color: #a66a00; background: #fdf6e7; }
.verdict.warn-verdict .word { color: #8a5600; }
table { border-collapse: collapse; width: 100%; margin: 1.5mm 0 3mm 0; font-size: 8.8pt; }
th, td { border: 0.6pt solid #999; padding: 1mm 1.5mm; text-align: start; vertical-align: top;
         overflow-wrap: break-word; }
table.fixed { table-layout: fixed; }
th { background: #eee; }
tr { break-inside: avoid; }
table.facts th { width: 34%; font-weight: normal; color: #333; background: #f5f5f5; }
.hash, .mono { font-family: "DejaVu Sans Mono", monospace; font-size: 8pt;
               overflow-wrap: anywhere; word-break: break-all; }
.path { overflow-wrap: anywhere; }
.sep { color: #777; padding: 0 0.3pt; }
.item { border-top: 1pt solid #bbb; padding-top: 3mm; margin-top: 5mm; }
.item-head { display: flex; gap: 5mm; align-items: flex-start; break-inside: avoid; }
.item-head .facts-wrap { flex: 1 1 auto; min-width: 0; }
figure { margin: 0; flex: 0 0 64mm; text-align: center; }
figure img { max-width: 64mm; max-height: 64mm; border: 0.6pt solid #888; }
figure .none { width: 64mm; border: 0.6pt dashed #999; padding: 8mm 3mm; color: #555;
               font-size: 8.5pt; }
figcaption { font-size: 7.5pt; color: #555; margin-top: 1mm; }
.pass { color: #1b6e20; font-weight: bold; } .fail { color: #a11; font-weight: bold; }
.warn { color: #8a5a00; font-weight: bold; }
pre { font-family: "DejaVu Sans Mono", monospace; font-size: 7.6pt; background: #f6f6f6;
      border: 0.6pt solid #ccc; padding: 2mm; white-space: pre-wrap; overflow-wrap: anywhere;
      break-inside: avoid; margin: 1mm 0 3mm 0; }
.cmd { break-inside: avoid; }
.small { font-size: 8.5pt; color: #333; }
@media screen { body { padding: 8mm; } }
"""


def render_html(report: Report) -> str:
    """The whole report as one self-contained HTML page (see module docstring)."""
    out: list[str] = []
    w = out.append
    title = f"Chain-of-custody report: {report.kind}"
    w("<!DOCTYPE html>")
    w('<html lang="en" dir="ltr"><head><meta charset="utf-8">')
    w(
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "img-src data:; style-src 'unsafe-inline'\">"
    )
    w('<meta name="viewport" content="width=device-width, initial-scale=1">')
    w(f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>")
    w(f"<h1>{_e(title)}</h1>")
    w(f'<p class="meta">Source: {_t(report.source, cls="mono")}<br>')
    w(f"Report made {_e(report.generated)} by {_e(report.tool)}.</p>")
    if report.case:
        w('<table class="facts">')
        for key, value in report.case.items():
            w(f"<tr><th>{_e(key)}</th><td>{_t(value)}</td></tr>")
        w("</table>")
    _verdict(report, w)
    _overview(report, w)
    w("<h2>The evidence, item by item</h2>")
    for number, item in enumerate(report.items, 1):
        _item(item, number, len(report.items), w)
    _checks(report, w)
    _keys_and_tsas(report, w)
    _long_term(report, w)
    _reproduce(report, w)
    w("</body></html>")
    return "\n".join(out) + "\n"


def _verdict(report: Report, w: Any) -> None:
    errors, warnings = report.errors, report.warnings
    ok = report.verified
    klass = "ok" if ok else "warn-verdict" if report.verdict_code == "unconfirmed" else "bad"
    w(f'<section class="verdict {klass}" id="verdict">')
    w(f'<div class="word">{_e(report.verdict)}</div>')
    if report.verdict_code == "unconfirmed":
        unconfirmed = [k for k in report.keys if not k.anchored and k.records]
        w(
            "<p><b>Nothing was changed, but the signer is not confirmed.</b> Every check of "
            "integrity passed; the records are signed by keys the person who prepared this "
            "report has not confirmed as belonging to who they claim. Compare these "
            "fingerprints with ones obtained from the signers by another channel:</p><ul>"
        )
        for key in unconfirmed:
            grouped = _e(_grouped(key.fingerprint))
            w(f'<li>{_t(key.holder or key.name)}: <span class="hash">{grouped}</span></li>')
        w("</ul>")
    elif ok:
        w(
            f"<p><b>Every check passed.</b> The {len(report.items)} evidence file(s) below are "
            "exactly the files that were catalogued: the same size and the same digests. "
            "Every record about them is signed, and the records are linked so that none can "
            "be changed, removed or reordered without detection.</p>"
        )
    else:
        w(
            f"<p><b>{len(errors)} integrity finding(s).</b> Something in this "
            f"{_e(report.kind)} is not as it was recorded; each finding is listed under "
            "&ldquo;Checks performed&rdquo; and beside the item it concerns.</p>"
        )
    stamped = sorted(str(t["gen_time"]) for t in report.timestamps)
    if stamped:
        w(
            f"<p>Trusted time: {len(stamped)} RFC 3161 timestamp token(s) prove the records "
            f"existed by {_e(stamped[0])} (earliest); tokens were "
            f"{_e(trust_words(report.timestamp_trust))}.</p>"
        )
    else:
        w("<p>No trusted timestamp is available: the times shown come from the "
          "cataloguing computer's clock only.</p>")  # fmt: skip
    if warnings:
        w(f'<p class="warn">{len(warnings)} warning(s): see &ldquo;Checks performed&rdquo;.</p>')
    if report.checkpoint:
        cp = report.checkpoint
        w(
            f'<p class="small">Ledger of {_e(report.ledger_size)} records; checkpoint record '
            f"{_e(cp.get('record'))} commits to the first {_e(cp.get('tree_size'))} records with "
            f'Merkle root <span class="hash">{_e(cp.get("root"))}</span>.</p>'
        )
    w("</section>")


def _overview(report: Report, w: Any) -> None:
    w("<h2>Items in this report</h2>")
    if report.selection:
        w(
            f'<p class="small">This report describes only {_t(report.selection)}. The '
            f"verification and its verdict cover the whole {_e(report.kind)}.</p>"
        )
    w('<table class="fixed"><colgroup><col style="width:5%"><col style="width:27%">'
      '<col style="width:13%"><col style="width:15%"><col style="width:26%">'
      '<col style="width:14%"></colgroup>')  # fmt: skip
    w("<thead><tr><th>#</th><th>Name</th><th>Type</th><th>Size</th>"
      "<th>SHA-256</th><th>State</th></tr></thead><tbody>")  # fmt: skip
    for number, item in enumerate(report.items, 1):
        if not item.intact:
            state = '<span class="fail">NOT INTACT</span>'
        elif any(f.severity == "error" for f in item.findings):
            state = '<span class="fail">records in doubt</span>'
        else:
            state = '<span class="pass">intact</span>'
        w(
            f"<tr><td>{number}</td><td>{_t(item.name)}</td><td>{_e(item.mime or 'unknown')}</td>"
            f'<td>{_e(_size(item.size))}</td><td class="hash">{_e(item.digests["sha256"])}</td>'
            f"<td>{state}</td></tr>"
        )
    w("</tbody></table>")
    if report.withheld_events:
        listing = ", ".join(str(int(e.get("record", -1))) for e in report.withheld_events)
        w(
            f'<p class="small">Withheld from this bundle: event record(s) {_e(listing)}, '
            "which also name items outside it (selective disclosure). The sender can provide "
            "them; nothing about the items withheld is in the bundle.</p>"
        )


WITHHELD = (
    "withheld to protect the people who collected it: the signed record commits to the "
    "value (a salted SHA-256), which the sender can disclose to the court"
)


def _row(label: str, value_html: str) -> str:
    return f"<tr><th>{_e(label)}</th><td>{value_html}</td></tr>"


def _item(item: ReportItem, number: int, total: int, w: Any) -> None:
    w(f'<section class="item" id="item-{item.seq}">')
    w('<div class="item-head"><div class="facts-wrap">')
    w(f"<h3>Item {number} of {total}: {_t(item.name)}</h3>")
    w('<table class="facts">')
    w(_row("Path", _path(item.path)))
    w(_row("Size", _e(_size(item.size))))
    w(_row("Type", _e(item.mime or "unknown (exiftool could not tell)")))
    for algorithm in sorted(item.digests, key=lambda a: (a != "sha256", a)):
        w(_row(algorithm.upper(), f'<span class="hash">{_e(item.digests[algorithm])}</span>'))
    errors = any(f.severity == "error" for f in item.findings)
    cls = "fail" if not item.intact or errors else "warn" if item.findings else "pass"
    w(_row("State", f'<span class="{cls}">{_e(item.status)}</span>'))
    w(_row("Ledger record", f"record {item.seq}"))
    w("</table></div>")
    w("<figure>")
    if item.thumbnail.data_uri:
        w(f'<img src="{_e(item.thumbnail.data_uri)}" alt="{_e("picture of " + item.name)}">')
    else:
        w(f'<div class="none">{_e(item.thumbnail.note)}</div>')
    if item.thumbnail.data_uri:
        w(f"<figcaption>{_e(item.thumbnail.note)}</figcaption>")
    w("</figure></div>")
    w("<p><b>What the file itself claims</b> (metadata written by the device; not verified)</p>")
    w('<table class="facts">')
    w(_row("Time of capture claimed", _t(item.capture_time) if item.capture_time else "none"))
    w(_row("GPS position", _e(_gps_text(item.gps)) if item.gps else "none"))
    w(_row("Device", _t(item.device) if item.device else "not recorded"))
    if "image_size" in item.highlights:
        size = str(item.highlights["image_size"]).replace(" ", " × ").replace("x", " × ")
        w(_row("Picture size (pixels)", _e(size)))
    if "duration_s" in item.highlights:
        w(_row("Duration", f"{_e(item.highlights['duration_s'])} s"))
    w("</table>")
    _provenance(item, w)
    w("<p><b>Who collected it, and when it was catalogued</b></p>")
    w('<table class="facts">')
    for label, value in (("Collector", item.collector), ("Source", item.source),
                         ("Location (as told)", item.location), ("Note", item.note)):  # fmt: skip
        held_back = label == "Collector" and "collector" in item.withheld
        w(_row(label, _t(value) if value else WITHHELD if held_back else "not recorded"))
    if {"source_path", "volume"} & set(item.withheld):
        w(_row("Copied from", WITHHELD))
    if item.tags:
        w(_row("Tags", ", ".join(_t(t) for t in item.tags)))
    if item.acquired_from:
        w(_row("Copied from", _t(item.acquired_from, cls="mono")))
    w(_row("Catalogued (UTC, cataloguing computer's clock)",
           f"{_e(item.catalogued)} by {_t(item.catalogued_by)}"))  # fmt: skip
    if item.timestamps:
        stamps = "<br>".join(
            f"{_e(t['gen_time'])} from {_t(t['tsa'], cls='mono')} (token record {_e(t['record'])},"
            f" over checkpoint {_e(t['checkpoint'])})"
            for t in item.timestamps
        )
    else:
        stamps = "none: no trusted timestamp covers this record"
    w(_row("Trusted timestamps covering it", stamps))
    if item.clock and item.clock.get("flags"):
        w(_row("Clock questions", '<span class="warn">'
               + _e(", ".join(item.clock["flags"])) + "</span>"))  # fmt: skip
    w("</table>")
    for finding in item.findings:
        cls = "warn" if finding.severity == "warning" else "fail"
        w(f'<p class="{cls}">{_e(finding.code)}: {_t(finding.message)}</p>')
    w("<p><b>Custody events, in ledger order</b></p>")
    w(
        '<table class="fixed"><colgroup><col style="width:8%"><col style="width:22%">'
        '<col style="width:12%"><col style="width:16%"><col style="width:42%"></colgroup>'
    )
    w("<thead><tr><th>Record</th><th>Time (UTC)</th><th>What</th><th>By</th>"
      "<th>Detail</th></tr></thead><tbody>")  # fmt: skip
    for entry in item.events:
        w(
            f"<tr><td>{entry.seq}</td><td>{_e(entry.time)}</td><td>{_e(entry.kind)}</td>"
            f"<td>{_t(entry.signer_name)}</td><td>{_t(entry.summary)}</td></tr>"
        )
    w("</tbody></table></section>")


def _provenance(item: ReportItem, w: Any) -> None:
    """What the item's sources say of it: their claims, labelled as theirs, and custody's
    checks of their own proofs (at intake, and re-run by verify for this report)."""
    for source in item.provenance:
        summary = str(source["summary"])
        w(f"<p><b>{_t(summary[:1].upper() + summary[1:])}</b> (what the source says is its "
          "claim; custody's own checks are named as such)</p>")  # fmt: skip
        w('<table class="facts">')
        for fact in source["facts"]:
            w(_row(str(fact["label"]), _t(fact["value"])))
        for check in source.get("rechecks", []):
            cls = {"passed": "pass", "failed": "fail"}.get(str(check["now"]), "warn")
            state = f'<span class="{cls}">{_e(check["now"])}</span>'
            w(_row(f"Re-checked now: {check['check']}", f"{state} {_t(check['detail'])}"))
        w("</table>")


def _checks(report: Report, w: Any) -> None:
    w("<h2>Checks performed and their results</h2>")
    w(
        '<table class="fixed"><colgroup><col style="width:17%"><col style="width:9%">'
        '<col style="width:10%"><col style="width:64%"></colgroup>'
    )
    w("<thead><tr><th>Check</th><th>Result</th><th>Covered</th><th>What was checked</th>"
      "</tr></thead><tbody>")  # fmt: skip
    for check in report.checks:
        mark = (
            '<span class="pass">pass</span>' if check.passed else '<span class="fail">FAIL</span>'
        )
        w(f"<tr><td>{_e(check.name)}</td><td>{mark}</td><td>{check.covered}</td>"
          f"<td>{_t(check.detail)}</td></tr>")  # fmt: skip
    w("</tbody></table>")
    if not report.findings:
        w("<p>No finding: nothing is missing, changed, unexpected or unsigned.</p>")
        return
    w("<p><b>Findings</b></p>")
    w(
        '<table class="fixed"><colgroup><col style="width:23%"><col style="width:11%">'
        '<col style="width:14%"><col style="width:26%"><col style="width:13%">'
        '<col style="width:13%"></colgroup>'
    )
    w("<thead><tr><th>Finding</th><th>Severity</th><th>Concerning</th><th>Detail</th>"
      "<th>Expected</th><th>Found</th></tr></thead><tbody>")  # fmt: skip
    for f in report.findings:
        cls = "warn" if f.severity == "warning" else "fail"
        w(
            f'<tr><td class="{cls}">{_e(f.code)}</td><td>{_e(f.severity)}</td>'
            f"<td>{_t(f.item)}</td><td>{_t(f.message)}</td>"
            f'<td class="hash">{_e(f.expected or "")}</td><td class="hash">{_e(f.found or "")}</td>'
            "</tr>"
        )
    w("</tbody></table>")


def _keys_and_tsas(report: Report, w: Any) -> None:
    w("<h2>Keys and timestamp authorities relied on</h2>")
    w(
        "<p>Each record is signed with an Ed25519 key. A key is identified by its fingerprint "
        "(the SHA-256 of the public key); compare these fingerprints with the ones the "
        "signers published or gave you independently.</p>"
    )
    w("<table><thead><tr><th>Name</th><th>Role</th><th>Fingerprint</th><th>Records signed</th>"
      "<th>Status</th><th>Trusted because</th></tr></thead><tbody>")  # fmt: skip
    for key in report.keys:
        name = f"{key.name} ({key.holder})" if key.holder and key.holder != key.name else key.name
        because = "<br>".join(_e(step) for step in key.trusted_because) or "not confirmed"
        w(
            f"<tr><td>{_t(name)}</td><td>{_e(key.role)}</td>"
            f'<td class="hash">{_e(_grouped(key.fingerprint))}</td>'
            f"<td>{_e(key.records if key.records is not None else '')}</td>"
            f"<td>{_e(key.status)}</td><td>{because}</td></tr>"
        )
    w("</tbody></table>")
    if report.trust:
        w("<p><b>What the preparer trusted</b></p><ul>")
        for line in report.trust:
            w(f"<li>{_t(line)}</li>")
        w("</ul>")
    if not report.tsas:
        w("<p>No timestamp authority was used.</p>")
        return
    w("<table><thead><tr><th>Timestamp authority</th><th>Tokens</th><th>Signing certificate</th>"
      "<th>How the tokens were checked</th></tr></thead><tbody>")  # fmt: skip
    for tsa in report.tsas:
        cert = (
            f"{_t(tsa.certificate_subject)}<br>SHA-256 "
            f'<span class="hash">{_e(tsa.certificate_sha256)}</span>'
            if tsa.certificate_subject
            else "not readable from the token"
        )
        trust = trust_words(tsa.trust) if tsa.trust in ("roots", "embedded") else tsa.trust
        w(
            f"<tr><td>{_t(tsa.name)}<br>{_t(tsa.url, cls='mono')}</td>"
            f"<td>{tsa.tokens} ({_e(', '.join(tsa.gen_times))})</td><td>{cert}</td>"
            f"<td>{_e(trust)}</td></tr>"
        )
    w("</tbody></table>")


def _long_term(report: Report, w: Any) -> None:
    """RFC 4998 evidence records: each chain of archive timestamps, its algorithms, and
    when it must next be renewed (custody.timestamps.longterm_check rows)."""
    if not report.evidence_records:
        return
    w("<h2>Long-term evidence (RFC 4998 evidence records)</h2>")
    w(
        "<p>A timestamp stays convincing only while its authority's certificate is valid. "
        "Before that ends, a newer timestamp is taken over the older ones (renewal), and "
        "before a hash algorithm weakens, everything is hashed again with a stronger one "
        "(migration). Each row is one evidence record: the checkpoints it keeps proven in "
        "time, its chain of archive timestamps, oldest first, and the date by which it must "
        "be renewed again.</p>"
    )
    w("<table><thead><tr><th>Evidence record</th><th>Checkpoints</th><th>Status</th>"
      "<th>Chain of archive timestamps (algorithm, time, authority, valid until)</th>"
      "<th>Renew before</th></tr></thead><tbody>")  # fmt: skip
    for row in report.evidence_records:
        links = []
        for number, chain in enumerate(row.get("chains", []), 1):
            for ats in chain.get("timestamps", []):
                links.append(
                    f"{_e(number)}. {_e(chain.get('algorithm'))} {_e(ats.get('gen_time'))} "
                    f"{_t(ats.get('tsa') or '')} (valid until {_e(ats.get('valid_until'))})"
                )
        status = str(row.get("status"))
        cls = {"valid": "pass", "renewal due": "warn"}.get(status, "fail")
        w(
            f"<tr><td>{_t(str(row.get('file') or row.get('label')))}</td>"
            f"<td>{_e(', '.join(str(c) for c in row.get('checkpoints', [])))}</td>"
            f'<td class="{cls}">{_e(status)}</td><td>{"<br>".join(links)}</td>'
            f"<td>{_e(row.get('renew_before') or '')}</td></tr>"
        )
    w("</tbody></table>")
    w(
        '<p class="small">Chain 1 holds the first archive timestamp and its renewals; a '
        "further chain is a migration to a stronger hash algorithm. An expert checks each "
        "record with Bouncy Castle (org.bouncycastle.tsp.ers) or by hand; see custody's "
        "docs/long-term.md.</p>"
    )


def _reproduce(report: Report, w: Any) -> None:
    w("<h2>How to reproduce each check</h2>")
    w(
        f"<p>This report was made by {_e(report.tool)}. Every check can be repeated "
        "independently with standard tools (coreutils, OpenSSL, Python 3, bagit-python), "
        "without custody, by running these commands in a shell:</p>"
    )
    for command in report.reproduce:
        w(f'<div class="cmd"><p class="small">{_t(command.purpose)}</p>')
        w(f"<pre>{_e(command.command)}</pre></div>")


def trust_words(mode: str) -> str:
    return (
        "checked against the TSA root certificates the verifier supplied"
        if mode == "roots"
        else "checked only against the certificates inside each token (weaker: anyone can "
        "make a root certificate; supply the TSA's root to establish whose timestamps these are)"
    )


def _grouped(fingerprint: str) -> str:
    return " ".join(fingerprint[i : i + 4] for i in range(0, len(fingerprint), 4))
