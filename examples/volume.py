"""A volume service creates a volume from an image: a copy-on-write clone in the volume pool, larger
than the image, flattened by the pool's policy (or on demand), else a verified copy; prints the
volume's rbd spec or path and its clone depth.

    python examples/volume.py --config imagestore.toml --images images --volumes volumes \\
        --image IMAGE_ID --volume volume-0001 --size BYTES [--flatten]

This is Cinder's ``clone_image`` / ``_copy_image_to_volume`` with a verified source and a
depth the caller can read instead of walking the parents (``rbd_max_clone_depth``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

import imagestore

log = logging.getLogger("volume")


def create_volume(stores: imagestore.Stores, image: str, volume: str, *, size: int | None, images: str = "images",
                  volumes: str = "volumes", flatten: bool = False) -> dict[str, Any]:
    """Make ``volume`` from ``image``; returns where it is, how it was made and its depth."""
    src, dst = stores[images], stores[volumes]
    loc = src.location(image)
    check = src.can_clone(loc, to=dst, mode="cow")
    if check.possible:
        made = src.clone(loc, to=dst, name=volume, mode="cow", size=size, verify_source=True)
        new, how, depth = made.location, "clone", made.depth
    else:
        log.info("no copy-on-write clone of %s (%s: %s); copying it", image, check.code, check.reason)
        if size is not None and size != src.stat(loc).size:
            raise SystemExit("a copied volume keeps the image's size; grow it with the volume service's resize")
        rep = src.replicate(loc, dst, name=volume)
        new, how, depth = rep.location, f"copy ({rep.mode})", rep.depth
    if flatten and depth:
        depth = dst.flatten(new)
    access = dst.locate(new)
    out: dict[str, Any] = {"how": how, "depth": depth, "location": str(new), "code": check.code}
    if access.kind == "rbd":
        out.update(kind="rbd", spec=f"rbd:{access.pool}/{access.image}")
    else:
        out.update(kind="path", path=access.path)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True)
    p.add_argument("--images", default="images")
    p.add_argument("--volumes", default="volumes")
    p.add_argument("--image", required=True)
    p.add_argument("--volume", required=True)
    p.add_argument("--size", type=int)
    p.add_argument("--flatten", action="store_true", help="make the volume independent of the image now")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    with imagestore.Stores.from_file(args.config) as stores:
        print(json.dumps(create_volume(stores, args.image, args.volume, size=args.size, images=args.images,
                                       volumes=args.volumes, flatten=args.flatten)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
