#!/usr/bin/env bash
# Installs every Debian package Quiver needs to build, test and benchmark. Idempotent.
#   build:  pkg-config, libmnl-dev, libnl-3-dev, libnl-route-3-dev
#   tests:  iproute2 (independent witness: ip/tc/bridge -j), iputils-ping, iperf3,
#           nftables (witness for rules), kmod-free kernel here so no modprobe
#   guests: qemu-system-x86, busybox-static, cpio (the test guest is built from Debian packages)
set -euo pipefail
pkgs=(pkg-config libmnl-dev libnl-3-dev libnl-route-3-dev iproute2 iputils-ping iperf3
      nftables qemu-system-x86 busybox-static cpio)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then echo "setup.sh: run as root to install: ${missing[*]}" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "setup.sh: all packages present (${#pkgs[@]})"
