"""A ledger checkpoint as a C2SP tlog-checkpoint signed note (``custody sign --format
c2sp``): origin ``custody.ledger/<ledger identity>``, the tree size, the base64 root, signed
with the checkpoint signer's Ed25519 key under the origin as key name (``custody.ledger.c2sp``
owns the bytes). Tooling built for transparency-log witnesses reads it with the vkey
``note_vkey`` gives.
"""

from __future__ import annotations

import hashlib

from custody.keys.keyring import SigningKey
from custody.ledger import c2sp
from custody.ledger.bodies import CheckpointBody
from custody.ledger.records import SignedRecord
from custody.ledger.store import Ledger


def origin_of(ledger: Ledger) -> str:
    return c2sp.ledger_origin(hashlib.sha256(ledger.read(0).line).digest())


def checkpoint_note(ledger: Ledger, checkpoint: SignedRecord, signer: SigningKey) -> bytes:
    body = CheckpointBody.from_json(checkpoint.record.body)
    origin = origin_of(ledger)
    note = c2sp.sign_checkpoint(
        c2sp.Checkpoint(origin, body.tree_size, bytes.fromhex(body.root)),
        c2sp.NoteSigner(origin, signer.public.raw, signer.sign),
    )
    return note.to_bytes()


def note_vkey(origin: str, public_key: bytes) -> str:
    return c2sp.VerifierKey.ed25519(origin, public_key).vkey()
