#!/usr/bin/env bash
# Installs what the tests need, builds, and runs every test tier. Run as root: the privileged
# tests create (and delete) their own network namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build --build-tests
before=$(ip netns list 2>/dev/null | awk '{print $1}' | sort)
# Everything but the traffic measurements, in parallel; then the measurements alone, so no other
# test competes with them for the two CPUs.
swift test --skip-build --skip Traffic
swift test --skip-build --filter Traffic
# No test may leave a namespace behind.
after=$(ip netns list 2>/dev/null | awk '{print $1}' | sort)
leftover=$(comm -13 <(echo "$before") <(echo "$after"))
if [ -n "$leftover" ]; then echo "tests left namespaces behind:" $leftover >&2; exit 1; fi
echo "no namespace left behind"
