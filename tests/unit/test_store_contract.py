"""The facade's contract beyond one driver: limits on every path, error translation,
extra checksums, glance-form locations, the opportunistic sweep."""

from __future__ import annotations

import errno
import hashlib
import os
import time
import uuid
from pathlib import Path

import pytest

import imagestore
from imagestore import BackendError, BackendUnavailable, ImageTooLarge, NoSpace, NotFound, PermissionDenied
from imagestore.errors import Transient, from_os_error

MiB = 1 << 20


def memory(name: str = "m", **options: object) -> imagestore.Store:
    return imagestore.open_store({"driver": "memory", **options}, name)


@pytest.mark.parametrize(("code", "cls"), [
    (errno.ENOSPC, NoSpace), (errno.EDQUOT, NoSpace), (errno.EACCES, PermissionDenied),
    (errno.EPERM, PermissionDenied), (errno.EROFS, BackendError), (errno.EIO, BackendError),
    (errno.ETIMEDOUT, BackendUnavailable), (errno.ECONNRESET, BackendUnavailable),
])
def test_os_errors_map_by_errno(code: int, cls: type) -> None:
    exc = OSError(code, "whatever", "/etc/shadow")
    err = from_os_error(exc, op="upload", store="s", image="i")
    assert type(err) is cls
    assert os.strerror(code) in str(err) and "'s'" in str(err) and "'i'" in str(err)
    assert "/etc/shadow" not in str(err)  # never a path the caller did not name
    if isinstance(err, BackendError):
        assert err.errno == code


def test_transient_is_not_an_imagestore_error() -> None:
    """It must never reach a caller, so catching ImageStoreError must not hide an escape."""
    assert not issubclass(Transient, imagestore.ImageStoreError)


def test_unknown_size_add_stops_at_the_backend_object_limit() -> None:
    store = memory(max_object_size=3 * MiB)
    pulled = 0

    def endless():  # type: ignore[no-untyped-def]
        nonlocal pulled
        while True:
            pulled += MiB
            yield b"\1" * MiB

    with pytest.raises(ImageTooLarge) as err:
        store.add("big", endless())
    assert "maximum object size" in str(err.value) and pulled <= 5 * MiB
    with pytest.raises(NotFound):
        store.stat("big")
    assert store.limit().size == 3 * MiB
    # the smaller of the two limits wins
    capped = memory(max_object_size=3 * MiB, max_image_size="1M")
    assert capped.limit().size == MiB and "max_image_size" in capped.limit().name


@pytest.mark.parametrize("mode", ["server_copy", "stream"])
def test_clones_honour_the_target_size_limit(mode: str) -> None:
    ns = uuid.uuid4().hex
    source = memory("src", namespace=ns)
    small = memory("small", namespace=ns, max_image_size="1M")
    info = source.add("img", os.urandom(2 * MiB))
    with pytest.raises(ImageTooLarge) as err:
        source.clone(info.location, small, name="copy", mode=mode)  # type: ignore[arg-type]
    assert "'small'" in str(err.value)
    with pytest.raises(NotFound):
        small.stat("copy")
    tiny = memory("tiny", namespace=ns, max_object_size=MiB)
    with pytest.raises(ImageTooLarge):
        source.clone(info.location, tiny, name="copy2", mode=mode)  # type: ignore[arg-type]


def test_extra_checksums_are_computed_in_the_same_pass() -> None:
    store = memory()
    data = os.urandom(3 * MiB + 1)
    info = store.add("img", data, checksums=["sha256", "md5"])
    assert dict(info.checksums) == {"md5": hashlib.md5(data).hexdigest(),
                                    "sha512": hashlib.sha512(data).hexdigest(),
                                    "sha256": hashlib.sha256(data).hexdigest()}
    assert store.stat("img").checksums == info.checksums
    with pytest.raises(imagestore.ConfigError):
        store.add("img2", data, checksums=["crc32"])


def test_glance_file_uri_is_a_location(tmp_path: Path) -> None:
    store = imagestore.open_store({"driver": "file", "root": str(tmp_path / "r")}, "local")
    store.add("abc", b"data", 4)
    glance_uri = f"file://{tmp_path}/r/abc"  # what glance_store's filesystem driver records
    assert store.stat(glance_uri).size == 4
    assert store.get(f"filesystem://{tmp_path}/r/abc") == b"data"
    with pytest.raises(imagestore.InvalidLocation):
        store.stat("file:///etc/passwd")


def test_reads_resume_and_never_return_a_short_image(monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader that ends early is reopened where it stopped; one that keeps ending early fails."""
    from imagestore.drivers import memory as mem

    store = memory(retries=2, retry_backoff=0, chunk_size="1M")
    data = os.urandom(5 * MiB)
    store.add("img", data)
    real = mem._MemoryReader.read
    cuts = {"n": 0}

    def short(self: mem._MemoryReader, n: int) -> bytes:
        out = real(self, n)
        if out and cuts["n"] < 2 and len(self.view):
            cuts["n"] += 1
            self.view = memoryview(b"")  # the connection closed before the end
        return out

    monkeypatch.setattr(mem._MemoryReader, "read", short)
    with store.open("img") as reader:
        assert b"".join(reader) == data and reader.resumes == 2

    monkeypatch.setattr(mem._MemoryReader, "read", real)
    real_open = mem.MemoryDriver.open_reader

    def truncated(self: mem.MemoryDriver, location: object, offset: int, length: int) -> mem._MemoryReader:
        reader = real_open(self, location, offset, length)  # type: ignore[arg-type]
        reader.view = reader.view[:max(0, 2 * MiB - offset)]  # the backend lost the tail
        return reader

    monkeypatch.setattr(mem.MemoryDriver, "open_reader", truncated)
    with pytest.raises(imagestore.SizeMismatch) as err, store.open("img") as reader:
        b"".join(reader)
    assert reader.resumes == 2 and "read 2097152 bytes where 5242880 were expected" in str(err.value)


def test_auto_sweep_runs_once_per_interval(tmp_path: Path) -> None:
    root = tmp_path / "r"
    store = imagestore.open_store({"driver": "file", "root": str(root), "sweep_older_than": "1h"}, "f")
    store.add("seed", b"x", 1)
    dead = root / ".tmp" / "img.1.dead"
    dead.write_bytes(b"left by a killed writer")
    old = time.time() - 7200
    os.utime(dead, (old, old))
    store.add("second", b"y", 1)  # swept at the first add already: not again within the hour
    assert dead.exists()
    fresh = imagestore.open_store({"driver": "file", "root": str(root), "sweep_older_than": "1h"}, "f")
    fresh.add("third", b"z", 1)  # a newly opened store sweeps before its first add
    assert not dead.exists()
    off = imagestore.open_store({"driver": "file", "root": str(root), "auto_sweep": False}, "f")
    dead.write_bytes(b"again")
    os.utime(dead, (old, old))
    off.add("fourth", b"w", 1)
    assert dead.exists()


@pytest.mark.parametrize("uri", ["s3://AKIAQ:SeKr/3t@X@host/bucket/key", "s3+https://AKIAQ:SeKr/3tX@host/b/k",
                                 "swift+https://acct:user:SeKr/3tX@auth.example/v1/c/o"])
def test_glance_credentials_never_reach_a_message(uri: str, tmp_path: Path) -> None:
    store = imagestore.open_store({"driver": "file", "root": str(tmp_path / "r")}, "local")
    with pytest.raises(imagestore.InvalidLocation) as err:
        store.stat(uri)
    text = str(err.value)
    assert "SeKr" not in text and "3t" not in text and "AKIAQ" not in text, text
