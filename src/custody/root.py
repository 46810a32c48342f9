"""The evidence root: finding it, creating it, its ``.custody/`` layout and its config.

An evidence root is a folder holding ``.custody/``. Commands run anywhere inside it find
it by walking up, as git does; ``--root`` or ``CUSTODY_ROOT`` override the search. The
config is TOML written once by ``init`` and readable by hand; unknown keys are kept.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from custody.errors import RootError, StorageError, UsageError
from custody.i18n import _
from custody.system.files import describe_os_error, fsync_dir, write_atomic

STATE_DIR = ".custody"
_STAGING = ".init-"  # STATE_DIR + this + random: an init in progress
CONFIG_FORMAT = 1
# The longest wait a config may ask for (exiftool on one file, one TSA request): a day.
# More is a mistake, and past ~10^9 s the operating system's timers cannot hold it at all.
MAX_TIMEOUT = 86400.0

# Public RFC 3161 services that answer anonymous requests; see docs/timestamps.md.
# Digests a root may record for each file (custody.evidence.hashing computes them). SHA-256
# is always among them; the default adds BLAKE3, nearly free beside it (docs/design.md).
DIGEST_ALGORITHMS = ("sha256", "blake3", "sha512", "sha3-256", "sha1", "md5")
DEFAULT_DIGESTS = ("sha256", "blake3")

DEFAULT_TSAS = (
    "http://timestamp.digicert.com",
    "http://timestamp.sectigo.com",
    "https://freetsa.org/tsr",
)


def chosen_digests(names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The digests a user asked for at ``init``: SHA-256 first and always, no repeats.

    An unknown name is a usage error; ``sha256`` need not be named (it cannot be left out).
    """
    chosen = ["sha256"]
    for name in names:
        algorithm = name.strip().lower()
        if algorithm not in DIGEST_ALGORITHMS:
            raise UsageError(
                _("unknown digest {name}: choose from {choices}").format(
                    name=repr(name), choices=", ".join(DIGEST_ALGORITHMS)
                )
            )
        if algorithm not in chosen:
            chosen.append(algorithm)
    return tuple(chosen)


@dataclass(frozen=True)
class Config:
    digests: tuple[str, ...] = DEFAULT_DIGESTS
    exiftool_timeout: float = 30.0
    exiftool_embedded: bool = False
    tsa_urls: tuple[str, ...] = DEFAULT_TSAS
    tsa_min_success: int = 1
    tsa_timeout: float = 20.0
    tsa_roots: tuple[str, ...] = ()
    case: dict[str, str] = field(default_factory=dict)
    ledger: str = "file"

    def to_toml(self) -> dict[str, Any]:
        return {
            "format": CONFIG_FORMAT,
            "ledger": {"backend": self.ledger},
            "catalogue": {
                "digests": list(self.digests),
                "exiftool_timeout": self.exiftool_timeout,
                "exiftool_embedded": self.exiftool_embedded,
            },
            "timestamps": {
                "tsa": list(self.tsa_urls),
                "min_success": self.tsa_min_success,
                "timeout": self.tsa_timeout,
                "roots": list(self.tsa_roots),
            },
            "case": dict(self.case),
        }

    @staticmethod
    def from_toml(doc: dict[str, Any], where: Path) -> Config:
        try:
            if doc.get("format") != CONFIG_FORMAT:
                raise ValueError(
                    _("unsupported config format {format}").format(format=repr(doc.get("format")))
                )
            cat = doc.get("catalogue", {})
            ts = doc.get("timestamps", {})
            digests = tuple(str(d) for d in cat.get("digests", DEFAULT_DIGESTS))
            if "sha256" not in digests:
                raise ValueError(_("catalogue.digests must include sha256"))
            unknown = [d for d in digests if d not in DIGEST_ALGORITHMS]
            if unknown or len(set(digests)) != len(digests):
                raise ValueError(
                    _("catalogue.digests must be distinct names among {choices}").format(
                        choices=", ".join(DIGEST_ALGORITHMS)
                    )
                )
            for section, key, value in (
                ("catalogue", "exiftool_timeout", cat.get("exiftool_timeout", 30.0)),
                ("timestamps", "timeout", ts.get("timeout", 20.0)),
            ):
                seconds = float(value)
                # NaN fails every comparison, so "not > 0" also catches it.
                if not (0 < seconds <= MAX_TIMEOUT):
                    raise ValueError(
                        _(
                            "{setting} must be a number of seconds above 0 and at most "
                            "{most} (one day)"
                        ).format(setting=f"{section}.{key}", most=f"{MAX_TIMEOUT:.0f}")
                    )
            if int(ts.get("min_success", 1)) < 1:
                raise ValueError(_("timestamps.min_success must be at least 1"))
            return Config(
                digests=digests,
                exiftool_timeout=float(cat.get("exiftool_timeout", 30.0)),
                exiftool_embedded=bool(cat.get("exiftool_embedded", False)),
                tsa_urls=tuple(str(u) for u in ts.get("tsa", DEFAULT_TSAS)),
                tsa_min_success=int(ts.get("min_success", 1)),
                tsa_timeout=float(ts.get("timeout", 20.0)),
                tsa_roots=tuple(str(r) for r in ts.get("roots", ())),
                case={str(k): str(v) for k, v in doc.get("case", {}).items()},
                ledger=str(doc.get("ledger", {}).get("backend", "file")),
            )
        except (ValueError, TypeError, AttributeError, OverflowError) as exc:
            raise RootError(
                _("{path} is not a valid custody config: {why}").format(path=where, why=exc)
            ) from None


@dataclass(frozen=True)
class EvidenceRoot:
    """A folder under custody. ``path`` is absolute and resolved."""

    path: Path

    @property
    def state(self) -> Path:
        return self.path / STATE_DIR

    @property
    def ledger_path(self) -> Path:
        return self.state / "ledger.jsonl"

    @property
    def lock_path(self) -> Path:
        return self.state / "ledger.lock"

    @property
    def config_path(self) -> Path:
        return self.state / "config.toml"

    @property
    def keys_dir(self) -> Path:
        return self.state / "keys"

    @property
    def timestamps_dir(self) -> Path:
        return self.state / "timestamps"

    @property
    def cache_dir(self) -> Path:
        return self.state / "cache"

    def config(self) -> Config:
        try:
            raw = self.config_path.read_bytes()
        except OSError as exc:
            raise RootError(describe_os_error(exc, "read", self.config_path)) from None
        try:
            doc = tomllib.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise RootError(
                _("{path} is not valid TOML: {why}").format(path=self.config_path, why=exc)
            ) from None
        return Config.from_toml(doc, self.config_path)

    def relative(self, path: str | os.PathLike[str]) -> str:
        """The path of ``path`` relative to the root, with '/' separators; RootError outside.

        Links in the folders leading to ``path`` are resolved; ``path`` itself is not, so a
        symbolic link named on the command line stays a link (and is reported, not followed).
        """
        absolute = os.path.abspath(path)
        parent, name = os.path.split(absolute)
        real = (
            os.path.realpath(absolute)
            if name in ("", ".", "..")
            else os.path.join(os.path.realpath(parent), name)
        )
        root = str(self.path)
        if real != root and not real.startswith(root.rstrip("/") + "/"):
            raise RootError(
                _(
                    "{path} is outside the evidence root {root}; use 'custody ingest' to copy it in"
                ).format(path=os.fsdecode(path), root=root)
            )
        rel = os.path.relpath(real, root)
        return "" if rel == "." else rel

    def folder_inside(self, into: str, option: str = "--into") -> bytes:
        """A folder the user named for custody to write into, as clean root-relative bytes.

        ``./x``, ``x//y`` and ``x/./y`` mean ``x`` and ``x/y``; an absolute path is accepted
        only inside the root. Refused (UsageError, one line): a path that leaves the root
        (``..``), custody's own state or a nested root's (any ``.custody`` component), NUL,
        and the root itself. Links are not resolved here: the writes that follow open each
        component without following links (``custody.system.paths``).
        """
        text = into
        if text.startswith("/"):
            base = str(self.path).rstrip("/") + "/"
            normal = os.path.normpath(text)
            if not (normal + "/").startswith(base):
                raise UsageError(
                    _("{option} {folder} must be a folder inside the evidence root").format(
                        option=option, folder=repr(into)
                    )
                )
            text = normal[len(base) :]
        parts = [p for p in text.split("/") if p not in ("", ".")]
        if not parts or ".." in parts or STATE_DIR in parts or "\0" in text:
            raise UsageError(
                _(
                    "{option} {folder} must be a folder inside the evidence root, outside {state}/"
                ).format(option=option, folder=repr(into), state=STATE_DIR)
            )
        return os.fsencode("/".join(parts))

    def absolute(self, rel: str | bytes) -> bytes:
        """The file-system path (bytes, exact) of a root-relative path."""
        rel_bytes = rel if isinstance(rel, bytes) else os.fsencode(rel)
        return os.fsencode(self.path) + b"/" + rel_bytes


def find_root(
    start: str | os.PathLike[str] | None = None, explicit: str | None = None
) -> EvidenceRoot:
    """Locate the evidence root: explicit path, else CUSTODY_ROOT, else walk up from start."""
    chosen = explicit or os.environ.get("CUSTODY_ROOT")
    if chosen:
        path = Path(chosen).resolve()
        if not (path / STATE_DIR).is_dir():
            raise RootError(
                _("{path} is not an evidence root (no {state}/); run 'custody init'").format(
                    path=chosen, state=STATE_DIR
                )
            )
        return EvidenceRoot(path)
    here = Path(start or os.getcwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / STATE_DIR).is_dir():
            return EvidenceRoot(candidate)
    raise RootError(
        _(
            "not inside an evidence root ({path} or any parent): run 'custody init' or pass --root"
        ).format(path=here)
    )


def init_root(path: str | os.PathLike[str], config: Config | None = None) -> EvidenceRoot:
    """Create ``.custody/`` (``custody.ledger.backends.create_root`` for a PostgreSQL ledger)."""
    import tomli_w

    target = Path(path).resolve()
    if (target / STATE_DIR).exists():
        raise RootError(
            _("{path} is already an evidence root ({state}/ exists)").format(
                path=target, state=STATE_DIR
            )
        )
    if target.exists() and not target.is_dir():
        raise UsageError(_("{path} exists and is not a folder").format(path=target))
    root = EvidenceRoot(target)
    # Built in a staging folder and renamed into place, so an init cut short (power, kill)
    # never leaves a half-made .custody/ that refuses the next attempt; the next init
    # removes what such a run left.
    staging = target / f"{STATE_DIR}{_STAGING}{secrets.token_hex(4)}"
    try:
        target.mkdir(parents=True, exist_ok=True)
        for stale in target.glob(f"{STATE_DIR}{_STAGING}*"):
            shutil.rmtree(stale, ignore_errors=True)
        staging.mkdir()
        for sub in (root.keys_dir, root.timestamps_dir, root.cache_dir):
            (staging / sub.name).mkdir()
        config_text = tomli_w.dumps((config or Config()).to_toml()).encode()
        write_atomic(staging / root.config_path.name, config_text)
        # An empty ledger is a valid ledger of size 0.
        write_atomic(staging / root.ledger_path.name, b"")
        try:
            os.rename(staging, root.state)
        except OSError:
            if root.state.exists():  # another init won the race
                raise RootError(
                    _("{path} is already an evidence root ({state}/ exists)").format(
                        path=target, state=STATE_DIR
                    )
                ) from None
            raise
        fsync_dir(target)
    except OSError as exc:
        raise StorageError(describe_os_error(exc, "initialise", target)) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root
