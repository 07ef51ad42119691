#!/usr/bin/env bash
# The main job on the shipped samples: set up, transcribe audio_samples/ with the embedded
# Whisper base model into intercept.db, and say how to open the review.
# Usage: scripts/run-samples.sh [extra options for `intercept run`]
set -euo pipefail
cd "$(dirname "$0")/.."
# The voices extra only when asked for (`scripts/run-samples.sh --voices`): it brings torch.
extras=()
for option in "$@"; do [ "$option" != --voices ] || extras=(voices); done
scripts/setup.sh ${extras[@]+"${extras[@]}"}
.venv/bin/intercept run intercept.db audio_samples/ "$@"
