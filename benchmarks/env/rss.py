"""Peak resident memory of one store operation, measured in a fresh interpreter.

Each operation runs in its own ``python -c`` child so that its peak (VmHWM) is
its own and not the harness's; the child also reports its peak right before
the operation, so the operation's own growth is visible.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

_CHILD = r"""
import json, resource, sys, time
import imagestore

def hwm_kib():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

op, root, image, arg = sys.argv[1:5]
store = imagestore.open_store({"driver": "file", "root": root}, name="bench")
before = hwm_kib()  # interpreter + imagestore: the baseline
start = time.perf_counter()
if op == "add":
    store.add(image, arg)
elif op == "get":
    with store.open(image) as reader:  # streaming, verified (Store.get would hold it all)
        for _ in reader:
            pass
elif op == "download_to":
    store.download_to(image, arg)
else:
    raise SystemExit("unknown op " + op)
elapsed = time.perf_counter() - start
print(json.dumps({"before_kib": before, "peak_kib": hwm_kib(),
                  "ru_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "seconds": elapsed}))
"""

OPS = ("add", "get", "download_to")


def measure(op: str, root: Path, image: str, arg: str = "-") -> dict[str, Any]:
    """Run ``op`` (add/get/download_to) of ``image`` in store ``root`` in a child; MiB figures."""
    proc = subprocess.run([sys.executable, "-c", _CHILD, op, str(root), image, arg],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"rss child {op} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"peak_mib": round(data["peak_kib"] / 1024, 1),
            "baseline_mib": round(data["before_kib"] / 1024, 1),
            "growth_mib": round((data["peak_kib"] - data["before_kib"]) / 1024, 1),
            "seconds": round(data["seconds"], 3)}
