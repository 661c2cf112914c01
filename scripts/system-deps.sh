#!/usr/bin/env bash
# Debian packages some tests use for real: PostgreSQL (the search's shared storage) and Chromium
# (the search report's screenshot test). Needs root; without it, those tests skip with a reason.
set -euo pipefail
packages=(postgresql chromium)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "system-deps: not root, skipping ${missing[*]} (their tests will skip)"
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq "${missing[@]}" >/dev/null
echo "system-deps: installed ${missing[*]}"
