"""``--with-services``: start the project's local backends for one run, and always stop them.

Each service is started by the project's own script in a fresh temporary
directory, on free ports on 127.0.0.1, and stopped by its stop script (which
kills only the PIDs it recorded) when the run ends, fails or is interrupted
(SIGINT/SIGTERM become KeyboardInterrupt, so ``finally`` blocks run).
Nothing another user started is touched.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imagestore.testing.moto import MotoProcess
from imagestore.testing.ports import free_port, free_ports

from .checkout import SCRIPTS, script

RGW_GC = {"rgw_gc_obj_min_wait": "0", "rgw_gc_processor_period": "10", "rgw_gc_processor_max_time": "10"}


def read_env(path: Path) -> dict[str, str]:
    """The ``export NAME=VALUE`` lines of a service's DIR/env."""
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            name, _, value = words[1].partition("=")
            env[name] = value
    return env


def pids_in(directory: Path) -> list[int]:
    """PIDs recorded in DIR/pids/* (first word of each file) that are alive."""
    out: list[int] = []
    for f in sorted((directory / "pids").glob("*")) if (directory / "pids").is_dir() else []:
        try:
            pid = int(f.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        if Path(f"/proc/{pid}").exists():
            out.append(pid)
    return out


@dataclass
class Ceph:
    """A single-node cluster (memstore OSD) with radosgw."""

    dir: Path
    env: dict[str, str]

    @property
    def conf(self) -> str:
        return str(self.dir / "ceph.conf")

    @property
    def keyring(self) -> str:
        return str(self.dir / "client.imagestore.keyring")

    def rbd_pids(self) -> list[int]:
        return [p for f, p in _named_pids(self.dir).items() if f.startswith(("osd", "mon"))]

    def rgw_pids(self) -> list[int]:
        return [p for f, p in _named_pids(self.dir).items() if f.startswith(("osd", "rgw"))]


def _named_pids(directory: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for f in sorted((directory / "pids").glob("*")) if (directory / "pids").is_dir() else []:
        try:
            out[f.name] = int(f.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return out


@dataclass
class Swift:
    dir: Path
    env: dict[str, str]

    def pids(self) -> list[int]:
        return [p for f, p in _named_pids(self.dir).items() if f in ("proxy", "object", "container", "account")]


@dataclass
class Moto:
    endpoint: str
    proc: subprocess.Popen[bytes]

    def pids(self) -> list[int]:
        return [self.proc.pid]


@dataclass
class Services:
    """The services of one run; :meth:`stop` undoes whatever :meth:`start` did, in reverse."""

    log: Callable[[str], None]
    base: Path = field(default_factory=Path)
    ceph: Ceph | None = None
    swift: Swift | None = None
    moto: Moto | None = None
    failures: dict[str, str] = field(default_factory=dict)
    _stops: list[Callable[[], None]] = field(default_factory=list)
    _watchdog: subprocess.Popen[bytes] | None = None
    _orphans: dict[str, Any] = field(default_factory=lambda: {"dirs": [], "pids": []})

    def start(self, want: set[str], osd_mb: int) -> None:
        """Start each wanted service ("ceph", "swift", "moto"); a failure is noted, the others go on.

        A watchdog child stops them too if this process dies without stopping them (a crash, SIGKILL)."""
        self.base = Path(tempfile.mkdtemp(prefix="isb-", dir="/tmp"))
        self._watchdog = subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(self.base),
                                           str(SCRIPTS)], start_new_session=True)
        self._stops.append(self._stop_watchdog)
        starts: tuple[tuple[str, Callable[[], None]], ...] = (
            ("ceph", lambda: self._ceph(osd_mb)), ("swift", self._swift), ("moto", self._moto))
        for name, fn in starts:
            if name not in want:
                continue
            t0 = time.monotonic()
            try:
                fn()
                self.log(f"services: {name} up in {time.monotonic() - t0:.0f}s")
            except Exception as exc:  # reported in the JSONL as a skip
                self.failures[name] = f"{type(exc).__name__}: {str(exc)[-1500:]}"
                self.log(f"services: {name} failed: {self.failures[name][:300]}")

    def _ceph(self, osd_mb: int) -> None:
        d = self.base / "ceph"
        mon, rgw = free_ports(2)
        env = {**os.environ, "CEPH_MON_PORT": str(mon), "CEPH_RGW_PORT": str(rgw), "CEPH_WITH_RGW": "0",
               "CEPH_OSD_SIZE_MB": str(osd_mb), "CEPH_MIN_COMPAT_CLIENT": "mimic",
               # the memstore OSD frees deleted objects, but glibc keeps 4-8 MiB blocks in its heap (10 GB of
               # RSS after a full run was seen); blocks this big mapped on their own go back at once
               "MALLOC_MMAP_THRESHOLD_": str(1 << 20), "MALLOC_ARENA_MAX": "2"}
        self._stops.append(lambda: _run([str(SCRIPTS / "ceph-stop.sh"), str(d)]))
        self._orphan(dirs=["ceph", str(d)])
        _run([str(script("ceph-start.sh", "--with-services ceph")), str(d)], env=env, timeout=900, check=True)
        # radosgw frees a deleted object's data only when its garbage collector runs (by default 2 h
        # later, once an hour): a benchmark that writes and deletes GiBs would fill the memstore OSD.
        # Set before radosgw starts, so it reads them from the mon's config database.
        for key, value in RGW_GC.items():
            _run(["ceph", "-c", str(d / "ceph.conf"), "config", "set", "client.rgw.a", key, value], check=True)
        _run([str(SCRIPTS / "ceph-rgw-start.sh"), str(d)], env=env, timeout=300, check=True)
        self.ceph = Ceph(d, read_env(d / "env"))

    def _swift(self) -> None:
        d = self.base / "swift"
        names = ("SWIFT_PROXY_PORT", "SWIFT_OBJECT_PORT", "SWIFT_CONTAINER_PORT", "SWIFT_ACCOUNT_PORT",
                 "SWIFT_MEMCACHED_PORT")
        env = {**os.environ, **dict(zip(names, map(str, free_ports(len(names))), strict=True))}
        self._stops.append(lambda: _run([str(SCRIPTS / "swift-stop.sh"), str(d)]))
        self._orphan(dirs=["swift", str(d)])
        _run([str(script("swift-start.sh", "--with-services swift")), str(d)], env=env, timeout=900, check=True)
        self.swift = Swift(d, read_env(d / "env"))
        for var in ("NO_PROXY", "no_proxy"):
            os.environ[var] = "127.0.0.1,localhost"

    def _moto(self) -> None:
        server = MotoProcess(logdir=self.base, new_session=True)
        self._stops.append(server.stop)
        server.start()
        assert server.proc is not None
        self._orphan(pids=server.proc.pid)
        self.moto = Moto(server.endpoint, server.proc)

    def _orphan(self, dirs: list[str] | None = None, pids: int | None = None) -> None:
        """Tell the watchdog what to stop should this process die first."""
        if dirs:
            self._orphans["dirs"].append(dirs)
        if pids:
            self._orphans["pids"].append(pids)
        tmp = self.base / "orphans.json.tmp"
        tmp.write_text(json.dumps(self._orphans))
        tmp.rename(self.base / "orphans.json")

    def _stop_watchdog(self) -> None:
        if self._watchdog is not None and self._watchdog.poll() is None:
            self._watchdog.terminate()
            self._watchdog.wait(10)

    def stop(self) -> None:
        """Stop everything started, newest first, even when one stop fails; remove the temp dir."""
        while self._stops:
            fn = self._stops.pop()
            try:
                fn()
            except Exception as exc:  # keep stopping the others
                self.log(f"services: a stop failed: {exc!r}")
        if self.base != Path():
            _run(["rm", "-rf", str(self.base)])

    def __enter__(self) -> Services:
        self._old = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
        for s in self._old:
            signal.signal(s, _interrupt)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            for s, h in self._old.items():
                signal.signal(s, h)


_WATCHDOG = r"""
import json, os, signal, subprocess, sys, time
parent, base, scripts = int(sys.argv[1]), sys.argv[2], sys.argv[3]
signal.signal(signal.SIGINT, signal.SIG_IGN)
while os.path.exists(f"/proc/{parent}"):
    time.sleep(2)
try:
    orphans = json.load(open(os.path.join(base, "orphans.json")))
except (OSError, ValueError):
    orphans = {"dirs": [], "pids": []}
for pid in orphans["pids"]:
    try:
        if b"moto.server" in open(f"/proc/{pid}/cmdline", "rb").read():
            os.killpg(pid, signal.SIGTERM)
    except OSError:
        pass
for kind, d in reversed(orphans["dirs"]):
    subprocess.run(["bash", os.path.join(scripts, f"{kind}-stop.sh"), d], capture_output=True, timeout=300)
subprocess.run(["rm", "-rf", base])
"""


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _run(cmd: list[str], env: dict[str, str] | None = None, timeout: float = 300, check: bool = False) -> None:
    if cmd[0].endswith(".sh"):
        cmd = ["bash", *cmd]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{Path(cmd[1]).name} exited {proc.returncode}: {(proc.stderr or proc.stdout)[-1500:]}")
