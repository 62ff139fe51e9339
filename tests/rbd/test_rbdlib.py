"""The ctypes shim: errno mapping, missing libraries, connect timeouts, raw operations."""

from __future__ import annotations

import ctypes
import errno
import importlib
import os
import sys
import uuid
from pathlib import Path

import pytest

from imagestore.drivers.rbd import lib as _rbdlib
from imagestore.errors import (
    AlreadyExists,
    BackendError,
    ConfigError,
    DriverNotInstalled,
    InUse,
    NotFound,
    PermissionDenied,
    Transient,
)
from tests.services.ceph import CephCluster


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (errno.ENOENT, NotFound),
        (errno.EEXIST, AlreadyExists),
        (errno.EBUSY, InUse),
        (errno.ENOTEMPTY, InUse),
        (errno.EPERM, PermissionDenied),
        (errno.EACCES, PermissionDenied),
        (errno.ETIMEDOUT, Transient),
        (errno.ESHUTDOWN, Transient),
        (errno.ECONNREFUSED, Transient),
        (errno.EINVAL, _rbdlib.RbdError),
    ],
)
def test_errno_mapping(code: int, cls: type[Exception]) -> None:
    exc = _rbdlib.error_for(-code, "rbd_open(images/x)", store="ceph", image="x")
    assert isinstance(exc, cls)
    assert exc.errno == code  # type: ignore[attr-defined]
    assert "rbd_open(images/x)" in str(exc) and "x" in str(exc)


def test_missing_library_names_the_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_lib(*args: object, **kwargs: object) -> None:
        raise OSError("librbd.so.1: cannot open shared object file")

    monkeypatch.setattr(_rbdlib._ffi, "_lib", None)
    monkeypatch.setattr(ctypes, "CDLL", no_lib)
    with pytest.raises(DriverNotInstalled) as err:
        _rbdlib.load()
    assert "apt install librbd1 librados2" in str(err.value)


def test_old_import_path_is_a_deprecated_alias_of_the_same_binding(monkeypatch: pytest.MonkeyPatch) -> None:
    """``imagestore.drivers.rbdlib`` (kept one release) warns and hands out the very objects of
    ``imagestore.drivers.rbd.lib``: one loaded library, one at-exit shutdown of open connections."""
    monkeypatch.delitem(sys.modules, "imagestore.drivers.rbdlib", raising=False)
    with pytest.warns(DeprecationWarning, match=r"imagestore\.drivers\.rbd\.lib"):
        old = importlib.import_module("imagestore.drivers.rbdlib")
    assert old.__all__ == _rbdlib.__all__
    assert [name for name in _rbdlib.__all__ if getattr(old, name) is not getattr(_rbdlib, name)] == []
    assert [m for m in sys.modules if m.startswith("imagestore.drivers.rbdlib.")] == []


def test_split_mon_host() -> None:
    assert _rbdlib.split_mon_host("v2:127.0.0.1:3300") == ("v2:127.0.0.1:3300",)
    assert _rbdlib.split_mon_host("[v2:10.0.0.1:3300,v1:10.0.0.1:6789], 10.0.0.2 ,10.0.0.3") == (
        "[v2:10.0.0.1:3300,v1:10.0.0.1:6789]", "10.0.0.2", "10.0.0.3")


@pytest.mark.ceph
def test_connect_to_dead_mon_times_out_quickly(ceph_v1: CephCluster, tmp_path: Path) -> None:
    conf = Path(ceph_v1.conf).read_text()
    dead = tmp_path / "dead.conf"
    dead.write_text("\n".join(
        "mon host = v2:127.0.0.1:9" if line.startswith("mon host") else line for line in conf.splitlines()) + "\n")
    cluster = _rbdlib.Cluster(str(dead), "imagestore", ceph_v1.keyring, connect_timeout=1, label="dead")
    # the bound is librados' own: client_mount_timeout, set from connect_timeout (whole seconds)
    assert cluster.conf_get("client_mount_timeout") == "1"
    with pytest.raises(Transient) as err:
        cluster.fsid()
    assert err.value.errno == errno.ETIMEDOUT  # type: ignore[attr-defined]
    cluster.shutdown()


@pytest.mark.ceph
def test_connect_again_after_a_dead_mon_retries(ceph_v1: CephCluster, tmp_path: Path) -> None:
    """librados answers every connect after a failed one on the same handle with EINPROGRESS:
    a retry must reach the monitors again, and the error names them (never the key)."""
    conf = Path(ceph_v1.conf).read_text()
    dead = tmp_path / "dead.conf"
    dead.write_text("\n".join(
        "mon host = v2:127.0.0.1:9" if line.startswith("mon host") else line for line in conf.splitlines()) + "\n")
    cluster = _rbdlib.Cluster(str(dead), "imagestore", ceph_v1.keyring, connect_timeout=1, label="dead")
    key = Path(ceph_v1.keyring).read_text().split("key = ", 1)[1].split()[0]
    try:
        for _ in range(2):
            with pytest.raises(Transient) as err:
                cluster.connect()
            assert err.value.errno == errno.ETIMEDOUT  # type: ignore[attr-defined]
            assert "v2:127.0.0.1:9" in str(err.value) and str(dead) in str(err.value)
            assert key not in str(err.value)
    finally:
        cluster.shutdown()


@pytest.mark.ceph
def test_connect_to_an_unresolvable_mon_is_transient(ceph_v1: CephCluster, tmp_path: Path) -> None:
    """A mon_host name that does not resolve (DNS down, or a typo) is no monitor reachable, named."""
    conf = Path(ceph_v1.conf).read_text()
    dead = tmp_path / "dns.conf"
    dead.write_text("\n".join(
        "mon host = mon.nowhere.invalid" if line.startswith("mon host") else line for line in conf.splitlines())
        + "\n")
    cluster = _rbdlib.Cluster(str(dead), "imagestore", ceph_v1.keyring, connect_timeout=1, label="dns")
    try:
        with pytest.raises(Transient) as err:
            cluster.connect()
        assert err.value.errno == errno.EINVAL  # type: ignore[attr-defined]
        assert "mon.nowhere.invalid" in str(err.value) and "do not resolve" in str(err.value)
    finally:
        cluster.shutdown()


@pytest.mark.ceph
def test_connect_errors(ceph_v1: CephCluster, tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        _rbdlib.Cluster(str(tmp_path / "missing.conf"))
    wrong_user = _rbdlib.Cluster(ceph_v1.conf, "nobody", ceph_v1.keyring, connect_timeout=5)
    with pytest.raises(PermissionDenied):
        wrong_user.connect()
    wrong_user.shutdown()
    no_key = _rbdlib.Cluster(ceph_v1.conf, "imagestore", str(tmp_path / "none.keyring"), connect_timeout=5)
    with pytest.raises(ConfigError):
        no_key.connect()
    no_key.shutdown()


@pytest.mark.ceph
def test_raw_operations(ceph_cluster: CephCluster) -> None:
    c = _rbdlib.Cluster(ceph_cluster.conf, "imagestore", ceph_cluster.keyring, label="raw")
    name = f"raw-{uuid.uuid4().hex[:8]}"
    try:
        assert c.fsid() == ceph_cluster.fsid
        assert c.mon_hosts() and c.mon_hosts()[0].startswith("v2:127.0.0.1:")
        assert c.pool_exists("images") and not c.pool_exists("nope")
        with pytest.raises(NotFound):
            c.ioctx("nope")
        c.create("images", name, 8 << 20, order=22)
        with pytest.raises(AlreadyExists):
            c.create("images", name, 8 << 20, order=22)
        data = bytearray(os.urandom(4 << 20))
        with c.open("images", name) as img:
            comps = [img.aio_write(i * len(data), data, len(data)) for i in range(2)]
            assert all(x.wait() >= 0 for x in comps)
            assert img.read(len(data), 16) == bytes(data[:16])
            img.write(100, b"hello")
            assert img.read(100, 5) == b"hello"
            img.metadata_set("k", "v" * 3000)
            assert img.metadata_get("k") == "v" * 3000 and img.metadata_get("absent") is None
            assert img.metadata_list() == {"k": "v" * 3000}
            img.snap_create("s")
            img.snap_protect("s")
            assert img.snap_is_protected("s")
            assert [s[1] for s in img.snap_list()] == ["s"]
        c.clone("images", name, "s", "vms", name + "-c", order=22)
        with c.open("vms", name + "-c") as child:
            parent = child.parent()
            assert parent is not None and (parent.pool, parent.image, parent.snap) == ("images", name, "s")
            assert child.read(100, 5) == b"hello"
            v2 = bool(child.op_features() & _rbdlib.OP_FEATURE_CLONE_CHILD)
            assert v2 == ceph_cluster.clone_v2
        with c.open("images", name) as img:
            img.snap_set("s")
            assert [(k.pool, k.image) for k in img.children()] == [("vms", name + "-c")]
            img.snap_set(None)
            if not ceph_cluster.clone_v2:  # v2 lets a snapshot with clones be unprotected
                with pytest.raises(InUse):
                    img.snap_unprotect("s")
        with c.open("vms", name + "-c") as child:
            child.flatten()
            assert child.parent() is None
        c.remove("vms", name + "-c")
        with c.open("images", name) as img:
            img.snap_unprotect("s")
            img.snap_remove("s")
        c.rename("images", name, name + "-r")
        c.trash_move("images", name + "-r")
        entry = next(e for e in c.trash_list("images") if e.name == name + "-r")
        c.trash_remove("images", entry.id)
        with pytest.raises(NotFound):
            c.remove("images", name)
    finally:
        c.shutdown()


@pytest.mark.ceph
def test_a_connection_dropped_with_an_open_image_closes_it(ceph_v2: CephCluster) -> None:
    """A Cluster collected together with an image it opened (a reference cycle) closes the image
    before librados shuts down: its watch goes with it, so the image can be deleted at once; an
    image closed after its connection's shutdown is not closed twice, and a call on it is an error."""
    import gc

    owner = _rbdlib.Cluster(ceph_v2.conf, "imagestore", ceph_v2.keyring, label="owner")
    name = f"dropped-{uuid.uuid4().hex[:8]}"
    owner.create("images", name, 8 << 20, order=22)
    try:
        dropped = _rbdlib.Cluster(ceph_v2.conf, "imagestore", ceph_v2.keyring, label="dropped")
        image = dropped.open("images", name)  # writable: it holds a watch on the header
        assert image.size() == 8 << 20
        dropped.cycle = image  # type: ignore[attr-defined]
        del dropped, image
        gc.collect()
        owner.remove("images", name)  # EBUSY while the dropped handle's watch is registered
        assert name not in {n for n, _ in owner.list_images("images")}
        survivor = _rbdlib.Cluster(ceph_v2.conf, "imagestore", ceph_v2.keyring, label="survivor")
        owner.create("images", name, 8 << 20, order=22)
        kept = survivor.open("images", name)
        survivor.shutdown()
        kept.close()  # after the shutdown closed it: a no-op, not a second rbd_close
        with pytest.raises(BackendError, match="closed image"):
            kept.size()
        with pytest.raises(BackendError, match="closed"):
            survivor.open("images", name)
    finally:
        try:
            owner.remove("images", name)
        except NotFound:
            pass
        owner.shutdown()


@pytest.mark.ceph
def test_reads_abandoned_in_flight_finish_before_their_buffers_go(ceph_v2: CephCluster) -> None:
    """Completions dropped unwaited (a reader abandoned mid-stream) wait for their I/O before
    releasing its buffer; an unwaited image dropped unclosed is closed, so it can be removed."""
    import gc

    c = _rbdlib.Cluster(ceph_v2.conf, "imagestore", ceph_v2.keyring, label="abandon")
    name = f"abandon-{uuid.uuid4().hex[:8]}"
    data = os.urandom(4 << 20)
    try:
        c.create("images", name, 8 * len(data), order=22)
        with c.open("images", name) as img:
            for i in range(8):
                img.write(i * len(data), data)
        for _ in range(20):
            img = c.open("images", name)
            comps = [img.aio_read(i * len(data), bytearray(len(data)), len(data)) for i in range(8)]
            del comps, img  # buffers, completions and the image dropped with the reads in flight
            gc.collect()
            junk = [bytearray(os.urandom(1 << 20)) for _ in range(32)]  # reuse the freed memory
            assert all(len(j) == 1 << 20 for j in junk)
        c.remove("images", name)  # no handle left open (a read-write open's watch would refuse it)
        done = _rbdlib.Completion(c.lib)
        done.discard()
        assert done.wait() == 0  # released once; later waits return the result, not touch freed memory
    finally:
        try:
            c.remove("images", name)
        except NotFound:
            pass
        c.shutdown()
