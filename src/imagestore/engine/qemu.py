"""Running ``qemu-img convert`` on bytes that were verified and inspected first: the input format
given explicitly (``-f``; a qcow2 or vmdk with ``"backing": null``, so no backing chain is ever
opened), bounded CPU time and address space (``prlimit`` on the child), a wall-clock
timeout, zero runs never written (``--target-is-zero``), the raw disk streamed rather than
written locally (:mod:`.nbd`), and every failure an :class:`~imagestore.errors.ImageStoreError`
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
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import IO

from ..errors import BackendError, ImageStoreError, Unsupported
from .nbd import NbdError, NbdSink, NbdSource
from .nbd.source import RangeSource
from .slots import Slots, SlotSource

__all__ = ["DRIVERS", "Limits", "qemu_img", "raw_stream"]

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


def _source_spec(fmt: str, path: str, *, nbd: bool) -> str:
    """The source as a ``json:`` filename: a local file or an NBD export on the unix socket
    ``path``, and for the formats that can have one, no backing file (``"backing": null``: none is
    opened whatever the header names)."""
    file = {"driver": "nbd", "server": {"type": "unix", "path": path}} if nbd else {"driver": "file", "filename": path}
    spec: dict[str, object] = {"file": file}
    if fmt in _BACKING:
        spec["backing"] = None
    return "json:" + json.dumps(spec, separators=(",", ":"))


_BACKING = frozenset({"qcow2", "vmdk"})
"""Formats whose qemu driver follows a backing file (parent) named in the image."""


@contextmanager
def raw_stream(source: str | RangeSource, fmt: str, size: int, workdir: str, *, store: str, image: str,
               limits: Limits | None = None) -> Iterator[SlotSource]:
    """The raw disk of ``source`` (of disk format ``fmt``, ``size`` bytes of virtual disk) as a stream
    of chunks, converted by ``qemu-img`` into an NBD export on a unix socket in ``workdir``: nothing
    of the raw disk is written locally, zero runs arrive as shared zeros. ``source`` is a local file,
    or a :class:`~.nbd.source.RangeSource` served to qemu-img as a read-only NBD export (the
    stored image's verified blocks: no local copy of the input either). Leaving the block stops
    the conversion; a failed one raises BackendError naming the image (or the source's own error,
    such as a block that does not match its digest)."""
    driver = DRIVERS.get(fmt)
    if driver is None:
        raise Unsupported(f"a {fmt} image cannot be converted to raw", store=store, image=image)
    if isinstance(source, str):
        path, served_source, input_size = source, None, os.path.getsize(source)
    else:
        path, served_source, input_size = os.path.join(workdir, "source.sock"), source, source.size
    limits = limits or Limits(input_size)
    sock = os.path.join(workdir, "raw.sock")
    started = time.monotonic()
    proc: subprocess.Popen[bytes] | None = None

    def alive() -> bool:
        return proc is not None and proc.poll() is None

    with ExitStack() as stack:
        try:
            sink = stack.enter_context(NbdSink(sock, size, alive=alive, deadline=started + limits.wall))
            served = None if served_source is None else \
                stack.enter_context(NbdSource(path, served_source, alive=alive, deadline=started + limits.wall))
        except OSError as exc:  # e.g. a TMPDIR too long for a unix socket's path
            raise BackendError(f"no socket for qemu-img in {workdir}: {exc.strerror}", store=store,
                               image=image) from None
        # without -W the writes arrive in order; --target-is-zero: zero runs are skipped, not written
        argv = [qemu_img(), "convert", "-q", "-n", "--target-is-zero", "-S", "4k", "-f", driver, "-O", "raw",
                _source_spec(fmt, path, nbd=served is not None), f"nbd+unix:///?socket={sock}"]
        err = stack.enter_context(open(os.path.join(workdir, "qemu-img.err"), "w+b"))
        proc = _spawn(argv, err, limits)
        failure = _Failure(proc, err, fmt, limits, started, {path: "<source>", sock: "<target>"}, served,
                           store=store, image=image)
        try:
            if served is not None:
                served.start()
            yield _RawStream(sink, failure)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _spawn(argv: list[str], err: IO[bytes], limits: Limits) -> subprocess.Popen[bytes]:
    """Start qemu-img in its own session (so that a kill takes all of it) under ``limits``."""
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                            start_new_session=True)
    try:
        resource.prlimit(proc.pid, resource.RLIMIT_CPU, (limits.cpu, limits.cpu))
        resource.prlimit(proc.pid, resource.RLIMIT_AS, (limits.address_space, limits.address_space))
    except (ProcessLookupError, PermissionError):
        pass  # it ended already: its exit status says how
    return proc


class _RawStream(SlotSource):
    """The sink's chunks; the time the consumer holds each one is not qemu-img's, so it moves the
    wall-clock deadline on. qemu-img must exit 0 before the trailing zeros are handed out."""

    def __init__(self, sink: NbdSink, failure: _Failure) -> None:
        self._sink, self._failure = sink, failure

    def chunks_into(self, slots: Slots) -> Iterator[tuple[int, memoryview]]:
        sink, failure = self._sink, self._failure
        try:
            for chunk in sink.chunks(slots):
                handed = time.monotonic()
                yield chunk
                sink.deadline += time.monotonic() - handed
        except NbdError as exc:
            raise failure.error(str(exc)) from None
        try:
            failure.proc.wait(timeout=max(1.0, sink.deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise failure.error("it did not exit after the last write") from None
        if failure.proc.returncode != 0 or failure.refused() is not None:
            raise failure.error(f"exit status {failure.proc.returncode}")
        yield from sink.tail(slots)


class _Failure:
    """What a failed conversion says: qemu-img's own last error line, else ``fallback``."""

    def __init__(self, proc: subprocess.Popen[bytes], err: IO[bytes], fmt: str, limits: Limits, started: float,
                 redact: dict[str, str], source: NbdSource | None, *, store: str, image: str) -> None:
        self.proc, self._err, self._fmt, self._limits, self._started = proc, err, fmt, limits, started
        self._source = source
        self._redact, self._store, self._image = redact, store, image

    def refused(self) -> ImageStoreError | None:
        """The error of a read the source export refused, if one was."""
        cause = self._source.error if self._source is not None else None
        return cause if isinstance(cause, ImageStoreError) else None

    def error(self, fallback: str) -> Exception:
        if self.proc.poll() is None:
            try:  # qemu-img's side of the story: it is ending, or it is stuck and is killed
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
                fallback = f"{fallback}; it was killed"
        if self.proc.returncode in (-signal.SIGXCPU, -signal.SIGKILL) and "killed" not in fallback:
            why = f"it used up its {self._limits.cpu} CPU seconds"
        else:
            self._err.seek(0)
            lines = [line for line in self._err.read()[-4096:].decode("utf-8", "replace").splitlines()
                     if line.strip()]
            why = lines[-1] if lines and self.proc.returncode else fallback
            for path, name in self._redact.items():
                why = why.replace(path, name)
        cause = self.refused()
        if cause is not None:  # the input was refused (a block not its digest): that is the story
            return cause
        return BackendError(f"qemu-img could not convert the {self._fmt} image to raw after "
                            f"{time.monotonic() - self._started:.1f} s: {why}", store=self._store, image=self._image)
