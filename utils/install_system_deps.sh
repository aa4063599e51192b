#!/usr/bin/env bash
# Installs the system tools Echelon and its test suite use, with apt-get, when they are missing and we are root:
# espeak-ng (phonemizer's backend: text front end, TTS), the ShellCheck linter (recipe lint test,
# tests/egs/test_recipe.py), chromium (renders the benchmark's HTML report headless in its test) and
# chromium-driver (selenium drives chromium in the web demo's browser test).
# Without root or apt-get it names what is missing and how to get it, and exits 0: `make install` goes on.
set -euo pipefail

# command:package:what needs it
TOOLS=(
  "espeak-ng:espeak-ng:text front-end tests and TTS"
  "shellcheck:shellcheck:the recipe lint test"
  "chromium:chromium:the HTML report test and the web demo browser test (headless browser)"
  "chromedriver:chromium-driver:the web demo browser test (selenium drives chromium)"
)

missing_packages=()
missing_lines=()
for entry in "${TOOLS[@]}"; do
  IFS=: read -r command package purpose <<<"$entry"
  if ! command -v "$command" >/dev/null 2>&1; then
    missing_packages+=("$package")
    missing_lines+=("  $package ($command): needed by $purpose")
  fi
done

if [ "${#missing_packages[@]}" -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing_packages[*]} with apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing_packages[@]}" >/dev/null
else
  echo "These system packages are missing and cannot be installed automatically (not root or no apt-get):" >&2
  printf '%s\n' "${missing_lines[@]}" >&2
  echo "Install them with your package manager, e.g. 'sudo apt-get install ${missing_packages[*]}';" >&2
  echo "the tests that need them cannot pass until then." >&2
fi
