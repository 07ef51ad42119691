#!/usr/bin/env bash
# Create or update the project's virtualenv (.venv) and the Debian packages it needs.
# Usage: scripts/setup.sh [EXTRA ...] [-- DEBIAN_PACKAGE ...]
#   scripts/setup.sh              runtime only (ffmpeg)
#   scripts/setup.sh dev -- chromium chromium-driver espeak-ng sox
#   scripts/setup.sh voices       + voice grouping (resemblyzer; docs/voices.md)
# Safe to run again: it installs only what is missing or changed.
set -euo pipefail
cd "$(dirname "$0")/.."

extras=()
debs=(ffmpeg)
while [ $# -gt 0 ]; do
  if [ "$1" = "--" ]; then shift; debs+=("$@"); break; fi
  extras+=("$1"); shift
done

missing=()
for pkg in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "setup: $PYTHON is not Python 3.11 (hazm 0.10.0 and the pinned stack need 3.11); set PYTHON=python3.11" >&2
  exit 2
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv

spec="."
if [ ${#extras[@]} -gt 0 ]; then spec=".[$(IFS=,; echo "${extras[*]}")]"; fi
# Reinstall only when the dependency declarations or the requested extras change.
stamp=".venv/.intercept-setup"
want="$(cat setup.cfg constraints.txt | sha256sum | cut -c1-16) $spec"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "setup: installing intercept$([ "$spec" = . ] || echo " with ${spec#.}") into .venv" >&2
  log=".venv/setup.log"
  # pip's and setuptools' chatter goes to a log, shown only when the install fails.
  # resemblyzer without its declared dependencies: they are in the `voices` extra, with
  # webrtcvad-wheels standing in for webrtcvad (setup.cfg says why).
  voices=false
  for extra in ${extras[@]+"${extras[@]}"}; do [ "$extra" != voices ] || voices=true; done
  if ! { .venv/bin/python -m pip install -q --upgrade pip && \
         .venv/bin/python -m pip install -q -c constraints.txt -e "$spec" && \
         { ! $voices || .venv/bin/python -m pip install -q -c constraints.txt --no-deps resemblyzer; }; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "setup: pip install failed (log: $log)" >&2
    exit 1
  fi
  echo "$want" > "$stamp"
fi
