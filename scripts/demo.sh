#!/usr/bin/env bash
# Set everything up, then run custody's main job end to end on the shipped sample media:
# initialise an evidence root, create a signing key, ingest a field dump (copy, prove each
# copy identical, catalogue), show the result, prove one item's inclusion and verify it all.
# Everything it makes goes to demo-out/ (removed and recreated on each run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

out="$PWD/demo-out"
rm -rf "$out"
mkdir -p "$out"
# A throwaway keyring and passphrase for the demo only; real use prompts for the passphrase.
export CUSTODY_HOME="$out/keyring"
export CUSTODY_PASSPHRASE="demo passphrase - not for real evidence"
bin="$PWD/.venv/bin"
custody() { "$bin/custody" "$@"; }
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "custody init demo-out/evidence"
custody init "$out/evidence"
step "custody keys generate --name \"Field Documenter\""
custody keys generate --name "Field Documenter"
step "custody ingest samples/field-dump --into case-001 (copy, verify each copy, catalogue)"
cd "$out/evidence"
custody ingest "$OLDPWD/samples/field-dump" --into case-001 \
  --collector "Field documenter" --source "sample phone dump" --location "demo" --tag demo \
  || echo "(exit $? above: custody reports files it skipped; see the list)"
step "custody log --last 8"
custody log --last 8
step "custody show (a GPS photo)"
custody show "case-001/field-dump/field-dump-01/DCIM/Camera/IMG_20110506_095948.jpg" | head -32
step "custody proof inclusion (one item, no other record revealed)"
custody proof inclusion "case-001/field-dump/field-dump-01/DCIM/Camera/IMG_20110506_095948.jpg" \
  --out "$out/inclusion-proof.json" >/dev/null
custody proof verify "$out/inclusion-proof.json"
step "custody verify (files, hash chain, signatures, checkpoints)"
custody verify
step "cross-check with standard tools: sha256sum -c"
custody hash case-001/field-dump/field-dump-01/DCIM/Camera/*.jpg > "$out/SHA256SUMS"
sha256sum -c "$out/SHA256SUMS"
cd "$OLDPWD"
cat <<EOF

Demo finished: evidence root in $out/evidence

What to run next (in this terminal):
  export PATH="$PWD/.venv/bin:\$PATH"        # custody on PATH (new terminals: ~/.local/bin)
  export CUSTODY_HOME="$out/keyring"         # the demo's throwaway key
  cd "$out/evidence"
  custody log --last 5                       # the latest records
  custody export --tag demo --out "$out/bundle" --zip --withhold all
  custody verify "$out/bundle.zip"           # as a lawyer would, offline
  less "$out/bundle/HOW-TO-VERIFY.txt"       # the same checks with standard tools only
Then try your own files: README.md, "Everyday use".
EOF
