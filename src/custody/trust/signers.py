"""Each signer judged against a ``TrustPolicy``: anchored or not, and through which chain.

A key is *anchored* when it is one of the policy's anchors, or when a key that is anchored
introduced it (vouched for it, or named it as its successor) while that key was still valid.
The chain is kept, so that the output can say "trusted because: introduced by amina at record
2, your own key". A signer that is not anchored is named with its full fingerprint and with
how to confirm it: compare the fingerprint with one obtained from its holder by another
channel (a call, a meeting, a letter), then ``custody trust add``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from custody.i18n import _
from custody.ledger.keyrules import KeyState
from custody.trust.policy import TrustPolicy, group


def judge_signers(keys: Mapping[str, KeyState], policy: TrustPolicy) -> list[dict[str, Any]]:
    """Every key, as verify shows it: its state, whether it is anchored, and the chain."""
    memo: dict[str, list[str] | None] = {}

    def chain(key: KeyState, seen: frozenset[str]) -> list[str] | None:
        if key.fingerprint in memo:
            return memo[key.fingerprint]
        anchor = policy.anchor(key.fingerprint)
        result: list[str] | None
        if anchor is not None:
            result = [
                _("{key} is an anchor: {source}").format(key=_label(key), source=anchor.source)
            ]
        elif key.introduced_by == key.fingerprint or key.fingerprint in seen:
            result = None
        else:
            introducer = keys.get(key.introduced_by)
            upper = (
                chain(introducer, seen | {key.fingerprint})
                if introducer is not None and introducer.valid_at(key.introduced_at)
                else None
            )
            result = (
                [
                    _("{key} was introduced by {introducer} at record {seq}").format(
                        key=_label(key), introducer=_label(introducer), seq=key.introduced_at
                    ),
                    *upper,
                ]
                if upper is not None and introducer is not None
                else None
            )
        memo[key.fingerprint] = result
        return result

    judged = []
    for key in keys.values():
        steps = chain(key, frozenset())
        entry = key.to_json()
        entry["anchored"] = steps is not None
        entry["trusted_because"] = steps or []
        entry["confirm"] = None if steps is not None else _how_to_confirm(key, keys)
        judged.append(entry)
    return judged


def _label(key: KeyState) -> str:
    holder = f" ({key.holder})" if key.holder and key.holder != key.name else ""
    return f"{key.name!r}{holder}"


def _how_to_confirm(key: KeyState, keys: Mapping[str, KeyState]) -> str:
    # Confirming the key at the top of an unanchored chain confirms every key under it.
    top = key
    seen = {key.fingerprint}
    while top.introduced_by != top.fingerprint and top.introduced_by in keys:
        up = keys[top.introduced_by]
        if up.fingerprint in seen:
            break
        seen.add(up.fingerprint)
        top = up
    if top is key:
        return _(
            "compare this fingerprint with one you obtain from its holder by another channel "
            "(a call, a meeting); if they match, run 'custody trust add' with it"
        )
    return _(
        "compare the fingerprint of {key}, which introduced it ({fingerprint}), with one you "
        "obtain from its holder by another channel (a call, a meeting); if they match, run "
        "'custody trust add' with it"
    ).format(key=_label(top), fingerprint=group(top.fingerprint))


def judge_proof_signers(
    signers: Mapping[str, str], introduced_by: Mapping[str, str], policy: TrustPolicy
) -> list[dict[str, Any]]:
    """The keys a proof file carries, judged like a ledger's: anchored directly, or through
    the introductions the proof file itself carries (each checked by the proof check)."""
    judged = []
    for fingerprint, name in sorted(signers.items()):
        steps: list[str] = []
        current, seen = fingerprint, set()
        anchored = False
        while current not in seen:
            seen.add(current)
            anchor = policy.anchor(current)
            label = repr(signers.get(current, current))
            if anchor is not None:
                steps.append(
                    _("{key} is an anchor: {source}").format(key=label, source=anchor.source)
                )
                anchored = True
                break
            upper = introduced_by.get(current)
            if upper is None or upper == current:
                break
            steps.append(
                _("{key} was introduced by {introducer!r}").format(
                    key=label, introducer=signers.get(upper, upper)
                )
            )
            current = upper
        judged.append(
            {
                "fingerprint": fingerprint,
                "name": name,
                "anchored": anchored,
                "trusted_because": steps if anchored else [],
                "records": 1,
            }
        )
    return judged
