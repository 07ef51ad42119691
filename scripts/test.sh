#!/usr/bin/env bash
# Set up (virtualenv with dev extras, Debian packages the tests use) and run the test suite.
# Usage: scripts/test.sh [pytest options]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev -- espeak-ng sox chromium chromium-driver
exec .venv/bin/python -m pytest "$@"
