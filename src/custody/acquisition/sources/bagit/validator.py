"""``validate_bag`` (the phases in order) and ``main`` (the command line)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

from custody.acquisition.sources.bagit.checks import _Checks
from custody.acquisition.sources.bagit.model import BagValidation
from custody.errors import InputError


class _Validator(_Checks):
    def run(self) -> BagValidation:
        self.open_root()
        try:
            self.walk()
            if self.declaration():
                self.metadata()
                self.find_manifests()
                for m in self.manifests:
                    self.parse_manifest(m)
                self.parse_fetch()
                for m in self.manifests:
                    self.resolve(m)
                self.completeness()
                self.tag_coverage()
                self.hash_all()
            self.names()
            octets, streams = self.payload_oxum()
            return self.result(octets, streams)
        finally:
            os.close(self.root_fd)


def validate_bag(path: str | os.PathLike[str]) -> BagValidation:
    """Validate the bag at ``path`` (a folder) strictly, reading it and writing nothing.

    Raises ``InputError`` only when ``path`` cannot be opened as a folder at all (missing,
    a file, a symbolic link, no permission); every problem inside the bag is a finding.
    """
    return _Validator(path).run()


def main(argv: Sequence[str] | None = None, *, err: Callable[[str], object] | None = None) -> int:
    """``python -m custody.acquisition.sources.bagit BAG``: 0 valid, 1 invalid, 2 usage."""
    args = list(sys.argv[1:] if argv is None else argv)
    write = err or (lambda line: print(line, file=sys.stderr))
    if len(args) != 1 or args[0].startswith("-"):
        write("usage: python -m custody.acquisition.sources.bagit BAG")
        return 2
    try:
        result = validate_bag(args[0])
    except InputError as exc:
        write(f"error: {exc}")
        return 1
    for finding in result.warnings:
        write(f"warning: {finding}")
    for finding in result.errors:
        write(f"error: {finding}")
    return 0 if result.valid else 1
