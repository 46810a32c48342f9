#!/usr/bin/env bash
# Set up custody on a fresh Debian/Ubuntu machine: system packages, then a virtualenv
# in .venv with custody and its test tools installed. Safe to run again.
#   bash scripts/setup.sh            # everything the tests need
#   CUSTODY_WITH_POSTGRES=1 ...      # also PostgreSQL (only for the shared-ledger backend)
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# golang-go + golang-golang-x-mod-dev: Go's own signed-note code, the independent check of
# custody.ledger.c2sp (tests/test_c2sp.py builds tests/go/c2spcheck offline against it).
# gpg: ProofMode's OpenPGP signatures (custody.acquisition.sources.proofmode); sqv: Sequoia,
# the independent OpenPGP check in tests/test_proofmode.py.
# default-jdk-headless + libbc*-java: Bouncy Castle's RFC 4998 code, the independent check of
# custody.timestamps.ers (tests/test_ers.py compiles tests/java/ErsCheck.java against it);
# faketime: the loopback TSA of tests/tsa_longterm.py signs at the times a test chooses.
# libnss3-tools: certutil, for the NSS database pdfsig checks signed reports against.
# libreoffice-calc-nogui: headless LibreOffice, the independent reader of the XLSX register
# (tests/test_filing.py converts it back to CSV and compares).
# hashdeep: a peer bench/run.py measures custody beside (what documenters use today).
# fonts-noto-core (Noto Naskh Arabic) and fonts-dejavu-core (DejaVu Sans, Sans Mono): the
# fonts of the court report in Arabic and English, embedded in its PDF by Chromium
# (tests/test_report_arabic.py checks with pdffonts, from poppler-utils).
packages=(libimage-exiftool-perl openssl gpg sqv b3sum ffmpeg poppler-utils python3-venv chromium fonts-noto-core fonts-dejavu-core libheif-examples golang-go golang-golang-x-mod-dev default-jdk-headless libbcpkix-java libbcprov-java libbcutil-java faketime libnss3-tools libreoffice-calc-nogui hashdeep gettext)
# PostgreSQL only for the shared-ledger backend and its tests (scripts/test.sh asks for it).
if [ "${CUSTODY_WITH_POSTGRES:-0}" = "1" ]; then packages+=(postgresql); fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing system packages: ${missing[*]}"
  # Another process may hold the package manager lock at boot: wait for it.
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 \
    install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PYTHON" -m venv .venv
fi
echo "==> installing custody into .venv"
log=.venv/pip-install.log
if ! { .venv/bin/python -m pip install --disable-pip-version-check --upgrade pip \
       && .venv/bin/python -m pip install --disable-pip-version-check -e ".[dev,bench]"; } >"$log" 2>&1; then
  tail -40 "$log"
  echo "pip install failed; full log in $log" >&2
  exit 1
fi
echo "==> ready: $(.venv/bin/custody --version), $(exiftool -ver | sed 's/^/exiftool /')"
bash scripts/link-path.sh
