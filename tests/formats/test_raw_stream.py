"""``qemu-img convert`` into the NBD sink: the raw disk comes out as a stream equal to what
``qemu-img`` writes to a file, zero runs as zeros; a broken client, a failed or abandoned
conversion end the stream with an error and leave no process behind."""

from __future__ import annotations

import hashlib
import os
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagestore import BackendError, ChecksumMismatch
from imagestore.engine import qemu
from imagestore.engine.nbd import NbdError, NbdSink, NbdSource

MiB = 1 << 20


def _qcow2(path: Path, *extra: str) -> Path:
    """A 64 MiB qcow2 with data at its start, middle and last MiB."""
    raw = path.with_suffix(".raw")
    with open(raw, "wb") as fh:
        for offset, byte in ((0, 0xAB), (31 * MiB + 4096, 0xCD), (63 * MiB, 0x11)):
            fh.seek(offset)
            fh.write(bytes([byte]) * (MiB - 4096) + os.urandom(4096))
        fh.truncate(64 * MiB)
    subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", *extra, str(raw), str(path)], check=True)
    return raw


@pytest.mark.parametrize("options", [[], ["-c"]], ids=["plain", "compressed"])
def test_the_stream_is_the_raw_disk(tmp_path: Path, options: list[str]) -> None:
    raw = _qcow2(tmp_path / "disk.qcow2", *options)
    got = hashlib.sha256()
    sizes = 0
    with qemu.raw_stream(str(tmp_path / "disk.qcow2"), "qcow2", 64 * MiB, str(tmp_path), store="s",
                         image="i") as stream:
        for chunk in stream:
            got.update(chunk)
            sizes += len(chunk)
    assert sizes == 64 * MiB and got.hexdigest() == hashlib.sha256(raw.read_bytes()).hexdigest()


def test_a_failed_conversion_hands_out_no_trailing_zeros_and_names_the_image(tmp_path: Path) -> None:
    _qcow2(tmp_path / "disk.qcow2")
    handed = 0
    with pytest.raises(BackendError) as err:
        # an export smaller than the disk: qemu-img refuses it and exits 1
        with qemu.raw_stream(str(tmp_path / "disk.qcow2"), "qcow2", 32 * MiB, str(tmp_path), store="s",
                             image="img-1") as stream:
            for chunk in stream:
                handed += len(chunk)
    assert handed == 0 and err.value.image == "img-1" and "smaller" in str(err.value)
    assert str(tmp_path) not in str(err.value)


def test_leaving_the_stream_early_kills_qemu_img(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _qcow2(tmp_path / "disk.qcow2")
    started: list[subprocess.Popen[bytes]] = []
    real = qemu.subprocess.Popen

    def popen(*args: object, **kwargs: object) -> subprocess.Popen[bytes]:
        started.append(real(*args, **kwargs))  # type: ignore[call-overload]
        return started[-1]

    monkeypatch.setattr(qemu.subprocess, "Popen", popen)
    with pytest.raises(RuntimeError):
        with qemu.raw_stream(str(tmp_path / "disk.qcow2"), "qcow2", 64 * MiB, str(tmp_path), store="s",
                             image="i") as stream:
            next(iter(stream))
            raise RuntimeError("the consumer failed")  # an upload that broke off
    assert len(started) == 1 and started[0].poll() is not None


class _Client:
    """A hand-written NBD client: the fixed newstyle handshake, then raw requests."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        for _ in range(100):
            try:
                self.sock.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                time.sleep(0.01)
        self.sock.recv(18)
        self.sock.sendall(struct.pack(">I", 3))
        self.sock.sendall(struct.pack(">QII", 0x49484156454F5054, 1, 0))  # NBD_OPT_EXPORT_NAME ""
        self.sock.recv(10)

    def write(self, offset: int, data: bytes) -> int:
        self.sock.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 1, 7, offset, len(data)) + data)
        reply = self.sock.recv(16)
        return struct.unpack(">IIQ", reply)[1] if len(reply) == 16 else -1


class _Slots:
    """A buffer per chunk (what the add pipeline's ring gives, without the reuse)."""

    chunk_size = MiB

    def next(self) -> int:
        return 0

    def buffer(self, slot: int) -> memoryview:
        return memoryview(bytearray(self.chunk_size))


def _serve(tmp_path: Path, client: object) -> Iterator[memoryview]:
    path = str(tmp_path / "s.sock")
    sink = NbdSink(path, 8 * MiB, alive=lambda: thread.is_alive(), deadline=time.monotonic() + 30, poll=0.05)
    thread = threading.Thread(target=client, args=(path,), daemon=True)
    thread.start()
    with sink:
        for _, view in sink.chunks(_Slots()):
            yield view
        for _, view in sink.tail(_Slots()):
            yield view


def test_writes_in_order_and_gaps_come_out_as_the_disk(tmp_path: Path) -> None:
    def client(path: str) -> None:
        c = _Client(path)
        assert c.write(MiB, b"a" * 100) == 0 and c.write(3 * MiB, b"b" * 5) == 0
        assert c.write(5 * MiB, b"c" * (MiB + MiB // 2)) == 0  # longer than a slot: received in two
        c.sock.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 2, 8, 0, 0))  # NBD_CMD_DISC

    disk = b"".join(bytes(chunk) for chunk in _serve(tmp_path, client))
    assert disk == (bytes(MiB) + b"a" * 100 + bytes(2 * MiB - 100) + b"b" * 5 + bytes(2 * MiB - 5)
                    + b"c" * (MiB + MiB // 2) + bytes(MiB + MiB // 2))


@pytest.mark.parametrize("broken", ["behind", "beyond", "gone"])
def test_a_client_that_breaks_the_stream_ends_it_with_an_error(tmp_path: Path, broken: str) -> None:
    replies: list[int] = []

    def client(path: str) -> None:
        c = _Client(path)
        replies.append(c.write(2 * MiB, b"x" * 10))
        if broken == "behind":
            replies.append(c.write(MiB, b"y"))
        elif broken == "beyond":
            replies.append(c.write(8 * MiB - 1, b"zz"))
        c.sock.close()

    with pytest.raises(NbdError, match={"behind": "out of order", "beyond": "export",
                                         "gone": "closed the connection"}[broken]):
        for _ in _serve(tmp_path, client):
            pass
    assert replies[0] == 0 and all(code == 22 for code in replies[1:])


class _FileRanges:
    """A local file served by range (what a stored image's verified blocks are to the export);
    ``bad`` makes a read that touches that offset fail as a block that does not match would."""

    def __init__(self, path: Path, bad: int | None = None) -> None:
        self._data = path.read_bytes()
        self.size = len(self._data)
        self._bad = bad
        self.reads = 0

    def pread(self, offset: int, length: int) -> bytes:
        self.reads += 1
        if self._bad is not None and offset <= self._bad < offset + length:
            raise ChecksumMismatch(f"block {self._bad >> 20} does not match the block table", algorithm="blake3",
                                   expected="00", actual="11", store="s", image="img-2")
        return self._data[offset:offset + length]


@pytest.mark.parametrize("options", [[], ["-c"]], ids=["plain", "compressed"])
def test_a_source_served_by_range_converts_as_the_file_does(tmp_path: Path, options: list[str]) -> None:
    raw = _qcow2(tmp_path / "disk.qcow2", *options)
    source = _FileRanges(tmp_path / "disk.qcow2")
    got = hashlib.sha256()
    with qemu.raw_stream(source, "qcow2", 64 * MiB, str(tmp_path), store="s", image="i") as stream:
        for chunk in stream:
            got.update(chunk)
    assert source.reads > 0 and got.hexdigest() == hashlib.sha256(raw.read_bytes()).hexdigest()


def test_a_refused_source_read_fails_the_conversion_with_its_own_error(tmp_path: Path) -> None:
    _qcow2(tmp_path / "disk.qcow2")
    size = os.path.getsize(tmp_path / "disk.qcow2")
    with pytest.raises(ChecksumMismatch, match="block") as err:
        with qemu.raw_stream(_FileRanges(tmp_path / "disk.qcow2", bad=size - 2048), "qcow2", 64 * MiB,
                             str(tmp_path), store="s", image="img-2") as stream:
            for _ in stream:
                pass
    assert err.value.image == "img-2"


def test_the_source_export_refuses_writes(tmp_path: Path) -> None:
    path = str(tmp_path / "src.sock")
    (tmp_path / "f").write_bytes(b"abc" * 1000)
    source = NbdSource(path, _FileRanges(tmp_path / "f"), alive=lambda: True, deadline=time.monotonic() + 30,
                       poll=0.05)
    with source:
        source.start()
        client = _Client(path)
        client.sock.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 0, 5, 10, 4))  # NBD_CMD_READ 4 bytes at 10
        header = client.sock.recv(16)
        assert struct.unpack(">IIQ", header)[1:] == (0, 5) and client.sock.recv(4) == b"bcab"
        assert client.write(0, b"x") == 1  # EPERM: a read-only export
        assert client.sock.recv(1) == b""  # and the export ends
    assert isinstance(source.error, NbdError) and "read-only" in str(source.error) and source.served == 4
