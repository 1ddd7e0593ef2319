#!/usr/bin/env bash
# Installs every Debian package Quiver needs to build, test and benchmark. Idempotent.
#   build:  pkg-config, libmnl-dev, libnl-3-dev, libnl-route-3-dev (libmnl + libnl-route via pkg-config)
#   tests:  iproute2 and nftables — the independent witnesses (`ip -j`, `tc`, `nft -j`) the
#           privileged tests compare Quiver's kernel state with, and the baselines the benchmarks
#           race against. Quiver itself never runs them.
#   guests: qemu-system-x86 (Quiver starts it for kind: vm hosts), cpio (the test guest's
#           initramfs; scripts/build-test-guest.sh downloads the kernel and busybox-static itself).
#   images: qemu-utils (qemu-img: overlays, image formats), cloud-image-utils + genisoimage
#           (cloud-localds: NoCloud seeds), dnsmasq-base (DHCP static leases), and for
#           scripts/build-debian-guest.sh: mmdebstrap, e2fsprogs, dosfstools, mtools, syslinux,
#           syslinux-common, fdisk (a firmware-bootable disk made without mounting anything).
#   daemon: prometheus (the real server the metrics test scrapes with, and promtool), curl,
#           systemd (systemd-analyze verify checks contrib/quiver.service)
#   cni:    containernetworking-plugins (the bridge, host-local and bandwidth plugins quiver-cni
#           is chained after and compared with); podman, runc and busybox-static (the real
#           container runtime quiver-cni is tested under: two containers from a local busybox root);
#           containerd (its CRI plugin: the runtime Kubernetes nodes use, which passes pods'
#           bandwidth annotations to CNI) with protobuf-compiler and curl, the tests' CRI client
#   schema: python3-jsonschema and python3-yaml — an independent JSON Schema validator (Debian's
#           /usr/bin/python3) that the tests check `quiver schema` with.
# Traffic in tests comes from Quiver's own generator (QuiverProbe), so no iperf3 or ping.
set -euo pipefail
pkgs=(pkg-config libmnl-dev libnl-3-dev libnl-route-3-dev iproute2 nftables qemu-system-x86 cpio python3-jsonschema python3-yaml
      qemu-utils cloud-image-utils genisoimage dnsmasq-base mmdebstrap e2fsprogs dosfstools mtools syslinux syslinux-common fdisk
      prometheus curl systemd containernetworking-plugins podman runc busybox-static containerd protobuf-compiler)
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
