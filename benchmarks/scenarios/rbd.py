"""RBD scenario (``--scenario rbd`` and ``python -m imagestore_bench.scenarios.rbd``): the generic scenario
on an RBD store, through the public API only, as a ``run(ctx) -> dict`` module.

It uses the cluster named by ``CEPH_CONF`` (user ``CEPH_USER``, default admin,
keyring ``CEPH_KEYRING``, pool ``CEPH_POOL``, default images), or starts a
throwaway one with scripts/ceph-start.sh and stops it afterwards. Figures:
add (known/unknown size) against the hand-written librbd aio write loop with
the same hashes (``ideal_add_rbd``) and ``rbd import``; gets against ``rbd
export``; every clone mode, cross-pool clone into ``vms``; the cow clone of a
big image (O(1)). The records are the JSONL records of ``schema.py``.
"""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..backends import Backend, RbdBackend
from ..figures import GiB, size_label
from ..runner import Run
from .store import StoreOptions, run_store
from ..env.services import Services
from ..report.targets import evaluate


def _sizes(ctx: Any) -> list[int]:
    sizes = sorted({int(ctx.size), int(getattr(ctx, "big", ctx.size))})
    return sizes


def run(ctx: Any) -> dict[str, Any]:
    """The generic scenario on RBD; returns its records and the RBD targets (legacy dict shape)."""
    conf = os.environ.get("CEPH_CONF")
    services: Services | None = None
    if not conf:
        services = Services(log=ctx.log)
        services.start({"ceph"}, osd_mb=int(3 * max(_sizes(ctx)) / (1 << 20)) + 2048)
        if services.ceph is None:
            services.stop()
            return {"skipped": f"no Ceph: {services.failures.get('ceph')}"}
        spec = {"driver": "rbd", "conf": services.ceph.conf, "user": "imagestore",
                "keyring": services.ceph.keyring, "pool": "images"}
        pids = services.ceph.rbd_pids
    else:
        spec = {"driver": "rbd", "conf": conf, "user": os.environ.get("CEPH_USER", "admin"),
                "pool": os.environ.get("CEPH_POOL", "images")}
        if os.environ.get("CEPH_KEYRING"):
            spec["keyring"] = os.environ["CEPH_KEYRING"]
        pids = None
    buf = io.StringIO()
    r = Run(workdir=Path(ctx.workdir), out=buf, chunk=int(getattr(ctx, "chunk_size", 4 << 20)),
            repeats=int(getattr(ctx, "runs", 3)), verbose=bool(getattr(ctx, "verbose", True)))
    b: Backend | None = None
    vms: Backend | None = None
    try:
        b = RbdBackend("rbd", spec, pids=pids, pool=r.pool(), chunk=r.chunk, scratch=r.workdir)
        try:
            vms = Backend("rbd-vms", {**spec, "pool": "vms"})
        except Exception as exc:  # no vms pool: no cross-pool clone
            r.skip("store", "rbd-vms", f"cannot open pool vms: {exc}")
        clone = int(getattr(ctx, "clone", 0)) or None
        run_store(r, b, StoreOptions(sizes=_sizes(ctx), clone_size=clone, cross=vms))
    finally:
        for x in (b, vms):
            if x is not None:
                x.close()
        r.drop_sources()
        if services is not None:
            services.stop()
    targets = [{"id": t["id"], "description": t["description"], "value": t["value"], "op": t["op"],
                "limit": t["threshold"], "met": t["met"]}
               for t in evaluate(r.records) if t["id"].startswith(("rbd.", "clone_o1.rbd", "get_vs_raw_read.rbd"))
               and t["value"] is not None]
    return {"sizes": [size_label(s) for s in _sizes(ctx)], "records": r.records, "targets": targets,
            "cluster": f"CEPH_CONF={conf}" if conf else "started by the scenario"}


class _ScriptContext:
    """Enough of the harness's Context to run alone."""

    def __init__(self, workdir: Path, sizes: list[int]) -> None:
        self.workdir, self.size, self.big, self.clone, self.runs = workdir, sizes[0], sizes[-1], 0, 3
        self.chunk_size, self.verbose = 4 << 20, True

    def log(self, message: str) -> None:
        print(f"[bench] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    from ..figures import parse_size

    sizes = [parse_size(a) for a in sys.argv[1:]] or [GiB]
    with tempfile.TemporaryDirectory(prefix="rbdbench-", dir="/var/tmp") as tmp:
        print(json.dumps(run(_ScriptContext(Path(tmp), sizes)), indent=2))
