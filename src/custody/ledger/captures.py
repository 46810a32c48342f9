"""The web capture that an ``event`` of action ``capture`` carries: its checks and its summary.

``custody capture`` records each capture as one ``event`` whose ``items`` are every file of
the capture folder (the WACZ, screenshot, PDF, media, yt-dlp's info JSON and
``capture.json``) and whose ``capture`` member is the ``custody-web-capture/1`` account
the capture engine wrote (``acquisition/capture/result.py``: ``CaptureResult.to_record()``,
byte for byte the JSON of the folder's ``capture.json``). docs/capture.md describes it.

``check_capture_event`` holds the account to what verification and display rely on, and
raises ``RecordError`` (so ``verify`` reports RECORD_MALFORMED) when it does not: the format
string this custody knows, an outcome from the known list, the requested URL, the times,
every listed file (a plain relative path, its role, SHA-256 and size, each path once), every
media file listed among the files with the same digest, the TLS section's certificate
digests, and - the capture's own rule - that the event names exactly ``capture.json`` and
every listed file of its ``folder``, each with the listed SHA-256. Members it does not
rely on are type-checked only where the summary reads them; unknown top-level members are
refused, so a later format change cannot pass as this one.

``capture_summary`` is the plain-data view for people (``show``, ``history``, the report):
URLs, outcome, server address, TLS chain subjects and digests, the insecure flag, media with
their WARC record ids, and what could not be had.

Imports only ``custody.errors``, ``custody.clock``, ``custody.i18n`` and ``ledger.fields``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from custody.clock import check_time
from custody.errors import RecordError
from custody.i18n import _, ngettext
from custody.ledger.fields import HEX64

CAPTURE_FORMAT = "custody-web-capture/1"

# acquisition/capture/result.py documents each; the last three come only with a failure.
CAPTURE_OUTCOMES = frozenset(
    {
        "complete",
        "unsettled",
        "timed-out",
        "http-error",
        "no-document",
        "refused-tls",
        "network-error",
        "browser-error",
    }
)

# Outcomes after which the page is not captured: the attempt is recorded, not the page.
FAILED_OUTCOMES = frozenset({"no-document", "refused-tls", "network-error", "browser-error"})

_REQUIRED = frozenset(
    {"format", "outcome", "requested_url", "started_at", "ended_at", "timeout_ms", "insecure",
     "tls", "files"}
)
_ALLOWED = _REQUIRED | {
    "error", "trust_anchors_sha256", "final_url", "title", "http_status", "redirects",
    "script_moved", "main_document", "packaged_at", "timed_out", "settled",
    "navigation_error", "user_agent", "tools", "browser", "media", "media_misses",
    "exchanges", "warc", "notes",
}
_FILE_FIELDS = frozenset({"path", "role", "sha256", "bytes"})
RECORD_FILE = "capture.json"
_W = "event capture"


def _fail(message: str) -> RecordError:
    return RecordError(f"{_W}: {message}")


def _typed(obj: Mapping[str, Any], name: str, kinds: tuple[type, ...], *, null: bool = False
           ) -> Any:
    value = obj.get(name)
    if value is None and (null or name not in obj):
        return None
    if not isinstance(value, kinds) or (value.__class__ is bool and bool not in kinds):
        raise _fail(_("field {name!r} has the wrong type").format(name=name))
    return value


def _hex(value: Any, what: str) -> str:
    if not isinstance(value, str) or not HEX64.fullmatch(value):
        raise _fail(_("{what} is not 64 lowercase hex digits").format(what=what))
    return value


def _count(value: Any, what: str) -> int:
    if value.__class__ is not int or value < 0:
        raise _fail(_("{what} is not a count").format(what=what))
    return int(value)


def _strings(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(_("{what} must be a list of strings").format(what=what))
    return value


def plain_path(path: str) -> bool:
    """A relative '/'-separated path with no empty, '.' or '..' segment."""
    parts = path.split("/")
    return bool(path) and not path.startswith("/") and all(p not in ("", ".", "..") for p in parts)


def _dicts(obj: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
    value = _typed(obj, name, (list,)) or []
    if not all(isinstance(v, dict) for v in value):
        raise _fail(_("every entry of {name!r} must be an object").format(name=name))
    return list(value)


def check_capture_event(folder: str, capture: Any, items: Iterable[tuple[str, str]]) -> None:
    """Raise RecordError unless ``capture`` is a well-formed account and ``items`` (each
    ``(path, sha256)`` as the event names it) are exactly its files inside ``folder``."""
    if not plain_path(folder) or folder.split("/")[0] == ".custody":
        raise RecordError(_("event: 'folder' must be a plain relative path inside the root"))
    if not isinstance(capture, dict):
        raise _fail(_("must be an object"))
    if capture.get("format") != CAPTURE_FORMAT:
        raise _fail(
            _(
                "format {format!r} is not {expected!r} (made by a newer custody? upgrade custody)"
            ).format(format=capture.get("format"), expected=CAPTURE_FORMAT)
        )
    missing = _REQUIRED - capture.keys()
    if missing:
        raise _fail(_("missing field(s) {names}").format(names=", ".join(sorted(missing))))
    extra = capture.keys() - _ALLOWED
    if extra:
        raise _fail(_("unknown field(s) {names}").format(names=", ".join(sorted(extra))))
    if capture["outcome"] not in CAPTURE_OUTCOMES:
        raise _fail(_("unknown outcome {outcome!r}").format(outcome=capture["outcome"]))
    _typed(capture, "requested_url", (str,))
    for name in ("final_url", "title", "error", "navigation_error", "user_agent"):
        _typed(capture, name, (str,), null=True)
    for name in ("insecure", "script_moved", "timed_out", "settled"):
        _typed(capture, name, (bool,))
    for name in ("started_at", "ended_at", "packaged_at"):
        moment = _typed(capture, name, (str,))
        if moment is not None:
            try:
                check_time(moment, utc=True)
            except ValueError as exc:
                raise _fail(str(exc)) from None
    _count(capture["timeout_ms"], "timeout_ms")
    if capture.get("http_status") is not None:
        _count(capture["http_status"], "http_status")
    if capture.get("trust_anchors_sha256") is not None:
        _hex(capture["trust_anchors_sha256"], "trust_anchors_sha256")
    files = _check_files(capture)
    _check_media(capture, files)
    _check_tls(capture)
    for miss in _dicts(capture, "media_misses"):
        for name in ("url", "tool", "error"):
            _typed(miss, name, (str,))
    _strings(capture.get("notes", []), "notes")
    main = _typed(capture, "main_document", (dict,), null=True)
    if main is not None:
        _typed(main, "server_ip", (str,), null=True)
        _typed(main, "url", (str,))
    for name in ("tools", "browser", "exchanges", "warc"):
        _typed(capture, name, (dict,))
    _typed(capture, "redirects", (list,))
    _check_items(folder, files, items)


def _check_files(capture: Mapping[str, Any]) -> dict[str, str]:
    files: dict[str, str] = {}
    for entry in _dicts(capture, "files"):
        if entry.keys() != _FILE_FIELDS:
            raise _fail(_("a file entry has exactly path, role, sha256 and bytes"))
        path = entry["path"]
        if not isinstance(path, str) or not plain_path(path) or path == RECORD_FILE:
            raise _fail(_("file path {path!r} is not a plain relative path").format(path=path))
        if path in files:
            raise _fail(_("file {path!r} is listed twice").format(path=path))
        if not isinstance(entry["role"], str):
            raise _fail(_("a file's role must be a string"))
        files[path] = _hex(entry["sha256"], f"the sha256 of {path!r}")
        _count(entry["bytes"], f"the size of {path!r}")
    return files


def _check_media(capture: Mapping[str, Any], files: Mapping[str, str]) -> None:
    for media in _dicts(capture, "media"):
        path = media.get("path")
        if not isinstance(path, str) or files.get(path) != _hex(media.get("sha256"), "media"):
            raise _fail(
                _("media {path!r} is not among the files with that sha256").format(path=path)
            )
        _strings(media.get("warc_record_ids"), "a media file's warc_record_ids")
        _strings(media.get("urls"), "a media file's urls")
        _typed(media, "match", (str,))


def _check_tls(capture: Mapping[str, Any]) -> None:
    for origin in _dicts(capture, "tls"):
        _typed(origin, "host", (str,))
        probe = _typed(origin, "probe", (dict,), null=True)
        if probe is None:
            continue
        _typed(probe, "verified", (bool,))
        for cert in _dicts(probe, "chain"):
            _hex(cert.get("sha256"), "a certificate's sha256")
            _typed(cert, "subject", (str,))


def _check_items(folder: str, files: Mapping[str, str], items: Iterable[tuple[str, str]]
                 ) -> None:
    named: dict[str, str] = {}
    for path, sha256 in items:
        if path in named:
            raise RecordError(_("event: a capture names {path!r} twice").format(path=path))
        named[path] = sha256
    expected = {f"{folder}/{path}": sha for path, sha in files.items()}
    record = f"{folder}/{RECORD_FILE}"
    if record not in named:
        raise RecordError(
            _("event: a capture names its record {record!r} as an item").format(record=record)
        )
    del named[record]
    if named.keys() != expected.keys():
        odd = sorted(named.keys() ^ expected.keys())
        raise RecordError(
            _("event: the capture's items are not the files it lists: {path!r}").format(path=odd[0])
        )
    for path, sha256 in named.items():
        if expected[path] != sha256:
            raise RecordError(
                _("event: item {path!r} has another sha256 than the capture lists").format(
                    path=path
                )
            )


# --- for people ---------------------------------------------------------------------------


def capture_summary(capture: Mapping[str, Any]) -> dict[str, Any]:
    """The facts a person checks first, from a capture already checked by
    ``check_capture_event``."""
    main = capture.get("main_document") or {}
    tls = []
    for origin in capture.get("tls") or []:
        probe = origin.get("probe") or {}
        tls.append({
            "host": origin.get("host"),
            "port": origin.get("port"),
            "verified": probe.get("verified"),
            "verify_error": probe.get("verify_error"),
            "chain": [{"subject": c.get("subject"), "sha256": c.get("sha256")}
                      for c in probe.get("chain") or []],
            "probe_matches_recording": origin.get("probe_matches_recording"),
        })
    return {
        "outcome": capture.get("outcome"),
        "requested_url": capture.get("requested_url"),
        "final_url": capture.get("final_url"),
        "http_status": capture.get("http_status"),
        "title": capture.get("title"),
        "error": capture.get("error"),
        "server_ip": main.get("server_ip"),
        "server_port": main.get("server_port"),
        "redirects": [
            {"url": r.get("url"), "status": r.get("status"), "location": r.get("location")}
            for r in capture.get("redirects") or [] if isinstance(r, dict)
        ],
        "tls": tls,
        "insecure": capture.get("insecure"),
        "started_at": capture.get("started_at"),
        "ended_at": capture.get("ended_at"),
        "user_agent": capture.get("user_agent"),
        "tools": dict(capture.get("tools") or {}),
        "warc_sha256": (capture.get("warc") or {}).get("sha256"),
        "media": [
            {"path": m.get("path"), "sha256": m.get("sha256"), "match": m.get("match"),
             "source": m.get("source"), "warc_record_ids": list(m.get("warc_record_ids") or [])}
            for m in capture.get("media") or []
        ],
        "media_misses": [dict(m) for m in capture.get("media_misses") or []],
        "notes": list(capture.get("notes") or []),
    }


def capture_lines(summary: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``capture_summary`` as labelled lines of text, in the order a person reads them (in the
    run's language; the values are the capture's own)."""
    rows: list[tuple[str, str]] = [(_("requested"), str(summary["requested_url"]))]
    status = summary.get("http_status")
    rows.append(
        (
            _("outcome"),
            str(summary["outcome"]) + (f" (HTTP {status})" if status is not None else ""),
        )
    )
    if summary.get("error"):
        rows.append((_("error"), str(summary["error"])))
    if summary.get("final_url"):
        rows.append((_("final URL"), str(summary["final_url"])))
    for hop in summary.get("redirects") or []:
        rows.append((_("redirect"), f"{hop['status']} {hop['url']} -> {hop['location']}"))
    if summary.get("server_ip"):
        port = summary.get("server_port")
        address = str(summary["server_ip"])
        if port:
            address = _("{address} port {port}").format(address=address, port=port)
        rows.append((_("server"), address))
    for origin in summary.get("tls") or []:
        verified = origin.get("verified")
        if verified:
            state = _("verified")
        elif verified is False:
            state = _("NOT verified ({why})").format(why=origin.get("verify_error"))
        else:
            state = _("not probed")
        same = origin.get("probe_matches_recording")
        if same is not None:
            state += "; " + (
                _("the recorded connections presented this chain")
                if same
                else _("the recorded connections presented ANOTHER chain")
            )
        rows.append((f"TLS {origin['host']}:{origin['port']}", state))
        for number, cert in enumerate(origin.get("chain") or []):
            rows.append(("  " + _("cert {number}").format(number=number), str(cert["subject"])))
            rows.append(("    sha256", str(cert["sha256"])))
    rows.append(
        (
            _("insecure"),
            _("YES: the server's certificate was not required to verify")
            if summary.get("insecure")
            else _("no"),
        )
    )
    rows.append(
        (
            _("captured"),
            _("{start} to {end}").format(start=summary["started_at"], end=summary["ended_at"]),
        )
    )
    if summary.get("user_agent"):
        rows.append((_("user agent"), str(summary["user_agent"])))
    if summary.get("warc_sha256"):
        rows.append(("WARC sha256", str(summary["warc_sha256"])))
    for media in summary.get("media") or []:
        rows.append((_("media"), f"{media['path']} ({media['source']}, {media['match']})"))
        rows.append(("  sha256", str(media["sha256"])))
        for record_id in media["warc_record_ids"] or ["none"]:
            rows.append(("  WARC id", str(record_id)))
    for miss in summary.get("media_misses") or []:
        rows.append(
            (_("media missed"), f"{miss.get('url')}: {miss.get('tool')}: {miss.get('error')}")
        )
    for note in summary.get("notes") or []:
        rows.append((_("note"), note))
    return rows


def summary_line(summary: Mapping[str, Any]) -> str:
    """One sentence for a person: what was captured, from where, how it went (its clauses in
    the run's language)."""
    status = summary.get("http_status")
    text = _("web capture of {url}: {outcome}").format(
        url=summary["requested_url"], outcome=summary["outcome"]
    )
    if status is not None:
        text += f" (HTTP {status})"
    if summary.get("final_url") and summary["final_url"] != summary["requested_url"]:
        text += ", " + _("ended at {url}").format(url=summary["final_url"])
    if summary.get("server_ip"):
        text += ", " + _("server {address}").format(address=summary["server_ip"])
    if summary.get("insecure"):
        text += ", " + _("INSECURE: certificate not verified")
    media, misses = summary.get("media") or [], summary.get("media_misses") or []
    text += "; " + ngettext("{n} media file(s)", "{n} media file(s)", len(media)).format(
        n=len(media)
    )
    if misses:
        text += ", " + ngettext("{n} missed", "{n} missed", len(misses)).format(n=len(misses))
    if summary.get("error"):
        text += f"; {summary['error']}"
    return text
