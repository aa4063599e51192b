#!/usr/bin/env bash
# Standalone bigvgan mel vocoder recipe (egs/vocoder/local/run_vocoder.sh; --help lists stages and options).
set -euo pipefail
recipe_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
vocoder_name=bigvgan
. "$recipe_dir/../local/run_vocoder.sh"
