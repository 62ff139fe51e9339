#!/usr/bin/env bash
# Make and mount an XFS filesystem with reflink=1 on a sparse loop file, for
# imagestore's copy-on-write (FICLONE) tests and benchmarks. Needs root.
#
# Usage: xfs-mount.sh [MOUNTPOINT] [SIZE]     (defaults: /tmp/imagestore-xfs, 20G)
# Writes the mount point on stdout. Undo with xfs-umount.sh MOUNTPOINT.
#   XFS_SKIP_APT=1   do not install xfsprogs with apt when mkfs.xfs is missing
set -Eeuo pipefail

MNT=${1:-/tmp/imagestore-xfs}
SIZE=${2:-20G}
IMG="$MNT.img"

log() { echo "[xfs-mount] $*" >&2; }

if [ "$(id -u)" != 0 ]; then
    log "needs root (losetup and mount)"; exit 1
fi
if ! command -v mkfs.xfs >/dev/null; then
    if [ "${XFS_SKIP_APT:-0}" = 1 ]; then log "mkfs.xfs is missing (apt install xfsprogs)"; exit 1; fi
    log "installing xfsprogs"
    export DEBIAN_FRONTEND=noninteractive
    apt-cache show xfsprogs >/dev/null 2>&1 || apt-get -q -o DPkg::Lock::Timeout=600 update >/dev/null
    apt-get -q -o DPkg::Lock::Timeout=600 install -y --no-install-recommends xfsprogs >/dev/null
fi
if mountpoint -q "$MNT"; then
    log "$MNT is already mounted; leaving it"
    echo "$MNT"; exit 0
fi
mkdir -p "$MNT"
rm -f "$IMG"
truncate -s "$SIZE" "$IMG"          # sparse: costs only what is written
mkfs.xfs -q -f -m reflink=1 "$IMG"
mount -o loop "$IMG" "$MNT"
chmod 1777 "$MNT"
log "mounted $IMG ($SIZE, reflink=1) on $MNT"
echo "$MNT"
