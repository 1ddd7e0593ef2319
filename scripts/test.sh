#!/usr/bin/env bash
# Installs what the tests need, builds, and runs every test tier. Run as root: the privileged
# tests create (and delete) their own network namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build --build-tests
# The test guest (kernel + busybox initramfs from Debian packages) for the VM tests and examples.
scripts/build-test-guest.sh
# The Debian images (mmdebstrap; rebuilt only when their package lists change) for the real-guest tier.
scripts/build-debian-guest.sh
before=$(ip netns list 2>/dev/null | awk '{print $1}' | sort)
# Quiver's guests: qemu with a run path (unconfined) or with its own seccomp filter (jailed). The
# brackets keep the pattern from matching this awk itself.
guests() { ps -eo pid=,stat=,args= | awk '$2 !~ /^Z/ && /qemu-system/ && (/\/run\/quiver\/vms\// || /-sandbox[ ]on/) {print $1}' | sort; }
guests_before=$(guests)
# Everything but the traffic measurements, guests and whole-host checks, in parallel; then each
# *Traffic* suite on its own (Swift Testing runs the suites of one invocation in parallel), so no
# other test competes with a measurement or a TCG guest for the two CPUs — and each *Alone* suite,
# whose tests compare the whole host (every namespace, link, rule and file under /run/quiver)
# before and after, so nothing else may change it meanwhile.
swift test --skip-build --skip 'Traffic|Alone'
suites=$(swift test list --skip-build 2>/dev/null | awk -F/ '$1 ~ /Traffic|Alone/ {print $1}' | sort -u)
[ -n "$suites" ] || { echo "test.sh: found no Traffic or Alone suites" >&2; exit 1; }
for suite in $suites; do
  echo "== $suite"
  swift test --skip-build --filter "^$suite/"
done
# No test may leave a namespace behind.
after=$(ip netns list 2>/dev/null | awk '{print $1}' | sort)
leftover=$(comm -13 <(echo "$before") <(echo "$after"))
if [ -n "$leftover" ]; then echo "tests left namespaces behind:" $leftover >&2; exit 1; fi
echo "no namespace left behind"
# Nor a running guest.
leftover=$(comm -13 <(echo "$guests_before") <(guests))
if [ -n "$leftover" ]; then echo "tests left qemu processes behind:" $leftover >&2; exit 1; fi
echo "no guest left behind"
# Nor a DHCP server of Quiver's (dnsmasq started with its configuration on descriptor 3).
if pgrep -f -- '--conf-file=/proc/self/fd/3' >/dev/null; then echo "tests left dnsmasq behind:" $(pgrep -f -- '--conf-file=/proc/self/fd/3') >&2; exit 1; fi
echo "no DHCP server left behind"
# The parsers under libFuzzer, QUIVER_FUZZ_SECONDS per target (default 60; 0 skips).
seconds=${QUIVER_FUZZ_SECONDS:-60}
if [ "$seconds" -gt 0 ]; then scripts/fuzz.sh "$seconds"; fi
