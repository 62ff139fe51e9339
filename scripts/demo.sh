#!/usr/bin/env bash
# The main job on the embedded default store (a local file store, no config):
# store an image, clone it, locate the clone, read it back verified, clean up.
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
id="demo-$(date +%s)-$$"
head -c $((64 << 20)) /dev/urandom > "$work/disk.raw"

imagestore stores
echo "--- add"
loc=$(imagestore --json add "$id" "$work/disk.raw" | python3 -c 'import json,sys; print(json.load(sys.stdin)["location"])')
imagestore stat "$loc"
echo "--- clone (the cheapest mode that works: reflink, server-side copy or verified stream)"
clone=$(imagestore --json clone "$loc" --name "$id-clone" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["location"]); print("mode:", d["mode"], file=sys.stderr)')
echo "clone: $clone"
echo "--- locate the clone"
imagestore locate "$clone"
echo "--- read back, verified against the stored BLAKE3 digest"
imagestore get "$clone" -o "$work/back.raw"
cmp "$work/disk.raw" "$work/back.raw" && echo "identical"
echo "--- inspect"
imagestore inspect "$work/disk.raw"
imagestore rm "$clone"
imagestore rm "$loc"
