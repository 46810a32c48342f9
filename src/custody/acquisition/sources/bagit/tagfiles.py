"""The bag declaration (bagit.txt, §2.1.1) and the metadata (bag-info.txt, §2.2.2)."""

from __future__ import annotations

import re

from custody.acquisition.sources.bagit.files import _Files
from custody.acquisition.sources.bagit.model import (
    MAX_DECLARATION_BYTES,
    MAX_INFO_BYTES,
    MAX_INFO_FIELDS,
    SUPPORTED_VERSIONS,
    InfoField,
    Kind,
)
from custody.acquisition.sources.bagit.rules import (
    _DECL_LABELS,
    _ENCODINGS,
    _LINE_BREAK,
    _OXUM,
    _SHOULD_NOT_REPEAT,
    _VERSION,
)
from custody.acquisition.sources.bagit.state import _Encoding
from custody.acquisition.sources.said import Said
from custody.i18n import N_


class _TagFiles(_Files):
    def declaration(self) -> bool:
        """Parse bagit.txt (§2.1.1); False when the bag cannot be read further."""
        rule = "RFC 8493 §2.1.1"
        if b"bagit.txt" not in self.files:
            self.add(
                Kind.BAG_DECLARATION_MISSING,
                "bagit.txt",
                Said(N_("missing: every bag must declare itself in bagit.txt")),
                rule,
            )
            return False
        data = self.read_bounded(b"bagit.txt", MAX_DECLARATION_BYTES)
        if data is None:
            return False
        if data.startswith(b"\xef\xbb\xbf"):
            self.add(
                Kind.BYTE_ORDER_MARK, "bagit.txt", Said(N_("begins with a byte-order mark")), rule
            )
            data = data[3:]
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            self.add(
                Kind.BAG_DECLARATION_INVALID, "bagit.txt", Said(N_("is not valid UTF-8")), rule
            )
            return False
        lines = _LINE_BREAK.split(text)
        if lines and lines[-1] == "":
            lines.pop()  # the last line's ending (§2.3 recommends one)
        while lines and lines[-1].strip() == "":
            lines.pop()
            self.warn(
                Kind.BLANK_LINE,
                "bagit.txt",
                Said(N_("blank line after the two declarations")),
                rule,
            )
        parsed: list[tuple[str, str, str]] = []
        for n, line in enumerate(lines, 1):
            label, sep, value = line.partition(":")
            if not sep:
                self.add(
                    Kind.BAG_DECLARATION_INVALID,
                    "bagit.txt",
                    Said(N_("line {n} is not 'Label: value'"), n=n),
                    rule,
                )
                return False
            parsed.append((label, value, line))
        if len(parsed) != 2:
            self.add(
                Kind.BAG_DECLARATION_INVALID,
                "bagit.txt",
                Said(N_("has {count} lines; it must have exactly two"), count=len(parsed)),
                rule,
            )
        found: dict[str, str] = {}
        for n, (label, value, _line) in enumerate(parsed[:2]):
            want = _DECL_LABELS[n]
            if label.strip().casefold() != want.casefold():
                self.add(
                    Kind.BAG_DECLARATION_INVALID,
                    "bagit.txt",
                    Said(
                        N_("line {number} must be '{want}: …', found {value}"),
                        number=n + 1,
                        want=want,
                        value=repr(label.strip()),
                    ),
                    rule,
                )
                continue
            if label.strip() != want:
                self.warn(
                    Kind.BAG_DECLARATION_INVALID,
                    "bagit.txt",
                    Said(
                        N_("label {value} is written in another case than {want}"),
                        value=repr(label.strip()),
                        want=repr(want),
                    ),
                    rule,
                )
            found[want] = value
        version_raw = found.get("BagIt-Version")
        if version_raw is None:
            if not any(f.kind == Kind.BAG_DECLARATION_INVALID for f in self.errors):
                self.add(
                    Kind.BAG_DECLARATION_INVALID, "bagit.txt", Said(N_("no BagIt-Version")), rule
                )
            return False
        match = _VERSION.match(version_raw.strip(" \t"))
        if match is None:
            self.add(
                Kind.BAG_DECLARATION_INVALID,
                "bagit.txt",
                Said(N_("BagIt-Version {value} is not M.N"), value=repr(version_raw.strip())),
                rule,
            )
            return False
        self.version = version_raw.strip(" \t")
        self.version_info = (int(match.group(1)), int(match.group(2)))
        if self.version_info not in SUPPORTED_VERSIONS:
            self.add(
                Kind.UNSUPPORTED_VERSION,
                "bagit.txt",
                Said(
                    N_(
                        "BagIt-Version {version} is not one custody knows the rules of"
                        " (0.93–0.97, 1.0)"
                    ),
                    version=self.version,
                ),
                rule,
            )
            return False
        if self.version_info >= (1, 0):
            # 1.0 allows exactly "Label: value"; older versions allowed free whitespace
            # around the colon (§2.2.2, last paragraph before the reserved elements).
            for label, value, line in parsed[:2]:
                if label != label.strip() or not re.fullmatch(r"[ \t][^ \t](.*[^ \t])?", value):
                    self.add(
                        Kind.BAG_DECLARATION_INVALID,
                        "bagit.txt",
                        Said(
                            N_(
                                "{text}: BagIt 1.0 requires 'Label: value' with one space"
                                " after the colon and none elsewhere"
                            ),
                            text=repr(line),
                        ),
                        rule,
                    )
        encoding_raw = found.get("Tag-File-Character-Encoding")
        if encoding_raw is None:
            self.add(
                Kind.BAG_DECLARATION_INVALID,
                "bagit.txt",
                Said(N_("no Tag-File-Character-Encoding")),
                rule,
            )
            return False
        name = encoding_raw.strip(" \t")
        known = _ENCODINGS.get(name.lower())
        if known is None:
            self.add(
                Kind.UNSUPPORTED_ENCODING,
                "bagit.txt",
                Said(
                    N_(
                        "Tag-File-Character-Encoding {name} is not a character set custody"
                        " reads (UTF-8 is recommended)"
                    ),
                    name=repr(name),
                ),
                rule,
            )
            return False
        self.encoding = _Encoding(name, known[0], known[1])
        if known[0] != "utf-8":
            self.warn(
                Kind.UNSUPPORTED_ENCODING,
                "bagit.txt",
                Said(N_("tag files are in {name}; UTF-8 is strongly recommended"), name=name),
                "RFC 8493 §2.3",
            )
        return True

    # --- bag-info.txt ------------------------------------------------------------------

    def metadata(self) -> None:
        """Parse bag-info.txt (package-info.txt before 0.96) keeping every element (§2.2.2)."""
        name = "package-info.txt" if self.version_info <= (0, 95) else "bag-info.txt"
        key = name.encode()
        if key not in self.files:
            return
        self.info_file = name
        rule = "RFC 8493 §2.2.2"
        strict = self.version_info >= (1, 0)
        node = self.files[key]
        if node.size > MAX_INFO_BYTES:
            self.add(
                Kind.LINE_TOO_LONG,
                name,
                Said(N_("larger than {max_info_bytes} bytes"), max_info_bytes=MAX_INFO_BYTES),
                "custody cap",
            )
            return
        current: list[str] | None = None  # [label, value, raw, line]
        fields: list[InfoField] = []

        def close() -> None:
            if current is not None:
                fields.append(InfoField(current[0], current[1], current[2], int(current[3])))

        for lineno, line in self.text_lines(key, MAX_INFO_FIELDS * 4):
            if line.strip(" \t") == "":
                self.warn(
                    Kind.BLANK_LINE, name, Said(N_("line {lineno} is blank"), lineno=lineno), rule
                )
                continue
            if line[0] in " \t":
                if current is None:
                    self.add(
                        Kind.BAG_INFO_MALFORMED,
                        name,
                        Said(
                            N_("line {lineno} continues a value but no element precedes it"),
                            lineno=lineno,
                        ),
                        rule,
                    )
                    continue
                # Padding of a continued line is not part of the value; the break is.
                current[1] += "\n" + line.lstrip(" \t")
                current[2] += "\n" + line
                continue
            close()
            current = None
            label, sep, value = line.partition(":")
            if not sep:
                self.add(
                    Kind.BAG_INFO_MALFORMED,
                    name,
                    Said(N_("line {lineno} has no ':' between label and value"), lineno=lineno),
                    rule,
                )
                continue
            if label.strip(" \t") == "":
                self.add(
                    Kind.BAG_INFO_MALFORMED,
                    name,
                    Said(N_("line {lineno} has an empty label"), lineno=lineno),
                    rule,
                )
                continue
            if strict:
                if label != label.strip(" \t"):
                    self.add(
                        Kind.BAG_INFO_MALFORMED,
                        name,
                        Said(
                            N_("line {lineno}: label {label} starts or ends with whitespace"),
                            lineno=lineno,
                            label=repr(label),
                        ),
                        rule,
                    )
                    label = label.strip(" \t")
                if value == "":
                    self.warn(
                        Kind.BAG_INFO_STYLE,
                        name,
                        Said(N_("line {lineno}: {label} has no value"), lineno=lineno, label=label),
                        rule,
                    )
                elif value[0] not in " \t":
                    self.add(
                        Kind.BAG_INFO_MALFORMED,
                        name,
                        Said(N_("line {lineno}: no whitespace after the colon"), lineno=lineno),
                        rule,
                    )
                else:
                    value = value[1:]
            else:
                label = label.strip(" \t")
                value = value.strip(" \t")
            if len(fields) >= MAX_INFO_FIELDS:
                self.add(
                    Kind.TOO_MANY_ENTRIES,
                    name,
                    Said(
                        N_("more than {max_info_fields} elements"), max_info_fields=MAX_INFO_FIELDS
                    ),
                    "custody cap",
                )
                current = None
                break
            current = [label, value, line, str(lineno)]
        close()
        self.info = fields
        self._reserved_elements(name)

    def _reserved_elements(self, name: str) -> None:
        rule = "RFC 8493 §2.2.2"
        by_label: dict[str, list[InfoField]] = {}
        for f in self.info:
            by_label.setdefault(f.label.casefold(), []).append(f)
        for label in _SHOULD_NOT_REPEAT:
            if len(by_label.get(label, [])) > 1:
                self.warn(
                    Kind.RESERVED_ELEMENT_REPEATED,
                    name,
                    Said(
                        N_("{label} appears {count} times"),
                        label=by_label[label][0].label,
                        count=len(by_label[label]),
                    ),
                    rule,
                )
        for f in by_label.get("bagging-date", []):
            if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", f.value.strip()):
                self.warn(
                    Kind.BAG_INFO_STYLE,
                    name,
                    Said(N_("Bagging-Date {value} is not YYYY-MM-DD"), value=repr(f.value)),
                    rule,
                )
        oxums = by_label.get("payload-oxum", [])
        if not oxums:
            return
        if len(oxums) > 1:
            distinct = {f.value.strip() for f in oxums}
            if self.version_info >= (1, 0) or len(distinct) > 1:
                self.add(
                    Kind.PAYLOAD_OXUM_MALFORMED,
                    name,
                    Said(
                        N_("Payload-Oxum appears {count} times; it must appear once"),
                        count=len(oxums),
                    ),
                    rule,
                )
                return
            self.warn(Kind.RESERVED_ELEMENT_REPEATED, name, Said(N_("Payload-Oxum repeated")), rule)
        match = _OXUM.fullmatch(oxums[0].value.strip(" \t"))
        if match is None:
            self.add(
                Kind.PAYLOAD_OXUM_MALFORMED,
                name,
                Said(
                    N_("Payload-Oxum {value} is not OctetCount.StreamCount"),
                    value=repr(oxums[0].value),
                ),
                rule,
            )
            return
        self.oxum = (int(match.group(1)), int(match.group(2)))

    # --- manifests ----------------------------------------------------------------------
