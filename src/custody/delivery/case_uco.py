"""The chain of custody as CASE/UCO JSON-LD (CASE 1.5 / UCO 1.5), for other forensic tools.

``case_document(ledger, seqs)`` turns what the ledger records about some items (or all of
them) into one JSON-LD document that ``case_validate`` (package ``case-utils``) accepts
at its default strictness. Nothing here verifies anything: the document states what the
ledger's records say, each node carrying the record number and line hash it came from so
a reader can check it against the ledger with ``custody verify``. Run verify first.

The mapping (docs/events.md, "CASE export", is the reference):

* **Files.** Every item record the export touches becomes a ``uco-observable:File`` with a
  ``FileFacet`` (file name, path relative to the evidence root, extension, size, mtime)
  and a ``ContentDataFacet`` (size, MIME type, ``uco-types:Hash`` nodes: SHA256, plus
  SHA512, SHA3-256, SHA1 and MD5 when the item recorded them). Each copy an event made is
  a File of its own (its absolute path, size and the SHA-256 read back from the written
  bytes); so is the source file an ingest read (its path and the SHA-256 computed while
  reading it). A derived working copy says ``case-investigation:wasDerivedFrom`` its
  original. Tags become ``uco-core:tag``.
* **BLAKE3** is not in UCO's HashNameVocab. ``hashMethod`` is an open vocabulary, but a
  value outside the list draws a SHACL ``sh:Info`` result, which ``case_validate`` counts
  as non-conformance unless run with ``--allow-infos``. So BLAKE3 is not written as a
  ``uco-types:Hash``: it goes in the file's ``custody:LedgerRecordFacet`` as
  ``custody:blake3`` (xsd:hexBinary), beside the record number and line hash. Nothing is
  dropped, and the export validates without relaxing the validator.
* **Actions.** Each ``item`` record is a ``case-investigation:InvestigativeAction`` named
  ``catalogue`` or ``ingest``; each ``event`` record one named after its action
  (``transfer``, ``access``, ``copy``, ``derive``, ``note``, ``dispose``, ``receive``).
  ``uco-action:performer`` is the identity of the key that signed the record,
  ``uco-action:instrument`` is custody itself (a ``uco-tool:Tool``), ``uco-action:object``
  the Files the record names (for an ingest: the source file), ``uco-action:result`` one
  ``case-investigation:ProvenanceRecord``. ``startTime`` and ``endTime`` are the record's
  time (the signer's clock when the record was made). A transfer's recipient is a
  ``uco-action:participant``: the identity of the key of that name if the ledger has one,
  else an identity named as the ``to`` text says. ``case-investigation:wasInformedBy``
  links each action to the latest earlier action on the same items, which threads the
  chain of custody item by item.
* **Provenance records.** One per action, over the items that result from it: the file
  catalogued; the items transferred, accessed, annotated or disposed of; the copies
  written; the working copy derived. ``exhibitNumber`` is ``custody-<record number>``,
  except for the cataloguing of an item that has an exhibit number (``custody exhibit
  assign``): then it is that number (``P-3``); ``rootExhibitNumber`` names the exhibit
  numbers of the items' cataloguing. The item's File also carries its exhibit number and
  the exhibit record in its ``custody:LedgerRecordFacet``.
* **Identities.** Each key introduced in the ledger is a ``uco-identity:Identity`` (custody
  cannot tell a person from an organisation) named as the key is, with a
  ``custody:SigningKeyFacet`` (fingerprint, public key, role, where it was introduced,
  what it replaces, where a revocation of it is recorded). Its role is a ``uco-role:Role``
  (``lawyer`` is a ``case-investigation:Attorney``) tied by a ``Has_Role``
  ``uco-core:Relationship``; a rotation is a ``Succeeds`` relationship from the new
  key's identity to the old one's.
* **The export itself** is a ``uco-core:Bundle`` holding every action, provenance record
  and identity, with the ledger's size and RFC 9162 root so the document is pinned to one
  state of the ledger; with case details in the root's config (``[case]`` ``name``/``id``)
  also a ``case-investigation:Investigation``. The case comes from the latest ``case``
  record (``custody case set``: name, number, court or mechanism, parties, in a
  ``custody:CaseFacet`` with the record number), else from the config's ``[case]`` table.

Identifiers are ``urn:uuid:`` UUIDv5s derived from the SHA-256 of the ledger line a node
comes from (or, for identities, from the key fingerprint), so the same ledger always
gives the same document, byte for byte, and a vault copy of the ledger gives the same
identifiers. Nodes are listed in ledger order.
"""

from __future__ import annotations

import json
import os
import posixpath
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from custody import __version__
from custody.encoding import b64encode
from custody.errors import CustodyError, UsageError
from custody.i18n import _, ngettext
from custody.ledger.bodies import CopyRef, EventBody, ItemBody, KeyBody, RevocationBody
from custody.ledger.disclosures import DisclosureStore, reveal
from custody.ledger.records import SignedRecord
from custody.ledger.store import Ledger

CUSTODY_NS = "https://custody.invalid/ns/case#"
_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, CUSTODY_NS)

CONTEXT: dict[str, str] = {
    "case-investigation": "https://ontology.caseontology.org/case/investigation/",
    "custody": CUSTODY_NS,
    "uco-action": "https://ontology.unifiedcyberontology.org/uco/action/",
    "uco-core": "https://ontology.unifiedcyberontology.org/uco/core/",
    "uco-identity": "https://ontology.unifiedcyberontology.org/uco/identity/",
    "uco-observable": "https://ontology.unifiedcyberontology.org/uco/observable/",
    "uco-role": "https://ontology.unifiedcyberontology.org/uco/role/",
    "uco-tool": "https://ontology.unifiedcyberontology.org/uco/tool/",
    "uco-types": "https://ontology.unifiedcyberontology.org/uco/types/",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}

# Ledger digest names -> UCO HashNameVocab. BLAKE3 has no entry (see the module docstring).
HASH_NAMES = {
    "sha256": "SHA256",
    "sha512": "SHA512",
    "sha3-256": "SHA3-256",
    "sha1": "SHA1",
    "md5": "MD5",
}
ROLE_TYPES = {"lawyer": "case-investigation:Attorney"}


def node_id(*parts: str) -> str:
    """A stable ``urn:uuid:`` identifier (UUIDv5) for the node named by ``parts``."""
    return "urn:uuid:" + str(uuid.uuid5(_ID_NAMESPACE, "/".join(parts)))


def _ref(identifier: str) -> dict[str, str]:
    return {"@id": identifier}


def _time(value: str) -> dict[str, str]:
    return {"@type": "xsd:dateTime", "@value": value}


def _hex(value: str) -> dict[str, str]:
    return {"@type": "xsd:hexBinary", "@value": value}


def _exhibit(seq: int, label: str | None = None) -> str:
    return label if label is not None else f"custody-{seq}"


def case_json(document: Mapping[str, Any]) -> str:
    """The document as text: stable member order, UTF-8 friendly, one trailing newline."""
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


class _Builder:
    """Collects nodes in ledger order, each once, and remembers the chain per item."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.nodes: dict[str, dict[str, Any]] = {}
        self.records: dict[int, SignedRecord] = {}
        self.keys: dict[str, tuple[int, KeyBody]] = {}  # fingerprint -> first introduction
        self.key_names: dict[str, str] = {}
        self.revoked: dict[str, list[tuple[int, str | None]]] = {}
        self.successors: list[tuple[str, str, int]] = []  # (new, old, seq)
        self.root_of: dict[int, int] = {}  # item seq -> seq of the cataloguing record
        self.last_action: dict[int, str] = {}  # item seq -> @id of the latest action on it
        self.actions: list[str] = []
        self.provenance: list[str] = []
        self.tool = node_id("tool", "custody", __version__)
        self.disclosed = DisclosureStore(ledger.root.state).known()
        from custody.handling.case import exhibit_book

        self.exhibits = exhibit_book(ledger)

    # --- records ------------------------------------------------------------------------

    def read(self, seq: int) -> SignedRecord:
        if seq not in self.records:
            self.records[seq] = self.ledger.read(seq)
        return self.records[seq]

    def add(self, node: dict[str, Any]) -> str:
        identifier: str = node["@id"]
        self.nodes.setdefault(identifier, node)
        return identifier

    # --- identities ---------------------------------------------------------------------

    def learn_keys(self) -> None:
        index = self.ledger.index
        for seq in index.records_of_type("key"):
            record = self.read(seq).record
            body = KeyBody.from_json(record.body)
            if body.fingerprint not in self.keys:
                self.keys[body.fingerprint] = (seq, body)
                self.key_names.setdefault(body.name, body.fingerprint)
                if body.replaces is not None and body.replaces == record.signer:
                    self.successors.append((body.fingerprint, body.replaces, seq))
        for seq in index.records_of_type("revocation"):
            revocation = RevocationBody.from_json(self.read(seq).record.body)
            self.revoked.setdefault(revocation.key, []).append((seq, revocation.reason))

    def identity(self, fingerprint: str) -> str:
        identifier = node_id("key", fingerprint)
        if identifier in self.nodes:
            return identifier
        known = self.keys.get(fingerprint)
        facet: dict[str, Any] = {
            "@id": node_id("key", fingerprint, "facet"),
            "@type": ["custody:SigningKeyFacet", "uco-core:Facet"],
            "custody:fingerprint": fingerprint,
        }
        if known is None:
            self.add(
                {
                    "@id": identifier,
                    "@type": "uco-identity:Identity",
                    "uco-core:name": f"unknown key {fingerprint[:16]}",
                    "uco-core:description": (
                        f"Ed25519 key {fingerprint}, which the ledger does not introduce"
                    ),
                    "uco-core:hasFacet": [facet],
                }
            )
            return identifier
        seq, body = known
        signer = self.read(seq).record.signer
        facet.update(
            {
                "custody:publicKey": b64encode(body.public_key),
                "custody:role": body.role,
                "custody:introducedAt": seq,
                "custody:introducedBy": signer,
            }
        )
        text = (
            f"holder of custody signing key {fingerprint} ({body.role}), introduced at record "
            f"{seq}" + (" by itself" if signer == fingerprint else f" by key {signer}")
        )
        if body.replaces is not None:
            facet["custody:replaces"] = body.replaces
            text += f"; successor of key {body.replaces}"
        revocations = self.revoked.get(fingerprint, [])
        if revocations:
            facet["custody:revocationRecordedAt"] = [s for s, _reason in revocations]
            text += "; revocation recorded at record " + ", ".join(
                f"{s}" + (f" ({reason})" if reason else "") for s, reason in revocations
            )
        self.add(
            {
                "@id": identifier,
                "@type": "uco-identity:Identity",
                "uco-core:name": body.name,
                "uco-core:description": text,
                "uco-core:hasFacet": [facet],
            }
        )
        role = self.add(
            {
                "@id": node_id("role", body.role),
                "@type": ROLE_TYPES.get(body.role, "uco-role:Role"),
                "uco-core:name": body.role,
            }
        )
        self.add(
            {
                "@id": node_id("key", fingerprint, "has-role"),
                "@type": "uco-core:Relationship",
                "uco-core:source": [_ref(identifier)],
                "uco-core:target": _ref(role),
                "uco-core:kindOfRelationship": "Has_Role",
                "uco-core:isDirectional": True,
            }
        )
        return identifier

    def recipient(self, name: str) -> str:
        fingerprint = self.key_names.get(name)
        if fingerprint is not None:
            return self.identity(fingerprint)
        return self.add(
            {
                "@id": node_id("recipient", name),
                "@type": "uco-identity:Identity",
                "uco-core:name": name,
                "uco-core:description": "received custody (named in a transfer event)",
            }
        )

    def link_successors(self) -> None:
        for new, old, seq in self.successors:
            if node_id("key", new) in self.nodes or node_id("key", old) in self.nodes:
                source, target = self.identity(new), self.identity(old)
                self.add(
                    {
                        "@id": node_id("key", new, "succeeds", old),
                        "@type": "uco-core:Relationship",
                        "uco-core:source": [_ref(source)],
                        "uco-core:target": _ref(target),
                        "uco-core:kindOfRelationship": "Succeeds",
                        "uco-core:isDirectional": True,
                        "uco-core:description": f"key rotation recorded at record {seq}",
                    }
                )

    # --- files --------------------------------------------------------------------------

    def item_file(self, seq: int) -> str:
        """The File an item record describes (added once)."""
        if not 0 <= seq < self.ledger.index.size:
            raise UsageError(
                _("an event names record {record}, which is not in the ledger").format(record=seq)
            )
        signed = self.read(seq)
        if signed.record.type != "item":
            raise UsageError(
                _("record {record} is a {type} record, not a catalogued item").format(
                    record=seq, type=signed.record.type
                )
            )
        line = signed.line_hash
        identifier = node_id(line, "file")
        if identifier in self.nodes:
            return identifier
        body: ItemBody = signed.record.typed_body()
        name = posixpath.basename(body.path)
        file_facet: dict[str, Any] = {
            "@id": node_id(line, "file-facet"),
            "@type": "uco-observable:FileFacet",
            "uco-observable:fileName": name,
            "uco-observable:filePath": body.path,
            "uco-observable:isDirectory": False,
            "uco-observable:sizeInBytes": body.size,
            "uco-observable:modifiedTime": _time(body.mtime),
        }
        extension = posixpath.splitext(name)[1]
        if len(extension) > 1:
            file_facet["uco-observable:extension"] = extension[1:]
        content: dict[str, Any] = {
            "@id": node_id(line, "content-facet"),
            "@type": "uco-observable:ContentDataFacet",
            "uco-observable:sizeInBytes": body.size,
            "uco-observable:hash": self.hashes(line, body.digests),
        }
        if body.mime:
            content["uco-observable:mimeType"] = body.mime
        ledger_facet: dict[str, Any] = {
            "@id": node_id(line, "ledger-facet"),
            "@type": ["custody:LedgerRecordFacet", "uco-core:Facet"],
            "custody:recordNumber": seq,
            "custody:recordSha256": _hex(line),
        }
        if "blake3" in body.digests:
            ledger_facet["custody:blake3"] = _hex(body.digests["blake3"])
        if body.path_bytes is not None:
            ledger_facet["custody:pathBytes"] = b64encode(body.path_bytes)
        if body.capture_time:
            ledger_facet["custody:claimedCaptureTime"] = body.capture_time
        exhibit = self.exhibits.by_item.get(seq)
        if exhibit is not None:
            ledger_facet["custody:exhibitNumber"] = exhibit.label
            ledger_facet["custody:exhibitRecord"] = exhibit.record
        node: dict[str, Any] = {
            "@id": identifier,
            "@type": "uco-observable:File",
            "uco-core:name": name,
            "uco-core:hasFacet": [file_facet, content, ledger_facet],
        }
        if body.tags:
            node["uco-core:tag"] = list(body.tags)
        return self.add(node)

    def hashes(self, owner: str, digests: Mapping[str, str]) -> list[dict[str, Any]]:
        found = []
        for algorithm in sorted(digests, key=lambda a: (a != "sha256", a)):
            method = HASH_NAMES.get(algorithm)
            if method is None:
                continue  # BLAKE3: in the ledger facet instead
            found.append(
                {
                    "@id": node_id(owner, "hash", algorithm),
                    "@type": "uco-types:Hash",
                    "uco-types:hashMethod": method,
                    "uco-types:hashValue": _hex(digests[algorithm]),
                }
            )
        return found

    def plain_file(self, owner: str, path: str, sha256: str, size: int | None) -> str:
        """A file outside the evidence root: a copy, or an ingest's source."""
        identifier = node_id(owner, "file")
        name = os.path.basename(path)
        file_facet: dict[str, Any] = {
            "@id": node_id(owner, "file-facet"),
            "@type": "uco-observable:FileFacet",
            "uco-observable:fileName": name,
            "uco-observable:filePath": path,
            "uco-observable:isDirectory": False,
        }
        content: dict[str, Any] = {
            "@id": node_id(owner, "content-facet"),
            "@type": "uco-observable:ContentDataFacet",
            "uco-observable:hash": self.hashes(owner, {"sha256": sha256}),
        }
        if size is not None:
            file_facet["uco-observable:sizeInBytes"] = size
            content["uco-observable:sizeInBytes"] = size
        return self.add(
            {
                "@id": identifier,
                "@type": "uco-observable:File",
                "uco-core:name": name,
                "uco-core:hasFacet": [file_facet, content],
            }
        )

    # --- actions ------------------------------------------------------------------------

    def action(
        self,
        signed: SignedRecord,
        name: str,
        description: str,
        objects: Sequence[str],
        items: Sequence[int],
        results: Sequence[str],
        result_items: Sequence[int],
        result_text: str,
        participants: Sequence[str] = (),
    ) -> str:
        record = signed.record
        line = signed.line_hash
        identifier = node_id(line, "action")
        provenance = node_id(line, "provenance")
        roots = sorted({self.root_of[i] for i in result_items if i in self.root_of})
        record_node: dict[str, Any] = {
            "@id": provenance,
            "@type": "case-investigation:ProvenanceRecord",
            "uco-core:description": result_text,
            "case-investigation:exhibitNumber": _exhibit(
                record.seq,
                self.exhibits.label_of(record.seq) if record.type == "item" else None,
            ),
            "uco-core:object": [_ref(r) for r in results],
        }
        if roots:
            record_node["case-investigation:rootExhibitNumber"] = [
                _exhibit(r, self.exhibits.label_of(r)) for r in roots
            ]
        informed = sorted({self.last_action[i] for i in items if i in self.last_action})
        node: dict[str, Any] = {
            "@id": identifier,
            "@type": "case-investigation:InvestigativeAction",
            "uco-core:name": name,
            "uco-core:description": description,
            "uco-action:startTime": _time(record.time),
            "uco-action:endTime": _time(record.time),
            "uco-action:performer": _ref(self.identity(record.signer)),
            "uco-action:instrument": [_ref(self.tool)],
        }
        if objects:
            node["uco-action:object"] = [_ref(o) for o in objects]
        if participants:
            node["uco-action:participant"] = [_ref(p) for p in participants]
        node["uco-action:result"] = [_ref(provenance)]
        if informed:
            node["case-investigation:wasInformedBy"] = [_ref(a) for a in informed]
        node["uco-core:hasFacet"] = [
            {
                "@id": node_id(line, "action-facet"),
                "@type": ["custody:LedgerRecordFacet", "uco-core:Facet"],
                "custody:recordNumber": record.seq,
                "custody:recordType": record.type,
                "custody:recordSha256": _hex(line),
                "custody:signer": record.signer,
            }
        ]
        self.add(node)
        self.add(record_node)
        self.actions.append(identifier)
        self.provenance.append(provenance)
        for item in (*items, *result_items):
            self.last_action[item] = identifier
        return identifier

    def item_action(self, seq: int) -> None:
        signed = self.read(seq)
        body: ItemBody = signed.record.typed_body()
        file_id = self.item_file(seq)
        self.root_of.setdefault(seq, seq)
        objects: list[str] = []
        values = reveal(body, self.disclosed)  # committed values, from this root's disclosures
        if body.acquisition is not None:
            name = "ingest"
            source_path = str(values.get("source_path", "(source path withheld)"))
            text = f"ingested {body.path} ({body.size} bytes) from {source_path}"
            objects.append(
                self.plain_file(
                    node_id(signed.line_hash, "source"),
                    source_path,
                    body.acquisition.source_sha256,
                    body.size,
                )
            )
        else:
            name = "catalogue"
            text = f"catalogued {body.path} ({body.size} bytes)"
        said = [
            f"{label}: {value}"
            for label, value in (
                ("collector", values.get("collector")),
                ("source", body.source),
                ("location", body.location),
                ("note", body.note),
            )
            if value
        ]
        if body.duplicate_of is not None:
            said.append(f"same content as record {body.duplicate_of}")
        if body.supersedes is not None:
            said.append(f"new version of record {body.supersedes}: the content changed")
        if said:
            text += "; " + "; ".join(said)
        self.action(
            signed,
            name,
            text,
            objects,
            [],
            [file_id],
            [seq],
            f"{body.path} as catalogued at record {seq}",
        )

    def event_action(self, seq: int) -> None:
        signed = self.read(seq)
        body = EventBody.from_json(signed.record.body)
        named = [i.seq for i in body.items]
        files = [self.item_file(i) for i in named]
        paths = _names(i.path for i in body.items)
        reason = f": {body.reason}" if body.reason else ""
        participants: list[str] = []
        results, result_items = files, named
        if body.action == "transfer":
            text = f"custody of {paths} transferred to {body.to}{reason}"
            participants.append(self.recipient(body.to or ""))
            outcome = f"{paths} in the custody of {body.to}"
        elif body.action == "copy":
            text = f"{paths} copied to {body.destination}, each copy re-read and matching{reason}"
            results = [self.copy_file(signed.line_hash, n, c) for n, c in enumerate(body.copies)]
            result_items = []
            outcome = f"copies written to {body.destination}"
        elif body.action == "derive" and body.output is not None:
            output = self.item_file(body.output.seq)
            self.nodes[output].setdefault(
                "case-investigation:wasDerivedFrom", [_ref(f) for f in files]
            )
            self.root_of.setdefault(body.output.seq, body.output.seq)
            text = f"working copy {body.output.path} derived from {paths}{reason}"
            results, result_items = [output], [body.output.seq]
            outcome = f"working copy {body.output.path}, item record {body.output.seq}"
        elif body.action == "note":
            fields = "; ".join(f"{k}: {v}" for k, v in sorted(body.fields.items()))
            text = f"note on {paths}: " + "; ".join(t for t in (body.text, fields) if t)
            outcome = f"{paths}, annotated"
        elif body.action == "dispose":
            text = f"{paths} returned or destroyed{reason}"
            outcome = f"{paths}, disposed of"
        elif body.action == "receive":
            text = f"{paths} received from {body.source or 'elsewhere'}{reason}"
            outcome = f"{paths} as received"
        elif body.action == "capture" and body.capture is not None:
            final = body.capture.get("final_url") or "no page"
            text = (f"web capture of {body.capture.get('requested_url')} "
                    f"({body.capture.get('outcome')}, ended at {final}) into {body.folder}")
            outcome = f"{paths}, the files of that capture"
        else:
            text = f"{paths} {body.action}{reason}"
            outcome = f"{paths} after {body.action}"
        self.action(
            signed,
            body.action,
            text,
            files,
            named,
            results,
            result_items,
            f"{outcome}, as recorded at record {seq}",
            participants,
        )

    def copy_file(self, line: str, number: int, copy: CopyRef) -> str:
        return self.plain_file(
            node_id(line, "copy", str(number)), copy.path, copy.sha256, copy.size
        )

    # --- the whole document -------------------------------------------------------------

    def document(self, selection: Iterable[int]) -> dict[str, Any]:
        index = self.ledger.index
        self.add(
            {
                "@id": self.tool,
                "@type": "uco-tool:Tool",
                "uco-core:name": "custody",
                "uco-tool:version": __version__,
                "uco-tool:toolType": "evidence chain-of-custody ledger",
            }
        )
        for seq in selection:
            if self.read(seq).record.type == "item":
                self.item_action(seq)
            else:
                self.event_action(seq)
        self.link_successors()
        size = index.size
        root = self.ledger.root_hash(size).hex()
        contents = [
            _ref(i)
            for i, node in self.nodes.items()
            if node["@type"] != "uco-observable:File"  # Files hang off actions
        ]
        graph = list(self.nodes.values())
        bundle = {
            "@id": node_id("bundle", str(size), root, *sorted(str(s) for s in self.records)),
            "@type": "uco-core:Bundle",
            "uco-core:name": "custody chain of custody",
            "uco-core:description": (
                f"Exported by custody {__version__} from a ledger of {size} records with "
                f"RFC 9162 root {root}. Each node names the ledger record it comes from; "
                "verify the ledger with 'custody verify' before relying on this document."
            ),
            "uco-core:object": contents,
            "uco-core:hasFacet": [
                {
                    "@id": node_id("bundle", str(size), root, "ledger-facet"),
                    "@type": ["custody:LedgerStateFacet", "uco-core:Facet"],
                    "custody:treeSize": size,
                    "custody:treeRoot": _hex(root),
                }
            ],
        }
        graph.insert(0, bundle)
        investigation = self.investigation()
        if investigation is not None:
            graph.insert(1, investigation)
        return {"@context": dict(CONTEXT), "@graph": graph}

    def investigation(self) -> dict[str, Any] | None:
        from custody.handling.case import case_details

        try:
            case = case_details(self.ledger)
        except CustodyError:
            return None  # a root without a readable config still exports
        if case is None:
            return None
        node: dict[str, Any] = {
            "@id": node_id("investigation", case.name),
            "@type": "case-investigation:Investigation",
            "uco-core:name": case.name,
            "case-investigation:investigationForm": "case",
            "uco-core:object": [_ref(a) for a in (*self.actions, *self.provenance)],
        }
        if case.description:
            node["uco-core:description"] = case.description
        if case.signed or case.number or case.court or case.parties:
            facet: dict[str, Any] = {
                "@id": node_id("investigation", case.name, "case-facet"),
                "@type": ["custody:CaseFacet", "uco-core:Facet"],
            }
            if case.number:
                facet["custody:caseNumber"] = case.number
            if case.court:
                facet["custody:courtOrMechanism"] = case.court
            if case.parties:
                facet["custody:party"] = list(case.parties)
            if case.record is not None:
                facet["custody:recordNumber"] = case.record
                facet["custody:signer"] = case.signer
            node["uco-core:hasFacet"] = [facet]
        return node


def _names(paths: Iterable[str]) -> str:
    """Paths for a description: all of a few, or a count (the objects list every file)."""
    listed = list(paths)
    if len(listed) <= 3:
        return ", ".join(listed)
    return f"{len(listed)} items ({listed[0]}, {listed[1]} ...)"


def _selection(ledger: Ledger, seqs: Sequence[int] | None) -> list[int]:
    """Item and event records to export, in ledger order.

    None: every item and event. Otherwise the items given, every event naming them, and,
    following derive events forward, the working copies made from them and their events.
    """
    index = ledger.index
    if seqs is None:
        return sorted(index.records_of_type("item") + index.records_of_type("event"))
    items: set[int] = set()
    events: set[int] = set()
    pending = list(seqs)
    while pending:
        seq = pending.pop()
        if seq in items:
            continue
        if not 0 <= seq < index.size:
            raise UsageError(
                ngettext(
                    "no record {record}: the ledger has {n} records",
                    "no record {record}: the ledger has {n} records",
                    index.size,
                ).format(record=seq, n=index.size)
            )
        signed = ledger.read(seq)
        if signed.record.type != "item":
            raise UsageError(
                _("record {record} is a {type} record, not an item").format(
                    record=seq, type=signed.record.type
                )
            )
        items.add(seq)
        for event_seq in index.events_naming(seq):
            events.add(event_seq)
            body = EventBody.from_json(ledger.read(event_seq).record.body)
            if body.output is not None and seq in {i.seq for i in body.items}:
                pending.append(body.output.seq)
    return sorted(items | events)


def case_document(ledger: Ledger, seqs: Sequence[int] | None) -> dict[str, Any]:
    """CASE/UCO JSON-LD for the chain of custody of items ``seqs`` (None: every item).

    ``seqs`` are item record numbers (``custody.handling.lookup.resolve_items`` turns paths, digest
    prefixes, record numbers and tags into them). Raises UsageError for a record that is
    not an item. Deterministic: the same ledger and selection give the same document.
    """
    builder = _Builder(ledger)
    builder.learn_keys()
    return builder.document(_selection(ledger, seqs))
