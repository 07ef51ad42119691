#!/usr/bin/env bash
# Set up (virtualenv with the dev and voices extras, Debian packages the tests use) and run the
# test suite. voices: tests/test_voices.py runs the real voice encoder (CI fails on a skip).
# Usage: scripts/test.sh [pytest options]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev voices -- espeak-ng sox chromium chromium-driver
exec .venv/bin/python -m pytest "$@"
