"""custody.delivery.case_uco: CASE/UCO JSON-LD, checked by the real case_validate.

A real life is built once (real photos and a video, real keys, a clip cut by ffmpeg, a
copy, a vault, an ingest from outside the root, a rotation, a revocation and a disposal)
and exported twice: whole, and for the video alone. ``case_validate`` from the
``case-utils`` package (CASE 1.5 / UCO 1.5 shapes, default strictness: no
``--allow-infos``, no ``--allow-warnings``) must accept both. Then the content is checked
against the ledger read with plain ``json`` and the files on disk read with ``sha256sum``:
every event is an action with the right performer and objects, every file's hash is the
ledger's, and the document is the same each time it is made.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from tests.helpers import committed_value, ledger_records, tool

from conftest import PASSPHRASE, media_source
from custody.acquisition.catalogue import Descriptive, catalogue
from custody.acquisition.ingest import ingest
from custody.delivery.case_uco import case_document, case_json
from custody.errors import UsageError
from custody.handling.events import copy_event, derive, event, revoke, rotate
from custody.handling.vault import vault_copy
from custody.keys.keyring import Keyring, SigningKey
from custody.ledger.backends import open_ledger
from custody.root import EvidenceRoot, init_root
from custody.system.files import write_atomic

CAMERA = media_source() / "field-dump-01" / "DCIM" / "Camera"
VIDEO_NAME = "VID_20201023_202729.mp4"
CASE_VALIDATE = Path(sys.executable).with_name("case_validate")


@pytest.fixture(scope="module")
def life(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("case")
    if not (CAMERA / VIDEO_NAME).is_file():
        pytest.skip(f"{VIDEO_NAME} is not in the media set")
    root = init_root(base / "evidence")
    config = replace(root.config(), case={"name": "ACME-2020-17", "description": "Square, 23 Oct"})
    write_atomic(root.config_path, tomli_w.dumps(config.to_toml()).encode())
    keyring = Keyring(base / "keys")
    made = "2026-11-27T07:02:10.123456Z"
    keys: dict[str, SigningKey] = {
        name: keyring.generate(name, role, PASSPHRASE, made).unlock(PASSPHRASE)
        for name, role in (
            ("keeper", "custodian"),
            ("alice", "documenter"),
            ("counsel", "lawyer"),
            ("alice-2", "documenter"),
        )
    }
    with open_ledger(root) as ledger, ledger.writer(keys["keeper"]) as writer:
        writer.introduce(keys["alice"])
        writer.introduce(keys["counsel"])
    shutil.copytree(CAMERA, root.path / "camera")
    catalogue(
        root,
        [root.path / "camera"],
        keys["alice"],
        descriptive=Descriptive(collector="Alice", location="the square", tags=("march",)),
    )
    outside = base / "phone"
    outside.mkdir()
    shutil.copy2(CAMERA / "20160912_100531.jpg", outside / "from-phone.jpg")
    # The same photo again, from a phone: recorded as a duplicate (again=True: ingest would
    # otherwise recognise content the root already holds and not copy it).
    ingest(root, [str(outside / "from-phone.jpg")], keys["alice"], into="ingested", again=True)
    with open_ledger(root) as ledger:
        video = ledger.index.latest_item_at(f"camera/{VIDEO_NAME}".encode())
        photos = [r.seq for r in ledger.index.items_at_or_under(b"camera") if r.seq != video.seq]
    assert video is not None
    event(root, keys["alice"], "transfer", [video.seq], to="counsel", reason="for the filing")
    event(root, keys["counsel"], "access", [video.seq], reason="viewed")
    event(root, keys["alice"], "note", [video.seq], text="march", fields={"language": "ar"})
    clip = root.path / "work" / "clip.mp4"
    clip.parent.mkdir()
    tool("ffmpeg", "-nostdin", "-v", "error", "-ss", "0", "-t", "1", "-i",
         root.path / "camera" / VIDEO_NAME, "-c", "copy", clip)  # fmt: skip
    clip_seq, _ = derive(root, keys["counsel"], video.seq, clip, "clip 0-1 s")
    copy_event(root, keys["counsel"], [video.seq, clip_seq], base / "for-court")
    rotate(root, keys["alice"], keys["alice-2"])
    event(root, keys["alice-2"], "access", [video.seq])
    revoke(root, keys["keeper"], keys["counsel"].fingerprint, reason="left the case")
    event(root, keys["keeper"], "dispose", [photos[0]], reason="returned to its owner")
    vault_copy(root, keys["keeper"], base / "vault")
    with open_ledger(root) as ledger:
        whole = case_document(ledger, None)
        again = case_document(ledger, None)
        only_video = case_document(ledger, [video.seq])
    (base / "whole.jsonld").write_text(case_json(whole), encoding="utf-8")
    (base / "video.jsonld").write_text(case_json(only_video), encoding="utf-8")
    return {
        "root": root.path,
        "base": base,
        "keys": keys,
        "video": video.seq,
        "clip": clip_seq,
        "whole": whole,
        "again": again,
        "only_video": only_video,
    }


def case_validate(path: Path) -> subprocess.CompletedProcess[str]:
    assert CASE_VALIDATE.is_file(), "case_validate is installed by the 'dev' extras (case-utils)"
    return subprocess.run(
        [str(CASE_VALIDATE), str(path)], capture_output=True, text=True, timeout=300, check=False
    )


@pytest.mark.parametrize("name", ["whole", "video"])
def test_case_validate_accepts_the_export(life: dict[str, Any], name: str) -> None:
    result = case_validate(life["base"] / f"{name}.jsonld")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "Conforms: True" in result.stdout
    # No concept outside the ontology slipped through as a mere warning either.
    assert "NonExistentCDOConceptWarning" not in result.stderr


def test_case_validate_is_not_a_rubber_stamp(life: dict[str, Any], tmp_path: Path) -> None:
    """The same document with one misspelt class and one malformed hash must fail."""
    document = json.loads(json.dumps(life["only_video"]))
    for node in document["@graph"]:
        if node["@type"] == "uco-observable:File":
            facets = node["uco-core:hasFacet"]
            content = next(f for f in facets if f["@type"] == "uco-observable:ContentDataFacet")
            content["uco-observable:hash"][0]["uco-types:hashValue"]["@value"] = "not hex"
            break
    broken = tmp_path / "broken.jsonld"
    broken.write_text(json.dumps(document), encoding="utf-8")
    assert case_validate(broken).returncode != 0


# --- content, against the ledger -------------------------------------------------------------


def nodes(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["@id"]: n for n in document["@graph"]}


def of_type(document: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    def types(node: dict[str, Any]) -> list[str]:
        value = node["@type"]
        return value if isinstance(value, list) else [value]

    return [n for n in document["@graph"] if kind in types(n)]


def ids(values: Any) -> list[str]:
    listed = values if isinstance(values, list) else [values]
    return [v["@id"] for v in listed]


def facet(node: dict[str, Any], kind: str) -> dict[str, Any]:
    found = [
        f
        for f in node["uco-core:hasFacet"]
        if kind in (f["@type"] if isinstance(f["@type"], list) else [f["@type"]])
    ]
    assert len(found) == 1, (node["@id"], kind)
    return found[0]


def hashes(file_node: dict[str, Any]) -> dict[str, str]:
    content = facet(file_node, "uco-observable:ContentDataFacet")
    return {
        h["uco-types:hashMethod"]: h["uco-types:hashValue"]["@value"]
        for h in content["uco-observable:hash"]
    }


def test_every_record_is_an_action_by_its_signer(life: dict[str, Any]) -> None:
    document = life["whole"]
    records = [r["signed"] for r in ledger_records(life["root"])]
    by_id = nodes(document)
    actions = {
        facet(a, "custody:LedgerRecordFacet")["custody:recordNumber"]: a
        for a in of_type(document, "case-investigation:InvestigativeAction")
    }
    expected = {r["seq"]: r for r in records if r["type"] in ("item", "event")}
    assert set(actions) == set(expected)
    tool_ids = [n["@id"] for n in of_type(document, "uco-tool:Tool")]
    assert len(tool_ids) == 1
    for seq, record in expected.items():
        action = actions[seq]
        if record["type"] == "event":
            assert action["uco-core:name"] == record["body"]["action"]
        else:
            assert action["uco-core:name"] == (
                "ingest" if "acquisition" in record["body"] else "catalogue"
            )
        assert action["uco-action:startTime"] == {"@type": "xsd:dateTime", "@value": record["time"]}
        assert ids(action["uco-action:instrument"]) == tool_ids
        performer = by_id[ids(action["uco-action:performer"])[0]]
        assert (
            facet(performer, "custody:SigningKeyFacet")["custody:fingerprint"] == record["signer"]
        )
        assert facet(action, "custody:LedgerRecordFacet")["custody:signer"] == record["signer"]
        (provenance,) = (by_id[i] for i in ids(action["uco-action:result"]))
        assert provenance["@type"] == "case-investigation:ProvenanceRecord"
        assert provenance["case-investigation:exhibitNumber"] == f"custody-{seq}"
        if record["type"] == "event":
            named = {
                facet(by_id[i], "custody:LedgerRecordFacet")["custody:recordNumber"]
                for i in ids(action["uco-action:object"])
            }
            assert named == {i["seq"] for i in record["body"]["items"]}
    # The Bundle holds every action and provenance record; the Investigation names the case.
    (bundle,) = of_type(document, "uco-core:Bundle")
    held = set(ids(bundle["uco-core:object"]))
    assert {a["@id"] for a in actions.values()} <= held
    assert {p["@id"] for p in of_type(document, "case-investigation:ProvenanceRecord")} <= held
    ledger_facet = facet(bundle, "custody:LedgerStateFacet")
    assert ledger_facet["custody:treeSize"] == len(records)
    (investigation,) = of_type(document, "case-investigation:Investigation")
    assert investigation["uco-core:name"] == "ACME-2020-17"
    assert investigation["uco-core:description"] == "Square, 23 Oct"


def test_every_file_hash_is_the_ledgers(life: dict[str, Any]) -> None:
    document = life["whole"]
    records = {r["signed"]["seq"]: r["signed"] for r in ledger_records(life["root"])}
    files = of_type(document, "uco-observable:File")
    catalogued = [
        f
        for f in files
        if any("custody:LedgerRecordFacet" in str(x["@type"]) for x in f["uco-core:hasFacet"])
    ]
    assert {facet(f, "custody:LedgerRecordFacet")["custody:recordNumber"] for f in catalogued} == {
        s for s, r in records.items() if r["type"] == "item"
    }
    for file_node in catalogued:
        ledger = facet(file_node, "custody:LedgerRecordFacet")
        body = records[ledger["custody:recordNumber"]]["body"]
        assert hashes(file_node) == {"SHA256": body["digests"]["sha256"]}
        assert ledger["custody:blake3"]["@value"] == body["digests"]["blake3"]
        file_facet = facet(file_node, "uco-observable:FileFacet")
        assert file_facet["uco-observable:filePath"] == body["path"]
        assert file_facet["uco-observable:sizeInBytes"] == body["size"]
        assert file_facet["uco-observable:modifiedTime"]["@value"] == body["mtime"]
        on_disk = life["root"] / body["path"]
        if on_disk.exists():  # (the disposed photo may be gone; here it is still there)
            digest = tool("sha256sum", on_disk).stdout.split()[0].decode()
            assert hashes(file_node)["SHA256"] == digest
    # Copies and the ingest's source are files too, with the digests read back from them.
    copies = [
        (copy["path"], copy["sha256"])
        for r in records.values()
        if r["type"] == "event" and r["body"]["action"] == "copy"
        for copy in r["body"]["copies"]
    ]
    sources = [
        (
            committed_value(life["root"], r["body"], "source_path"),
            r["body"]["acquisition"]["source_sha256"],
        )
        for r in records.values()
        if r["type"] == "item" and "acquisition" in r["body"]
    ]
    assert len(sources) == 1
    outside = {
        (facet(f, "uco-observable:FileFacet")["uco-observable:filePath"], hashes(f)["SHA256"])
        for f in files
        if f not in catalogued
    }
    assert outside == set(copies) | set(sources)
    for path, sha256 in copies:
        assert tool("sha256sum", path).stdout.split()[0].decode() == sha256


def test_the_chain_of_the_video(life: dict[str, Any]) -> None:
    document = life["only_video"]
    by_id = nodes(document)
    records = {r["signed"]["seq"]: r["signed"] for r in ledger_records(life["root"])}
    video, clip = life["video"], life["clip"]
    actions = sorted(
        of_type(document, "case-investigation:InvestigativeAction"),
        key=lambda a: facet(a, "custody:LedgerRecordFacet")["custody:recordNumber"],
    )
    numbers = [facet(a, "custody:LedgerRecordFacet")["custody:recordNumber"] for a in actions]

    def named(body: dict[str, Any]) -> set[int]:
        output = {body["output"]["seq"]} if "output" in body else set()
        return {i["seq"] for i in body["items"]} | output

    naming = [
        s for s, r in records.items() if r["type"] == "event" and named(r["body"]) & {video, clip}
    ]
    # The video's cataloguing, the clip's (a working copy made from it), and every event
    # naming either; nothing about the other photos' cataloguing.
    assert numbers == sorted({video, clip, *naming})
    names = [a["uco-core:name"] for a in actions]
    assert names[0] == "catalogue" and "derive" in names and "dispose" not in names
    file_of = {
        facet(f, "custody:LedgerRecordFacet")["custody:recordNumber"]: f["@id"]
        for f in of_type(document, "uco-observable:File")
        if any("custody:LedgerRecordFacet" in str(x["@type"]) for x in f["uco-core:hasFacet"])
    }
    # Each action after the first is informed by the one before on the same item.
    on_video = [a for a in actions if file_of[video] in ids(a.get("uco-action:object", []))]
    for earlier, later in zip([actions[0], *on_video], on_video, strict=False):
        assert earlier["@id"] in ids(later["case-investigation:wasInformedBy"])
    # The transfer names the lawyer's identity as participant; the derive links the clip.
    transfer = next(a for a in actions if a["uco-core:name"] == "transfer")
    (participant,) = (by_id[i] for i in ids(transfer["uco-action:participant"]))
    assert participant["uco-core:name"] == "counsel"
    assert facet(participant, "custody:SigningKeyFacet")["custody:role"] == "lawyer"
    assert ids(by_id[file_of[clip]]["case-investigation:wasDerivedFrom"]) == [file_of[video]]
    derive_action = next(a for a in actions if a["uco-core:name"] == "derive")
    (result,) = (by_id[i] for i in ids(derive_action["uco-action:result"]))
    assert ids(result["uco-core:object"]) == [file_of[clip]]
    assert result["case-investigation:rootExhibitNumber"] == [f"custody-{clip}"]
    # Identities: roles, the rotation, the revocation.
    people = {i["uco-core:name"]: i for i in of_type(document, "uco-identity:Identity")}
    keys = life["keys"]
    assert facet(people["counsel"], "custody:SigningKeyFacet")["custody:revocationRecordedAt"]
    assert facet(people["alice-2"], "custody:SigningKeyFacet")["custody:replaces"] == (
        keys["alice"].fingerprint
    )
    relations = {
        (
            r["uco-core:kindOfRelationship"],
            ids(r["uco-core:source"])[0],
            r["uco-core:target"]["@id"],
        )
        for r in of_type(document, "uco-core:Relationship")
    }
    assert ("Succeeds", people["alice-2"]["@id"], people["alice"]["@id"]) in relations
    attorney = of_type(document, "case-investigation:Attorney")
    assert [a["uco-core:name"] for a in attorney] == ["lawyer"]
    assert ("Has_Role", people["counsel"]["@id"], attorney[0]["@id"]) in relations


def test_blake3_is_kept_outside_ucos_hash_vocabulary(life: dict[str, Any]) -> None:
    text = case_json(life["whole"])
    methods = {
        h["uco-types:hashMethod"]
        for f in of_type(life["whole"], "uco-observable:File")
        for h in facet(f, "uco-observable:ContentDataFacet")["uco-observable:hash"]
    }
    assert methods == {"SHA256"}
    assert '"custody:blake3"' in text


def test_the_export_is_deterministic(life: dict[str, Any]) -> None:
    assert case_json(life["whole"]) == case_json(life["again"])
    identifiers = [n["@id"] for n in life["whole"]["@graph"]]
    assert len(identifiers) == len(set(identifiers))
    for identifier in identifiers:
        assert identifier.startswith("urn:uuid:")
        assert uuid.UUID(identifier[len("urn:uuid:") :]).version == 5
    # The vault's ledger is the same lines, so it exports the same document.
    from custody.delivery.case_uco import CONTEXT

    with open_ledger(EvidenceRoot((life["base"] / "vault").resolve())) as vault:
        copy = case_document(vault, [life["video"]])
    assert case_json(copy) == case_json(life["only_video"])
    assert copy["@context"] == CONTEXT


def test_only_items_can_be_exported(life: dict[str, Any]) -> None:
    with open_ledger(EvidenceRoot(life["root"])) as ledger:
        with pytest.raises(UsageError, match="not an item"):
            case_document(ledger, [0])
        with pytest.raises(UsageError, match="no record"):
            case_document(ledger, [10_000])
    assert os.path.isfile(life["base"] / "whole.jsonld")
