"""RBD scenario: clone is O(1) (vs a stream copy), and add throughput vs ``rbd import``.

``run(workdir)`` uses the cluster named by ``CEPH_CONF`` (user ``CEPH_USER``,
default admin, keyring ``CEPH_KEYRING``), or starts a throwaway one with
scripts/ceph-start.sh and stops it afterwards. Also runnable as a script:
``python benchmarks/scenario_rbd.py [WORKDIR] [SIZE_GIB ...]`` prints JSON.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

try:
    from .figures import target
except ImportError:  # run as a script: python benchmarks/scenario_rbd.py
    from figures import target  # type: ignore[no-redef]

GiB = 1 << 30
CHUNK = 8 << 20
RUNS = 3  # alternated repetitions of each add; the best is reported
SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _cpu_of(pid: int | None) -> float:
    """CPU seconds (user+system) a process has used so far; 0 when unknown."""
    if not pid:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


class _Meter:
    """Wall time plus the CPU time of this process and of the OSD over one step."""

    def __init__(self, osd_pid: int | None) -> None:
        self.osd_pid = osd_pid

    def __enter__(self) -> _Meter:
        self.t0, self.c0, self.o0 = time.perf_counter(), time.process_time(), _cpu_of(self.osd_pid)
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.t0
        self.client_cpu = time.process_time() - self.c0
        self.osd_cpu = _cpu_of(self.osd_pid) - self.o0

    def figures(self, nbytes: int) -> dict[str, float]:
        return {"seconds": round(self.wall, 3), "MiB_per_s": round(nbytes / self.wall / (1 << 20), 1),
                "client_cpu_s": round(self.client_cpu, 2), "osd_cpu_s": round(self.osd_cpu, 2)}


def _settle(osd_pid: int | None, timeout: float = 60.0) -> None:
    """Wait until the OSD is idle: deletes of a previous step run in its background and
    would otherwise be charged to the next measurement."""
    deadline = time.monotonic() + timeout
    last = _cpu_of(osd_pid)
    while osd_pid and time.monotonic() < deadline:
        time.sleep(0.5)
        now = _cpu_of(osd_pid)
        if now - last < 0.05:
            return
        last = now


def _best(rows: list[dict[str, float]]) -> dict[str, float]:
    """The fastest of repeated runs, with how many there were."""
    return {**min(rows, key=lambda r: r["seconds"]), "runs": len(rows)}


def _make_file(path: Path, size: int) -> None:
    """Incompressible, never-zero content (so neither side can skip sparse objects)."""
    block = bytearray(os.urandom(64 << 20))
    with open(path, "wb") as fh:
        done = 0
        while done < size:
            block[:16] = done.to_bytes(16, "little")  # every 64 MiB differs
            n = min(len(block), size - done)
            fh.write(memoryview(block)[:n])
            done += n


def _feed(writer: Any, path: Path) -> None:
    buf = bytearray(CHUNK)
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(buf):
            writer.write(memoryview(buf)[:n])


def _facade_store(conf: str, user: str, keyring: str | None, pool: str) -> Any:
    try:
        import imagestore

        spec = {"driver": "rbd", "conf": conf, "pool": pool, "user": user}
        if keyring:
            spec["keyring"] = keyring
        return imagestore.open_store(spec, "bench")
    except Exception:  # noqa: BLE001 - the facade may not exist yet: driver-only figures
        return None


def _scenario(conf: str, user: str, keyring: str | None, osd_pid: int | None, workdir: Path,
              sizes_gib: tuple[int, ...]) -> dict[str, Any]:
    from imagestore.drivers import CloneRequest, DriverContext
    from imagestore.drivers.rbd import RbdDriver

    opts: dict[str, Any] = {"conf": conf, "user": user, "keyring": keyring}
    images = RbdDriver("images", pool="images", **opts)
    vms = RbdDriver("vms", pool="vms", **opts)
    for driver in (images, vms):
        driver.open(DriverContext())
    store = _facade_store(conf, user, keyring, "images")
    cli = ["-c", conf, "--id", user] + (["--keyring", keyring] if keyring else [])
    result: dict[str, Any] = {"sizes": {}, "facade": store is not None}
    try:
        for gib in sizes_gib:
            size = int(gib * GiB)
            tag = uuid.uuid4().hex[:8]
            src = workdir / f"rbd-bench-{tag}.img"
            _make_file(src, size)
            row: dict[str, Any] = {}
            try:
                with open(src, "rb") as fh:  # warm the page cache equally for both contenders
                    while fh.read(64 << 20):
                        pass
                # -- add: the driver's writer alone, rbd import of the same file, and Store.add
                # (which also hashes), alternated RUNS times on an idle OSD; best of each kept
                runs: dict[str, list[dict[str, float]]] = {"add_driver": [], "rbd_import": [], "add_facade": []}
                for i in range(RUNS):
                    _settle(osd_pid)
                    with _Meter(osd_pid) as m:
                        w = images.open_writer(f"add-{tag}-{i}", size)
                        _feed(w, src)
                        written = w.commit({})
                    runs["add_driver"].append(m.figures(size))
                    if i:
                        images.delete(written)
                    else:
                        loc = written  # kept for the clone figures
                    _settle(osd_pid)
                    with _Meter(osd_pid) as m:
                        subprocess.run(["rbd", *cli, "import", "--image-format", "2", "--order", "23",
                                        "--image-feature", "layering", "--no-progress", str(src),
                                        f"images/import-{tag}"], check=True, capture_output=True)
                    runs["rbd_import"].append(m.figures(size))
                    subprocess.run(["rbd", *cli, "rm", "--no-progress", f"images/import-{tag}"], check=True,
                                   capture_output=True)
                    if store is not None:
                        _settle(osd_pid)
                        with _Meter(osd_pid) as m, open(src, "rb") as fh:
                            info = store.add(f"facade-{tag}-{i}", fh, size=size)
                        runs["add_facade"].append(m.figures(size))
                        store.delete(info.location)
                for key, rows in runs.items():
                    if rows:
                        row[key] = _best(rows)
                row["add_vs_import"] = round(row["rbd_import"]["seconds"] / row["add_driver"]["seconds"], 2)
                if "add_facade" in row:
                    row["facade_vs_import"] = round(row["rbd_import"]["seconds"] / row["add_facade"]["seconds"], 2)
                _settle(osd_pid)
                # -- clone (O(1)) against a full stream copy (read + write) of the same image
                with _Meter(osd_pid) as m:
                    child = images.clone(loc, vms, CloneRequest(f"clone-{tag}", "cow", {}))
                row["clone"] = m.figures(size)
                with _Meter(osd_pid) as m:
                    r = images.open_reader(loc, 0, size)
                    w = vms.open_writer(f"copy-{tag}", size)
                    while data := r.read(CHUNK):
                        w.write(memoryview(data))
                    r.close()
                    copy = w.commit({})
                row["stream_copy"] = m.figures(size)
                row["copy_vs_clone"] = round(row["stream_copy"]["seconds"] / max(row["clone"]["seconds"], 1e-6), 1)
                vms.delete(child)
                vms.delete(copy)
                images.delete(loc)
            finally:
                src.unlink(missing_ok=True)
            result["sizes"][f"{gib}GiB"] = row
        clones = [r["clone"]["seconds"] for r in result["sizes"].values()]
        targets = result["targets"] = []
        if len(clones) >= 2:
            result["clone_largest_vs_smallest"] = round(clones[-1] / max(clones[0], 1e-6), 2)
            labels = list(result["sizes"])
            targets.append(target("rbd.clone_o1", f"rbd cow clone time {labels[-1]} / {labels[0]}",
                                  result["clone_largest_vs_smallest"], "<=", 2))
        for label, row in result["sizes"].items():
            if "facade_vs_import" in row:
                targets.append(target(f"rbd.add_vs_import_{label}",
                                      f"rbd Store.add (hashing) vs rbd import, {label}",
                                      row["facade_vs_import"], ">=", 0.7))
            targets.append(target(f"rbd.driver_add_vs_import_{label}",
                                  f"rbd driver write alone vs rbd import, {label} (extra)",
                                  row["add_vs_import"], ">=", 0.7))
        result["notes"] = (
            f"best of {RUNS} alternated runs on an idle OSD; "
            "add_vs_import = rbd import seconds / driver add seconds (>= 0.7 is the target); "
            "client_cpu_s is this process (rbd import runs in a child, so its CPU is not counted); "
            "osd_cpu_s is the memstore OSD's CPU over the step (2 cores shared by client and OSD)"
        )
    finally:
        if store is not None:
            store.close()
        images.close()
        vms.close()
    return result


def run(workdir: str, sizes_gib: tuple[int, ...] = (1, 4)) -> dict[str, Any]:
    """Measure clone vs stream copy and add vs ``rbd import`` at each size; JSON-able figures."""
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    sizes_gib = tuple(int(g) for g in sizes_gib)  # the harness passes floats
    conf = os.environ.get("CEPH_CONF")
    user = os.environ.get("CEPH_USER", "admin")
    keyring = os.environ.get("CEPH_KEYRING") or None
    cluster_dir: Path | None = None
    osd_pid: int | None = None
    if not conf:
        cluster_dir = Path(tempfile.mkdtemp(prefix="ceph-bench-", dir="/tmp"))
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        env = {**os.environ, "CEPH_MON_PORT": str(port),
               "CEPH_OSD_SIZE_MB": str((2 * max(sizes_gib) + 3) * 1024)}
        proc = subprocess.run(["bash", str(SCRIPTS / "ceph-start.sh"), str(cluster_dir)], env=env,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"ceph-start.sh failed: {proc.stderr.strip()[-1500:]}")
        conf = str(cluster_dir / "ceph.conf")
    try:
        pid_file = Path(conf).parent / "pids" / "osd.0"
        if pid_file.is_file():
            osd_pid = int(pid_file.read_text().strip())
        out = _scenario(conf, user, keyring, osd_pid, work, tuple(sizes_gib))
        out["cluster"] = "started by the scenario" if cluster_dir else f"CEPH_CONF={conf}"
        return out
    finally:
        if cluster_dir is not None:
            subprocess.run(["bash", str(SCRIPTS / "ceph-stop.sh"), str(cluster_dir)], capture_output=True)


if __name__ == "__main__":
    sizes = tuple(int(a) for a in sys.argv[2:]) or (1, 4)
    print(json.dumps(run(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="rbdbench-"), sizes),
                     indent=2))
