#!/usr/bin/env bash
# Builds Quiver's test guest from Debian packages only: the kernel of one exact
# linux-image-6.1.0-N-amd64 package (the newest N the apt index offers, unless QUIVER_GUEST_KERNEL
# names one), busybox-static, and an initramfs holding busybox, the virtio-net modules and
# guest/init. Output: DIR/vmlinuz, DIR/initrd.img, DIR/package (what was used).
# Usage: scripts/build-test-guest.sh [DIR]   (default .build-guest; reused if already built)
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-.build-guest}")
if [ -s "$out/vmlinuz" ] && [ -s "$out/initrd.img" ] && [ "$out/initrd.img" -nt guest/init ]; then
  echo "build-test-guest: $out is up to date ($(cat "$out/package"))"; exit 0
fi
for tool in apt-get dpkg-deb cpio gzip; do command -v $tool >/dev/null || { echo "build-test-guest: $tool missing (scripts/setup.sh installs it)" >&2; exit 1; }; done
pkg=${QUIVER_GUEST_KERNEL:-$(apt-cache search '^linux-image-6\.1\.0-[0-9]+-amd64$' | awk '{print $1}' | sort -t- -k4,4n | tail -1)}
[ -n "$pkg" ] || { echo "build-test-guest: no linux-image-6.1.0-*-amd64 in the apt index (run apt-get update)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
( cd "$work" && apt-get download -q "$pkg" busybox-static >/dev/null 2>&1 ) \
  || { echo "build-test-guest: apt-get download $pkg busybox-static failed" >&2; exit 1; }
dpkg-deb -x "$work"/linux-image-*.deb "$work/k"
dpkg-deb -x "$work"/busybox-static_*.deb "$work/b"
kver=$(ls "$work/k/lib/modules")
root="$work/root"
mkdir -p "$root/bin" "$root/lib/modules"
cp "$work/b/bin/busybox" "$root/bin/busybox"
for m in drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_modern_dev \
         drivers/virtio/virtio_pci_legacy_dev drivers/virtio/virtio_pci net/core/failover \
         drivers/net/net_failover drivers/net/virtio_net drivers/input/evdev drivers/acpi/button; do
  cp "$work/k/lib/modules/$kver/kernel/$m.ko" "$root/lib/modules/"
done
install -m 0755 guest/init "$root/init"
mkdir -p "$out"
( cd "$root" && find . | cpio -o -H newc --quiet | gzip -9 ) > "$out/initrd.img.new"
cp "$work/k/boot/vmlinuz-$kver" "$out/vmlinuz"
mv "$out/initrd.img.new" "$out/initrd.img"
echo "$pkg ($kver) + $(dpkg-deb -f "$work"/busybox-static_*.deb Version | sed 's/^/busybox-static /')" > "$out/package"
echo "build-test-guest: $out/vmlinuz and $out/initrd.img from $(cat "$out/package")"
