"""Manifests, tag manifests and fetch.txt: finding, parsing and matching each entry to a
file on disk (§2.1.3, §2.2.1, §2.2.3, §3)."""

from __future__ import annotations

import re

from custody.acquisition.sources.bagit.model import (
    ENTRY_SLACK,
    FetchEntry,
    Kind,
)
from custody.acquisition.sources.bagit.rules import (
    _ALGORITHM_ALIASES,
    _ALGORITHMS,
    _EMPTY_DIGESTS,
    _HEX,
    _MANIFEST_NAME,
    _PERCENT_1_0,
    _SYSTEM_NAMES,
    _WEAK,
    _fold_key,
    _nfc_key,
    _show,
)
from custody.acquisition.sources.bagit.state import (
    _Entry,
    _Manifest,
)
from custody.acquisition.sources.bagit.tagfiles import _TagFiles
from custody.acquisition.sources.said import Said
from custody.i18n import N_


class _Manifests(_TagFiles):
    def find_manifests(self) -> None:
        for key in sorted(k for k in self.files if b"/" not in k):
            name = key.decode("utf-8", "surrogateescape")
            match = _MANIFEST_NAME.match(name)
            if match is None:
                continue
            tag = match.group(1) is not None
            raw_alg = match.group(2)
            alg = raw_alg
            if alg not in _ALGORITHMS:
                alias = _ALGORITHM_ALIASES.get(alg.lower())
                normal = re.sub(r"[^0-9a-z]", "", alg.lower())
                alg = alias or (normal if normal in _ALGORITHMS else "")
                if not alg:
                    self.add(
                        Kind.UNSUPPORTED_ALGORITHM,
                        _show(key),
                        Said(
                            N_(
                                "algorithm {raw_alg} is not one custody can compute, so this"
                                " manifest cannot be checked"
                            ),
                            raw_alg=repr(raw_alg),
                        ),
                        "RFC 8493 §2.4",
                    )
                    continue
                self.warn(
                    Kind.ALGORITHM_NAME,
                    _show(key),
                    Said(
                        N_("algorithm name {raw_alg} is not normalised (expected {alg})"),
                        raw_alg=repr(raw_alg),
                        alg=repr(alg),
                    ),
                    "RFC 8493 §2.4",
                )
            self.manifests.append(_Manifest(name, alg, tag))
        payload = [m for m in self.manifests if not m.tag]
        if not payload:
            self.add(
                Kind.NO_PAYLOAD_MANIFEST,
                None,
                Said(N_("no payload manifest (manifest-<algorithm>.txt)")),
                "RFC 8493 §2.1.3",
            )
        for tag in (False, True):
            algs = {m.algorithm for m in self.manifests if m.tag == tag}
            if algs and algs <= _WEAK:
                which = Said(N_("tag manifests")) if tag else Said(N_("payload manifests"))
                self.warn(
                    Kind.WEAK_ALGORITHMS_ONLY,
                    None,
                    Said(
                        N_(
                            "the {which} use only {value}, which detect accidental damage"
                            " but not deliberate substitution"
                        ),
                        which=which,
                        value=", ".join(sorted(algs)),
                    ),
                    "RFC 8493 §2.4, §5.2",
                )

    def decode_path(self, raw: str, where: str, line: int) -> str:
        """RFC 8493 §2.1.3: %0A, %0D and %25 (only those) are percent-encoded in 1.0."""
        if self.version_info < (1, 0) or "%" not in raw:
            return raw
        rest = _PERCENT_1_0.sub("", raw)
        if "%" in rest:
            self.warn(
                Kind.UNENCODED_PERCENT,
                where,
                Said(N_("line {line}: '%' not written as %25 in {raw}"), line=line, raw=repr(raw)),
                "RFC 8493 §2.1.3",
            )
        return _PERCENT_1_0.sub(
            lambda m: {"0a": "\n", "0d": "\r", "25": "%"}[m.group(1).lower()], raw
        )

    def check_path(self, path: str, where: str, line: int) -> bool:
        """Reject any path that could leave the bag or name no file (§5.1)."""
        rule = "RFC 8493 §5.1"
        problem = None
        if path == "":
            problem = Said(N_("empty path"))
        elif "\x00" in path:
            problem = Said(N_("NUL character in path"))
        elif path.startswith("/"):
            problem = Said(N_("absolute path"))
        elif path.startswith("~"):
            problem = Said(N_("home-directory reference"))
        elif re.match(r"^[A-Za-z]:", path) or path.startswith("\\"):
            problem = Said(N_("Windows drive or UNC path"))
        else:
            for part in path.split("/"):
                if part in ("", ".", ".."):
                    problem = Said(
                        N_("path component {part} (only plain names are allowed)"), part=repr(part)
                    )
                    break
        if problem is not None:
            self.add(
                Kind.UNSAFE_PATH,
                where,
                Said(
                    N_("line {line}: {problem}: {path}"),
                    line=line,
                    problem=problem,
                    path=repr(path),
                ),
                rule,
            )
            return False
        if "\\" in path:
            self.warn(
                Kind.UNSAFE_PATH,
                where,
                Said(
                    N_("line {line}: backslash in {path}; '/' is the only separator"),
                    line=line,
                    path=repr(path),
                ),
                "RFC 8493 §2.1.3",
            )
        return True

    def parse_manifest(self, manifest: _Manifest) -> None:
        rule = "RFC 8493 §2.2.1" if manifest.tag else "RFC 8493 §2.1.3"
        hexlen = _ALGORITHMS[manifest.algorithm][1]
        where = manifest.name
        key = where.encode("utf-8", "surrogateescape")
        seen: dict[str, _Entry] = {}
        budget = len(self.files) + ENTRY_SLACK
        for lineno, line in self.text_lines(key, budget):
            if line.strip(" \t") == "":
                self.warn(
                    Kind.BLANK_LINE, where, Said(N_("line {lineno} is blank"), lineno=lineno), rule
                )
                continue
            match = re.match(r"([^ \t]+)[ \t]+(.*)\Z", line, re.DOTALL)
            if match is None or not _HEX.match(match.group(1)):
                self.add(
                    Kind.MALFORMED_LINE,
                    where,
                    Said(
                        N_("line {lineno} is not 'checksum filepath': {line}"),
                        lineno=lineno,
                        line=repr(line[:200]),
                    ),
                    rule,
                )
                continue
            digest, path = match.group(1).lower(), match.group(2)
            if len(digest) != hexlen:
                self.add(
                    Kind.MALFORMED_LINE,
                    where,
                    Said(
                        N_("line {lineno}: {count} hex digits, {algorithm} has {hexlen}"),
                        lineno=lineno,
                        count=len(digest),
                        algorithm=manifest.algorithm,
                        hexlen=hexlen,
                    ),
                    rule,
                )
                continue
            if path.startswith("*"):
                literal = path.encode("utf-8", "surrogateescape")
                if not (manifest.tag and literal in self.files):
                    self.warn(
                        Kind.MD5SUM_MARKER,
                        where,
                        Said(
                            N_(
                                "line {lineno}: md5sum's binary-mode '*' before {path}; the"
                                " bag fails strict validation"
                            ),
                            lineno=lineno,
                            path=repr(path[1:]),
                        ),
                        "RFC 8493 §6.1.3",
                    )
                    path = path[1:]
            if path.startswith("./"):
                self.warn(
                    Kind.DOT_SLASH_PREFIX,
                    where,
                    Said(
                        N_("line {lineno}: leading './' in {path}"), lineno=lineno, path=repr(path)
                    ),
                    rule,
                )
                while path.startswith("./"):
                    path = path[2:]
            raw_path = path
            path = self.decode_path(path, where, lineno)
            if not self.check_path(path, where, lineno):
                continue
            if manifest.tag:
                if path.startswith("data/"):
                    self.add(
                        Kind.PAYLOAD_IN_TAG_MANIFEST,
                        where,
                        Said(
                            N_("line {lineno}: a tag manifest must not list payload file {path}"),
                            lineno=lineno,
                            path=repr(path),
                        ),
                        rule,
                    )
                    continue
                if "/" not in path and path.startswith("tagmanifest-"):
                    if self.version_info >= (1, 0):
                        self.add(
                            Kind.TAG_MANIFEST_LISTED,
                            where,
                            Said(
                                N_(
                                    "line {lineno}: a tag manifest must not list tag"
                                    " manifest {path}"
                                ),
                                lineno=lineno,
                                path=repr(path),
                            ),
                            rule,
                        )
                        continue
                    # 0.97 did not forbid it; the entry is still checked like any other.
                    self.warn(
                        Kind.TAG_MANIFEST_LISTED,
                        where,
                        Said(
                            N_("line {lineno}: lists tag manifest {path}"),
                            lineno=lineno,
                            path=repr(path),
                        ),
                        rule,
                    )
            elif not path.startswith("data/"):
                self.add(
                    Kind.OUTSIDE_PAYLOAD,
                    where,
                    Said(
                        N_("line {lineno}: {path} is outside the payload directory data/"),
                        lineno=lineno,
                        path=repr(path),
                    ),
                    rule,
                )
                continue
            previous = seen.get(path)
            if previous is not None:
                if previous.digest != digest:
                    self.add(
                        Kind.CONFLICTING_ENTRY,
                        where,
                        Said(
                            N_("lines {line} and {lineno} give {path} different checksums"),
                            line=previous.line,
                            lineno=lineno,
                            path=repr(path),
                        ),
                        rule,
                    )
                elif self.version_info >= (1, 0):
                    self.add(
                        Kind.DUPLICATE_ENTRY,
                        where,
                        Said(
                            N_(
                                "lines {line} and {lineno} both list {path}; each file must"
                                " be listed exactly once"
                            ),
                            line=previous.line,
                            lineno=lineno,
                            path=repr(path),
                        ),
                        rule,
                    )
                else:
                    self.warn(
                        Kind.DUPLICATE_ENTRY,
                        where,
                        Said(
                            N_("lines {line} and {lineno} both list {path}"),
                            line=previous.line,
                            lineno=lineno,
                            path=repr(path),
                        ),
                        rule,
                    )
                continue
            entry = _Entry(manifest.name, manifest.algorithm, digest, path, lineno)
            entry_raw = raw_path if raw_path != path else None
            seen[path] = entry
            manifest.entries.append(entry)
            if entry_raw is not None:
                self._raw_names[id(entry)] = entry_raw

    # --- fetch.txt ----------------------------------------------------------------------

    def parse_fetch(self) -> None:
        key = b"fetch.txt"
        if key not in self.files:
            return
        rule = "RFC 8493 §2.2.3"
        budget = len(self.files) + ENTRY_SLACK
        for lineno, line in self.text_lines(key, budget):
            if line.strip(" \t") == "":
                self.warn(
                    Kind.BLANK_LINE,
                    "fetch.txt",
                    Said(N_("line {lineno} is blank"), lineno=lineno),
                    rule,
                )
                continue
            match = re.match(r"([^ \t]+)[ \t]+([^ \t]+)[ \t]+(.*)\Z", line, re.DOTALL)
            if match is None:
                self.add(
                    Kind.MALFORMED_LINE,
                    "fetch.txt",
                    Said(N_("line {lineno} is not 'url length filepath'"), lineno=lineno),
                    rule,
                )
                continue
            url, length_raw, path = match.groups()
            if not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", url):
                self.add(
                    Kind.MALFORMED_LINE,
                    "fetch.txt",
                    Said(
                        N_("line {lineno}: {url} is not an absolute URI"),
                        lineno=lineno,
                        url=repr(url),
                    ),
                    rule,
                )
            length: int | None = None
            if length_raw != "-":
                if not length_raw.isdigit() or not length_raw.isascii():
                    self.add(
                        Kind.MALFORMED_LINE,
                        "fetch.txt",
                        Said(
                            N_("line {lineno}: length {length_raw} is neither digits nor '-'"),
                            lineno=lineno,
                            length_raw=repr(length_raw),
                        ),
                        rule,
                    )
                    continue
                length = int(length_raw)
            path = self.decode_path(path, "fetch.txt", lineno)
            if not self.check_path(path, "fetch.txt", lineno):
                continue
            if not path.startswith("data/"):
                self.add(
                    Kind.OUTSIDE_PAYLOAD,
                    "fetch.txt",
                    Said(
                        N_(
                            "line {lineno}: {path} is not a payload file; fetch.txt must not"
                            " list tag files"
                        ),
                        lineno=lineno,
                        path=repr(path),
                    ),
                    rule,
                )
                continue
            pkey = path.encode("utf-8", "surrogateescape")
            present = pkey in self.files
            self.fetch.append(FetchEntry(url, length, path, present))
            self.fetch_keys.add(pkey)
            if not present:
                self.add(
                    Kind.FETCH_INCOMPLETE,
                    path,
                    Said(
                        N_(
                            "listed in fetch.txt ({url}) but not in the bag; custody does"
                            " not fetch, so the bag is incomplete"
                        ),
                        url=url,
                    ),
                    "RFC 8493 §2.2.3, §3",
                )
            elif length is not None and length != self.files[pkey].size:
                self.warn(
                    Kind.FETCH_LENGTH_MISMATCH,
                    path,
                    Said(
                        N_("fetch.txt gives {length} bytes, the file has {size}"),
                        length=length,
                        size=self.files[pkey].size,
                    ),
                    "RFC 8493 §5.3",
                )
        if self.fetch and all(f.present for f in self.fetch):
            self.warn(
                Kind.FETCH_PRESENT,
                "fetch.txt",
                Said(N_("every file it lists is already in the bag; nothing was fetched")),
                rule,
            )

    # --- matching manifest entries to files -------------------------------------------------

    def resolve(self, manifest: _Manifest) -> None:
        """Match each entry to exactly one file on disk, or make the finding that says why."""
        nfc_index: dict[str, list[bytes]] = {}
        fold_index: dict[str, list[bytes]] = {}

        def build_indexes() -> None:
            # Only built when some entry names no file exactly: most bags never need it.
            if nfc_index:
                return
            for k in self.files:
                if k.startswith(b"data/") == manifest.tag:
                    continue
                try:
                    name = k.decode("utf-8")
                except UnicodeDecodeError:
                    continue
                nfc_index.setdefault(_nfc_key(name), []).append(k)
                fold_index.setdefault(_fold_key(name), []).append(k)

        exact = {e.path.encode("utf-8", "surrogateescape"): e for e in manifest.entries}
        by_nfc: dict[str, list[_Entry]] = {}
        for e in manifest.entries:
            by_nfc.setdefault(_fold_key(e.path), []).append(e)
        for group in by_nfc.values():
            if len(group) > 1:
                names = ", ".join(repr(e.path) for e in group)
                self.warn(
                    Kind.NAME_VARIANTS,
                    manifest.name,
                    Said(
                        N_("entries differ only in case or Unicode normalisation: {names}"),
                        names=names,
                    ),
                    "RFC 8493 §6.1.1.3",
                )
        rule = "RFC 8493 §3"
        for entry in manifest.entries:
            key = entry.path.encode("utf-8", "surrogateescape")
            if key in self.files:
                self._cover(manifest, entry, key)
                continue
            raw = self._raw_names.get(id(entry))
            if raw is not None and raw.encode("utf-8", "surrogateescape") in self.files:
                rkey = raw.encode("utf-8", "surrogateescape")
                if rkey not in exact:
                    self.warn(
                        Kind.PERCENT_LITERAL_NAME,
                        manifest.name,
                        Said(
                            N_(
                                "line {line}: {raw} names the file literally; RFC 8493 reads"
                                " it as {path} (bagit-python writes names this way)"
                            ),
                            line=entry.line,
                            raw=repr(raw),
                            path=repr(entry.path),
                        ),
                        "RFC 8493 §2.1.3",
                    )
                    self._cover(manifest, entry, rkey, as_written=raw)
                    continue
            if key in self.dirs:
                self.add(
                    Kind.LISTS_DIRECTORY,
                    entry.path,
                    Said(
                        N_("{name} line {line} lists a folder; manifests list files only"),
                        name=manifest.name,
                        line=entry.line,
                    ),
                    "RFC 8493 §2.1.3",
                )
                continue
            build_indexes()
            nfc_hits = [k for k in nfc_index.get(_nfc_key(entry.path), []) if k != key]
            if len(nfc_hits) == 1:
                target = nfc_hits[0]
                if target in exact:
                    self.warn(
                        Kind.NAME_VARIANTS,
                        _show(target),
                        Said(
                            N_(
                                "{name} lists it twice, in two Unicode normalisation forms;"
                                " both entries are checked against this one file"
                            ),
                            name=manifest.name,
                        ),
                        "RFC 8493 §6.1.1.3",
                    )
                else:
                    self.warn(
                        Kind.NORMALISATION_MISMATCH,
                        _show(target),
                        Said(
                            N_("{name} names it in another Unicode normalisation form ({path})"),
                            name=manifest.name,
                            path=repr(entry.path),
                        ),
                        "RFC 8493 §6.1.1.2",
                    )
                self._cover(manifest, entry, target)
                continue
            fold_hits = [
                k for k in fold_index.get(_fold_key(entry.path), []) if k in exact and k != key
            ]
            if len(fold_hits) == 1:
                self.warn(
                    Kind.NAME_VARIANTS,
                    _show(fold_hits[0]),
                    Said(
                        N_(
                            "{name} also lists it as {path} (differs only in case), as a"
                            " case-insensitive filesystem leaves it; both entries are"
                            " checked against this one file"
                        ),
                        name=manifest.name,
                        path=repr(entry.path),
                    ),
                    "RFC 8493 §6.1.1.1",
                )
                self._cover(manifest, entry, fold_hits[0])
                continue
            base = entry.path.rsplit("/", 1)[-1]
            if (
                not manifest.tag
                and (base.lower() in _SYSTEM_NAMES or base.startswith("._"))
                and entry.digest == _EMPTY_DIGESTS[manifest.algorithm]
                and self._all_empty(entry.path)
            ):
                if all(p != entry.path for p, _ in self.absent_system):
                    self.absent_system.append((entry.path, 0))
                    self.warn(
                        Kind.ABSENT_SYSTEM_FILE,
                        entry.path,
                        Said(
                            N_(
                                "operating-system metadata file listed as empty but absent;"
                                " no content is missing"
                            )
                        ),
                        "RFC 8493 §3",
                    )
                continue
            if key in self.fetch_keys:
                continue  # FETCH_INCOMPLETE already says why
            self.add(
                Kind.FILE_MISSING,
                entry.path,
                Said(
                    N_("listed in {name} (line {line}) but not in the bag"),
                    name=manifest.name,
                    line=entry.line,
                ),
                rule,
            )

    def _all_empty(self, path: str) -> bool:
        """True when every manifest that lists ``path`` gives the digest of zero bytes."""
        return all(
            e.digest == _EMPTY_DIGESTS[m.algorithm]
            for m in self.manifests
            for e in m.entries
            if e.path == path
        )

    def _cover(
        self, manifest: _Manifest, entry: _Entry, key: bytes, as_written: str | None = None
    ) -> None:
        entry.key = key
        name = entry.path if as_written is None else as_written
        if name.encode("utf-8", "surrogateescape") != key:
            self.listed_as.setdefault(key, set()).add(name)
        previous = manifest.covers.get(key)
        if previous is not None and previous != entry.digest:
            self.add(
                Kind.CONFLICTING_ENTRY,
                _show(key),
                Said(
                    N_("{name} gives this file two different checksums under two names"),
                    name=manifest.name,
                ),
                "RFC 8493 §2.1.3",
            )
        manifest.covers.setdefault(key, entry.digest)
