#!/usr/bin/env bash
# Unmount what xfs-mount.sh mounted and delete its loop file.
# Usage: xfs-umount.sh [MOUNTPOINT]   (default /tmp/imagestore-xfs)
set -uo pipefail
MNT=${1:-/tmp/imagestore-xfs}
if mountpoint -q "$MNT"; then
    umount "$MNT" || umount -l "$MNT"
fi
rm -f "$MNT.img"
rmdir "$MNT" 2>/dev/null || true
echo "[xfs-umount] $MNT released" >&2
