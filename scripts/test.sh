#!/usr/bin/env bash
# Installs what the tests need, builds, and runs every test tier. Run as root: the privileged
# tests create (and delete) their own network namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build --build-tests
swift test --skip-build
leftover=$(ip netns list 2>/dev/null | grep -E '^(qt|qc)-' || true)
if [ -n "$leftover" ]; then echo "tests left namespaces behind: $leftover" >&2; exit 1; fi
