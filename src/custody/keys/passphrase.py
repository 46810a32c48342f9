"""The passphrase policy for new keys: long enough, and hard to guess.

A key file that leaves with a stolen laptop is attacked offline: every guess costs the
attacker one Argon2id derivation (``keyring.ARGON2_*``), and nothing else stands between
them and the key. So a new key's passphrase must be at least ``MIN_LENGTH`` characters
and, by zxcvbn's estimate, need at least ``10**MIN_GUESSES_LOG10`` guesses (zxcvbn's top
score, 4: "very unguessable"). zxcvbn (Dropbox's estimator, Wheeler, USENIX Security 2016)
knows common passwords, names, keyboard patterns, dates, repeats and l33t substitutions;
the key's handle and holder are passed as user inputs so a passphrase built from them
scores as weak as it is. It is used as a library (``zxcvbn`` 4.5 on PyPI) because a
home-made "one digit, one capital" rule accepts ``Password1!`` and refuses a long phrase.

The policy applies to new keys only (``keys generate``, ``keys rotate``); unlocking an
existing key never judges its passphrase. ``--allow-weak-passphrase`` lets a person who
accepts the risk (a throwaway demo, a key that never leaves an encrypted disk) go on.

Imports: ``custody.errors`` and zxcvbn (loaded only when a passphrase is judged).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from custody.errors import SigningKeyError
from custody.i18n import _, ngettext

MIN_LENGTH = 12
MIN_GUESSES_LOG10 = 10.0
# zxcvbn's matching is super-linear in length; past this it only matters that it is long.
_ESTIMATE_PREFIX = 100


class WeakPassphraseError(SigningKeyError):
    """A new key's passphrase is empty, short or easy to guess (exit 5, KEY_ERROR)."""


@dataclass(frozen=True)
class Strength:
    """zxcvbn's judgement of a passphrase, in words a person can act on."""

    length: int
    guesses_log10: float
    crack_time: str  # at 10,000 guesses a second (an offline attack on a slow hash)
    warning: str
    suggestions: tuple[str, ...]

    @property
    def acceptable(self) -> bool:
        return self.length >= MIN_LENGTH and self.guesses_log10 >= MIN_GUESSES_LOG10


def strength(passphrase: str, user_inputs: Sequence[str] = ()) -> Strength:
    from zxcvbn import zxcvbn

    inputs = [w for text in user_inputs for w in text.replace("-", " ").split() if w]
    result = zxcvbn(passphrase[:_ESTIMATE_PREFIX], user_inputs=[*user_inputs, *inputs])
    feedback = result.get("feedback") or {}
    return Strength(
        length=len(passphrase),
        guesses_log10=float(result["guesses_log10"]),
        crack_time=str(result["crack_times_display"]["offline_slow_hashing_1e4_per_second"]),
        warning=str(feedback.get("warning") or ""),
        suggestions=tuple(str(s) for s in feedback.get("suggestions") or ()),
    )


def check_new_passphrase(
    passphrase: str, *, user_inputs: Sequence[str] = (), allow_weak: bool = False
) -> Strength | None:
    """Raise WeakPassphraseError unless ``passphrase`` may protect a new key.

    An empty passphrase is refused even with ``allow_weak``: it would leave the key file
    readable by anyone who copies it. Returns zxcvbn's judgement (None when not judged).
    """
    if not passphrase:
        raise WeakPassphraseError(
            _(
                "an empty passphrase is refused: anyone who copies the key file could sign as "
                "you; choose a phrase of at least {minimum} characters, for example four or "
                "more uncommon words"
            ).format(minimum=MIN_LENGTH)
        )
    if allow_weak:
        return None
    judged = strength(passphrase, user_inputs)
    if judged.acceptable:
        return judged
    reasons = []
    if judged.length < MIN_LENGTH:
        reasons.append(
            ngettext(
                "it is {n} character(s) long, fewer than {minimum}",
                "it is {n} character(s) long, fewer than {minimum}",
                judged.length,
            ).format(n=judged.length, minimum=MIN_LENGTH)
        )
    if judged.guesses_log10 < MIN_GUESSES_LOG10:
        # zxcvbn's own words (the time, its warning) are English whatever the language.
        reasons.append(
            _(
                "someone holding the key file could guess it in {time} (zxcvbn estimate: {warning})"
            ).format(time=judged.crack_time, warning=judged.warning.rstrip("."))
            if judged.warning
            else _(
                "someone holding the key file could guess it in {time} (zxcvbn estimate)"
            ).format(time=judged.crack_time)
        )
    raise WeakPassphraseError(
        _(
            "passphrase refused: {reasons}. Use at least {minimum} characters, for example four "
            "or more uncommon words in any language (or --allow-weak-passphrase if you accept "
            "the risk)"
        ).format(reasons="; ".join(reasons), minimum=MIN_LENGTH)
    )
