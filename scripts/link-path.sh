#!/usr/bin/env bash
# Put custody on PATH for new terminals (called by setup.sh; tested by tests/test_readme.py):
# ~/.local/bin is on PATH at login on Debian and Ubuntu (their ~/.profile adds it when it
# exists). An existing file there that is not our link is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
link="$HOME/.local/bin/custody"
if [ ! -e "$link" ] || [ -L "$link" ]; then
  mkdir -p "$HOME/.local/bin" && ln -sfn "$PWD/.venv/bin/custody" "$link"
else
  echo "==> $link exists and is not custody's link; left alone"
fi
found="$(command -v custody || true)"
if [ "$found" != "$PWD/.venv/bin/custody" ] && [ "$found" != "$link" ]; then
  echo "==> to use custody in this terminal: export PATH=\"$PWD/.venv/bin:\$PATH\"" \
       "(new terminals find it as $link)"
fi
