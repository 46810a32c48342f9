"""What the C2PA SDK concluded about one file, and what its manifest claims, as frozen
data: C2PA's three validation states, status entries, the signer, actions, ingredients."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

StatusKind = Literal["success", "informational", "failure"]


class ValidationState(StrEnum):
    """C2PA's three validation states (see the module docstring)."""

    INVALID = "invalid"
    VALID = "valid"
    TRUSTED = "trusted"


@dataclass(frozen=True)
class StatusEntry:
    """One validation status the SDK reported, as it reported it."""

    kind: StatusKind
    code: str
    url: str | None
    explanation: str | None


@dataclass(frozen=True)
class SignerCertificate:
    """The end-entity certificate from the claim signature's x5chain (a description)."""

    subject: str
    issuer: str
    serial_number: str  # hexadecimal
    not_before: str  # RFC 3339, UTC
    not_after: str
    sha256_fingerprint: str  # of the DER certificate, hexadecimal


@dataclass(frozen=True)
class SignerInfo:
    """Who signed the active manifest: the SDK's summary and the certificate itself."""

    algorithm: str | None
    common_name: str | None  # as the SDK reports it
    issuer_organization: str | None  # the SDK's "issuer" field
    signing_time: str | None  # from a time-stamp, when the manifest has one
    certificate: SignerCertificate | None
    chain_length: int


@dataclass(frozen=True)
class Action:
    """One entry of a ``c2pa.actions`` assertion: a claim by the signer."""

    action: str
    when: str | None
    software_agent: str | None
    digital_source_type: str | None
    description: str | None


@dataclass(frozen=True)
class Ingredient:
    """One ingredient of the active manifest: a claim about where the content came from."""

    title: str | None
    format: str | None
    relationship: str | None
    instance_id: str | None
    document_id: str | None
    active_manifest: str | None
    validation_codes: tuple[str, ...]


@dataclass(frozen=True)
class C2paReport:
    """What the C2PA SDK concluded about one file's manifest, and what the manifest claims."""

    path: str
    validation_state: ValidationState
    trust_anchors_supplied: bool
    statuses: tuple[StatusEntry, ...]
    active_manifest: str | None
    manifest_count: int
    claim_generator: str | None
    title: str | None
    signer: SignerInfo | None
    actions: tuple[Action, ...]
    ingredients: tuple[Ingredient, ...]
    manifest_store_sha256: str | None
    manifest_store_size: int | None
    manifest_store_note: str
    sdk_version: str
    reader_json: str  # the SDK's manifest store report, verbatim, for the record
    notes: tuple[str, ...]

    @property
    def failure_codes(self) -> tuple[str, ...]:
        return tuple(s.code for s in self.statuses if s.kind == "failure")

    @property
    def is_intact(self) -> bool:
        """Valid or trusted: signature and bindings hold (says nothing of the signer)."""
        return self.validation_state is not ValidationState.INVALID
