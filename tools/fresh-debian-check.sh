#!/bin/sh
# Prove the README's commands on a bare Debian 12: debootstrap a minimal
# bookworm into a scratch directory, clone this repository's HEAD into it
# and run a command there as root (default: the README's test command).
#   sudo sh tools/fresh-debian-check.sh [SCRATCH_DIR] [COMMAND]
# Needs debootstrap and network access to a Debian mirror. Nothing here is
# used by the build or the tests.
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
scratch=${1:-$repo/build-fresh-debian}
cmd=${2:-sh tools/test.sh}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
root="$scratch/rootfs"
if [ ! -x "$root/bin/sh" ]; then
    mkdir -p "$scratch"
    debootstrap --variant=minbase bookworm "$root" "$mirror"
fi
rm -rf "$root/root/libcsp"
git clone -q "$repo" "$root/root/libcsp"
mount -t proc proc "$root/proc"
trap 'umount "$root/proc"' EXIT
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
chroot "$root" /bin/sh -c "cd /root/libcsp && $cmd"
