"""The proof files: ``.proof.json`` (one JSON object per generation), ``.proof.csv``
(ProofMode's unquoted writer), and the ``.gst`` SafetyNet JWS (decoded, never verified)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from custody.acquisition.sources.proofmode.files import _File
from custody.acquisition.sources.proofmode.model import (
    _MAX_SMALL_FILE,
    PROOF_JSON,
    DeviceAttestation,
    ProofRecord,
)
from custody.acquisition.sources.said import Said
from custody.i18n import N_

# --- proof.json / proof.csv ----------------------------------------------------------------------


def _read_small(item: _File) -> bytes | None:
    if item.size > _MAX_SMALL_FILE:
        return None
    return item.disk.read_bytes()


def _parse_proof(
    item: _File, suffix: str, signature_ok: bool
) -> tuple[list[ProofRecord], Said | None]:
    raw = _read_small(item)
    if raw is None:
        return [], Said(N_("{size} bytes: too large for a proof file"), size=item.size)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return [], Said(N_("not UTF-8 text"))
    if suffix == PROOF_JSON:
        return _parse_json(item, text, signature_ok)
    return _parse_csv(item, text, signature_ok)


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("a key appears twice in one object")
    return dict(pairs)


def _parse_json(
    item: _File, text: str, signature_ok: bool
) -> tuple[list[ProofRecord], Said | None]:
    # One object per generation, each on its own line (the file is appended to).
    documents: list[object] = []
    try:
        documents.append(json.loads(text, object_pairs_hook=_reject_duplicates))
    except ValueError:
        documents = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                documents.append(json.loads(line, object_pairs_hook=_reject_duplicates))
            except (ValueError, RecursionError) as exc:
                return [], Said(N_("line {line} is not JSON ({why})"), line=number, why=str(exc))
    except RecursionError:
        return [], Said(N_("nested too deeply to be a ProofMode proof"))
    if not documents:
        return [], Said(N_("empty"))
    records = []
    for index, document in enumerate(documents):
        if not isinstance(document, dict):
            return [], Said(
                N_("record {number} is a JSON {type}, not an object"),
                number=index + 1,
                type=type(document).__name__,
            )
        fields = tuple(
            (str(k), v if isinstance(v, str) else json.dumps(v, ensure_ascii=False))
            for k, v in document.items()
        )
        records.append(ProofRecord(item.rel, "json", index, fields, signature_ok))
    return records, None


def _parse_csv(item: _File, text: str, signature_ok: bool) -> tuple[list[ProofRecord], Said | None]:
    # ProofMode's writer: keys joined by ",", a trailing ",", no quoting (it replaced the
    # commas inside values by spaces), so a plain split is the faithful reader.
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        return [], Said(N_("needs a header line and at least one line of values"))
    header = _csv_fields(lines[0])
    records: list[ProofRecord] = []
    for index, line in enumerate(lines[1:]):
        values = _csv_fields(line)
        if len(values) != len(header):
            return records, Said(
                N_("line {line} has {values} values for {columns} column names"),
                line=index + 2,
                values=len(values),
                columns=len(header),
            )
        records.append(
            ProofRecord(
                item.rel, "csv", index, tuple(zip(header, values, strict=True)), signature_ok
            )
        )
    return records, None


def _csv_fields(line: str) -> list[str]:
    parts = line.split(",")
    if parts and parts[-1] == "":
        parts.pop()
    return parts


# --- SafetyNet JWS -------------------------------------------------------------------------------


def _read_jws(item: _File) -> DeviceAttestation:
    raw = _read_small(item)
    if raw is None:
        return DeviceAttestation(item.rel, item.sha256, None, None, "too large for a JWS")
    try:
        parts = raw.decode("ascii").strip().split(".")
        if len(parts) != 3:
            raise ValueError("not three dot-separated parts")
        header = _b64_json(parts[0])
        payload = _b64_json(parts[1])
    except (ValueError, UnicodeDecodeError, binascii.Error, RecursionError) as exc:
        return DeviceAttestation(item.rel, item.sha256, None, None, f"not a JWS ({exc})")
    return DeviceAttestation(item.rel, item.sha256, header, payload, None)


def _b64_json(part: str) -> str:
    decoded = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    value = json.loads(decoded)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
