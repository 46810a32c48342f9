"""Strict, read-only validation of BagIt bags (RFC 8493 and the 0.93–0.97 drafts).

Owns custody's own verdict on a bag that another archive hands over: ``validate_bag``
walks the bag without following a single symbolic link, checks every structural rule,
every manifest and tag manifest (every algorithm present, not just the strongest), the
Payload-Oxum and fetch.txt, and returns a frozen ``BagValidation``: named findings (errors
refuse the bag, warnings do not), the declared version and encoding, bag-info.txt exactly
as written, and every payload and tag file with the bag's own manifest digests. It never
writes, never fetches a URL and never calls bagit-python (that is the independent check
the tests compare against). May import only the standard library, ``custody.errors``,
``custody.i18n`` and the sibling ``said``: each finding's message is English (what records,
``--json`` and programs see) and is said in the run's language when a finding is printed;
its kind, path and rule never change with the language.

Layout, one module per responsibility (each a stage of the validator, which inherits them in
this order): ``model`` (findings and results), ``rules`` (the format's tables), ``state``
(what one run collects), ``files`` (reading without following links), ``tagfiles``
(bagit.txt, bag-info.txt), ``manifests`` (manifests and fetch.txt matched to files),
``checks`` (completeness, digests, Payload-Oxum, the result) and ``validator``
(``validate_bag`` and the command line; ``python -m custody.acquisition.sources.bagit BAG``).

Sources followed (cited by section in the code):

* RFC 8493, "The BagIt File Packaging Format (V1.0)", October 2018 — the XML source in
  LibraryOfCongress/bagit-spec, commit 753a54db89bc312998c503c9a0048629ad30a219.
* BagIt 0.97 (draft-kunze-bagit, jkunze/bagitspec commit 94d14cd) for the older rules:
  a payload file need only be in one payload manifest, ``*`` may precede a filename,
  whitespace around the colon is free, no percent-encoding of names (that arrived with
  the 0.98 drafts that became 1.0).
* bagit-python (LibraryOfCongress/bagit-python, ``src/bagit/__init__.py`` at commit
  462f6b0a2be24eaec150ca43d67906e872613b1a) read for its rules and quirks: duplicate
  manifest entries are an error from 1.0 and a warning before; ``package-info.txt`` holds
  the metadata for 0.93–0.95; it decodes only %0D/%0A (never %25) and strips a leading ``*``.
* The Library of Congress conformance suite (LibraryOfCongress/bagit-conformance-suite,
  commit 9ab48705c06664f9f419ca740c728c9f89a61e7c) for what must pass, fail or warn.

Tolerances, each reported as a warning and never hiding an unverified byte: a leading
``./`` or md5sum ``*`` (RFC 8493 §6.1.3 "MUST warn"); a manifest name that differs from
the file on disk only in Unicode normalisation (§6.1.1.3 "SHOULD tolerate"); a second
entry naming an already-listed file in another case or normalisation form, with the same
digest (what a case-insensitive or normalising filesystem leaves behind); an absent
operating-system metadata file (``.DS_Store``, ``Thumbs.db``…) whose every manifest digest
is that of zero bytes (copying tools drop such files; no content is lost); a 1.0 name
holding a bare ``%`` or written unencoded by bagit-python (the literal file is used when
the decoded one is absent).

Caps (work and memory grow with the bag's real size, never with what it claims):

* a tag-file line may hold at most ``MAX_LINE_CHARS`` (65,536) characters;
* ``bagit.txt`` at most ``MAX_DECLARATION_BYTES`` (4 KiB); bag-info.txt at most
  ``MAX_INFO_BYTES`` (8 MiB) and ``MAX_INFO_FIELDS`` (20,000) fields;
* a manifest or fetch.txt may hold at most (files in the bag + ``ENTRY_SLACK`` (10,000))
  entries: a legitimate manifest lists each file once, so more is refused unread;
* directories may nest at most ``MAX_DEPTH`` (256) levels;
* at most ``MAX_FINDINGS_PER_KIND`` (200) findings of one kind are kept, then one
  ``FindingsTruncated`` finding gives the count of the rest;
* files are hashed in ``CHUNK`` (1 MiB) reads, every algorithm in one pass;
  Payload-Oxum is compared as integers and never used to size anything (§5.3).
"""

from __future__ import annotations

from custody.acquisition.sources.bagit.model import (
    CHUNK,
    ENTRY_SLACK,
    MAX_DECLARATION_BYTES,
    MAX_DEPTH,
    MAX_FINDINGS_PER_KIND,
    MAX_INFO_BYTES,
    MAX_INFO_FIELDS,
    MAX_LINE_CHARS,
    SUPPORTED_VERSIONS,
    BagInvalidError,
    BagValidation,
    FetchEntry,
    Finding,
    InfoField,
    Kind,
    PayloadFile,
    Severity,
    TagFile,
    require_valid,
)
from custody.acquisition.sources.bagit.rules import hashlib_name
from custody.acquisition.sources.bagit.validator import main, validate_bag

__all__ = [
    "CHUNK",
    "ENTRY_SLACK",
    "MAX_DECLARATION_BYTES",
    "MAX_DEPTH",
    "MAX_FINDINGS_PER_KIND",
    "MAX_INFO_BYTES",
    "MAX_INFO_FIELDS",
    "MAX_LINE_CHARS",
    "SUPPORTED_VERSIONS",
    "BagInvalidError",
    "BagValidation",
    "FetchEntry",
    "Finding",
    "InfoField",
    "Kind",
    "PayloadFile",
    "Severity",
    "TagFile",
    "hashlib_name",
    "main",
    "require_valid",
    "validate_bag",
]
