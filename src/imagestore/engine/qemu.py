"""Running ``qemu-img convert`` on bytes that were verified and inspected first: the input format
given explicitly (``-f``; a qcow2 or vmdk with ``"backing": null``, so no backing chain is ever
opened), bounded CPU time and address space (``prlimit`` on the child), a wall-clock
timeout, sparse output (``-S``), and every failure an :class:`~imagestore.errors.ImageStoreError`
that names the image. The caller has refused backing files, external data files and extents
before this runs (the format inspector)."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import time

from ..errors import BackendError, Unsupported

__all__ = ["DRIVERS", "Limits", "convert_to_raw", "qemu_img"]

DRIVERS = {"qcow2": "qcow2", "vmdk": "vmdk", "vhdx": "vhdx", "vdi": "vdi", "vhd": "vpc"}
"""Disk formats (glance names) converted to raw, and the qemu block driver that reads each."""


class Limits:
    """What one conversion may take, from the size of its input: CPU seconds, address space and
    wall-clock seconds. Generous for honest images (qemu-img converts at hundreds of MB/s a
    core; compressed clusters at tens), tight enough that a crafted one cannot hold a core or
    the node's memory for long."""

    cpu_floor = 60.0
    cpu_per_gib = 120.0
    address_space = 2 << 30
    wall_floor = 300.0
    wall_per_gib = 240.0

    def __init__(self, input_size: int) -> None:
        gib = input_size / (1 << 30)
        self.cpu = int(self.cpu_floor + self.cpu_per_gib * gib)
        self.wall = self.wall_floor + self.wall_per_gib * gib


def qemu_img() -> str:
    """The qemu-img binary; Unsupported with an install hint when there is none."""
    found = shutil.which("qemu-img")
    if found is None:
        raise Unsupported("converting images needs qemu-img: apt install qemu-utils (dnf install qemu-img)")
    return found


def _source_spec(fmt: str, path: str) -> str:
    """The source as a ``json:`` filename: a local file, and for the formats that can have one, no
    backing file (``"backing": null``: none is opened whatever the header names)."""
    spec: dict[str, object] = {"file": {"driver": "file", "filename": path}}
    if fmt in _BACKING:
        spec["backing"] = None
    return "json:" + json.dumps(spec, separators=(",", ":"))


_BACKING = frozenset({"qcow2", "vmdk"})
"""Formats whose qemu driver follows a backing file (parent) named in the image."""


def convert_to_raw(source: str, target: str, fmt: str, *, store: str, image: str,
                   limits: Limits | None = None) -> None:
    """Convert the local file ``source`` (of disk format ``fmt``) into the sparse raw file ``target``."""
    driver = DRIVERS.get(fmt)
    if driver is None:
        raise Unsupported(f"a {fmt} image cannot be converted to raw", store=store, image=image)
    limits = limits or Limits(os.path.getsize(source))
    argv = [qemu_img(), "convert", "-q", "-W", "-S", "4k", "-f", driver, "-O", "raw", _source_spec(fmt, source),
            target]
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        resource.prlimit(proc.pid, resource.RLIMIT_CPU, (limits.cpu, limits.cpu))
        resource.prlimit(proc.pid, resource.RLIMIT_AS, (limits.address_space, limits.address_space))
    except (ProcessLookupError, PermissionError):
        pass  # it ended already: its exit status says how
    try:
        _, err = proc.communicate(timeout=limits.wall)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise BackendError(f"qemu-img did not convert the {fmt} image within {limits.wall:.0f} s; it was killed",
                           store=store, image=image) from None
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    if proc.returncode == 0:
        return
    if proc.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        why = f"it used up its {limits.cpu} CPU seconds"
    else:
        lines = [line for line in err.decode("utf-8", "replace").splitlines() if line.strip()]
        why = (lines[-1] if lines else f"exit status {proc.returncode}").replace(source, "<source>")
        why = why.replace(target, "<target>")
    raise BackendError(f"qemu-img could not convert the {fmt} image to raw after "
                       f"{time.monotonic() - started:.1f} s: {why}", store=store, image=image)
