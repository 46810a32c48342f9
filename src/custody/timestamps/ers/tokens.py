"""The timestamp tokens inside evidence records, checked once each by ``rfc3161``.

:class:`TokenChecker` checks a DER TimeStampToken on its own terms, as of its own genTime
(signature, ESS binding, critical timeStamping EKU, a path to the verifier's roots valid
at genTime, rfc3161-client's verification as the final gate), with the certificates of
the kept validation material as path-building help, and remembers each verdict: the
tokens of an evidence set are shared by every object's record.

Without roots the tokens are checked against the self-signed certificates they carry
themselves ("embedded" trust, as ``custody verify`` does for checkpoint tokens without
``--tsa-root``): that shows the signatures are sound, not whose they are.

May import: ``custody.timestamps.rfc3161``, ``custody.timestamps.cms``,
``custody.timestamps.material``, ``cryptography``, the standard library.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Literal

from cryptography import x509

from custody.timestamps.cms import is_self_signed, unique_certs
from custody.timestamps.material import ValidationMaterial
from custody.timestamps.rfc3161 import CHECK_CHAIN, CHECK_VALIDITY, TokenCheck, check_token

__all__ = ["TOKEN_INVALID", "TOKEN_NOT_VALID_AT_GENTIME", "TOKEN_UNTRUSTED", "TokenChecker"]

TOKEN_INVALID: Final = "TOKEN_INVALID"  # unreadable, forged, altered, unusable signer
TOKEN_UNTRUSTED: Final = "TOKEN_UNTRUSTED"  # no path to the verifier's roots
TOKEN_NOT_VALID_AT_GENTIME: Final = "TOKEN_NOT_VALID_AT_GENTIME"


class TokenChecker:
    """Checks tokens against ``roots`` (none: embedded trust), caching by token bytes."""

    def __init__(
        self,
        roots: Sequence[x509.Certificate],
        material: ValidationMaterial | None = None,
    ) -> None:
        self.roots = unique_certs(roots)
        self.trust: Literal["roots", "embedded"] = "roots" if self.roots else "embedded"
        kept = (material or ValidationMaterial()).certificate_objects()
        # Kept certificates only help build paths; a self-signed one is never an anchor.
        self.intermediates = [c for c in unique_certs(kept) if not is_self_signed(c)]
        self._seen: dict[bytes, TokenCheck] = {}

    def check(self, token: bytes) -> TokenCheck:
        found = self._seen.get(token)
        if found is None:
            found = check_token(
                token, roots=self.roots, intermediates=self.intermediates, trust=self.trust
            )
            self._seen[token] = found
        return found

    @staticmethod
    def problems(check: TokenCheck) -> list[tuple[str, str]]:
        """(code, detail) for each failed check: TOKEN_UNTRUSTED for the anchoring,
        TOKEN_NOT_VALID_AT_GENTIME for validity, TOKEN_INVALID for everything else."""
        out = []
        for failed in check.failed:
            if failed.name == CHECK_CHAIN:
                code = TOKEN_UNTRUSTED
            elif failed.name == CHECK_VALIDITY:
                code = TOKEN_NOT_VALID_AT_GENTIME
            else:
                code = TOKEN_INVALID
            out.append((code, f"{failed.name}: {failed.reason}"))
        return out

    @staticmethod
    def path(check: TokenCheck) -> list[x509.Certificate]:
        """The certification path, signer first (or the signer alone when no path to an
        anchor was found): the certificates whose expiry and revocation end the token."""
        ders = check.chain or ((check.signer_certificate,) if check.signer_certificate else ())
        out = []
        for der in ders:
            try:
                out.append(x509.load_der_x509_certificate(der))
            except ValueError:
                continue
        return out
