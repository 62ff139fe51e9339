"""The compute-node image cache: one download per image across processes, verified, sparse, evicted
safely, re-fetched when damaged, revalidated against a new format policy."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import pytest

import imagestore
from imagestore import ChecksumMismatch, FormatPolicy, ImageCache, Store, UnsafeImage
from imagestore.cache.layout import Sidecar, seal_of
from imagestore.testing.backends.file import FileBackend
from imagestore.testing.payloads import payload
from imagestore.testing.spy import record_reads

MiB = 1 << 20


@pytest.fixture
def images(tmp_path: Path) -> Store:
    return imagestore.open_store({"driver": "file", "root": str(tmp_path / "images")}, "images")


def test_fetch_hit_and_verification(images: Store, tmp_path: Path) -> None:
    data = payload(5 * MiB + 7, seed=1)
    info = images.add("img", data)
    cache = ImageCache(tmp_path / "cache", store=images, link="never")
    reads = record_reads(images)
    path = cache.fetch("img")
    assert path.read_bytes() == data and len(reads) == 1
    assert path.name == f"sha512-{info.checksums['sha512']}"
    assert oct(path.stat().st_mode & 0o777) == "0o444"
    assert cache.fetch(info.location) == path and cache.fetch("img", verify=True) == path
    assert len(reads) == 1  # hits read nothing from the store
    assert cache.fetch("img", expected={"md5": info.checksums["md5"], "sha256": hashlib.sha256(data).hexdigest()}
                       ).name == f"sha256-{hashlib.sha256(data).hexdigest()}"  # the strong one names it
    with pytest.raises(ChecksumMismatch):
        cache.fetch("img", expected={"sha256": "0" * 64})
    assert not cache.layout.entry("sha256-" + "0" * 64).exists()
    (entry,) = [e for e in cache.entries() if e.key.startswith("sha512")]
    assert entry.source == str(info.location) and entry.format == "raw" and entry.how == "download"


# Wang et al.'s MD5 collision (2004): two 128-byte blocks, different bytes, one md5 (an identical
# suffix keeps the collision)
_WANG_A = bytes.fromhex(
    "d131dd02c5e6eec4693d9a0698aff95c2fcab58712467eab4004583eb8fb7f8955ad340609f4b30283e488832571415a"
    "085125e8f7cdc99fd91dbdf280373c5bd8823e3156348f5bae6dacd436c919c6dd53e2b487da03fd02396306d248cda0"
    "e99f33420f577ee8ce54b67080a80d1ec69821bcb6a8839396f9652b6ff72a70")
_WANG_B = bytes.fromhex(
    "d131dd02c5e6eec4693d9a0698aff95c2fcab50712467eab4004583eb8fb7f8955ad340609f4b30283e4888325f1415a"
    "085125e8f7cdc99fd91dbd7280373c5bd8823e3156348f5bae6dacd436c919c6dd53e23487da03fd02396306d248cda0"
    "e99f33420f577ee8ce54b67080280d1ec69821bcb6a8839396f965ab6ff72a70")


def test_weak_digests_never_name_an_entry(tmp_path: Path) -> None:
    """Two images with one md5 must not share an entry: md5 and sha1 alone are refused as keys
    (from expected= or from a store that keeps only them); a strong digest tells them apart."""
    a, b = _WANG_A + bytes(4000), _WANG_B + bytes(4000)
    md5 = hashlib.md5(a).hexdigest()
    assert a != b and hashlib.md5(b).hexdigest() == md5
    mem = imagestore.open_store({"driver": "memory"}, "mem")
    mem.add("a", a)
    mem.add("b", b)
    cache = ImageCache(tmp_path / "cache", store=mem)
    assert cache.fetch("a").read_bytes() == a  # keyed by the store's sha512
    sha1 = hashlib.sha1(b).hexdigest()
    for weak in ({"md5": md5}, {"sha1": sha1}, {"md5": md5, "sha1": sha1}):
        with pytest.raises(imagestore.Unsupported, match="collision-resistant") as err:
            cache.fetch("b", expected=weak)
        assert err.value.store == "mem" and err.value.image == "b" and "sha256" in str(err.value)
    md5_only = imagestore.open_store({"driver": "memory", "checksums": ["md5"]}, "md5only")
    md5_only.add("b", b)
    with pytest.raises(imagestore.Unsupported, match="stored checksums \\(md5\\)"):
        cache.fetch("b", store=md5_only)
    path_b = cache.fetch("b", expected={"md5": md5, "sha256": hashlib.sha256(b).hexdigest()}, store=md5_only)
    assert path_b.read_bytes() == b and path_b.name.startswith("sha256-")
    assert cache.fetch("a").read_bytes() == a
    assert not any(e.key.startswith(("md5-", "sha1-")) for e in cache.entries())


def test_eight_processes_one_backend_read(images: Store, tmp_path: Path) -> None:
    data = payload(16 * MiB, seed=2)
    images.add("shared", data)
    counter, go = tmp_path / "reads", tmp_path / "go"
    code = textwrap.dedent(f"""
        import os, sys, time, pathlib, imagestore
        store = imagestore.open_store({{"driver": "file", "root": {str(tmp_path / "images")!r}}}, "images")
        real = store._driver.open_reader
        class Slow:
            def __init__(self, inner): self.inner = inner
            def read(self, n):
                time.sleep(0.02)
                return self.inner.read(min(n, 1 << 20))
            def close(self): self.inner.close()
        def counting(loc, off, n):
            with open({str(counter)!r}, "a") as fh:
                fh.write(f"{{os.getpid()}}\\n")
            return Slow(real(loc, off, n))
        store._driver.open_reader = counting
        cache = imagestore.ImageCache({str(tmp_path / "cache")!r}, store=store, link="never")
        while not pathlib.Path({str(go)!r}).exists():
            time.sleep(0.01)
        print(cache.fetch("shared"))
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(8)]
    time.sleep(1.0)  # all eight are waiting
    go.write_text("go")
    outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert len(set(outs)) == 1
    assert len(counter.read_text().splitlines()) == 1, "more than one backend read"
    assert Path(outs[0]).read_bytes() == data


def test_bit_flip_is_detected_and_refetched(images: Store, tmp_path: Path) -> None:
    data = payload(3 * MiB, seed=3)
    images.add("img", data)
    cache = ImageCache(tmp_path / "cache", store=images, link="never")
    reads = record_reads(images)
    path = cache.fetch("img")
    os.chmod(path, 0o644)  # the flip: a write through the filesystem (moves the seal)
    with open(path, "r+b") as fh:
        fh.seek(MiB)
        byte = fh.read(1)
        fh.seek(MiB)
        fh.write(bytes([byte[0] ^ 0x01]))
    assert cache.fetch("img").read_bytes() == data
    assert len(reads) == 2  # detected on use, fetched again
    # silent damage (the seal still matches, as after media corruption): a hit trusts the seal,
    # a verified hit and verify() re-hash
    with open(path, "r+b") as fh:
        fh.seek(2 * MiB)
        fh.write(b"\x00\x01")
    side = Sidecar.load(cache.layout.sidecar(path.name))
    assert side is not None
    side.seal = seal_of(path.stat())
    side.dump(cache.layout.sidecar(path.name))
    assert cache.fetch("img") == path and len(reads) == 2
    report = cache.verify()
    assert report.corrupt == (path.name,) and report.removed == (path.name,)
    assert cache.fetch("img", verify=True).read_bytes() == data and len(reads) == 3


def test_killed_fetch_leaves_no_entry(images: Store, tmp_path: Path) -> None:
    data = payload(12 * MiB, seed=4)
    images.add("img", data)
    marker = tmp_path / "started"
    code = textwrap.dedent(f"""
        import time, pathlib, imagestore
        store = imagestore.open_store({{"driver": "file", "root": {str(tmp_path / "images")!r}}}, "images")
        real = store._driver.open_reader
        class Slow:
            def __init__(self, inner): self.inner = inner
            def read(self, n):
                pathlib.Path({str(marker)!r}).write_text("1")
                time.sleep(0.3)
                return self.inner.read(min(n, 1 << 20))
            def close(self): self.inner.close()
        store._driver.open_reader = lambda loc, off, n: Slow(real(loc, off, n))
        imagestore.ImageCache({str(tmp_path / "cache")!r}, store=store, link="never").fetch("img")
    """)
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(1.0)  # a few MiB are written
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    cache = ImageCache(tmp_path / "cache", store=images, link="never")
    assert cache.entries() == []
    assert os.listdir(cache.layout.tmp), "the killed fetch left no temporary: the test proves nothing"
    assert cache.fetch("img").read_bytes() == data
    assert os.listdir(cache.layout.tmp) == []  # the dead fetch's temporary went with the next fetch


def test_eviction_never_removes_open_leased_or_used_entries(tmp_path: Path) -> None:
    mem = imagestore.open_store({"driver": "memory"}, "mem")
    for i in range(5):
        mem.add(f"img{i}", payload(MiB, seed=10 + i))
    cache = ImageCache(tmp_path / "cache", store=mem, grace=0)
    paths = [cache.fetch(f"img{i}") for i in range(5)]
    holder = subprocess.Popen([sys.executable, "-c", f"import time; f = open({str(paths[0])!r}, 'rb'); "
                               "print('open', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        cache.lease("img1", "instance-0001")
        with cache.use("img2") as used:
            assert used == paths[2]
            report = cache.evict(max_bytes=0)
        assert set(report.removed) == {paths[3].name, paths[4].name}
        assert set(report.kept) == {paths[0].name, paths[1].name, paths[2].name}
        assert all(p.exists() for p in paths[:3])
        assert cache.evict(max_bytes=0).removed == (paths[2].name,)  # no longer in use
    finally:
        holder.kill()
        holder.wait(10)
    assert cache.evict(max_bytes=0).removed == (paths[0].name,)  # closed now
    cache.release(paths[1], "instance-0001")
    assert cache.evict(max_bytes=0).removed == (paths[1].name,)
    assert cache.entries() == []


def _evict_pausing(directory: str, key: str, evict: dict[str, Any], listed: Event, go: Event,
                   out: Any) -> None:
    """Another process's eviction, paused after it listed the entries (and their leases) and
    before it locks ``key`` to remove it, until ``go`` is set."""
    import imagestore.cache.imagecache as cache_module

    real = cache_module.try_key_lock

    def paused(path: Path) -> int | None:
        if path.name == f"{key}.lock":
            listed.set()
            go.wait(120)
        return real(path)

    cache_module.try_key_lock = paused
    out.put(ImageCache(directory, grace=60).evict(**evict).to_dict())


@pytest.mark.parametrize("claim", ["lease", "fetch"])
def test_lease_or_use_between_evicts_listing_and_removal_keeps_the_entry(tmp_path: Path, claim: str) -> None:
    """An eviction that listed an entry as unleased and unused, then a lease (or a hit within
    ``grace``) in another process, then the eviction's turn to remove it: it must stay."""
    mem = imagestore.open_store({"driver": "memory"}, "mem")
    data = payload(MiB, seed=30)
    mem.add("img", data)
    cache = ImageCache(tmp_path / "cache", store=mem, grace=60)
    path = cache.fetch("img")
    key = path.name
    old = time.time() - 3600
    os.utime(cache.layout.sidecar(key), (old, old))  # unused for an hour: fair game when listed
    ctx = multiprocessing.get_context("spawn")
    listed, go, out = ctx.Event(), ctx.Event(), ctx.Queue()
    evict = {"keys": [key]} if claim == "lease" else {"max_bytes": 0}
    proc = ctx.Process(target=_evict_pausing, args=(str(tmp_path / "cache"), key, evict, listed, go, out))
    proc.start()
    try:
        assert listed.wait(120), "the evicting process never reached the entry"
        if claim == "lease":
            assert cache.lease("img", "instance-0001") == path
        else:
            assert cache.fetch("img") == path
        go.set()
        report = out.get(timeout=120)
    finally:
        go.set()
        proc.join(60)
    assert proc.exitcode == 0
    assert report["removed"] == [] and report["kept"] == [key]
    assert path.read_bytes() == data
    (entry,) = cache.entries()
    assert entry.leases == (("instance-0001",) if claim == "lease" else ())


def test_eviction_by_size_and_age_oldest_unused_first(tmp_path: Path) -> None:
    mem = imagestore.open_store({"driver": "memory"}, "mem")
    cache = ImageCache(tmp_path / "cache", store=mem, grace=0, max_bytes=3 * MiB)
    now = time.time()
    keys = []
    for i, age in enumerate((500, 100, 300)):
        mem.add(f"img{i}", payload(MiB, seed=20 + i))
        path = cache.fetch(f"img{i}")
        os.utime(cache.layout.sidecar(path.name), (now - age, now - age))
        keys.append(path.name)
    assert cache.evict(max_age=400).removed == (keys[0],)
    mem.add("img3", payload(MiB, seed=23))
    mem.add("img4", payload(MiB, seed=24))
    cache.fetch("img3")
    cache.fetch("img4")  # over 3 MiB: the least recently used (img2, then img1) go first
    left = {e.key for e in cache.entries()}
    assert keys[2] not in left and keys[1] in left and len(left) == 3
    assert cache.total_bytes() <= 3 * MiB


def test_sparse_fetch(tmp_path: Path) -> None:
    mem = imagestore.open_store({"driver": "memory"}, "mem")
    size = 64 * MiB
    image = bytearray(size)
    for at in (0, 17 * MiB + 12345, size - MiB):
        image[at:at + 512 * 1024] = payload(512 * 1024, seed=at)
    mem.add("mostly-zero", bytes(image))
    path = ImageCache(tmp_path / "cache", store=mem).fetch("mostly-zero")
    st = path.stat()
    assert st.st_size == size and path.read_bytes() == image
    assert st.st_blocks * 512 < size // 20, f"{st.st_blocks * 512} bytes allocated for {size}"


def test_link_to_a_file_store_on_the_same_filesystem(images: Store, tmp_path: Path) -> None:
    data = payload(2 * MiB, seed=5)
    info = images.add("img", data)
    cache = ImageCache(tmp_path / "cache", store=images)
    reads = record_reads(images)
    path = cache.fetch("img")
    (entry,) = cache.entries()
    assert entry.how in ("hardlink", "reflink") and reads == [] and path.read_bytes() == data
    images.delete(info.location)  # the cache keeps its own link to the bytes
    assert cache.fetch("img", expected={"sha512": info.checksums["sha512"]}).read_bytes() == data


@pytest.mark.parametrize("link", ["never", "auto"])
def test_a_fill_of_changed_bits_is_refused_by_the_blake3_digest(images: Store, tmp_path: Path, link: str) -> None:
    data = payload(3 * MiB + 1, seed=9)
    info = images.add("img", data)
    FileBackend(tmp_path).corrupt(info.location, len(data) - 1)  # the last byte: bit rot in the store
    cache = ImageCache(tmp_path / "cache", store=images, link=link)
    with pytest.raises(ChecksumMismatch) as err:
        cache.fetch("img")
    assert err.value.algorithm == "blake3"
    assert cache.entries() == [] and not cache.layout.entry(f"sha512-{info.checksums['sha512']}").exists()


@pytest.mark.xfs
def test_reflink_on_xfs(xfs_mount: Path) -> None:
    base = xfs_mount / f"cache-{os.getpid()}-{time.time_ns()}"
    store = imagestore.open_store({"driver": "file", "root": str(base / "images")}, "images")
    data = payload(4 * MiB, seed=6)
    store.add("img", data)
    cache = ImageCache(base / "cache", store=store, link="reflink")
    path = cache.fetch("img")
    (entry,) = cache.entries()
    assert entry.how == "reflink" and path.read_bytes() == data and path.stat().st_nlink == 1


def test_revalidate_evicts_what_the_policy_now_refuses(tmp_path: Path, qcow2_plain: bytes,
                                                       qcow2_with_backing: bytes) -> None:
    mem = imagestore.open_store({"driver": "memory"}, "mem")
    mem.add("raw", payload(MiB, seed=7))
    mem.add("qcow", qcow2_plain)
    cache = ImageCache(tmp_path / "cache", store=mem)
    raw, qcow = cache.fetch("raw"), cache.fetch("qcow")
    assert cache.revalidate().refused == {}
    report = cache.revalidate(FormatPolicy(allowed_formats=frozenset({"raw"})))
    assert set(report.refused) == {qcow.name} and report.accepted == (raw.name,)
    assert not qcow.exists() and raw.exists()
    strict = ImageCache(tmp_path / "cache", store=mem, policy=FormatPolicy(allowed_formats=frozenset({"raw"})))
    with pytest.raises(UnsafeImage):
        strict.fetch("qcow")
    unsafe = imagestore.open_store({"driver": "memory", "inspect": False}, "noinspect")
    unsafe.add("evil", qcow2_with_backing)
    with pytest.raises(UnsafeImage):
        ImageCache(tmp_path / "cache2", store=unsafe).fetch("evil")
    assert ImageCache(tmp_path / "cache2").entries() == []


def test_cli(images: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from imagestore.cli import main

    data = payload(2 * MiB, seed=8)
    images.add("img", data)
    config = tmp_path / "imagestore.toml"
    config.write_text(f'[stores.images]\ndriver = "file"\nroot = "{tmp_path / "images"}"\n')
    base = ["--config", str(config), "--json", "cache", "--dir", str(tmp_path / "cli-cache")]
    assert main([*base, "fetch", "img"]) == 0
    fetched = json.loads(capsys.readouterr().out)
    assert Path(fetched["path"]).read_bytes() == data and fetched["key"].startswith("sha512-")
    assert main([*base, "ls"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [e["key"] for e in listed["entries"]] == [fetched["key"]]
    assert main([*base, "verify"]) == 0
    verified = json.loads(capsys.readouterr().out)
    assert verified["ok"] == [fetched["key"]] and verified["refused"] == {}
    assert main([*base, "evict", "--all"]) == 0
    evicted = json.loads(capsys.readouterr().out)
    assert evicted["removed"] == [fetched["key"]]
    assert main([*base, "ls"]) == 0
    assert json.loads(capsys.readouterr().out)["entries"] == []
    sha = hashlib.sha512(data).hexdigest()
    assert main([*base, "fetch", "img", "--expected", f"sha512:{sha}"]) == 0
    capsys.readouterr()
    assert main([*base, "fetch", "img", "--expected", "sha512:" + "0" * 128]) == 1


@pytest.mark.parametrize("limits", [{"max_age": "1h"}, {"max_bytes": -1}, {"max_bytes": True}, {"max_age": -5.0}])
def test_bad_eviction_limits_are_clear_errors_that_name_the_limit(tmp_path: Path, limits: dict[str, Any]) -> None:
    cache = ImageCache(tmp_path / "cache")
    name = next(iter(limits))
    with pytest.raises(imagestore.InvalidArgument, match=name):
        cache.evict(**limits)
    with pytest.raises(imagestore.InvalidArgument, match=name):
        ImageCache(tmp_path / "other", **limits)
    assert cache.evict(max_age=0, max_bytes=0).removed == ()  # good limits still work
