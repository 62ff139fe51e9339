"""A compute node boots an instance from an image: a copy-on-write clone in its own store when it can,
else the node's verified image cache; prints what the hypervisor opens (an rbd spec or a path).

    python examples/compute_node.py --config imagestore.toml --images images --vms vms \\
        --image IMAGE_ID --instance instance-0001 [--size BYTES] [--cache-dir DIR]

This is Nova's ``clone_fallback_to_fetch`` with the checks Nova does not make: the clone's
source is verified against its checksum once (OSSN-0090), and the fallback says why.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

import imagestore

log = logging.getLogger("compute_node")


def boot_disk(stores: imagestore.Stores, image: str, instance: str, *, images: str = "images", vms: str = "vms",
              size: int | None = None, cache_dir: str = "/var/lib/imagestore/cache") -> dict[str, Any]:
    """The instance's root disk: cloned in place, or the cached base image; what to hand to the hypervisor."""
    src, dst = stores[images], stores[vms]
    loc = src.location(image)
    check = src.can_clone(loc, to=dst, mode="cow")
    if check.possible:
        disk = src.clone(loc, to=dst, name=f"{instance}_disk", mode="cow", size=size, verify_source=True)
        access = dst.locate(disk.location)
        out: dict[str, Any] = {"how": "clone", "depth": disk.depth, "location": str(disk.location)}
        if access.kind == "rbd":  # the VM writes the image's head, not its published snapshot
            out.update(kind="rbd", spec=f"rbd:{access.pool}/{access.image}", mon_hosts=list(access.mon_hosts))
        else:
            out.update(kind="path", path=access.path)
        return out
    log.info("no copy-on-write clone of %s (%s: %s); using the image cache", image, check.code, check.reason)
    path = imagestore.ImageCache(cache_dir, store=src).fetch(loc)
    return {"how": "cache", "kind": "path", "path": str(path), "code": check.code, "reason": check.reason}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True)
    p.add_argument("--images", default="images", help="the store holding the image")
    p.add_argument("--vms", default="vms", help="the store of instance disks")
    p.add_argument("--image", required=True, help="image id or location")
    p.add_argument("--instance", required=True)
    p.add_argument("--size", type=int, help="grow the root disk to this many bytes (clones of raw images)")
    p.add_argument("--cache-dir", default="/var/lib/imagestore/cache")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    with imagestore.Stores.from_file(args.config) as stores:
        print(json.dumps(boot_disk(stores, args.image, args.instance, images=args.images, vms=args.vms,
                                   size=args.size, cache_dir=args.cache_dir)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
