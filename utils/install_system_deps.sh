#!/usr/bin/env bash
# Installs espeak-ng (phonemizer's backend) with apt-get when it is missing and we are root.
set -euo pipefail
if command -v espeak-ng >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing espeak-ng (phonemizer backend) with apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng >/dev/null
else
  echo "espeak-ng is missing and cannot be installed automatically (not root or no apt-get)." >&2
  echo "Install it with your package manager (e.g. 'sudo apt-get install espeak-ng'); text front-end" >&2
  echo "tests and TTS need it." >&2
fi
