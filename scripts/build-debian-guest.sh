#!/usr/bin/env bash
# Builds Quiver's real test images from Debian packages only (mmdebstrap, bookworm): two
# firmware-bootable qcow2 disks that SeaBIOS boots through SYSLINUX, with systemd, udev, dbus (which
# `shutdown` needs, and so qemu-guest-agent's guest-shutdown),
# qemu-guest-agent, iproute2, iputils-ping, iputils-arping, iperf3, netcat-openbsd, python3 (which
# Quiver's verify uses to forge frames from inside) and the Debian cloud kernel.
#   DIR/debian-12-cloud.qcow2  also cloud-init (and ifupdown, which cloud-init renders to); no
#                              network or cloud-init configuration is baked in: Quiver's seed gives it
#   DIR/debian-12-dhcp.qcow2   no cloud-init; systemd-networkd asks DHCPv4 on every Ethernet NIC,
#                              as a stock image without cloud-init does (the DHCP static-lease path)
# Each image is rebuilt only when what it is built from changes: its package list and this script
# (the key, a sha256, is in DIR/debian-12-VARIANT.key). Prints packages, size and sha256.
# The disk is put together without mounting anything: partition 1 is a FAT /boot written with
# mtools and made bootable by `syslinux --offset`, partition 2 an ext4 root from `mkfs.ext4 -d`.
# Usage: scripts/build-debian-guest.sh [DIR] [cloud|dhcp ...]   (default .build-guest, both)
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-.build-guest}")
shift || true
variants=("$@"); [ ${#variants[@]} -gt 0 ] || variants=(cloud dhcp)
for tool in mmdebstrap mkfs.ext4 mkfs.vfat mcopy syslinux sfdisk qemu-img sha256sum; do
  command -v $tool >/dev/null || { echo "build-debian-guest: $tool missing (scripts/setup.sh installs it)" >&2; exit 1; }
done
common=systemd-sysv,udev,dbus,qemu-guest-agent,iproute2,iputils-ping,iputils-arping,iperf3,netcat-openbsd,python3,linux-image-cloud-amd64,e2fsprogs
uuid=5a1c0e5e-0b0e-4d1e-9a5e-0000000000d1   # the root file system's, so the kernel line can name it
mkdir -p "$out"

build() {  # $1 = variant
  local variant=$1 pkgs
  case $variant in
    cloud) pkgs="$common,cloud-init,ifupdown" ;;
    dhcp)  pkgs="$common" ;;
    *) echo "build-debian-guest: unknown variant $variant (cloud or dhcp)" >&2; exit 1 ;;
  esac
  local image="$out/debian-12-$variant.qcow2"
  local key; key=$(printf '%s\n' "$pkgs" | cat - "$0" | sha256sum | cut -c1-16)
  if [ -s "$image" ] && [ "$(cat "$out/debian-12-$variant.key" 2>/dev/null)" = "$key" ]; then
    echo "build-debian-guest: $image is up to date ($(cat "$out/debian-12-$variant.info"))"; return
  fi
  local work; work=$(mktemp -d)
  local started=$SECONDS
  # The hooks run on the host, with $1 the new root. The tree keeps no apt lists or caches.
  local -a setup=(
    --customize-hook='echo quiver-guest > "$1/etc/hostname"'
    --customize-hook='printf "UUID='"$uuid"' / ext4 defaults,errors=remount-ro 0 1\n" > "$1/etc/fstab"'
    --customize-hook=': > "$1/etc/machine-id"; rm -f "$1/var/lib/dbus/machine-id"'
    # Nothing in the guest waits for the network or wakes up apt on its own.
    --customize-hook='chroot "$1" systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer man-db.timer systemd-networkd-wait-online.service >/dev/null 2>&1 || true'
  )
  if [ "$variant" = dhcp ]; then
    setup+=(
      --customize-hook='printf "[Match]\nType=ether\n\n[Network]\nDHCP=ipv4\n" > "$1/etc/systemd/network/80-dhcp.network"'
      --customize-hook='chroot "$1" systemctl enable systemd-networkd.service >/dev/null 2>&1'
    )
  fi
  mmdebstrap --quiet --variant=apt --include="$pkgs" "${setup[@]}" \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
    bookworm "$work/root" >/dev/null
  local kernel initrd
  kernel=$(cd "$work/root/boot" && ls vmlinuz-* | head -1)
  initrd=$(cd "$work/root/boot" && ls initrd.img-* | head -1)
  # Partition 2: the root file system, sized to the tree plus room to write.
  local tree_mib; tree_mib=$(du -sm "$work/root" | cut -f1)
  local root_mib=$(( tree_mib + tree_mib / 2 + 256 ))
  mkfs.ext4 -q -F -L quiver-root -U "$uuid" -d "$work/root" "$work/root.ext4" "${root_mib}M"
  # Partition 1: FAT /boot with the kernel, initrd and SYSLINUX.
  local boot_mib=128 start=2048
  local boot_sectors=$(( boot_mib * 2048 ))
  local root_start=$(( start + boot_sectors ))
  local total_mib=$(( 1 + boot_mib + root_mib + 1 ))
  truncate -s "${total_mib}M" "$work/disk.raw"
  printf 'label: dos\nstart=%d, size=%d, type=c, bootable\nstart=%d, type=83\n' \
    "$start" "$boot_sectors" "$root_start" | sfdisk -q "$work/disk.raw"
  dd if=/usr/lib/syslinux/mbr/mbr.bin of="$work/disk.raw" conv=notrunc bs=440 count=1 status=none
  mkfs.vfat -F 16 -n QUIVERBOOT --offset "$start" -h "$start" "$work/disk.raw" $(( boot_sectors / 2 )) >/dev/null
  local fat="$work/disk.raw@@$(( start * 512 ))"
  cat > "$work/syslinux.cfg" <<EOF
DEFAULT debian
TIMEOUT 0
PROMPT 0
LABEL debian
  KERNEL /vmlinuz
  INITRD /initrd.img
  APPEND root=UUID=$uuid ro console=ttyS0 net.ifnames=0 quiet
EOF
  mcopy -i "$fat" "$work/root/boot/$kernel" ::/vmlinuz
  mcopy -i "$fat" "$work/root/boot/$initrd" ::/initrd.img
  mcopy -i "$fat" "$work/syslinux.cfg" ::/syslinux.cfg
  syslinux --offset $(( start * 512 )) --install "$work/disk.raw"
  dd if="$work/root.ext4" of="$work/disk.raw" bs=1M seek=$(( root_start / 2048 )) conv=notrunc,sparse status=none
  qemu-img convert -q -f raw -O qcow2 "$work/disk.raw" "$image.new"
  mv "$image.new" "$image"
  local versions
  versions=$(chroot "$work/root" dpkg-query -W -f='${Package}=${Version} ' ${pkgs//,/ } 2>/dev/null)
  rm -rf "$work"
  local sum; sum=$(sha256sum "$image" | cut -d' ' -f1)
  local size; size=$(du -m "$image" | cut -f1)
  echo "$variant: ${size} MiB qcow2, sha256 $sum; $versions" > "$out/debian-12-$variant.info"
  echo "$key" > "$out/debian-12-$variant.key"
  echo "build-debian-guest: built $image in $(( SECONDS - started )) s"
  echo "  packages: $versions"
  echo "  size: ${size} MiB on disk, ${total_mib} MiB virtual; sha256 $sum"
}
for v in "${variants[@]}"; do build "$v"; done
