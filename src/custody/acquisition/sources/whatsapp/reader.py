"""``read_whatsapp_export``: a folder, a zip (through ``SafeZip``) or the chat ``.txt``; the
chat file chosen, decoded and measured; the messages built into a ``ChatExport``."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from custody.acquisition.sources.claims import (
    ChatExportError,
    ExportFile,
    FolderRoot,
    Problem,
    has_bidi_control,
)
from custody.acquisition.sources.safezip import SafeZip
from custody.acquisition.sources.said import Said
from custody.acquisition.sources.whatsapp.formats import (
    _CHAT_FILE_NAMES,
    IOS_CHAT_FILE,
)
from custody.acquisition.sources.whatsapp.messages import (
    _attachment,
    _conversation,
    _decide_order,
    _Files,
    _message,
    _order_hint,
    _platform,
    _split_messages,
)
from custody.acquisition.sources.whatsapp.model import (
    ChatExport,
    ExportSource,
    ReadLimits,
    WhatsAppAttachment,
    WhatsAppMessage,
)
from custody.i18n import N_, _


def read_whatsapp_export(
    path: str | os.PathLike[str], *, limits: ReadLimits | None = None
) -> ChatExport:
    """Read a WhatsApp chat export: a folder, a ``.zip`` archive, or the chat ``.txt``.

    Raises ``ChatExportError`` (an ``InputError``) when it cannot be read at all, and
    ``UnsafeArchiveError`` for an archive no export tool would write. Everything else
    odd becomes a ``Problem`` in the result.
    """
    limits = limits or ReadLimits()
    given = Path(path)
    try:
        st = os.lstat(given)
    except OSError as exc:
        raise ChatExportError(
            _("cannot read {path}: {why}").format(path=given, why=exc.strerror)
        ) from None
    if stat.S_ISLNK(st.st_mode):
        raise ChatExportError(
            _("{path} is a symbolic link; give the export itself").format(path=given)
        )
    if stat.S_ISDIR(st.st_mode):
        with FolderRoot(given) as root:
            return _read_folder(root, given, None, limits)
    if not stat.S_ISREG(st.st_mode):
        raise ChatExportError(_("{path} is neither a folder nor a file").format(path=given))
    if _is_zip(given):
        with SafeZip(given, limits.zip) as archive:
            return _read_zip(archive, given, limits)
    if given.suffix.lower() == ".txt":
        with FolderRoot(given.parent) as root:
            return _read_folder(root, given, given.name, limits)
    raise ChatExportError(
        _("{path} is not a WhatsApp export: give the folder, the .zip or the chat .txt").format(
            path=given
        )
    )


def _is_zip(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError as exc:
        raise ChatExportError(
            _("cannot read {path}: {why}").format(path=path, why=exc.strerror)
        ) from None
    return head in (b"PK\x03\x04", b"PK\x05\x06") or path.suffix.lower() == ".zip"


def _choose_chat_file(names: Sequence[str], where: Path) -> tuple[str, list[Problem]]:
    """The chat text among ``names`` (paths in the export)."""
    base = {n: n.rsplit("/", 1)[-1] for n in names}
    known = [n for n, b in base.items() if b == IOS_CHAT_FILE] + [
        n for n, b in base.items() if any(p.fullmatch(b) for p in _CHAT_FILE_NAMES)
    ]
    if len(known) == 1:
        return known[0], []
    if len(known) > 1:
        raise ChatExportError(
            _("{path} holds several chat files ({names}); give one of them").format(
                path=where, names=", ".join(sorted(known))
            )
        )
    texts = [n for n, b in base.items() if b.lower().endswith(".txt")]
    if len(texts) == 1:
        return texts[0], [
            Problem(
                "CHAT_FILE_NAME_UNUSUAL",
                Said(N_("the chat file is not named as WhatsApp names it; read it as the chat")),
                texts[0],
            )
        ]
    if not texts:
        raise ChatExportError(
            _("no WhatsApp chat file ({name} or 'WhatsApp Chat with ….txt') in {path}").format(
                name=IOS_CHAT_FILE, path=where
            )
        )
    raise ChatExportError(
        _(
            "{path} holds several .txt files and none is named as a chat file; give the chat"
            " .txt itself"
        ).format(path=where)
    )


def _read_folder(
    root: FolderRoot, given: Path, chat_name: str | None, limits: ReadLimits
) -> ChatExport:
    names, problems = root.walk(recursive=False, max_entries=limits.max_folder_entries)
    if chat_name is None:
        chat_name, more = _choose_chat_file(names, given)
        problems += more
    elif chat_name not in names:
        raise ChatExportError(
            _("{path} is not a regular file inside its folder").format(path=given)
        )
    data = root.read_bytes(chat_name, limits.max_chat_bytes)
    files: dict[str, ExportFile] = {}
    for name in names:
        measured, why = root.hash_file(name)
        if measured is None:
            problems.append(
                Problem("UNREADABLE_FILE", Said(N_("not measured: {why}"), why=why), name)
            )
        else:
            files[name] = measured
    chat_file = _chat_file(chat_name, data, files.get(chat_name), given)
    kind: Literal["folder", "chat-file"] = "folder" if given.is_dir() else "chat-file"
    container_name = given.name if kind == "folder" else given.parent.name
    return _build(
        ExportSource(kind, os.fspath(given)),
        chat_file,
        data,
        files,
        "",
        container_name,
        problems,
    )


def _read_zip(archive: SafeZip, given: Path, limits: ReadLimits) -> ChatExport:
    problems = list(archive.problems)
    names = [m.name for m in archive.members]
    chat_name, more = _choose_chat_file(names, given)
    problems += more
    data = archive.read(chat_name, limits.max_chat_bytes)
    # Every member is read in full once, so damage anywhere is found now, not later.
    files = {name: archive.measure(name) for name in names}
    folder = chat_name.rsplit("/", 1)[0] + "/" if "/" in chat_name else ""
    return _build(
        ExportSource("zip", os.fspath(given), archive.measure_archive()),
        _chat_file(chat_name, data, files[chat_name], given),
        data,
        files,
        folder,
        given.name,
        problems,
    )


def _chat_file(name: str, data: bytes, measured: ExportFile | None, where: Path) -> ExportFile:
    """The chat file as parsed: its digest is of the very bytes read for parsing."""
    parsed = ExportFile(name, len(data), hashlib.sha256(data).hexdigest())
    if measured is not None and measured != parsed:
        raise ChatExportError(
            _("{name} in {path} changed while it was being read; read it again").format(
                name=name, path=where
            )
        )
    return parsed


def _decode(data: bytes, where: str) -> tuple[str, list[Problem]]:
    problems: list[Problem] = []
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ChatExportError(
            _("{name} is UTF-16 text; WhatsApp writes UTF-8 - was it re-saved?").format(name=where)
        )
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
        problems.append(
            Problem("BYTE_ORDER_MARK", Said(N_("the chat file begins with a UTF-8 BOM")), where)
        )
    try:
        return data.decode("utf-8"), problems
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ChatExportError(
            _(
                "{name} is not UTF-8 text (byte {byte} at line {line}); WhatsApp writes"
                " UTF-8 - was the file re-saved in another encoding?"
            ).format(name=where, byte=f"0x{data[exc.start]:02X}", line=line)
        ) from None


def _build(
    source: ExportSource,
    chat_file: ExportFile,
    data: bytes,
    files: dict[str, ExportFile],
    folder: str,
    container_name: str,
    problems: list[Problem],
) -> ChatExport:
    text, more = _decode(data, chat_file.path)
    problems += more
    # Only "\n" ends a line: str.splitlines would also split at U+2028, U+0085 and others
    # that may sit inside a message.
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    headers, bodies = _split_messages(lines, problems, chat_file.path)
    if not headers:
        raise ChatExportError(
            _(
                "{name}: no line reads as a WhatsApp message (date, time, then ' - ' or"
                " '[…] '); not a WhatsApp chat export this reader knows"
            ).format(name=chat_file.path)
        )
    order, candidates, reason, per_header = _decide_order(headers)
    if order is None and len(candidates) > 1:
        problems.append(
            Problem(
                "DATE_ORDER_AMBIGUOUS",
                Said(
                    N_(
                        "no date in the file decides between {orders}; every message carries"
                        " each reading"
                    ),
                    orders=" and ".join(candidates),
                ),
            )
        )
    elif not candidates:
        problems.append(Problem("DATE_ORDER_INCONSISTENT", reason))
    local = {
        p[len(folder) :]: f
        for p, f in files.items()
        if p.startswith(folder) and "/" not in p[len(folder) :]
    }
    local.pop(chat_file.path[len(folder) :], None)
    beside = _Files(local)
    messages: list[WhatsAppMessage] = []
    attachments: list[WhatsAppAttachment] = []
    for i, (h, body) in enumerate(zip(headers, bodies, strict=True)):
        message, found = _message(i, h, body, per_header[i], beside, problems, chat_file.path)
        messages.append(message)
        if found is not None:
            attachments.append(_attachment(message, found, beside, folder, problems))
    odd = [
        m.line for m in messages if any(not 2009 <= r.local_time.year <= 2100 for r in m.readings)
    ]
    if odd:
        problems.append(
            Problem(
                "YEAR_IMPLAUSIBLE",
                Said.ngettext(
                    "{n} message reads to a year WhatsApp (2009-) could not have written; is"
                    " the phone set to another calendar?",
                    "{n} messages read to a year WhatsApp (2009-) could not have written; is"
                    " the phone set to another calendar?",
                    len(odd),
                ),
                Said(N_("{file} line {line}"), file=chat_file.path, line=odd[0]),
            )
        )
    named = {a.file.path for a in attachments if a.file is not None}
    unnamed = tuple(f for p, f in sorted(files.items()) if p != chat_file.path and p not in named)
    for f in files.values():
        if has_bidi_control(f.path):
            problems.append(
                Problem(
                    "BIDI_CONTROL_IN_FILE_NAME",
                    Said(
                        N_(
                            "a file name holds a directional control character; it may display"
                            " as a different name"
                        )
                    ),
                    ascii(f.path),
                )
            )
    platform, platform_reason = _platform(headers, attachments, chat_file.path)
    conversation, named_from = _conversation(chat_file.path, container_name)
    return ChatExport(
        source=source,
        chat_file=chat_file,
        conversation_name=conversation,
        conversation_name_from=named_from,
        platform=platform,
        platform_reason=platform_reason,
        date_order=order,
        date_order_candidates=candidates,
        date_order_ambiguous=order is None and len(candidates) > 1,
        date_order_reason=reason,
        date_order_hint=_order_hint(messages, attachments) if len(candidates) > 1 else None,
        messages=tuple(messages),
        attachments=tuple(attachments),
        unnamed_files=unnamed,
        problems=tuple(problems),
    )
