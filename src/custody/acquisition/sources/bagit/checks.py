"""The checks over the whole bag once its manifests are read: completeness, tag-manifest
coverage, every digest recomputed, names, Payload-Oxum, and the result."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence

from custody.acquisition.sources.bagit.manifests import _Manifests
from custody.acquisition.sources.bagit.model import (
    CHUNK,
    BagValidation,
    Kind,
    PayloadFile,
    TagFile,
)
from custody.acquisition.sources.bagit.rules import (
    _ALGORITHMS,
    _SYSTEM_NAMES,
    _WEAK,
    _fold_key,
    _nfc_key,
    _show,
)
from custody.acquisition.sources.bagit.state import (
    _Changed,
    _Manifest,
)
from custody.acquisition.sources.said import Said
from custody.i18n import N_


class _Checks(_Manifests):
    def completeness(self) -> None:
        """Every payload file in every payload manifest (1.0) or in one (earlier, §3)."""
        payload_manifests = [m for m in self.manifests if not m.tag]
        if not payload_manifests:
            return
        for key in sorted(self.files):
            if not key.startswith(b"data/"):
                continue
            listed = [m.name for m in payload_manifests if key in m.covers]
            show = _show(key)
            if not listed:
                try:
                    key.decode("utf-8")
                except UnicodeDecodeError:
                    self.add(
                        Kind.NON_UTF8_NAME,
                        show,
                        Said(N_("name is not valid UTF-8, so no manifest can name it")),
                        "RFC 8493 §2.1.3",
                    )
                self.add(
                    Kind.UNLISTED_FILE,
                    show,
                    Said(N_("in the payload but in no manifest")),
                    "RFC 8493 §2.1.3",
                )
            elif len(listed) < len(payload_manifests):
                missing = ", ".join(m.name for m in payload_manifests if key not in m.covers)
                if self.version_info >= (1, 0):
                    self.add(
                        Kind.NOT_IN_EVERY_MANIFEST,
                        show,
                        Said(N_("not listed in {manifests}"), manifests=missing),
                        "RFC 8493 §2.1.3, §3",
                    )
                else:
                    self.warn(
                        Kind.NOT_IN_EVERY_MANIFEST,
                        show,
                        Said(
                            N_("not listed in {manifests} (allowed before BagIt 1.0)"),
                            manifests=missing,
                        ),
                        "BagIt 0.97 §3",
                    )
        self.fetch_not_in_manifest(payload_manifests)

    def fetch_not_in_manifest(self, payload_manifests: Sequence[_Manifest]) -> None:
        listed = {m.name: {e.path for e in m.entries} for m in payload_manifests}
        for f in self.fetch:
            for m in payload_manifests:
                if f.path not in listed[m.name]:
                    self.add(
                        Kind.FETCH_NOT_IN_MANIFEST,
                        f.path,
                        Said(N_("listed in fetch.txt but not in {name}"), name=m.name),
                        "RFC 8493 §2.2.3",
                    )

    def tag_coverage(self) -> None:
        """§2.2.1: each tag manifest lists every payload manifest, SHOULD list the rest."""
        tag_manifests = [m for m in self.manifests if m.tag]
        if not tag_manifests:
            return
        payload_names = {m.name.encode() for m in self.manifests if not m.tag}
        tag_keys = {
            k
            for k in self.files
            if not k.startswith(b"data/")
            and not (b"/" not in k and k.startswith(b"tagmanifest-") and k.endswith(b".txt"))
        }
        for m in tag_manifests:
            for name in sorted(payload_names - set(m.covers)):
                # A 1.0 rule; before it an unlisted payload manifest was merely unprotected.
                self.add(
                    Kind.PAYLOAD_MANIFEST_UNCOVERED,
                    m.name,
                    Said(N_("does not list payload manifest {name}"), name=_show(name)),
                    "RFC 8493 §2.2.1",
                    "error" if self.version_info >= (1, 0) else "warning",
                )
        covered_somewhere = set().union(*(set(m.covers) for m in tag_manifests))
        for key in sorted(tag_keys - covered_somewhere - payload_names):
            self.warn(
                Kind.TAG_FILE_UNCOVERED,
                _show(key),
                Said(N_("tag file in no tag manifest: its content is not protected")),
                "RFC 8493 §2.2.1",
            )
        sets = {frozenset(m.covers) for m in tag_manifests}
        if len(sets) > 1:
            self.warn(
                Kind.TAG_MANIFESTS_DIFFER,
                None,
                Said(N_("the tag manifests do not list the same tag files")),
                "RFC 8493 §2.2.1",
            )

    # --- hashing --------------------------------------------------------------------------

    def hash_all(self) -> None:
        wanted: dict[bytes, set[str]] = {}
        for m in self.manifests:
            for key in m.covers:
                wanted.setdefault(key, set()).add(m.algorithm)
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        for key in sorted(wanted):
            self._hash_one(key, sorted(wanted[key]), view)
        for m in self.manifests:
            for key, digest in m.covers.items():
                got = self.computed.get(key, {}).get(m.algorithm)
                if got is None:
                    continue  # unreadable: already a finding, never called a mismatch
                if got != digest:
                    self.mismatched.add(key)
                    self.add(
                        Kind.CHECKSUM_MISMATCH,
                        _show(key),
                        Said(
                            N_("{algorithm} is {got}, {name} says {digest}"),
                            algorithm=m.algorithm,
                            got=got,
                            name=m.name,
                            digest=digest,
                        ),
                        "RFC 8493 §3",
                    )

    def _hash_one(self, key: bytes, algorithms: list[str], view: memoryview) -> None:
        show = _show(key)
        try:
            fd = self.open_file(key)
        except _Changed:
            self.add(
                Kind.FILE_CHANGED, show, Said(N_("changed while the bag was read")), "RFC 8493 §3"
            )
            self.unreadable.add(key)
            return
        except OSError as exc:
            self.add(
                Kind.UNREADABLE_FILE,
                show,
                Said(N_("cannot read: {why}"), why=exc.strerror),
                "RFC 8493 §3",
            )
            self.unreadable.add(key)
            return
        hashers = [
            hashlib.new(_ALGORITHMS[a][0], usedforsecurity=a not in _WEAK) for a in algorithms
        ]
        total = 0
        try:
            # Nothing read here is trusted until every digest below has matched.
            while True:
                n = os.readv(fd, [view])
                if n == 0:
                    break
                chunk = view[:n]
                for h in hashers:
                    h.update(chunk)
                total += n
            after = os.fstat(fd)
        except OSError as exc:
            self.add(
                Kind.UNREADABLE_FILE,
                show,
                Said(N_("cannot read: {why}"), why=exc.strerror),
                "RFC 8493 §3",
            )
            self.unreadable.add(key)
            return
        finally:
            os.close(fd)
        node = self.files[key]
        if total != node.size or after.st_size != node.size or after.st_mtime_ns != node.mtime_ns:
            self.add(
                Kind.FILE_CHANGED, show, Said(N_("changed while it was being read")), "RFC 8493 §3"
            )
            self.unreadable.add(key)
            return
        self.computed[key] = {a: h.hexdigest() for a, h in zip(algorithms, hashers, strict=True)}
        self.files_hashed += 1
        self.bytes_hashed += total

    # --- whole-payload checks -----------------------------------------------------------------

    def payload_oxum(self) -> tuple[int, int]:
        payload = [n for k, n in self.files.items() if k.startswith(b"data/")]
        octets = sum(n.size for n in payload)
        streams = len(payload) + len(self.absent_system)
        if self.oxum is not None and self.oxum != (octets, streams):
            self.add(
                Kind.PAYLOAD_OXUM_MISMATCH,
                self.info_file,
                Said(
                    N_(
                        "Payload-Oxum declares {declared_bytes} bytes in {declared_files} files;"
                        " the payload holds {octets} bytes in {streams} files"
                    ),
                    declared_bytes=self.oxum[0],
                    declared_files=self.oxum[1],
                    octets=octets,
                    streams=streams,
                ),
                "RFC 8493 §2.2.2",
            )
        return octets, streams

    def names(self) -> None:
        """Collisions a case-insensitive or normalising filesystem would make (§6.1.1)."""
        if b"data" not in self.dirs:
            self.add(
                Kind.PAYLOAD_DIRECTORY_MISSING,
                "data",
                Said(N_("the payload directory data/ is missing")),
                "RFC 8493 §2.1.2",
            )
        groups: dict[str, list[bytes]] = {}
        for key in list(self.files) + sorted(self.dirs):
            try:
                name = key.decode("utf-8")
            except UnicodeDecodeError:
                continue
            groups.setdefault(_fold_key(name), []).append(key)
        for members in groups.values():
            if len(members) > 1:
                shown = ", ".join(repr(_show(k)) for k in sorted(members))
                how = (
                    Said(N_("Unicode normalisation"))
                    if len({_nfc_key(k.decode()) for k in members}) < len(members)
                    else Said(N_("case"))
                )
                self.warn(
                    Kind.NAME_COLLISION,
                    _show(sorted(members)[0]),
                    Said(
                        N_(
                            "names differ only in {how} ({names}); they would collide on"
                            " macOS or Windows"
                        ),
                        how=how,
                        names=shown,
                    ),
                    "RFC 8493 §6.1.1.3",
                )
        for key in self.files:
            base = key.rsplit(b"/", 1)[-1].decode("utf-8", "replace")
            system = base.lower() in _SYSTEM_NAMES or base.startswith("._")
            if key.startswith(b"data/") and system:
                self.warn(
                    Kind.SYSTEM_FILE,
                    _show(key),
                    Said(N_("operating-system metadata file in the payload")),
                    "RFC 8493 §6.1",
                )

    # --- result ---------------------------------------------------------------------------

    def result(self, octets: int, streams: int) -> BagValidation:
        self._close_findings()
        digests: dict[bytes, dict[str, str]] = {}
        for m in self.manifests:
            for key, value in m.covers.items():
                digests.setdefault(key, {})[m.algorithm] = value

        def verified(key: bytes) -> bool:
            return (
                key in digests
                and key in self.computed
                and key not in self.unreadable
                and key not in self.mismatched
            )

        payload = []
        tags = []
        roles = self._roles()
        for key in sorted(self.files):
            node = self.files[key]
            text = key.decode("utf-8", "surrogateescape")
            d = tuple(sorted(digests.get(key, {}).items()))
            if key.startswith(b"data/"):
                payload.append(
                    PayloadFile(
                        text,
                        key,
                        node.size,
                        d,
                        verified(key),
                        tuple(sorted(self.listed_as.get(key, ()))),
                    )
                )
            else:
                tags.append(
                    TagFile(text, key, node.size, roles.get(key, "other"), d, verified(key))
                )
        return BagValidation(
            path=self.path,
            errors=tuple(self.errors),
            warnings=tuple(self.warnings),
            version=self.version,
            encoding=self.encoding.name if self.encoding else None,
            info_file=self.info_file,
            info=tuple(self.info),
            payload=tuple(payload),
            tag_files=tuple(tags),
            payload_algorithms=tuple(m.algorithm for m in self.manifests if not m.tag),
            tag_algorithms=tuple(m.algorithm for m in self.manifests if m.tag),
            payload_oxum=self.oxum,
            payload_octets=octets,
            payload_streams=streams,
            fetch=tuple(self.fetch),
            files_hashed=self.files_hashed,
            bytes_hashed=self.bytes_hashed,
        )

    def _roles(self) -> dict[bytes, str]:
        roles = {b"bagit.txt": "declaration", b"fetch.txt": "fetch"}
        if self.info_file:
            roles[self.info_file.encode()] = "metadata"
        for m in self.manifests:
            roles[m.name.encode("utf-8", "surrogateescape")] = (
                "tag-manifest" if m.tag else "payload-manifest"
            )
        return roles
